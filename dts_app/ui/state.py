"""Per-session state of the app (held in ``gr.State``; nothing is shared between users)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SessionState"]


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
        runs: searches completed in this session.
    """

    stops: int = 0
    running: int = 0
    streaming: bool = False
    result: Any = None
    runs: int = 0

    @property
    def stop(self) -> bool:
        """True once Stop was pressed in this session."""
        return self.stops > 0
