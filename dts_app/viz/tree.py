"""Candidate-tree figure: nodes by step (or t) against score, edges parent → child.

Pure data → figure: takes ``result.tree.to_dict()`` (``{"nodes": [...], "events": [...]}``)
and returns a :class:`plotly.graph_objects.Figure`.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..trace import STATUSES

__all__ = ["STATUS_COLOURS", "best_path", "node_y", "tree_figure"]

STATUS_COLOURS: dict[str, str] = {
    "kept": "#7f8c9a",
    "pruned": "#e67e22",
    "reverted": "#c0392b",
    "resampled": "#b39ddb",
    "final": "#2e86de",
    "best": "#27ae60",
}


def node_y(node: dict) -> float | None:
    """The score shown for a node: its search score, else its held-out score."""
    return node.get("score") if node.get("score") is not None else node.get("heldout_score")


def best_path(nodes: list[dict], best_node: int | None) -> list[int]:
    """Node ids from the root to ``best_node`` (empty when there is none).

    Args:
        nodes: node dicts indexed by id.
        best_node: id of the chosen candidate's final node.
    """
    out: list[int] = []
    cur = best_node
    while cur is not None:
        out.append(cur)
        cur = nodes[cur]["parent"]
    return out[::-1]


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3g}"


def tree_figure(tree: dict, best_node: int | None = None, x: str = "step", uirevision: str = "tree") -> go.Figure:
    """The candidate tree.

    Args:
        tree: ``Trace.to_dict()``; unscored nodes sit at their parent's y (0 at a root)
            so the tree stays connected.
        best_node: the chosen candidate's node id; its root path is highlighted.
        x: ``"step"`` or ``"t"`` for the horizontal axis.
        uirevision: plotly ``uirevision`` so zoom survives redraws.

    Returns:
        A figure with one edge trace, one marker trace per status present and, when
        ``best_node`` is given, a ``best path`` line trace.
    """
    nodes = tree["nodes"]
    xs: list[float] = []
    ys: list[float] = []
    for n in nodes:
        y = node_y(n)
        if y is None:
            y = ys[n["parent"]] if n["parent"] is not None else 0.0
        xs.append(float(n[x]))
        ys.append(float(y))
    ex: list[float | None] = []
    ey: list[float | None] = []
    for n in nodes:
        p = n["parent"]
        if p is not None:
            ex += [xs[p], xs[n["id"]], None]
            ey += [ys[p], ys[n["id"]], None]
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(x=ex, y=ey, mode="lines", line=dict(color="rgba(120,130,140,0.35)", width=1), name="edges", hoverinfo="skip")
    )
    path = best_path(nodes, best_node)
    if len(path) > 1:
        fig.add_trace(
            go.Scatter(
                x=[xs[i] for i in path],
                y=[ys[i] for i in path],
                mode="lines",
                line=dict(color=STATUS_COLOURS["best"], width=3),
                name="best path",
                hoverinfo="skip",
            )
        )
    for status in STATUSES:
        ids = [n["id"] for n in nodes if n["status"] == status]
        if not ids:
            continue
        text = [
            f"id {i}<br>t {nodes[i]['t']:.3f}<br>score {_fmt(nodes[i]['score'])}"
            f"<br>held-out {_fmt(nodes[i]['heldout_score'])}<br>D {_fmt(nodes[i]['D'])}"
            for i in ids
        ]
        fig.add_trace(
            go.Scattergl(
                x=[xs[i] for i in ids],
                y=[ys[i] for i in ids],
                mode="markers",
                name=status,
                marker=dict(
                    color=STATUS_COLOURS[status],
                    size=9 if status == "best" else 6,
                    line=dict(width=1, color="white") if status in ("final", "best") else None,
                ),
                text=text,
                hovertemplate="%{text}<extra>" + status + "</extra>",
                customdata=ids,
            )
        )
    fig.update_layout(
        title=f"Candidate tree ({len(nodes)} nodes)",
        xaxis_title="step" if x == "step" else "t (1 = noise → 0 = data)",
        yaxis_title="search score",
        uirevision=uirevision,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.18),
        height=380,
    )
    if x == "t":
        fig.update_xaxes(autorange="reversed")
    return fig
