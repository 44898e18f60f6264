"""The engine's obstacle rules that go beyond one step: the revert-and-resample retry loop
and the SMC obstacle mode's weighting and resampling. The avoidance
(:mod:`dts_app.obstacles.avoidance`) provides only pure functions of states; these run the
steps, charge the ledger and record the trace through the engine."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..interpolant import x0_from_velocity
from ..rng import stream
from .particles import ess, resample
from .types import Beam

__all__ = ["revert", "obstacle_smc"]

_OBSTACLE_SMC_DOMAIN = 5  # rng domain of the SMC obstacle mode's resampling


def revert(eng, beam: Beam, x: Tensor, v: Tensor, D: Tensor, inside: Tensor, flags: list[set]):
    """Revert-and-resample: rows that landed within Q* are redrawn from their previous
    state with a fresh stochastic step (``avoidance.revert_g``, noise from the row's
    stream), each try charged (one velocity, also counted in ``ledger.reverts``, and its obstacle check when
    the obstacles live in a feature space), up
    to ``max_reverts`` tries. A row whose tries all land inside continues from the try
    with the largest D, flagged ``revert_exhausted``. Rejected tries are recorded as
    ``reverted`` nodes."""
    av = eng.problem.avoidance
    tn = eng.grid[beam.i + 1]
    x, v, D, inside = x.clone(), v.clone(), D.clone(), inside.clone()  # inside: [B, O], per obstacle
    rows = [j for j in range(len(beam)) if bool(inside[j].any())]
    tries = {j: [(x[j].clone(), v[j].clone(), float(D[j]), inside[j].clone())] for j in rows}  # copies: row j is replaced below
    pending = list(rows)
    for _ in range(av.max_reverts):
        if not pending:
            break
        st = eng.step(beam.take(pending), True, g=av.revert_g)
        eng.ledger.charge_revert(len(pending))
        vt = eng.velocity(st.x, tn)
        dt, it = eng._measure(x0_from_velocity(st.x, vt, tn), st.x, tn)  # feature-space checks are charged
        for r, j in enumerate(pending):
            tries[j].append((st.x[r], vt[r], float(dt[r]), it[r]))
        pending = [j for j in pending if bool(tries[j][-1][3].any())]
    for j in rows:
        if bool(tries[j][-1][3].any()):
            keep = max(range(len(tries[j])), key=lambda k: tries[j][k][2])
            flags[j].add("revert_exhausted")
        else:
            keep = len(tries[j]) - 1
        x[j], v[j], D[j], inside[j] = tries[j][keep]
        for k, (xf, vf, df, inf) in enumerate(tries[j]):
            if k != keep:
                anchor = None if beam.anchor is None else beam.anchor[j : j + 1]
                eng.record([beam.node_ids[j]], beam.i + 1, xf[None], vf[None], [beam.keys[j]], anchor,
                             "reverted", torch.tensor([df]), inf[None])  # fmt: skip
    return x, v, D, inside


def obstacle_smc(eng, beam: Beam, x0: Tensor, inside: Tensor) -> Beam:
    """The SMC obstacle mode after a step: weight by ``φ_t/φ_{t−1}`` with
    ``φ = exp(log_potential)``, and at t = 0 by ``1[D > Q*]/φ_{t−1}`` (the product
    telescopes to the hard constraint); resample when the ESS falls below
    ``ess_threshold·B`` and always at t = 0 (a row without weight is never drawn)."""
    av, n = eng.problem.avoidance, len(beam)
    aux = dict(beam.aux or {})
    prev = aux.get("logphi", torch.zeros(n, dtype=torch.float64))
    final = beam.i == len(eng.grid) - 1
    if final:
        now = torch.where(inside.any(dim=1), torch.tensor(-math.inf, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
    else:
        now = av.log_potential(x0, beam.x, eng.grid[beam.i])
    aux["logphi"] = now
    beam.aux = aux
    logw = (beam.logw if beam.logw is not None else torch.zeros(n, dtype=torch.float64)) + (now - prev)
    beam.logw = logw
    e = ess(logw)
    if not (final or e < eng.problem.ess_threshold * n):
        return beam
    eng.trace.event("obstacle-smc", i=beam.i, t=eng.grid[beam.i], ess=e, resampled=True)
    if not bool(torch.isfinite(logw).any()):
        eng.trace.set_status(beam.node_ids, "pruned")
        return beam.take([])
    if eng.obstacle_gen is None:
        eng.obstacle_gen = stream(eng.problem.seed, domain=_OBSTACLE_SMC_DOMAIN)
    new, idx = resample(beam, logw, eng.obstacle_gen)
    kept = set(idx)
    # rows left without offspring are "resampled" at t = 0 too: they were not pruned (the prune
    # mode's count), the final resampling drew other rows (every row inside Q* among them)
    eng.trace.set_status([beam.node_ids[j] for j in range(n) if j not in kept], "resampled")
    new.logw = torch.zeros(len(new), dtype=torch.float64)
    return new
