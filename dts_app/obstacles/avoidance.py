"""Obstacles and the ways a path can treat them (the pure parts; docs/obstacles.md).

An :class:`Obstacle` is a set of points (or a ball) in a named space: ``x0`` (the clean
prediction x̂0 of the path state: toy points, digit pixels, a latent) or a feature space
given by a function of x̂0 (e.g. CLIP image embeddings for text concepts). Its distance
``D`` is the Euclidean distance from the state's x̂0 (or its features) to the nearest
point (minus the radius for a ball). Each obstacle has its own η and Q*.

With ``measure="xt"`` (x0-space obstacles only), D is measured on the noisy state itself
against the obstacle carried to the same t under the interpolant (a point o becomes
(1 − t)·o, a radius r becomes (1 − t)·r), as the source text writes ``D(x_t, t)``; Q* is
carried the same way, ``(1 − t)·Q*``, so pure noise at t = 1 is never inside.

Avoidance modes (``SearchConfig.avoid``), applied by the engine at every step of every
algorithm (``Engine.advance``; the retry loop and the SMC resampling are in
:mod:`dts_app.search.obstacle_steps`):

``none``
    The plain step; D and "inside Q*" are still measured (the η = 0 baseline).
``repulsion``
    :meth:`Avoidance.displacement`: x̂0 flows along ``−Q*⁴·∇U_rep`` for the step's share
    ``h/t`` of the remaining way, with step control (no cap); the state moves with it.
``revert``
    A row that lands within Q* is redrawn from its previous state with a fresh SDE step
    (γ = ``sde_gamma`` > 0), up to ``max_reverts`` tries, then continues from its best try
    flagged ``revert_exhausted``.
``prune``
    Rows that land within Q* are dropped.
``smc``
    Rows are particles weighted by :meth:`Avoidance.log_potential` ratios, the last step
    by the hard constraint: the target is exactly ``p0(x | D > Q*)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..config import ConfigError
from ..solvers import make_g
from .field import FLOOR_FRACTION, away_from_nearest, du_rep_dd, nearest_distance, u_rep

__all__ = ["Obstacle", "Avoidance", "build_avoidance", "resolved_obstacles", "baseline_config", "MODES"]

MODES = ("none", "repulsion", "revert", "prune", "smc")
REVERT_GAMMA = 0.5
MAX_SUBSTEPS = 64  # repulsion flow: sub-steps per solver step (each moves ≤ 10% of D)


@dataclass
class Obstacle:
    """One obstacle (see module docstring).

    Attributes:
        kind: how the user named it (point, ball, component, class, concept).
        points: ``[P, F]`` points in its space (flattened).
        eta, q_star: its field's strength and influence radius.
        radius: ball radius (0 for point sets).
        space: ``"x0"`` or the name of a feature space.
        features: map from clean latents ``[B, *shape]`` to ``[B, F]``, or to a set of
            local features ``[B, K, F]`` whose nearest member counts (None for x0).
        label: for legends.
    """

    kind: str
    points: Tensor
    eta: float
    q_star: float
    radius: float = 0.0
    space: str = "x0"
    features: Callable[[Tensor], Tensor] | None = None
    label: str = ""

    def embed(self, x0: Tensor) -> Tensor:
        return x0.flatten(1) if self.features is None else self.features(x0)

    def distance(self, x0: Tensor, x: Tensor | None = None, t: float | None = None) -> Tensor:
        """D ``[B]`` from clean predictions, or from the noisy state ``x`` at time ``t``
        against the obstacle carried to t (x0 space only)."""
        if x is not None:
            s = 1.0 - t
            return nearest_distance(x.flatten(1), s * self.points, s * self.radius)[0]
        return nearest_distance(self.embed(x0), self.points, self.radius)[0]

    def rate(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """The repulsive flow's velocity ``−Q*⁴·∇U_rep`` at flattened points ``y [B, F]``
        (x0 space) and their distance D ``[B]``: away from the nearest obstacle point with
        speed ``η·Q*·(1/d − 1)/d²``, ``d = D/Q*`` (0 outside Q*)."""
        q = self.q_star
        d, away = away_from_nearest(y, self.points, self.radius)
        return (-(q**4) * du_rep_dd(d, self.eta, q)).unsqueeze(1) * away, d

    def push(self, x0: Tensor) -> Tensor:
        """Feature-space obstacles: ``−Q*⁴·∇_{x0}U_rep`` by autograd through the feature map."""
        q = self.q_star
        with torch.enable_grad():
            y = x0.detach().requires_grad_(True)
            d = nearest_distance(self.features(y), self.points, self.radius)[0]
            (g,) = torch.autograd.grad(u_rep(d, self.eta, q).sum(), y)
        return -(q**4) * g

    def describe(self) -> dict:
        pts = self.points
        return {
            "kind": self.kind,
            "label": self.label,
            "space": self.space,
            "points": pts.tolist() if pts.numel() <= 16384 else None,
            "n_points": int(pts.shape[0]),
            "radius": self.radius,
            "eta": self.eta,
            "q_star": self.q_star,
        }


class Avoidance:
    """Obstacles with an avoidance mode: pure functions of states (D, inside-Q*, the
    repulsion displacement) that the engine applies at every step (it runs the prune rule
    and the revert retry loop itself; see :mod:`dts_app.search.engine`)."""

    def __init__(
        self,
        obstacles: list[Obstacle],
        mode: str = "none",
        measure_on: str = "x0",
        max_reverts: int = 4,
        revert_gamma: float = REVERT_GAMMA,
    ):
        if mode not in MODES:
            raise ConfigError(f"--avoid: {mode!r} is not one of {', '.join(MODES)}")
        if not obstacles:
            raise ConfigError("--avoid: needs at least one --obstacle")
        if measure_on == "xt" and any(o.features is not None for o in obstacles):
            raise ConfigError("--measure: xt works only for obstacles in x0 space")
        self.obstacles, self.mode, self.measure_on = obstacles, mode, measure_on
        self.max_reverts = max_reverts
        self.revert_g = make_g(revert_gamma)
        #: checks that run a feature map (decode + CLIP) per state: counted in the ledger
        self.feature_space = any(o.features is not None for o in obstacles)

    # --- measuring -----------------------------------------------------------------------
    def _distances(self, x0_hat: Tensor, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """``D [B, O]`` to every obstacle and each obstacle's Q* ``[O]`` at time t (with
        ``measure="xt"``, Q* is carried to t like the obstacle: ``(1 − t)·Q*``)."""
        xt = (x, t) if self.measure_on == "xt" else (None, None)
        ds = torch.stack([o.distance(x0_hat, *xt).float().cpu() for o in self.obstacles], dim=1)
        scale = (1.0 - t) if self.measure_on == "xt" else 1.0
        return ds, torch.tensor([scale * o.q_star for o in self.obstacles])

    def measure(self, x0_hat: Tensor, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """``(D [B], inside [B])``: nearest-obstacle distance and whether any obstacle has
        the state within its own Q*."""
        d, each = self.measure_each(x0_hat, x, t)
        return d, each.any(dim=1)

    def measure_each(self, x0_hat: Tensor, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """``(D [B], inside [B, O])``: nearest-obstacle distance and, per obstacle (in
        :attr:`obstacles` order), whether it has the state within its own Q*."""
        ds, q = self._distances(x0_hat, x, t)
        return ds.min(dim=1).values, ds <= q

    def log_potential(self, x0_hat: Tensor, x: Tensor, t: float) -> Tensor:
        """``log φ [B] = −Σ_o ½·η_o·(Q*_o/D_o − 1)²`` over obstacles with ``D_o ≤ Q*_o`` (D
        floored at 5% of Q*): the SMC mode's potential, U_rep in units of Q* (η
        dimensionless), 0 outside every Q*."""
        ds, q = self._distances(x0_hat, x, t)
        eta = torch.tensor([o.eta for o in self.obstacles])
        d = torch.maximum(ds, FLOOR_FRACTION * q)
        u = 0.5 * eta * (q / d.clamp_min(1e-12) - 1.0) ** 2
        return -torch.where(ds <= q, u, torch.zeros_like(u)).sum(dim=1).double()

    def displacement(self, x0_hat: Tensor, t: float, t_next: float) -> Tensor:
        """The state displacement repulsion adds to a plain step from t to t_next: the
        clean prediction flowed along ``dy/ds = −Q*⁴·Σ_o ∇U_rep,o(y)`` for flow time
        ``h/t`` (``h = t − t_next``), with step control: sub-steps that each move a point
        at most 10% of its distance to the nearest obstacle (at most 64). No cap: the flow
        stops by itself at the edge of Q*, where ∇U_rep = 0, and a larger η gets there
        sooner, so η sets the strength monotonically. Feature-space obstacles add
        ``(h/t)·(−Q*⁴·∇U_rep)`` through autograd (one step)."""
        frac = (t - t_next) / t
        flat = [o for o in self.obstacles if o.features is None]
        out = torch.zeros_like(x0_hat)
        if flat:
            y0 = x0_hat.detach().flatten(1).double()
            y, left = y0.clone(), torch.full((len(y0),), frac, dtype=torch.float64)
            for _ in range(MAX_SUBSTEPS):
                rates, dists = zip(*(o.rate(y) for o in flat))
                r = sum(rates)
                speed = r.norm(dim=1)
                dmin = torch.stack(dists, 1).min(1).values
                active = (speed > 0) & (left > 0)
                if not bool(active.any()):
                    break
                dt = torch.where(active, torch.minimum(left, 0.1 * dmin.clamp_min(1e-12) / speed.clamp_min(1e-300)), 0.0)
                y = y + dt.unsqueeze(1) * r
                left = left - dt
            out = (y - y0).to(x0_hat.dtype).reshape(x0_hat.shape)
        for o in self.obstacles:
            if o.features is not None:
                out = out + frac * o.push(x0_hat)
        return out

    def describe(self) -> list[dict]:
        return [dict(o.describe(), mode=self.mode, measure=self.measure_on) for o in self.obstacles]


def _obstacle(spec, backend, eta: float, q_star: float) -> Obstacle:
    eta = spec.eta if spec.eta is not None else eta
    own = backend.obstacle_q_star(spec.kind, spec.value) if spec.q_star is None else None
    q_star = spec.q_star if spec.q_star is not None else own if own is not None else q_star  # given, measured, the run's
    numel = 1
    for s in backend.latent_shape:
        numel *= s
    if spec.kind in ("point", "ball"):
        vals = list(spec.value)
        radius = vals.pop() if spec.kind == "ball" else 0.0
        if len(vals) != numel:
            raise ConfigError(
                f"--obstacle: {spec.kind} needs {numel} coordinates for the {backend.name} backend, got {len(vals)}"
            )
        if radius < 0:
            raise ConfigError("--obstacle: ball radius must be ≥ 0")
        pts = torch.tensor([vals], dtype=torch.float32)
        label = f"{spec.kind} ({', '.join(f'{v:g}' for v in vals[:4])}{', …' if len(vals) > 4 else ''})"
        return Obstacle(spec.kind, pts, eta, q_star, float(radius), "x0", None, label)
    try:
        pts = backend.obstacle_points(spec.kind, spec.value)
    except ValueError as e:
        raise ConfigError(str(e) if str(e).startswith("--obstacle") else f"--obstacle: {e}") from None
    space, features = backend.obstacle_features(spec.kind, spec.value)
    pts = pts.detach().float().cpu()
    pts = pts.flatten(1) if features is None else pts.reshape(pts.shape[0], -1)
    return Obstacle(spec.kind, pts, eta, q_star, 0.0, space, features, f"{spec.kind} {spec.value}")


def resolved_obstacles(config, backend) -> tuple:
    """``config.obstacles``, or the backend's built-in region (e.g. the ``trap`` preset's
    hazard mode) when none are given."""
    from ..config import ObstacleSpec

    if config.obstacles:
        return tuple(config.obstacles)
    return tuple(ObstacleSpec(kind, value) for kind, value in backend.builtin_obstacles())


def baseline_config(config, backend):
    """The same run with avoidance off and η = 0, obstacles still measured."""
    return config.replace(avoid="none", eta=0.0, obstacles=resolved_obstacles(config, backend))


def build_avoidance(config, backend) -> Avoidance:
    """Obstacles from :func:`resolved_obstacles` with the configured mode."""
    specs: list[Any] = list(resolved_obstacles(config, backend))
    if not specs:
        raise ConfigError("--avoid: needs at least one --obstacle (this preset has no built-in region)")
    obstacles = [_obstacle(s, backend, config.eta, config.q_star) for s in specs]
    return Avoidance(obstacles, config.avoid, config.measure, config.max_reverts, config.sde_gamma)
