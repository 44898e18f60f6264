"""The tree view: a search trace laid out to show its algorithm's mechanism.

Layout: :func:`~dts_app.viz.layouts.tree_layout` (rounds for search over paths, the pivot
chain for zero-order, expansions for tree search, the particles' genealogy for SMC, the
tidy layered layout otherwise). :func:`layered_positions` is the tidy layout itself: a
node's depth is its ``step``; leaves take consecutive integer slots in depth-first order
(children in id order, roots in id order) and an internal node sits at the midpoint of its
first and last child, so every subtree occupies its own x-interval and no edges cross.

Figure (:func:`layered_tree_figure`): root at the top; every edge in one faint line trace in
the algorithm's colour, the mechanism's edges (kept paths, pivots, the expanded tree, the
finals' lineages) bold in it; node size from ``visits`` (tree search) or from the number of
leaves below, colour from ``value`` (tree search) or the search ``score`` on the one score
colour map; pruned / reverted / resampled nodes get their own symbols, finals a black ring,
the best node a yellow star on a black root→best line.

Above ``max_markers`` nodes, nodes are binned into cells (:mod:`dts_app.viz.tree_cells`);
the best path, and up to a cap of pruned / reverted / resampled nodes, are still drawn node
by node on top.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..trace import STATUSES
from .forest import column as _column
from .forest import parents_of, tidy_x
from .layouts import TreeLayout, infer_algorithm, tree_layout
from .style import (
    BEST_LINE,
    STATUS_COLOURS,
    STATUS_SYMBOLS,
    algorithm_colour,
    num,
    rgba,
    score_colours,
    tidy_axes,
)
from .tree import best_path
from .tree_cells import cell_traces, marker_trace, segments, sizes

__all__ = ["STATUS_SYMBOLS", "layered_positions", "layered_tree_figure"]

_SPECIAL = tuple(STATUS_SYMBOLS)
_GREY = "#b0b7bf"
_SMIN, _SMAX = 5.0, 18.0


def layered_positions(nodes: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Tidy layered layout of a trace's nodes (a forest).

    Args:
        nodes: node dicts indexed by id (``"parent"``, ``"step"``); a parent's id is
            smaller than its child's.

    Returns:
        ``(x, depth)``: float arrays of length ``len(nodes)``; x is the slot (leaves at
        consecutive integers), depth the node's step.
    """
    x, _ = tidy_x(parents_of(nodes))
    return x, _column(nodes, "step")


def _hover(nodes: list[dict], ids) -> list[str]:
    out = []
    for i in ids:
        nd = nodes[i]
        vi = nd.get("visits")
        out.append(
            f"id {i} · {nd.get('status', 'kept')}<br>step {nd['step']} · t {num(float(nd['t']), 3)}"
            f"<br>search score {num(nd.get('score'))}<br>held-out {num(nd.get('heldout_score'))}"
            f"<br>value {num(nd.get('value'))} · visits {'–' if vi is None else vi}"
        )
    return out


def _mechanism_traces(lay: TreeLayout, par: np.ndarray, colour: str) -> list:
    """The layout's bold edges, links (arcs, root joins) and rules as line traces."""
    out: list = []
    if lay.highlight is not None and lay.highlight.any():
        kids = np.flatnonzero(lay.highlight & (par >= 0))
        ex, ey = segments(lay.x[par[kids]], lay.y[par[kids]], lay.x[kids], lay.y[kids])
        out.append(
            go.Scattergl(x=ex, y=ey, mode="lines", line=dict(color=colour, width=2), name=lay.highlight_name, hoverinfo="skip")
        )
    if lay.links is not None and lay.links[0]:
        line = dict(color=rgba(colour, 0.7), width=1.2, shape="spline" if lay.links_spline else "linear")
        out.append(go.Scatter(x=lay.links[0], y=lay.links[1], mode="lines", line=line, name=lay.links_name, hoverinfo="skip"))
    if lay.rules:
        lo, hi = float(np.min(lay.x)) - 0.5, float(np.max(lay.x)) + 0.5
        rx = [v for _ in lay.rules for v in (lo, hi, None)]
        ry = [v for r in lay.rules for v in (r, r, None)]
        out.append(
            go.Scatter(
                x=rx, y=ry, mode="lines", line=dict(color="#7b8794", width=1, dash="dot"), name=lay.rules_name, hoverinfo="skip"
            )
        )
    return out


def _decorate(fig: go.Figure, lay: TreeLayout) -> None:
    """Bands (shaded, named at the left) and text labels of the layout."""
    for k, (a, b, name) in enumerate(lay.bands):
        fig.add_shape(
            type="rect", xref="paper", x0=0, x1=1, yref="y", y0=a, y1=b, line_width=0, layer="below",
            fillcolor="rgba(0,0,0,0.045)" if k % 2 == 0 else "rgba(0,0,0,0)",
        )  # fmt: skip
        if not name:
            continue
        fig.add_annotation(
            x=0, xref="paper", y=0.5 * (a + b), yref="y", text=name, showarrow=False, xanchor="left",
            font=dict(size=9, color="#4a4f55"), bgcolor="rgba(255,255,255,0.6)",
        )  # fmt: skip
    if lay.labels:
        fig.add_trace(
            go.Scatter(
                x=[v[0] for v in lay.labels],
                y=[v[1] for v in lay.labels],
                text=[v[2] for v in lay.labels],
                mode="text",
                textposition="top right" if lay.algorithm == "tree" else "middle center",
                textfont=dict(size=9 if lay.algorithm == "tree" else 10, color="#333"),
                name=lay.labels_name,
                hoverinfo="skip",
                showlegend=False,
            )
        )


def layered_tree_figure(
    tree: dict,
    best_node: int | None = None,
    colour: str = "auto",
    depth: str = "step",
    max_markers: int = 4000,
    uirevision: str = "tree",
    *,
    algorithm: str | None = None,
) -> go.Figure:
    """The search trace as a tree (root at the top) laid out by its algorithm, aggregated
    when large.

    Args:
        tree: ``Trace.to_dict()``-like ``{"nodes": [...], "events": [...]}``.
        best_node: the chosen candidate's node id (default: the node with status
            ``best``, if any); its root path is drawn as a bold line.
        colour: ``"auto"`` (``value`` when any node has one, else ``score``),
            ``"value"`` or ``"score"``.
        depth: vertical axis, ``"step"`` or ``"t"``.
        max_markers: above this many nodes, cells replace nodes (see module docstring).
        uirevision: plotly ``uirevision`` so zoom survives redraws.
        algorithm: the registry name of the algorithm that made the trace: its layout and
            its colour (:func:`~dts_app.viz.style.algorithm_colour`); inferred from the
            trace when None.

    Returns:
        A figure; every marker's ``customdata`` is a node id.
    """
    if colour not in ("auto", "value", "score") or depth not in ("step", "t"):
        raise ValueError(f"colour must be auto/value/score and depth step/t, got {colour!r}, {depth!r}")
    nodes = tree["nodes"]
    n = len(nodes)
    par = parents_of(nodes)
    alg = algorithm if algorithm is not None else infer_algorithm(nodes, tree.get("events"))
    lay = tree_layout(nodes, alg, depth)
    x, y = lay.x, lay.y
    ink = algorithm_colour(alg)
    code = {s: k for k, s in enumerate(STATUSES)}
    st = np.fromiter((code.get(nd.get("status"), 0) for nd in nodes), dtype=np.int64, count=n)
    vals = _column(nodes, "value")
    if colour == "auto":
        colour = "value" if np.any(~np.isnan(vals)) else "score"
    q = vals if colour == "value" else _column(nodes, "score")
    qname = "value" if colour == "value" else "search score"
    have = ~np.isnan(q)
    u, cmark = score_colours(q)
    bar = dict(title=dict(text=qname), thickness=12, **cmark.pop("colorbar", {}))
    if best_node is None and (b := np.flatnonzero(st == code["best"])).size:
        best_node = int(b[0])
    path = np.asarray(best_path(nodes, best_node), dtype=np.int64)

    fig = go.Figure()
    aggregated = n > max_markers
    edge_ink = rgba(ink, 0.3)
    if not aggregated:
        kids = np.flatnonzero(par >= 0)
        ex, ey = segments(x[par[kids]], y[par[kids]], x[kids], y[kids])
        fig.add_trace(
            go.Scattergl(
                x=ex, y=ey, mode="lines", line=dict(color=edge_ink, width=1), name="edges", hoverinfo="skip", showlegend=False
            )
        )
        for tr in _mechanism_traces(lay, par, ink):
            fig.add_trace(tr)
        # size: visits (tree search), leaves below (a forest of unknown origin), else one size
        if any(nd.get("visits") is not None for nd in nodes):
            w = np.nan_to_num(_column(nodes, "visits"))
        elif lay.algorithm is None:
            w = tidy_x(par)[1].astype(float)
        else:
            w = np.zeros(n)
        size = sizes(w, _SMIN if len(np.unique(x)) <= 80 else 4.0, _SMAX)
        text = np.asarray(_hover(nodes, range(n)), dtype=object)
        main = ~np.isin(st, [code[s] for s in _SPECIAL])
        for name, sel, marker in (
            (
                "nodes",
                main & have,
                dict(color=u, colorbar=bar, **cmark),
            ),
            (f"nodes (no {colour})", main & ~have, dict(color=_GREY)),
        ):
            ids = np.flatnonzero(sel)
            if len(ids):
                m = {key: (v[ids] if isinstance(v, np.ndarray) else v) for key, v in marker.items()}
                tr = marker_trace(name, x[ids], y[ids], ids, text[ids], size=size[ids], line=dict(width=0), **m)
                tr.showlegend = name != "nodes"  # the colour bar stands for them
                fig.add_trace(tr)
    else:
        traces, k = cell_traces(
            par, x, y, _column(nodes, "step"), st, q, u, qname, {**cmark, "colorbar": bar}, max_markers, edge_ink
        )  # fmt: skip
        for tr in traces:
            fig.add_trace(tr)
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
            marker_trace(
                name, x[ids], y[ids], ids, _hover(nodes, ids), size=sz, color=STATUS_COLOURS[s], symbol=STATUS_SYMBOLS[s]
            )
        )
    if not aggregated:
        ids = np.flatnonzero(st == code["final"])
        if len(ids):
            fig.add_trace(
                marker_trace(
                    "final",
                    x[ids],
                    y[ids],
                    ids,
                    _hover(nodes, ids),
                    size=size[ids] + 4,
                    color=STATUS_COLOURS["final"],
                    symbol="circle-open",
                    line=dict(width=1.5, color=STATUS_COLOURS["final"]),
                )
            )
    if len(path) > 1:
        fig.add_trace(
            go.Scattergl(
                x=x[path].astype(np.float32),
                y=y[path].astype(np.float32),
                mode="lines",
                line=dict(color=BEST_LINE, width=3.5),
                name="best path",
                customdata=path.astype(np.int32),
                hoverinfo="skip",
            )
        )
    if best_node is not None:
        fig.add_trace(
            marker_trace(
                "best",
                [x[best_node]],
                [y[best_node]],
                [int(best_node)],
                _hover(nodes, [best_node]),
                size=18,
                color=STATUS_COLOURS["best"],
                symbol="star",
                line=dict(width=1.2, color=BEST_LINE),
            )
        )
    _decorate(fig, lay)
    head = f"Candidate tree (layered · {n:,} nodes" + (f" in {k:,} cells)" if aggregated else ")")
    title = head + (f"<br><sup>{lay.subtitle}</sup>" if lay.subtitle else "")
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        uirevision=uirevision,
        height=420,
        margin=dict(l=50, r=10, t=52 if lay.subtitle else 36, b=30),
        legend=dict(orientation="h", y=-0.08, yanchor="top", font=dict(size=10)),
        hovermode="closest",
        plot_bgcolor="white",
    )
    fig.update_xaxes(title=dict(text=lay.x_title, standoff=2), showticklabels=False, showgrid=False, zeroline=False)
    yaxis = dict(
        title=lay.y_title, autorange="reversed" if lay.y_reversed else True, gridcolor="#eceff2", zeroline=False
    )  # root (step 0, t = 1) on top
    if lay.y_ticks is not None:
        yaxis.update(tickmode="array", tickvals=lay.y_ticks[0], ticktext=lay.y_ticks[1])
    fig.update_yaxes(**yaxis)
    tidy_axes(fig)
    return fig
