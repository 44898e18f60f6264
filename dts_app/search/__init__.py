"""Inference-time search: the engine, the algorithms and their drivers.

- :mod:`.types`: Beam, Candidate, SearchResult, Snapshot;
- :mod:`.problem`: Problem and ``build_problem`` (config → backend, verifiers, obstacles);
- :mod:`.engine`: the primitives every algorithm drives, over Field + Streams + Ledger;
- :mod:`.recorder`: trace, diagnostics, best partial, snapshots;
- :mod:`.runner`: ``RunRequest`` and ``Runner``, the one run pipeline every front end uses;
- :mod:`.driver`: ``iterate_search``, ``run_search`` (thin users of the runner), ``sample_paths``;
- :mod:`.registry`: the algorithms (best-of-N, zero-order, paths, tree).

The package is also the public search function: calling it,
``dts_app.search(velocity, reward, shape=..., algorithm=..., **knobs)``, runs
:func:`dts_app.api.search` (the fixed public name; docs/api.md).
"""

import sys
from types import ModuleType as _ModuleType

from .algorithm import SearchAlgorithm
from .driver import iterate_search, run_search, sample_paths, sampling_metrics
from .engine import Engine
from .problem import Problem, backend_for, build_problem
from .registry import ALGORITHMS, make_algorithm
from .runner import Runner, RunRequest
from .types import Beam, Candidate, NonFiniteError, SearchResult, SearchStopped, Snapshot

__all__ = [
    "ALGORITHMS",
    "Beam",
    "Candidate",
    "Engine",
    "NonFiniteError",
    "Problem",
    "RunRequest",
    "Runner",
    "SearchAlgorithm",
    "SearchResult",
    "SearchStopped",
    "Snapshot",
    "backend_for",
    "build_problem",
    "iterate_search",
    "make_algorithm",
    "run_search",
    "sample_paths",
    "sampling_metrics",
]


class _CallablePackage(_ModuleType):
    """This package, callable as :func:`dts_app.api.search` (looked up by name at call time:
    the API sits above this layer)."""

    def __call__(self, *args, **kwargs):
        from ..registry import load_object

        return load_object("dts_app.api:search")(*args, **kwargs)

    @property
    def __signature__(self):
        import inspect

        from ..registry import load_object

        return inspect.signature(load_object("dts_app.api:search"))


sys.modules[__name__].__class__ = _CallablePackage
