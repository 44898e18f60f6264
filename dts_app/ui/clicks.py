"""Clicks on figures: place an obstacle on the 2-D plane, inspect a node of the tree.

Gradio's plot component has no click event, so :data:`CLICK_JS` (run once on page load)
listens on the page: a click or a tap inside the plane's plotting area is converted to data
coordinates with plotly's own axis maps and written, as JSON, into the hidden textbox
``#plane-click``; a click on a marker of the tree writes the node id plotly is hovering
(its ``customdata``) into ``#node-click``. Both dispatch ``input``, which runs the Python
handlers below. A double click (plotly's zoom reset) places nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..config import ConfigError, ObstacleSpec
from .inputs import clip

__all__ = ["CLICK_JS", "HIGHLIGHT_JS", "parse_click", "place_obstacle", "node_detail", "node_path", "mark_candidate"]

CLICK_JS = """
() => {
  if (window.__dtsClicks) return; window.__dtsClicks = true;
  const send = (sel, obj) => {
    const el = document.querySelector(sel + ' textarea') || document.querySelector(sel + ' input');
    if (!el) return;
    el.value = JSON.stringify(Object.assign(obj, {n: Date.now()}));
    el.dispatchEvent(new Event('input', {bubbles: true}));
  };
  let pending = null, down = null;
  // the plane reads pointer events, which carry a tap's position (plotly answers a tap with a
  // click of its own at (0, 0), and a mouse click on a touch screen arrives twice); a press
  // and release within a few pixels is a click or tap, a longer move is a pan or zoom
  const planeOf = (ev) => ev.target.closest && ev.target.closest('#plane-plot');
  // (the release is matched to the press, not to its target: plotly covers the page while a
  // mouse button is down, so the release lands on that cover)
  document.addEventListener('pointerdown', (ev) => { const p = planeOf(ev); down = p ? [ev.clientX, ev.clientY, p] : null; }, true);
  document.addEventListener('pointerup', (ev) => {
    if (!down) return;
    const plane = down[2];
    const moved = Math.hypot(ev.clientX - down[0], ev.clientY - down[1]);
    down = null;
    if (moved > 6) return;
    const gd = plane.querySelector('.js-plotly-plot');
    const drag = gd && gd.querySelector('.nsewdrag');
    const fl = gd && gd._fullLayout;
    if (!drag || !fl || !fl.xaxis || !fl.yaxis) return;
    const r = drag.getBoundingClientRect();
    const px = ev.clientX - r.left, py = ev.clientY - r.top;
    if (px < 0 || py < 0 || px > r.width || py > r.height) return;
    if (pending) { clearTimeout(pending); pending = null; return; }  // a double click
    const x = fl.xaxis.p2c(px), y = fl.yaxis.p2c(py);
    pending = setTimeout(() => { pending = null; send('#plane-click', {x: x, y: y}); }, 350);
  }, true);
  document.addEventListener('click', (ev) => {
    const tree = ev.target.closest && (ev.target.closest('#tree-plot') || ev.target.closest('#embed-plot'));
    if (tree) {
      const gd = tree.querySelector('.js-plotly-plot');
      const h = gd && gd._hoverdata;
      if (h && h.length && h[0].customdata !== undefined && h[0].customdata !== null) {
        const c = Array.isArray(h[0].customdata) ? h[0].customdata[0] : h[0].customdata;
        send('#node-click', {id: c});
      }
    }
  }, true);
}
"""


#: draws the clicked node's path (the JSON of :func:`node_path` in ``#node-path``) in every view
#: as a trace named "selected path": in the tree and the embedding at the markers that carry
#: its node ids, in the trajectories at (t, score) and (t, D), on the plane at x̂0; a new
#: click replaces it, a new run's figures drop it
HIGHLIGHT_JS = """
(text) => {
  let p = null; try { p = JSON.parse(text || 'null'); } catch (e) { return; }
  const P = window.Plotly; if (!P) return;
  const NAME = 'selected path';
  const style = {mode: 'lines+markers', name: NAME, line: {color: '#D55E00', width: 4}, marker: {size: 9, color: '#D55E00'},
                 hoverinfo: 'skip', showlegend: true};
  const draw = (id, make) => {
    const gd = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!gd || !gd.data) return;
    const old = gd.data.map((t, i) => t.name === NAME ? i : -1).filter(i => i >= 0);
    if (old.length) P.deleteTraces(gd, old);
    const add = (p && p.ids && p.ids.length) ? make(gd) : [];
    if (add.length) P.addTraces(gd, add.map(t => Object.assign({}, style, t)));
  };
  const byIds = (gd) => {
    const at = new Map();
    for (const t of (gd._fullData || [])) {  // decoded arrays (a typed array arrives base64-encoded in gd.data)
      if (!t.customdata || !t.x || !t.y || t.name === NAME) continue;
      for (let k = 0; k < t.customdata.length; k++) {
        const c = Array.isArray(t.customdata[k]) ? t.customdata[k][0] : t.customdata[k];
        if (c !== null && c !== undefined && !at.has(Number(c))) at.set(Number(c), [t.x[k], t.y[k], t.xaxis, t.yaxis]);
      }
    }
    const pts = p.ids.filter(i => at.has(i)).map(i => at.get(i));
    return pts.length ? [{x: pts.map(q => q[0]), y: pts.map(q => q[1]), xaxis: pts[0][2], yaxis: pts[0][3]}] : [];
  };
  const along = (gd, trace, ys) => {
    const t = (gd._fullData || []).find(d => d.name === trace);
    return t && ys ? [{x: p.t, y: ys, xaxis: t.xaxis, yaxis: t.yaxis}] : [];
  };
  draw('tree-plot', byIds);
  draw('embed-plot', byIds);
  draw('traj-plot', (gd) => [...along(gd, 'search score', p.score), ...along(gd, 'D', p.D).map(t => Object.assign(t, {showlegend: false}))]);
  draw('plane-plot', (gd) => (p.x && gd.data.some(d => d.name === 'paths (x̂0)')) ? [{x: p.x, y: p.y}] : []);
}
"""


def node_path(result: Any, click: Any) -> str:
    """The clicked node's path from its root, as the JSON :data:`HIGHLIGHT_JS` draws:
    ``{"ids", "t", "score", "D", "x", "y", "n"}`` (``D`` None without obstacles, ``x``/``y``
    the first two coordinates of x̂0 on 2-D data, else None); ``{"ids": []}`` for a click
    that names no node of the last run (a drawn path is then removed)."""
    d = parse_click(click)
    nodes = getattr(getattr(result, "tree", None), "nodes", None) or []
    try:
        i = int(d.get("id")) if d is not None else -1
    except (TypeError, ValueError, OverflowError):
        i = -1
    if not 0 <= i < len(nodes):
        return json.dumps({"ids": []})
    chain = []
    while i is not None and len(chain) <= len(nodes):
        chain.append(nodes[i])
        i = nodes[i].parent
    chain.reverse()
    two = all(n.x0 is not None and len(n.x0) == 2 for n in chain)
    out = {
        "ids": [n.id for n in chain],
        "t": [n.t for n in chain],
        "score": [n.score for n in chain],
        "D": [n.D for n in chain] if any(n.D is not None for n in chain) else None,
        "x": [n.x0[0] for n in chain] if two else None,
        "y": [n.x0[1] for n in chain] if two else None,
        "n": d.get("n") if isinstance(d.get("n"), (int, float)) and math.isfinite(d.get("n")) else 0,
    }
    return json.dumps(out)


def parse_click(text: Any) -> dict | None:
    """The JSON a click wrote, or None for empty or malformed text (a stale or forged
    event is ignored, never an error)."""
    if not isinstance(text, str) or not text.strip() or len(text) > 500:
        return None
    try:
        d = json.loads(text)
    except ValueError:
        return None
    return d if isinstance(d, dict) else None


def _lines(text: Any) -> list[str]:
    return [ln for ln in (text if isinstance(text, str) else "").splitlines() if ln.strip()]


def place_obstacle(click: Any, q_star: Any, text: Any, backend: Any, preset: Any = None) -> tuple[str, str]:
    """Append ``point:x,y@q=Q*`` (the clicked point with the current Q*) to the obstacle list.

    Returns:
        ``(obstacle text, status line)``; the text is unchanged when the click cannot be
        used (not the 2-D plane, a malformed event, a bad Q*).
    """
    text = text if isinstance(text, str) else ""
    d = parse_click(click)
    if d is None:
        return text, "⚠️ click: could not read the clicked point"
    if backend != "gmm":
        return text, "⚠️ click: obstacles are placed by clicking on the 2-D plane of a gmm preset"
    try:
        x, y = float(d.get("x")), float(d.get("y"))
        q = float(q_star)
    except (TypeError, ValueError, OverflowError):
        return text, "⚠️ click: could not read the clicked point"
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(q) and q > 0):
        return text, "⚠️ click: the point and Q* must be finite numbers (Q* > 0)"
    line = f"point:{x:.3f},{y:.3f}@q={q:g}"
    try:
        ObstacleSpec.parse(line)  # the same checks as typed text (Q* in range: 1e-300 is not)
    except ConfigError as e:
        return text, f"⚠️ click: {clip(str(e))}"
    return "\n".join(_lines(text) + [line]), clip(f"obstacle placed at ({x:.2f}, {y:.2f}) with Q* = {q:g}")


def _fmt(v: Any) -> str:
    return "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def node_detail(result: Any, click: Any, decode=None) -> tuple[str, Any]:
    """Markdown describing a clicked node of the last run, and its x̂0 as an image (image
    backends) or None.

    Args:
        result: the session's last :class:`~dts_app.search.types.SearchResult` (or None).
        click: the JSON written by the tree's click (``{"id": k}``).
        decode: ``x0 (flat list) → HxW[xC] uint8 array`` for image backends, else None.
    """
    d = parse_click(click)
    if result is None or d is None:
        return "Click a node of the tree to see it here.", None
    try:
        i = int(d.get("id"))
    except (TypeError, ValueError, OverflowError):
        return "Click a node of the tree to see it here.", None
    nodes = result.tree.nodes
    if not 0 <= i < len(nodes):
        return f"node {i} is not in the last run (it has {len(nodes):,} nodes)", None
    n = nodes[i]
    rows = [
        ("node", f"{n.id} (parent {_fmt(n.parent)})"),
        ("step · t", f"{n.step} · {n.t:.3f}"),
        ("status", n.status),
        ("search score", _fmt(n.score)),
        ("held-out score", _fmt(n.heldout_score)),
        ("value · visits", f"{_fmt(n.value)} · {_fmt(n.visits)}"),
        ("D to nearest obstacle", _fmt(n.D) + (" (within Q*)" if n.inside_q else "")),
    ]
    image = None
    if n.x0 is not None:
        if decode is not None:
            image = decode(n.x0)
        if image is None:
            xs = n.x0[:8]
            rows.append(("x̂0", "(" + ", ".join(f"{v:.3f}" for v in xs) + (", …" if len(n.x0) > 8 else "") + ")"))
    body = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"**Clicked node** (x̂0 is its clean prediction)\n\n| | |\n|---|---|\n{body}", image


def mark_candidate(result: Any, index: Any, text: Any, max_dim: int = 1024) -> tuple[str, str]:
    """Append the ``index``-th final candidate (in gallery order) as a point obstacle.

    Returns:
        ``(obstacle text, status line)``.

    Raises:
        ConfigError: never; problems come back as the status line.
    """
    text = text if isinstance(text, str) else ""
    cands = getattr(result, "candidates", None) or []
    try:
        k = int(index)
    except (TypeError, ValueError, OverflowError):
        return text, "⚠️ mark: pick an image first"
    if not 0 <= k < len(cands):
        return text, "⚠️ mark: that image is not in the last run"
    x = cands[k].x0
    if x is None or x.numel() == 0:
        return text, "⚠️ mark: the candidate's sample was not kept"
    if x.numel() > max_dim:
        return text, f"⚠️ mark: a {x.numel():,}-number latent is too large for a point obstacle (at most {max_dim:,})"
    line = "point:" + ",".join(f"{v:.3f}" for v in x.flatten().tolist())
    try:
        ObstacleSpec.parse(line)
    except ConfigError as e:
        return text, f"⚠️ {clip(str(e))}"
    return "\n".join(_lines(text) + [line]), f"candidate {k} (node {cands[k].node_id}) marked as an obstacle"
