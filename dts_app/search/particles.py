"""Particle-system pieces shared by SMC steering and the SMC obstacle mode: effective
sample size, systematic resampling, and re-keying of the copies.

A particle system is a :class:`~dts_app.search.types.Beam` with log-weights ``[B]``.
Resampling draws B ancestors with probabilities ∝ exp(logw) by systematic resampling (one
uniform, B evenly spaced points: low variance, unbiased counts) and resets the weights.
Every copy gets a key of its own, ``key + (RESAMPLED, i, c)`` (i: grid index, c: copy
number), so duplicates continue with independent noise; the tag keeps these keys apart
from the children keys ``key + (c,)`` that branching makes (c < 2^30).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .types import Beam

__all__ = ["RESAMPLED", "ess", "systematic", "resample"]

RESAMPLED = 2**30


def ess(logw: Tensor) -> float:
    """Effective sample size ``(Σw)²/Σw²`` of log-weights (0 when every weight is 0)."""
    if len(logw) == 0 or not bool(torch.isfinite(logw).any()):
        return 0.0
    w = torch.softmax(logw.double(), 0)
    return float(1.0 / (w * w).sum())


def systematic(logw: Tensor, gen: torch.Generator) -> list[int]:
    """Ancestor indices ``[B]`` (sorted) by systematic resampling of ``softmax(logw)``."""
    n = len(logw)
    w = torch.softmax(logw.double(), 0)
    u = (float(torch.rand((), generator=gen, dtype=torch.float64)) + torch.arange(n, dtype=torch.float64)) / n
    cdf = torch.cumsum(w, 0)
    cdf[-1] = 1.0
    return torch.searchsorted(cdf, u, right=True).clamp_max(n - 1).tolist()


def resample(beam: Beam, logw: Tensor, gen: torch.Generator) -> tuple[Beam, list[int]]:
    """Resample ``beam`` by ``logw``; returns the new beam (uniform weights implied) and
    the ancestor index of each row. Copies are re-keyed (see module docstring)."""
    idx = systematic(logw, gen)
    out = beam.take(idx)
    copies: dict[int, int] = {}
    keys = []
    for j in idx:
        c = copies.get(j, 0)
        copies[j] = c + 1
        keys.append(beam.keys[j] + (RESAMPLED, beam.i, c))
    out.keys = keys
    return out, idx


def log_mean_exp(x: Tensor) -> float:
    """``log mean exp(x)`` (−inf for an empty or all −inf input)."""
    if len(x) == 0:
        return -math.inf
    return float(torch.logsumexp(x.double(), 0) - math.log(len(x)))
