"""Distances and the repulsive potential of an obstacle (robot path planning's potential
field, after Khatib 1986, as proposed for diffusion in the blog post this app grew from).

For a distance D from the path state to the nearest obstacle point, strength η and
influence radius Q*::

    U_rep(D) = ½·η·(1/D − 1/Q*)²    for D ≤ Q*
             = 0                     for D > Q*
    dU/dD    = −η·(1/D − 1/Q*)/D²   for D ≤ Q*, else 0

U_rep is zero with zero slope at D = Q* (so the field switches on smoothly) and grows
without bound as D → 0. To keep it finite, D is clamped below by the floor
``D_floor = FLOOR_FRACTION·Q*`` (5% of Q*) before U or its derivative is evaluated:
``U(D_floor) = ½·η·(19/Q*)²``, never inf or nan.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "FLOOR_FRACTION", "clamp_distance", "pairwise_distance", "u_rep", "du_rep_dd", "nearest_distance", "away_from_nearest", "repulsion_gradient",
]  # fmt: skip

FLOOR_FRACTION = 0.05


def clamp_distance(d: Tensor, q_star: float) -> Tensor:
    """``max(D, FLOOR_FRACTION·Q*)``."""
    return d.clamp_min(FLOOR_FRACTION * q_star)


def u_rep(d: Tensor, eta: float, q_star: float) -> Tensor:
    """The repulsive potential ``U_rep(D)`` (elementwise, D floored)."""
    dc = clamp_distance(d, q_star)
    u = 0.5 * eta * (1.0 / dc - 1.0 / q_star) ** 2
    return torch.where(d <= q_star, u, torch.zeros_like(u))


def du_rep_dd(d: Tensor, eta: float, q_star: float) -> Tensor:
    """``dU_rep/dD`` (≤ 0 inside Q*, 0 outside; evaluated at the floored D)."""
    dc = clamp_distance(d, q_star)
    g = -eta * (1.0 / dc - 1.0 / q_star) / dc**2
    return torch.where(d <= q_star, g, torch.zeros_like(g))


def pairwise_distance(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances ``[len(a), len(b)]`` between the rows of ``a`` and ``b``, from
    the differences themselves. ``torch.cdist`` switches to a matrix product above 25
    rows, whose last bits depend on the CPU's BLAS code path (MKL differs between AMD and
    Intel), so a collision at exactly Q* or a reported distance would differ between
    machines; this one is the same everywhere."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def nearest_distance(y: Tensor, points: Tensor, radius: float = 0.0) -> tuple[Tensor, Tensor]:
    """Distance of each row of ``y`` to the nearest of ``points`` (minus ``radius``, ≥ 0).

    Args:
        y: ``[B, F]`` states in the obstacle's space (flattened), or ``[B, K, F]``: a set of
            K local features per row (a feature map's cells), whose nearest member counts.
        points: ``[P, F]`` obstacle points.
        radius: ball radius (0 for points).

    Returns:
        ``(D [B], nearest [B, F])``: the distance and the nearest point of each row.
    """
    rows, k = len(y), (y.shape[1] if y.dim() == 3 else 1)
    d = pairwise_distance(y.reshape(rows * k, -1).double(), points.double()).view(rows, k * len(points))
    dmin, idx = d.min(dim=1)  # over the set and the points at once
    return (dmin - radius).clamp_min(0.0).to(y.dtype), points[idx % len(points)].to(y.dtype)


def repulsion_gradient(y: Tensor, points: Tensor, eta: float, q_star: float, radius: float = 0.0) -> Tensor:
    """Closed-form ``∇_y U_rep(D(y))`` for point/ball obstacles in y's own space.

    ``∇_y D = (y − p*)/‖y − p*‖`` for the nearest point p*, so
    ``∇_y U = dU/dD · (y − p*)/‖y − p*‖``; it points towards the obstacle (descending U
    moves away). Rows outside Q* get zero.
    """
    d, away = away_from_nearest(y, points, radius)
    return du_rep_dd(d, eta, q_star).unsqueeze(1) * away


def away_from_nearest(y: Tensor, points: Tensor, radius: float = 0.0) -> tuple[Tensor, Tensor]:
    """``(D [B], unit vectors [B, F])``: each row's distance to the nearest point and the
    direction from that point to the row, ``∇_y D`` (the way a repulsion pushes)."""
    d, nearest = nearest_distance(y, points.to(y.dtype), radius)
    away = y - nearest
    return d, away / away.norm(dim=1, keepdim=True).clamp_min(1e-12)
