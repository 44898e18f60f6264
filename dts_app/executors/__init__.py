"""Executors: run a list of cells (one search run each) here or on a Ray cluster.

The one entry point is :func:`run_cells`: give it cells, get their outcomes back as they
finish. With ``out`` every finished cell is appended to ``out/cells.jsonl``; with
``resume=True`` the cells already there are yielded first (``resumed=True``) and not rerun.
A failing cell is retried ``retries`` times and then yielded with its error; it never stops
the others. Summaries (sweeps, scans, reproductions) are built from the outcomes' numbers, so
every executor gives the same summary for the same cells.

- ``"local"`` (:class:`.local.LocalExecutor`): in this process, in order;
- ``"ray"`` (:class:`.ray_executor.RayExecutor`): one Ray task per cell, streamed back
  with ``ray.wait``; a model loads once per worker process. Ray is imported only then.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..config import ConfigError
from .cells import MODES, Cell, CellOutcome, CellStore, run_cell, unique
from .local import LocalExecutor

__all__ = ["EXECUTORS", "MODES", "Cell", "CellOutcome", "CellStore", "LocalExecutor", "make_executor", "run_cell", "run_cells"]

EXECUTORS = ("local", "ray")


def make_executor(name: str = "local", address: str | None = None, gpus_per_run: float = 0.0, cpus_per_run: float = 1.0):
    """An executor by name; ``address``/``gpus_per_run``/``cpus_per_run`` are Ray's options."""
    if name == "local":
        if address is not None or gpus_per_run or cpus_per_run != 1.0:
            raise ConfigError("--address, --gpus-per-run and --cpus-per-run need --executor ray")
        return LocalExecutor()
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=address, gpus_per_run=gpus_per_run, cpus_per_run=cpus_per_run)
    raise ConfigError(f"--executor: {name!r} is not one of {', '.join(EXECUTORS)}")


class _Progress:
    """Progress over cells on stderr (tqdm when installed, else one rewritten line)."""

    def __init__(self, total: int, initial: int, desc: str, enabled: bool):
        self.enabled, self.total, self.n, self.failed, self.desc = enabled, total, initial, 0, desc
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, initial=initial, desc=desc, unit="cell", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                self._line()

    def _line(self, end: str = "") -> None:
        fail = f", {self.failed} failed" if self.failed else ""
        sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} cells{fail}{end}")
        sys.stderr.flush()

    def write(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            sys.stderr.write(("\n" if self.enabled else "") + message + "\n")

    def retry(self, cell: Cell, attempt: int, error: str) -> None:
        self.write(f"cell {cell.label()} failed (attempt {attempt}): {error}; retrying")

    def update(self, outcome: CellOutcome) -> None:
        self.n += 1
        if not outcome.ok:
            self.failed += 1
            self.write(f"cell {outcome.cell.label()} failed after {outcome.attempts} attempts: {outcome.error}")
        if self.bar is not None:
            if self.failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)
            self.bar.update(1)
        elif self.enabled:
            self._line()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self._line("\n")


def run_cells(
    cells: Iterable[Cell],
    executor="local",
    *,
    out: str | Path | None = None,
    resume: bool = False,
    retries: int = 1,
    progress: bool = False,
    desc: str = "cells",
) -> Iterator[CellOutcome]:
    """Run ``cells`` (each id once) and yield a :class:`CellOutcome` per cell as it finishes.

    Args:
        executor: ``"local"``, ``"ray"`` or an executor object (``run(cells, retries,
            on_retry)`` and ``close()``); one made here from a name is closed at the end.
        out: a directory for ``cells.jsonl`` (None: nothing is written).
        resume: keep the cells already in ``out/cells.jsonl`` (yielded first, not rerun);
            without it the file starts empty.
        retries: extra attempts for a failing cell.
        progress: show progress over cells on stderr (failures are reported either way).

    The executor is made (and Ray started) before this returns; the work runs as the
    returned iterator is consumed.
    """
    if retries < 0:
        raise ConfigError(f"--retries: must be ≥ 0, got {retries}")
    cells = unique(cells)
    owned = isinstance(executor, str)
    ex = make_executor(executor) if owned else executor
    return _drive(cells, ex, owned, out, resume, retries, progress, desc)


def _drive(cells, ex, owned, out, resume, retries, progress, desc) -> Iterator[CellOutcome]:
    try:
        store = CellStore(out) if out is not None else None
        done: dict = {}
        if store is not None:
            if resume:
                done = store.load()
            else:
                store.reset()
        todo = [c for c in cells if c.id not in done]
        bar = _Progress(len(cells), len(cells) - len(todo), desc, progress)
        try:
            for c in cells:
                if c.id in done:
                    rec = done[c.id]
                    attempts, seconds, worker = rec.get("attempts", 1), rec.get("seconds", 0.0), rec.get("worker", "")
                    yield CellOutcome(c, rec["result"], attempts=attempts, seconds=seconds, worker=worker, resumed=True)
            for outcome in ex.run(todo, retries=retries, on_retry=bar.retry):
                if outcome.ok and store is not None:
                    store.append(outcome)
                bar.update(outcome)
                yield outcome
        finally:
            bar.close()
    finally:
        if owned:
            ex.close()
