"""The app's v2 interactions in a real browser (Debian's chromium via Playwright): switch
the tree layout, click a node to inspect it, place an obstacle by clicking the plane,
compare two settings, save a run and reopen it, and open a link with settings."""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import parse_qs, urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from dts_app.ui.layout import build_demo

    demo = build_demo(umap_warmup=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#status").get_by_text("finished").wait_for(timeout=90_000)
    page.locator("#tree-plot .gtitle").first.wait_for(timeout=30_000)
    return page


def tree_title(page) -> str:
    return page.locator("#tree-plot .gtitle").first.text_content()


def point_on_screen(page, plot: str, trace: str) -> tuple[float, float]:
    """Page coordinates of the first point of the named trace of a plotly figure."""
    return tuple(
        page.evaluate(
            """([sel, name]) => {
                const gd = document.querySelector(sel + ' .js-plotly-plot');
                const tr = gd._fullData.find(t => t.name === name);
                const fl = gd._fullLayout, r = gd.querySelector('.nsewdrag').getBoundingClientRect();
                return [r.left + fl.xaxis.c2p(tr.x[0]), r.top + fl.yaxis.c2p(tr.y[0])];
            }""",
            [plot, trace],
        )
    )


#: per view, the points of its "selected path" trace (the first one: on the trajectories the
#: score row) and of its "best path" trace, gaps left out
PATHS = """(sels) => Object.fromEntries(sels.map(s => {
  const gd = document.querySelector(s + ' .js-plotly-plot');
  const pts = (name) => { const t = gd._fullData.find(d => d.name === name); const out = [];
    for (let k = 0; k < t.x.length; k++) if (t.x[k] !== null && t.y[k] !== null) out.push([Number(t.x[k]), Number(t.y[k])]);
    return out; };
  return [s, [pts('selected path'), pts('best path')]];
}))"""


VIEWS_WITH_PATHS = ["#tree-plot", "#traj-plot", "#embed-plot", "#plane-plot"]


def click_best_node(page) -> str:
    """Click the tree's best node (the star); the inspector's text once it shows the node.
    Then check that its path is drawn as "selected path" in every view, exactly where each
    view draws the best path (the same nodes)."""
    page.locator("#tree-plot").scroll_into_view_if_needed()
    x, y = point_on_screen(page, "#tree-plot", "best")
    page.mouse.move(x, y)  # plotly's hover names the node the click sends
    page.wait_for_function("(document.querySelector('#tree-plot .js-plotly-plot')._hoverdata || []).length > 0")
    page.mouse.click(x, y)
    page.locator("#node-detail").get_by_text("Clicked node").wait_for(timeout=30_000)
    page.wait_for_function(
        "(sels) => sels.every(s => (document.querySelector(s + ' .js-plotly-plot').data || []).some(t => t.name === 'selected path'))",
        arg=VIEWS_WITH_PATHS,
        timeout=30_000,
    )
    drawn = page.evaluate(PATHS, VIEWS_WITH_PATHS)
    for view in VIEWS_WITH_PATHS:
        sel, best = drawn[view]
        flat = [v for p in sel for v in p]
        assert len(sel) >= 2 and len(sel) == len(best) and flat == pytest.approx([v for p in best for v in p], abs=1e-6), view
    return page.locator("#node-detail").inner_text()


def test_tree_layouts_and_node_inspector(browser, app_url):
    page = open_page(browser, app_url)
    assert "layered · 264 nodes" in tree_title(page)
    # click the best node (the star) of the layered tree: the inspector shows it, and its path
    # is drawn in every view
    detail = click_best_node(page)
    assert "best" in detail and "search score" in detail and "held-out score" in detail
    # switch to the score-against-step view and back, without re-running
    page.locator("#tree-view").get_by_text("score", exact=True).click()
    page.locator("#tree-plot .gtitle", has_text="Candidate tree (264 nodes)").wait_for(timeout=30_000)
    page.locator("#tree-view").get_by_text("layered", exact=True).click()
    page.locator("#tree-plot .gtitle", has_text="layered").wait_for(timeout=30_000)
    page.close()


def test_click_on_the_plane_places_an_obstacle(browser, app_url):
    page = open_page(browser, app_url)
    box = page.locator("#plane-plot .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.wait_for_function("document.querySelector('#obstacles textarea').value.startsWith('point:')", timeout=30_000)
    # the obstacle is drawn at once: the click re-runs the search with it (issue 24)
    page.locator("#status", has_text="collision rate").wait_for(timeout=60_000)
    text = page.locator("#obstacles textarea").input_value()
    assert text.startswith("point:") and text.endswith("@q=0.5")
    x, y = (float(v) for v in text[len("point:") : text.index("@")].split(","))
    assert x < 0 < y  # upper-left quarter of the plane
    # the list is editable and can be emptied
    page.locator("#clear-obstacles").click()
    page.wait_for_function("document.querySelector('#obstacles textarea').value === ''", timeout=10_000)
    page.close()


def test_compare_mode(browser, app_url):
    page = open_page(browser, app_url)
    page.locator("#compare").get_by_text("Compare two settings").click()
    page.locator("#compare-btn").click()
    page.locator("#compare-status").get_by_text("compared").wait_for(timeout=90_000)
    assert "256 NFEs, seed 0" in page.locator("#compare-status").inner_text()
    page.locator("#compare-budget .gtitle").first.wait_for(timeout=30_000)
    legend = page.locator("#compare-budget .legendtext").all_text_contents()
    assert legend == ["A: best-of-n", "B: algorithm=smc"]
    page.close()


BUDGET = "compute budget (NFEs = model calls)"


def test_save_reopen_and_share_a_link(browser, app_url, tmp_path):
    page = open_page(browser, app_url)
    b_box = page.get_by_label(f"number input for {BUDGET}")
    b_box.fill("128")  # best-of-N fits N = 4 to it
    b_box.press("Enter")
    b_box.blur()
    page.locator("#tree-plot .gtitle", has_text="132 nodes").wait_for(timeout=60_000)
    page.locator("#files").get_by_text("Save, share, reopen").click()
    page.locator("#save-btn").click()
    link = page.locator("#saved-file a").first
    link.wait_for(timeout=30_000)
    body = page.request.get(link.get_attribute("href")).body()
    saved = tmp_path / "run.json"
    saved.write_bytes(body)
    import json

    d = json.loads(body)
    assert d["config"]["budget"] == 128 and len(d["tree"]["nodes"]) == 132  # the CLI's schema
    # the share link carries the settings
    page.locator("#share-btn").click()
    page.wait_for_function(
        "document.querySelector('#share-link textarea, #share-link input').value.includes('?')", timeout=30_000
    )
    url = page.locator("#share-link textarea, #share-link input").first.input_value()
    q = parse_qs(urlparse(url).query)
    assert q["budget"] == ["128"] and set(q) <= {"budget", "target"} and page.url == url  # only what differs from the page
    page.close()
    # a fresh page opened from the link shows the same run
    fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
    fresh.goto(url + "&tree_view=score", wait_until="domcontentloaded")
    fresh.locator("#tree-plot .gtitle", has_text="Candidate tree (132 nodes)").wait_for(timeout=90_000)
    assert fresh.get_by_label(f"number input for {BUDGET}").input_value() == "128"
    # reopen the saved file in another page at the defaults
    fresh.goto(app_url, wait_until="domcontentloaded")
    fresh.locator("#tree-plot .gtitle", has_text="264 nodes").wait_for(timeout=90_000)
    fresh.locator("#files").get_by_text("Save, share, reopen").click()
    fresh.locator("#open-file input[type=file]").set_input_files(str(saved))
    fresh.locator("#status").get_by_text("reopened").wait_for(timeout=60_000)
    fresh.locator("#tree-plot .gtitle", has_text="132 nodes").wait_for(timeout=30_000)
    assert fresh.get_by_label(f"number input for {BUDGET}").input_value() == "128"
    fresh.close()
