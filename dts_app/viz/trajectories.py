"""Score and distance trajectories along each path of a search tree.

Pure data → figure functions over ``result.tree.to_dict()``.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import BEST_LINE, HELDOUT_COLOUR, OBSTACLE, REGION_FILL, STATUS_COLOURS, algorithm_colour, rgba, tidy_axes
from .tree import best_path

__all__ = ["leaf_paths", "trajectories_figure"]


def leaf_paths(nodes: list[dict], limit: int = 64) -> list[list[int]]:
    """Root-to-node id paths of the final candidates (or of the leaves when none finished).

    Args:
        nodes: node dicts indexed by id.
        limit: most paths returned (finals first, in id order).
    """
    ends = [n["id"] for n in nodes if n["status"] in ("final", "best")]
    if not ends:
        has_child = {n["parent"] for n in nodes if n["parent"] is not None}
        ends = [n["id"] for n in nodes if n["id"] not in has_child]
    return [best_path(nodes, e) for e in ends[:limit]]


def _joined(nodes: list[dict], paths: list[list[int]], field: str) -> tuple[list, list]:
    xs: list = []
    ys: list = []
    for p in paths:
        pts = [(nodes[i]["t"], nodes[i][field]) for i in p if nodes[i][field] is not None]
        if pts:
            xs += [a for a, _ in pts] + [None]
            ys += [b for _, b in pts] + [None]
    return xs, ys


def trajectories_figure(
    tree: dict,
    best_node: int | None = None,
    q_star: float | None = None,
    uirevision: str = "traj",
    *,
    algorithm: str | None = None,
) -> go.Figure:
    """Scores along each path against t (top) and distance D to the nearest obstacle (bottom).

    Args:
        tree: ``Trace.to_dict()``.
        best_node: the chosen candidate's node, drawn bold.
        q_star: influence radius; the band ``0 ≤ D ≤ Q*`` is shaded when given.
        uirevision: plotly ``uirevision``.
        algorithm: the algorithm that made the trace: its colour for the search score and
            the ESS (inferred from the trace when None).

    Returns:
        A figure with traces ``search score``, ``held-out score``, ``best path``; a row
        for D (``D``, ``entries into Q*``) when any node has D; and a row for the
        effective sample size of particle methods (``ESS``: SMC steering's scored steps
        and the SMC obstacle mode's resampling steps, with resampling marked) when the
        trace has them.
    """
    from .layouts import infer_algorithm

    nodes = tree["nodes"]
    ink = algorithm_colour(algorithm if algorithm is not None else infer_algorithm(nodes, tree.get("events")))
    paths = leaf_paths(nodes)
    has_d = any(n.get("D") is not None for n in nodes)
    ess = [e for e in tree.get("events", []) if e.get("kind") in ("smc", "obstacle-smc")]
    titles = ["search / held-out score along paths"]
    if has_d:
        titles.append("D: distance to nearest obstacle")
    if ess:
        titles.append("ESS: effective sample size of the particles")
    rows = len(titles)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.14 if rows < 3 else 0.09, subplot_titles=titles)
    if ess:
        fig.add_trace(
            go.Scatter(x=[e["t"] for e in ess], y=[e["ess"] for e in ess], mode="lines+markers", name="ESS",
                       line=dict(color=ink), marker=dict(size=5), hovertemplate="t %{x:.3f}<br>ESS %{y:.3g}<extra></extra>"),
            row=rows, col=1,
        )  # fmt: skip
        rs = [e for e in ess if e.get("resampled")]
        if rs:
            fig.add_trace(
                go.Scatter(x=[e["t"] for e in rs], y=[e["ess"] for e in rs], mode="markers", name="resampled",
                           marker=dict(symbol="diamond", size=9, color=STATUS_COLOURS["resampled"], line=dict(width=1, color=ink)),
                           hovertemplate="resampled at t %{x:.3f}<br>ESS %{y:.3g}<extra></extra>"),
                row=rows, col=1,
            )  # fmt: skip
    xs, ys = _joined(nodes, paths, "score")
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="lines", name="search score", line=dict(color=rgba(ink, 0.6), width=1),
            hovertemplate="t %{x:.3f}<br>search score %{y:.4g}<extra></extra>",
        ),
        row=1, col=1,
    )  # fmt: skip
    xs, ys = _joined(nodes, paths, "heldout_score")
    if any(v is not None for v in ys):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="held-out score",
                line=dict(color=rgba(HELDOUT_COLOUR, 0.7), width=1, dash="dot"),
                hovertemplate="t %{x:.3f}<br>held-out %{y:.4g}<extra></extra>",
            ),  # fmt: skip
            row=1,
            col=1,
        )
    if best_node is not None:
        bx, by = _joined(nodes, [best_path(nodes, best_node)], "score")
        fig.add_trace(
            go.Scatter(
                x=bx, y=by, mode="lines", name="best path", line=dict(color=BEST_LINE, width=3),
                hovertemplate="best path · t %{x:.3f}<br>search score %{y:.4g}<extra></extra>",
            ),
            row=1, col=1,
        )  # fmt: skip
    if has_d:
        dx, dy = _joined(nodes, paths, "D")
        fig.add_trace(
            go.Scatter(
                x=dx, y=dy, mode="lines", name="D", line=dict(color=rgba(OBSTACLE, 0.6), width=1),
                hovertemplate="t %{x:.3f}<br>D %{y:.3g}<extra></extra>",
            ),
            row=2, col=1,
        )  # fmt: skip
        entries = [
            n
            for n in nodes
            if n["inside_q"] and (n["parent"] is None or not nodes[n["parent"]]["inside_q"]) and n["D"] is not None
        ]
        if entries:
            fig.add_trace(
                go.Scatter(
                    x=[n["t"] for n in entries],
                    y=[n["D"] for n in entries],
                    mode="markers",
                    name="entries into Q*",
                    marker=dict(symbol="x", size=9, color=OBSTACLE),
                    hovertemplate="entered Q* at t %{x:.3f}<br>D %{y:.3g}<extra></extra>",
                ),
                row=2,
                col=1,
            )
        if q_star is not None:
            fig.add_hrect(
                y0=0,
                y1=q_star,
                fillcolor=REGION_FILL,
                line_width=0,
                row=2,
                col=1,
                annotation_text="Q* band",
                annotation_position="top left",
            )
    fig.update_xaxes(autorange="reversed", title_text="t (1 = noise → 0 = data)", row=rows, col=1)
    for r in range(1, rows):
        fig.update_xaxes(autorange="reversed", row=r, col=1)
    fig.update_yaxes(title_text="score", row=1, col=1)
    if has_d:
        fig.update_yaxes(title_text="D", row=2, col=1)
    if ess:
        fig.update_yaxes(title_text="ESS", row=rows, col=1)
    fig.update_xaxes(gridcolor="#eceff2", zeroline=False)
    fig.update_yaxes(gridcolor="#eceff2", zeroline=False)
    tidy_axes(fig)
    fig.update_layout(
        uirevision=uirevision, height=420 + 160 * (rows - 2 if rows > 2 else 0), margin=dict(l=50, r=10, t=50, b=40),
        legend=dict(orientation="h", y=-0.2, yanchor="top", font=dict(size=10)), plot_bgcolor="white",
    )  # fmt: skip
    return fig
