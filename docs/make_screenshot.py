"""Refresh the README screenshots with headless Chromium (Debian's package):

    .venv/bin/python docs/make_screenshot.py            # assets/screenshot.png (gmm trap + obstacle)
    .venv/bin/python docs/make_screenshot.py --digits   # assets/screenshot_digits.png
    .venv/bin/python docs/make_screenshot.py --compare  # assets/screenshot_compare.png (A: best-of-N, B: smc avoidance)
    .venv/bin/python docs/make_screenshot.py --phone    # any of them at phone size (390×844): screenshot_phone.png, …
    .venv/bin/python docs/make_screenshot.py --lesson all [--phone]  # every lesson: assets/lessons/<key>[_phone].png

Starts the app on a local port, runs a search, and saves a full-page PNG at 1400 px wide
(or 390 px with ``--phone``); the main screenshot also clicks the best node, so its path is
drawn in every view.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--digits", action="store_true")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--phone", action="store_true", help="390×844 (a phone) instead of 1400×1000")
    ap.add_argument("--lesson", default=None, help="a lesson's key (dts_app.ui.lessons), or 'all'")
    ap.add_argument("--port", type=int, default=7893)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from dts_app.ui.layout import build_demo

    demo = build_demo(umap_warmup=False)
    demo.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True)
    name = "screenshot_digits.png" if args.digits else "screenshot_compare.png" if args.compare else "screenshot.png"
    if args.phone:
        name = name.replace(".png", "_phone.png")
    out = ROOT / "assets" / name
    size = {"width": 390, "height": 844} if args.phone else {"width": 1400, "height": 1000}
    if args.lesson:
        try:
            lessons(args, size)
        finally:
            demo.close()
        return
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport=size)
            # the settings come in a link (query parameters), as a shared view would
            query = {
                "digits": "backend=digits&obstacles=class%3A8&avoid=repulsion",
                "compare": "obstacles=component%3A1",
                "main": "algorithm=tree&budget=1024&n=8&m=4&obstacles=component%3A1%0Aball%3A-1%2C1.5%2C0.3&avoid=repulsion",
            }["digits" if args.digits else "compare" if args.compare else "main"]
            page.goto(f"http://127.0.0.1:{args.port}/?{query}")
            page.locator("#status").get_by_text("opened from a link").wait_for(timeout=180000)
            if args.compare:
                page.locator("#compare").get_by_text("Compare two settings").click()
                page.locator("#changes-b textarea").fill("avoid=smc")
                page.locator("#compare-btn").click()
                page.locator("#compare-status").get_by_text("compared").wait_for(timeout=180000)
                page.wait_for_timeout(2000)
                page.locator("#compare").screenshot(path=str(out))
                browser.close()
                return
            page.wait_for_timeout(2000)
            if not args.digits:  # click the best node: its path is drawn in every view
                select_best(page)
            if args.digits:  # the gallery's images load lazily: bring them into view once
                page.locator("#images").scroll_into_view_if_needed()
                page.wait_for_function(
                    "[...document.querySelectorAll('#images img')].every(i => i.complete && i.naturalWidth > 0)",
                    timeout=60000,
                )
                page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"wrote {out}")


def select_best(page) -> None:
    """Click the tree's best node and wait until its path is drawn in the plane."""
    tree = "#tree-plot .js-plotly-plot"
    page.locator("#tree-plot").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """(sel) => { const gd = document.querySelector(sel); const tr = gd._fullData.find(t => t.name === 'best');
        const fl = gd._fullLayout, r = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [r.left + fl.xaxis.c2p(tr.x[0]), r.top + fl.yaxis.c2p(tr.y[0])]; }""",
        tree,
    )
    page.mouse.move(x, y)
    page.wait_for_function(f"(document.querySelector('{tree}')._hoverdata || []).length > 0", timeout=30000)
    page.mouse.click(x, y)
    page.wait_for_function(
        "(document.querySelector('#plane-plot .js-plotly-plot').data || []).some(t => t.name === 'selected path')", timeout=60000
    )
    page.evaluate("window.scrollTo(0, 0)")


def lessons(args, size: dict) -> None:
    """Open every lesson's link (or one) and save the page: assets/lessons/<key>[_phone].png."""
    from playwright.sync_api import sync_playwright

    from dts_app.ui.lessons import LESSONS

    chosen = [x for x in LESSONS if args.lesson in ("all", x.key)]
    if not chosen:
        raise SystemExit(f"--lesson: one of all, {', '.join(x.key for x in LESSONS)}")
    folder = ROOT / "assets" / "lessons"
    folder.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for x in chosen:
            page = browser.new_page(viewport=size)
            page.goto(f"http://127.0.0.1:{args.port}/?{x.query()}")
            page.locator("#status").get_by_text("opened from a link").wait_for(timeout=300000)
            page.wait_for_timeout(2000)
            out = folder / f"{x.key}{'_phone' if args.phone else ''}.png"
            page.screenshot(path=str(out), full_page=not args.phone)
            page.close()
            print(f"wrote {out}")
        browser.close()


if __name__ == "__main__":
    main()
