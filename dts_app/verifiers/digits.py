"""Verifiers of the digits backend (inputs: decoded images in [0, 1]).

- ``supervised``: log-probability of the target class under the shipped CNN;
- ``oracle`` (also the held-out verifier): log-probability under the *other* shipped
  classifier (an MLP, other seed and architecture), an independent judge;
- ``self-supervised``: the cosine similarity of f(x̂0 at t = 0.4) and f(x0), f the CNN's
  penultimate features: Ma et al. 2025's agreement verifier in its published form (cosine
  of DINO/CLIP features); it needs no label.

Batch metrics: :func:`frechet_distance` on the oracle MLP's features (an FID analogue) and
:func:`inception_score` (an Inception-Score analogue) with its class probabilities.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import FeatureAgreement, Verifier

__all__ = ["DigitsClassifierScore", "DigitsSupervised", "DigitsOracle", "DigitsAgreement", "frechet_distance", "inception_score"]


def _model_space(images: Tensor) -> Tensor:
    return images * 2.0 - 1.0


class DigitsClassifierScore(Verifier):
    which = "supervised"

    def __init__(self, backend, target):
        self.net = backend.classifier(self.which)
        self.target = int(target if target is not None else backend.default_target())

    @torch.no_grad()
    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        # float64: confident samples would otherwise all tie at exactly 0.0 in float32
        return torch.log_softmax(self.net(_model_space(x0)).double(), dim=1)[:, self.target].float()


class DigitsSupervised(DigitsClassifierScore):
    name, kind, which = "supervised", "supervised", "supervised"


class DigitsOracle(DigitsClassifierScore):
    name, kind, which = "oracle", "oracle", "oracle"


class DigitsAgreement(FeatureAgreement):
    def __init__(self, backend, target=None):
        self.net = backend.classifier("supervised")


@torch.no_grad()
def frechet_distance(a: Tensor, b: Tensor, net) -> float:
    """Fréchet distance between Gaussians fitted to ``net.features`` of two image sets in
    model space ``[n, 1, 8, 8]``."""
    import numpy as np
    from scipy import linalg

    fa, fb = net.features(a).double().numpy(), net.features(b).double().numpy()
    mu1, mu2 = fa.mean(0), fb.mean(0)
    eye = 1e-6 * np.eye(fa.shape[1])  # dead ReLU features make the covariances singular
    s1, s2 = np.cov(fa, rowvar=False) + eye, np.cov(fb, rowvar=False) + eye
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


@torch.no_grad()
def inception_score(x: Tensor, net) -> float:
    """``exp(E_x KL(p(y|x) ‖ p(y)))`` with the classifier's probabilities (max 10)."""
    p = torch.softmax(net(x), dim=1).double()
    py = p.mean(0, keepdim=True)
    kl = (p * (p.clamp_min(1e-12).log() - py.clamp_min(1e-12).log())).sum(1)
    return float(kl.mean().exp())
