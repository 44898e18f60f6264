"""Zero-order search (ZO-n), Ma et al. 2025 §3.2.

1. A pivot noise ``n0`` (stream ``(0,)``) is solved to t = 0 and scored.
2. Each iteration k = 1..K draws N neighbours of the pivot on the noise sphere::

       n' = cos(λ)·pivot + sin(λ)·ξ,    ξ ~ N(0, I) from stream (k, j)

   If the pivot is N(0, I) and ξ is independent, n' is N(0, I) too (a rotation in the
   plane of the two), so neighbours stay plausible Gaussian noises; λ is the angle
   between pivot and neighbour directions in expectation (their correlation is cos λ).
3. The neighbours are solved to t = 0 and scored; the pivot moves to the best neighbour if
   it scores higher than the pivot, otherwise it stays (and the next iteration draws new
   neighbours around it).

Cost with S steps of a solver with c evaluations per step: ``(1 + K·N)·S·c`` NFEs and
``1 + K·N`` verifier calls. Under a budget only whole batches of neighbours that can
finish are started.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from .algorithm import SearchAlgorithm
from .engine import Engine
from .problem import Problem

__all__ = ["ZeroOrder"]


class ZeroOrder(SearchAlgorithm):
    name = "zero-order"

    def natural_nfe(self, problem: Problem) -> int:
        return (1 + self.config.iterations * self.config.n) * problem.path_nfe()

    def fit_budget(self, problem: Problem, budget: int) -> ZeroOrder:
        paths = budget // problem.path_nfe()
        n = min(self.config.n, max(1, paths - 1))
        return ZeroOrder(self.config, n=n, iterations=max(1, (paths - 1) // n))

    def iterate(self, eng: Engine) -> Iterator[None]:
        cfg = self.config
        per_path = eng.problem.path_nfe()
        if not eng.ledger.can_afford(per_path):
            eng.trace.event("skipped", reason="budget smaller than one path")
            return
        beam = eng.start([(0,)])
        pivot_noise = beam.x[0].clone()
        yield
        for beam in eng.solve(beam):
            yield
        done = eng.finish(beam)  # empty if an obstacle pruned the pivot's path
        pivot_score = done[0].score if done else -math.inf
        eng.trace.event("pivot", iteration=0, node=done[0].node_id if done else None, score=pivot_score)
        yield
        c, s = math.cos(cfg.lam), math.sin(cfg.lam)
        for k in range(1, cfg.iterations + 1):
            n = cfg.n
            rem = eng.ledger.remaining
            if rem is not None:
                n = min(n, rem // per_path)
                if n == 0:
                    return
            keys = [(k, j) for j in range(n)]
            xi = eng.noise(keys)
            noises = c * pivot_noise.unsqueeze(0) + s * xi
            beam = eng.start(keys, x=noises)
            yield
            for beam in eng.solve(beam):
                yield
            finals = eng.finish(beam)  # pruned neighbours are missing; keys name the rest
            if not finals:
                yield
                continue
            top = max(finals, key=lambda c: c.score)
            moved = top.score > pivot_score
            if moved:
                pivot_noise, pivot_score = noises[top.key[1]].clone(), top.score
            eng.trace.event("pivot", iteration=k, node=top.node_id, score=pivot_score, moved=moved)
            yield
