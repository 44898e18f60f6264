"""The true 2-D plane for 2-D gmm presets: density contours of p_0, obstacles with their
Q* circles, and the search's paths of clean predictions x̂0.

Also :func:`obstacle_geometry`, which turns the resolved obstacles of a result into centres
and radii in data space (shared with the embedding view).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .style import BEST_LINE, OBSTACLE, REGION_FILL, STATUS_COLOURS, algorithm_colour, num, rgba, tidy_axes
from .trajectories import leaf_paths
from .tree import best_path

__all__ = ["obstacle_geometry", "mixture_log_density", "plane_figure"]


def obstacle_geometry(obstacles: list[dict], max_points: int = 64) -> list[dict]:
    """Centres, radii and Q* of the resolved obstacles in data (x̂0) space.

    Args:
        obstacles: ``SearchResult.obstacles`` (each with ``points`` ``[P, F]`` or None when
            too large to carry, ``radius``, ``q_star``, ``space``, ``label``); obstacles in
            a feature space (text concepts) have no centre in data space and are skipped.
        max_points: the most centres drawn per obstacle.

    Returns:
        ``[{"label", "centre": [F], "radius", "q_star"}]``; the Q* region of a centre is
        every x with ``|x − centre| ≤ radius + q_star``.
    """
    out = []
    for o in obstacles:
        if o.get("space", "x0") != "x0" or not o.get("points"):
            continue
        for p in o["points"][:max_points]:
            out.append(
                {
                    "label": o.get("label") or o["kind"],
                    "centre": [float(v) for v in p],
                    "radius": float(o.get("radius") or 0.0),
                    "q_star": float(o["q_star"]),
                }
            )
    return out


def mixture_log_density(x: np.ndarray, weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """log p_0(x) of a diagonal Gaussian mixture.

    Args:
        x: ``[P, D]`` points.
        weights: ``[K]``; means, variances: ``[K, D]``.

    Returns:
        ``[P]`` log-densities.
    """
    diff = x[:, None, :] - means[None]
    comp = -0.5 * ((diff**2) / variances[None]).sum(-1) - 0.5 * np.log(2 * math.pi * variances).sum(-1)[None]
    a = comp + np.log(weights)[None]
    m = a.max(1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(1, keepdims=True)))[:, 0]


def _circle(c: list[float], r: float, n: int = 64) -> tuple[list[float], list[float]]:
    th = np.linspace(0, 2 * math.pi, n)
    return list(c[0] + r * np.cos(th)), list(c[1] + r * np.sin(th))


def plane_figure(
    mixture: dict,
    tree: dict | None,
    best_node: int | None = None,
    obstacles: list[dict] | None = None,
    target_means: list[list[float]] | None = None,
    uirevision: str = "plane",
    grid: int = 90,
    *,
    algorithm: str | None = None,
    mode_labels: list[str] | None = None,
) -> go.Figure:
    """The data plane of a 2-D mixture.

    Args:
        mixture: ``GaussianMixture.to_dict()`` (``weights [K]``, ``means [K, 2]``,
            ``variances`` (or ``covariances``) ``[K, 2]`` diagonal).
        tree: ``Trace.to_dict()`` with ``x0`` per node, or None.
        best_node: the chosen candidate's node id.
        obstacles: the resolved obstacles (``SearchResult.obstacles``).
        target_means: means of the target component(s), marked with stars.
        uirevision: plotly ``uirevision``.
        grid: contour resolution per axis.
        algorithm: the algorithm that made the trace: the paths in its colour (inferred
            from the trace when None).
        mode_labels: one label per component (``"2: prize"``), written at its mean with
            its weight (the trace ``modes``); None: unlabelled.

    Returns:
        A figure with traces ``log p₀`` (contour), ``paths``, ``finals``, ``best path``,
        ``obstacles`` and one ``Q* circle`` per obstacle.
    """
    w = np.asarray(mixture["weights"], dtype=float)
    mu = np.asarray(mixture["means"], dtype=float)
    var = np.asarray(mixture.get("variances", mixture.get("covariances")), dtype=float)
    sd = np.sqrt(var.max())
    lo, hi = mu.min(0) - 3 * sd - 0.5, mu.max(0) + 3 * sd + 0.5
    gx, gy = np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)
    xx, yy = np.meshgrid(gx, gy)
    logp = mixture_log_density(np.stack([xx.ravel(), yy.ravel()], 1), w, mu, var).reshape(grid, grid)
    fig = go.Figure()
    fig.add_trace(
        go.Contour(
            x=gx,
            y=gy,
            z=np.maximum(logp, logp.max() - 12),
            name="log p₀",
            colorscale="Blues",
            showscale=False,
            contours=dict(coloring="fill", showlines=False),
            opacity=0.75,
            hovertemplate="log p₀ %{z:.2f}<extra></extra>",
            ncontours=14,
        )
    )
    if tree is not None:
        from .layouts import infer_algorithm

        nodes = tree["nodes"]
        ink = algorithm_colour(algorithm if algorithm is not None else infer_algorithm(nodes, tree.get("events")))
        px: list = []
        py: list = []
        for p in leaf_paths(nodes):
            pts = [nodes[i]["x0"] for i in p if nodes[i].get("x0") is not None]
            px += [v[0] for v in pts] + [None]
            py += [v[1] for v in pts] + [None]
        fig.add_trace(
            go.Scatter(x=px, y=py, mode="lines", name="paths (x̂0)", line=dict(color=rgba(ink, 0.6), width=1.2), hoverinfo="skip")
        )
        fin = [n for n in nodes if n["status"] in ("final", "best") and n.get("x0") is not None]
        fig.add_trace(
            go.Scatter(
                x=[n["x0"][0] for n in fin],
                y=[n["x0"][1] for n in fin],
                mode="markers",
                name="finals",
                marker=dict(color=STATUS_COLOURS["final"], size=7, line=dict(width=1, color="white")),
                text=[
                    f"id {n['id']}<br>search score {num(n.get('score'))}<br>held-out {num(n.get('heldout_score'))}" for n in fin
                ],
                hovertemplate="%{text}<br>x̂0 (%{x:.3f}, %{y:.3f})<extra>final</extra>",
            )
        )
        if best_node is not None:
            bp = [nodes[i]["x0"] for i in best_path(nodes, best_node) if nodes[i].get("x0") is not None]
            fig.add_trace(
                go.Scatter(
                    x=[v[0] for v in bp],
                    y=[v[1] for v in bp],
                    mode="lines+markers",
                    name="best path",
                    line=dict(color=BEST_LINE, width=3),
                    marker=dict(size=4, color=BEST_LINE),
                    hovertemplate="best path · x̂0 (%{x:.3f}, %{y:.3f})<extra></extra>",
                )
            )
            b = nodes[best_node]
            if b.get("x0") is not None:
                fig.add_trace(
                    go.Scatter(
                        x=[b["x0"][0]],
                        y=[b["x0"][1]],
                        mode="markers",
                        name="best",
                        marker=dict(symbol="star", size=16, color=STATUS_COLOURS["best"], line=dict(width=1.2, color=BEST_LINE)),
                        text=[f"id {best_node}<br>search score {num(b.get('score'))}<br>held-out {num(b.get('heldout_score'))}"],
                        hovertemplate="%{text}<extra>best</extra>",
                    )
                )
    if target_means:
        fig.add_trace(
            go.Scatter(
                x=[m[0] for m in target_means],
                y=[m[1] for m in target_means],
                mode="markers",
                name="target",
                marker=dict(symbol="circle-x-open", size=16, color="#111111", line=dict(width=2)),
                hovertemplate="target mode (%{x:.3g}, %{y:.3g})<extra></extra>",
            )
        )
    geo = obstacle_geometry(obstacles or [])
    for g in geo:
        cx, cy = _circle(g["centre"], g["radius"] + g["q_star"])
        fig.add_trace(
            go.Scatter(
                x=cx,
                y=cy,
                mode="lines",
                name="Q* circle",
                line=dict(color=OBSTACLE, dash="dash"),
                fill="toself",
                fillcolor=REGION_FILL,
                showlegend=g is geo[0],
                hoverinfo="skip",
            )
        )
        if g["radius"] > 0:
            bx, by = _circle(g["centre"], g["radius"])
            fig.add_trace(
                go.Scatter(x=bx, y=by, mode="lines", name="ball", line=dict(color=OBSTACLE), showlegend=False, hoverinfo="skip")
            )
    if geo:
        fig.add_trace(
            go.Scatter(
                x=[g["centre"][0] for g in geo],
                y=[g["centre"][1] for g in geo],
                mode="markers",
                name="obstacles",
                marker=dict(symbol="x", size=11, color=OBSTACLE),
                text=[f"{g['label']}<br>radius {num(g['radius'], 3)} · Q* {num(g['q_star'], 3)}" for g in geo],
                hovertemplate="%{text}<extra>obstacle</extra>",
            )
        )
    fig.update_layout(
        title="Data plane: p₀, paths of x̂0, obstacles",
        uirevision=uirevision,
        height=420,
        margin=dict(l=40, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.2, yanchor="top", font=dict(size=10)),
        plot_bgcolor="white",
    )
    # one unit is as long on both axes, so a round Q* region is drawn as a circle
    fig.update_xaxes(range=[lo[0], hi[0]], title_text="x₁", constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(range=[lo[1], hi[1]], title_text="x₂", scaleanchor="x", scaleratio=1, showgrid=False, zeroline=False)
    tidy_axes(fig)
    if mode_labels is not None and len(mode_labels) == len(mu):
        fig.add_trace(
            go.Scatter(
                x=mu[:, 0].tolist(),
                y=mu[:, 1].tolist(),
                mode="text",
                text=[f"{lab} ({wk:.0%})" for lab, wk in zip(mode_labels, w)],
                textposition="bottom center",
                textfont=dict(size=11, color="#222"),
                name="modes",
                showlegend=False,
                hoverinfo="skip",
            )
        )
    return fig
