"""The tree view shows each algorithm's mechanism, checked against what the algorithm itself
recorded (its trace events) on small real gmm searches: zero-order's pivot chain, search
over paths' rounds, tree search's expansions and SMC's genealogy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dts_app.backends.gmm import GMMBackend
from dts_app.config import SearchConfig
from dts_app.search import run_search
from dts_app.search.particles import RESAMPLED
from dts_app.search.problem import build_problem
from dts_app.search.registry import make_algorithm
from dts_app.viz import layouts
from dts_app.viz.layouts import infer_algorithm, tree_layout
from dts_app.viz.tree_layout import layered_tree_figure

CONFIGS = {
    "best-of-n": dict(n=4, steps=6),
    "zero-order": dict(n=4, iterations=3, steps=6),
    "paths": dict(n=3, m=3, steps=10, sigma=0.75, delta_f=2, delta_b=4),
    "tree": dict(n=3, m=2, steps=8),
    "smc": dict(n=6, steps=10),
}


@pytest.fixture(scope="module")
def traces():
    out = {}
    for alg, kw in CONFIGS.items():
        cfg = SearchConfig(preset="trap", algorithm=alg, seed=3, **kw)
        out[alg] = run_search(build_problem(cfg, GMMBackend("trap")), make_algorithm(alg, cfg)).to_dict()["tree"]
    return out


def arcs(lay) -> list[tuple[float, float]]:
    """(start x, end x) of each link segment (points separated by None)."""
    xs, out, cur = lay.links[0], [], []
    for v in [*xs, None]:
        if v is None:
            if cur:
                out.append((cur[0], cur[-1]))
            cur = []
        else:
            cur.append(v)
    return out


def root_of(nodes: list[dict], i: int) -> int:
    while nodes[i]["parent"] is not None:
        i = nodes[i]["parent"]
    return i


@pytest.mark.parametrize("alg", list(CONFIGS))
def test_the_algorithm_is_inferred_from_its_trace(traces, alg):
    nodes = traces[alg]["nodes"]
    assert infer_algorithm(nodes) == alg and infer_algorithm(nodes, traces[alg]["events"]) == alg
    assert tree_layout(nodes).algorithm == alg
    assert layouts._RESAMPLED == RESAMPLED


def test_zero_order_draws_the_pivot_chain(traces):
    tree = traces["zero-order"]
    nodes = tree["nodes"]
    lay = tree_layout(nodes, "zero-order")
    roots = [nd["id"] for nd in nodes if nd["parent"] is None]
    it = {r: nodes[r]["key"][0] for r in roots}
    # one group of columns per iteration, left to right, apart from each other
    spans = {k: (min(lay.x[i] for i in ids), max(lay.x[i] for i in ids))
             for k in set(it.values()) for ids in [[nd["id"] for nd in nodes if it[root_of(nodes, nd["id"])] == k]]}  # fmt: skip
    ks = sorted(spans)
    assert ks == [0, 1, 2, 3] and all(spans[a][1] + 1 < spans[b][0] for a, b in zip(ks, ks[1:]))
    # the pivots are the algorithm's own (its "pivot" events): bold, and each one's noise
    # joined by an arc to every neighbour of the next iteration
    pivots = {e["iteration"]: root_of(nodes, e["node"]) for e in tree["events"] if e["kind"] == "pivot"}
    assert sorted(pivots) == ks
    bold = {root_of(nodes, i) for i in np.flatnonzero(lay.highlight)}
    assert bold == set(pivots.values())
    want = sorted((lay.x[pivots[it[r] - 1]], lay.x[r]) for r in roots if it[r] > 0)
    assert np.allclose(sorted(arcs(lay)), want)
    assert len(want) == 3 * 4
    assert [t for _, _, t in lay.labels] == ["start", "iter 1", "iter 2", "iter 3"]
    fig = layered_tree_figure(tree, algorithm="zero-order")
    link = next(tr for tr in fig.data if tr.name == "pivot → neighbours")
    assert link.line.shape == "spline" and any(tr.name == "pivot paths" for tr in fig.data)
    assert min(fig.layout.yaxis.tickvals) == 0  # the arcs sit above step 0, no negative steps


def test_paths_draws_rounds_of_branches(traces):
    tree = traces["paths"]
    nodes = tree["nodes"]
    rounds = [e for e in tree["events"] if e["kind"] == "round"]
    lay = tree_layout(nodes, "paths")
    assert len(lay.bands) == 1 + len(rounds) and len(rounds) >= 2
    assert lay.y_ticks[1] == ["start", *[str(r) for r in range(1, len(rounds) + 1)]]
    for nd in nodes:  # each node in its round's band (a round adds one key element)
        a, b, _ = lay.bands[len(nd["key"]) - 1]
        assert a < lay.y[nd["id"]] < b
    for r, ev in enumerate(rounds, 1):
        heads = [nd for nd in nodes if len(nd["key"]) == r + 1 and len(nodes[nd["parent"]]["key"]) == r]
        assert len(heads) == ev["branches"]
        # each kept path's branches side by side, blocks in the order of their parents
        blocks: dict[int, list[float]] = {}
        for h in heads:
            blocks.setdefault(h["parent"], []).append(lay.x[h["id"]])
        assert all(len(v) == 3 and np.allclose(np.diff(sorted(v)), 1.0) for v in blocks.values())
        order = sorted(blocks, key=lambda p: lay.x[p])
        assert all(max(blocks[p]) < min(blocks[q]) for p, q in zip(order, order[1:]))  # edges never cross
        ends = [nd for nd in nodes if len(nd["key"]) == r + 1 and nd["status"] == "pruned"]
        assert len(ends) == ev["branches"] - ev["kept"]
    finals = [nd["id"] for nd in nodes if nd["status"] in ("final", "best")]
    bold = set(np.flatnonzero(lay.highlight).tolist())
    for f in finals:  # the finals' lineages are bold, back to their roots
        i = f
        while i is not None:
            assert i in bold
            i = nodes[i]["parent"]


def test_tree_search_numbers_its_expansions(traces):
    tree = traces["tree"]
    nodes = tree["nodes"]
    lay = tree_layout(nodes, "tree")
    expanded = [nd["id"] for nd in nodes if nd["visits"] is not None]
    rollouts = [e for e in tree["events"] if e["kind"] == "rollout"]
    assert len(expanded) == len(rollouts) == 3 * 2  # one expansion per iteration
    assert [t for _, _, t in lay.labels] == [str(k) for k in range(1, len(expanded) + 1)]
    assert [(x, y) for x, y, _ in lay.labels] == [(lay.x[i], lay.y[i]) for i in expanded]
    assert [rollouts[k]["depth"] for k in range(len(rollouts))] == [nodes[i]["step"] for i in expanded]
    assert np.allclose(lay.y, [math.log2(1 + nd["step"]) for nd in nodes])
    assert lay.y_ticks[1][:3] == ["0", "1", "2"] and lay.y_ticks[1][-1] == "8"
    roots = [nd["id"] for nd in nodes if nd["parent"] is None]
    assert sorted(e for _, e in arcs(lay)) == sorted(lay.x[r] for r in roots)  # the virtual root joins the noises
    assert len({s for s, _ in arcs(lay)}) == 1
    for i in np.flatnonzero(lay.highlight):  # bold edges join expanded nodes only
        assert nodes[i]["visits"] is not None and nodes[nodes[i]["parent"]]["visits"] is not None


def test_smc_draws_the_genealogy(traces):
    tree = traces["smc"]
    nodes = tree["nodes"]
    lay = tree_layout(nodes, "smc")
    for s in range(11):  # one slot per particle at every step
        xs = sorted(lay.x[nd["id"]] for nd in nodes if nd["step"] == s)
        assert xs == list(range(6))
    events = [e for e in tree["events"] if e["kind"] == "smc"]
    want = {e["i"] + 0.5 for e in events if e["resampled"] and e["i"] < 10}
    assert set(lay.rules) == want and want
    for nd in nodes:  # a particle changes slot only across a resampling rule
        p = nd["parent"]
        if p is not None and lay.x[p] != lay.x[nd["id"]]:
            assert nodes[p]["step"] + 0.5 in want
    finals = [nd["id"] for nd in nodes if nd["status"] in ("final", "best")]
    anc = set()
    for f in finals:
        i = f
        while i is not None:
            anc.add(i)
            i = nodes[i]["parent"]
    assert set(np.flatnonzero(lay.highlight).tolist()) == anc


def test_a_trace_without_the_mechanisms_shape_falls_back_to_the_tidy_layout():
    # paths-like (a re-noise at node 2) but branching inside a round (node 3 has two children)
    spec = [(None, 0, (0,)), (0, 2, (0,)), (1, 1, (0, 0)), (2, 2, (0, 0)), (3, 3, (0, 0)), (3, 3, (0, 0))]
    nodes = [{"id": i, "parent": p, "step": s, "t": 1 - s / 3, "key": list(k), "status": "kept", "score": 0.0}
             for i, (p, s, k) in enumerate(spec)]  # fmt: skip
    lay = tree_layout(nodes, "paths")
    assert lay.algorithm is None and lay.x.tolist() == [0.5, 0.5, 0.5, 0.5, 0.0, 1.0]
    fig = layered_tree_figure({"nodes": nodes, "events": []}, algorithm="paths")
    assert fig.layout.yaxis.title.text == "step (noise → data)"
