"""The app served on 127.0.0.1 and driven through gradio_client (as an API user would):
named parameters, messages for malformed values, ten concurrent sessions identical to solo
runs, Stop, cancel and disconnect of served runs (the served half of the reliability suite;
the in-process half is ``test_reliability.py``)."""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_reliability import TIMING, fuzz_values, gated, status_ok  # the fuzzer, the status rules, the gated guard

from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.handlers import input_values as values
from dts_app.ui.limits import Limits

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SERVED = Limits(deadline_s=30.0, max_obstacles=16, max_text=2_000, draw_nodes=2_000, sessions=64)
ENDPOINTS = ["/search", "/release_n", "/release_m", "/release_eta", "/release_q_star"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    """The app on a free 127.0.0.1 port: ``(handlers, demo, url)``."""
    from dts_app.ui.layout import build_demo

    h = AppHandlers(limits=SERVED)
    demo = build_demo(h, umap_warmup=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield h, demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def new_client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


@pytest.fixture()
def app_log(caplog):
    caplog.set_level(logging.ERROR, logger="dts_app")
    return caplog


@pytest.fixture(scope="module")
def client(served):
    return new_client(served[2])


def test_search_then_eta_changes_the_result(client):
    a = client.predict(*values(n=6, steps=8), api_name="/search")
    assert a[0].startswith("**finished**") and "48 NFEs" in a[0]
    b = client.predict(*values(n=6, steps=8, eta=2.0), api_name="/release_eta")
    c = client.predict(*values(n=6, steps=8, eta=2.0, seed=1), api_name="/release_eta")
    assert b[0].startswith("**finished**")
    assert a[1] == b[1]  # same seed and no obstacle: η alone leaves the tree unchanged
    assert b[1] != c[1]  # a different seed draws another tree


def test_compare_through_the_api(client):
    out = client.predict(*values(n=4, steps=8), "smc", "", api_name="/compare")
    assert out[0].startswith("**compared** at 32 NFEs"), out[0]
    out = client.predict(*values(n=4, steps=8), "nope", "", api_name="/compare")  # was gradio's own choice error
    assert out[0].startswith("⚠️ --algorithm"), out[0]


def test_sessions_are_bounded_and_do_not_grow(served):
    """Each session's table holds one entry per component however its answers alternate
    between "keep the figures" (an error) and new figures: Gradio 6.31 added an entry,
    holding a whole figure, at every such switch (``keep_session_slots`` fixes it). The
    number of sessions kept is ``Limits.sessions`` (Gradio's ``state_session_capacity``)."""
    _, demo, url = served
    holder = demo.server_app.state_holder
    assert demo.state_session_capacity == SERVED.sessions == holder.capacity
    c = new_client(url)
    sizes = []
    for _ in range(4):
        bad = c.predict(*values(n=2, steps=4, eta="nan"), api_name="/release_n")
        assert bad[0].startswith("⚠️"), bad[0]
        ok = c.predict(*values(n=2, steps=4), api_name="/release_n")
        assert ok[0].startswith("**finished**"), ok[0]
        session = holder.session_data[c.session_hash]
        sizes.append((len(session.config_values), len(session.blocks_config.blocks)))
    assert sizes[-1] == sizes[0], sizes  # before the fix: one more entry per round


def test_bad_input_is_a_visible_message(client):
    out = client.predict(*values(n=6, steps=8, delta_f=5, delta_b=3), api_name="/release_q_star")
    assert out[0] == "⚠️ --delta-b: must exceed --delta-f (5) so paths make progress"
    out = client.predict(*values(n=6, steps=8, obstacles="ball:1"), api_name="/search")
    assert out[0] == "⚠️ --obstacle: cannot read 'ball:1' (use ball:x1,x2,r)"


def test_eta_moves_samples_around_an_obstacle(client):
    pytest.importorskip("dts_app.obstacles.avoidance")
    kw = dict(n=8, steps=32, obstacles="component:1", avoid="repulsion")
    a = client.predict(*values(eta=0.5, **kw), api_name="/release_eta")
    b = client.predict(*values(eta=20.0, **kw), api_name="/release_eta")
    assert a[0].startswith("**") and b[0].startswith("**")
    assert a[0] != b[0] and a[5] != b[5]  # scores and the final candidates moved


def test_endpoints_take_the_knob_names(client):
    from dts_app.ui.inputs import INPUTS

    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert [p["parameter_name"] for p in api["/search"]["parameters"]] == list(INPUTS)
    out = client.predict(n=6, steps=8, budget=0, obstacles="component:1", avoid="repulsion", api_name="/search")
    assert out[0].startswith("**finished**") and "48 NFEs" in out[0] and "collision rate" in out[0]
    out = client.predict(n=6, steps=8, api_name="/search")  # the page's budget: every algorithm fits its N to it
    assert "256 NFEs" in out[0] and "fitted to the budget: N = 32" in out[0], out[0]
    out = client.predict(eta="nan", api_name="/release_eta")
    assert out[0] == "⚠️ --eta: must be a finite number, got nan"




def strip(out) -> tuple:
    """An answer without its timing (``· 123 ms``), for comparing runs."""
    return (TIMING.sub("", out[0]), *out[1:])


def test_client_fuzz_gets_messages_and_no_traceback(served, capfd, app_log):
    """Malformed values from an API client (strings for numbers, lists, unknown names,
    out-of-UI-range numbers) get one clear line each; the server log stays clean."""
    h, _, url = served
    c = new_client(url)
    rng = random.Random(99)
    for i in range(40):
        vals = fuzz_values(rng)
        vals = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in vals.items()}  # JSON has no NaN
        out = c.predict(**vals, api_name=rng.choice(ENDPOINTS))
        status_ok(out[0])
    out = c.predict(n=300, steps=8, api_name="/release_n")  # beyond the slider, within the server's range
    assert out[0].startswith("**finished**")
    out = c.predict(n=200_000, api_name="/release_n")
    assert out[0] == "⚠️ --n: 200000 is outside [1, 100000]"
    assert c.predict(api_name="/stop")[0]
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    assert not [r for r in app_log.records if r.levelno >= logging.ERROR]


def test_ten_concurrent_sessions_match_solo_runs(served):
    _, _, url = served
    asks = [dict(n=4 + i % 3, steps=8 + i, seed=i, eta=1.0 + i / 10) for i in range(10)]
    solo_client = new_client(url)
    solo = [strip(solo_client.predict(**a, api_name="/release_eta")) for a in asks]
    clients = [new_client(url) for _ in asks]
    with ThreadPoolExecutor(len(asks)) as ex:
        together = list(ex.map(lambda ca: strip(ca[0].predict(**ca[1], api_name="/release_eta")), zip(clients, asks)))
    assert all(s[0].startswith("**finished**") for s in solo)
    assert together == solo


def _wait_for_runs(h: AppHandlers, n: int, timeout: float = 60.0) -> None:
    """Wait until ``h`` has recorded ``n`` finished runs (a hang guard, not a measurement)."""
    deadline = time.monotonic() + timeout
    while len(h.runs) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(h.runs) >= n, "the run never ended"


# A request far longer than any test (64 × 1,000 steps); a gated guard holds it at its first
# check until the stop, cancel or disconnect reaches the guard (or the 30 s deadline ends it,
# with that reason): the tests act on "started" and assert the reason the guard saw.
LONG = dict(n=64, steps=1000, budget=0)


@pytest.fixture()
def gate(monkeypatch):
    started, held = threading.Event(), []
    monkeypatch.setattr("dts_app.ui.handlers.RunGuard", gated(started, held))
    return started, held


def test_stop_button_cancels_a_slider_run(served, gate):
    """Slider runs had no stop callback; Stop now cancels them (``cancels=``) and the
    search ends at its next step instead of running on."""
    h, _, url = served
    started, held = gate
    c = new_client(url)
    before = len(h.runs)
    job = c.submit(**LONG, api_name="/release_n")
    assert started.wait(60), "the run never started"
    assert len(h.runs) == before  # held at its first step
    c.predict(api_name="/stop")
    _wait_for_runs(h, before + 1)
    assert held[0].reason in ("stopped", "cancelled") and h.runs[-1][1] == held[0].reason
    job.cancel()


def test_client_cancel_and_disconnect_stop_the_work(served, gate):
    """After a client cancels (or its connection drops) the server stops the search."""
    import uuid

    import httpx

    h, demo, url = served
    started, held = gate
    c = new_client(url)
    for ep in ("/release_n", "/search"):
        started.clear()
        before = len(h.runs)
        job = c.submit(**LONG, api_name=ep)
        assert started.wait(60), ep
        job.cancel()
        _wait_for_runs(h, before + 1)
        assert held[-1].reason == "cancelled" and h.runs[-1][1] == "cancelled", (ep, list(h.runs))
    # a raw client that goes away mid-run
    started.clear()
    fn_index = next(i for i, d in enumerate(demo.config["dependencies"]) if d.get("api_name") == "release_m")
    session = uuid.uuid4().hex[:10]
    before = len(h.runs)
    body = {"data": [None, *input_values(**LONG)], "fn_index": fn_index, "session_hash": session}
    assert httpx.post(url + "gradio_api/queue/join", json=body).status_code == 200
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=30) as resp:
        for line in resp.iter_lines():
            if "process_starts" in line:
                break
        assert started.wait(60)
    _wait_for_runs(h, before + 1)
    assert held[-1].reason == "cancelled" and h.runs[-1][1] == "cancelled"
