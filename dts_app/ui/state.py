"""Per-session state of the app (held in ``gr.State``; nothing is shared between users)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SessionState"]


@dataclass
class SessionState:
    """What one browser session remembers.

    Attributes:
        stop: cooperative stop flag; the running search checks it between steps.
        running: True while a streamed search is in progress.
        result: the last :class:`~dts_app.search.types.SearchResult` (kept on screen on
            errors).
        runs: searches completed in this session.
    """

    stop: bool = False
    running: bool = False
    result: Any = None
    runs: int = 0
