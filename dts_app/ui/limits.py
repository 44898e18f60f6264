"""The cost model of one app request: every cap in one settings object.

:class:`Limits` holds the caps a request may not pass (NFEs, trace nodes, obstacles,
UMAP points, response size, wall-clock deadline), how many searches run at once, how big
the model cache may grow and which models may load. :meth:`Limits.from_env` picks the
profile: generous ``local`` on your machine, strict ``space`` on a public server
(detected from ``SPACE_ID``, or forced with ``DTS_MODE=space|local``); every field can be
overridden by its environment variable (:data:`ENV`), which is also what the status line
names when a run reaches a cap.

:class:`RunGuard` enforces the node cap and the deadline through the engine's ``stop``
callable and remembers *why* it stopped the run; the NFE cap goes through the budget.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

__all__ = ["ENV", "Limits", "RunGuard", "configure_heap", "configure_threads", "threads_per_request"]


@dataclass(frozen=True)
class Limits:
    """Per-request caps and server-wide settings.

    Attributes:
        mode: ``local`` or ``space`` (public server: strict caps, allowlisted models).
        nfe_points: NFE cap per request for point backends (gmm).
        nfe_embedded_image: NFE cap for embedded image backends (digits).
        nfe_image: NFE cap for downloaded image models (dit, t2i).
        max_nodes: trace nodes per request; the run stops cleanly when it passes them.
        deadline_s: wall-clock seconds per request (search); the run stops cleanly then.
        max_obstacles: obstacle lines per request.
        max_text: characters of any text box (obstacles, prompt, model ids).
        umap_points: most nodes UMAP embeds; above it the view is PCA (instant).
        draw_nodes: most tree nodes drawn in a final figure (the rest are decimated).
        live_nodes: most tree nodes drawn in a streamed update.
        live_interval_s: least seconds between two streamed tree figures.
        max_response_bytes: most bytes of figures one answer sends (approximate).
        concurrency: searches served at once (one queue shared by every search event).
        queue_size: requests waiting at most; more are refused with "queue full".
        cache_entries: backends kept in memory at most.
        cache_bytes: bytes of model weights kept in memory at most (estimated from the
            torch parameters and buffers; the one in use is never evicted).
        models: ``any`` (local: load any hub id or directory you name) or ``allowlist``
            (only ids listed in ``deploy/space_models.txt``).
        max_file_bytes: the largest upload (a run file) in bytes: Gradio's
            ``max_file_size`` and the run-file reader's cap.
        saved_files: saved runs kept on disk for download (older ones are deleted).
        sessions: browser or API sessions whose state the server keeps (Gradio's
            ``state_session_capacity``); the least recently used one is dropped beyond it,
            and its next request starts afresh. Each session keeps its last answer (the
            figures and the run), so this bounds the server's memory.
    """

    mode: str = "local"
    nfe_points: int = 200_000
    nfe_embedded_image: int = 50_000
    nfe_image: int = 2_000
    max_nodes: int = 200_000
    deadline_s: float = 600.0
    max_obstacles: int = 1_000
    max_text: int = 100_000
    umap_points: int = 20_000
    draw_nodes: int = 20_000
    live_nodes: int = 1_500
    live_interval_s: float = 1.0
    max_response_bytes: int = 50_000_000
    concurrency: int = 2
    queue_size: int = 32
    cache_entries: int = 16
    cache_bytes: int = 8 * 2**30
    models: str = "any"
    sessions: int = 10_000
    max_file_bytes: int = 64_000_000
    saved_files: int = 64

    @classmethod
    def space(cls) -> Limits:
        """The public-server profile (a free 2-vCPU Space)."""
        return cls(
            mode="space",
            nfe_points=20_000,
            nfe_embedded_image=8_000,
            nfe_image=500,
            max_nodes=20_000,
            deadline_s=20.0,
            max_obstacles=64,
            max_text=4_000,
            umap_points=3_000,
            draw_nodes=5_000,
            live_nodes=1_500,
            live_interval_s=1.0,
            max_response_bytes=8_000_000,
            concurrency=2,
            queue_size=32,
            cache_entries=8,
            cache_bytes=2 * 2**30,
            models="allowlist",
            sessions=64,
            max_file_bytes=16_000_000,
            saved_files=32,
        )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """The profile for this process: ``DTS_MODE`` (``space`` | ``local``) if set, else
        ``space`` when ``SPACE_ID`` is set (Hugging Face Spaces set it), else ``local``;
        then each field's environment variable (:data:`ENV`) overrides it.

        Raises:
            ValueError: an unknown mode or a value that is not a positive number.
        """
        env = os.environ if environ is None else environ
        mode = env.get("DTS_MODE", "").strip().lower() or ("space" if env.get("SPACE_ID") else "local")
        if mode not in ("local", "space"):
            raise ValueError(f"DTS_MODE: {mode!r} is not one of local, space")
        base = cls.space() if mode == "space" else cls()
        changes: dict = {}
        for f in fields(cls):
            var = ENV.get(f.name) if f.name != "mode" else None
            raw = env.get(var, "").strip() if var else ""
            if not raw:
                continue
            if f.name == "models":
                if raw not in ("any", "allowlist"):
                    raise ValueError(f"{var}: {raw!r} is not one of any, allowlist")
                changes[f.name] = raw
                continue
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{var}: {raw!r} is not a number") from None
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{var}: must be a positive number, got {raw!r}")
            changes[f.name] = value if isinstance(getattr(base, f.name), float) else int(value)
        return replace(base, **changes)

    @property
    def public(self) -> bool:
        """True on a public server: messages never echo paths, models are allowlisted."""
        return self.mode == "space"

    def nfe_cap(self, kind: str) -> int:
        """The NFE cap of a backend kind: ``points``, ``embedded-image`` or ``image``."""
        return {"points": self.nfe_points, "embedded-image": self.nfe_embedded_image}.get(kind, self.nfe_image)

    def lift(self, name: str) -> str:
        """How to lift cap ``name`` locally, for the status line."""
        var = ENV.get(name, "")
        if self.public:
            return f"run the app locally to lift it ({var})"
        return f"set {var} to lift it"

    def describe(self) -> list[tuple[str, str, str]]:
        """``(field, environment variable, value)`` rows (docs and the start-up log)."""
        return [(f.name, ENV.get(f.name, "DTS_MODE"), str(getattr(self, f.name))) for f in fields(self)]


#: the environment variable of each :class:`Limits` field
ENV: dict[str, str] = {
    "mode": "DTS_MODE",
    "nfe_points": "DTS_MAX_NFE_POINTS",
    "nfe_embedded_image": "DTS_MAX_NFE_EMBEDDED",
    "nfe_image": "DTS_MAX_NFE_IMAGE",
    "max_nodes": "DTS_MAX_NODES",
    "deadline_s": "DTS_DEADLINE_S",
    "max_obstacles": "DTS_MAX_OBSTACLES",
    "max_text": "DTS_MAX_TEXT",
    "umap_points": "DTS_MAX_UMAP_POINTS",
    "draw_nodes": "DTS_DRAW_NODES",
    "live_nodes": "DTS_LIVE_NODES",
    "live_interval_s": "DTS_LIVE_INTERVAL_S",
    "max_response_bytes": "DTS_MAX_RESPONSE_BYTES",
    "concurrency": "DTS_CONCURRENCY",
    "queue_size": "DTS_QUEUE_SIZE",
    "cache_entries": "DTS_CACHE_ENTRIES",
    "cache_bytes": "DTS_CACHE_BYTES",
    "models": "DTS_MODELS",
    "sessions": "DTS_SESSIONS",
    "max_file_bytes": "DTS_MAX_FILE_BYTES",
    "saved_files": "DTS_SAVED_FILES",
}


class RunGuard:
    """The ``stop`` callable of one run: True once the user stopped, the client went
    away or the deadline passed; ``reason`` says which (the trace-node cap is the
    runner's, :attr:`~dts_app.search.runner.RunRequest.max_nodes`, noted here as ``"nodes"``).

    Args:
        limits: the caps.
        user_stop: the session's stop flag (the Stop button sets it).
        client_gone: probe for a cancelled or disconnected client (None: never).
        clock: time source (tests).
    """

    def __init__(
        self,
        limits: Limits,
        user_stop: Callable[[], bool] = lambda: False,
        client_gone: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limits = limits
        self.user_stop = user_stop
        self.client_gone = client_gone
        self.clock = clock
        self.started = clock()
        self.reason: str | None = None
        self._lock = threading.Lock()

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the run from another thread (a client that went away)."""
        with self._lock:
            self.reason = self.reason or reason

    def __call__(self) -> bool:
        if self.reason is not None:
            return True
        reason = None
        if self.user_stop():
            reason = "stopped"
        elif self.client_gone is not None and self.client_gone():
            reason = "cancelled"
        elif self.clock() - self.started > self.limits.deadline_s:
            reason = "deadline"
        if reason is not None:
            with self._lock:
                self.reason = self.reason or reason
        return self.reason is not None

    def note(self) -> str:
        """The status-line note for the reason the run ended early ('' if none or the user)."""
        lim = self.limits
        if self.reason == "deadline":
            return f"stopped at the {lim.deadline_s:g} s deadline per request; {lim.lift('deadline_s')}"
        if self.reason == "nodes":
            return f"stopped at the cap of {lim.max_nodes:,} trace nodes; {lim.lift('max_nodes')}"
        if self.reason == "cancelled":
            return "cancelled: the client went away"
        return ""


def threads_per_request(concurrency: int, cores: int | None = None) -> int:
    """torch intra-op threads per request so that threads × concurrent requests ≤ cores."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, concurrency))


def configure_threads(concurrency: int) -> int:
    """Set torch's intra-op threads (and numpy's BLAS threads, via threadpoolctl when
    installed) from the queue concurrency and return torch's. Every call sets them (a
    process may build several apps, and tests restore the threads between them)."""
    import torch

    n = threads_per_request(concurrency, _cores())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:  # numpy's BLAS too (the PCA's SVD): its own pool, 2 threads per call by default
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
    return torch.get_num_threads()


def configure_heap(threshold: int = 128 * 1024) -> bool:
    """Hand large freed blocks back to the system (glibc only; once per process).

    glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), so
    after the biggest figure requests, later ones of that size come from a heap that
    never shrinks: the server's memory stays at its high-water mark. Fixing the threshold
    at ``threshold`` bytes (``mallopt(M_MMAP_THRESHOLD)``, what ``MALLOC_MMAP_THRESHOLD_``
    does when set before start-up) maps every block of that size or more on its own and
    unmaps it when freed. Left alone when the variable is set. Returns True when set.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, int(threshold)))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
