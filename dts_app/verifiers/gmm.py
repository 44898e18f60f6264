"""Verifiers for the exact Gaussian-mixture backend.

- :class:`GMMOracle` (``oracle``): ``log N(x; μ_k, Σ_k)`` of the target component(s), the
  exact log-density (for ``trap`` the target is the rare "prize" mode, so this is the
  preset's closed-form reward);
- :class:`GMMClassifier` (``supervised``): ``log P(k | x)`` from a *linear softmax
  classifier fitted on mixture samples*. It is right near the data and confidently wrong
  far from it, so a search that trusts it drifts into the tails: verifier hacking that the
  oracle, as held-out verifier, exposes;
- :class:`AnchorAgreement` (``self_supervised``): ``−‖x̂0(t = 0.4) − x0‖``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..backends.gmm import GMMBackend
from .base import Verifier

__all__ = ["GMMOracle", "GMMClassifier", "AnchorAgreement", "fit_linear_classifier"]


def _components(target) -> tuple[int, ...]:
    if isinstance(target, (list, tuple)):
        return tuple(int(c) for c in target)
    return (int(target),)


class GMMOracle(Verifier):
    name, kind = "oracle", "oracle"

    def __init__(self, backend: GMMBackend, target):
        self.target = _components(target)
        self.mixture = backend.mixture.restrict(self.target)

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        return self.mixture.log_prob(x0, 0.0).to(torch.float32)


def fit_linear_classifier(backend: GMMBackend, n: int = 4000, seed: int = 1234, iters: int = 100):
    """Fit ``softmax(W x + b)`` on ``n`` exact mixture samples with L-BFGS (deterministic).

    Returns ``(W [K, D], b [K])`` in float64. Cached in the backend's
    :attr:`~dts_app.backends.base.Backend.cache` (one fit per backend instance).
    """

    def fit():
        gen = torch.Generator().manual_seed(seed)
        x, y = backend.mixture.sample(n, gen)
        k, d = backend.mixture.n_components, backend.mixture.dim
        w = torch.zeros(k, d, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 1e-4 * (w**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return (w.detach(), b.detach())

    return backend.cache.get("linear-classifier", fit)


class GMMClassifier(Verifier):
    name, kind = "supervised", "supervised"

    def __init__(self, backend: GMMBackend, target):
        self.target = _components(target)
        self.w, self.b = fit_linear_classifier(backend)

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        logp = torch.log_softmax(x0.to(torch.float64) @ self.w.T + self.b, dim=-1)
        return torch.logsumexp(logp[:, list(self.target)], dim=-1).to(torch.float32)


class AnchorAgreement(Verifier):
    """``−‖anchor − x0‖₂`` per sample; rows whose anchor is missing (NaN) score 0."""

    name, kind, anchor_t = "self-supervised", "self_supervised", 0.4

    def __init__(self, backend=None, target=None, features=None):
        self.features = features

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        if anchor is None:
            return torch.zeros(x0.shape[0])
        a, b = anchor.flatten(1).float(), x0.flatten(1).float()
        if self.features is not None:
            a, b = self.features(a), self.features(b)
        d = -(a - b).norm(dim=1)
        return torch.nan_to_num(d, nan=0.0)
