"""Render the documentation figures to PNG with headless Chromium (Debian's package):

    .venv/bin/python docs/make_figures.py

Writes assets/potential_field.png (the U_rep figure of the README).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def render(fig, out: Path, width: int = 900, height: int = 480) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "fig.html"
        fig.update_layout(width=width, height=height)
        fig.write_html(html, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            page = browser.new_page(viewport={"width": width + 20, "height": height + 20})
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            page.locator(".plotly-graph-div").screenshot(path=str(out))
            browser.close()


if __name__ == "__main__":
    from dts_app.viz.field import potential_figure

    render(potential_figure(), ROOT / "assets" / "potential_field.png")
    print("wrote assets/potential_field.png")
