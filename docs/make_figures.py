"""Render the documentation figures to PNG with headless Chromium (Debian's package):

    .venv/bin/python docs/make_figures.py

Writes assets/potential_field.png (the U_rep figure of the README) and
assets/fidelity_tilted.png (error against budget of soft tree search and SMC against the
closed-form tilted mixture, from benchmarks/results/fidelity.json).
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


def tilted_figure():
    import json

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = json.loads((ROOT / "benchmarks" / "results" / "fidelity.json").read_text())["tilted"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("largest mode-share error", "energy distance to exact samples"))
    for algo, colour in (("tree", "#1f77b4"), ("smc", "#d62728")):
        rs = [r for r in rows if r["algorithm"] == algo]
        label = "soft tree search (DTS)" if algo == "tree" else "SMC (FK, difference)"
        for col, key in ((1, "max_share_error"), (2, "energy_distance")):
            fig.add_trace(go.Scatter(x=[r["budget"] for r in rs], y=[r[f"{key}_mean"] for r in rs], name=label,
                                     error_y=dict(array=[r[f"{key}_se"] for r in rs]), mode="lines+markers",
                                     line=dict(color=colour), showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(type="log", title_text="NFE budget")
    fig.update_yaxes(type="log")
    fig.update_layout(title="Sampling p0·exp(r/τ) on trap (τ = 20): error against budget, mean ± s.e. over 4 seeds",
                      legend=dict(orientation="h", y=-0.25))
    return fig


if __name__ == "__main__":
    from dts_app.viz.field import potential_figure

    render(potential_figure(), ROOT / "assets" / "potential_field.png")
    print("wrote assets/potential_field.png")
    render(tilted_figure(), ROOT / "assets" / "fidelity_tilted.png", width=1000, height=440)
    print("wrote assets/fidelity_tilted.png")
