"""Static first paint: the default views as image snapshots drawn into the page itself.

Every plot of the app is plotly, and a browser must fetch and evaluate plotly.js (4.6 MB,
Gradio loads it on the first plotly value) before it draws any of them: on the project's
2-core machine that alone is 2–3 s, and the seven views then take another 2–3 s. The
default answer is the same for every visitor (seeded and pure), so the server renders it
once at start-up to WebP images (kaleido, driving a local Chromium) and builds the page with
them: Gradio shows a static plot as an ``<img>`` without loading plotly at all, so the
views appear as soon as the page's layout does. The page's load event then imports
plotly.js (:func:`hydrate_js`) and only after that asks for the interactive figures, so
each image is replaced by its live plot without a blank in between.

Without kaleido or a browser, or with ``DTS_STATIC_FIRST_PAINT=0``, the page is built
with the interactive figures directly (as before); nothing else changes.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["ENV_VAR", "SNAPSHOT_CSS", "WIDTH", "hydrate_js", "plotly_chunk", "snapshots"]

log = logging.getLogger("dts_app.ui")
ENV_VAR = "DTS_STATIC_FIRST_PAINT"
WIDTH = 520  # px: one view's width in the two-column grid at a 1400 px window
#: a snapshot sits below its view's label (as the live plot does) and fits the view's width
SNAPSHOT_CSS = (
    "[id$='-plot'] [data-testid='matplotlib'] { padding-top: 30px; }"
    " [id$='-plot'] [data-testid='matplotlib'] img { max-width: 100%; height: auto; }"
    # a link's settings are being opened: the note stands over the default answer's status
    # line until the status changes (the page's DOM is left as Gradio built it)
    " #status[data-dts-opening] [data-testid='markdown'] { display: none; }"
    " #status[data-dts-opening]::before { content: 'Opening the linked settings…'; }"
)


def snapshots(figures: dict[str, Any], width: int = WIDTH) -> dict[str, Any] | None:
    """``{name: PlotData}`` image stand-ins for the plotly figures among ``figures`` (other
    values are left out), or None when they cannot be made here (the reason is logged)."""
    if os.environ.get(ENV_VAR, "1").strip() in ("0", "false", "no"):
        return None
    figs = {k: f for k, f in figures.items() if hasattr(f, "to_plotly_json")}
    if not figs:
        return None
    try:
        import kaleido  # noqa: F401
        import plotly.io as pio
        from gradio.components.plot import PlotData
    except ImportError:
        log.info("static first paint: kaleido is not installed; the page loads plotly first")
        return None
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        paths = [Path(d) / f"{k}.webp" for k in figs]
        heights = [int(f.layout.height or 450) for f in figs.values()]
        try:  # WebP: a quarter of the PNG bytes (89 KB for the seven default views)
            pio.write_images(list(figs.values()), paths, format="webp", width=width, height=heights)
            images = {k: p.read_bytes() for k, p in zip(figs, paths)}
        except Exception as e:  # no Chromium, a crashed browser: the interactive page stands
            log.info("static first paint: kaleido could not render (%s); the page loads plotly first", e)
            return None
    log.info("static first paint: %d views in %.1f s", len(images), time.perf_counter() - t0)
    return {
        k: PlotData(type="matplotlib", plot="data:image/webp;base64," + base64.b64encode(b).decode()) for k, b in images.items()
    }


def plotly_chunk() -> str | None:
    """File name of the frontend module that holds plotly.js in this Gradio install."""
    try:
        import gradio
    except ImportError:  # pragma: no cover - gradio is a dependency of the app
        return None
    found = sorted((Path(gradio.__file__).parent / "templates" / "frontend" / "assets").glob("PlotlyPlot-*.js"))
    return found[0].name if found else None


def hydrate_js(chunk: str | None, views: int = 0) -> str:
    """The load event's page script: once the ``views`` snapshots are painted (at most
    3 s), import Gradio's plotly module (the same URL its Plot component imports, so it is
    evaluated once; evaluating it holds the page's main thread for seconds, so it waits
    for the images), then let the event ask for the figures."""
    if not chunk:
        return "(...args) => args"
    return (
        "async (...args) => { const st = document.querySelector('#status');"
        # a link runs its own settings: a note (CSS, from an attribute) until the status changes;
        # the status's DOM belongs to Gradio (replacing it froze the status for good)
        " const md = () => st && st.querySelector('[data-testid=markdown]');"
        " if (location.search && md()) { const was = md().textContent; st.dataset.dtsOpening = '1';"
        "   const ob = new MutationObserver(() => { if (!md() || md().textContent !== was) {"
        "     delete st.dataset.dtsOpening; ob.disconnect(); } });"
        "   ob.observe(st, {subtree: true, childList: true, characterData: true}); }"
        " const t0 = performance.now(); const frame = () => new Promise(r => requestAnimationFrame(r));"
        " const shown = () => [...document.querySelectorAll('[data-testid=matplotlib] img')]"
        "   .filter(i => i.complete && i.naturalWidth > 0).length;"
        f" while (shown() < {int(views)} && performance.now() - t0 < 3000) await frame();"
        " await frame(); await frame();"
        " try { const s = document.querySelector('script[src*=\"assets/index-\"]');"
        f" await import(new URL({json.dumps(chunk)}, s ? s.src : new URL('assets/', document.baseURI)));"
        " } catch (e) { console.warn('plotly preload', e); } return args; }"
    )
