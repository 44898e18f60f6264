"""Drivers: stream a search as snapshots or run one to the end (both through the one
:class:`~.runner.Runner`), or sample without search."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ..ledger import Budget
from .algorithm import SearchAlgorithm
from .engine import Engine
from .metrics import sample_metrics
from .problem import Problem
from .runner import Runner, RunRequest
from .types import Beam, SearchResult, Snapshot

__all__ = ["iterate_search", "run_search", "sample_paths", "sampling_metrics"]


def iterate_search(
    problem: Problem,
    algorithm: SearchAlgorithm,
    budget: Budget | int | None = None,
    stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callable[[Snapshot], None]] = (),
) -> Iterator[Snapshot]:
    """Stream a search: one :class:`Snapshot` after every step, then a final one with
    ``done=True`` and the :class:`SearchResult` (the :class:`~.runner.Runner` of a
    :class:`~.runner.RunRequest` of these parts). Budget exhaustion and stopping end the
    search cleanly with what it had found."""
    return iter(Runner(_request(problem, algorithm, budget), stop, callbacks))


def run_search(
    problem: Problem,
    algorithm: SearchAlgorithm,
    budget: Budget | int | None = None,
    stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Run a search to the end and return its result (:meth:`~.runner.Runner.run`)."""
    return Runner(_request(problem, algorithm, budget), stop).run()


def _request(problem: Problem, algorithm: SearchAlgorithm, budget: Budget | int | None) -> RunRequest:
    nfe = budget.max_nfe if isinstance(budget, Budget) else budget
    return RunRequest(problem, algorithm, nfe or None)


def sample_paths(problem: Problem, n: int, store_x0: bool = True) -> tuple[Engine, Beam]:
    """Plain sampling: ``n`` paths (streams ``(i,)``) from t = 1 to t = 0 under the
    problem's solver and avoidance; returns the engine and the beam that reached t = 0."""
    eng = Engine(problem)
    eng.trace.store_x0 = store_x0
    beam = eng.start([(i,) for i in range(n)])
    for beam in eng.solve(beam):
        pass
    return eng, beam


def sampling_metrics(eng: Engine, beam: Beam) -> dict:
    """Obstacle metrics of :func:`sample_paths` (empty without obstacles)."""
    if eng.problem.avoidance is None:
        return {}
    n_obstacles = len(eng.problem.avoidance.obstacles)
    return sample_metrics(eng.trace.nodes, beam.node_ids, beam.flags, eng.ledger.reverts, eng.ledger.denoiser_nfe, n_obstacles)
