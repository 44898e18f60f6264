"""A real browser (Debian's chromium via Playwright) against the running app: the page
loads, releasing a slider redraws the tree, Stop ends a streamed run."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slider_release_redraws_and_stop_works():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    from dts_app.ui.layout import build_demo

    demo = build_demo(umap_warmup=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            status = page.locator("#status")
            status.get_by_text("finished").wait_for(timeout=60_000)  # the on-load search
            title = page.locator("#tree-plot .gtitle")
            title.first.wait_for(timeout=30_000)
            assert "Candidate tree (layered · 264 nodes)" in title.first.text_content()
            # release the budget slider at half: best-of-N fits N = 4, the tree redraws with 4 × 33 nodes
            b_box = page.get_by_label("number input for compute budget (NFEs = model calls)")
            b_box.fill("128")
            b_box.press("Enter")
            b_box.blur()
            page.locator("#tree-plot .gtitle", has_text="132 nodes").wait_for(timeout=60_000)
            # a long streamed run (N as set: budget 0), stopped within a step
            b_box.fill("0")
            b_box.press("Enter")
            n_box = page.get_by_label("number input for N: candidates")
            steps_box = page.get_by_label("number input for steps")
            page.get_by_text("more knobs").click()
            steps_box.wait_for(state="visible", timeout=30_000)  # mounted (a value typed while mounting is reset)
            page.wait_for_function(
                "document.querySelector('input[aria-label=\"number input for steps\"]').value === '32'", timeout=30_000
            )
            steps_box.fill("1000")
            steps_box.press("Enter")
            n_box.fill("256")
            n_box.press("Enter")
            page.locator("#run-btn").click()
            status.get_by_text("running").wait_for(timeout=60_000)
            page.locator("#stop-btn").click()
            status.get_by_text("stopped").wait_for(timeout=60_000)
            browser.close()
    finally:
        demo.close()


def test_static_first_paint_then_live_plots():
    """The page is built with image snapshots of the default views (no plotly needed to
    see them); the load event then imports plotly.js once and swaps in the live figures.
    A link with settings still runs its own view."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    from dts_app.ui.handlers import AppHandlers
    from dts_app.ui.layout import build_demo

    h = AppHandlers()
    demo = build_demo(h, umap_warmup=False, first_view=True)
    loads: list = []  # on_load calls (it reads the link's query first)
    read_query = h.from_query
    h.from_query = lambda q: (loads.append(q), read_query(q))[1]
    # with Debian's chromium present (this module is skipped without it) kaleido must render
    assert demo.static_views == sorted(["tree", "trajectories", "embedding", "plane", "gallery", "budget", "hacking"])
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    views = ["tree-plot", "plane-plot", "traj-plot", "embed-plot", "gallery-plot", "budget-plot", "hacking-plot"]
    shown = "() => " + " && ".join(
        f"(((document.querySelector('#{v} [data-testid=matplotlib] img') || {{}}).naturalWidth || 0) > 0"
        f" || !!document.querySelector('#{v} .js-plotly-plot'))"
        for v in views
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(  # did any view show its snapshot before plotly drew it?
                "window.__snap = false; (function poll() { if (document.querySelector("
                "'[id$=\"-plot\"] [data-testid=matplotlib] img')) window.__snap = true;"
                " requestAnimationFrame(poll); })();"
            )
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.wait_for_function(shown, timeout=60_000)
            assert "finished" in page.locator("#status").inner_text()  # the default answer, baked in
            live = " && ".join(
                f"((document.querySelector('#{v} .js-plotly-plot') || {{}})._fullData || []).length > 0" for v in views
            )
            page.wait_for_function(f"() => {live}", timeout=90_000)
            assert page.evaluate("window.__snap")
            assert page.locator("[data-testid=matplotlib] img").count() == 0  # every snapshot was replaced
            assert "264 nodes" in page.locator("#tree-plot .gtitle").first.text_content()
            chunks = page.evaluate(
                "performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('PlotlyPlot'))"
            )
            assert len(chunks) == 1, chunks  # imported once: the page script and the plots share it
            # a link with settings runs its own view over the snapshots
            page.goto(f"http://127.0.0.1:{port}/?budget=128", wait_until="domcontentloaded")
            page.locator("#tree-plot .gtitle", has_text="132 nodes").wait_for(timeout=90_000)
            page.close()
            # a run released before plotly.js has loaded is not overwritten by the default
            # answer when the page's load event finally asks for the live figures
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            held: list = []
            page.route("**/PlotlyPlot-*.js", lambda route: held.append(route))  # plotly.js waits until we let it go
            seen = len(loads)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.wait_for_function(shown, timeout=60_000)
            while not held:
                page.wait_for_timeout(50)
            b_box = page.get_by_label("number input for compute budget (NFEs = model calls)")
            b_box.fill("128")
            b_box.press("Enter")
            b_box.blur()
            page.locator("#status").get_by_text("132 nodes").wait_for(timeout=60_000)
            assert len(loads) == seen  # the load event is still waiting for plotly.js
            for route in held:
                route.continue_()
            while len(loads) == seen:
                page.wait_for_timeout(50)
            page.wait_for_function(f"() => {live}", timeout=90_000)
            page.wait_for_timeout(1_000)  # the load event's answer has been applied
            assert "132 nodes" in page.locator("#tree-plot .gtitle").first.text_content()
            assert "132 nodes" in page.locator("#status").inner_text()
            browser.close()
    finally:
        demo.close()
