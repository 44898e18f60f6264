"""The second hardening, served: a Space-mode app on 127.0.0.1 with its own Gradio temp
folder, driven as a browser (raw queue calls in one session) and an API client would:
sessions keep the app's validation after control updates, ``/open_run`` and
``/save_run`` work under the search limits, the temp folder stays bounded, and the
framework's own errors reach a visitor as one line of ours."""

from __future__ import annotations

import json
import logging
import os
import random
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from test_reliability import status_ok
from test_ui_client import free_port

from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.limits import Limits
from dts_app.ui.serving import REFUSED

SPACE = replace(Limits.space(), deadline_s=30.0, max_file_bytes=1_000_000, saved_files=4)
LEAKS = ("gradio.", "object at 0x", "Traceback", "Error:", "/tmp", "site-packages", "needed:")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(handlers, demo, url, temp folder)``: the app in space mode with its own GRADIO_TEMP_DIR."""
    from dts_app.ui.layout import build_demo

    temp = tmp_path_factory.mktemp("gradio_temp")
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(temp)
    h = AppHandlers(limits=SPACE)
    demo = build_demo(h, umap_warmup=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield h, demo, f"http://127.0.0.1:{port}/", temp
    finally:
        demo.close()
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old


@pytest.fixture()
def app_log(caplog):
    caplog.set_level(logging.ERROR, logger="dts_app")
    return caplog


def fn_index(demo, name: str) -> int:
    """The dependency whose function or API name is ``name``."""
    for i, d in enumerate(demo.config["dependencies"]):
        if d.get("api_name") == name:
            return i
    return next(i for i, f in demo.fns.items() if f.name == name)


def call(url: str, index: int, data: list, session: str, event_data=None, query: str = "") -> dict:
    """One event through the queue as the browser sends it (``query``: the page's link
    parameters, which the load event reads); the completed message."""
    body = {"data": data, "fn_index": index, "session_hash": session, "event_data": event_data, "trigger_id": None}
    join = httpx.post(url + "gradio_api/queue/join" + query, json=body, timeout=30)
    if join.status_code != 200:
        return {"success": False, "output": {"error": join.text}}
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=120) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError("no answer")


def status_of(msg: dict) -> str:
    """The status line of a search answer, or the error text."""
    if not msg.get("success"):
        return str(msg["output"].get("error"))
    return msg["output"]["data"][1]


def client(url: str, tmp_path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(tmp_path))  # downloads outside the server's temp


def run_file(h: AppHandlers, tmp_path, **kw) -> str:
    """A run saved by the CLI's schema with the given controls."""
    from dts_app.ui.runfile import run_text
    from dts_app.ui.state import SessionState

    state = SessionState()
    assert h.run(state, *input_values(**kw))["status"].startswith("**finished**")
    p = tmp_path / f"run_{uuid.uuid4().hex[:6]}.json"
    p.write_text(run_text(state.result, state.config))
    return str(p)


# ---- one validation path after control updates ---------------------------------------------------
def test_a_session_keeps_the_apps_validation_after_control_updates(served, tmp_path):
    """After a backend change, a reopen or a link, the session's copies of the controls used
    Gradio's checks: n = 300 (valid for the server, beyond the slider) got "Value 300 is
    greater than maximum value 256" and a traceback."""
    h, demo, url, _ = served
    release = fn_index(demo, "release_n")
    vals = input_values(n=300, steps=4)
    for update in ("on_backend", "open_run", "link"):
        session = uuid.uuid4().hex[:10]
        if update == "on_backend":
            msg = call(url, fn_index(demo, "on_backend"), ["gmm"], session)
        elif update == "link":  # the page opened from a link with n = 300: its load event runs it
            msg = call(url, fn_index(demo, "on_load"), [None], session, query="?n=300&steps=4&budget=0")
            assert status_of(msg).startswith("**finished**") and "1,200 NFEs" in status_of(msg), msg
        else:
            path = run_file(h, tmp_path, n=300, steps=4)
            c = client(url, tmp_path)
            c.session_hash = session
            from gradio_client import handle_file

            assert c.predict(handle_file(path), api_name="/open_run")[0].startswith("**reopened**")
            msg = {"success": True}
        assert msg["success"], msg
        answer = status_of(call(url, release, [None, *vals], session))
        assert answer.startswith("**finished**") and "1,200 NFEs" in answer, (update, answer)
        bad = status_of(call(url, release, [None, *input_values(n=200_000)], session))
        assert bad == "⚠️ --n: 200000 is outside [1, 100000]", (update, bad)


def test_a_reopened_value_beyond_a_slider_widens_its_range(served, tmp_path):
    from gradio_client import handle_file

    h, _, url, _ = served
    out = client(url, tmp_path).predict(handle_file(run_file(h, tmp_path, n=300, steps=2)), api_name="/open_run")
    assert out[0].startswith("**reopened**")
    import gradio as gr

    from dts_app.ui.controls import control_updates
    from dts_app.ui.runfile import config_inputs, load_run

    cfg, _ = load_run(run_file(h, tmp_path, n=300, steps=2), SPACE)
    upd = control_updates(gr, h, config_inputs(cfg))
    assert upd["n"]["value"] == 300 and upd["n"]["maximum"] == 300 and "maximum" not in upd["m"]


# ---- run files through the API -------------------------------------------------------------------
def test_open_run_and_save_run_are_api_endpoints(served, tmp_path):
    from gradio_client import handle_file

    h, demo, url, _ = served
    fns = {f.api_name: f for f in demo.fns.values()}
    assert {fns["open_run"].concurrency_id, fns["save_run"].concurrency_id} == {"search"}
    c = client(url, tmp_path)
    saved, msg = c.predict(api_name="/save_run")
    assert saved is None and msg == "⚠️ save: run a search first"
    out = c.predict(handle_file(run_file(h, tmp_path, n=3, steps=4)), api_name="/open_run")
    status_ok(out[0])
    assert out[0].startswith("**reopened**") and "12 NFEs" in out[0]
    saved, msg = c.predict(api_name="/save_run")
    assert msg.startswith("saved: ") and json.loads(Path(saved).read_text())["ledger"]["denoiser_nfe"] == 12
    bad = tmp_path / "deep.json"
    bad.write_text('{"tree": ' + "[" * 50_000 + "]" * 50_000 + ', "ledger": {}}')
    out = c.predict(handle_file(str(bad)), api_name="/open_run")
    assert out[0].startswith("⚠️ run file:") and "nested" in out[0]


# ---- disk ---------------------------------------------------------------------------------------------
def test_the_temp_folder_stays_bounded_over_100_saves_and_uploads(served, tmp_path):
    """Every save added a file in Gradio's temp folder (plus a copy elsewhere) and every
    upload stayed: 200 files after 100 rounds. Now saved runs are written once, where
    Gradio serves them, the newest ``saved_files`` kept; an upload is deleted once read."""
    from gradio_client import handle_file

    h, _, url, temp = served
    c = client(url, tmp_path)
    cfg = httpx.get(url + "config", timeout=30).json()
    assert cfg["max_file_size"] == SPACE.max_file_bytes  # was null: any upload was accepted
    for i in range(100):
        c.predict(n=1, steps=1, seed=i, api_name="/release_n")  # a new run: a new file to save
        saved, msg = c.predict(api_name="/save_run")
        assert msg.startswith("saved: "), msg
        if i % 10 == 0:  # the saved file itself, opened again (a full redraw)
            out = c.predict(handle_file(saved), api_name="/open_run")
            assert out[0].startswith("**reopened**"), out[0]
        else:  # another upload, refused after it was read
            junk = tmp_path / f"junk{i}.json"
            junk.write_text(json.dumps({"tree": {"nodes": []}, "ledger": {}, "config": {"n": -i}}))
            out = c.predict(handle_file(str(junk)), api_name="/open_run")
            assert out[0].startswith("⚠️ --n"), out[0]
    files = [p for p in Path(temp).rglob("*") if p.is_file()]
    runs = [p for p in files if p.suffix == ".json"]
    assert len(runs) <= SPACE.saved_files, sorted(str(p.relative_to(temp)) for p in runs)
    assert sum(p.stat().st_size for p in files) < 2_000_000
    assert len(h.saved_files.files()) == SPACE.saved_files


def test_an_upload_over_the_cap_is_refused(served):
    _, _, url, temp = served
    before = {p for p in Path(temp).rglob("*") if p.is_file()}
    resp = httpx.post(url + "gradio_api/upload", files={"files": ("big.json", b" " * (SPACE.max_file_bytes + 10))}, timeout=60)
    assert resp.status_code == 413
    assert {p for p in Path(temp).rglob("*") if p.is_file()} == before


# ---- the framework's errors, private events ------------------------------------------------------------
def test_framework_errors_reach_the_visitor_as_one_line_of_ours(served):
    """A call with 3 of 25 values answered "didn't receive enough input values (needed: 26,
    got: 3)… <gradio.components.state.State object at 0x…>"; an image select without
    event data "'NoneType' object is not subscriptable"."""
    _, demo, url, _ = served
    session = uuid.uuid4().hex[:10]
    for name, data in (("release_n", [None, 1, 2]), ("release_n", [None, *input_values(n={"x": 1})][:5] + [[]] * 30)):
        msg = call(url, fn_index(demo, name), data, session)
        err = status_of(msg)
        assert err == REFUSED or err.startswith("⚠️ "), err
        assert not any(s in err for s in LEAKS), err
    msg = call(url, fn_index(demo, "on_select"), [None], session, event_data=None)
    assert msg["success"] and msg["output"]["data"][1] == "⚠️ select: no image was selected", msg
    msg = call(url, fn_index(demo, "on_select"), [None], session, event_data={"index": 2, "value": None, "selected": True})
    assert msg["success"] and msg["output"]["data"][1].startswith("image 2 selected"), msg


PRIVATE = ["on_backend", "on_preset", "add_target_obstacle", "hazard_text", "mark", "place", "on_select", "inspect", "redraw",
           "share_query"]  # fmt: skip
JUNK = [None, "", "gmm", "trap", 3, -1, 1e300, "nan", [1, 2], {"a": 1}, "<script>alert(1)</script>", "x" * 5000,
        '{"x": 1e300, "y": 0}', '{"id": -1}', '{"id": 3}', '{"x": 0, "y": 0}', "point:" + "9" * 4000 + ",0"]  # fmt: skip


def test_private_events_answer_junk_with_a_line_of_ours(served, app_log):
    """The events the page wires (not API endpoints) are reached by any client that knows
    their index: every answer is a result or one line of ours, nothing is logged as a bug."""
    _, demo, url, _ = served
    rng = random.Random(7)
    session = uuid.uuid4().hex[:10]
    call(url, fn_index(demo, "release_n"), [None, *input_values(n=2, steps=2)], session)  # a result to act on
    for name in PRIVATE:
        idx = fn_index(demo, name)
        n_in = len(demo.config["dependencies"][idx]["inputs"])
        for _ in range(12):
            data = [rng.choice(JUNK) for _ in range(n_in)]
            if name in ("mark", "inspect", "redraw", "on_select"):
                data[0] = None  # the session's state
            ev = rng.choice([None, {"index": rng.choice(JUNK)}, {"index": 1}])
            msg = call(url, idx, data, session, event_data=ev)
            text = json.dumps(msg.get("output"))[:20_000] if msg.get("success") else status_of(msg)
            assert msg.get("success") or text == REFUSED, (name, data, text[:300])
            assert "internal error" not in text and not any(s in text for s in LEAKS[:4]), (name, text[:300])
    assert not [r for r in app_log.records if r.levelno >= logging.ERROR], [r.getMessage() for r in app_log.records]


def test_crafted_files_through_open_run(served, tmp_path, app_log):
    """The upload path of the fuzzer: crafted run files sent to ``/open_run`` as a client would."""
    from gradio_client import handle_file
    from test_fuzz_runfiles import crafted

    h, _, url, _ = served
    c = client(url, tmp_path)
    payload = json.loads(Path(run_file(h, tmp_path, n=3, steps=4, obstacles="point:1,1", avoid="repulsion")).read_text())
    rng = random.Random(11)
    for i in range(16):
        p = tmp_path / f"crafted{i}.json"
        p.write_text(crafted(rng, payload))
        out = c.predict(handle_file(str(p)), api_name="/open_run")
        status_ok(out[0])
        assert not any(s in out[0] for s in LEAKS), out[0]
    assert not [r for r in app_log.records if r.levelno >= logging.ERROR], [r.getMessage() for r in app_log.records]
