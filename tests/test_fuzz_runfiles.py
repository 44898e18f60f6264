"""The fuzzer on the upload path: crafted run files (one field of a real run replaced by
junk: NaN and infinity, numbers too large for a float, wrong types, HTML, deep nesting),
a 10⁶-node tree and a 64 MB file, generated in a temporary folder. Every file reopens or
gets one line of ours naming what is wrong; nothing reaches the log as a bug; the large
files are refused before they are parsed. (The served half, ``/open_run`` and the
private events, is in ``test_ui_hardening_served.py``.)"""

from __future__ import annotations

import copy
import json
import logging
import math
import random

import pytest
from test_reliability import status_ok

from dts_app.ui import runfile
from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.limits import Limits
from dts_app.ui.runfile import run_text
from dts_app.ui.state import SessionState

FUZZ = Limits(max_nodes=5_000, deadline_s=20.0, max_file_bytes=4_000_000, max_obstacles=16, draw_nodes=1_000)
DEEP = {"a": json.loads("[" * 24 + "1" + "]" * 24)}
JUNK = [math.nan, math.inf, -math.inf, 10**400, -(10**400), 1e308, "<script>alert(1)</script>", '<img src=x onerror=alert(1)>',
        "", "x" * 5000, None, True, False, [], {}, [None], {"id": 1}, -1, 0, 2**63, 0.5, "1", [math.nan], [[1, 2], [3]], DEEP]  # fmt: skip


@pytest.fixture(scope="module")
def handlers() -> AppHandlers:
    return AppHandlers(limits=FUZZ)


@pytest.fixture(scope="module")
def payloads(handlers) -> list[dict]:
    """Real runs' JSON: best-of-N with an obstacle, a tree search, SMC."""
    out = []
    for kw in (dict(n=3, steps=4, obstacles="point:1,1", avoid="repulsion"), dict(algorithm="paths", n=2, m=2, steps=4),
               dict(algorithm="smc", n=3, steps=4)):  # fmt: skip
        state = SessionState()
        assert handlers.run(state, *input_values(**kw))["status"].startswith("**finished**")
        out.append(json.loads(run_text(state.result, state.config)))
    return out


def places(obj, path=()):
    """Every path into ``obj`` (containers and leaves)."""
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from places(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            yield from places(v, (*path, i))


def crafted(rng: random.Random, payload: dict) -> str:
    """The payload with one to three places replaced by junk, as JSON text (NaN written as
    Python writes it), now and then wrapped in deep nesting or truncated."""
    d = copy.deepcopy(payload)
    all_places = [p for p in places(d) if p]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(all_places)
        cur = d
        try:
            for k in path[:-1]:
                cur = cur[k]
            cur[path[-1]] = copy.deepcopy(rng.choice(JUNK))
        except (KeyError, IndexError, TypeError):
            pass  # a place a previous change removed
    text = json.dumps(d, allow_nan=True)
    r = rng.random()
    if r < 0.05:
        return "[" * 100_000 + text + "]" * 100_000
    if r < 0.1:
        return text[: rng.randint(0, len(text))]
    return text


def test_fuzz_crafted_run_files(handlers, payloads, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="dts_app")
    rng = random.Random(2025)
    kinds = {"reopened": 0, "refused": 0}
    for i in range(240):
        p = tmp_path / f"f{i}.json"
        p.write_text(crafted(rng, rng.choice(payloads)))
        out = handlers.reopen(SessionState(), str(p))
        status_ok(out["status"])
        kinds["reopened" if out["status"].startswith("**reopened**") else "refused"] += 1
        if out["status"].startswith("**reopened**"):  # what reopened saves again as valid JSON
            state = out["state"]
            assert json.loads(run_text(state.result, state.config))
    assert kinds["reopened"] >= 8 and kinds["refused"] >= 150, kinds  # both paths exercised
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records][:3]


def big_tree(path, n: int, payload: dict) -> None:
    """A run file with an ``n``-node tree, written by templating (the audit's 10⁶ nodes: 60 MB)."""
    node = '{"id":%d,"parent":%s,"step":%d,"t":0.5,"status":"kept"}'
    head = json.dumps({k: v for k, v in payload.items() if k != "tree"})
    with open(path, "w") as f:
        f.write(head[:-1] + ', "tree": {"events": [], "nodes": [')
        f.write(",".join(node % (i, "null" if i == 0 else (i - 1) // 2, min(i.bit_length(), 999)) for i in range(n)))
        f.write("]}}")


@pytest.fixture(scope="module")
def large_files(payloads, tmp_path_factory) -> tuple:
    d = tmp_path_factory.mktemp("large")
    big, huge = d / "million.json", d / "64mb.json"
    big_tree(big, 1_000_000, payloads[0])
    huge.write_text(json.dumps(payloads[0])[:-1] + ', "pad": "' + "x" * (64 * 2**20) + '"}')
    return big, huge


@pytest.mark.parametrize("limits", [FUZZ, Limits(), Limits.space()], ids=["small", "local", "space"])
def test_a_million_nodes_and_64_mb_are_refused_before_parsing(large_files, monkeypatch, limits):
    """A 59 MB file with 10⁶ nodes took 9–11 s of CPU and kept 370 MB per session (here:
    23.6 s and +1.3 GB of RSS before; refused in 0.2 s, RSS unchanged, after)."""
    parsed = []
    monkeypatch.setattr(runfile.json, "loads", lambda *a, **k: parsed.append(1) or json.loads(*a, **k))
    h = AppHandlers(limits=limits)
    for path in large_files:
        out = h.reopen(SessionState(), str(path))
        status_ok(out["status"])
        assert out["status"].startswith("⚠️ run file:") and ("tree nodes" in out["status"] or "MB" in out["status"]), out["status"]
        assert f"{path.stat().st_size / 1e6:.1f} MB" in out["status"] or path.stat().st_size <= limits.max_file_bytes
    assert parsed == []


def test_every_config_knob_refuses_junk(handlers, payloads, tmp_path, caplog):
    """Each knob of the saved config set to junk: one line naming it, never a bug (a None
    ``delta_b`` reached the cross-field rules as a TypeError; 10**400 an OverflowError)."""
    from dataclasses import fields

    from dts_app.config import SearchConfig

    caplog.set_level(logging.ERROR, logger="dts_app")
    for f in fields(SearchConfig):
        for junk in (None, True, "x", [], {}, 10**400):
            d = copy.deepcopy(payloads[0])
            d["config"][f.name] = junk
            p = tmp_path / "c.json"
            p.write_text(json.dumps(d))
            status_ok(handlers.reopen(SessionState(), str(p))["status"])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records][:3]
