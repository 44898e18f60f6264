"""The Ray executor: each cell is one Ray task; results stream back as they finish.

Ray is optional (``pip install 'dts-explorer[ray]'``) and imported only here, only when this
executor is made. Workers are long-lived processes that Ray reuses for every task of the same
function and resources, so the per-process backend cache in :mod:`.cells` loads a model once
per worker, never once per cell. Ray's own task retries are off (``max_retries=0``): a failed
cell is resubmitted here, ``retries`` times, and reported with its error after the last try.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from time import perf_counter

from ..config import ConfigError
from .cells import Cell, CellOutcome, backend_loads, run_cell
from .local import RetryHook, error_message

__all__ = ["RayExecutor", "import_ray", "INSTALL_HINT", "RAY_VERSION"]

RAY_VERSION = "2.60.0"
INSTALL_HINT = (
    f"--executor ray needs Ray, which is not installed: pip install -e '.[ray]' (or pip install 'ray[default]=={RAY_VERSION}')"
)


def import_ray():
    """Ray, or a one-line :class:`ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _task(cell: Cell) -> tuple[dict, float, str, int]:
    """Runs in a Ray worker process (module-level, so Ray pickles it by reference)."""
    t0 = perf_counter()
    result = run_cell(cell)  # this worker's backend cache
    return result, perf_counter() - t0, f"{socket.gethostname()}:{os.getpid()}", backend_loads()


class RayExecutor:
    """Cells as Ray tasks on a local Ray or a cluster.

    Args:
        address: ``None`` starts a local Ray (or uses the one this process already started);
            ``"auto"`` joins the cluster this machine belongs to (``ray up``, KubeRay);
            ``"ray://HOST:10001"`` connects through Ray Client.
        gpus_per_run, cpus_per_run: resources each cell asks for (fractions allowed).
    """

    name = "ray"

    def __init__(self, address: str | None = None, gpus_per_run: float = 0.0, cpus_per_run: float = 1.0):
        if gpus_per_run < 0:
            raise ConfigError(f"--gpus-per-run: must be ≥ 0, got {gpus_per_run}")
        if cpus_per_run <= 0:
            raise ConfigError(f"--cpus-per-run: must be > 0, got {cpus_per_run}")
        self.ray = ray = import_ray()
        self.started = False
        if not ray.is_initialized():
            kwargs = {"address": address} if address else {"include_dashboard": False}
            try:
                ray.init(**kwargs)
            except ConnectionError as e:
                raise ConfigError(f"--address: cannot reach a Ray cluster at {address!r} ({e})") from None
            self.started = True
        self.remote = ray.remote(_task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)

    def run(self, cells: Iterable[Cell], retries: int = 1, on_retry: RetryHook | None = None) -> Iterator[CellOutcome]:
        """Submit every cell, then yield outcomes in finishing order (``ray.wait``)."""
        ray = self.ray
        pending: dict = {}
        for cell in cells:
            pending[self.remote.remote(cell)] = (cell, 1)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    cell, attempt = pending.pop(ref)
                    try:
                        result, seconds, worker, loads = ray.get(ref)
                    except Exception as e:  # the task raised, or its worker died: retry, then report
                        if attempt <= retries:
                            if on_retry:
                                on_retry(cell, attempt, error_message(e))
                            pending[self.remote.remote(cell)] = (cell, attempt + 1)
                        else:
                            yield CellOutcome(cell, error=error_message(e), attempts=attempt)
                        continue
                    meta = {"backend_loads": loads}
                    yield CellOutcome(cell, result, attempts=attempt, seconds=seconds, worker=worker, meta=meta)
        finally:
            for ref in pending:  # interrupted: do not leave work running on the cluster
                ray.cancel(ref)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False
