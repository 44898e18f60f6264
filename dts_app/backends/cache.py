"""A per-backend-instance cache for things built once from a backend (verifier models,
encoded prompts, fitted classifiers...).

Every :class:`~dts_app.backends.base.Backend` has one (``backend.cache``). Values are keyed
by anything hashable; :meth:`ModelCache.get` builds a missing value with its factory
*exactly once per key*, even when several threads (the UI's concurrent sessions) ask for
it at the same time: later callers wait for the first one's result instead of loading a
second copy of a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["ModelCache"]

T = TypeVar("T")


class ModelCache:
    """Thread-safe ``key → value`` store whose values are built once per key.

    A factory runs outside the cache-wide lock (under a per-key lock), so a slow model load
    for one key does not block lookups of other keys. A factory that raises leaves no
    entry; the next caller tries again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, factory: Callable[[], T]) -> T:
        """The value cached under ``key``, calling ``factory()`` to build it if missing."""
        with self._lock:
            if key in self._values:
                return self._values[key]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = factory()
            with self._lock:
                self._values[key] = value
                if self._building.get(key) is key_lock:
                    del self._building[key]
            return value

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def clear(self) -> None:
        """Drop every cached value (in-flight builds still complete and are stored)."""
        with self._lock:
            self._values.clear()

    def __repr__(self) -> str:
        return f"ModelCache({len(self)} entries)"
