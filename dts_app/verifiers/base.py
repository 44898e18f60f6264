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

from torch import Tensor

__all__ = ["Verifier"]


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
