"""Sequential Monte Carlo steering: Feynman–Kac steering (Singhal et al. 2025, "A General
Framework for Inference-time Scaling and Steering of Diffusion Models", code
zacharyhorvitz/Fk-Diffusion-Steering) on the problem's time grid.

N particles (streams ``(i,)``) step together with the reverse SDE (``g(t)² = 2γt``,
γ = ``sde_gamma`` > 0). At every scored step k (every ``resample_every`` grid steps while
``resample_until < t ≤ resample_from``, and always at t = 0) the search verifier scores each
particle's clean prediction x̂0 (charged: N verifier calls), r_k, and the particle's
log-weight grows by ``log G_k``, with τ = ``temperature``:

- ``difference``: ``log G_k = (r_k − r_{k−1})/τ`` (r before the first scored step: 0). The
  product telescopes to ``exp(r(x0)/τ)``, so the particles target ``p0(x)·exp(r(x)/τ)``;
- ``max``: ``log G_k = max_{j≤k} r_j / τ``;
- ``add``: ``log G_k = Σ_{j≤k} r_j / τ``.

For ``max`` and ``add`` the potential at t = 0 is ``exp(r(x0)/τ) / Π_k G_k`` over the
particle's lineage (Singhal et al. 2025, §3: the final potential divides by the product of
the intermediate ones), so the product of all potentials is ``exp(r(x0)/τ)`` for every
choice and the particles target ``p0(x)·exp(r(x)/τ)``; the intermediate potentials only
shape the path. (The reference code, ``fkd_class.py``, divides ``exp(λ·r̃)`` by that
product with r̃ the running max or sum rather than r(x0); we follow the paper's
definition, which the tests compare with the closed-form tilted law.)

When the effective sample size ``(Σw)²/Σw²`` falls below ``ess_threshold·N`` the particles
are resampled (systematic resampling, from the run's own stream, ``rng`` domain 4) and
their weights reset; copies continue with streams of their own
(:mod:`dts_app.search.particles`). At t = 0 they are always resampled by their final
weights, so the finals are unweighted samples of the target. The trace records every
particle's lineage (a node's parent is its ancestor's node), marks particles left without
offspring ``resampled``, and logs the ESS of every scored step (events ``smc``).

The answer is the best final particle; every final particle is a candidate. Cost: exactly
``N·S`` NFEs (one evaluation per SDE step, ×2 with CFG) and N verifier calls per scored
step. A self-supervised verifier scores only once every particle has its anchor.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from ..rng import stream
from .algorithm import SearchAlgorithm
from .engine import Engine
from .particles import ess, resample
from .problem import Problem
from .types import Beam

__all__ = ["SMC"]

_RESAMPLE_DOMAIN = 4


def scored_steps(problem: Problem, every: int, t_from: float, t_until: float) -> set[int]:
    """Grid indices where SMC scores (and may resample): every ``every`` steps inside the
    window ``t_until < t ≤ t_from``, and the last (t = 0)."""
    out = {problem.last}
    for i in range(every, problem.last, every):
        if t_until < problem.grid[i] <= t_from + 1e-12:
            out.add(i)
    return out


class SMC(SearchAlgorithm):
    name = "smc"

    def natural_nfe(self, problem: Problem) -> int:
        return self.config.n * problem.steps * problem.forwards

    def fit_budget(self, problem: Problem, budget: int) -> SMC:
        return SMC(self.config, n=max(1, budget // (problem.steps * problem.forwards)))

    def potential(self, s: torch.Tensor, beam: Beam, final: bool = False) -> torch.Tensor:
        """``log G`` of the scores ``s`` (updates the rows' reward memory in ``beam.aux``);
        ``final``: the potential at t = 0 (see module docstring)."""
        aux, tau = beam.aux, self.config.temperature
        kind = self.config.potential
        if kind == "difference":
            lg = (s - aux["r_last"]) / tau
        elif final:
            lg = s / tau - aux["log_prod"]
        elif kind == "max":
            aux["r_max"] = torch.maximum(aux["r_max"], s)
            lg = aux["r_max"] / tau
        else:
            aux["r_sum"] = aux["r_sum"] + s
            lg = aux["r_sum"] / tau
        aux["r_last"] = s.clone()
        lg = lg.double()
        aux["log_prod"] = aux["log_prod"] + lg
        return lg

    def iterate(self, eng: Engine) -> Iterator[None]:
        cfg, p = self.config, eng.problem
        if p.sde_gamma <= 0:
            from ..config import ConfigError

            raise ConfigError("--sde-gamma: smc needs γ > 0 (its particles must be random continuations)")
        per_path = p.steps * p.forwards
        n = cfg.n
        if eng.ledger.remaining is not None:
            n = min(n, eng.ledger.remaining // per_path)
            if n == 0:
                eng.trace.event("skipped", reason="budget smaller than one path")
                return
        gen = stream(p.seed, domain=_RESAMPLE_DOMAIN)
        when = scored_steps(p, cfg.resample_every, cfg.resample_from, cfg.resample_until)
        beam = eng.start([(i,) for i in range(n)])
        zero = torch.zeros(n)
        beam.logw = zero.double()
        beam.aux = {"r_last": zero.clone(), "r_max": torch.full((n,), -math.inf), "r_sum": zero.clone()}
        beam.aux["log_prod"] = zero.double()  # Σ log G over each particle's lineage
        yield
        s = h = None
        while beam.i < p.last and len(beam):
            beam = eng.advance(beam, stochastic=True)
            s = h = None
            if beam.i in when and len(beam) and bool(eng.scorable(beam).all()):
                s, h = eng.score(beam)
                final = beam.i == p.last
                beam.logw = beam.logw + self.potential(s, beam, final)
                e = ess(beam.logw)
                go = final or e < cfg.ess_threshold * len(beam)
                eng.trace.event("smc", i=beam.i, t=eng.grid[beam.i], ess=e, resampled=go)
                if go:
                    beam, s, h = self._resample(eng, beam, gen, s, h)
            yield
        if len(beam) and beam.i == p.last:
            if s is None:  # t = 0 not scored (no anchors): score now
                s, h = eng.score(beam)
            eng.finish(beam, s, h)
        yield

    @staticmethod
    def _resample(eng: Engine, beam: Beam, gen: torch.Generator, s, h):
        if not bool(torch.isfinite(beam.logw).any()):
            eng.trace.set_status(beam.node_ids, "pruned")
            eng.trace.event("extinct", i=beam.i, reason="every particle has weight 0")
            return beam.take([]), None, None
        new, idx = resample(beam, beam.logw, gen)
        dropped = sorted(set(range(len(beam))) - set(idx))
        eng.trace.set_status([beam.node_ids[j] for j in dropped], "resampled")
        new.logw = torch.zeros(len(new), dtype=torch.float64)
        it = torch.as_tensor(idx, dtype=torch.long)
        return new, s[it], None if h is None else h[it]
