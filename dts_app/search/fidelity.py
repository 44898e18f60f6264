"""Exact targets on the Gaussian mixture and how close samples come to them.

An algorithm that claims to sample a distribution is checked against that distribution
(tests, benchmarks, ``reproduce``):

- :func:`tilted_mixture`: the reward-tilted law ``p0(x)·exp(r(x)/τ)/Z`` when r is the
  log-density of one component, ``r(x) = log N(x; μ_c, Σ_c)``. Since
  ``N(x; μ_c, Σ_c)^{1/τ} ∝ N(x; μ_c, τ·Σ_c)``, every component k of p0 times it is again
  Gaussian: precision ``Σ_k⁻¹ + (τΣ_c)⁻¹``, mean ``Σ'(Σ_k⁻¹μ_k + (τΣ_c)⁻¹μ_c)`` and weight
  ``∝ w_k·N(μ_k; μ_c, Σ_k + τΣ_c)``. A closed-form mixture.
- :func:`constrained_samples`: exact samples of ``p0(x | D(x) > Q*)`` by rejection from exact
  mixture samples (D: distance to the nearest obstacle point, minus its radius).
- :func:`fidelity`: mode shares (argmax responsibility under p0), mean log p0, the energy
  distance to reference samples, and the largest mode-share error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..backends.mixture import GaussianMixture
from ..obstacles.field import pairwise_distance

__all__ = ["tilted_mixture", "constrained_samples", "mode_shares", "energy_distance", "fidelity", "obstacle_fidelity"]


def tilted_mixture(mix: GaussianMixture, component: int, tau: float) -> GaussianMixture:
    """``p0·N(·; μ_c, Σ_c)^{1/τ}`` normalised, in closed form (see module docstring)."""
    mp = mix.means[component]
    vp = mix.variances[component] * tau
    var = 1.0 / (1.0 / mix.variances + 1.0 / vp)
    mean = var * (mix.means / mix.variances + mp / vp)
    s = mix.variances + vp
    logw = torch.log(mix.weights) - 0.5 * (((mix.means - mp) ** 2) / s + torch.log(2 * math.pi * s)).sum(1)
    names = tuple(f"{n} (tilted)" for n in mix.names) if mix.names else ()
    return GaussianMixture(torch.softmax(logw, 0), mean, var, names)


def constrained_samples(
    mix: GaussianMixture,
    points: Tensor,
    q_star: float | Sequence[float],
    n: int,
    radius: float | Sequence[float] = 0.0,
    seed: int = 0,
) -> tuple[Tensor, float]:
    """``n`` exact samples of ``p0(x | D(x) > Q*)`` by rejection, and the acceptance rate.

    Args:
        points: ``[P, D]`` obstacle points (one per obstacle, or several).
        q_star, radius: per point (or one for all).
    """
    gen = torch.Generator().manual_seed(seed)
    pts = points.double().reshape(len(points), -1)
    q = torch.as_tensor(q_star, dtype=torch.float64).expand(len(pts))
    r = torch.as_tensor(radius, dtype=torch.float64).expand(len(pts))
    out, drawn, kept = [], 0, 0
    while kept < n:
        x, _ = mix.sample(max(4 * n, 1024), gen)
        x = x.double()
        d = (pairwise_distance(x, pts) - r).clamp_min(0.0)
        ok = (d > q).all(dim=1)
        drawn += len(x)
        kept += int(ok.sum())
        out.append(x[ok])
    return torch.cat(out)[:n], kept / drawn


def mode_shares(mix: GaussianMixture, x: Tensor) -> Tensor:
    """``[K]`` fraction of samples whose most responsible component of p0 is k."""
    if len(x) == 0:
        return torch.zeros(mix.n_components, dtype=torch.float64)
    cls = mix.responsibilities(x.double().reshape(len(x), -1), 0.0).argmax(1)
    return torch.bincount(cls, minlength=mix.n_components).double() / len(x)


def energy_distance(x: Tensor, y: Tensor) -> float:
    """The energy distance ``2E|X − Y| − E|X − X'| − E|Y − Y'|`` (≥ 0, 0 iff same law)
    between two samples (V-statistics).

    The figure is in the CLI's JSON, which must be byte-identical on every machine and
    thread count: distances come from :func:`pairwise_distance` (no matrix product), and
    the means are numpy's single-threaded pairwise sums (a torch reduction of 16 million
    distances is split across its intra-op threads, so its last bits follow their number).
    """
    x, y = x.double().reshape(len(x), -1), y.double().reshape(len(y), -1)

    def mean(a: Tensor, b: Tensor) -> float:
        return float(pairwise_distance(a, b).cpu().numpy().mean())

    return 2 * mean(x, y) - mean(x, x) - mean(y, y)


EXACT_N = 100_000  # draws behind a reference's mode shares and mean log p0
ENERGY_N = 4_000  # of those, the ones the energy distance compares with (its cost is quadratic)


@dataclass(frozen=True)
class Reference:
    """Exact samples of a target law, summarised once: ``samples`` (the first
    :data:`ENERGY_N`, for the energy distance), and ``shares`` / ``mean_log_p0`` over
    :data:`EXACT_N` draws (standard error of a share about 0.001; with 4,000 draws it was
    about 0.005, the size of the errors being measured)."""

    samples: Tensor
    shares: Tensor
    mean_log_p0: float
    acceptance: float = 1.0

    @staticmethod
    def of(mix: GaussianMixture, x: Tensor, acceptance: float = 1.0) -> Reference:
        x = x.double().reshape(len(x), -1)
        lp = float(mix.log_prob(x, 0.0).mean())
        return Reference(x[:ENERGY_N], mode_shares(mix, x), lp, acceptance)


def constrained_reference(mix, points, q_star, radius=0.0, seed: int = 0, n: int = EXACT_N) -> Reference:
    """:class:`Reference` of ``p0(x | D(x) > Q*)`` from ``n`` rejection draws."""
    x, acc = constrained_samples(mix, points, q_star, n, radius, seed)
    return Reference.of(mix, x, acc)


def fidelity(
    mix: GaussianMixture,
    x: Tensor,
    reference: Tensor | Reference,
    target_shares: Tensor | None = None,
) -> dict:
    """How samples ``x`` compare with reference samples of the target law (a tensor, or a
    :class:`Reference` whose shares and mean log p0 come from more draws).

    Returns:
        ``mode_shares`` and ``target_shares`` (lists), ``max_share_error``,
        ``mean_log_p0`` and ``target_mean_log_p0``, ``energy_distance``, ``n``.
    """
    shares = mode_shares(mix, x)
    if isinstance(reference, Reference):
        target_shares, target_lp, reference = reference.shares, reference.mean_log_p0, reference.samples
    else:
        target_lp = float(mix.log_prob(reference.double().reshape(len(reference), -1), 0.0).mean())
    target = mode_shares(mix, reference) if target_shares is None else target_shares.double()
    return {
        "mode_shares": [round(float(v), 4) for v in shares],
        "target_shares": [round(float(v), 4) for v in target],
        "max_share_error": float((shares - target).abs().max()),
        "mean_log_p0": float(mix.log_prob(x.double().reshape(len(x), -1), 0.0).mean()) if len(x) else None,
        "target_mean_log_p0": target_lp,
        "energy_distance": energy_distance(x, reference) if len(x) else None,
        "n": len(x),
    }


def obstacle_fidelity(problem, x: Tensor, baseline: Tensor | None = None) -> dict:
    """Fidelity of obstacle-avoiding samples ``x`` to ``p0(x | D > Q*)``.

    With an exact mixture (gmm) the reference is exact (:func:`constrained_reference` over
    the x0-space obstacles, 10⁵ draws): mode shares, mean log p0, energy distance and the
    cost of rejection sampling (``1/acceptance`` of plain samples). Otherwise the reference is
    rejection sampling with the same model: the ``baseline`` (plain) samples outside every
    Q*; then only the energy distance and the acceptance are reported. Empty when neither
    applies (feature-space obstacles without a baseline).
    """
    av = problem.avoidance
    mix = problem.backend.reference_mixture()
    flat = [o for o in av.obstacles if o.features is None]
    if mix is not None and flat and len(flat) == len(av.obstacles):
        pts = torch.cat([o.points.double().reshape(len(o.points), -1) for o in flat])
        q = torch.cat([torch.full((len(o.points),), float(o.q_star), dtype=torch.float64) for o in flat])
        r = torch.cat([torch.full((len(o.points),), float(o.radius), dtype=torch.float64) for o in flat])
        ref = constrained_reference(mix, pts, q, r, seed=problem.seed)
        out, acc = fidelity(mix, x.double().reshape(len(x), -1), ref), ref.acceptance
        return {**out, "reference": "exact (rejection from exact mixture samples)", "acceptance": acc,
                "rejection_nfe_ratio": 1.0 / acc if acc > 0 else None}  # fmt: skip
    if baseline is None or len(baseline) == 0:
        return {}
    _, inside = av.measure(baseline, baseline, 0.0)
    ref = baseline[~inside]
    acc = float((~inside).double().mean())
    return {
        "reference": "rejection sampling with the same model (plain samples outside every Q*)",
        "energy_distance": energy_distance(x, ref) if len(x) and len(ref) else None,
        "acceptance": acc,
        "rejection_nfe_ratio": 1.0 / acc if acc > 0 else None,
        "n": len(x),
    }
