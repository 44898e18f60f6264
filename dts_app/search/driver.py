"""Drivers: stream a search as snapshots, run one to the end, or sample without search."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ..ledger import Budget, BudgetExceeded
from .algorithm import SearchAlgorithm
from .engine import Engine
from .metrics import sample_metrics
from .problem import Problem
from .types import Beam, NonFiniteError, SearchResult, SearchStopped, Snapshot

__all__ = ["iterate_search", "run_search", "sample_paths", "sampling_metrics"]


def iterate_search(
    problem: Problem,
    algorithm: SearchAlgorithm,
    budget: Budget | int | None = None,
    stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callable[[Snapshot], None]] = (),
) -> Iterator[Snapshot]:
    """Stream a search: one :class:`Snapshot` after every step, then a final one with
    ``done=True`` and the :class:`SearchResult`. Budget exhaustion and stopping end the
    search cleanly with what it had found."""
    eng = Engine(problem, budget, stop, callbacks)
    message, error = "finished", None
    try:
        for _ in algorithm.iterate(eng):
            yield eng.snapshot()
            eng.check_stop()
    except BudgetExceeded:
        message = "budget exhausted"
    except SearchStopped:
        message = "stopped"
    except NonFiniteError as e:
        message = error = str(e)
    res = eng.result(message)
    res.error = error
    yield eng.snapshot(done=True, message=message, result=res)


def run_search(
    problem: Problem,
    algorithm: SearchAlgorithm,
    budget: Budget | int | None = None,
    stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Run a search to the end and return its result."""
    last = None
    for snap in iterate_search(problem, algorithm, budget, stop):
        last = snap
    return last.result


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
    return sample_metrics(eng.trace.nodes, beam.node_ids, beam.flags, eng.ledger.reverts, eng.ledger.denoiser_nfe)
