"""Pure ODE and SDE steppers for the linear interpolant (see :mod:`dts_app.interpolant`).

Every stepper is a plain function of ``(field, x, t, t_next, ...)`` in the style of
k-diffusion: no scheduler, no hidden step index, so a search can step any state from any
t to any t'. ``field(x, t) -> v`` is the (ledger-counted) velocity of a backend with its
condition bound. Steppers return a :class:`Step` that carries the new state and the clean
prediction x̂0 at the starting point (free: it comes from the first velocity evaluation),
which verifiers and obstacles use.

Cost in velocity evaluations per step: Euler 1, Heun 2 (1 for the step that lands on
t = 0), Euler–Maruyama 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from .interpolant import eps_from_velocity, x0_from_velocity

VelocityField = Callable[[Tensor, float], Tensor]
DiffusionCoeff = Callable[[float], float]

__all__ = [
    "Step",
    "SOLVER_COST",
    "euler_step",
    "heun_step",
    "sde_step",
    "ode_step",
    "time_grid",
    "make_g",
]


@dataclass(frozen=True)
class Step:
    """Result of one step.

    Attributes:
        x: the new state at ``t_next``, ``[B, *shape]``.
        x0_hat: the clean prediction at the starting state and time, ``[B, *shape]``.
        v: the velocity at the starting state, ``[B, *shape]``.
    """

    x: Tensor
    x0_hat: Tensor
    v: Tensor


def euler_step(field: VelocityField, x: Tensor, t: float, t_next: float, v: Tensor | None = None) -> Step:
    """One explicit Euler step of ``dx/dt = v`` from t to t_next (1 evaluation, none when
    the velocity ``v`` at ``(x, t)`` is given)."""
    v = field(x, t) if v is None else v
    return Step(x=x + (t_next - t) * v, x0_hat=x0_from_velocity(x, v, t), v=v)


def heun_step(field: VelocityField, x: Tensor, t: float, t_next: float, v: Tensor | None = None) -> Step:
    """One Heun (explicit trapezoidal) step of ``dx/dt = v`` (2 evaluations).

    As in EDM (Karras et al. 2022, Alg. 1) and k-diffusion's ``sample_heun``, the step
    that lands on ``t_next = 0`` is an Euler step: a learned denoiser is not trained at
    t = 0, and VP models cannot be evaluated there at all (their conversion divides by
    t). So Heun with S steps costs ``2·S − 1`` evaluations. A given ``v`` (the velocity at
    ``(x, t)``) replaces the first evaluation.
    """
    v = field(x, t) if v is None else v
    if t_next <= 0.0:
        return Step(x=x + (t_next - t) * v, x0_hat=x0_from_velocity(x, v, t), v=v)
    x_pred = x + (t_next - t) * v
    v_next = field(x_pred, t_next)
    return Step(x=x + (t_next - t) * 0.5 * (v + v_next), x0_hat=x0_from_velocity(x, v, t), v=v)


def sde_step(
    field: VelocityField,
    x: Tensor,
    t: float,
    t_next: float,
    g: float,
    noise: Tensor,
    v: Tensor | None = None,
) -> Step:
    """One Euler–Maruyama step of the reverse SDE ``dx = [v − ½g²∇log p_t]dt + g dW̄``.

    With ``∇log p_t = −ε̂/t`` the drift is ``v + ½g²ε̂/t``; time runs backwards, so with
    ``h = t − t_next > 0``: ``x' = x − h·(v + ½g²ε̂/t) + g·sqrt(h)·z``. ``g = 0`` is Euler.
    Use a ``g`` that vanishes like ``sqrt(t)`` near t = 0 (see :func:`make_g`) so the drift
    stays finite.

    Args:
        field: velocity field.
        x: state at ``t``.
        t, t_next: times, ``t > t_next``.
        g: diffusion coefficient at ``t``.
        noise: standard normal noise of ``x``'s shape (one stream per candidate).
        v: the velocity at ``(x, t)`` if already known (then no evaluation is made).
    """
    v = field(x, t) if v is None else v
    h = t - t_next
    x0_hat = x0_from_velocity(x, v, t)
    if g == 0.0:
        return Step(x=x - h * v, x0_hat=x0_hat, v=v)
    eps_hat = eps_from_velocity(x, v, t)
    drift = v + 0.5 * g * g * eps_hat / max(t, 1e-12)
    return Step(x=x - h * drift + g * math.sqrt(h) * noise, x0_hat=x0_hat, v=v)


SOLVER_COST = {"euler": 1, "heun": 2, "sde": 1}


def ode_step(solver: str, field: VelocityField, x: Tensor, t: float, t_next: float, v: Tensor | None = None) -> Step:
    """Dispatch a deterministic step by name (``euler`` or ``heun``); ``v`` as in the steppers."""
    if solver == "euler":
        return euler_step(field, x, t, t_next, v)
    if solver == "heun":
        return heun_step(field, x, t, t_next, v)
    raise ValueError(f"unknown ODE solver {solver!r}; choose euler or heun")


def make_g(gamma: float) -> DiffusionCoeff:
    """The default diffusion coefficient ``g(t) = sqrt(2·gamma·t)``.

    With it the score correction ``½g²ε̂/t = gamma·ε̂`` is bounded for all t, and
    ``gamma = 0`` recovers the probability-flow ODE. Larger gamma injects more noise.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be ≥ 0, got {gamma}")
    return lambda t: math.sqrt(2.0 * gamma * max(t, 0.0))


def time_grid(steps: int, shift: float = 1.0, t_max: float = 1.0, t_min: float = 0.0) -> list[float]:
    """Decreasing time grid ``t_0 = t_max > ... > t_steps = t_min``.

    ``shift = 1`` is uniform. ``shift > 1`` spends more steps at high noise with the
    resolution shift of SD3 (``t' = shift·t / (1 + (shift − 1)·t)``), which maps [0, 1]
    onto itself monotonically.

    Returns:
        ``steps + 1`` floats.
    """
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    if shift <= 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    if not 0.0 <= t_min < t_max <= 1.0:
        raise ValueError(f"need 0 ≤ t_min < t_max ≤ 1, got {t_min}, {t_max}")
    grid = []
    for i in range(steps + 1):
        u = 1.0 - i / steps
        u = shift * u / (1.0 + (shift - 1.0) * u)
        grid.append(t_min + (t_max - t_min) * u)
    grid[0], grid[-1] = t_max, t_min
    return grid
