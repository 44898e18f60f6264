"""The exact Gaussian mixtures behind the ``gmm`` backend: closed-form densities,
scores and velocities of every marginal p_t of the linear interpolant, exact samples, and
the named presets (see :mod:`dts_app.backends.gmm` for the backend around them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..interpolant import as_time

__all__ = ["GaussianMixture", "Preset", "PRESETS", "make_preset"]

_LOG2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class GaussianMixture:
    """A diagonal Gaussian mixture in D dimensions (float64 for exact tests).

    Attributes:
        weights: ``[K]``, positive, sums to 1.
        means: ``[K, D]``.
        variances: ``[K, D]`` diagonal variances, positive.
        names: one label per component.
    """

    weights: Tensor
    means: Tensor
    variances: Tensor
    names: tuple[str, ...] = ()

    def __post_init__(self):
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.variances.shape != (k, d):
            raise ValueError("weights [K], means [K, D] and variances [K, D] must agree")
        if (self.weights <= 0).any() or (self.variances <= 0).any():
            raise ValueError("weights and variances must be positive")
        if abs(float(self.weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got {float(self.weights.sum())}")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def restrict(self, components: Sequence[int] | None) -> GaussianMixture:
        """The mixture conditioned on the component being one of ``components``."""
        if components is None:
            return self
        idx = sorted({int(c) for c in components})
        if not idx or idx[0] < 0 or idx[-1] >= self.n_components:
            raise ValueError(f"components must be in [0, {self.n_components - 1}], got {components}")
        w = self.weights[idx]
        names = tuple(self.names[i] for i in idx) if self.names else ()
        return GaussianMixture(w / w.sum(), self.means[idx], self.variances[idx], names)

    # --- marginals p_t --------------------------------------------------------------
    def _moments(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-component marginal means ``[B,K,D]``, variances ``[B,K,D]`` and ``t`` ``[B,1,1]``."""
        tb = as_time(t, x).reshape(-1, 1, 1).to(self.means.dtype)
        mu = (1 - tb) * self.means.unsqueeze(0)
        s = (1 - tb) ** 2 * self.variances.unsqueeze(0) + tb**2
        return mu, s, tb

    def component_log_prob(self, x: Tensor, t: float | Tensor = 0.0) -> Tensor:
        """``log N(x; (1 − t)μ_k, S_k)`` for every component: ``[B, K]``."""
        x = x.to(self.means.dtype)
        mu, s, _ = self._moments(x, t)
        diff = x.unsqueeze(1) - mu
        return -0.5 * ((diff**2 / s).sum(-1) + s.log().sum(-1) + self.dim * _LOG2PI)

    def log_prob(self, x: Tensor, t: float | Tensor = 0.0) -> Tensor:
        """``log p_t(x)``: ``[B]``."""
        return torch.logsumexp(self.component_log_prob(x, t) + self.weights.log(), dim=-1)

    def responsibilities(self, x: Tensor, t: float | Tensor = 0.0) -> Tensor:
        """Posterior component probabilities ``r_k(x)`` under ``p_t``: ``[B, K]``."""
        return torch.softmax(self.component_log_prob(x, t) + self.weights.log(), dim=-1)

    def posterior_means(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """``(E[x0 | x_t = x], E[ε | x_t = x])``, each ``[B, D]``."""
        xd = x.to(self.means.dtype)
        mu, s, tb = self._moments(xd, t)
        r = self.responsibilities(xd, t).unsqueeze(-1)
        resid = xd.unsqueeze(1) - mu
        x0_k = self.means.unsqueeze(0) + (1 - tb) * self.variances.unsqueeze(0) / s * resid
        eps_k = tb / s * resid
        return (r * x0_k).sum(1), (r * eps_k).sum(1)

    def velocity(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Exact ``v(x, t) = E[ε − x0 | x_t = x]``: ``[B, D]`` in ``x``'s dtype."""
        x0, eps = self.posterior_means(x, t)
        return (eps - x0).to(x.dtype)

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Exact ``∇log p_t(x) = Σ_k r_k S_k⁻¹((1 − t)μ_k − x)``: ``[B, D]``."""
        xd = x.to(self.means.dtype)
        mu, s, _ = self._moments(xd, t)
        r = self.responsibilities(xd, t).unsqueeze(-1)
        return (r * (mu - xd.unsqueeze(1)) / s).sum(1).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Exact samples of p_0 and their component labels: ``([n, D], [n])``."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn((n, self.dim), generator=generator, dtype=self.means.dtype)
        return self.means[k] + self.variances[k].sqrt() * z, k

    def to_dict(self) -> dict:
        return {
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covariances": self.variances.tolist(),
            "component_names": list(self.names),
        }


def _mixture(weights, means, variances, names=()) -> GaussianMixture:
    w = torch.tensor(weights, dtype=torch.float64)
    m = torch.tensor(means, dtype=torch.float64)
    v = torch.as_tensor(variances, dtype=torch.float64)
    if v.ndim == 1:
        v = v.unsqueeze(1).expand_as(m).clone()
    return GaussianMixture(w / w.sum(), m, v, tuple(names))


def _eight_gaussians() -> GaussianMixture:
    angles = [2 * math.pi * i / 8 for i in range(8)]
    means = [[3.0 * math.cos(a), 3.0 * math.sin(a)] for a in angles]
    return _mixture([1.0] * 8, means, [0.04] * 8, [f"ring-{i}" for i in range(8)])


def _trap() -> GaussianMixture:
    # A broad common mode, a hazard mode to avoid, and a rare high-reward "prize" mode
    # tucked in behind the hazard: paths heading for the prize pass close to the hazard.
    return _mixture(
        [0.62, 0.30, 0.08],
        [[-1.5, -1.0], [1.6, 0.4], [2.6, 1.6]],
        [[0.35, 0.35], [0.06, 0.06], [0.03, 0.03]],
        ["common", "hazard", "prize"],
    )


def _grid_25() -> GaussianMixture:
    means = [[2.0 * i, 2.0 * j] for i in range(-2, 3) for j in range(-2, 3)]
    return _mixture([1.0] * 25, means, [0.02] * 25, [f"grid-{i}" for i in range(25)])


def _hd_64() -> GaussianMixture:
    g = torch.Generator().manual_seed(64)
    q, _ = torch.linalg.qr(torch.randn(64, 64, generator=g, dtype=torch.float64))
    means = (4.0 * q[:, :5].T).tolist()  # 5 orthogonal modes at distance 4 from the origin
    return _mixture([0.3, 0.25, 0.2, 0.15, 0.1], means, [0.05] * 5, [f"mode-{i}" for i in range(5)])


def _hack() -> GaussianMixture:
    # Two broad classes side by side. A linear classifier fitted on samples keeps getting
    # more confident far out along the class axis, where the true density is tiny:
    # searching on that classifier drifts into the tails (verifier hacking).
    return _mixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [[0.6, 0.6], [0.6, 0.6]], ["left", "right"])


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    build: object
    default_target: int
    avoid: tuple[int, ...] = ()  # built-in obstacle components


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("eight-gaussians", "2-D ring of 8 equal modes", _eight_gaussians, 0),
        Preset(
            "trap",
            "2-D: a rare high-reward 'prize' mode behind a 'hazard' mode to avoid",
            _trap,
            2,
            avoid=(1,),
        ),
        Preset("grid-25", "2-D 5×5 grid of equal modes", _grid_25, 12),
        Preset("hd-64", "64-D, 5 well-separated modes (for embedding views)", _hd_64, 0),
        Preset("hack", "2-D, two broad classes: a linear classifier can be hacked", _hack, 1),
    ]
}


def make_preset(name: str) -> GaussianMixture:
    if name not in PRESETS:
        raise ValueError(f"unknown gmm preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].build()
