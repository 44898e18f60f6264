"""The one time convention of DTS Explorer: the linear (rectified-flow) interpolant.

t ∈ [0, 1], t = 0 is data, t = 1 is noise::

    x_t = (1 − t)·x0 + t·ε,            ε ~ N(0, I)
    v(x_t, t) = E[ε − x0 | x_t]         (sampling integrates dx/dt = v from t = 1 to t = 0)
    x̂0 = x_t − t·v                      (clean prediction)
    ε̂  = x_t + (1 − t)·v                (noise prediction)
    ∇log p_t(x) = −ε̂ / t                (score)

Every backend converts its own parametrisation to this one exactly once (see
:func:`vp_to_linear`). All functions broadcast a scalar or per-sample ``t`` against a
batch ``x`` of shape ``[B, *latent_shape]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "as_time",
    "interpolate",
    "x0_from_velocity",
    "eps_from_velocity",
    "velocity_from_x0",
    "velocity_from_eps",
    "velocity_from_x0_eps",
    "score_from_velocity",
    "velocity_from_score",
    "renoise",
    "renoise_std",
    "vp_to_linear",
    "linear_to_vp",
]


def as_time(t: float | Tensor, x: Tensor) -> Tensor:
    """Broadcast ``t`` (a float, a 0-d tensor or a ``[B]`` tensor) to ``[B, 1, ..., 1]``.

    Args:
        t: time value(s) in [0, 1].
        x: the batch ``[B, *shape]`` the time belongs to.

    Returns:
        A tensor of ``x``'s dtype and device that broadcasts against ``x``.
    """
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"t must be a scalar or have shape [{x.shape[0]}], got {tuple(t.shape)}")
    return t.reshape(-1, *([1] * (x.ndim - 1)))


def interpolate(x0: Tensor, eps: Tensor, t: float | Tensor) -> Tensor:
    """``x_t = (1 − t)·x0 + t·ε``."""
    tb = as_time(t, x0)
    return (1 - tb) * x0 + tb * eps


def x0_from_velocity(x_t: Tensor, v: Tensor, t: float | Tensor) -> Tensor:
    """Clean prediction ``x̂0 = x_t − t·v``."""
    return x_t - as_time(t, x_t) * v


def eps_from_velocity(x_t: Tensor, v: Tensor, t: float | Tensor) -> Tensor:
    """Noise prediction ``ε̂ = x_t + (1 − t)·v``."""
    return x_t + (1 - as_time(t, x_t)) * v


def velocity_from_x0(x_t: Tensor, x0: Tensor, t: float | Tensor) -> Tensor:
    """``v = (x_t − x̂0) / t`` (undefined at t = 0)."""
    return (x_t - x0) / as_time(t, x_t)


def velocity_from_eps(x_t: Tensor, eps: Tensor, t: float | Tensor) -> Tensor:
    """``v = (ε̂ − x_t) / (1 − t)`` (undefined at t = 1)."""
    return (eps - x_t) / (1 - as_time(t, x_t))


def velocity_from_x0_eps(x0: Tensor, eps: Tensor) -> Tensor:
    """``v = ε̂ − x̂0``: the velocity from a consistent pair of predictions."""
    return eps - x0


def score_from_velocity(x_t: Tensor, v: Tensor, t: float | Tensor) -> Tensor:
    """``∇log p_t(x) = −ε̂ / t`` (undefined at t = 0)."""
    return -eps_from_velocity(x_t, v, t) / as_time(t, x_t)


def velocity_from_score(x_t: Tensor, score: Tensor, t: float | Tensor) -> Tensor:
    """Inverse of :func:`score_from_velocity`: ``ε̂ = −t·score``, ``v = (ε̂ − x_t)/(1 − t)``."""
    tb = as_time(t, x_t)
    return (-tb * score - x_t) / (1 - tb)


def renoise_std(t: float, s: float) -> float:
    """Standard deviation of the fresh noise in the forward kernel from t to s ≥ t."""
    if not 0.0 <= t <= s <= 1.0:
        raise ValueError(f"re-noising needs 0 ≤ t ≤ s ≤ 1, got t={t}, s={s}")
    if t == 1.0:
        if s != 1.0:
            raise ValueError("cannot re-noise from t = 1")
        return 0.0
    carried = (1 - s) * t / (1 - t)
    return math.sqrt(max(s * s - carried * carried, 0.0))


def renoise(x_t: Tensor, t: float, s: float, xi: Tensor) -> Tensor:
    """Exact forward re-noising kernel of the linear interpolant, from t to s ≥ t.

    ``x_s = ((1 − s)/(1 − t))·x_t + sqrt(s² − ((1 − s)·t/(1 − t))²)·ξ`` with ξ ~ N(0, I).
    If ``x_t ~ p_t`` then ``x_s ~ p_s``: the signal is scaled from (1 − t) to (1 − s)
    and the noise is topped up from variance ((1 − s)t/(1 − t))² to s².

    Args:
        x_t: states at time t, ``[B, *shape]``.
        t: current time.
        s: target time, ``t ≤ s ≤ 1``.
        xi: standard normal noise of ``x_t``'s shape.
    """
    std = renoise_std(t, s)
    scale = 1.0 if t == 1.0 else (1 - s) / (1 - t)
    return scale * x_t + std * xi


def vp_to_linear(alpha_bar: Tensor | float) -> Tensor:
    """Time of the linear interpolant that matches a VP state with ``ᾱ``.

    A VP state ``x_vp = a·x0 + b·ε`` with ``a = sqrt(ᾱ)``, ``b = sqrt(1 − ᾱ)`` equals
    ``(a + b)·x_t`` with ``t = b/(a + b)``. The state conversion is ``x_t = x_vp/(a + b)``.
    """
    alpha_bar = torch.as_tensor(alpha_bar, dtype=torch.float64)
    a, b = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    return b / (a + b)


def linear_to_vp(t: Tensor | float) -> Tensor:
    """Inverse of :func:`vp_to_linear`: ``ᾱ = (1 − t)² / ((1 − t)² + t²)``."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return (1 - t) ** 2 / ((1 - t) ** 2 + t**2)
