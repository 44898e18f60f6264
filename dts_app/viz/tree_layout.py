"""Layered ("tidy") view of a search trace: depth down the page, one column per path.

Layout (:func:`layered_positions`): a node's depth is its ``step``. Leaves take
consecutive integer slots in depth-first order (children in id order, roots in id
order) and an internal node sits at the midpoint of its first and last child, so every
subtree occupies its own x-interval and no edges cross. Ids are ``0..n-1`` with a
parent's id below its child's, so three linear passes over the ids (leaf counts
bottom-up, leaf offsets top-down, midpoints bottom-up) replace recursion: a 50,000-deep
chain costs the same as a bushy tree.

Figure (:func:`layered_tree_figure`): root at the top, edges as one line trace, node
size from ``visits`` (tree search) or from the number of leaves below, colour from
``value`` (tree search) or the search ``score``; pruned / reverted / resampled nodes get
their own symbols, finals an outline, the best node a star on a bold root→best line.

Aggregation: above ``max_markers`` nodes, nodes are binned into cells (depth bins ×
x bins, the x resolution the largest that keeps at most ``max_markers`` non-empty
cells). One marker per cell, sized by its node count and coloured by the cell's best
value of the colour quantity; its ``customdata`` is that best node's id, so
click-to-inspect still lands on a real node. Edges become the unique (parent cell →
child cell) pairs. The best path, and up to a cap of pruned / reverted / resampled
nodes, are still drawn node by node on top.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ..trace import STATUSES
from .tree import STATUS_COLOURS, best_path

__all__ = ["STATUS_SYMBOLS", "layered_positions", "layered_tree_figure"]

STATUS_SYMBOLS: dict[str, str] = {"pruned": "x", "reverted": "triangle-down", "resampled": "diamond"}
_SPECIAL = tuple(STATUS_SYMBOLS)
_GREY = "#b0b7bf"
_EDGE = "rgba(120,130,140,0.4)"
_COLOURSCALE = "Viridis"
_SMIN, _SMAX = 5.0, 18.0


def _parents(nodes: list[dict]) -> np.ndarray:
    return np.fromiter((-1 if nd["parent"] is None else nd["parent"] for nd in nodes), dtype=np.int64, count=len(nodes))


def _column(nodes: list[dict], key: str) -> np.ndarray:
    """A float column, NaN where the node lacks the field."""
    return np.fromiter(
        (math.nan if (v := nd.get(key)) is None else v for nd in nodes),
        dtype=np.float64,
        count=len(nodes),
    )


def _layout(par: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slot x and leaf count of every node (see module docstring)."""
    n = len(par)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    if np.any(par >= np.arange(n)):
        raise ValueError("each node's parent id must be smaller than its own id")
    kids = np.flatnonzero(par >= 0)
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    if len(kids):
        order = kids[np.argsort(par[kids], kind="stable")]  # grouped by parent, ids ascending inside
        gp = par[order]
        head = np.r_[True, gp[1:] != gp[:-1]]
        tail = np.r_[gp[1:] != gp[:-1], True]
        first[gp[head]] = order[head]
        last[gp[tail]] = order[tail]
    p = par.tolist()
    cnt = (first < 0).astype(np.int64).tolist()
    for i in range(n - 1, 0, -1):  # leaf counts, bottom-up
        if p[i] >= 0:
            cnt[p[i]] += cnt[i]
    start = [0] * n
    nxt = [0] * n
    off = 0
    for i in range(n):  # first leaf slot of each subtree, top-down
        q = p[i]
        if q < 0:
            s = off
            off += cnt[i]
        else:
            s = nxt[q]
            nxt[q] = s + cnt[i]
        start[i] = s
        nxt[i] = s
    f, la = first.tolist(), last.tolist()
    x = [0.0] * n
    for i in range(n - 1, -1, -1):  # midpoints, bottom-up
        x[i] = float(start[i]) if f[i] < 0 else 0.5 * (x[f[i]] + x[la[i]])
    return np.asarray(x), np.asarray(cnt, dtype=np.int64)


def layered_positions(nodes: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Tidy layered layout of a trace's nodes (a forest).

    Args:
        nodes: node dicts indexed by id (``"parent"``, ``"step"``); a parent's id is
            smaller than its child's.

    Returns:
        ``(x, depth)``: float arrays of length ``len(nodes)``; x is the slot (leaves at
        consecutive integers), depth the node's step.
    """
    x, _ = _layout(_parents(nodes))
    return x, _column(nodes, "step")


def _fmt(v: float) -> str:
    return "–" if v != v else f"{v:.3g}"


def _hover(nodes: list[dict], ids) -> list[str]:
    out = []
    for i in ids:
        nd = nodes[i]
        sc, ho, va, vi = nd.get("score"), nd.get("heldout_score"), nd.get("value"), nd.get("visits")
        out.append(
            f"id {i} · {nd.get('status', 'kept')}<br>step {nd['step']} · t {float(nd['t']):.3f}"
            f"<br>search score {'–' if sc is None else f'{sc:.3g}'}<br>held-out {'–' if ho is None else f'{ho:.3g}'}"
            f"<br>value {'–' if va is None else f'{va:.3g}'} · visits {'–' if vi is None else vi}"
        )
    return out


def _segments(ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line coordinates a→b, None between segments (object arrays: JSON nulls)."""
    m = len(ax)
    ex = np.full(3 * m, None, dtype=object)
    ey = np.full(3 * m, None, dtype=object)
    ex[0::3], ex[1::3] = np.round(ax, 3).tolist(), np.round(bx, 3).tolist()
    ey[0::3], ey[1::3] = np.round(ay, 4).tolist(), np.round(by, 4).tolist()
    return ex, ey


def _sizes(w: np.ndarray, lo: float = _SMIN, hi: float = _SMAX) -> np.ndarray:
    """Marker sizes ∝ √w, between ``lo`` and ``hi`` px (w ≥ 0)."""
    top = float(np.max(w)) if len(w) else 0.0
    if top <= 0:
        return np.full(len(w), lo)
    return np.round(lo + (hi - lo) * np.sqrt(w / top), 1)


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


def _marker_trace(name, x, y, ids, text, **marker) -> go.Scattergl:
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


def layered_tree_figure(
    tree: dict,
    best_node: int | None = None,
    colour: str = "auto",
    depth: str = "step",
    max_markers: int = 4000,
    uirevision: str = "tree",
) -> go.Figure:
    """The search trace as a layered tree (root at the top), aggregated when large.

    Args:
        tree: ``Trace.to_dict()``-like ``{"nodes": [...], "events": [...]}``.
        best_node: the chosen candidate's node id (default: the node with status
            ``best``, if any); its root path is drawn as a bold line.
        colour: ``"auto"`` (``value`` when any node has one, else ``score``),
            ``"value"`` or ``"score"``.
        depth: vertical axis, ``"step"`` or ``"t"``.
        max_markers: above this many nodes, cells replace nodes (see module docstring).
        uirevision: plotly ``uirevision`` so zoom survives redraws.

    Returns:
        A figure; every marker's ``customdata`` is a node id.
    """
    if colour not in ("auto", "value", "score") or depth not in ("step", "t"):
        raise ValueError(f"colour must be auto/value/score and depth step/t, got {colour!r}, {depth!r}")
    nodes = tree["nodes"]
    n = len(nodes)
    par = _parents(nodes)
    x, leaves = _layout(par)
    y = _column(nodes, depth)
    code = {s: k for k, s in enumerate(STATUSES)}
    st = np.fromiter((code.get(nd.get("status"), 0) for nd in nodes), dtype=np.int64, count=n)
    vals = _column(nodes, "value")
    if colour == "auto":
        colour = "value" if np.any(~np.isnan(vals)) else "score"
    q = vals if colour == "value" else _column(nodes, "score")
    qname = "value" if colour == "value" else "search score"
    have = ~np.isnan(q)
    crange = dict(cmin=float(q[have].min()), cmax=float(q[have].max())) if have.any() else {}
    if best_node is None and (b := np.flatnonzero(st == code["best"])).size:
        best_node = int(b[0])
    path = np.asarray(best_path(nodes, best_node), dtype=np.int64)

    fig = go.Figure()
    aggregated = n > max_markers
    if not aggregated:
        kids = np.flatnonzero(par >= 0)
        ex, ey = _segments(x[par[kids]], y[par[kids]], x[kids], y[kids])
        fig.add_trace(go.Scattergl(x=ex, y=ey, mode="lines", line=dict(color=_EDGE, width=1), name="edges", hoverinfo="skip"))
    else:
        steps = _column(nodes, "step")
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
        stc = np.bincount(cell * len(STATUSES) + st, minlength=k * len(STATUSES)).reshape(k, len(STATUSES))
        kids = np.flatnonzero(par >= 0)
        pairs = np.unique(cell[par[kids]] * k + cell[kids])
        a, b = pairs // k, pairs % k
        a, b = a[a != b], b[a != b]
        ex, ey = _segments(cx[a], cy[a], cx[b], cy[b])
        fig.add_trace(go.Scattergl(x=ex, y=ey, mode="lines", line=dict(color=_EDGE, width=1), name="edges", hoverinfo="skip"))
        short = "best value" if colour == "value" else "best score"
        text = [
            f"{count[c]:,} nodes, steps {smin[c]:g}–{smax[c]:g}, {short} {_fmt(cq[c]) if cq[c] > -np.inf else '–'}"
            f"<br>statuses " + ", ".join(f"{s} {stc[c, j]:,}" for j, s in enumerate(STATUSES) if stc[c, j])
            for c in range(k)
        ]
        text = np.asarray(text, dtype=object)
        size = _sizes(count.astype(float), 4.0, 14.0)  # dense grid: smaller than node markers
        ok = np.isfinite(cq)
        if ok.any():
            fig.add_trace(
                _marker_trace(
                    "cells",
                    cx[ok],
                    cy[ok],
                    best_id[ok],
                    text[ok],
                    size=size[ok],
                    color=cq[ok],
                    colorscale=_COLOURSCALE,
                    colorbar=dict(title=dict(text=f"max {qname}"), thickness=12),
                    line=dict(width=0),
                    **crange,
                )
            )
        if (~ok).any():
            fig.add_trace(
                _marker_trace(f"cells (no {colour})", cx[~ok], cy[~ok], best_id[~ok], text[~ok], size=size[~ok], color=_GREY)
            )

    if not aggregated:
        has_visits = any(nd.get("visits") is not None for nd in nodes)
        size = _sizes(np.nan_to_num(_column(nodes, "visits")) if has_visits else leaves.astype(float))
        text = np.asarray(_hover(nodes, range(n)), dtype=object)
        main = ~np.isin(st, [code[s] for s in _SPECIAL])
        for name, sel, marker in (
            (
                "nodes",
                main & have,
                dict(color=q, colorscale=_COLOURSCALE, colorbar=dict(title=dict(text=qname), thickness=12), **crange),
            ),
            (f"nodes (no {colour})", main & ~have, dict(color=_GREY)),
        ):
            ids = np.flatnonzero(sel)
            if len(ids):
                m = {key: (v[ids] if isinstance(v, np.ndarray) else v) for key, v in marker.items()}
                fig.add_trace(_marker_trace(name, x[ids], y[ids], ids, text[ids], size=size[ids], line=dict(width=0), **m))
    cap = max(1, max_markers // 8)
    for s in _SPECIAL:
        ids = np.flatnonzero(st == code[s])
        if not len(ids):
            continue
        name = s
        if aggregated and len(ids) > cap:
            name = f"{s} ({cap:,} of {len(ids):,})"
            ids = ids[np.linspace(0, len(ids) - 1, cap).round().astype(np.int64)]
        sz = 7.0 if aggregated else np.maximum(size[ids], 7.0)
        fig.add_trace(
            _marker_trace(
                name, x[ids], y[ids], ids, _hover(nodes, ids), size=sz, color=STATUS_COLOURS[s], symbol=STATUS_SYMBOLS[s]
            )
        )
    if not aggregated:
        ids = np.flatnonzero(st == code["final"])
        if len(ids):
            fig.add_trace(
                _marker_trace(
                    "final",
                    x[ids],
                    y[ids],
                    ids,
                    _hover(nodes, ids),
                    size=size[ids] + 4,
                    color=STATUS_COLOURS["final"],
                    symbol="circle-open",
                    line=dict(width=2, color=STATUS_COLOURS["final"]),
                )
            )
    if len(path) > 1:
        fig.add_trace(
            go.Scattergl(
                x=x[path].astype(np.float32),
                y=y[path].astype(np.float32),
                mode="lines",
                line=dict(color=STATUS_COLOURS["best"], width=4),
                name="best path",
                customdata=path.astype(np.int32),
                hoverinfo="skip",
            )
        )
    if best_node is not None:
        fig.add_trace(
            _marker_trace(
                "best",
                [x[best_node]],
                [y[best_node]],
                [int(best_node)],
                _hover(nodes, [best_node]),
                size=18,
                color=STATUS_COLOURS["best"],
                symbol="star",
                line=dict(width=1, color="white"),
            )
        )

    title = f"Candidate tree (layered · {n:,} nodes" + (f" in {k:,} cells)" if aggregated else ")")
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        uirevision=uirevision,
        height=420,
        margin=dict(l=50, r=10, t=36, b=30),
        legend=dict(orientation="h", y=-0.08, yanchor="top"),
        hovermode="closest",
    )
    fig.update_xaxes(title=dict(text="paths", standoff=2), showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(
        title="step (noise → data)" if depth == "step" else "t",
        autorange="reversed" if depth == "step" else True,  # root (step 0, t = 1) on top
    )
    return fig
