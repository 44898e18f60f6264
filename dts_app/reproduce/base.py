"""The experiment registry and the small helpers every experiment shares.

An :class:`Experiment` is two functions: ``plan(ctx) -> [Cell]`` (the search runs it needs,
as executor cells) and ``summarize(ctx, cells, results) -> Finding`` (the numbers behind
its figure, one sentence with them, and ``held``, computed from those numbers). The runner
(:mod:`.runner`) runs the cells of every selected experiment at once, each cell once, so
experiments that read the same runs (a sweep) share them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sweep import mean_se

__all__ = ["Context", "Experiment", "Finding", "EXPERIMENTS", "register", "num", "stat", "fmt", "group_results", "trace"]


@dataclass(frozen=True)
class Context:
    """What every experiment is told: quick or full, seeds per point, the base seed."""

    quick: bool = True
    seeds: int = 3
    seed: int = 0

    def pick(self, quick, full):
        """``quick`` in a quick run, ``full`` otherwise."""
        return quick if self.quick else full


@dataclass
class Finding:
    """An experiment's entry in the report (``figure`` and ``table`` are plain data too)."""

    setup: dict
    data: dict
    finding: str
    held: bool
    figure: dict = field(default_factory=dict)
    table: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # what the field claims, with its source
    plan: Callable[[Context], list]
    summarize: Callable[[Context, list, dict], Finding]


EXPERIMENTS: dict[str, Experiment] = {}


def register(name: str, title: str, claim: str):
    """Decorator for ``summarize``; ``plan`` is given as the decorated function's ``plan``."""

    def wrap(plan):
        def deco(summarize):
            EXPERIMENTS[name] = Experiment(name, title, claim, plan, summarize)
            return summarize

        return deco

    return wrap


def num(x: Any, digits: int = 6) -> float | None:
    """A float rounded to ``digits`` significant digits (None for missing or non-finite), so
    the report's JSON is stable across platforms' last-bit differences."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def stat(values: Sequence[float | None]) -> dict:
    """``{"mean", "se", "n"}`` over the non-missing values (standard error over seeds)."""
    vals = [v for v in values if v is not None]
    m, se = mean_se(vals)
    return {"mean": num(m), "se": num(se), "n": len(vals)}


def fmt(s: dict | None, digits: int = 3) -> str:
    """``mean ± se`` as text."""
    if not s or s.get("mean") is None:
        return "n/a"
    return f"{s['mean']:.{digits}g} ± {s['se']:.2g}"


def group_results(cells: list, results: dict, key: Callable) -> dict:
    """The finished results grouped by ``key(cell)`` (cells in plan order)."""
    out: dict = {}
    for c in cells:
        out.setdefault(key(c), [])
        if c.id in results:
            out[key(c)].append(results[c.id])
    return out


def trace(name: str, x: Sequence, stats: Sequence[dict] | None = None, y: Sequence | None = None, **style) -> dict:
    """One curve of a figure: x, y (means) and err (standard errors), plus plotly styling."""
    if stats is not None:
        y = [s["mean"] for s in stats]
        err = [s["se"] for s in stats]
    else:
        err = None
    return {"name": name, "x": list(x), "y": list(y), "err": err, **style}
