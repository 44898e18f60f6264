"""The experiment registry and the small helpers every experiment shares.

An :class:`Experiment` is two functions: ``plan(ctx) -> [Cell]`` (the search runs it needs,
as executor cells) and ``summarize(ctx, cells, results) -> Finding`` (the numbers behind
its figure, one sentence with them, and its verdict, computed from those numbers:
``held``, ``not held``, or ``not testable here`` with the reason), plus ``command``: the
CLI command or app link that shows the finding to a reader. The runner
(:mod:`.runner`) runs the cells of every selected experiment at once, each cell once, so
experiments that read the same runs (a sweep) share them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sweep import mean_se

__all__ = [
    "Context",
    "Experiment",
    "Finding",
    "EXPERIMENTS",
    "VERDICTS",
    "register",
    "num",
    "stat",
    "fmt",
    "fmt_med",
    "hit_rate",
    "group_results",
    "trace",
]

VERDICTS = ("held", "not held", "not testable here")


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
    """An experiment's entry in the report (``figure`` and ``table`` are plain data too).

    ``verdict`` is one of :data:`VERDICTS` (default: from ``held``); ``not testable here``
    comes with ``reason``, the property of the setting that keeps the claim from showing."""

    setup: dict
    data: dict
    finding: str
    held: bool
    figure: dict = field(default_factory=dict)
    table: dict = field(default_factory=dict)
    verdict: str | None = None
    reason: str = ""

    def __post_init__(self):
        if self.verdict is None:
            self.verdict = "held" if self.held else "not held"
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")
        self.held = self.verdict == "held"


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # what the field claims, with its source
    plan: Callable[[Context], list]
    summarize: Callable[[Context, list, dict], Finding]
    command: str = ""  # the CLI command (or app link) that shows it


EXPERIMENTS: dict[str, Experiment] = {}


def register(name: str, title: str, claim: str, command: str = ""):
    """Decorator for ``summarize``; ``plan`` is given as the decorated function's ``plan``."""

    def wrap(plan):
        def deco(summarize):
            EXPERIMENTS[name] = Experiment(name, title, claim, plan, summarize, command)
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
    """``{"mean", "se", "median", "n"}`` over the non-missing values (standard error over
    seeds; the median beside it, since a few missed seeds can dominate a mean)."""
    vals = [v for v in values if v is not None]
    m, se = mean_se(vals)
    med = statistics.median(vals) if vals else None
    return {"mean": num(m), "se": num(se), "median": num(med), "n": len(vals)}


def hit_rate(values: Sequence[bool | None]) -> float | None:
    """The share of True among the non-missing values."""
    vals = [bool(v) for v in values if v is not None]
    return num(sum(vals) / len(vals)) if vals else None


def fmt(s: dict | None, digits: int = 3) -> str:
    """``mean ± se`` as text."""
    if not s or s.get("mean") is None:
        return "n/a"
    return f"{s['mean']:.{digits}g} ± {s['se']:.2g}"


def fmt_med(s: dict | None, hit: float | None = None, digits: int = 3) -> str:
    """``mean ± se (median m[, hit h])`` as text."""
    if not s or s.get("mean") is None:
        return "n/a"
    extra = "" if s.get("median") is None else f"med {s['median']:.{digits}g}"
    if hit is not None:
        extra += f", hit {hit:.2g}"
    return f"{fmt(s, digits)} ({extra})" if extra else fmt(s, digits)


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
