"""The algorithm contract: an algorithm holds only its rules and drives an
:class:`~dts_app.search.engine.Engine`; its name, label, description and knobs are
declared once, in :data:`dts_app.search.registry.ALGORITHMS`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from ..config import SearchConfig
from .engine import Engine
from .problem import Problem

__all__ = ["SearchAlgorithm", "PROBLEM_KNOBS"]

# Knobs the Problem owns (the engine reads them from there): setting them on an algorithm
# would be silently ignored, so it is refused.
PROBLEM_KNOBS = ("solver", "steps", "shift", "sde_gamma", "seed", "guidance", "eta", "q_star", "avoid", "measure",
                 "max_reverts", "obstacles", "backend", "preset", "model", "prompt", "target", "condition")  # fmt: skip


class SearchAlgorithm(ABC):
    """Base class: subclasses set ``name`` (their registry key) and implement
    :meth:`iterate` as a generator over steps. Per-run state lives in local variables
    or a per-run state object inside :meth:`iterate`, never on the algorithm."""

    name: str = "algorithm"

    def __init__(self, config: SearchConfig | None = None, **overrides):
        owned = sorted(k for k in overrides if k in PROBLEM_KNOBS)
        if owned:
            from ..config import ConfigError

            raise ConfigError(
                f"{', '.join(owned)}: a setting of the problem, not of the algorithm (set it where the problem is built, "
                "e.g. SearchConfig or build_problem); the algorithm reads it from there"
            )
        cfg = config if config is not None else SearchConfig()
        self.config = cfg.replace(**overrides) if overrides else cfg

    @property
    def spec(self):
        """This algorithm's registry entry (label, description, params)."""
        from .registry import ALGORITHMS

        return ALGORITHMS[self.name]

    @abstractmethod
    def iterate(self, eng: Engine) -> Iterator[None]:
        """Run the search on ``eng``, yielding after every step; record finals with
        ``eng.finish``. May raise BudgetExceeded or SearchStopped at any charge."""

    def natural_nfe(self, problem: Problem) -> int | None:
        """NFEs the algorithm spends with its current settings and no cap (None: it runs
        until a budget stops it, see :meth:`max_nfe`)."""
        return None

    def max_nfe(self, problem: Problem) -> int:
        """An upper bound of the NFEs of the algorithm's natural course (no budget): the
        exact :meth:`natural_nfe` where there is one."""
        natural = self.natural_nfe(problem)
        if natural is None:
            raise NotImplementedError(f"{self.name}: no NFE bound")
        return natural

    def fit_budget(self, problem: Problem, budget: int) -> SearchAlgorithm:
        """A copy whose settings spend (about, never more than) ``budget`` NFEs, for sweeps."""
        return self
