"""The one algorithm registry: drives CLI choices, the sweep and the UI's dropdown.

Entries name their class as ``"module:Class"`` (imported on use).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["AlgorithmSpec", "ALGORITHMS", "make_algorithm"]


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    label: str
    description: str
    cls: str
    params: tuple[str, ...]


ALGORITHMS: dict[str, AlgorithmSpec] = {
    s.name: s
    for s in [
        AlgorithmSpec(
            "best-of-n",
            "best-of-N (random search)",
            "N independent noises solved to t = 0; keep the verifier's favourite.",
            "dts_app.search.best_of_n:BestOfN",
            ("n",),
        ),
    ]
}


def make_algorithm(name: str, config=None, **overrides):
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    module, attr = ALGORITHMS[name].cls.split(":")
    return getattr(importlib.import_module(module), attr)(config, **overrides)
