"""The second hardening (issue 25): tests that do not depend on the clock, run files under
the search limits, one validation path after control updates, bounded disk, error surfaces
of our own. Each test here failed before its fix."""

from __future__ import annotations

import copy
import json
import logging
import math

import pytest
import torch
from test_reliability import Ticks, status_ok

from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.limits import Limits, configure_threads
from dts_app.ui.runfile import _depth, run_text
from dts_app.ui.state import SessionState

THREADS_AT_IMPORT = torch.get_num_threads()


@pytest.fixture()
def app_log(caplog):
    """Records of the app's logger: an internal error (a bug) logs its traceback there."""
    caplog.set_level(logging.ERROR, logger="dts_app")
    return caplog


# ---- tests restore torch's threads -------------------------------------------------------------
def test_a_test_may_change_torch_threads():
    torch.set_num_threads(THREADS_AT_IMPORT + 2)
    assert configure_threads(10_000) == 1  # as the app does: threads × concurrency ≤ cores


def test_the_next_test_gets_the_threads_back():
    """The app's tests set one thread (``configure_threads``) for every later test before
    ``conftest.restore_threads``; the golden digests once followed that."""
    assert torch.get_num_threads() == THREADS_AT_IMPORT


# ---- run files go through the limits of a search --------------------------------------------------
FILES = Limits(max_nodes=5_000, nfe_points=1_000, nfe_embedded_image=1_000, nfe_image=500, deadline_s=20.0,
               max_file_bytes=2_000_000, max_obstacles=16, draw_nodes=2_000)  # fmt: skip


@pytest.fixture(scope="module")
def files_handlers() -> AppHandlers:
    return AppHandlers(limits=FILES)


@pytest.fixture(scope="module")
def payload(files_handlers) -> dict:
    """A real run's JSON (an obstacle, repulsion: every field filled)."""
    state = SessionState()
    out = files_handlers.run(state, *input_values(n=3, steps=4, obstacles="point:1,1", avoid="repulsion"))
    assert out["status"].startswith("**finished**"), out["status"]
    return json.loads(run_text(state.result, state.config))


def write(tmp_path, obj=None, text=None, name="run.json") -> str:
    p = tmp_path / name
    p.write_text(text if text is not None else json.dumps(obj, allow_nan=True))
    return str(p)


def reopened(h: AppHandlers, path: str) -> str:
    out = h.reopen(SessionState(), path)
    status_ok(out["status"])
    return out["status"]


def mutate(payload: dict, where: str, value) -> dict:
    """A deep copy of ``payload`` with ``where`` (``a.b.0.c``) set to ``value``."""
    d = copy.deepcopy(payload)
    *path, last = where.split(".")
    cur = d
    for k in path:
        cur = cur[int(k)] if isinstance(cur, list) else cur[k]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return d


def test_a_valid_file_reopens(files_handlers, payload, tmp_path):
    assert reopened(files_handlers, write(tmp_path, payload)).startswith("**reopened**")


# every one of these raised an app traceback ("internal error") or leaked a class name before
BAD_FIELDS = [
    ("ledger.denoiser_nfe", 10**400, "ledger denoiser_nfe"),  # OverflowError in viz/hacking
    ("tree.nodes.0.x0", [math.nan, 0.0], "not a number JSON allows"),  # LinAlgError in the PCA
    ("tree.nodes.0.x0", [1e300, 0.0], "node 0 x0"),
    ("tree.nodes.1.x0", [1.0], "node 1 x0"),  # a ragged x̂0 matrix
    ("tree.nodes.0.t", "<b>x</b>", "node 0 t"),  # text where a number belongs (tree_layout._column)
    ("tree.nodes.0.step", "1", "node 0 step"),
    ("tree.nodes.0.score", [1], "node 0 score"),
    ("tree.nodes.0.visits", math.nan, "not a number JSON allows"),  # saving it after reopening failed
    ("tree.nodes.0.key", "abc", "node 0 key"),
    ("tree.nodes.0.bogus", 1, "tree node 0 is not a node"),  # TypeError from Node(**n) named the class
    ("tree.nodes.0.status", "<script>", "unknown status"),
    ("candidates.0.score", "high", "candidate 0 score"),
    ("candidates.0.sample", ["x", 1], "candidate 0 sample"),
    ("candidates.0.node_id", 10**9, "candidate 0 node_id"),
    ("best", [1e308, 1e308], "best"),
    ("best_shape", [3, 3], "best has 2 numbers"),
    ("curve", [[1, 2, 3]], "curve point"),
    ("curve", [["a", None]], "curve NFEs"),
    ("metrics", {"collision_rate": "<img src=x onerror=alert(1)>"}, "metric collision_rate"),
    ("obstacles.0.q_star", -1, "Q* > 0"),
    ("obstacles.0.points", [[1, 2], [3]], "points differ"),
    ("obstacles.0.points", [["a", "b"]], "obstacle 0 points"),
    ("ledger.bogus", 1, "unknown ledger counter"),
    ("ledger", [], "no tree or ledger"),
    ("best_node", -1, "best_node"),
    ("tree.events", [{"kind": math.inf}], "not a number JSON allows"),
    ("config.n", "many", "--n"),
    ("config.backend", ["gmm"], "config.backend"),
    ("config.obstacles", [{"kind": "point", "value": ["a"]}], "an obstacle's value"),
    ("config.obstacles", [{"kind": "point", "value": [1, 1], "eta": "x"}], "--obstacle"),
    ("config.target", {"a": 1}, "target"),
]


@pytest.mark.parametrize("where, value, needle", BAD_FIELDS, ids=[w for w, _, _ in BAD_FIELDS])
def test_every_field_is_checked(files_handlers, payload, tmp_path, app_log, where, value, needle):
    status = reopened(files_handlers, write(tmp_path, mutate(payload, where, value)))
    assert status.startswith("⚠️ ") and needle in status, status
    assert not [r for r in app_log.records if r.levelno >= logging.ERROR]


def test_html_in_text_fields_is_shown_as_text(files_handlers, payload, tmp_path):
    d = mutate(payload, "message", "<img src=x onerror=alert(1)>\nsecond line")
    d["obstacles"][0]["label"] = "<script>alert(1)</script>"
    status = reopened(files_handlers, write(tmp_path, d))
    assert status.startswith("**reopened**") and "<" not in status and "\n" not in status


def test_deep_nesting_is_refused_without_recursion(files_handlers, tmp_path):
    for depth in (100, 200_000):
        text = '{"tree": ' + "[" * depth + "]" * depth + ', "ledger": {}}'
        status = reopened(files_handlers, write(tmp_path, text=text))
        assert "nested more than" in status, status
    assert _depth(b'{"a": "[[[[\\"[[[", "b": [[1]]}') == 3  # brackets inside strings do not count


def test_saving_a_reopened_file_with_nan_is_one_line(files_handlers, payload):
    """A reopened NaN is refused now; a result that holds one anyway saves with our line."""
    state = SessionState()
    files_handlers.run(state, *input_values(n=2, steps=2))
    state.result.tree.nodes[0].value = math.nan
    path, status = files_handlers.save(state)
    assert path is None and status.startswith("⚠️ save:") and "JSON compliant" not in status


def test_node_and_byte_caps_come_before_parsing(files_handlers, payload, tmp_path):
    node = payload["tree"]["nodes"][-1]
    d = dict(payload)
    d["tree"] = {"nodes": [{**node, "id": i, "parent": None} for i in range(7_500)], "events": []}
    status = reopened(files_handlers, write(tmp_path, d))  # the cap: 5,000 nodes and the last step's 1,000
    assert "tree nodes, at most 6,000 per request" in status and "DTS_MAX_NODES" in status, status
    big = write(tmp_path, text=" " * 2_100_000 + "{}")
    assert "at most 2 MB" in reopened(files_handlers, big) and "DTS_MAX_FILE_BYTES" in reopened(files_handlers, big)


def test_reading_stops_at_the_deadline(payload, tmp_path):
    h = AppHandlers(limits=Limits(deadline_s=0.5))
    d = dict(payload)
    node = payload["tree"]["nodes"][-1]
    d["tree"] = {"nodes": [{**node, "id": i, "parent": None} for i in range(3_000)], "events": []}
    h.clock = Ticks(0.3)  # each reading 0.3 s later: past the deadline at the second check (node 1,024)
    status = reopened(h, write(tmp_path, d))
    assert "0.5 s deadline" in status and "DTS_DEADLINE_S" in status, status


# ---- error surfaces --------------------------------------------------------------------------------
def test_a_plane_click_with_a_tiny_q_star_is_a_message(files_handlers):
    """Q* = 1e-300 made the placed line fail ObstacleSpec.parse: an uncaught ConfigError."""
    text, status = files_handlers.place('{"x": 0.5, "y": 1}', 1e-300, "component:1", "gmm")
    assert text == "component:1" and status.startswith("⚠️ click:") and "q=1e-300" in status


def test_a_node_click_with_an_infinite_id_is_ignored(files_handlers):
    state = SessionState()
    files_handlers.run(state, *input_values(n=2, steps=2))
    md, img = files_handlers.inspect_node(state, '{"id": 1e400}')  # json reads inf: int(inf) raised OverflowError
    assert md.startswith("Click a node") and img is None


def test_long_inputs_are_cut_in_messages(files_handlers):
    """A 4,000-character obstacle coordinate was echoed whole in the status line."""
    for text in ("point:" + "1" * 4000 + ",0", "ball:" + "1.5" * 1300, "blob:" + "x" * 3000):
        out = files_handlers.run(SessionState(), *input_values(obstacles=text))
        status_ok(out["status"])
        assert out["status"].startswith("⚠️ --obstacle") and len(out["status"]) < 300, out["status"]


def test_a_run_stopped_at_the_node_cap_reopens(tmp_path):
    """A search passes its node cap by at most its last step; its saved file must reopen on
    the same server (it was refused: "1,200 entries, at most 1,000")."""
    h = AppHandlers(limits=Limits(max_nodes=1_000))
    state = SessionState()
    assert "cap of 1,000 trace nodes" in h.run(state, *input_values(n=300, steps=64))["status"]
    assert len(state.result.tree.nodes) > 1_000
    path, msg = h.save(state)
    assert reopened(h, path).startswith("**reopened**")
