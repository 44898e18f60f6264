"""Cells: one search run (algorithm, budget, seed, prompt or class) as plain, picklable data.

A :class:`Cell` names everything one run needs, so it can run in this process or in a Ray
worker and give the same numbers. :func:`run_cell` runs it against a backend cache (one
model per backend config per process); :class:`CellStore` appends finished cells to
``cells.jsonl`` and reads them back for ``--resume``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FIELDS, SearchConfig

__all__ = ["MODES", "Cell", "CellOutcome", "CellStore", "backend_loads", "run_cell", "unique"]

# How a cell spends its budget:
#   "fit"        the algorithm is fitted to the budget (``fit_budget``), as in a sweep;
#   "plain"      the config runs as it is, capped at ``budget`` (None: no cap), as in a field scan;
#   "more-steps" the paper's baseline: one sample with ⌊budget / cost per step⌋ steps (≤ 1000).
MODES = ("fit", "plain", "more-steps")

# Per process: backends keyed by their config (``backend_for``'s key), so a worker loads a model
# once, never once per cell. The local executor keeps its own dict instead (freed with it).
WORKER_CACHE: dict = {}
_LOADS = {"n": 0}


def backend_loads() -> int:
    """How many backends this process has loaded for cells (a test hook: once per worker)."""
    return _LOADS["n"]


@dataclass(frozen=True)
class Cell:
    """One unit of work.

    Attributes:
        config: the full search config (algorithm, seed, target, prompt, knobs).
        budget: the NFE budget (see ``mode``); None = uncapped (``plain`` only).
        mode: one of :data:`MODES`.
        trace_scores: the problem's ``trace_scores`` (None: the backend's default).
        task: optional ``"module:attr"`` of a function ``(cell, cache) -> dict`` run instead of
            :func:`run_cell`'s search (for other commands, e.g. a reproduce command); it must be
            importable on the workers.
        extra: plain JSON settings of such a task that are not search knobs (part of the id).
    """

    config: SearchConfig
    budget: int | None = None
    mode: str = "fit"
    trace_scores: bool | None = False
    task: str | None = None
    extra: dict = field(default_factory=dict)
    _id: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"cell mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        blob = {"config": self.config.to_dict(), "budget": self.budget, "mode": self.mode}
        blob |= {"trace_scores": self.trace_scores, "task": self.task}
        if self.extra:  # only when set: the ids of cells without it stay as they were
            blob["extra"] = self.extra
        digest = hashlib.sha256(json.dumps(blob, sort_keys=True, default=repr).encode()).hexdigest()[:20]
        object.__setattr__(self, "_id", digest)

    @property
    def id(self) -> str:
        """A digest of everything that decides the cell's numbers (the resume key)."""
        return self._id

    @property
    def key(self) -> dict:
        """The readable key written to ``cells.jsonl``."""
        c = self.config
        key = {"algorithm": "more-steps" if self.mode == "more-steps" else c.algorithm, "budget": self.budget}
        key |= {"seed": c.seed, "target": c.target, "prompt": c.prompt}
        if self.mode == "plain":
            key |= {"eta": c.eta, "q_star": c.q_star}
        return key

    def label(self) -> str:
        k = self.key
        extra = "".join(f" {n}={k[n]}" for n in ("target", "prompt", "eta", "q_star") if k.get(n) is not None)
        return f"{k['algorithm']} budget={k['budget']} seed={k['seed']}{extra}"


@dataclass
class CellOutcome:
    """A finished (or failed) cell: its numbers, or the error after its last attempt."""

    cell: Cell
    result: dict | None = None
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0
    worker: str = ""
    resumed: bool = False
    meta: dict = field(default_factory=dict)  # not stored: e.g. the worker's backend loads so far

    @property
    def ok(self) -> bool:
        return self.error is None


def _float(x) -> float | None:
    return None if x is None else float(x)


def _backend(config: SearchConfig, cache: dict):
    from ..search import backend_for

    n = len(cache)
    backend = backend_for(config, cache)
    if len(cache) > n:
        _LOADS["n"] += 1
    return backend


def _search(cell: Cell, cache: dict) -> dict:
    from ..search import Runner, RunRequest, build_problem

    cfg, budget, out = cell.config, cell.budget, {}
    if cell.mode == "more-steps":
        probe = build_problem(cfg.replace(algorithm="best-of-n"), backend=_backend(cfg, cache))
        steps = int(min(max(int(budget) // probe.nfe_per_step, 1), FIELDS["steps"].hi))
        cfg = cfg.replace(algorithm="best-of-n", n=1, steps=steps)
        out["steps"] = steps
    request = RunRequest.from_config(
        cfg, backend=_backend(cfg, cache), budget=None if budget is None else int(budget), fit=cell.mode == "fit",
        trace_scores=cell.trace_scores,
    )  # fmt: skip
    problem = request.problem
    res = Runner(request).run()
    out |= {"best_score": _float(res.best_score), "heldout_score": _float(res.heldout_score)}
    out |= {"nfe": int(res.ledger.denoiser_nfe), "reverts": int(res.ledger.reverts)}
    out["collision_rate"] = _float(res.metrics.get("collision_rate"))
    out["hit"] = _target_hit(problem, cfg, res.best)
    return out


def _target_hit(problem, cfg: SearchConfig, best) -> bool | None:
    """Whether the best sample lies in the target mode (the exact mixture's most responsible
    component is the target); None without an exact mixture or a best sample."""
    mix = problem.backend.reference_mixture()
    if mix is None or best is None:
        return None
    target = cfg.target if cfg.target is not None else problem.backend.default_target()
    targets = {int(t) for t in (target if isinstance(target, (list, tuple)) else [target])}
    return int(mix.responsibilities(best.reshape(1, -1).double(), 0.0).argmax()) in targets


def _resolve(task: str) -> Callable[[Cell, dict], dict]:
    module, _, attr = task.partition(":")
    return getattr(importlib.import_module(module), attr)


def run_cell(cell: Cell, cache: dict | None = None) -> dict:
    """Run one cell and return its numbers (plain JSON data).

    ``cache`` holds loaded backends (default: this process's :data:`WORKER_CACHE`).
    """
    cache = WORKER_CACHE if cache is None else cache
    if cell.task:
        return _resolve(cell.task)(cell, cache)
    return _search(cell, cache)


class CellStore:
    """``DIR/cells.jsonl``: one JSON object per finished cell (``id``, ``key``, ``result``, …).

    A killed run can leave a torn last line; :meth:`load` drops it (and any line that does
    not parse) and rewrites the file, so later appends start on a fresh line.
    """

    NAME = "cells.jsonl"

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / self.NAME

    def reset(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def load(self) -> dict[str, dict]:
        """The finished cells by id (the last record of an id wins)."""
        if not self.path.exists():
            return {}
        records, lines = {}, []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
                cell_id, _ = rec["id"], rec["result"]
            except (ValueError, KeyError, TypeError):
                continue
            records[cell_id] = rec
            lines.append(line)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines))
        os.replace(tmp, self.path)
        return records

    def append(self, outcome: CellOutcome) -> None:
        rec: dict[str, Any] = {"id": outcome.cell.id, "key": outcome.cell.key, "result": outcome.result}
        rec |= {"attempts": outcome.attempts, "seconds": round(outcome.seconds, 4), "worker": outcome.worker}
        data = (json.dumps(rec, default=repr) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)  # one write per line: a kill tears at most the last line
        finally:
            os.close(fd)


def unique(cells: Iterable[Cell]) -> list[Cell]:
    """The cells in order, each id once."""
    seen, out = set(), []
    for c in cells:
        if c.id not in seen:
            seen.add(c.id)
            out.append(c)
    return out
