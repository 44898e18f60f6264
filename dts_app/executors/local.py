"""The local executor: every cell in this process, one after another (today's behaviour)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter

from .cells import Cell, CellOutcome, backend_loads, run_cell

__all__ = ["LocalExecutor", "error_message"]

RetryHook = Callable[[Cell, int, str], None]


def error_message(e: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    cause = getattr(e, "cause", None) or e  # Ray wraps a task's exception; report the original
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


class LocalExecutor:
    """Runs cells in order in this process, with its own backend cache (a model loads once)."""

    name = "local"

    def __init__(self):
        self.cache: dict = {}

    def run(self, cells: Iterable[Cell], retries: int = 1, on_retry: RetryHook | None = None) -> Iterator[CellOutcome]:
        """Yield one outcome per cell as it finishes; a failing cell is retried ``retries`` times."""
        worker = f"local:{os.getpid()}"
        for cell in cells:
            attempt = 1
            while True:
                t0 = perf_counter()
                try:
                    result = run_cell(cell, self.cache)
                except Exception as e:  # a failing cell must not lose the others
                    if attempt <= retries:
                        if on_retry:
                            on_retry(cell, attempt, error_message(e))
                        attempt += 1
                        continue
                    yield CellOutcome(cell, error=error_message(e), attempts=attempt, worker=worker)
                    break
                meta = {"backend_loads": backend_loads()}
                yield CellOutcome(cell, result, attempts=attempt, seconds=perf_counter() - t0, worker=worker, meta=meta)
                break

    def close(self) -> None:
        self.cache.clear()
