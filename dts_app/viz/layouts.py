"""Where each node of a trace goes in the tree view, per algorithm, so that the picture
shows how the algorithm works:

* ``best-of-n`` (and any trace of unknown origin): the tidy layered layout
  (:func:`~dts_app.viz.tree_layout.layered_positions`), one column per path;
* ``zero-order``: the paths grouped by iteration; arcs above the noises join each pivot
  noise to the neighbours drawn around it, and the pivots' paths are bold, so the chain
  *pivot → neighbours → best neighbour = next pivot* reads left to right;
* ``paths`` (search over paths): one band per round, top to bottom; each kept path owns a
  lane and fans out into its M branches inside it, the branches the round keeps continue
  into the next band's lanes (kept paths sorted by lane, so edges never cross) and the
  others end in a ×. The vertical axis counts steps along each path, re-noising included
  (the round's start step is its tick), so rounds never overlap;
* ``tree`` (DTS): the tidy layout of the trace with the step axis on a log scale (the
  tree's few top levels get room next to its long rollouts); the nodes the search
  expanded are numbered in expansion order and joined by bold edges, the virtual root
  above joins the fresh noises;
* ``smc``: the genealogy of the particles: one column per particle slot at each step,
  edges from each particle to its ancestor, dotted rules at the resampling steps and the
  lineages of the final particles in bold.

Each layout checks that the trace has its algorithm's shape (e.g. a paths trace whose
rounds branch only at their heads) and falls back to the tidy layout otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .forest import column as _column
from .forest import lineage as _lineage
from .forest import parents_of, tidy_x
from .forest import roots as _roots

__all__ = ["TreeLayout", "infer_algorithm", "tree_layout", "parents_of", "tidy_x"]

_RESAMPLED = 2**30  # the tag in the keys of resampled particles' copies (search.particles.RESAMPLED)
_REVERTED_DX = 0.35  # a rejected revert try sits beside the state that replaced it


@dataclass
class TreeLayout:
    """Positions and the mechanism's decorations (all optional but ``x``, ``y``)."""

    x: np.ndarray
    y: np.ndarray
    algorithm: str | None = None  # the mechanism drawn (None: the tidy layout of any forest)
    x_title: str = "paths"
    y_title: str = "step (noise → data)"
    y_ticks: tuple[list, list] | None = None  # tickvals, ticktext
    y_reversed: bool = True
    subtitle: str = ""
    highlight: np.ndarray | None = None  # bool per node: its edge from its parent is drawn bold
    highlight_name: str = ""
    links: tuple[list, list] | None = None  # extra segments (None-separated): arcs, root joins
    links_name: str = ""
    links_spline: bool = False
    labels: list[tuple[float, float, str]] = field(default_factory=list)  # text at points
    labels_name: str = ""
    bands: list[tuple[float, float, str]] = field(default_factory=list)  # shaded y ranges, named
    rules: list[float] = field(default_factory=list)  # dotted horizontal lines (resampling)
    rules_name: str = ""


def _finals(nodes: list[dict]) -> list[int]:
    return [i for i, nd in enumerate(nodes) if nd.get("status") in ("final", "best")]


def _reverted(nodes: list[dict]) -> np.ndarray:
    return np.fromiter((nd.get("status") == "reverted" for nd in nodes), dtype=bool, count=len(nodes))


def infer_algorithm(nodes: list[dict], events: list[dict] | None = None) -> str | None:
    """The algorithm that made a trace, from its events or the shape of its nodes (a
    fallback: callers that know the algorithm pass it). Trees with ``visits`` are tree
    search; a child at an earlier step than its parent is a re-noise (paths); roots keyed
    ``(k, j)`` next to one keyed ``(0,)`` are zero-order; keys of resampled copies or
    ``resampled`` nodes are SMC; plain chains are best-of-N; any other forest is None."""
    kinds = {e.get("kind") for e in events or ()}
    for kind, alg in (("pivot", "zero-order"), ("round", "paths"), ("rollout", "tree"), ("smc", "smc")):
        if kind in kinds:
            return alg
    if not nodes:
        return None
    if any(nd.get("visits") is not None for nd in nodes):
        return "tree"
    par = parents_of(nodes)
    steps = _column(nodes, "step")
    kid = np.flatnonzero(par >= 0)
    if len(kid) and np.any(steps[kid] < steps[par[kid]]):
        return "paths"
    roots = [nd for nd in nodes if nd["parent"] is None]
    keys = [tuple(nd.get("key") or ()) for nd in roots]
    if (0,) in keys and any(len(k) == 2 for k in keys):
        return "zero-order"
    tagged = any(any(k >= _RESAMPLED for k in (nd.get("key") or ())) for nd in nodes)
    if tagged or any(nd.get("status") == "resampled" for nd in nodes):
        return "smc"
    rev = _reverted(nodes)
    live = kid[~rev[kid]]
    if len(live) and np.bincount(par[live]).max() > 1:
        return None  # a branching forest of unknown origin
    return "best-of-n"


# ---------------------------------------------------------------- per algorithm


def _depth_axis(nodes: list[dict], depth: str) -> tuple[np.ndarray, str, bool]:
    if depth == "t":
        return _column(nodes, "t"), "t", False
    return _column(nodes, "step"), "step (noise → data)", True


def _tidy(nodes: list[dict], par: np.ndarray, depth: str, algorithm: str | None = None) -> TreeLayout:
    x, _ = tidy_x(par)
    y, title, rev = _depth_axis(nodes, depth)
    sub = ""
    if algorithm == "best-of-n":
        sub = f"best-of-N: {int(np.sum(par < 0))} independent paths · the best final wins"
    return TreeLayout(x, y, algorithm if algorithm == "best-of-n" else None, "paths (one column each)", title, None, rev, sub)


def _zero_order(nodes: list[dict], par: np.ndarray, depth: str) -> TreeLayout | None:
    root = _roots(par)
    it = np.zeros(len(nodes), dtype=np.int64)
    for r in np.flatnonzero(par < 0).tolist():
        key = nodes[r].get("key") or (0,)
        it[r] = int(key[0]) if len(key) else 0
    it = it[root]
    if np.any(np.diff(it[par < 0]) < 0):  # iterations out of id order: not zero-order's shape
        return None
    x, _ = tidy_x(par)
    groups = np.unique(it)
    gap = 1.5
    x = x + gap * np.searchsorted(groups, it)
    y, title, rev = _depth_axis(nodes, depth)
    unit = 1.0 if depth == "step" else float(np.nanmax(y) - np.nanmin(y)) / max(1.0, float(np.nanmax(_column(nodes, "step"))))
    top = float(np.nanmin(y)) if depth == "step" else float(np.nanmax(y))
    sign = -1.0 if rev else 1.0
    # the pivot of each iteration: its first best-scoring final (the algorithm's own rule)
    score = _column(nodes, "score")
    pivots: dict[int, int] = {}
    for f in _finals(nodes):
        k = int(it[f])
        if not math.isnan(score[f]) and (k not in pivots or score[f] > score[pivots[k]]):
            pivots[k] = f
    ax: list = []
    ay: list = []
    labels: list[tuple[float, float, str]] = []
    cur = None  # the pivot's root (its noise)
    span = float(x.max() - x.min()) or 1.0
    for k in groups.tolist():
        rs = np.flatnonzero((par < 0) & (it == k))
        if cur is not None and len(rs) <= 400:
            for r in rs.tolist():
                h = unit * (0.8 + 3.0 * abs(x[r] - x[cur]) / span)
                ax += [x[cur], 0.5 * (x[cur] + x[r]), x[r], None]
                ay += [top, top + sign * h, top, None]
        labels.append((float(x[rs].mean()), top + sign * unit * 4.6, "start" if k == groups[0] else f"iter {k}"))
        if k in pivots:
            cur = int(root[pivots[k]])
    hl = np.isin(root, [int(root[p]) for p in pivots.values()])
    ticks = _step_ticks(float(np.nanmax(y))) if depth == "step" else None
    n_it = len(groups) - 1
    width = max((int(np.sum((par < 0) & (it == k))) for k in groups[1:]), default=0)
    sub = f"zero-order: pivot → {width} neighbours → the best is the next pivot ({n_it} iterations)"
    return TreeLayout(
        x, y, "zero-order", "paths, grouped by iteration", title, ticks, rev, sub,
        hl, "pivot paths", (ax, ay), "pivot → neighbours", True, labels, "iterations",
    )  # fmt: skip


def _paths(nodes: list[dict], par: np.ndarray, depth: str) -> TreeLayout | None:
    n = len(nodes)
    steps = _column(nodes, "step")
    rev = _reverted(nodes)
    rnd = np.zeros(n, dtype=np.int64)
    dep = np.zeros(n, dtype=np.int64)
    for i in np.flatnonzero(par >= 0).tolist():
        p = par[i]
        rnd[i] = rnd[p] + int(steps[i] < steps[p])
        dep[i] = dep[p] + 1
    head = (par < 0) | (rnd != rnd[np.maximum(par, 0)])
    inner = np.flatnonzero((par >= 0) & ~head & ~rev)
    if len(inner) and np.bincount(par[inner], minlength=n).max() > 1:
        return None  # branching inside a round (e.g. SMC obstacle resampling): tidy instead
    seg = np.arange(n)
    for i in np.flatnonzero(~head).tolist():
        seg[i] = seg[par[i]]
    heads = np.flatnonzero(head)
    kids_of: dict[int, list[int]] = {}
    for h in heads[par[heads] >= 0].tolist():
        kids_of.setdefault(int(seg[par[h]]), []).append(h)
    m = max((len(v) for v in kids_of.values()), default=1)
    w = m + 1.0
    x = np.zeros(n)
    r0 = heads[par[heads] < 0]
    x[r0] = np.arange(len(r0)) * w + (m - 1) / 2
    for r in range(1, int(rnd.max()) + 1):
        hs = heads[rnd[heads] == r]
        parents = sorted({int(seg[par[h]]) for h in hs.tolist()}, key=lambda s: (x[s], s))
        centres = _packed([float(x[s]) for s in parents], w)
        for s, c0 in zip(parents, centres):
            for c, h in enumerate(sorted(kids_of[s])):
                x[h] = c0 - (m - 1) / 2 + c
    for i in np.flatnonzero(~head).tolist():
        x[i] = x[par[i]] + (_REVERTED_DX if rev[i] else 0.0)
    t = _column(nodes, "t")
    bands: list[tuple[float, float, str]] = []
    tv: list[float] = []
    tt: list[str] = []
    for r in range(int(rnd.max()) + 1):
        sel = np.flatnonzero((rnd == r) & ~rev)
        if not len(sel):
            continue
        a, b = int(dep[sel].min()), int(dep[sel].max())
        bands.append((a - 0.5, b + 0.5, ""))
        tv.append(0.5 * (a + b))
        tt.append("start" if r == 0 else str(r))
    if depth == "t":
        y, title, yrev, ticks = t, "t", False, None
    else:
        y, title, yrev, ticks = dep.astype(float), "round (steps along each path ↓)", True, (tv, tt)
    hl = _lineage(par, _finals(nodes))
    sub = f"search over paths: {int(rnd.max())} rounds · each kept path branches {m}× · the best {len(r0)} go on"
    return TreeLayout(
        x, y, "paths", "branches of each kept path side by side, under it", title, ticks, yrev, sub,
        hl, "finals' lineages", bands=bands if depth == "step" else [],
    )  # fmt: skip


def _packed(want: list[float], gap: float) -> list[float]:
    """Positions as close as possible (least squares) to the sorted ``want`` with
    neighbours at least ``gap`` apart: isotonic regression (pool adjacent violators) of
    ``want[p] − p·gap``, shifted back."""
    z = [v - p * gap for p, v in enumerate(want)]
    blocks: list[list[float]] = []  # [mean, count]
    for v in z:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, c2), (m1, c1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    fit = [m for m, c in blocks for _ in range(int(c))]
    return [f + p * gap for p, f in enumerate(fit)]


def _step_ticks(top: float) -> tuple[list, list]:
    """Ticks 0, d, 2d, … up to ``top`` with d from 1-2-5 (at most 8 of them)."""
    d = next((v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if top / v <= 7), 10 ** math.ceil(math.log10(top or 1)))
    vals = list(range(0, int(top) + 1, d))
    return vals, [str(v) for v in vals]


def _log_step_ticks(top: float) -> tuple[list, list]:
    vals = [0] + [2**k for k in range(0, 12) if 2**k <= top]
    if top not in vals:
        vals.append(int(top))
    return [math.log2(1 + v) for v in vals], [str(v) for v in vals]


def _tree(nodes: list[dict], par: np.ndarray, depth: str) -> TreeLayout:
    x, _ = tidy_x(par)
    expanded = np.fromiter((nd.get("visits") is not None for nd in nodes), dtype=bool, count=len(nodes))
    if depth == "t":
        y, title, rev, ticks = _column(nodes, "t"), "t", False, None
        top = 1.0 + 0.04
    else:
        steps = _column(nodes, "step")
        y = np.log2(1.0 + steps)
        title, rev = "step, log scale (noise → data)", True
        ticks = _log_step_ticks(float(np.nanmax(steps)) if len(steps) else 1.0)
        top = -0.35
    roots = np.flatnonzero(par < 0)
    ax: list = []
    ay: list = []
    if len(roots):
        cx = float(x[roots].mean())
        for r in roots.tolist():
            ax += [cx, x[r], None]
            ay += [top, y[r], None]
    order = np.flatnonzero(expanded)
    labels = []
    if 0 < len(order) <= 80:
        labels = [(float(x[i]), float(y[i]), str(k + 1)) for k, i in enumerate(order.tolist())]
    hl = expanded & (par >= 0)
    hl[par >= 0] &= expanded[par[par >= 0]]
    sub = f"tree search: {len(order)} expansions (numbered in order) · each rolled out to t = 0"
    return TreeLayout(
        x, y, "tree", "rollouts (one column each)", title, ticks, rev, sub,
        hl, "expanded tree", (ax, ay), "root", False, labels, "expansion order",
    )  # fmt: skip


def _smc(nodes: list[dict], par: np.ndarray, depth: str) -> TreeLayout:
    n = len(nodes)
    steps = _column(nodes, "step")
    rev = _reverted(nodes)
    x = np.zeros(n)
    slot: dict[float, int] = {}
    for i in range(n):
        if rev[i]:
            continue
        s = steps[i]
        x[i] = slot.get(s, 0)
        slot[s] = x[i] + 1
    for i in np.flatnonzero(rev).tolist():
        x[i] = (x[par[i]] if par[i] >= 0 else 0.0) + _REVERTED_DX
    y, title, yrev = _depth_axis(nodes, depth)
    live = np.flatnonzero((par >= 0) & ~rev)
    kids = np.bincount(par[live], minlength=n) if len(live) else np.zeros(n, dtype=np.int64)
    last = float(np.nanmax(steps)) if n else 0.0
    at: set[float] = set()
    for i in range(n):
        if steps[i] < last and (nodes[i].get("status") == "resampled" or kids[i] > 1):
            at.add(float(steps[i]))
    ts = _column(nodes, "t")
    step_t = {float(s): float(t) for s, t in zip(steps, ts)}
    if depth == "t":
        nxt = {s: step_t.get(s + 1, step_t[s]) for s in at}
        rules = sorted(0.5 * (step_t[s] + nxt[s]) for s in at)
    else:
        rules = sorted(s + 0.5 for s in at)
    hl = _lineage(par, _finals(nodes))
    sub = f"SMC: {int(np.sum(par < 0))} particles · resampled at {len(at)} steps · bold: lineages of the finals"
    return TreeLayout(
        x, y, "smc", "particle (its slot at each step)", title, None, yrev, sub,
        hl, "finals' lineages", rules=rules, rules_name="resampling",
    )  # fmt: skip


def tree_layout(nodes: list[dict], algorithm: str | None = None, depth: str = "step", events=None) -> TreeLayout:
    """The layout of ``nodes`` (``Trace.to_dict()["nodes"]``, ids ``0..n-1``, parents
    first) for ``algorithm`` (inferred from the trace when None; see module docstring).

    Args:
        nodes: node dicts (``parent``, ``step``, ``t``; ``key``, ``status``, ``score``,
            ``visits`` where the layout uses them).
        algorithm: a registry name; unknown names get the tidy layout.
        depth: ``"step"`` or ``"t"`` for the vertical axis.
        events: the trace's events (only used to infer the algorithm).
    """
    par = parents_of(nodes)
    if len(par) and np.any(par >= np.arange(len(par))):
        raise ValueError("each node's parent id must be smaller than its own id")
    alg = algorithm if algorithm is not None else infer_algorithm(nodes, events)
    out = None
    if len(nodes):
        if alg == "zero-order":
            out = _zero_order(nodes, par, depth)
        elif alg == "paths":
            out = _paths(nodes, par, depth)
        elif alg == "tree":
            out = _tree(nodes, par, depth)
        elif alg == "smc":
            out = _smc(nodes, par, depth)
    return out if out is not None else _tidy(nodes, par, depth, alg)
