"""Paths in latent space: a 2-D embedding (PCA, or UMAP once warmed up) of every node's
clean prediction x̂0, with obstacles, their Q* regions and the nodes that lie within Q* in
the original space.

A Q* region is drawn by sampling points on the sphere ``|x − centre| = radius + Q*`` in the
original D-dim space (seeded random directions plus a circle in the plane of the data's first
two principal axes) and projecting them through the same fitted map as the nodes (the same
PCA mean and axes, or ``transform`` of the same fitted UMAP); the polygon is their convex
hull. "Within Q*" is always measured in the original space, never in the projection.

UMAP is imported lazily; :class:`UmapEmbedder` warms it up in a background thread and
serialises fits with a lock. Callers fall back to PCA while it is not ready.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .style import (
    BEST_LINE,
    OBSTACLE,
    REGION_FILL,
    REGION_LINE,
    STATUS_COLOURS,
    T_SCALE,
    algorithm_colour,
    num,
    rgba,
    tidy_axes,
)
from .trajectories import leaf_paths
from .tree import best_path

__all__ = [
    "pca_fit",
    "pca_2d",
    "UmapEmbedder",
    "within_q",
    "q_boundary_points",
    "region_polygon",
    "embedding_figure",
    "MAX_REGION_OBSTACLES",
    "REGION_POINTS",
]

# At most this many obstacle centres get a drawn Q* region (the rest keep only their ×): each
# region costs REGION_POINTS projected points, and UMAP's transform is not free.
MAX_REGION_OBSTACLES = 16
# Boundary points sampled per region: REGION_CIRCLE on the circle in the plane of the data's
# first two principal axes, the rest in seeded random directions.
REGION_POINTS = 96
REGION_CIRCLE = 32


def pca_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[1, D]`` and top-two principal axes ``[D, 2]`` of ``x`` ``[P, D]`` (orthonormal
    columns; zero columns pad when ``D < 2``; the identity axes when ``P < 2``)."""
    mean = x.mean(0, keepdims=True)
    if x.shape[0] >= 2:
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        axes = vt[:2].T
    else:
        axes = np.eye(x.shape[1])[:, :2]
    if axes.shape[1] < 2:
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
    return mean, axes


def pca_2d(x: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Project ``x`` ``[P, D]`` (and ``extra`` ``[Q, D]`` with the same map) on its top two
    principal axes; pads with zeros when ``D < 2`` or ``P < 2``."""
    mean, axes = pca_fit(x)
    proj = (x - mean) @ axes
    return proj, None if extra is None else (extra - mean) @ axes


class UmapEmbedder:
    """Per-app UMAP holder: warm-up thread, readiness flag and a lock around fits."""

    def __init__(self, cache_dir: str | None = None):
        self.ready = threading.Event()
        self.failed: str | None = None
        self.lock = threading.Lock()
        self.cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "dts_numba")
        self.fits = 0  # UMAP fits done by :meth:`embed` (extra arrays never refit)

    def warm_up_async(self) -> threading.Thread:
        """Start the warm-up (import + a tiny fit) in a daemon thread."""
        th = threading.Thread(target=self._warm, daemon=True, name="umap-warmup")
        th.start()
        return th

    def _warm(self) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        os.environ.setdefault("NUMBA_CACHE_DIR", self.cache_dir)
        try:
            with self.lock:
                import umap

                rng = np.random.default_rng(0)
                umap.UMAP(n_neighbors=5, n_epochs=20, random_state=0, n_jobs=1).fit(rng.normal(size=(40, 4)))
            self.ready.set()
        except (ImportError, ValueError, RuntimeError, TypeError) as e:
            self.failed = f"UMAP unavailable: {e}"

    def embed(
        self, x: np.ndarray, extra: np.ndarray | Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray | list | None] | None:
        """UMAP of ``x`` (and ``extra`` through ``transform`` of the same fit), or None when
        not ready or busy (the caller shows PCA then; a slider never waits).

        ``extra`` is one array ``[Q, D]`` (returned as one ``[Q, 2]`` array, or None when
        empty) or a list of arrays (returned as a list, None for each empty one); a list is
        stacked and transformed in one call, so the model is fitted once whatever it holds.
        """
        if not self.ready.is_set() or x.shape[0] < 6:
            return None
        if not self.lock.acquire(blocking=False):
            return None
        try:
            import umap

            model = umap.UMAP(n_neighbors=min(15, x.shape[0] - 1), random_state=0, n_jobs=1).fit(x)
            self.fits += 1
            if extra is None or isinstance(extra, np.ndarray):
                return model.embedding_, None if extra is None or len(extra) == 0 else model.transform(extra)
            parts = [np.asarray(a, dtype=float).reshape(-1, x.shape[1]) for a in extra]
            sizes = [len(a) for a in parts]
            if sum(sizes) == 0:
                return model.embedding_, [None] * len(parts)
            flat = model.transform(np.concatenate(parts))
            cuts = np.cumsum([0, *sizes])
            return model.embedding_, [flat[a:b] if b > a else None for a, b in zip(cuts[:-1], cuts[1:])]
        finally:
            self.lock.release()


def within_q(x: np.ndarray, geometry: list[dict]) -> np.ndarray:
    """``[P]`` bool: points of ``x`` ``[P, D]`` within ``radius + q_star`` of any obstacle
    (measured in the original space)."""
    inside = np.zeros(len(x), dtype=bool)
    for g in geometry:
        c = np.asarray(g["centre"], dtype=float)
        if c.shape[0] == x.shape[1]:
            inside |= np.linalg.norm(x - c[None], axis=1) <= g["radius"] + g["q_star"]
    return inside


def q_boundary_points(
    centre: np.ndarray, distance: float, axes: np.ndarray | None = None, n: int = REGION_POINTS, seed: int = 0
) -> np.ndarray:
    """``[n, D]`` points at exactly ``distance`` from ``centre`` ``[D]`` in the original space.

    ``REGION_CIRCLE`` of them lie on the circle in the plane of ``axes`` ``[D, 2]`` (the data's
    first two principal axes; skipped when a column is zero), the rest in unit directions
    drawn by ``numpy.random.default_rng(seed)``.
    """
    centre = np.asarray(centre, dtype=float)
    d = centre.shape[0]
    dirs = []
    if axes is not None and axes.shape == (d, 2) and np.all(np.linalg.norm(axes, axis=0) > 1e-12):
        u = axes / np.linalg.norm(axes, axis=0, keepdims=True)
        ang = np.linspace(0.0, 2 * np.pi, REGION_CIRCLE, endpoint=False)
        circ = np.cos(ang)[:, None] * u[:, 0] + np.sin(ang)[:, None] * u[:, 1]
        dirs.append(circ / np.linalg.norm(circ, axis=1, keepdims=True))
    rest = n - sum(len(a) for a in dirs)
    if rest > 0:
        g = np.random.default_rng(seed).normal(size=(rest, d))
        norm = np.linalg.norm(g, axis=1, keepdims=True)
        g = np.where(norm > 1e-12, g / np.maximum(norm, 1e-12), np.eye(d)[0])
        dirs.append(g)
    return centre[None] + float(distance) * np.concatenate(dirs)[:n]


def region_polygon(points: np.ndarray) -> np.ndarray:
    """Closed polygon ``[K+1, 2]`` around 2-D ``points``: their convex hull, or, for a
    degenerate set (collinear, coincident, fewer than three points), the points ordered by
    angle around their mean."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    try:
        ring = pts[ConvexHull(pts).vertices]
    except (QhullError, ValueError, IndexError):
        c = pts.mean(0) if len(pts) else np.zeros(2)
        ring = pts[np.argsort(np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0]), kind="stable")]
    return np.concatenate([ring, ring[:1]]) if len(ring) else ring


def _region_traces(regions: list[np.ndarray | None], geometry: list[dict], dim: int) -> list[go.Scatter]:
    out: list[go.Scatter] = []
    for pts, g in zip(regions, geometry):
        if pts is None:
            continue
        poly = region_polygon(pts)
        q = g["radius"] + g["q_star"]
        text = (
            f"Q* region of {g.get('label') or 'obstacle'}: points at distance Q* = {q:.3g} from it in the "
            f"original {dim}-dim space, projected; 'within Q*' is measured in the original space, "
            "not in this projection"
        )
        out.append(
            go.Scatter(
                x=poly[:, 0],
                y=poly[:, 1],
                mode="lines",
                fill="toself",
                fillcolor=REGION_FILL,
                line=dict(color=REGION_LINE, width=1),
                name="Q* region",
                legendgroup="q-region",
                showlegend=not out,
                text=text,
                hoveron="fills+points",
                hoverinfo="text",
            )
        )
    return out


def embedding_figure(
    tree: dict,
    geometry: list[dict] | None = None,
    method: str = "pca",
    embedder: UmapEmbedder | None = None,
    uirevision: str = "embed",
    *,
    regions: bool = True,
    max_regions: int = MAX_REGION_OBSTACLES,
    algorithm: str | None = None,
    best_node: int | None = None,
) -> tuple[go.Figure, str]:
    """2-D embedding of the nodes' x̂0 with paths, obstacles, Q* regions and within-Q* points.

    Args:
        tree: ``Trace.to_dict()`` with ``x0`` per node.
        geometry: :func:`~dts_app.viz.plane.obstacle_geometry` output.
        method: ``"pca"`` or ``"umap"`` (falls back to PCA while UMAP is not ready).
        embedder: the app's :class:`UmapEmbedder` (needed for UMAP).
        uirevision: plotly ``uirevision``.
        regions: draw the Q* region of the first ``max_regions`` centres (of the data's
            dimension) as translucent polygons, projected through the nodes' map; the other
            centres keep only their ×.
        max_regions: cap on the regions drawn.
        algorithm: the algorithm that made the trace: the paths in its colour (inferred
            from the trace when None).
        best_node: the chosen candidate's node id: its root path is drawn (``best path``)
            and the node starred (``best``).

    Returns:
        ``(figure, method actually used)``. Traces: ``paths``, ``nodes`` (coloured by t on
        :data:`~dts_app.viz.style.T_SCALE`), ``finals``, ``Q* region`` (one per drawn
        centre, one legend entry), ``within Q* (original space)``, ``obstacles``, ``best
        path`` and ``best`` where present. Both axes have one scale (a PCA keeps distances,
        so a round region stays round).
    """
    nodes = [n for n in tree["nodes"] if n.get("x0") is not None]
    fig = go.Figure()
    used = "pca"
    if not nodes:
        fig.add_annotation(text="no clean predictions stored", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
        fig.update_layout(height=420, uirevision=uirevision)
        return fig, used
    geometry = geometry or []
    x = np.asarray([n["x0"] for n in nodes], dtype=float)
    geo = [g for g in geometry if len(g["centre"]) == x.shape[1]]
    extra = np.asarray([g["centre"] for g in geo], dtype=float) if geo else None
    mean, axes = pca_fit(x)
    drawn = geo[: max(0, max_regions)] if regions else []
    bounds = [q_boundary_points(np.asarray(g["centre"], float), g["radius"] + g["q_star"], axes) for g in drawn]
    out = None
    if method == "umap" and embedder is not None:
        out = embedder.embed(x, [extra if extra is not None else np.zeros((0, x.shape[1])), *bounds])
    if out is not None:
        y, (ey, *proj) = out
        used = "umap"
    else:
        y = (x - mean) @ axes
        ey = None if extra is None else (extra - mean) @ axes
        proj = [(b - mean) @ axes for b in bounds]
    for tr in _region_traces(proj, drawn, x.shape[1]):
        fig.add_trace(tr)
    from .layouts import infer_algorithm

    ink = algorithm_colour(algorithm if algorithm is not None else infer_algorithm(tree["nodes"], tree.get("events")))
    row = {n["id"]: i for i, n in enumerate(nodes)}
    px: list = []
    py: list = []
    for p in leaf_paths(tree["nodes"]):
        idx = [row[i] for i in p if i in row]
        px += list(y[idx, 0]) + [None]
        py += list(y[idx, 1]) + [None]
    fig.add_trace(
        go.Scattergl(x=px, y=py, mode="lines", name="paths", line=dict(color=rgba(ink, 0.5), width=1), hoverinfo="skip")
    )
    fig.add_trace(
        go.Scattergl(
            x=y[:, 0],
            y=y[:, 1],
            mode="markers",
            name="nodes",
            marker=dict(
                color=[n["t"] for n in nodes],
                colorscale=T_SCALE,
                cmin=0.0,
                cmax=1.0,
                size=5,
                colorbar=dict(title="t", len=0.6, tickvals=[0, 0.5, 1], ticktext=["0 data", "0.5", "1 noise"]),
            ),
            text=[
                f"id {n['id']} · step {n.get('step', '–')} · t {num(n['t'], 3)}<br>search score {num(n.get('score'))}"
                for n in nodes
            ],
            customdata=[n["id"] for n in nodes],
            hovertemplate="%{text}<extra></extra>",
        )
    )
    fin = [i for i, n in enumerate(nodes) if n["status"] in ("final", "best")]
    if fin:
        fig.add_trace(
            go.Scattergl(
                x=y[fin, 0],
                y=y[fin, 1],
                mode="markers",
                name="finals",
                marker=dict(color=STATUS_COLOURS["final"], size=8, symbol="circle-open", line=dict(width=2)),
                customdata=[nodes[i]["id"] for i in fin],
                text=[f"id {nodes[i]['id']}<br>search score {num(nodes[i].get('score'))}" for i in fin],
                hovertemplate="%{text}<extra>final</extra>",
            )
        )
    inside = within_q(x, geometry)
    if inside.any():
        fig.add_trace(
            go.Scattergl(
                x=y[inside, 0],
                y=y[inside, 1],
                mode="markers",
                name="within Q* (original space)",
                marker=dict(color=rgba(OBSTACLE, 0.8), size=9, symbol="circle-open", line=dict(width=2)),
                hoverinfo="skip",
            )
        )
    if ey is not None:
        fig.add_trace(
            go.Scatter(
                x=ey[:, 0],
                y=ey[:, 1],
                mode="markers",
                name="obstacles",
                marker=dict(symbol="x", size=12, color=OBSTACLE),
                text=[g.get("label") or "obstacle" for g in geo],
                hovertemplate="%{text}<extra>obstacle</extra>",
            )
        )
    path = [row[i] for i in best_path(tree["nodes"], best_node) if i in row] if best_node is not None else []
    if path:
        fig.add_trace(
            go.Scatter(
                x=y[path, 0],
                y=y[path, 1],
                mode="lines",
                name="best path",
                line=dict(color=BEST_LINE, width=2.5),
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scattergl(
                x=y[path[-1:], 0],
                y=y[path[-1:], 1],
                mode="markers",
                name="best",
                marker=dict(symbol="star", size=15, color=STATUS_COLOURS["best"], line=dict(width=1.2, color=BEST_LINE)),
                customdata=[best_node],
                hovertemplate=f"id {best_node}<extra>best</extra>",
            )
        )
    fig.update_layout(
        title=f"Clean predictions x̂0 of every node ({used.upper()})",
        uirevision=uirevision,
        height=420,
        margin=dict(l=40, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.2, yanchor="top", font=dict(size=10)),
        plot_bgcolor="white",
    )
    axis = "PC" if used == "pca" else "UMAP"
    fig.update_xaxes(title_text=f"{axis} 1", gridcolor="#eceff2", zeroline=False)
    # one scale on both axes: a PCA keeps distances, so a round Q* region is drawn round
    fig.update_yaxes(title_text=f"{axis} 2", gridcolor="#eceff2", zeroline=False, scaleanchor="x", scaleratio=1)
    tidy_axes(fig)
    return fig, used
