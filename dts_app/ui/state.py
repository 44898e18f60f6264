"""Per-session state of the app (held in ``gr.State``; nothing is shared between users)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["STOPPED_QUEUED", "SessionState", "stopped_before", "superseded"]


@dataclass
class SessionState:
    """What one browser session remembers.

    Attributes:
        stops: Stop presses so far; a run stops when this changes after it started (so a
            new run never clears a stop meant for one still running).
        running: searches of this session in progress (slider runs and streams).
        streaming: True while a streamed search is in progress.
        result: the last :class:`~dts_app.search.types.SearchResult` (kept on screen on
            errors).
        config: the :class:`~dts_app.config.SearchConfig` of ``result``.
        runs: searches completed in this session.
        selected: the gallery image selected since the last run (its candidate index).
        shown: the candidate index of each image of the gallery (the gallery shows the
            best and the highest scores when a run has more candidates than it holds).
        stopped_at: ``time.monotonic()`` of the last Stop; a run queued before it
            answers "stopped before it started" instead of running.
        newest: queue time (``time.monotonic()``) of the newest run of this session that
            has started; an older run still going ends without drawing, one still
            waiting does not start (the latest request wins, in any order of finishing).
        drawn: the views this session has drawn into since the page was built (its
            built-in default answer not counted). The page's load event swaps the default
            views' snapshots for live figures only in the other views, so a run or a
            redraw made before plotly.js has loaded is never overwritten by the default.
    """

    stops: int = 0
    running: int = 0
    streaming: bool = False
    result: Any = None
    config: Any = None
    runs: int = 0
    selected: int | None = None
    shown: list[int] | None = None
    stopped_at: float = float("-inf")
    newest: float = float("-inf")
    drawn: set[str] = field(default_factory=set)

    @property
    def stop(self) -> bool:
        """True once Stop was pressed in this session."""
        return self.stops > 0


STOPPED_QUEUED = "**stopped** before it started: Stop was pressed while this run waited in the queue"


def stopped_before(state: SessionState, enqueued: float | None) -> bool:
    """True when Stop was pressed after a run was queued (``enqueued``: ``time.monotonic()``
    when it joined the queue; None: unknown) and before it started."""
    return enqueued is not None and state.stopped_at >= enqueued


def superseded(state: SessionState, enqueued: float | None) -> bool:
    """True when a run of this session queued after this one (at ``enqueued``) has started."""
    return enqueued is not None and state.newest > enqueued
