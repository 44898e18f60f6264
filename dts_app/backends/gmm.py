"""Exact Gaussian-mixture backend: closed-form velocity, clean prediction, score, density.

For ``p_0 = Σ_k w_k N(μ_k, diag(σ²_k))`` and the linear interpolant
``x_t = (1 − t)·x0 + t·ε``, the marginal at time t is again a mixture::

    p_t = Σ_k w_k N((1 − t)·μ_k, S_k),   S_k = (1 − t)²·diag(σ²_k) + t²·I

With responsibilities ``r_k(x) ∝ w_k N(x; (1 − t)μ_k, S_k)``::

    E[x0 | x, k] = μ_k + (1 − t)·σ²_k / S_k · (x − (1 − t)μ_k)
    E[ε  | x, k] = t / S_k · (x − (1 − t)μ_k)
    v(x, t)      = Σ_k r_k(x) (E[ε | x, k] − E[x0 | x, k])

All covariances are diagonal, so everything is elementwise and batched. Conditioning on
a class restricts the mixture to a subset of components (weights renormalised).
"""

from __future__ import annotations

from torch import Tensor

from .base import Backend, Condition, Target
from .mixture import PRESETS, GaussianMixture, make_preset

__all__ = ["GaussianMixture", "GMMBackend", "PRESETS", "make_preset"]


class GMMBackend(Backend):
    """The exact mixture as a backend. ``Condition.value`` is a component tuple or ``None``."""

    name = "gmm"
    data_kind = "points"
    conditions_on_target = False

    def __init__(self, preset: str = "eight-gaussians", mixture: GaussianMixture | None = None):
        self.preset = preset
        self.mixture = mixture if mixture is not None else make_preset(preset)
        self.latent_shape = (self.mixture.dim,)
        self._restricted: dict[tuple[int, ...] | None, GaussianMixture] = {}

    def targets(self) -> list[Target]:
        names = self.mixture.names or tuple(str(i) for i in range(self.mixture.n_components))
        return [Target(i, f"{i}: {n}") for i, n in enumerate(names)]

    def default_target(self) -> int:
        return PRESETS[self.preset].default_target if self.preset in PRESETS else 0

    def builtin_obstacles(self) -> tuple[tuple[str, int], ...]:
        """``("component", k)`` for each component the preset marks as a region to avoid."""
        avoid = PRESETS[self.preset].avoid if self.preset in PRESETS else ()
        return tuple(("component", k) for k in avoid)

    def reference_mixture(self) -> GaussianMixture:
        """The exact mixture (also kept as :attr:`mixture`)."""
        return self.mixture

    def condition(self, target=None, guidance: float = 1.0) -> Condition:
        if target is None:
            return Condition(None, guidance, "full mixture")
        comps = (int(target),) if isinstance(target, (int, float)) else tuple(int(c) for c in target)
        self.mixture.restrict(comps)  # validates
        return Condition(comps, guidance, "components " + ",".join(map(str, comps)))

    def mixture_for(self, cond: Condition) -> GaussianMixture:
        key = None if cond.value is None else tuple(cond.value)
        if key not in self._restricted:
            self._restricted[key] = self.mixture.restrict(key)
        return self._restricted[key]

    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        return self.mixture_for(cond).velocity(x, t)

    def obstacle_points(self, kind: str, value) -> Tensor:
        """``component``: the component's mean (D = distance to it; pick Q* to cover the
        mode, e.g. 2–3 standard deviations)."""
        if kind != "component":
            return super().obstacle_points(kind, value)
        k = int(value)
        if not 0 <= k < self.mixture.n_components:
            raise ValueError(f"--obstacle: component {k} is outside [0, {self.mixture.n_components - 1}]")
        return self.mixture.means[k : k + 1].to(self.dtype)

    def describe(self) -> dict:
        return {"name": self.name, "preset": self.preset, "dim": self.mixture.dim, **self.mixture.to_dict()}
