"""One generic, lazy registry: backends, verifiers and algorithms are each a
:class:`Registry` of frozen spec dataclasses.

A spec names the code it stands for as a ``"module:attr"`` string; :meth:`Registry.load`
imports it on first use (under a lock, once per process, so concurrent first requests do
not race on a half-imported heavy library) and caches the object. The same registry
drives dispatch, the CLI's choices and help, and the UI's dropdowns.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "load_object"]

S = TypeVar("S")

_LOCK = threading.RLock()
_LOADED: dict[str, Any] = {}


def load_object(path: str) -> Any:
    """The object ``"package.module:attr"`` names, imported once (thread-safe)."""
    obj = _LOADED.get(path)
    if obj is not None:
        return obj
    with _LOCK:
        if path not in _LOADED:
            module, _, attr = path.partition(":")
            if not module or not attr:
                raise ValueError(f"registry entry {path!r} is not 'module:attr'")
            _LOADED[path] = getattr(importlib.import_module(module), attr)
        return _LOADED[path]


class Registry(Generic[S]):
    """Named specs of one kind, in declaration order; a read-only mapping.

    Args:
        kind: what the entries are (``"backend"``, ``"verifier"``, ``"algorithm"``), used
            in error messages.
        specs: frozen dataclasses with a ``name`` attribute.
    """

    def __init__(self, kind: str, specs: list[S]):
        self.kind = kind
        self._specs: dict[str, S] = {}
        for s in specs:
            name = s.name  # type: ignore[attr-defined]
            if name in self._specs:
                raise ValueError(f"duplicate {kind} {name!r}")
            self._specs[name] = s

    # mapping protocol -------------------------------------------------------------------
    def __getitem__(self, name: str) -> S:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str, default: S | None = None) -> S | None:
        return self._specs.get(name, default)

    def values(self):
        return self._specs.values()

    def items(self):
        return self._specs.items()

    def names(self) -> list[str]:
        return list(self._specs)

    # lookups ----------------------------------------------------------------------------
    def unknown(self, name: Any) -> str:
        """The one-line message for a name that is not registered."""
        return f"unknown {self.kind} {name!r}; choose one of {', '.join(self._specs)}"

    def spec(self, name: str) -> S:
        """The spec of ``name``; ``ValueError`` with the choices when unknown."""
        if name not in self._specs:
            raise ValueError(self.unknown(name))
        return self._specs[name]
