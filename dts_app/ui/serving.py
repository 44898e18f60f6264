"""Gradio plumbing of the app's search events: named API parameters, runs that stop when
the client cancels or goes away, and raw control values for the server's own validation.

A search runs in a worker thread; the event function itself is async and waits on it.
When Gradio cancels the event (the Stop button's ``cancels=``, ``/cancel`` from an API
client) the wait is interrupted with ``CancelledError``; when the client's connection
drops, Gradio marks its queued jobs dead, which :func:`client_alive` polls. Either way
the run's ``cancel`` event is set and the engine's ``stop`` callable ends the search
within one step (a thread cannot be killed; it is asked to stop).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "POLL_S",
    "SavedFiles",
    "QUEUE_POLL_S",
    "call_in_thread",
    "calm_queue",
    "client_alive",
    "enqueued_at",
    "keep_session_slots",
    "guarded",
    "named",
    "own_error_messages",
    "raw_values",
    "stream_in_thread",
]

log = logging.getLogger("dts_app.ui")
#: the line a visitor sees when a request fails where no message of ours applies
INTERNAL = "⚠️ internal error: this request failed on the server (it is logged); try other settings"
#: the line for a request the framework refused before the app saw it (a malformed call)
REFUSED = "⚠️ the server could not read this request: reload the page, or check the values an API call sends"
POLL_S = 0.2  # seconds between two looks at the client's connection
QUEUE_POLL_S = 0.01  # seconds an idle Gradio queue sleeps between two looks for work


def client_alive(demo: Any, session_hash: str | None) -> bool:
    """False once Gradio has marked every running job of ``session_hash`` dead (its
    client disconnected); True when unknown (no queue, no session)."""
    if not session_hash:
        return True
    try:
        jobs = [job for batch in (demo._queue.active_jobs or []) if batch for job in batch]
        mine = [job for job in jobs if getattr(job, "session_hash", None) == session_hash]
        return not mine or any(getattr(job, "alive", True) for job in mine)
    except AttributeError:  # another Gradio version: rely on cancellation alone
        return True


def enqueued_at(demo: Any, request: Any) -> float | None:
    """``time.monotonic()`` when the running event of ``request`` joined Gradio's queue
    (its job is found by its request), or None when unknown (no queue, another Gradio)."""
    raw = getattr(request, "request", None) if request is not None else None
    if raw is None:
        return None
    try:
        for batch in demo._queue.active_jobs or []:
            for job in batch or []:
                if getattr(job, "request", None) is raw:
                    t = getattr(job, "enqueue_time", None)
                    return float(t) if isinstance(t, (int, float)) else None
    except (AttributeError, TypeError):
        pass
    return None


def _consume(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # a late failure of an abandoned run is not "never retrieved"


async def call_in_thread(work: Callable[[], Any], cancel: threading.Event, alive: Callable[[], bool] = lambda: True) -> Any:
    """``work()`` in a worker thread; sets ``cancel`` when this coroutine is cancelled or
    ``alive()`` turns False (then waits for ``work`` to wind down and returns its value)."""
    import anyio

    fut = asyncio.ensure_future(anyio.to_thread.run_sync(work, abandon_on_cancel=True))
    fut.add_done_callback(_consume)
    try:
        while True:
            done, _ = await asyncio.wait({fut}, timeout=POLL_S)
            if done:
                return fut.result()
            if not cancel.is_set() and not alive():
                cancel.set()
    except asyncio.CancelledError:
        cancel.set()
        raise


async def stream_in_thread(
    make: Callable[[], Any], cancel: threading.Event, alive: Callable[[], bool] = lambda: True
) -> AsyncIterator[Any]:
    """The items of the generator ``make()`` returns, each ``next`` run in a worker thread;
    on cancellation or disconnection ``cancel`` is set and nothing more is drawn."""
    done = object()
    it = make()
    lock = threading.Lock()  # one thread at a time drives or closes the generator

    def step():
        with lock:
            return next(it, done)

    def close():
        with lock:  # after the step in flight (stopped within a step by ``cancel``)
            it.close()

    try:
        while True:
            item = await call_in_thread(step, cancel, alive)
            if item is done:
                return
            yield item
    except (asyncio.CancelledError, GeneratorExit):
        cancel.set()
        threading.Thread(target=close, daemon=True, name="close-search").start()
        raise


def named(fn: Callable, names: Sequence[str], request_type: Any = None, first: Sequence[str] = ("state",)) -> Callable:
    """``fn`` (called as ``fn(*first, *names[, request])``) with an explicit signature,
    so Gradio names the API parameters after the controls (not ``param_0`` …)."""
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in (*first, *names)]
    annotations: dict[str, Any] = {}
    if request_type is not None:
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=request_type))
        annotations["request"] = request_type
    fn.__signature__ = inspect.Signature(params)
    fn.__annotations__ = annotations
    return fn


def guarded(fn: Callable, fallback: Callable[[str], Any]) -> Callable:
    """``fn`` (a private event) with any exception logged with its traceback and answered
    by ``fallback(message)``: the visitor gets one line, never the framework's error."""

    @functools.wraps(fn)
    def event(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            log.error("event %s failed", getattr(fn, "__name__", "?"), exc_info=e)
            return fallback(INTERNAL)

    return event


_RAW: set[int] = set()  # ids of the components whose payloads reach the handlers raw


def raw_values(components: Sequence[Any]) -> None:
    """Let the components hand their raw payloads to the handlers, which validate them
    and answer with one line naming the field (Gradio's own range and choice checks say
    "Value 300 is greater than maximum value 256." without naming it, and the UI ranges
    are a comfortable sub-range of what the server accepts). The per-session copies Gradio
    makes of a component when an event updates it keep this (:func:`keep_session_slots`),
    so a session validates the same way before and after a control update."""
    for c in components:
        c.preprocess = _passthrough
        _RAW.add(c._id)


def _passthrough(payload: Any) -> Any:
    return payload


def keep_session_slots() -> bool:
    """Stop Gradio's per-session component table from growing at every update.

    When an event answers ``gr.skip()`` or ``gr.update(...)`` for an output, Gradio (6.31)
    stores a fresh copy of that component in the session under the output's id, but the
    copy carries a new id of its own; the next answer with a value for that output is
    then filed under the copy's id, as a new entry that keeps the value. A session whose
    outputs alternate between "keep" and a figure (an error, then a run, then an error…)
    grows by one entry holding a whole figure each time. The copy is given its slot's id
    here, so an update replaces the entry in place. Idempotent; returns True when the
    fix is (now) installed, False on a Gradio without this session store.
    """
    try:
        from gradio import state_holder
        from gradio.blocks import Block
    except ImportError:  # pragma: no cover - gradio is a dependency of the app
        return False
    cls = getattr(state_holder, "SessionState", None)
    if cls is None or not hasattr(cls, "__setitem__"):
        return False
    if getattr(cls.__setitem__, "_dts_keeps_slots", False):
        return True
    original = cls.__setitem__

    def setitem(self, key, value):
        if isinstance(value, Block):
            if getattr(value, "_id", key) != key:
                value._id = key  # the copy made for an update keeps its slot's id
            if key in _RAW:
                value.preprocess = _passthrough  # and the raw values of its original
        original(self, key, value)

    setitem._dts_keeps_slots = True
    cls.__setitem__ = setitem
    return True


def own_error_messages() -> bool:
    """Answer every error Gradio reports itself (a call with too few values, a payload a
    component cannot read, a file outside its cache) with :data:`REFUSED` instead of its
    text, which names classes, objects, values and server paths. The app's own answers
    never raise (they are status lines), so nothing of ours is hidden. Idempotent; False
    on a Gradio without ``error_payload``."""
    try:
        from gradio import queueing, utils
    except ImportError:  # pragma: no cover - gradio is a dependency of the app
        return False
    original = getattr(utils, "error_payload", None)
    if original is None or not hasattr(queueing, "error_payload"):
        return False
    if getattr(original, "_dts_own", False):
        return True

    def error_payload(error, show_error):
        if error is None:
            return original(error, show_error)
        return {"error": REFUSED, "visible": True, "duration": None, "title": "Error"}

    error_payload._dts_own = True
    utils.error_payload = queueing.error_payload = error_payload
    return True


def calm_queue(demo: Any, poll_s: float = QUEUE_POLL_S) -> bool:
    """Let the idle queue sleep ``poll_s`` between looks for work instead of Gradio's 1 ms.

    Gradio (6.31, outside Windows) polls its queue every millisecond while it is empty: an
    idle ``app.py`` spent 9.8 % of a core, 2.9 % with this (each over 20 s on the project's
    2-core machine), which a shared Space pays all day. A queued request waits at most
    ``poll_s`` more to start. Returns False on a Gradio without that knob.
    """
    queue = getattr(demo, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):
        return False
    queue.sleep_when_free = max(queue.sleep_when_free, poll_s)
    return True


class SavedFiles:
    """Saved runs on disk, bounded: the newest ``keep`` files stay, older ones are deleted.

    With ``cache`` (Gradio's cache folder, set by the layout) a file is written where Gradio
    would copy it (``cache/<hash of its bytes>/<name>``), so Gradio serves it without a
    second copy; otherwise each file gets its own folder under a private temporary one.
    :meth:`discard` deletes an uploaded file after use (only inside ``cache``; never a
    path of the server's own files or one this object keeps).
    """

    def __init__(self, keep: int, cache: str | None = None):
        self.keep, self.cache = max(1, int(keep)), cache
        self._paths: deque[Path] = deque()
        self._lock = threading.Lock()
        self._root: str | None = None

    def write(self, name: str, text: str) -> str:
        """Write ``text`` as ``name`` and return its path; the oldest files beyond ``keep`` go."""
        with self._lock:
            path = self._place(name, text.encode())
            if path in self._paths:
                self._paths.remove(path)
            self._paths.append(path)
            while len(self._paths) > self.keep:
                _remove(self._paths.popleft())
        return str(path)

    def _place(self, name: str, data: bytes) -> Path:
        if self.cache:
            try:
                from gradio.processing_utils import hash_file

                Path(self.cache).mkdir(parents=True, exist_ok=True)
                fd, staging = tempfile.mkstemp(dir=self.cache, prefix=".dts_save_")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                path = Path(self.cache) / hash_file(staging) / name
                path.parent.mkdir(exist_ok=True)
                os.replace(staging, path)
                return path.resolve()
            except (ImportError, OSError):
                pass  # another Gradio, or no cache folder: a private folder below
        if self._root is None or not os.path.isdir(self._root):
            self._root = tempfile.mkdtemp(prefix="dts_runs_")
        path = Path(tempfile.mkdtemp(dir=self._root)) / name
        path.write_bytes(data)
        return path.resolve()

    def files(self) -> list[str]:
        """The saved files kept now, oldest first."""
        with self._lock:
            return [str(p) for p in self._paths]

    def discard(self, path: Any) -> bool:
        """Delete an uploaded file once read (True when deleted)."""
        if not self.cache or not isinstance(path, str):
            return False
        try:
            p, cache = Path(path).resolve(), Path(self.cache).resolve()
        except (OSError, ValueError):
            return False
        with self._lock:
            if p in self._paths or cache not in p.parents or not p.is_file():
                return False
            _remove(p)
        return True


def _remove(path: Path) -> None:
    """Delete a file and its folder when that is left empty."""
    try:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    except OSError:
        pass
