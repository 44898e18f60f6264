"""Viz functions on real GMM search results: traces present, counts match the trace."""

from __future__ import annotations

import numpy as np
import pytest

from dts_app.backends.gmm import GMMBackend
from dts_app.config import SearchConfig
from dts_app.search import run_search
from dts_app.search.problem import build_problem
from dts_app.search.registry import make_algorithm
from dts_app.viz.embedding import embedding_figure, pca_2d, within_q
from dts_app.viz.gallery import image_gallery, points_gallery_figure, upscale_nearest
from dts_app.viz.ledger import anytime_figure, ledger_rows
from dts_app.viz.plane import mixture_log_density, obstacle_geometry, plane_figure
from dts_app.viz.trajectories import leaf_paths, trajectories_figure
from dts_app.viz.tree import best_path, tree_figure


@pytest.fixture(scope="module")
def result():
    cfg = SearchConfig(preset="trap", n=5, steps=6, seed=3, heldout="supervised")
    backend = GMMBackend("trap")
    res = run_search(build_problem(cfg, backend), make_algorithm("best-of-n", cfg))
    return res.to_dict(), backend


def test_tree_figure_counts_every_node_once(result):
    res, _ = result
    fig = tree_figure(res["tree"], res["best_node"])
    markers = [tr for tr in fig.data if tr.mode == "markers"]
    assert sum(len(tr.x) for tr in markers) == len(res["tree"]["nodes"]) == 5 * 7
    names = {tr.name for tr in fig.data}
    assert {"edges", "best path", "best", "final"} <= names
    best = next(tr for tr in fig.data if tr.name == "best path")
    assert len(best.x) == 7  # root + 6 steps
    assert fig.layout.uirevision == "tree"


def test_best_path_walks_to_root(result):
    res, _ = result
    nodes = res["tree"]["nodes"]
    p = best_path(nodes, res["best_node"])
    assert nodes[p[0]]["parent"] is None and p[-1] == res["best_node"]
    assert [nodes[i]["step"] for i in p] == list(range(7))


def test_trajectories_have_both_scores_and_q_band():
    tree = {"nodes": [
        {"id": 0, "parent": None, "step": 0, "t": 1.0, "score": 0.1, "heldout_score": 0.2, "D": 2.0, "inside_q": False, "status": "kept"},
        {"id": 1, "parent": 0, "step": 1, "t": 0.5, "score": 0.3, "heldout_score": 0.1, "D": 0.2, "inside_q": True, "status": "kept"},
        {"id": 2, "parent": 1, "step": 2, "t": 0.0, "score": 0.5, "heldout_score": 0.0, "D": 0.1, "inside_q": True, "status": "best"},
    ], "events": []}
    fig = trajectories_figure(tree, 2, q_star=0.5)
    by = {tr.name: tr for tr in fig.data}
    assert list(by["search score"].x) == [1.0, 0.5, 0.0, None]
    assert list(by["held-out score"].y) == [0.2, 0.1, 0.0, None]
    assert list(by["entries into Q*"].x) == [0.5]  # node 2 is still inside: not a new entry
    assert any(s.y1 == 0.5 for s in fig.layout.shapes)
    assert leaf_paths(tree["nodes"]) == [[0, 1, 2]]


def test_plane_and_obstacle_geometry(result):
    res, backend = result
    mix = backend.mixture.to_dict()
    obs = [{"kind": "ball", "label": "ball", "space": "x0", "points": [[1.0, 2.0]], "radius": 0.3, "q_star": 0.5},
           {"kind": "component", "label": "component 1", "space": "x0", "points": [backend.mixture.means[1].tolist()],
            "radius": 0.0, "q_star": 0.2},
           {"kind": "concept", "label": "concept", "space": "clip", "points": [[0.0] * 8], "radius": 0.0, "q_star": 0.5}]
    geo = obstacle_geometry(obs)
    assert [g["centre"] for g in geo] == [[1.0, 2.0], backend.mixture.means[1].tolist()]
    assert [g["radius"] for g in geo] == [0.3, 0.0] and [g["q_star"] for g in geo] == [0.5, 0.2]
    fig = plane_figure(mix, res["tree"], res["best_node"], obs)
    names = [tr.name for tr in fig.data]
    assert names.count("Q* circle") == 2 and "log p₀" in names and "obstacles" in names
    circle = next(tr for tr in fig.data if tr.name == "Q* circle")
    r = np.hypot(np.asarray(circle.x) - 1.0, np.asarray(circle.y) - 2.0)
    assert np.allclose(r, 0.8)
    finals = next(tr for tr in fig.data if tr.name == "finals")
    assert len(finals.x) == 5


def test_mixture_log_density_matches_backend(result):
    _, backend = result
    import torch

    x = torch.tensor([[0.0, 0.0], [1.0, -1.0], [3.0, 2.0]], dtype=torch.float64)
    m = backend.mixture
    ours = mixture_log_density(x.numpy(), m.weights.numpy(), m.means.numpy(), m.variances.numpy())
    assert np.allclose(ours, m.log_prob(x).numpy(), atol=1e-9)


def test_embedding_marks_points_within_q_in_original_space():
    x = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.4, 0.0]])
    geo = [{"centre": [0.0, 0.0, 0.0], "radius": 0.0, "q_star": 0.5, "label": "p"}]
    assert within_q(x, geo).tolist() == [True, False, True]
    nodes = [{"id": i, "parent": None if i == 0 else i - 1, "t": 1 - i / 2, "x0": list(v), "status": "final" if i == 2 else "kept"}
             for i, v in enumerate(x)]
    fig, used = embedding_figure({"nodes": nodes}, geo, method="umap", embedder=None)
    assert used == "pca"
    inside = next(tr for tr in fig.data if tr.name == "within Q* (original space)")
    assert len(inside.x) == 2
    proj, extra = pca_2d(x, np.zeros((1, 3)))
    assert proj.shape == (3, 2) and extra.shape == (1, 2)
    # PCA keeps distances when the data span two dimensions
    assert np.isclose(np.linalg.norm(proj[0] - proj[1]), 3.0)


def test_gallery_ledger_and_budget(result):
    res, _ = result
    fig = points_gallery_figure(res["candidates"], res["best_node"])
    assert len(fig.data[0].x) == 5 and fig.data[1].name == "best"
    img = np.zeros((1, 4, 4))
    img[0, 0, 0] = 1.0
    (arr, cap), = image_gallery([(img, 1.5, None, 7)], best_node=7)
    assert arr.shape == (112, 112) and arr[0, 0] == 255 and arr[28, 28] == 0 and cap.startswith("★")
    assert upscale_nearest(np.ones((2, 2)), 8).shape == (8, 8)
    rows = dict(ledger_rows(res["ledger"]))
    assert rows["denoiser nfe"] == 5 * 6 and rows["budget"] == "no cap"
    fig = anytime_figure([(10, None), (20, 1.0), (30, 2.0)])
    assert list(fig.data[-1].x) == [20, 30]


def test_umap_embedder_never_blocks_before_ready():
    from dts_app.viz.embedding import UmapEmbedder

    e = UmapEmbedder(cache_dir="/tmp/dts_numba_test")
    x = np.random.default_rng(0).normal(size=(20, 3))
    assert e.embed(x) is None  # not warmed up: caller shows PCA
    e.ready.set()
    with e.lock:  # another fit in progress: no waiting
        assert e.embed(x) is None


def test_trajectories_show_the_ess_of_particle_methods():
    from dts_app.config import SearchConfig
    from dts_app.search import build_problem, make_algorithm, run_search

    cfg = SearchConfig(preset="trap", algorithm="smc", n=32, steps=8, sde_gamma=1.0, temperature=5.0, target=2)
    res = run_search(build_problem(cfg), make_algorithm("smc", cfg))
    tree = res.tree.to_dict(with_x0=False)
    fig = trajectories_figure(tree, res.best_node)
    ess = next(tr for tr in fig.data if tr.name == "ESS")
    events = [e for e in tree["events"] if e["kind"] == "smc"]
    assert list(ess.x) == [e["t"] for e in events] and len(events) >= 2
    assert "resampled" in {tr.name for tr in fig.data}  # t = 0 always resamples
    assert any(n["status"] == "resampled" for n in tree["nodes"]) or len(events) == 1


def test_the_plane_labels_each_mode_at_its_mean_with_its_weight():
    from dts_app.backends.mixture import make_preset
    from dts_app.viz.plane import plane_figure

    mix = make_preset("trap")
    fig = plane_figure(mix.to_dict(), None, mode_labels=["0: common", "1: hazard", "2: prize"])
    modes = next(t for t in fig.data if t.name == "modes")
    assert list(modes.x) == mix.means[:, 0].tolist() and list(modes.y) == mix.means[:, 1].tolist()
    assert [t.split(" (")[0] for t in modes.text] == ["0: common", "1: hazard", "2: prize"]
    assert modes.text[2].endswith(f"({float(mix.weights[2]):.0%})")
    unlabelled = plane_figure(mix.to_dict(), None)
    assert all(t.name != "modes" for t in unlabelled.data)
