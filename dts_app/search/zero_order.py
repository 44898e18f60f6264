"""Zero-order search (ZO-n), Ma et al. 2025 §3.2.

1. A pivot noise ``n0`` (stream ``(0,)``) is solved to t = 0 and scored.
2. Each iteration k = 1..K draws N neighbours of the pivot, each from its own stream
   ``(k, j)``, by the Gaussian-preserving move (preconditioned Crank–Nicolson)::

       n' = cos(λ)·pivot + sin(λ)·ξ,   ξ ~ N(0, I)

   If the pivot is N(0, I), so is every neighbour, in any dimension. In high dimension ξ
   is nearly orthogonal to the pivot and of the same norm, so every neighbour lies at angle
   ≈ λ from the pivot on the same shell: the neighbourhood ``S_n^λ`` of the paper with d
   the angle. In low dimension the neighbours are distinct and their norms differ from
   the pivot's, which the search needs: on trap (2-D) only noises with norm between about
   1.5 and 3.0 reach the prize, and an exact rotation (norm locked, and in 2-D only two
   neighbours at each angle) could not leave the pivot's shell (hit rate 0 of 12 seeds at
   1,024 NFEs, against 11 of 12 for this move; docs/search.md).
3. The neighbours are solved to t = 0 and scored; the pivot moves to the best neighbour
   ("find the best candidate, update it to be the pivot", Ma et al.), even when it scores
   below the pivot. The answer is the best sample seen over all iterations.

Cost with S steps of a solver with c evaluations per step: ``(1 + K·N)·S·c`` NFEs and
``1 + K·N`` verifier calls. :meth:`ZeroOrder.fit_budget` spends the whole budget: K is
the number of iterations the budget's paths fill, the last one with fewer neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .algorithm import SearchAlgorithm
from .engine import Engine
from .problem import Problem

__all__ = ["ZeroOrder"]


def neighbours(pivot: torch.Tensor, xi: torch.Tensor, lam: float) -> torch.Tensor:
    """Neighbours ``[N, *shape]`` of ``pivot`` ``[*shape]``: ``cos(λ)·pivot + sin(λ)·ξ``
    for each row ξ of ``xi`` ``[N, *shape]`` (see module docstring)."""
    return math.cos(lam) * pivot.unsqueeze(0) + math.sin(lam) * xi


class ZeroOrder(SearchAlgorithm):
    name = "zero-order"

    def natural_nfe(self, problem: Problem) -> int:
        return (1 + self.config.iterations * self.config.n) * problem.path_nfe()

    def fit_budget(self, problem: Problem, budget: int) -> ZeroOrder:
        """N neighbours (at most ``budget``'s paths less the pivot) and as many iterations
        as the remaining paths fill; the budget trims the last one (all of it is spent)."""
        paths = budget // problem.path_nfe()
        n = min(self.config.n, max(1, paths - 1))
        return ZeroOrder(self.config, n=n, iterations=max(1, -(-(paths - 1) // n)))

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
        for k in range(1, cfg.iterations + 1):
            n = cfg.n
            rem = eng.ledger.remaining
            if rem is not None:
                n = min(n, rem // per_path)
                if n == 0:
                    return
            keys = [(k, j) for j in range(n)]
            xi = eng.noise(keys)
            noises = neighbours(pivot_noise, xi, cfg.lam)
            beam = eng.start(keys, x=noises)
            yield
            for beam in eng.solve(beam):
                yield
            finals = eng.finish(beam)  # pruned neighbours are missing; keys name the rest
            if not finals:
                yield
                continue
            top = max(finals, key=lambda c: c.score)
            improved = top.score > pivot_score
            pivot_noise, pivot_score = noises[top.key[1]].clone(), top.score
            eng.trace.event("pivot", iteration=k, node=top.node_id, score=pivot_score, improved=improved)
            yield
