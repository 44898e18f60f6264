"""The app's controls: their names and order, their defaults, and how control values
become a validated :class:`~dts_app.config.SearchConfig` (the server validates again
whatever a browser or API client sends)."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

from ..config import FIELDS, ConfigError, ObstacleSpec, SearchConfig

__all__ = [
    "SLIDERS",
    "LIVE",
    "TREE_VIEWS",
    "INPUTS",
    "input_values",
    "parse_obstacles",
    "config_from",
    "target_value",
    "obstacle_text",
    "config_inputs",
    "query_string",
    "values_from_query",
    "clip",
]

SLIDERS: tuple[str, ...] = ("n", "m", "eta", "q_star", "steps", "budget", "seed", "delta_f", "delta_b", "lam", "guidance")
LIVE: tuple[str, ...] = ("eta", "q_star", "n", "m")
#: how the tree view draws a trace: a layered tree (children under parents) or the
#: score of every node against its step
TREE_VIEWS: tuple[str, ...] = ("layered", "score")
INPUTS: tuple[str, ...] = (
    "backend",
    "preset",
    "target",
    "algorithm",
    "verifier",
    "heldout",
    *SLIDERS,
    "solver",
    "avoid",
    "obstacles",
    "embed",
    "tree_view",
    "model",
    "prompt",
    "verifier_model",
)


def input_values(**changes: Any) -> list:
    """Control values in :data:`INPUTS` order: the app's gmm defaults with ``changes``
    (for API clients, tests and the latency benchmark)."""
    d = SearchConfig()
    base = {k: getattr(d, k) for k in SLIDERS}
    base.update(
        backend=d.backend,
        preset=d.preset,
        target=None,
        algorithm=d.algorithm,
        verifier=d.verifier,
        heldout="supervised",
        solver=d.solver,
        avoid=d.avoid,
        obstacles="",
        embed="pca",
        tree_view="layered",
        model="",
        prompt="",
        verifier_model="",
    )
    unknown = set(changes) - set(INPUTS)
    if unknown:
        raise ValueError(f"unknown controls: {', '.join(sorted(unknown))}")
    base.update(changes)
    return [base[k] for k in INPUTS]


def parse_obstacles(text: str, max_obstacles: int | None = None) -> tuple[ObstacleSpec, ...]:
    """One obstacle per line (or ';'-separated): ``ball:x,y,r``, ``point:x,y``,
    ``component:k``, ``class:k``; blank lines and ``#`` comments are skipped.

    Raises:
        ConfigError: a line that cannot be read, or more than ``max_obstacles`` lines.
    """
    if text is not None and not isinstance(text, str):
        raise ConfigError(f"obstacles: expected text, got {type(text).__name__}")
    lines = [ln.split("#", 1)[0].strip() for ln in (text or "").replace(";", "\n").splitlines()]
    lines = [ln for ln in lines if ln]
    if max_obstacles is not None and len(lines) > max_obstacles:
        raise ConfigError(f"obstacles: {len(lines):,} given, at most {max_obstacles:,} per request")
    return tuple(ObstacleSpec.parse(line) for line in lines)


def target_value(value: Any) -> Any:
    """The target from the dropdown (``"2: prize"`` → 2), a number or free text.

    Raises:
        ConfigError: a number that is not a finite integer, or a value of another type.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "default")):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"target: expected a class or component number, got {value!r}")
    if isinstance(value, (int, float)):
        if abs(value) > 2**31 or not math.isfinite(value) or int(value) != value:  # (abs first: 10**400 is no float)
            raise ConfigError(f"target: expected a class or component number, got {_short(value)}")
        return int(value)
    if not isinstance(value, str):
        raise ConfigError(f"target: expected a class or component number, got {type(value).__name__}")
    head = value.split(":", 1)[0].strip()
    if head.lstrip("-").isdigit() and len(head) < 12:
        return int(head)
    return value.strip()


def clip(text: str, word: int = 60, limit: int = 300) -> str:
    """A message cut for the status line: one line, any run of more than ``word``
    characters without a space (a pasted coordinate, a path) cut, ``limit`` in all."""
    text = " ".join(str(text).split())
    text = re.sub(rf"\S{{{word + 1},}}", lambda m: m.group(0)[: word - 20] + "…", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(values: dict, key: str, limit: int | None) -> str | None:
    v = values.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise ConfigError(f"{key}: expected text, got {type(v).__name__}")
    if limit is not None and len(v) > limit:
        raise ConfigError(f"{key}: {len(v):,} characters, at most {limit:,} per request")
    return v.strip() or None


def _number(key: str, v: Any) -> float | int:
    """A slider value as a number (integral floats become ints); one-line errors."""
    if isinstance(v, bool):
        raise ConfigError(f"{FIELDS[key].cli_flag}: expected a number, got {v!r}")
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{FIELDS[key].cli_flag}: expected a number, got {_short(v)}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{FIELDS[key].cli_flag}: must be a finite number, got {x}")
    if FIELDS[key].integer and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:39] + "…"


def config_from(values: dict, limits: Any = None) -> SearchConfig:
    """A validated SearchConfig from control values keyed by :data:`INPUTS` names.

    Args:
        values: control values (from the browser or an API client: anything may arrive).
        limits: a :class:`~dts_app.ui.limits.Limits` for the per-request caps on text and
            obstacles (None: no caps).

    Raises:
        ConfigError: a knob out of range, of the wrong type or a bad combination (one line
            naming the field).
    """
    max_text = None if limits is None else limits.max_text
    kw: dict[str, Any] = {}
    for k in SLIDERS:
        v = values.get(k)
        if v is not None:
            kw[k] = _number(k, v)
    names: dict[str, Any] = {}
    for k in ("backend", "preset", "algorithm", "verifier", "heldout", "solver", "avoid", "embed", "tree_view"):
        names[k] = _text(values, k, 200)
    if names["embed"] not in (None, "pca", "umap"):
        raise ConfigError(f"embed: {_short(names['embed'])} is not one of pca, umap")
    if names["tree_view"] not in (None, *TREE_VIEWS):
        raise ConfigError(f"tree_view: {_short(names['tree_view'])} is not one of {', '.join(TREE_VIEWS)}")
    backend = names["backend"] or "gmm"
    if isinstance(values.get("target"), str) and len(values["target"]) > 200:
        raise ConfigError(f"target: {len(values['target']):,} characters, at most 200")
    text = _text(values, "obstacles", max_text)
    cfg = SearchConfig(
        backend=backend,
        preset=names["preset"] if _has_presets(backend) else None,
        target=target_value(values.get("target")),
        algorithm=names["algorithm"] or "best-of-n",
        verifier=names["verifier"] or "oracle",
        heldout=names["heldout"] or "",
        solver=names["solver"] or "euler",
        avoid=names["avoid"] or "none",
        obstacles=parse_obstacles(text or "", None if limits is None else limits.max_obstacles),
        model=_text(values, "model", max_text),
        prompt=_text(values, "prompt", max_text),
        verifier_model=_text(values, "verifier_model", max_text),
        **kw,
    )
    from ..search.problem import validate

    return validate(cfg)


def _has_presets(backend: str) -> bool:
    from ..backends.registry import BACKENDS

    return bool(BACKENDS[backend].presets) if backend in BACKENDS else True


def obstacle_text(o: ObstacleSpec) -> str:
    """An obstacle as the text the obstacle box reads (``kind:value@eta=..,q=..``)."""
    v = o.value
    text = f"{o.kind}:" + (",".join(repr(float(x)) for x in v) if isinstance(v, (list, tuple)) else str(v)[:200])
    opts = [f"eta={o.eta!r}"] if o.eta is not None else []
    opts += [f"q={o.q_star!r}"] if o.q_star is not None else []
    return text + ("@" + ",".join(opts) if opts else "")


def config_inputs(cfg: SearchConfig) -> dict:
    """The app's control values (:data:`INPUTS` names) that reproduce ``cfg``'s knobs."""
    vals = dict(zip(INPUTS, input_values()))
    for k in INPUTS:
        if k in ("obstacles", "embed", "tree_view"):
            continue
        v = getattr(cfg, k, None)
        vals[k] = "" if v is None and k in ("model", "prompt", "verifier_model") else v
    vals["obstacles"] = "\n".join(obstacle_text(o) for o in cfg.obstacles)
    return vals


def query_string(values: dict, base: dict | None = None) -> str:
    """URL query parameters for the controls that differ from ``base`` (default:
    :func:`input_values`; the page passes its own defaults), e.g. ``n=16&avoid=smc``."""
    base = base if base is not None else dict(zip(INPUTS, input_values()))
    pairs = []
    for k in INPUTS:
        v = values.get(k)
        if v is None or v == "" or v == base.get(k):
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        pairs.append((k, str(v)))
    return urlencode(pairs)


def values_from_query(params: Any) -> dict:
    """Control values from URL query parameters (unknown names are ignored, values are
    validated later with every other request: a bad link gets the usual one-line message)."""
    out: dict[str, Any] = {}
    if not params:
        return out
    for k in INPUTS:
        if k in params:
            v = str(params[k])[:4000]
            try:
                out[k] = float(v) if k in _NUMERIC else v
            except ValueError:
                out[k] = v  # refused by config_from with a message naming the field
            if k in _NUMERIC and isinstance(out[k], float) and out[k].is_integer():
                out[k] = int(out[k])
    return out


_NUMERIC = frozenset(k for k in INPUTS if isinstance(dict(zip(INPUTS, input_values()))[k], (int, float)))
