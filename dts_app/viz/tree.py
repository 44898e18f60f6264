"""Candidate-tree figure: nodes by step (or t) against score, edges parent → child.

Pure data → figure: takes ``result.tree.to_dict()`` (``{"nodes": [...], "events": [...]}``)
and returns a :class:`plotly.graph_objects.Figure`.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ..trace import STATUSES
from .style import BEST_LINE, STATUS_COLOURS, algorithm_colour, num, rgba, tidy_axes

__all__ = ["STATUS_COLOURS", "best_path", "node_y", "tree_figure"]


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


def tree_figure(
    tree: dict, best_node: int | None = None, x: str = "step", uirevision: str = "tree", *, algorithm: str | None = None
) -> go.Figure:
    """The candidate tree.

    Args:
        tree: ``Trace.to_dict()``; unscored nodes sit at their parent's y (0 at a root)
            so the tree stays connected.
        best_node: the chosen candidate's node id; its root path is highlighted.
        x: ``"step"`` or ``"t"`` for the horizontal axis.
        uirevision: plotly ``uirevision`` so zoom survives redraws.
        algorithm: the algorithm that made the trace: edges in its colour (inferred from
            the trace when None).

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
    from .layouts import infer_algorithm

    ink = algorithm_colour(algorithm if algorithm is not None else infer_algorithm(nodes, tree.get("events")))
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(x=ex, y=ey, mode="lines", line=dict(color=rgba(ink, 0.35), width=1), name="edges", hoverinfo="skip")
    )
    path = best_path(nodes, best_node)
    if len(path) > 1:
        fig.add_trace(
            go.Scatter(
                x=[xs[i] for i in path],
                y=[ys[i] for i in path],
                mode="lines",
                line=dict(color=BEST_LINE, width=3),
                name="best path",
                hoverinfo="skip",
            )
        )
    for status in STATUSES:
        ids = [n["id"] for n in nodes if n["status"] == status]
        if not ids:
            continue
        text = [
            f"id {i}<br>step {nodes[i]['step']} · t {num(nodes[i]['t'], 3)}<br>search score {num(nodes[i]['score'])}"
            f"<br>held-out {num(nodes[i]['heldout_score'])}<br>D {num(nodes[i].get('D'))}"
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
                    size=14 if status == "best" else 6,
                    symbol="star" if status == "best" else "circle",
                    line=dict(width=1, color=BEST_LINE) if status == "best" else None,
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
        legend=dict(orientation="h", y=-0.18, yanchor="top", font=dict(size=10)),
        height=380,
        plot_bgcolor="white",
    )
    fig.update_yaxes(gridcolor="#eceff2", zeroline=False)
    fig.update_xaxes(gridcolor="#eceff2", zeroline=False)
    tidy_axes(fig)
    if x == "t":
        fig.update_xaxes(autorange="reversed")
    return fig
