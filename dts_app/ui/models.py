"""The app's backend cache and model-loading policy.

:class:`BackendCache` is a bounded, locked LRU of loaded backends:

- keyed by what the backend actually uses (its registry ``options`` among the config's
  fields; the t2i prompt is a target, not a model), so ``model`` typed for the gmm
  backend does not load a second copy;
- one load per key even when many first requests arrive at once (a per-key lock; later
  callers wait for the first one's backend); the first load of each backend *kind* is
  serialised with every other first load, so lazily imported libraries (diffusers,
  transformers) are imported by one thread only;
- bounded by entries and by an estimate of the bytes of their torch parameters and
  buffers; least recently used entries go first (a request holding one keeps it alive).

:func:`check_models` is the loading policy: locally any hub id or directory; on a public
server (``Limits.models == "allowlist"``) only the hub ids listed in
``deploy/space_models.txt``, and messages never echo what was typed, so nobody learns
whether a path exists on the server.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from ..config import ConfigError, SearchConfig
from .limits import Limits

__all__ = ["ALLOWLIST", "BackendCache", "backend_key", "check_models", "estimate_bytes", "read_allowlist"]

ALLOWLIST = Path(__file__).resolve().parents[2] / "deploy" / "space_models.txt"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_MODEL_OPTIONS = ("model", "verifier_model")
#: options a loader takes that do not select weights (the t2i prompt is the target)
_NOT_KEYS = frozenset({"prompt"})
_FIRST_LOAD = threading.Lock()  # serialises the first load of each backend kind


def backend_key(config: SearchConfig) -> tuple:
    """``(backend, (option, value), ...)`` for the options this backend's loader takes."""
    from ..backends.registry import BACKENDS

    spec = BACKENDS.spec(config.backend)
    opts = tuple((o, getattr(config, o)) for o in spec.options if o not in _NOT_KEYS and hasattr(config, o))
    return (config.backend, *opts)


def estimate_bytes(obj: Any, depth: int = 3) -> int:
    """Bytes of the torch parameters, buffers and tensors reachable from ``obj``'s
    attributes (``depth`` levels: modules, dicts, lists, caches); each tensor once."""
    import torch

    seen: set[int] = set()
    total = 0

    def tensor(t: torch.Tensor) -> None:
        nonlocal total
        key = t.data_ptr() if t.numel() else id(t)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()

    def walk(o: Any, d: int) -> None:
        if isinstance(o, torch.Tensor):
            tensor(o)
        elif isinstance(o, torch.nn.Module):
            if id(o) in seen:
                return
            seen.add(id(o))
            for t in o.parameters():
                tensor(t)
            for t in o.buffers():
                tensor(t)
        elif d > 0:
            if isinstance(o, dict):
                items = list(o.values())
            elif isinstance(o, (list, tuple)):
                items = list(o)
            elif hasattr(o, "__dict__") and not isinstance(o, type):
                if id(o) in seen:
                    return
                seen.add(id(o))
                items = list(vars(o).values())
            else:
                return
            for v in items:
                walk(v, d - 1)

    walk(obj, depth)
    return total


def read_allowlist(path: Path = ALLOWLIST) -> tuple[str, ...]:
    """Hub ids in the allowlist file (one per line, ``#`` comments; entries that are not
    ``owner/name`` hub ids, e.g. paths, are ignored)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ()
    ids = (ln.split("#", 1)[0].strip() for ln in lines)
    return tuple(i for i in ids if _HUB_ID.match(i))


def _sources(option: str, value: str) -> list[str]:
    """The model sources a value names (``clip=SRC,dino=SRC`` for the verifier model)."""
    if option == "verifier_model" and "=" in value:
        return [p.split("=", 1)[1].strip() for p in value.split(",") if "=" in p]
    return [value.strip()]


def check_models(config: SearchConfig, limits: Limits, allowlist: tuple[str, ...] | None = None) -> None:
    """Refuse models the server may not load (only on ``models == "allowlist"``).

    Options the chosen backend ignores are not checked (nor loaded). The message lists
    the allowed ids and never repeats the value typed.

    Raises:
        ConfigError: one line naming the field.
    """
    if limits.models == "any":
        return
    from ..backends.registry import BACKENDS

    spec = BACKENDS.spec(config.backend)
    allowed = read_allowlist() if allowlist is None else allowlist
    for option in _MODEL_OPTIONS:
        value = getattr(config, option)
        if option not in spec.options or not value:
            continue
        if any(src not in allowed for src in _sources(option, value)):
            offer = f"one of: {', '.join(allowed)}" if allowed else "none are enabled on this server"
            raise ConfigError(
                f"{option}: this server loads only the models in its allowlist ({offer}); run the app locally for others"
            )


class BackendCache:
    """A bounded, thread-safe LRU of loaded backends (see the module docstring).

    Args:
        max_entries: backends kept at most.
        max_bytes: estimated bytes kept at most (the newest entry always stays).
        loader: ``config -> Backend`` (default: the registry's loader, no cache).
        sizer: ``backend -> bytes`` (default: :func:`estimate_bytes`).
        public: turn load errors into messages that do not repeat what was typed.
    """

    def __init__(
        self,
        max_entries: int = 16,
        max_bytes: int = 8 * 2**30,
        loader: Callable[[SearchConfig], Any] | None = None,
        sizer: Callable[[Any], int] = estimate_bytes,
        public: bool = False,
    ):
        self.max_entries = max(1, int(max_entries))
        self.max_bytes = int(max_bytes)
        self.loader = loader or _load
        self.sizer = sizer
        self.public = public
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._kinds: set[str] = set()
        self.loads = 0
        self.hits = 0
        self.evictions = 0

    @classmethod
    def from_limits(cls, limits: Limits) -> BackendCache:
        return cls(limits.cache_entries, limits.cache_bytes, public=limits.public)

    def get(self, config: SearchConfig) -> Any:
        """The backend ``config`` names, loaded once per key (concurrent callers of the
        same key wait for one load).

        Raises:
            ConfigError: the backend or model cannot be loaded (one line).
        """
        key = backend_key(config)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return self._entries[key][0]
            try:
                if config.backend in self._kinds:
                    backend = self._load(config)
                else:
                    with _FIRST_LOAD:
                        backend = self._load(config)
                size = int(self.sizer(backend))
                with self._lock:
                    self._entries[key] = (backend, size)
                    self._kinds.add(config.backend)
                    self.loads += 1
                    self._evict(keep=key)
                return backend
            finally:
                with self._lock:
                    if self._building.get(key) is key_lock:
                        del self._building[key]

    def _load(self, config: SearchConfig) -> Any:
        """Load through ``loader``; every failure becomes one ConfigError line (on a
        public server one that does not repeat the model typed or the server's paths)."""
        try:
            return self.loader(config)
        except (ConfigError, ValueError, OSError, ImportError, RuntimeError) as e:
            named = any(getattr(config, o) for o in _MODEL_OPTIONS)
            if self.public and (named or not isinstance(e, ConfigError)):
                raise ConfigError(f"model: the {config.backend} model could not be loaded on this server") from None
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            if isinstance(e, ConfigError) and first:
                raise ConfigError(first) from None
            raise ConfigError(f"model: cannot load the {config.backend} backend: {first or 'unknown error'}") from None

    def _evict(self, keep: Hashable) -> None:
        """Drop least recently used entries past the bounds (caller holds the lock);
        re-measures sizes first (verifier models load into a backend after it)."""
        for k, (b, _) in list(self._entries.items()):
            self._entries[k] = (b, int(self.sizer(b)))
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or self.nbytes() > self.max_bytes):
            oldest = next(k for k in self._entries if k != keep)
            del self._entries[oldest]
            self.evictions += 1

    def nbytes(self) -> int:
        """Estimated bytes of the cached backends."""
        return sum(s for _, s in self._entries.values())

    def stats(self) -> dict:
        with self._lock:
            return dict(
                entries=len(self._entries),
                bytes=self.nbytes(),
                loads=self.loads,
                hits=self.hits,
                evictions=self.evictions,
                keys=[k for k in self._entries],
            )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    # a dict-like face for dts_app.search.backend_for(config, cache) -----------------------
    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __getitem__(self, key: Hashable) -> Any:
        with self._lock:
            self._entries.move_to_end(key)
            return self._entries[key][0]

    def __setitem__(self, key: Hashable, backend: Any) -> None:
        with self._lock:
            self._entries[key] = (backend, int(self.sizer(backend)))
            self._evict(keep=key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _load(config: SearchConfig) -> Any:
    from ..search import backend_for

    return backend_for(config)
