"""Figures of the obstacle field: the shape of U_rep, and an η × Q* scan."""

from __future__ import annotations

import numpy as np

__all__ = ["potential_figure", "field_figure"]


def potential_figure(etas=(0.25, 1.0, 4.0), q_star: float = 1.0, floor_fraction: float = 0.05):
    """U_rep(D) = ½·η·(1/D − 1/Q*)² for D ≤ Q* (0 beyond) for a few η; the Q* band and the
    D floor marked. Pure: returns a plotly Figure."""
    import plotly.graph_objects as go

    d = np.linspace(0.0, 1.6 * q_star, 400)
    dc = np.maximum(d, floor_fraction * q_star)
    fig = go.Figure()
    fig.add_vrect(x0=0, x1=q_star, fillcolor="rgba(220,60,60,0.08)", line_width=0,
                  annotation_text="D ≤ Q*: the field acts", annotation_position="top")  # fmt: skip
    for eta in etas:
        u = np.where(d <= q_star, 0.5 * eta * (1 / dc - 1 / q_star) ** 2, 0.0)
        fig.add_scatter(x=d, y=u, mode="lines", name=f"η = {eta:g}")
    fig.add_vline(x=q_star, line_dash="dash", annotation_text="Q*", annotation_position="top right")
    fig.add_vline(x=floor_fraction * q_star, line_dash="dot", line_color="grey",
                  annotation_text="D floor", annotation_position="bottom right")  # fmt: skip
    fig.update_layout(
        title="Repulsive potential U_rep(D) = ½·η·(1/D − 1/Q*)² for D ≤ Q*, 0 beyond",
        xaxis_title="D: distance of the clean prediction x̂0 to the nearest obstacle",
        yaxis_title="U_rep",
        yaxis_range=[0, 0.5 * max(etas) * (1 / (0.2 * q_star) - 1 / q_star) ** 2],
        template="plotly_white",
        margin=dict(l=60, r=20, t=60, b=60),
    )
    fig.update_xaxes(hoverformat=",.4~g")
    fig.update_yaxes(hoverformat=",.4~g")
    return fig


def field_figure(scan: dict):
    """Collision rate and best score (mean ± standard error over seeds) against η, one line
    per Q*, from :func:`dts_app.sweep.scan_field`'s output."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("collision rate", "best search score"))
    for q in scan["q_stars"]:
        rows = sorted((r for r in scan["rows"] if r["q_star"] == q), key=lambda r: r["eta"])
        x = [r["eta"] for r in rows]
        for col, key in ((1, "collision_rate"), (2, "best_score")):
            y = [r[f"{key}_mean"] for r in rows]
            e = [r[f"{key}_se"] or 0.0 for r in rows]
            fig.add_scatter(x=x, y=y, error_y=dict(type="data", array=e), mode="lines+markers",
                            name=f"Q* = {q:g}", legendgroup=str(q), showlegend=col == 1, row=1, col=col)  # fmt: skip
    fig.update_xaxes(title_text="η: repulsion strength", hoverformat=",.4~g")
    fig.update_yaxes(title_text="collision rate", row=1, col=1)
    fig.update_yaxes(title_text="best search score", row=1, col=2)
    fig.update_yaxes(hoverformat=",.4~g")
    fig.update_layout(title=f"Obstacle field scan ({scan['avoid']}, {scan['seeds']} seeds)", template="plotly_white")
    return fig
