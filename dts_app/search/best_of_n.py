"""Random search (best-of-N), the baseline of Ma et al. 2025 (§ random search).

N noises, each solved from t = 1 to t = 0 with the problem's solver, scored once by the
search verifier at t = 0; the highest score wins. Cost with S steps of a solver of c
evaluations per step: exactly ``N·S·c`` image-forwards (×2 with CFG) and N verifier calls.
Candidate i uses the stream ``(seed, i)``, so it is the same sample it would be alone.
Candidates are solved in chunks so that a budget cuts the search at a candidate boundary
when it can.
"""

from __future__ import annotations

from collections.abc import Iterator

from .algorithm import SearchAlgorithm
from .engine import Engine
from .problem import Problem


class BestOfN(SearchAlgorithm):
    name = "best-of-n"

    def natural_nfe(self, problem: Problem) -> int:
        return self.config.n * problem.path_nfe()

    def fit_budget(self, problem: Problem, budget: int) -> BestOfN:
        return BestOfN(self.config, n=max(1, budget // problem.path_nfe()))

    def iterate(self, eng: Engine) -> Iterator[None]:
        n = self.config.n
        per_path = eng.problem.path_nfe()
        # Spend the budget on whole paths: only start as many as can finish.
        rem = eng.ledger.remaining
        if rem is not None:
            n = min(n, rem // per_path)
            if n == 0:
                eng.trace.event("skipped", reason=f"budget {rem} < one path ({per_path} NFEs)")
                return
        beam = eng.start([(i,) for i in range(n)])
        yield
        for beam in eng.solve(beam):
            yield
        eng.finish(beam)
        yield
