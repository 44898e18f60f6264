"""Refresh the README screenshots with headless Chromium (Debian's package):

    .venv/bin/python docs/make_screenshot.py            # assets/screenshot.png (gmm trap + obstacle)
    .venv/bin/python docs/make_screenshot.py --digits   # assets/screenshot_digits.png

Starts the app on a local port, runs a search, and saves a full-page PNG at 1400 px wide.
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
    ap.add_argument("--port", type=int, default=7893)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from dts_app.ui.layout import build_demo

    demo = build_demo(umap_warmup=False)
    demo.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True)
    out = ROOT / "assets" / ("screenshot_digits.png" if args.digits else "screenshot.png")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{args.port}/")
            page.locator("#status").get_by_text("finished").wait_for(timeout=120000)
            if args.digits:
                box = page.get_by_label("backend", exact=True)
                box.click()
                page.get_by_role("option", name="Digits 8×8 (embedded model)").click()
                page.wait_for_timeout(1500)
                page.get_by_label("obstacles (one per line)").fill("class:8")
            else:
                page.get_by_label("obstacles (one per line)").fill("component:1\nball:-1,1.5,0.3")
            page.locator("#run-btn").click()
            page.wait_for_timeout(1000)
            page.locator("#status").get_by_text("finished").wait_for(timeout=180000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
