"""Save, share and reopen a run.

- :func:`run_payload` / :func:`save_run`: a run as JSON in the CLI's schema (what
  ``python -m dts_app search --json`` writes: ``SearchResult.to_dict()`` plus ``config``
  and ``backend``), so a file saved in the app opens in any tool that reads the CLI's.
- :func:`load_run`: such a file (from the app or the CLI) back into a
  :class:`~dts_app.config.SearchConfig` and a :class:`~dts_app.search.types.SearchResult`
  that the app renders like a fresh one, under the request's :class:`~.limits.Limits`:
  the file's bytes, its nesting depth (checked before parsing: no recursion), its nodes
  (counted before parsing), a deadline, and every field checked for type, range and
  shape before anything is built from it. A bad file gets one line saying what is wrong.
Links (:func:`query_string`, :func:`values_from_query`) live in :mod:`.inputs`.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import fields
from typing import Any

from ..config import FIELDS, ConfigError, ObstacleSpec, SearchConfig
from .inputs import config_inputs, obstacle_text, query_string, target_value, values_from_query
from .limits import Limits

__all__ = ["MAX_DEPTH", "run_payload", "run_text", "run_name", "load_run", "query_string", "values_from_query", "config_inputs"]

MAX_DEPTH = 16  # nesting of a run file (the app's own files nest 5 deep)
COORD = 1e6  # largest |coordinate| of a sample, x̂0 or obstacle point
SCORE = 1e30  # largest |score|, value, D or t
INT = 10**15  # largest counter
TEXT = 200  # characters kept of a message, label or flag
_CHUNK = 1 << 22
_DEFAULT = SearchConfig()


def run_payload(result, cfg: SearchConfig, backend=None) -> dict:
    """The CLI's JSON of a run (``search --json``): result, ``config`` and ``backend``."""
    out = {**result.to_dict(True), "config": cfg.to_dict()}
    return out if backend is None else {**out, "backend": backend.describe()}


def run_text(result, cfg: SearchConfig, backend=None) -> str:
    """The run's JSON text.

    Raises:
        ConfigError: a value JSON cannot carry (NaN, ±inf), in one line.
    """
    try:
        return json.dumps(run_payload(result, cfg, backend), allow_nan=False)
    except (ValueError, TypeError):
        raise ConfigError("save: this run holds a value JSON cannot carry (NaN or infinity); it cannot be saved") from None


def run_name(cfg: SearchConfig) -> str:
    """``dts_<backend>_<algorithm>_seed<k>.json`` (safe characters only)."""
    return re.sub(r"[^\w.-]", "_", f"dts_{cfg.backend}_{cfg.algorithm}_seed{cfg.seed}.json")[:120]


def _bad(what: str) -> ConfigError:
    return ConfigError(f"run file: {what}")


def _clean(v: Any, what: str, limit: int = TEXT) -> str:
    """A string as text safe to show (no markup, one line, cut)."""
    if not isinstance(v, str):
        raise _bad(f"{what} must be text")
    return re.sub(r"[<>\x00-\x1f\x7f]", " ", v[:limit])


def _num(v: Any, what: str, none: bool = True, bound: float = SCORE) -> float | None:
    if v is None and none:
        return None
    if type(v) not in (int, float):
        raise _bad(f"{what} must be a number")
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not -bound <= x <= bound:  # NaN fails too
        raise _bad(f"{what} must be a finite number of at most {bound:g} in size")
    return x


def _int(v: Any, what: str, lo: int = 0, hi: int = INT, none: bool = False) -> int | None:
    if v is None and none:
        return None
    if type(v) is not int or not lo <= v <= hi:
        raise _bad(f"{what} must be a whole number in [{lo}, {hi:g}]")
    return v


def _list(v: Any, what: str, most: int) -> list:
    if not isinstance(v, list):
        raise _bad(f"{what} must be a list")
    if len(v) > most:
        raise _bad(f"{what}: {len(v):,} entries, at most {most:,}")
    return v


def _vector(v: Any, what: str, most: int = 1 << 20) -> list[float]:
    """A flat list of finite numbers (coordinates)."""
    _list(v, what, most)
    if not all(type(x) in (int, float) for x in v):
        raise _bad(f"{what} must hold numbers only")
    try:
        if not all(-COORD <= float(x) <= COORD for x in v):
            raise _bad(f"{what} must hold finite numbers of at most {COORD:g} in size")
    except OverflowError:
        raise _bad(f"{what} must hold finite numbers of at most {COORD:g} in size") from None
    return [float(x) for x in v]


def _plain(v: Any, what: str, depth: int = 0) -> Any:
    """Event data: numbers, short text, booleans, None, small lists and dicts of them."""
    if v is None or type(v) is bool:
        return v
    if type(v) in (int, float):
        return _num(v, what, bound=SCORE) if type(v) is float else _int(v, what, -INT, INT)
    if isinstance(v, str):
        return _clean(v, what)
    if depth < 3 and isinstance(v, list):
        return [_plain(x, what, depth + 1) for x in _list(v, what, 4096)]
    if depth < 3 and isinstance(v, dict) and len(v) <= 64:
        return {_clean(k, what, 60): _plain(x, what, depth + 1) for k, x in v.items()}
    raise _bad(f"{what} holds a value of an unexpected kind")


def _depth(data: bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` outside strings (numpy, in chunks: no recursion)."""
    import numpy as np

    if b"\\" in data:
        data = re.sub(rb"\\.", b"__", data, flags=re.S)  # escapes never end a string
    a = np.frombuffer(data, np.uint8)
    depth = deepest = parity = 0
    for i in range(0, len(a), _CHUNK):
        c = a[i : i + _CHUNK]
        inside = (np.cumsum(c == 34, dtype=np.int32) + parity) & 1
        parity = int(inside[-1])
        step = ((c == 91) | (c == 123)).astype(np.int32) - ((c == 93) | (c == 125))
        d = np.cumsum(step * (inside == 0), dtype=np.int64) + depth
        deepest, depth = max(deepest, int(d.max())), int(d[-1])
    return deepest


def _constant(name: str) -> Any:  # NaN, Infinity, -Infinity: Python's json reads them, JSON does not
    raise _bad(f"{name} is not a number JSON allows (NaN and infinity are refused)")


def node_cap(limits: Limits) -> int:
    """The most nodes a run file may hold: what a search of this server may return (its
    node cap, passed by at most the last step, whose nodes cost at least one NFE each)."""
    return limits.max_nodes + max(limits.nfe_points, limits.nfe_embedded_image, limits.nfe_image)


def read_json(path: Any, limits: Limits) -> dict:
    """The file's JSON object, within the byte, node and depth limits."""
    if not isinstance(path, str) or not os.path.isfile(path):
        raise _bad("nothing uploaded")
    size = os.path.getsize(path)
    if size > limits.max_file_bytes:
        raise _bad(f"{size / 1e6:.1f} MB, at most {limits.max_file_bytes / 1e6:g} MB; {limits.lift('max_file_bytes')}")
    with open(path, "rb") as f:
        data = f.read()
    nodes = data.count(b'"parent"')  # one per tree node (an upper bound: text may contain it too)
    if nodes > node_cap(limits) + 1_000:
        raise _bad(f"about {nodes:,} tree nodes, at most {node_cap(limits):,} per request; {limits.lift('max_nodes')}")
    if _depth(data) > MAX_DEPTH:
        raise _bad(f"nested more than {MAX_DEPTH} levels deep: not a DTS Explorer run")
    try:
        d = json.loads(data.decode("utf-8"), parse_constant=_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _bad("not a JSON file") from None
    if not isinstance(d, dict) or not isinstance(d.get("tree"), dict) or not isinstance(d.get("ledger"), dict):
        raise _bad("not a DTS Explorer run (no tree or ledger)")
    return d


def _config_from_dict(d: Any, limits: Limits) -> SearchConfig:
    if not isinstance(d, dict):
        raise _bad("no 'config' object (save runs with the app or `search --json`)")
    names = {f.name for f in fields(SearchConfig)}
    unknown = sorted(k for k in d if k not in names)
    if unknown:
        raise _bad(f"unknown config knob {str(unknown[0])[:40]!r}")
    kw = dict(d)
    for k, v in kw.items():
        if k in FIELDS:
            if type(v) is int and abs(v) > INT:  # (check() converts to float: OverflowError)
                raise _bad(f"config.{k} is too large")
            if v is None and getattr(_DEFAULT, k) is not None:  # (cross-field rules compare it)
                raise _bad(f"config.{k} must be set")
            FIELDS[k].check(v)  # the same checks as every request: types, ranges, choices
        elif k in ("backend", "preset", "algorithm", "verifier", "heldout", "model", "verifier_model", "prompt"):
            if v is not None and (not isinstance(v, str) or len(v) > (limits.max_text if k in ("model", "prompt") else TEXT)):
                raise _bad(f"config.{k} must be text of at most {TEXT} characters")
        elif k == "condition" and type(v) is not bool:
            raise _bad("config.condition must be true or false")
    if "target" in kw:
        kw["target"] = target_value(kw["target"])
    obs = _list(kw.get("obstacles") or [], "config.obstacles", limits.max_obstacles)
    specs = []
    for o in obs:
        if isinstance(o, dict) and set(o) <= {"kind", "value", "eta", "q_star"}:
            value = o.get("value")
            v = _vector(value, "an obstacle's value", 4096) if isinstance(value, list) else value
            spec = ObstacleSpec(
                kind=_clean(o.get("kind"), "an obstacle's kind", 40), value=v, eta=o.get("eta"), q_star=o.get("q_star")
            )
            specs.append(ObstacleSpec.parse(obstacle_text(spec)))  # what parse checks: finite, overrides in range
        elif isinstance(o, str) and len(o) <= limits.max_text:
            specs.append(ObstacleSpec.parse(o))
        else:
            raise _bad("cannot read config.obstacles")
    kw["obstacles"] = tuple(specs)
    from ..search.problem import validate

    return validate(SearchConfig(**kw))


class _Clock:
    """The request's deadline while a file is read (checked every 1,024 items)."""

    def __init__(self, limits: Limits, clock=time.monotonic):
        self.limits, self.clock, self.t0 = limits, clock, clock()

    def check(self, i: int) -> None:
        if i & 1023 == 0 and self.clock() - self.t0 > self.limits.deadline_s:
            lim = self.limits
            raise _bad(f"reading took over the {lim.deadline_s:g} s deadline per request; {lim.lift('deadline_s')}")


_NODE_KEYS = frozenset("id parent step t score heldout_score D inside_q status key value visits x0 hits".split())


def _nodes(raw: Any, limits: Limits, clock: _Clock) -> list:
    from ..trace import STATUSES, Node

    raw = _list(raw, "tree.nodes", node_cap(limits))
    out, dim = [], None
    for i, n in enumerate(raw):
        clock.check(i)
        if not isinstance(n, dict) or not n.keys() <= _NODE_KEYS:
            raise _bad(f"tree node {i} is not a node")
        parent = n.get("parent")
        if (
            n.get("id") != i
            or type(n.get("id")) is not int
            or (parent is not None and (type(parent) is not int or not 0 <= parent < i))
        ):
            raise _bad(f"tree node {i} has a bad id or parent")
        if n.get("status", "kept") not in STATUSES:
            raise _bad(f"tree node {i} has an unknown status")
        x0 = n.get("x0")
        if x0 is not None:
            x0 = _vector(x0, f"node {i} x0", 4096)
            dim = len(x0) if dim is None else dim
            if len(x0) != dim or not x0:
                raise _bad(f"node {i} x0 has {len(x0)} numbers, other nodes {dim}")
        if type(n.get("inside_q", False)) is not bool:
            raise _bad(f"node {i} inside_q must be true or false")
        key = _list(n.get("key") or [], f"node {i} key", 64)
        out.append(
            Node(
                id=i,
                parent=parent,
                step=_int(n.get("step"), f"node {i} step", 0, 100_000),
                t=_num(n.get("t"), f"node {i} t", none=False, bound=1e3),
                score=_num(n.get("score"), f"node {i} score"),
                heldout_score=_num(n.get("heldout_score"), f"node {i} heldout_score"),
                D=_num(n.get("D"), f"node {i} D"),
                inside_q=n.get("inside_q", False),
                status=n.get("status", "kept"),
                key=tuple(_int(k, f"node {i} key", -INT, INT) for k in key),
                value=_num(n.get("value"), f"node {i} value"),
                visits=_int(n.get("visits"), f"node {i} visits", none=True),
                x0=x0,
                hits=tuple(_int(h, f"node {i} hits", 0, 4096) for h in _list(n.get("hits") or [], f"node {i} hits", 64)),
            )
        )
    return out


def _obstacle(o: Any, i: int) -> dict:
    what = f"obstacle {i}"
    if not isinstance(o, dict):
        raise _bad(f"{what} is not an object")
    pts = o.get("points")
    if pts is not None:
        pts = [_vector(p, f"{what} points", 4096) for p in _list(pts, f"{what} points", 4096)]
        if len({len(p) for p in pts}) > 1:
            raise _bad(f"{what} points differ in length")
    out = {k: _clean(o[k], f"{what} {k}") for k in ("kind", "label", "space", "mode", "measure") if o.get(k) is not None}
    out.update(points=pts, n_points=_int(o.get("n_points", len(pts or [])), f"{what} n_points"))
    out.update(radius=_num(o.get("radius", 0.0), f"{what} radius", none=False, bound=COORD))
    out.update(eta=_num(o.get("eta"), f"{what} eta", bound=COORD), q_star=_num(o.get("q_star"), f"{what} q_star", False, COORD))
    if out["radius"] < 0 or out["q_star"] <= 0 or "kind" not in out:
        raise _bad(f"{what} needs a kind, a radius ≥ 0 and Q* > 0")
    return out


def _point(p: Any) -> tuple[int, float | None]:
    if not isinstance(p, list) or len(p) != 2:
        raise _bad("a curve point must be [NFEs, score]")
    return _int(p[0], "curve NFEs"), _num(p[1], "curve value")


def _result_from_dict(d: dict, limits: Limits, clock: _Clock):
    import torch

    from ..ledger import Budget, Ledger
    from ..search.types import Candidate, SearchResult
    from ..trace import Trace

    tree = Trace()
    tree.nodes = _nodes(d["tree"].get("nodes"), limits, clock)
    tree.events = [_plain(e, "tree.events") for e in _list(d["tree"].get("events") or [], "tree.events", node_cap(limits))]
    n_nodes = len(tree.nodes)
    shape = tuple(_int(s, "best_shape", 1, 1 << 20) for s in _list(d.get("best_shape") or [], "best_shape", 8))
    size = math.prod(shape) if shape else None
    if size is not None and size > 1 << 22:
        raise _bad("best_shape is too large")

    def tensor(values, what):
        if values is None:
            return None
        xs = _vector(values, what)
        if size is not None and len(xs) != size:
            raise _bad(f"{what} has {len(xs)} numbers, best_shape says {size}")
        t = torch.tensor(xs, dtype=torch.float32)
        return t.reshape(shape) if shape else t

    def cand(c, i):
        if not isinstance(c, dict):
            raise _bad(f"candidate {i} is not an object")
        clock.check(i)
        x = tensor(c.get("sample"), f"candidate {i} sample")
        return Candidate(
            x0=x if x is not None else torch.zeros(0),
            score=_num(c.get("score"), f"candidate {i} score", none=False),
            heldout_score=_num(c.get("heldout_score"), f"candidate {i} heldout_score"),
            node_id=_int(c.get("node_id"), f"candidate {i} node_id", 0, max(0, n_nodes - 1)),
            key=tuple(_int(k, f"candidate {i} key", -INT, INT) for k in _list(c.get("key") or [], f"candidate {i} key", 64)),
            flags=tuple(_clean(f, f"candidate {i} flags", 40) for f in _list(c.get("flags") or [], f"candidate {i} flags", 16)),
        )

    lg = dict(d["ledger"])
    budget = _int(lg.pop("budget", None), "ledger budget", 1, INT, none=True)
    counters = {f.name for f in fields(Ledger)} - {"budget"}
    if not set(lg) <= counters:
        raise _bad(f"unknown ledger counter {str(sorted(set(lg) - counters)[0])[:40]!r}")
    ledger = Ledger(budget=Budget(budget), **{k: _int(v, f"ledger {k}") for k, v in lg.items()})
    curve = [_point(p) for p in _list(d.get("curve") or [], "curve", node_cap(limits) + 1)]
    metrics = d.get("metrics") or {}
    if not isinstance(metrics, dict) or len(metrics) > 64:
        raise _bad("metrics must be an object of at most 64 numbers or lists")
    num = lambda v, k: v if v is None or type(v) is bool else _num(v, f"metric {str(k)[:40]}")
    each = lambda v, k: [num(x, k) for x in _list(v, f"metric {str(k)[:40]}", 4096)] if isinstance(v, list) else num(v, k)
    metrics = {_clean(k, "metrics", 60): each(v, k) for k, v in metrics.items()}  # numbers; per-obstacle lists
    best_node = _int(d.get("best_node"), "best_node", 0, max(0, n_nodes - 1), none=True)
    if best_node is not None and not n_nodes:
        raise _bad("best_node is not a node of the tree")
    draws = d.get("draws")
    return SearchResult(
        best=tensor(d.get("best"), "best"),
        best_score=_num(d.get("best_score"), "best_score"),
        heldout_score=_num(d.get("heldout_score"), "heldout_score"),
        candidates=[cand(c, i) for i, c in enumerate(_list(d.get("candidates") or [], "candidates", node_cap(limits)))],
        ledger=ledger,
        tree=tree,
        message=_clean(d.get("message", "finished"), "message"),
        partial=d.get("partial", False) is True,
        best_node=best_node,
        metrics=metrics,
        obstacles=[_obstacle(o, i) for i, o in enumerate(_list(d.get("obstacles") or [], "obstacles", limits.max_obstacles))],
        curve=curve,
        error=None if d.get("error") is None else _clean(d["error"], "error"),
        draws=None if draws is None else [cand(c, i) for i, c in enumerate(_list(draws, "draws", node_cap(limits)))],
    )


def load_run(path: Any, limits: Limits | None = None, clock=time.monotonic) -> tuple[SearchConfig, Any]:
    """A saved run back as ``(config, result)``, read within ``limits`` (default: the
    local profile).

    Raises:
        ConfigError: the file is too large, too deep, not JSON or not a run, a field has the
            wrong type, range or shape, or reading passed the deadline (one line saying why).
    """
    limits = limits or Limits()
    timer = _Clock(limits, clock)
    d = read_json(path, limits)
    cfg = _config_from_dict(d.get("config"), limits)
    return cfg, _result_from_dict(d, limits, timer)
