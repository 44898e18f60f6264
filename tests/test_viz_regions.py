"""Q* regions in the embedding: boundary points in the original space, projected through the
nodes' own map (PCA or the fitted UMAP), drawn as translucent polygons."""

from __future__ import annotations

import numpy as np
import pytest

from dts_app.backends.gmm import GMMBackend
from dts_app.config import ObstacleSpec, SearchConfig
from dts_app.search import run_search
from dts_app.search.problem import build_problem
from dts_app.search.registry import make_algorithm
from dts_app.viz.embedding import (
    MAX_REGION_OBSTACLES,
    REGION_POINTS,
    UmapEmbedder,
    embedding_figure,
    pca_fit,
    q_boundary_points,
    region_polygon,
)
from dts_app.viz.plane import obstacle_geometry


def _tree(x: np.ndarray) -> dict:
    return {
        "nodes": [
            {"id": i, "parent": None if i == 0 else i - 1, "t": 1 - i / len(x), "x0": v.tolist(), "status": "kept"}
            for i, v in enumerate(x)
        ]
    }


def _regions(fig):
    return [tr for tr in fig.data if tr.name == "Q* region"]


def _nodes(fig) -> np.ndarray:
    tr = next(t for t in fig.data if t.name == "nodes")
    return np.column_stack([tr.x, tr.y])


def _inside_convex(poly: np.ndarray, p: np.ndarray) -> bool:
    ring = poly[:-1]
    edges = np.roll(ring, -1, axis=0) - ring
    cross = edges[:, 0] * (p[1] - ring[:, 1]) - edges[:, 1] * (p[0] - ring[:, 0])
    return bool(np.all(cross >= -1e-9) or np.all(cross <= 1e-9))


def test_2d_pca_region_is_the_exact_circle():
    x = np.random.default_rng(0).normal(size=(30, 2)) * [2.0, 0.5]
    geo = [{"label": "ball", "centre": [1.0, 2.0], "radius": 0.3, "q_star": 0.5}]
    fig, used = embedding_figure(_tree(x), geo)
    assert used == "pca"
    (reg,) = _regions(fig)
    assert reg.fill == "toself" and "rgba" in reg.fillcolor and reg.legendgroup == "q-region"
    assert "Q* region of ball" in reg.text and "original 2-dim space" in reg.text and "0.8" in reg.text
    cross = next(tr for tr in fig.data if tr.name == "obstacles")
    c = np.array([cross.x[0], cross.y[0]])
    poly = np.column_stack([reg.x, reg.y])
    assert np.allclose(poly[0], poly[-1])  # closed
    # PCA in 2-D is a rotation (plus a shift): distances are kept, so every vertex lies on
    # the circle of radius radius + Q* around the projected centre ...
    assert np.allclose(np.linalg.norm(poly - c, axis=1), 0.8)
    # ... and the hull of ~96 boundary points covers the circle (its area is close to π·0.8²)
    ring = poly[:-1] - c
    area = 0.5 * abs(np.dot(ring[:, 0], np.roll(ring[:, 1], -1)) - np.dot(ring[:, 1], np.roll(ring[:, 0], -1)))
    assert area == pytest.approx(np.pi * 0.8**2, rel=0.02)
    # the × and the red within-Q* circles are still drawn
    assert "obstacles" in [tr.name for tr in fig.data]


def test_8d_pca_region_contains_its_centre_and_boundary_is_exact():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 8))
    centre = rng.normal(size=8)
    geo = [{"label": "p", "centre": centre.tolist(), "radius": 0.5, "q_star": 1.0}]
    mean, axes = pca_fit(x)
    pts = q_boundary_points(centre, 1.5, axes)
    assert pts.shape == (REGION_POINTS, 8)
    assert np.allclose(np.linalg.norm(pts - centre, axis=1), 1.5)  # exact, in the original space
    assert np.allclose(pts, q_boundary_points(centre, 1.5, axes))  # seeded
    fig, _ = embedding_figure(_tree(x), geo)
    (reg,) = _regions(fig)
    poly = np.column_stack([reg.x, reg.y])
    assert np.allclose(poly, region_polygon((pts - mean) @ axes))  # same map as the nodes
    c = ((centre - mean[0]) @ axes).ravel()
    assert _inside_convex(poly, c)
    # the circle in the plane of the principal axes projects to a full-size circle
    assert np.linalg.norm(poly[:-1] - c, axis=1).max() == pytest.approx(1.5, abs=1e-9)
    assert "original 8-dim space" in reg.text


def test_many_obstacles_are_capped_and_degenerate_sets_do_not_fail():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(25, 3))
    geo = [{"label": f"o{i}", "centre": rng.normal(size=3).tolist(), "radius": 0.0, "q_star": 0.2} for i in range(40)]
    geo.append({"label": "other dim", "centre": [0.0, 0.0], "radius": 0.0, "q_star": 1.0})  # skipped
    fig, _ = embedding_figure(_tree(x), geo)
    regs = _regions(fig)
    assert len(regs) == MAX_REGION_OBSTACLES and sum(bool(r.showlegend) for r in regs) == 1
    assert len(next(tr for tr in fig.data if tr.name == "obstacles").x) == 40  # every × kept
    fig, _ = embedding_figure(_tree(x), geo, max_regions=3)
    assert len(_regions(fig)) == 3
    fig, _ = embedding_figure(_tree(x), geo, regions=False)
    assert not _regions(fig)
    line = region_polygon(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    assert line.shape == (4, 2) and np.allclose(line[0], line[-1])
    assert region_polygon(np.zeros((5, 2))).shape == (6, 2)
    # one node in 1-D: padded axes, no circle, the region still comes out
    fig, _ = embedding_figure(_tree(np.array([[0.5]])), [{"label": "p", "centre": [0.0], "radius": 0.0, "q_star": 1.0}])
    assert len(_regions(fig)) == 1


def test_real_gmm_result_with_an_obstacle_draws_its_region():
    cfg = SearchConfig(preset="trap", n=5, steps=6, seed=3, obstacles=(ObstacleSpec.parse("component:1@q=0.9"),))
    res = run_search(build_problem(cfg, GMMBackend("trap")), make_algorithm("best-of-n", cfg))
    geo = obstacle_geometry(res.obstacles)
    assert len(geo) == 1 and geo[0]["q_star"] == 0.9
    fig, _ = embedding_figure(res.tree.to_dict(), geo)
    (reg,) = _regions(fig)
    assert "component 1" in reg.text
    # 2-D data: the region is the exact Q* circle, as on the true plane
    cross = next(tr for tr in fig.data if tr.name == "obstacles")
    poly = np.column_stack([reg.x, reg.y])
    assert np.allclose(np.hypot(poly[:, 0] - cross.x[0], poly[:, 1] - cross.y[0]), 0.9, atol=1e-6)


def test_umap_regions_come_from_transform_without_refit():
    pytest.importorskip("umap")
    e = UmapEmbedder(cache_dir="/tmp/dts_numba_test")
    e._warm()
    if not e.ready.is_set():
        pytest.skip(e.failed or "UMAP did not warm up")
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=(20, 4)), rng.normal(size=(20, 4)) + 4.0])
    geo = [{"label": "a", "centre": [4.0] * 4, "radius": 0.0, "q_star": 0.5}]
    plain, used0 = embedding_figure(_tree(x), None, method="umap", embedder=e)
    assert used0 == "umap" and e.fits == 1
    fig, used = embedding_figure(_tree(x), geo, method="umap", embedder=e)
    assert used == "umap" and e.fits == 2  # one fit per figure: the regions are transformed
    assert np.allclose(_nodes(plain), _nodes(fig))  # the obstacles did not change the node map
    (reg,) = _regions(fig)
    assert len(reg.x) >= 4 and np.all(np.isfinite(reg.x)) and np.all(np.isfinite(reg.y))
    # the extra arrays come back in order, one transform for all of them
    y, extras = e.embed(x, [np.zeros((0, 4)), x[:3], x[:5]])
    assert e.fits == 3 and extras[0] is None and [a.shape for a in extras[1:]] == [(3, 2), (5, 2)]
    assert y.shape == (40, 2)
