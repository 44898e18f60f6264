"""Save, share and reopen a run.

- :func:`run_payload` / :func:`save_run`: a run as JSON in the CLI's schema (what
  ``python -m dts_app search --json`` writes: ``SearchResult.to_dict()`` plus ``config``
  and ``backend``), so a file saved in the app opens in any tool that reads the CLI's.
- :func:`load_run`: such a file (from the app or the CLI) back into a
  :class:`~dts_app.config.SearchConfig` and a :class:`~dts_app.search.types.SearchResult`
  that the app renders like a fresh one; every field is checked and a bad file gets one
  line saying what is wrong.
- :func:`query_string` / :func:`values_from_query`: the app's controls as URL query
  parameters (only those that differ from the defaults), so a link reproduces the view.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import fields
from typing import Any
from urllib.parse import urlencode

from ..config import ConfigError, ObstacleSpec, SearchConfig
from .inputs import INPUTS, input_values

__all__ = ["MAX_FILE_BYTES", "run_payload", "save_run", "load_run", "query_string", "values_from_query", "config_inputs"]

MAX_FILE_BYTES = 64_000_000  # the largest run file the app opens


def run_payload(result, cfg: SearchConfig, backend=None) -> dict:
    """The CLI's JSON of a run (``search --json``): result, ``config`` and ``backend``."""
    out = result.to_dict(True)
    out["config"] = cfg.to_dict()
    if backend is not None:
        out["backend"] = backend.describe()
    return out


def save_run(result, cfg: SearchConfig, backend=None, directory: str | None = None) -> str:
    """Write the run's JSON to a new file and return its path (``dts_<backend>_<algorithm>_seed<k>.json``)."""
    payload = run_payload(result, cfg, backend)
    text = json.dumps(payload, allow_nan=False)
    d = tempfile.mkdtemp(prefix="dts_run_", dir=directory)
    path = os.path.join(d, f"dts_{cfg.backend}_{cfg.algorithm}_seed{cfg.seed}.json")
    with open(path, "w") as f:
        f.write(text)
    return path


def _config_from_dict(d: Any) -> SearchConfig:
    if not isinstance(d, dict):
        raise ConfigError("run file: no 'config' object (save runs with the app or `search --json`)")
    names = {f.name for f in fields(SearchConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"run file: unknown config knob {unknown[0]!r}")
    kw = dict(d)
    obs = kw.get("obstacles") or []
    if not isinstance(obs, list):
        raise ConfigError("run file: config.obstacles must be a list")
    try:
        kw["obstacles"] = tuple(ObstacleSpec(**o) if isinstance(o, dict) else ObstacleSpec.parse(o) for o in obs)
    except TypeError:
        raise ConfigError("run file: cannot read config.obstacles") from None
    for o in kw["obstacles"]:  # re-check what parse checks (finite coordinates, overrides in range)
        ObstacleSpec.parse(_obstacle_text(o))
    from ..search.problem import validate

    return validate(SearchConfig(**kw))


def _obstacle_text(o: ObstacleSpec) -> str:
    v = o.value
    text = f"{o.kind}:" + (",".join(repr(float(x)) for x in v) if isinstance(v, (list, tuple)) else str(v))
    opts = [f"eta={o.eta!r}"] if o.eta is not None else []
    opts += [f"q={o.q_star!r}"] if o.q_star is not None else []
    return text + ("@" + ",".join(opts) if opts else "")


def _num(v: Any, what: str, none: bool = True) -> float | None:
    if v is None and none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"run file: {what} must be a finite number, got {str(v)[:30]}")
    return float(v)


def _result_from_dict(d: dict):
    import torch

    from ..ledger import Budget, Ledger
    from ..search.types import Candidate, SearchResult
    from ..trace import STATUSES, Node, Trace

    try:
        shape = tuple(int(s) for s in (d.get("best_shape") or ()))
        tree = Trace()
        raw = d["tree"]["nodes"]
        for i, n in enumerate(raw):
            if n["id"] != i or (n["parent"] is not None and not 0 <= n["parent"] < i):
                raise ConfigError(f"run file: tree node {i} has a bad id or parent")
            if n.get("status") not in STATUSES:
                raise ConfigError(f"run file: tree node {i} has an unknown status")
            node = Node(**{k: v for k, v in n.items() if k != "key"}, key=tuple(n.get("key") or ()))
            for k in ("t", "score", "heldout_score", "D", "value"):
                _num(getattr(node, k), f"node {i} {k}", none=k != "t")
            tree.nodes.append(node)
        tree.events = list(d["tree"].get("events") or [])

        def tensor(values, what):
            if values is None:
                return None
            t = torch.tensor([_num(v, what, none=False) for v in values], dtype=torch.float32)
            return t.reshape(shape) if shape and t.numel() == math.prod(shape) else t

        def cand(c):
            x = tensor(c.get("sample"), "candidate sample")
            return Candidate(
                x0=x if x is not None else torch.zeros(0),
                score=_num(c["score"], "candidate score", none=False),
                heldout_score=_num(c.get("heldout_score"), "held-out score"),
                node_id=int(c["node_id"]),
                key=tuple(c.get("key") or ()),
                flags=tuple(c.get("flags") or ()),
            )

        lg = dict(d["ledger"])
        budget = lg.pop("budget", None)
        ledger = Ledger(budget=Budget(budget), **lg)
        curve = [(int(a), _num(b, "curve value")) for a, b in d.get("curve") or []]
        result = SearchResult(
            best=tensor(d.get("best"), "best"),
            best_score=_num(d.get("best_score"), "best_score"),
            heldout_score=_num(d.get("heldout_score"), "heldout_score"),
            candidates=[cand(c) for c in d.get("candidates") or []],
            ledger=ledger,
            tree=tree,
            message=str(d.get("message", "finished"))[:200],
            partial=bool(d.get("partial", False)),
            best_node=d.get("best_node"),
            metrics=dict(d.get("metrics") or {}),
            obstacles=list(d.get("obstacles") or []),
            curve=curve,
            error=d.get("error"),
            draws=[cand(c) for c in d["draws"]] if d.get("draws") is not None else None,
        )
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(f"run file: not a DTS Explorer run ({type(e).__name__.lower()} reading {str(e)[:60]})") from None
    if result.best_node is not None and not 0 <= result.best_node < len(tree.nodes):
        raise ConfigError("run file: best_node is not a node of the tree")
    return result


def load_run(path: str) -> tuple[SearchConfig, Any]:
    """A saved run back as ``(config, result)``.

    Raises:
        ConfigError: the file is too large, not JSON or not a run (one line saying why).
    """
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ConfigError("run file: nothing uploaded")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise ConfigError(f"run file: over {MAX_FILE_BYTES // 1_000_000} MB")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError("run file: not a JSON file") from None
    if not isinstance(d, dict) or "tree" not in d or "ledger" not in d:
        raise ConfigError("run file: not a DTS Explorer run (no tree or ledger)")
    cfg = _config_from_dict(d.get("config"))
    return cfg, _result_from_dict(d)


def config_inputs(cfg: SearchConfig) -> dict:
    """The app's control values (:data:`INPUTS` names) that reproduce ``cfg``'s knobs."""
    vals = dict(zip(INPUTS, input_values()))
    for k in INPUTS:
        if k in ("obstacles", "embed", "tree_view"):
            continue
        v = getattr(cfg, k, None)
        vals[k] = "" if v is None and k in ("model", "prompt", "verifier_model") else v
    vals["obstacles"] = "\n".join(_obstacle_text(o) for o in cfg.obstacles)
    return vals


def query_string(values: dict) -> str:
    """URL query parameters for the controls that differ from the defaults (``n=16&avoid=smc``)."""
    base = dict(zip(INPUTS, input_values()))
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
