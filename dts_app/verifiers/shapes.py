"""Verifiers of the shapes backend (inputs: decoded images ``[B, 3, 32, 32]`` in [0, 1]).

- ``oracle``: the exact program checker's graded score
  (:func:`dts_app.shapes.checker.check`): 1 exactly when the image passes the prompt
  GenEval-style, partial credit below;
- ``supervised``: the shipped CNN's log-probability that the image satisfies the prompt
  (counts of each group, plus the centres' order for a position prompt): trained on clean
  renders, it can be fooled, which is the point;
- ``self-supervised``: the cosine similarity of the CNN's penultimate features of x̂0 at
  t = 0.4 and of the final image (Ma et al. 2025's agreement verifier); no prompt needed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import FeatureAgreement, Verifier

__all__ = ["ShapesOracle", "ShapesSupervised", "ShapesAgreement", "pass_flags", "check_results"]


def _spec(backend, target):
    return backend.spec(target if target is not None else backend.default_target())


class ShapesOracle(Verifier):
    name, kind = "oracle", "oracle"

    def __init__(self, backend, target=None):
        self.spec = _spec(backend, target)

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        from ..shapes.checker import check

        return torch.tensor([check(img, self.spec).score for img in x0.detach().float().cpu()], dtype=torch.float32)


def check_results(images, prompt) -> list:
    """The exact checker's :class:`~dts_app.shapes.checker.CheckResult` of each image
    ``[B, 3, H, W]`` in [0, 1] (tensor or array) against a prompt (text or parsed)."""
    from ..shapes.checker import check_batch

    if hasattr(images, "detach"):
        images = images.detach().float().cpu()
    return check_batch(images, prompt)


def pass_flags(images: Tensor, prompt) -> list[bool]:
    """GenEval's verdict for each image ``[B, 3, H, W]`` in [0, 1] (for galleries and tables)."""
    return [r.passed for r in check_results(images, prompt)]


class ShapesSupervised(Verifier):
    name, kind = "supervised", "supervised"

    def __init__(self, backend, target=None):
        self.net = backend.classifier()
        self.spec = _spec(backend, target)

    @torch.no_grad()
    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        from ..shapes.classifier import prompt_log_prob

        logits, centres = self.net(x0.float() * 2 - 1)
        return prompt_log_prob(logits, centres, self.spec).float()


class ShapesAgreement(FeatureAgreement):
    def __init__(self, backend, target=None):
        self.net = backend.classifier()
