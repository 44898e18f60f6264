"""Paths in latent space: a 2-D embedding (PCA, or UMAP once warmed up) of every node's
clean prediction x̂0, with obstacles and the nodes that lie within Q* in the original space.

UMAP is imported lazily; :class:`UmapEmbedder` warms it up in a background thread and
serialises fits with a lock. Callers fall back to PCA while it is not ready.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import plotly.graph_objects as go

from .trajectories import leaf_paths
from .tree import STATUS_COLOURS

__all__ = ["pca_2d", "UmapEmbedder", "within_q", "embedding_figure"]


def pca_2d(x: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Project ``x`` ``[P, D]`` (and ``extra`` ``[Q, D]`` with the same map) on its top two
    principal axes; pads with zeros when ``D < 2`` or ``P < 2``."""
    mean = x.mean(0, keepdims=True)
    if x.shape[0] >= 2:
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        axes = vt[:2].T
    else:
        axes = np.eye(x.shape[1])[:, :2]
    if axes.shape[1] < 2:
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
    proj = (x - mean) @ axes
    return proj, None if extra is None else (extra - mean) @ axes


class UmapEmbedder:
    """Per-app UMAP holder: warm-up thread, readiness flag and a lock around fits."""

    def __init__(self, cache_dir: str | None = None):
        self.ready = threading.Event()
        self.failed: str | None = None
        self.lock = threading.Lock()
        self.cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "dts_numba")

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

    def embed(self, x: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None] | None:
        """UMAP of ``x`` (and ``extra`` through ``transform``), or None when not ready or
        busy (the caller shows PCA then; a slider never waits)."""
        if not self.ready.is_set() or x.shape[0] < 6:
            return None
        if not self.lock.acquire(blocking=False):
            return None
        try:
            import umap

            model = umap.UMAP(n_neighbors=min(15, x.shape[0] - 1), random_state=0, n_jobs=1).fit(x)
            e = None if extra is None or len(extra) == 0 else model.transform(extra)
            return model.embedding_, e
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


def embedding_figure(
    tree: dict,
    geometry: list[dict] | None = None,
    method: str = "pca",
    embedder: UmapEmbedder | None = None,
    uirevision: str = "embed",
) -> tuple[go.Figure, str]:
    """2-D embedding of the nodes' x̂0 with paths, obstacles and within-Q* points.

    Args:
        tree: ``Trace.to_dict()`` with ``x0`` per node.
        geometry: :func:`~dts_app.viz.plane.obstacle_geometry` output.
        method: ``"pca"`` or ``"umap"`` (falls back to PCA while UMAP is not ready).
        embedder: the app's :class:`UmapEmbedder` (needed for UMAP).
        uirevision: plotly ``uirevision``.

    Returns:
        ``(figure, method actually used)``. Traces: ``paths``, ``nodes``, ``finals``,
        ``within Q* (original space)`` and ``obstacles`` where present.
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
    cents = [g["centre"] for g in geometry if len(g["centre"]) == x.shape[1]]
    extra = np.asarray(cents, dtype=float) if cents else None
    out = embedder.embed(x, extra) if method == "umap" and embedder is not None else None
    if out is not None:
        y, ey = out
        used = "umap"
    else:
        y, ey = pca_2d(x, extra)
    row = {n["id"]: i for i, n in enumerate(nodes)}
    px: list = []
    py: list = []
    for p in leaf_paths(tree["nodes"]):
        idx = [row[i] for i in p if i in row]
        px += list(y[idx, 0]) + [None]
        py += list(y[idx, 1]) + [None]
    fig.add_trace(
        go.Scattergl(x=px, y=py, mode="lines", name="paths", line=dict(color="rgba(60,60,60,0.35)", width=1), hoverinfo="skip")
    )
    fig.add_trace(
        go.Scattergl(
            x=y[:, 0],
            y=y[:, 1],
            mode="markers",
            name="nodes",
            marker=dict(color=[n["t"] for n in nodes], colorscale="Viridis", size=5, colorbar=dict(title="t", len=0.6)),
            text=[f"id {n['id']} t {n['t']:.2f}" for n in nodes],
            hoverinfo="text",
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
                marker=dict(color="rgba(192,57,43,0.8)", size=9, symbol="circle-open", line=dict(width=2)),
            )
        )
    if ey is not None:
        fig.add_trace(
            go.Scatter(
                x=ey[:, 0], y=ey[:, 1], mode="markers", name="obstacles", marker=dict(symbol="x", size=12, color="#c0392b")
            )
        )
    fig.update_layout(
        title=f"Clean predictions x̂0 of every node ({used.upper()})",
        uirevision=uirevision,
        height=420,
        margin=dict(l=40, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.15),
    )
    return fig, used
