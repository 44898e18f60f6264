"""Aggregation of a large tree view into cells (depth bins × x bins).

Above ``max_markers`` nodes, nodes are binned into cells, the x resolution the largest that
keeps at most ``max_markers`` non-empty cells. One marker per cell, sized by its node count
and coloured by the cell's best value of the colour quantity; its ``customdata`` is that
best node's id, so click-to-inspect still lands on a real node. Edges become the unique
(parent cell → child cell) pairs.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ..trace import STATUSES
from .style import num

__all__ = ["marker_trace", "segments", "sizes", "cell_traces"]

_GREY = "#b0b7bf"


def segments(ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line coordinates a→b, None between segments (object arrays: JSON nulls)."""
    m = len(ax)
    ex = np.full(3 * m, None, dtype=object)
    ey = np.full(3 * m, None, dtype=object)
    ex[0::3], ex[1::3] = np.round(ax, 3).tolist(), np.round(bx, 3).tolist()
    ey[0::3], ey[1::3] = np.round(ay, 4).tolist(), np.round(by, 4).tolist()
    return ex, ey


def sizes(w: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Marker sizes from ``lo`` (the smallest ``w``) to ``hi`` px (the largest), ∝ √ of the
    excess over the smallest; all ``lo`` when every ``w`` is the same."""
    if not len(w):
        return np.zeros(0)
    base, top = float(np.min(w)), float(np.max(w))
    if top <= base:
        return np.full(len(w), lo)
    return np.round(lo + (hi - lo) * np.sqrt((w - base) / (top - base)), 1)


def marker_trace(name, x, y, ids, text, **marker) -> go.Scattergl:
    """Markers with node-id customdata (float32 / int32 arrays keep the JSON small)."""
    f32 = lambda v: np.asarray(v, dtype=np.float32)
    marker = {k: f32(v) if isinstance(v, np.ndarray) else v for k, v in marker.items()}
    return go.Scattergl(
        x=f32(x),
        y=f32(y),
        mode="markers",
        name=name,
        marker=marker,
        customdata=np.asarray(ids, dtype=np.int32),
        text=text,
        hovertemplate="%{text}<extra></extra>",
    )


def _cells(xr: np.ndarray, dr: np.ndarray, n_depth: int, max_markers: int) -> np.ndarray:
    """Cell index (dense, 0..k-1) of every node: depth bins × the most x bins that keep
    at most ``max_markers`` non-empty cells (binary search on the x resolution)."""
    db = max(1, min(n_depth, max(math.isqrt(max_markers), max_markers // 16)))  # 4,000 markers: up to 250 rows
    drow = dr * db // n_depth
    span = float(xr.max() - xr.min()) or 1.0
    xn = (xr - xr.min()) / span

    def key(xb: int) -> np.ndarray:
        return drow * xb + np.minimum((xn * xb).astype(np.int64), xb - 1)

    lo, hi = 1, max(1, int(span) + 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(np.unique(key(mid))) <= max_markers:
            lo = mid
        else:
            hi = mid - 1
    return np.unique(key(lo), return_inverse=True)[1]


def cell_traces(
    par: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    steps: np.ndarray,
    st: np.ndarray,
    q: np.ndarray,
    u: np.ndarray,
    qname: str,
    cmark: dict,
    max_markers: int,
    edge_colour: str,
) -> tuple[list, int]:
    """``(traces, k)``: the edges between cells and one marker per cell (``cells``, and
    ``cells (no …)`` for cells without the colour quantity), k cells in all. ``q`` is the
    colour quantity per node, ``u`` its colour value, ``cmark`` the marker's colour-map
    settings (:func:`~dts_app.viz.style.score_colours`)."""
    have = ~np.isnan(q)
    levels, drank = np.unique(y, return_inverse=True)
    cell = _cells(x, drank, len(levels), max_markers)
    k = int(cell.max()) + 1
    count = np.bincount(cell, minlength=k)
    cx = np.bincount(cell, weights=x, minlength=k) / count
    cy = np.bincount(cell, weights=y, minlength=k) / count
    qv = np.where(have, q, -np.inf)
    order = np.lexsort((-qv, cell))  # by cell, best quantity first
    heads = np.r_[0, np.flatnonzero(np.diff(cell[order])) + 1]
    best_id = order[heads]
    cq = qv[best_id]
    smin = np.minimum.reduceat(steps[order], heads)
    smax = np.maximum.reduceat(steps[order], heads)
    ns = len(STATUSES)
    stc = np.bincount(cell * ns + st, minlength=k * ns).reshape(k, ns)
    kids = np.flatnonzero(par >= 0)
    pairs = np.unique(cell[par[kids]] * k + cell[kids])
    a, b = pairs // k, pairs % k
    a, b = a[a != b], b[a != b]
    ex, ey = segments(cx[a], cy[a], cx[b], cy[b])
    out: list = [
        go.Scattergl(
            x=ex, y=ey, mode="lines", line=dict(color=edge_colour, width=1), name="edges", hoverinfo="skip", showlegend=False
        )
    ]
    short = "best value" if qname == "value" else "best score"
    text = [
        f"{count[c]:,} nodes, steps {smin[c]:g}–{smax[c]:g}, {short} {num(cq[c], 3) if cq[c] > -np.inf else '–'}"
        "<br>statuses " + ", ".join(f"{s} {stc[c, j]:,}" for j, s in enumerate(STATUSES) if stc[c, j])
        for c in range(k)
    ]
    text = np.asarray(text, dtype=object)
    size = sizes(count.astype(float), 4.0, 14.0)  # dense grid: smaller than node markers
    ok = np.isfinite(cq)
    if ok.any():
        out.append(
            marker_trace(
                "cells",
                cx[ok],
                cy[ok],
                best_id[ok],
                text[ok],
                size=size[ok],
                color=u[best_id[ok]],
                line=dict(width=0),
                **{**cmark, "colorbar": {**cmark.get("colorbar", {}), "title": dict(text=f"max {qname}"), "thickness": 12}},
            )
        )
    if (~ok).any():
        out.append(
            marker_trace(
                f"cells (no {'value' if qname == 'value' else 'score'})",
                cx[~ok],
                cy[~ok],
                best_id[~ok],
                text[~ok],
                size=size[~ok],
                color=_GREY,
            )
        )
    return out, k
