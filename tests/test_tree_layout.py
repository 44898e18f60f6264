"""Layered tree view: tidy layout invariants (random forests, a 50,000-deep chain, real gmm
traces), the figure on real results of every algorithm (each in its own layout, see
tests/test_tree_mechanism.py), colours on the one score map, and aggregation at 50,000
nodes."""

from __future__ import annotations

import numpy as np
import pytest

from dts_app.backends.gmm import GMMBackend
from dts_app.config import SearchConfig
from dts_app.search import run_search
from dts_app.search.problem import build_problem
from dts_app.search.registry import make_algorithm
from dts_app.viz import style
from dts_app.viz.layouts import tree_layout
from dts_app.viz.tree import best_path
from dts_app.viz.tree_layout import STATUS_SYMBOLS, layered_positions, layered_tree_figure

ALGS = ("best-of-n", "zero-order", "paths", "tree", "smc")

PARTITION = ("pruned", "reverted", "resampled")  # with "nodes…" / "cells…": every node drawn once


# ---------------------------------------------------------------- helpers


def random_forest(n: int, seed: int) -> list[dict]:
    """Parents drawn among earlier ids (so siblings interleave with other subtrees),
    steps increasing by 1–3 along edges, about 2% roots."""
    rng = np.random.default_rng(seed)
    nodes: list[dict] = []
    for i in range(n):
        p = None if i == 0 or rng.random() < 0.02 else int(rng.integers(0, i))
        step = int(rng.integers(0, 3)) if p is None else nodes[p]["step"] + 1 + int(rng.integers(0, 3))
        nodes.append({"id": i, "parent": p, "step": step, "t": 1.0, "score": float(rng.normal()), "status": "kept"})
    return nodes


def synthetic_tree(n: int, steps: int = 64, roots: int = 8, seed: int = 0) -> tuple[dict, int]:
    """A search-like forest of exactly n nodes: level sizes grow with the step, each node's
    parent is drawn from the previous level; childless non-final nodes are pruned."""
    rng = np.random.default_rng(seed)
    w = np.linspace(1.0, 3.0, steps + 1)
    sizes = np.maximum(roots, np.round(w / w.sum() * n)).astype(int)
    sizes[0] = roots
    sizes[-1] += n - sizes.sum()
    nodes: list[dict] = []
    prev: list[int] = []
    for s, m in enumerate(sizes):
        cur = list(range(len(nodes), len(nodes) + m))
        par = [None] * m if s == 0 else np.sort(rng.choice(prev, size=m)).tolist()
        for i, p, v in zip(cur, par, rng.normal(size=m).tolist()):
            nodes.append(
                {
                    "id": i,
                    "parent": p,
                    "step": s,
                    "t": 1 - s / steps,
                    "score": v,
                    "heldout_score": None,
                    "value": None,
                    "visits": None,
                    "status": "final" if s == steps else "kept",
                }
            )
        prev = cur
    parents = {nd["parent"] for nd in nodes}
    for nd in nodes:
        if nd["id"] not in parents and nd["step"] < steps:
            nd["status"] = "pruned"
    best = max((nd for nd in nodes if nd["step"] == steps), key=lambda d: d["score"])["id"]
    nodes[best]["status"] = "best"
    return {"nodes": nodes, "events": []}, best


def check_layout(nodes: list[dict], x: np.ndarray, depth: np.ndarray) -> None:
    n = len(nodes)
    assert x.shape == depth.shape == (n,)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(depth))
    par = [nd["parent"] for nd in nodes]
    kids: list[list[int]] = [[] for _ in range(n)]
    for i, p in enumerate(par):
        if p is not None:
            kids[p].append(i)
            assert depth[i] > depth[p]
    for i in range(n):
        if kids[i]:
            cx = x[kids[i]]
            assert cx.min() <= x[i] <= cx.max()
            assert x[i] == pytest.approx((x[kids[i][0]] + x[kids[i][-1]]) / 2)
    # leaves: consecutive integer slots in depth-first order (children by id, roots by id)
    leaves_dfs: list[int] = []
    stack = [i for i in range(n) if par[i] is None][::-1]
    while stack:
        i = stack.pop()
        if kids[i]:
            stack.extend(kids[i][::-1])
        else:
            leaves_dfs.append(i)
    assert len(leaves_dfs) == sum(not k for k in kids)
    assert x[leaves_dfs].tolist() == list(range(len(leaves_dfs)))
    # sibling subtrees (and root trees) occupy disjoint, ordered x-intervals
    lo, hi = x.copy(), x.copy()
    for i in range(n - 1, -1, -1):
        p = par[i]
        if p is not None:
            lo[p], hi[p] = min(lo[p], lo[i]), max(hi[p], hi[i])
    for group in [k for k in kids if len(k) > 1] + [[i for i in range(n) if par[i] is None]]:
        assert np.all(hi[group[:-1]] < lo[group[1:]])


def markers(fig) -> list:
    return [tr for tr in fig.data if "markers" in (tr.mode or "")]


def partition(fig) -> list:
    return [tr for tr in markers(fig) if tr.name.startswith(("nodes", "cells")) or tr.name.split(" (")[0] in PARTITION]


def segments(tr) -> set[tuple]:
    xs, ys = list(tr.x), list(tr.y)
    assert all(v is None for v in xs[2::3]) and all(v is None for v in ys[2::3])
    return {(round(xs[k], 3), round(ys[k], 3), round(xs[k + 1], 3), round(ys[k + 1], 3)) for k in range(0, len(xs), 3)}


def by_name(fig, name):
    return next(tr for tr in fig.data if tr.name == name)


def check_figure_common(tree: dict, best: int | None, fig, alg: str | None = None) -> None:
    nodes = tree["nodes"]
    n = len(nodes)
    lay = tree_layout(nodes, alg)
    x, depth = lay.x, lay.y
    for tr in markers(fig):  # every drawn marker is a node (clicks land on a node id)
        ids = np.asarray(tr.customdata)
        assert len(ids) == len(tr.x) and np.all((ids >= 0) & (ids < n))
        if tr.name.startswith("nodes") or tr.name in PARTITION + ("final", "best"):
            assert np.allclose(np.asarray(tr.x), x[ids]) and np.allclose(np.asarray(tr.y), depth[ids])
            assert all(t.startswith(f"id {i} ·") for t, i in zip(tr.text, ids))
    drawn = np.concatenate([np.asarray(tr.customdata) for tr in partition(fig)])
    assert sorted(drawn.tolist()) == list(range(n))  # each node once
    edges = segments(by_name(fig, "edges"))
    want = {
        (round(x[nd["parent"]], 3), round(depth[nd["parent"]], 3), round(x[nd["id"]], 3), round(depth[nd["id"]], 3))
        for nd in nodes
        if nd["parent"] is not None
    }
    assert edges == want
    path = best_path(nodes, best)
    bp = by_name(fig, "best path")
    assert list(bp.customdata) == path and np.allclose(np.asarray(bp.x), x[path])
    assert by_name(fig, "best").marker.symbol == "star" and list(by_name(fig, "best").customdata) == [best]
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.uirevision == "tree" and fig.layout.height == 420
    assert fig.layout.title.text.startswith(f"Candidate tree (layered · {n:,} nodes)")
    assert lay.subtitle and lay.subtitle in fig.layout.title.text


def tree_depth(nodes: list[dict]) -> np.ndarray:
    """Edges from the root of every node."""
    d = np.zeros(len(nodes))
    for nd in nodes:
        if nd["parent"] is not None:
            d[nd["id"]] = d[nd["parent"]] + 1
    return d


def check_score_colours(tr, quantity: np.ndarray) -> None:
    """Marker colours on the one score map: monotone in the quantity, bar labelled with it."""
    u = np.asarray(tr.marker.color, dtype=float)
    assert tr.marker.cmin == 0.0 and tr.marker.cmax == 1.0 and np.all((u >= 0) & (u <= 1))
    order = np.argsort(quantity, kind="stable")
    assert np.all(np.diff(u[order]) >= -1e-6)
    assert tr.marker.colorbar.ticktext[-1] == style.num(float(np.max(quantity)), 3)


# ---------------------------------------------------------------- layout


def test_layout_small_example_by_hand():
    par = [None, 0, 0, 1, 1, None, 5]
    nodes = [{"id": i, "parent": p, "step": 0 if p is None else 1 + (i > 2)} for i, p in enumerate(par)]
    x, depth = layered_positions(nodes)
    assert x.tolist() == [1.25, 0.5, 2.0, 0.0, 1.0, 3.0, 3.0]
    assert depth.tolist() == [0, 1, 1, 2, 2, 0, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layout_properties_random_forest(seed):
    nodes = random_forest(2000, seed)
    check_layout(nodes, *layered_positions(nodes))


def test_layout_deep_chain_is_iterative():
    n = 50_000
    nodes = [{"id": i, "parent": i - 1 if i else None, "step": i} for i in range(n)]
    x, depth = layered_positions(nodes)
    assert np.all(x == 0.0) and depth.tolist() == list(range(n))


def test_layout_rejects_parent_after_child():
    with pytest.raises(ValueError, match="parent id"):
        layered_positions([{"id": 0, "parent": 1, "step": 1}, {"id": 1, "parent": None, "step": 0}])


# ---------------------------------------------------------------- real traces


@pytest.fixture(scope="module")
def results():
    out = {}
    for alg in ALGS:
        cfg = SearchConfig(preset="trap", n=6, m=3, steps=10, iterations=3, seed=3, algorithm=alg, heldout="supervised")
        res = run_search(build_problem(cfg, GMMBackend("trap")), make_algorithm(alg, cfg)).to_dict()
        out[alg] = (res["tree"], res["best_node"])
    return out


@pytest.mark.parametrize("alg", ALGS)
def test_real_trace_layout_and_figure(results, alg):
    tree, best = results[alg]
    nodes = tree["nodes"]
    x, steps = layered_positions(nodes)
    check_layout(nodes, x, tree_depth(nodes) if alg == "paths" else steps)  # paths re-noise: steps go back up
    fig = layered_tree_figure(tree, best, algorithm=alg)
    check_figure_common(tree, best, fig, alg)
    # the same figure when the algorithm is left to inference from the trace
    shape = lambda f: [(tr.name, 0 if tr.x is None else len(tr.x)) for tr in f.data]
    assert shape(layered_tree_figure(tree, best)) == shape(fig)
    fig.to_json()


def test_best_of_n_colours_by_score_in_one_size(results):
    tree, best = results["best-of-n"]
    fig = layered_tree_figure(tree, best, algorithm="best-of-n")
    assert np.allclose(layered_positions(tree["nodes"])[0], tree_layout(tree["nodes"], "best-of-n").x)  # tidy
    tr = by_name(fig, "nodes")
    assert tr.marker.colorbar.title.text == "search score"
    scores = np.array([tree["nodes"][i]["score"] for i in tr.customdata], dtype=float)
    check_score_colours(tr, scores)
    assert len(set(np.asarray(tr.marker.size).tolist())) == 1  # independent chains: one size
    finals = by_name(fig, "final")
    assert finals.marker.symbol == "circle-open" and len(finals.x) == sum(nd["status"] == "final" for nd in tree["nodes"])
    # colour="value" on a trace without values: everything grey, nothing coloured
    fig_v = layered_tree_figure(tree, best, colour="value")
    assert "nodes" not in {t.name for t in fig_v.data} and len(by_name(fig_v, "nodes (no value)").x) == len(tree["nodes"])


def test_an_unknown_forest_is_sized_by_its_leaves():
    nodes = [{"id": i, "parent": p, "step": s, "t": 1 - s / 2, "score": float(i), "status": "kept"}
             for i, (p, s) in enumerate([(None, 0), (0, 1), (0, 1), (1, 2), (1, 2), (2, 2)])]  # fmt: skip
    fig = layered_tree_figure({"nodes": nodes, "events": []}, algorithm="unknown")
    tr = by_name(fig, "nodes")
    size = dict(zip(np.asarray(tr.customdata).tolist(), np.asarray(tr.marker.size).tolist()))
    assert size[0] > size[1] > size[2] == size[3] == size[4] == size[5]  # 3 leaves > 2 > 1
    assert rgb_of(by_name(fig, "edges").line.color) == rgb_of(style.NEUTRAL)


def rgb_of(c: str) -> tuple:
    from plotly.colors import hex_to_rgb

    return tuple(hex_to_rgb(c)) if c.startswith("#") else tuple(int(v) for v in c[5:-1].split(",")[:3])


def test_tree_search_colours_by_value_and_sizes_by_visits(results):
    tree, best = results["tree"]
    nodes = tree["nodes"]
    fig = layered_tree_figure(tree, best, algorithm="tree")
    tr = by_name(fig, "nodes")
    assert tr.marker.colorbar.title.text == "value"
    ids = np.asarray(tr.customdata)
    check_score_colours(tr, np.array([nodes[i]["value"] for i in ids], dtype=float))
    visits = np.array([nodes[i]["visits"] for i in ids], dtype=float)
    size = np.asarray(tr.marker.size)
    assert len(set(size.tolist())) > 1 and 5 <= size.min() and size.max() <= 18
    assert np.all(np.diff(size[np.argsort(visits, kind="stable")]) >= 0)  # more visits, bigger marker
    grey = by_name(fig, "nodes (no value)")  # nodes without a value (the rollouts) are grey
    assert all(nodes[i]["value"] is None for i in grey.customdata) and grey.marker.color == "#b0b7bf"
    assert "visits" in grey.text[0] and "value –" in grey.text[0]
    # colour="score" forces the search score
    assert by_name(layered_tree_figure(tree, best, colour="score"), "nodes").marker.colorbar.title.text == "search score"


def test_smc_lineage_and_resampled_markers(results):
    tree, best = results["smc"]
    nodes = tree["nodes"]
    fig = layered_tree_figure(tree, best, algorithm="smc")
    resampled = [nd["id"] for nd in nodes if nd["status"] == "resampled"]
    assert resampled  # the run resampled
    tr = by_name(fig, "resampled")
    assert tr.marker.symbol == STATUS_SYMBOLS["resampled"] and sorted(tr.customdata) == resampled
    # every surviving lineage is connected to a root, edge by edge, in the drawn edges
    lay = tree_layout(nodes, "smc")
    edges = segments(by_name(fig, "edges"))
    for leaf in [nd["id"] for nd in nodes if nd["status"] in ("final", "best")]:
        path = best_path(nodes, leaf)
        assert nodes[path[0]]["parent"] is None and len(path) == nodes[leaf]["step"] + 1
        for p, c in zip(path, path[1:]):
            assert (round(lay.x[p], 3), round(lay.y[p], 3), round(lay.x[c], 3), round(lay.y[c], 3)) in edges
    # lineage merges: fewer roots' worth of leaves than particles resampled away
    assert len({best_path(nodes, nd["id"])[0] for nd in nodes if nd["step"] == 10}) < 6


def test_depth_t_axis(results):
    tree, best = results["best-of-n"]
    fig = layered_tree_figure(tree, best, depth="t")
    assert fig.layout.yaxis.autorange is True and fig.layout.yaxis.title.text == "t"
    tr = by_name(fig, "nodes")
    ts = np.array([tree["nodes"][i]["t"] for i in tr.customdata])
    assert np.allclose(np.asarray(tr.y), ts, atol=1e-6)
    for alg in ALGS:  # every layout draws on t too
        t_fig = layered_tree_figure(*results[alg], depth="t", algorithm=alg)
        tr = by_name(t_fig, "nodes")
        assert np.allclose(np.asarray(tr.y), [results[alg][0]["nodes"][i]["t"] for i in tr.customdata], atol=1e-6)


def parse_count(text: str) -> int:
    return int(text.split(" nodes")[0].replace(",", ""))


def test_small_max_markers_aggregates_a_real_trace(results):
    tree, best = results["tree"]
    n = len(tree["nodes"])
    fig = layered_tree_figure(tree, best, max_markers=40)
    cells = [tr for tr in markers(fig) if tr.name.startswith("cells")]
    assert 0 < sum(len(tr.x) for tr in cells) <= 40
    assert sum(parse_count(t) for tr in cells for t in tr.text) == n
    cells = by_name(fig, "cells")
    assert cells.marker.colorbar.title.text == "max value" and cells.marker.colorscale is not None


# ---------------------------------------------------------------- aggregation at 50,000 nodes


def test_aggregated_50k():
    n = 50_000
    tree, best = synthetic_tree(n)
    nodes = tree["nodes"]
    fig = layered_tree_figure(tree, best, max_markers=4000)
    cells = [tr for tr in markers(fig) if tr.name.startswith("cells")]
    k = sum(len(tr.x) for tr in cells)
    assert 0 < k <= 4000
    assert fig.layout.title.text == f"Candidate tree (layered · 50,000 nodes in {k:,} cells)"  # no mechanism inferred
    counts = [parse_count(t) for tr in cells for t in tr.text]
    assert sum(counts) == n
    sizes = np.concatenate([np.asarray(tr.marker.size) for tr in cells])
    assert np.all(np.diff(sizes[np.argsort(counts, kind="stable")]) >= -1e-6)  # bigger cells, bigger markers
    # customdata: the cell's best node, inside the cell's step range, colour = its score
    x, depth = layered_positions(nodes)
    tr = by_name(fig, "cells")
    for cid, text in zip(tr.customdata, tr.text):
        a, b = text.split("steps ")[1].split(",")[0].split("–")
        assert float(a) <= nodes[cid]["step"] <= float(b)
        assert f"best score {style.num(nodes[cid]['score'], 3)}" in text
    check_score_colours(tr, np.array([nodes[i]["score"] for i in tr.customdata]))
    for t in markers(fig):
        ids = np.asarray(t.customdata)
        assert np.all((ids >= 0) & (ids < n))
    # full-resolution overlays: best path node by node, capped pruned markers
    path = best_path(nodes, best)
    bp = by_name(fig, "best path")
    assert list(bp.customdata) == path and len(bp.x) == 65
    assert np.allclose(np.asarray(bp.x), x[path]) and np.allclose(np.asarray(bp.y), depth[path])
    pruned = next(t for t in fig.data if t.name.startswith("pruned"))
    assert pruned.marker.symbol == "x" and 0 < len(pruned.x) <= 500
    assert all(nodes[i]["status"] == "pruned" for i in pruned.customdata)
    assert np.allclose(np.asarray(pruned.x), x[np.asarray(pruned.customdata)])
    # edges: unique cell pairs, far fewer than the 49,992 node edges
    assert len(by_name(fig, "edges").x) // 3 < 20_000
    assert len(fig.to_json()) < 1_500_000
