"""Zero-order search (ZO-n), Ma et al. 2025 §3.2.

1. A pivot noise ``n0`` (stream ``(0,)``) is solved to t = 0 and scored.
2. Each iteration k = 1..K draws N neighbours of the pivot: the pivot rotated by exactly
   the angle λ in a random plane through it::

       u = ξ − (ξ·p̂)·p̂,  û = u/‖u‖,  n' = ‖pivot‖·(cos(λ)·p̂ + sin(λ)·û),
       p̂ = pivot/‖pivot‖,  ξ ~ N(0, I) from stream (k, j)

   Every neighbour has the pivot's norm and lies at angle λ from it, in any dimension. If
   the pivot is N(0, I), so is every neighbour (its norm is the pivot's and its direction
   is uniform). The older recipe ``cos(λ)·pivot + sin(λ)·ξ`` also keeps N(0, I), but its
   angle to the pivot is λ only in high dimension (where ξ is nearly orthogonal to the
   pivot and of the same norm); in 2-D it varies from 0 to π.
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

import torch

from .algorithm import SearchAlgorithm
from .engine import Engine
from .problem import Problem

__all__ = ["ZeroOrder"]


def rotate(pivot: torch.Tensor, xi: torch.Tensor, c: float, s: float) -> torch.Tensor:
    """Neighbours ``[N, *shape]``: ``pivot`` rotated by the angle with cosine ``c`` and sine
    ``s`` in the plane spanned by it and each row of ``xi`` (see module docstring)."""
    p = pivot.reshape(1, -1).double()
    x = xi.reshape(len(xi), -1).double()
    norm = p.norm()
    ph = p / norm.clamp_min(1e-30)
    u = x - (x @ ph.T) * ph
    uh = u / u.norm(dim=1, keepdim=True).clamp_min(1e-30)
    out = norm * (c * ph + s * uh)
    return out.to(xi.dtype).reshape(xi.shape)


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
            noises = rotate(pivot_noise, xi, c, s)
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
