"""The one run pipeline: a typed :class:`RunRequest`, built once by every front end (the
CLI, the app, compare, a sweep cell, :func:`dts_app.search`), and :class:`Runner`, the only
code that drives an algorithm.

A request holds the problem, the algorithm (its settings declared once in
:data:`~dts_app.search.registry.ALGORITHMS`), the NFE budget and the trace-node cap. The
runner owns everything around the algorithm's own rules: the budget (charged by the
ledger before each call), the node cap, the stop probe, progress callbacks and snapshots,
and how a run ends (finished, budget exhausted, stopped, node cap, non-finite).

Example:
    >>> from dts_app.config import SearchConfig
    >>> from dts_app.search.runner import RunRequest, Runner
    >>> req = RunRequest.from_config(SearchConfig(backend="gmm", preset="trap", n=4, steps=8))
    >>> result = Runner(req).run()
    >>> result.message, result.ledger.denoiser_nfe  # 4 paths × 8 steps
    ('finished', 32)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from ..config import SearchConfig
from ..ledger import Budget, BudgetExceeded
from .algorithm import SearchAlgorithm
from .engine import Engine
from .problem import Problem, build_problem
from .registry import make_algorithm
from .types import NonFiniteError, SearchResult, SearchStopped, Snapshot

__all__ = ["RunRequest", "Runner", "run", "stream"]

#: why a run ended early, by the runner's own rules (``Runner.reason``)
REASONS = ("stopped", "nodes")


@dataclass(frozen=True)
class RunRequest:
    """What one search run is: built once by a front end, read by :class:`Runner`.

    Attributes:
        problem: the backend, condition, verifiers, solver, grid and obstacles.
        algorithm: the algorithm with its own settings.
        budget: the most denoiser NFEs to spend (None: the algorithm's natural course).
        max_nodes: the trace-node cap (None: none); a run that passes it ends like a Stop,
            with what it found, and ``Runner.reason == "nodes"``.
    """

    problem: Problem
    algorithm: SearchAlgorithm
    budget: int | None = None
    max_nodes: int | None = None

    @classmethod
    def from_config(
        cls,
        config: SearchConfig,
        *,
        backend=None,
        cache: dict | None = None,
        budget: int | None | str = "config",
        fit: bool = False,
        max_nodes: int | None = None,
        trace_scores: bool | None = None,
    ) -> RunRequest:
        """The request of a validated config.

        Args:
            config: the settings (validated here: a bad one raises ``ConfigError``).
            backend, cache: a loaded backend, or a cache of them (else it is loaded).
            budget: the NFE budget (default: ``config.budget``, 0 meaning none).
            fit: fit the algorithm's own settings to spend (about, never more than) the
                budget (:meth:`SearchAlgorithm.fit_budget`), as sweeps do.
            max_nodes: the trace-node cap.
            trace_scores: score every trace node for the views (default: the problem's).
        """
        problem = build_problem(config, backend=backend, cache=cache)
        if trace_scores is not None:
            problem.trace_scores = trace_scores
        algorithm = make_algorithm(config.algorithm, config)
        nfe = (config.budget or None) if budget == "config" else budget
        if fit and nfe is not None:
            algorithm = algorithm.fit_budget(problem, int(nfe))
        return cls(problem, algorithm, None if nfe is None else int(nfe), max_nodes)

    def with_budget(self, budget: int | None) -> RunRequest:
        """The same request at another NFE budget."""
        return replace(self, budget=budget)

    def total_nfe(self) -> int:
        """The NFEs this run spends at most: the budget or the algorithm's natural course."""
        natural = self.algorithm.max_nfe(self.problem)
        return min(self.budget, natural) if self.budget else natural


class Runner:
    """Drive one :class:`RunRequest`: iterate it for a :class:`Snapshot` after every step
    (the last has ``done=True`` and the :class:`SearchResult`), or :meth:`run` it to the end.

    Args:
        request: what to run.
        stop: a probe checked between steps (and at each charge); True ends the run with
            what it found (``result.message == "stopped"``, ``reason == "stopped"``).
        callbacks: called with a :class:`Snapshot` after every step.

    Attributes:
        reason: why the run ended early by the runner's rules (``"stopped"``, ``"nodes"``),
            else None.
        result: the result, once the run ended.
    """

    def __init__(
        self, request: RunRequest, stop: Callable[[], bool] | None = None, callbacks: Sequence[Callable[[Snapshot], None]] = ()
    ):
        self.request = request
        self.stop = stop
        self.callbacks = tuple(callbacks)
        self.reason: str | None = None
        self.result: SearchResult | None = None
        self.engine: Engine | None = None

    def _should_stop(self) -> bool:
        cap = self.request.max_nodes
        if cap is not None and self.engine is not None and len(self.engine.trace.nodes) > cap:
            self.reason = self.reason or "nodes"
        elif self.stop is not None and self.stop():
            self.reason = self.reason or "stopped"
        return self.reason is not None

    def __iter__(self) -> Iterator[Snapshot]:
        req = self.request
        eng = self.engine = Engine(req.problem, Budget(req.budget or None), self._should_stop, self.callbacks)
        message, error = "finished", None
        try:
            for _ in req.algorithm.iterate(eng):
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
        self.result = res
        yield eng.snapshot(done=True, message=message, result=res)

    def run(self) -> SearchResult:
        """Run to the end and return the result."""
        for _ in self:
            pass
        return self.result


def stream(request: RunRequest, stop: Callable[[], bool] | None = None, callbacks=()) -> Iterator[Snapshot]:
    """``iter(Runner(request, stop, callbacks))``."""
    return iter(Runner(request, stop, callbacks))


def run(request: RunRequest, stop: Callable[[], bool] | None = None, callbacks=()) -> SearchResult:
    """``Runner(request, stop, callbacks).run()``."""
    return Runner(request, stop, callbacks).run()
