"""VP (variance-preserving) models in the linear-interpolant convention, and
classifier-free guidance.

Shared by the class-conditional DiT (:mod:`dts_app.backends.dit`) and the SD-UNet family
of :mod:`dts_app.backends.t2i`: both are ε- (or v-) prediction models trained on the VP
path ``x_vp = sqrt(ᾱ)·x0 + sqrt(1 − ᾱ)·ε``, while the search runs on the linear
interpolant ``x_t = (1 − t)·x0 + t·ε`` of :mod:`dts_app.interpolant` (DESIGN §3).

The conversion, for a state ``x_t`` at linear time ``t``::

    r = sqrt((1 − t)² + t²),  a = (1 − t)/r = sqrt(ᾱ),  b = t/r = sqrt(1 − ᾱ)
    x_vp = (a + b)·x_t = x_t / r                      (the VP state with that ᾱ)
    τ    = the model timestep whose ᾱ_τ = a²         (from the scheduler's ᾱ table)
    ε̂    = model(x_vp, τ)  (learned-σ channels dropped; CFG applied to ε̂)
    x̂0   = (x_vp − b·ε̂)/a,   v = (x_t − x̂0)/t  (= ε̂ − x̂0 for t inside the table)

The timestep τ is *continuous*: ``−log ᾱ`` is interpolated linearly between the table's
neighbouring integer timesteps (exact at table entries). Beyond the table's last ᾱ (t
closer to 1 than the model was trained on, e.g. the grid's first point t = 1) the model is
evaluated at its last timestep ``T − 1`` with ``(a, b)`` of that timestep, and ``x̂0`` is
turned into the velocity at the true ``t`` through ``v = (x_t − x̂0)/t``, so
``x̂0 = x_t − t·v`` holds exactly everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..interpolant import as_time, vp_to_linear
from .hf import HFLoadError

__all__ = ["timestep_from_alpha_bar", "VPTable", "cfg_combine"]


def timestep_from_alpha_bar(alpha_bar: Tensor, table: Tensor) -> Tensor:
    """Continuous model timestep τ with ``ᾱ_τ = alpha_bar`` from a decreasing ᾱ table.

    ``−log ᾱ`` is interpolated linearly between integer timesteps; values outside the table
    clamp to ``[0, T − 1]``.

    Args:
        alpha_bar: target ᾱ values, any shape.
        table: ``alphas_cumprod`` ``[T]``, strictly decreasing.

    Returns:
        τ of ``alpha_bar``'s shape, float, in ``[0, T − 1]``.
    """
    ell = -torch.log(table.to(alpha_bar.dtype))
    target = -torch.log(alpha_bar.clamp_min(1e-30))
    i = torch.searchsorted(ell, target.reshape(-1).contiguous()).clamp(1, len(ell) - 1)
    lo, hi = ell[i - 1], ell[i]
    tau = (i - 1).to(alpha_bar.dtype) + (target.reshape(-1) - lo) / (hi - lo)
    return tau.clamp(0, len(ell) - 1).reshape(alpha_bar.shape)


class VPTable:
    """A VP model's ᾱ table and the exact state/prediction conversions to the linear path.

    Args:
        alphas_cumprod: the scheduler's ``alphas_cumprod`` ``[T]``.
        device: where the conversions run (the model's device).

    Attributes:
        table: ``alphas_cumprod`` in float64 on ``device``.
        t_min, t_max: the linear times of the table's first and last ᾱ; states outside
            ``[t_min, t_max]`` are evaluated at the nearest end (see the module docstring).
    """

    def __init__(self, alphas_cumprod: Tensor, device: torch.device):
        self.table = alphas_cumprod.to(device=device, dtype=torch.float64)
        self.t_max = float(vp_to_linear(self.table[-1]))
        self.t_min = float(vp_to_linear(self.table[0]))

    def to_vp(self, x_t: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(x_vp, τ [B], a, b)`` for linear states ``x_t`` ``[B, ...]`` at time ``t``.

        ``a``, ``b`` broadcast against ``x_t``; ``t`` is clamped to the table's range.
        """
        tb = as_time(t, x_t).clamp(self.t_min, self.t_max)
        r = torch.sqrt((1 - tb) ** 2 + tb**2)
        a, b = (1 - tb) / r, tb / r
        tau = timestep_from_alpha_bar((a.reshape(-1).double()) ** 2, self.table).to(x_t.dtype)
        return x_t / r, tau, a, b

    @staticmethod
    def x0_from_output(x_vp: Tensor, out: Tensor, a: Tensor, b: Tensor, prediction_type: str) -> Tensor:
        """Clean prediction from a VP model output (``epsilon`` or ``v_prediction``).

        ε: ``x̂0 = (x_vp − b·ε̂)/a``; v (Salimans & Ho, ``v = a·ε − b·x0``): ``x̂0 = a·x_vp − b·v̂``.
        """
        if prediction_type == "epsilon":
            return (x_vp - b * out) / a
        if prediction_type == "v_prediction":
            return a * x_vp - b * out
        raise HFLoadError(f"unsupported prediction_type {prediction_type!r} (epsilon, v_prediction)")

    @staticmethod
    def velocity(x_t: Tensor, x0: Tensor, t: float | Tensor) -> Tensor:
        """``v = (x_t − x̂0)/t`` at the true time ``t`` (so ``x̂0 = x_t − t·v`` exactly)."""
        return (x_t - x0) / as_time(t, x_t)


def cfg_combine(out_c: Tensor, out_u: Tensor, guidance: float) -> Tensor:
    """Classifier-free guidance ``u + w·(c − u)`` of a conditional output ``out_c`` and an
    unconditional one ``out_u`` (ε̂, v̂ or velocity alike: the combination is linear).

    ``guidance`` = 1 returns the conditional output (up to rounding); callers skip the
    unconditional half entirely in that case.
    """
    return out_u + guidance * (out_c - out_u)
