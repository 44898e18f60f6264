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
        AlgorithmSpec(
            "zero-order",
            "zero-order search (ZO-n)",
            "Move a pivot noise to its best neighbour on the noise sphere, K times.",
            "dts_app.search.zero_order:ZeroOrder",
            ("n", "lam", "iterations"),
        ),
        AlgorithmSpec(
            "paths",
            "search over paths (Paths-n)",
            "Branch M times, re-noise Δf steps, solve Δb back, keep the N best; repeat to t = 0.",
            "dts_app.search.over_paths:OverPaths",
            ("n", "m", "sigma", "delta_f", "delta_b"),
        ),
        AlgorithmSpec(
            "tree",
            "tree search (DTS-style)",
            "Expand promising partial paths with stochastic children; roll out, back up rewards.",
            "dts_app.search.tree:TreeSearch",
            ("n", "m", "sde_gamma", "temperature", "c_uct", "backup"),
        ),
    ]
}


def make_algorithm(name: str, config=None, **overrides):
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    module, attr = ALGORITHMS[name].cls.split(":")
    return getattr(importlib.import_module(module), attr)(config, **overrides)
