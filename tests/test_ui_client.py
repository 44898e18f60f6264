"""The app served on 127.0.0.1 and driven through gradio_client (as an API user would)."""

from __future__ import annotations

import os
import socket

import pytest

from dts_app.ui.handlers import input_values as values

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    from dts_app.ui.layout import build_demo

    demo = build_demo(umap_warmup=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def test_search_then_eta_changes_the_result(client):
    a = client.predict(*values(n=6, steps=8), api_name="/search")
    assert a[0].startswith("**finished**") and "48 NFEs" in a[0]
    b = client.predict(*values(n=6, steps=8, eta=2.0), api_name="/release_eta")
    c = client.predict(*values(n=6, steps=8, eta=2.0, seed=1), api_name="/release_eta")
    assert b[0].startswith("**finished**")
    assert a[1] == b[1]  # same seed and no obstacle: η alone leaves the tree unchanged
    assert b[1] != c[1]  # a different seed draws another tree


def test_bad_input_is_a_visible_message(client):
    out = client.predict(*values(n=6, steps=8, delta_f=5, delta_b=3), api_name="/release_q_star")
    assert out[0] == "⚠️ --delta-b: must exceed --delta-f (5) so paths make progress"
    out = client.predict(*values(n=6, steps=8, obstacles="ball:1"), api_name="/search")
    assert out[0] == "⚠️ --obstacle: cannot read 'ball:1'"


def test_eta_moves_samples_around_an_obstacle(client):
    pytest.importorskip("dts_app.obstacles.avoidance")
    kw = dict(n=8, steps=32, obstacles="component:1", avoid="repulsion")
    a = client.predict(*values(eta=0.5, **kw), api_name="/release_eta")
    b = client.predict(*values(eta=20.0, **kw), api_name="/release_eta")
    assert a[0].startswith("**") and b[0].startswith("**")
    assert a[0] != b[0] and a[5] != b[5]  # scores and the final candidates moved
