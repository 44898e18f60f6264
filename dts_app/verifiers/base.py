"""The verifier contract.

A verifier scores clean samples, higher is better: ``score(x0, anchor=None) -> [B]``.
``x0`` is what the backend decodes (identity for toy data, pixels for image backends).
A verifier is built for one backend and one target (class, component, prompt), so the
target is bound at construction.

Kinds (Ma et al. 2025):

- ``oracle``: the ground truth where it exists (gmm: exact log-density of the target);
- ``supervised``: a trained model's judgement (classifier log-probability, CLIP score);
- ``self_supervised``: agreement between the clean prediction x̂0 at t = ``anchor_t``
  (0.4) and the final sample; needs no labels. The engine records that x̂0 (free: it comes
  from the velocity evaluation at that step) and passes it as ``anchor``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

__all__ = ["Verifier", "FeatureAgreement"]


class Verifier(ABC):
    """Base class. Subclasses set ``name`` and ``kind`` and implement :meth:`score`."""

    name: str = "verifier"
    kind: str = "oracle"
    #: time at which the engine records the anchor x̂0 (self-supervised verifiers only)
    anchor_t: float | None = None

    @abstractmethod
    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        """Scores ``[B]`` (float) for decoded clean samples ``x0`` ``[B, ...]``."""

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind}


class FeatureAgreement(Verifier):
    """Ma et al.'s agreement verifier on a classifier's features (``self.net.features``):
    the cosine of f(x̂0 at t = 0.4) and f(x0) for images in [0, 1] (model space [−1, 1]).
    Subclasses set ``self.net``."""

    name, kind, anchor_t = "self-supervised", "self_supervised", 0.4
    net: torch.nn.Module

    @torch.no_grad()
    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        if anchor is None:
            return torch.zeros(x0.shape[0])
        a = anchor.clone()
        missing = torch.isnan(a.flatten(1)).any(dim=1)
        a[missing] = x0[missing] * 2 - 1  # not yet at t = 0.4: no disagreement
        # the anchor is a clean *latent* prediction (model space); x0 is a decoded image
        fa = self.net.features(a.clamp(-1, 1)).double()
        fb = self.net.features(x0.float() * 2 - 1).double()
        return torch.nn.functional.cosine_similarity(fa, fb, dim=1, eps=1e-12).float()
