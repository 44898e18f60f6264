"""Search over paths (Paths-n), Ma et al. 2025 §3.2, on the linear interpolant.

On the problem's time grid ``t_0 = 1 > ... > t_S = 0``, with i_σ the grid index nearest
t = σ:

1. N noises (streams ``(i,)``) are solved to ``t_{i_σ}``.
2. Each kept path is branched M times (child keys ``key + (c,)``) and re-noised *forward*
   Δf grid steps, from ``t_i`` to ``t_{i−Δf}``, with the exact kernel of the linear
   interpolant (``interpolant.renoise``: the signal is scaled by (1 − s)/(1 − t) and the
   noise topped up to variance s², so a sample of p_t becomes a sample of p_s; not the
   variance-exploding ``x + sqrt(σ_s² − σ_t²)·ξ`` of some public code).
3. Each branch is solved back Δb grid steps (Δb > Δf, so every round gains Δb − Δf steps;
   the last round stops at t = 0), its clean prediction x̂0 is scored by the search
   verifier (charged; x̂0 comes free from the velocity evaluation at the new state, which
   plays the role of the paper's "one additional denoising step"), and the N best of the
   N·M branches are kept; the others are marked ``pruned``.
4. Rounds repeat until t = 0; the survivors are the final candidates and the best is kept
   (the final best-of).

Ties in score are broken by a seeded draw per path key, never by position. A
self-supervised verifier compares the clean prediction recorded at t = 0.4 with a later
one, so rounds that end before a path has such an anchor (or at the node where it was
recorded) cannot be ranked: they are not scored (no verifier calls) and keep one child of
every kept path, drawn uniformly (seeded), so each path simply continues.

Cost (exact; :meth:`OverPaths.natural_nfe`): with f the cost of one velocity evaluation
(1, or 2 with CFG) and c·f that of one solver step, ``N·(f + i_σ·c·f)`` to reach σ, then
per round ``N·M·(f + Δb'·c·f)`` (a velocity at each re-noised state, then Δb' steps back;
the state that reaches t = 0 needs no velocity, so the last round saves ``N·M·f``);
``N·M`` verifier calls per round. Under a budget that cannot pay for the next round
and the rest of the way, the current survivors are solved straight to t = 0 instead (if
that is affordable), so the search always ends with finished candidates when it can.
"""

from __future__ import annotations

from collections.abc import Iterator

from .algorithm import SearchAlgorithm
from .engine import Engine
from .problem import Problem
from .types import Beam

__all__ = ["OverPaths"]


class OverPaths(SearchAlgorithm):
    name = "paths"

    # --- schedule ------------------------------------------------------------------------
    def _start_index(self, problem: Problem) -> int:
        grid = problem.grid
        i = min(range(len(grid)), key=lambda k: abs(grid[k] - self.config.sigma))
        return min(max(i, 1), len(grid) - 1)

    def rounds(self, problem: Problem) -> list[tuple[int, int]]:
        """``(renoise_to, solve_to)`` grid indices of every round."""
        last = len(problem.grid) - 1
        i, out = self._start_index(problem), []
        while i < last:
            f = max(i - self.config.delta_f, 0)
            b = min(f + self.config.delta_b, last)
            out.append((f, b))
            i = b
        return out

    def _round_cost(self, problem: Problem, branches: int, f: int, b: int) -> int:
        """NFEs of one round: a velocity at each re-noised state, then b − f steps
        (:meth:`Problem.solve_nfe`)."""
        return branches * (problem.forwards + problem.solve_nfe(f, b))

    @staticmethod
    def _finish_cost(problem: Problem, rows: int, i: int) -> int:
        """NFEs to solve ``rows`` paths with known velocities from grid index i to t = 0."""
        return rows * problem.solve_nfe(i, problem.last)

    def natural_nfe(self, problem: Problem) -> int:
        cfg = self.config
        i = self._start_index(problem)
        total = cfg.n * (problem.forwards + problem.solve_nfe(0, i))
        for f, b in self.rounds(problem):
            total += self._round_cost(problem, cfg.n * cfg.m, f, b)
        return total

    def fit_budget(self, problem: Problem, budget: int) -> OverPaths:
        per_n = OverPaths(self.config, n=1).natural_nfe(problem)
        return OverPaths(self.config, n=max(1, budget // per_n))

    # --- search --------------------------------------------------------------------------
    def _finish_direct(self, eng: Engine, beam: Beam) -> Iterator[None]:
        for beam in eng.solve(beam):
            yield
        eng.finish(beam)
        yield

    @staticmethod
    def _one_child_each(eng: Engine, kids: Beam) -> list[int]:
        """Without scores, keep one child of every parent, drawn uniformly (seeded by key):
        each path simply continues, and no lineage dies of chance."""
        groups: dict = {}
        for j, k in enumerate(kids.keys):  # children of one path share the key prefix
            groups.setdefault(k[:-1], []).append(j)
        return [min(js, key=lambda j: eng.tiebreak(kids.keys[j])) for js in groups.values()]

    def iterate(self, eng: Engine) -> Iterator[None]:
        cfg, p = self.config, eng.problem
        last = len(eng.grid) - 1
        n = cfg.n
        rem = eng.ledger.remaining
        if rem is not None:
            n = min(n, rem // p.path_nfe())
            if n == 0:
                eng.trace.event("skipped", reason="budget smaller than one path")
                return
        beam = eng.start([(i,) for i in range(n)])
        yield
        for beam in eng.solve(beam, self._start_index(p)):
            yield
        if len(beam) == 0:
            return
        if beam.i == last:  # σ at t = 0: nothing to branch, plain best-of-N
            eng.finish(beam)
            yield
            return
        for f, b in self.rounds(p):
            round_cost = self._round_cost(p, len(beam) * cfg.m, f, b)
            if not eng.ledger.can_afford(round_cost + self._finish_cost(p, min(len(beam) * cfg.m, cfg.n), b)):
                if eng.ledger.can_afford(self._finish_cost(p, len(beam), beam.i)):
                    eng.trace.event("finish-early", at=beam.i, reason="budget")
                    yield from self._finish_direct(eng, beam)
                return
            kids = eng.renoise(eng.branch(beam, cfg.m), f)
            yield
            for kids in eng.solve(kids, b):
                yield
            if len(kids) == 0:  # every branch pruned by an obstacle
                eng.trace.event("extinct", at=b)
                return
            if bool(eng.scorable(kids).all()) or kids.i == last:
                scores, held = eng.score(kids)
                order = eng.order(kids, scores)
                keep, drop = order[: cfg.n], order[cfg.n :]
            else:  # a self-supervised verifier before its anchor: nothing to rank by
                scores = held = None
                keep = self._one_child_each(eng, kids)
                drop = [j for j in range(len(kids)) if j not in set(keep)]
                eng.trace.event(
                    "unscored", at=b, reason="no anchor yet: the verifier compares x̂0 at t = 0.4 with later predictions"
                )
            eng.trace.set_status([kids.node_ids[j] for j in drop], "pruned")
            eng.trace.event("round", renoise_to=f, solve_to=b, kept=len(keep), branches=len(kids))
            beam = kids.take(keep)
            if beam.i == last:
                eng.finish(beam, scores[keep], None if held is None else held[keep])
            yield
