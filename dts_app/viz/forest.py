"""Plain functions over a forest of trace nodes (ids ``0..n-1``, a parent's id below its
child's): parent array, float columns, the tidy x layout, roots and lineages."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["parents_of", "column", "tidy_x", "roots", "lineage"]


def parents_of(nodes: list[dict]) -> np.ndarray:
    return np.fromiter((-1 if nd["parent"] is None else nd["parent"] for nd in nodes), dtype=np.int64, count=len(nodes))


def column(nodes: list[dict], key: str) -> np.ndarray:
    return np.fromiter((math.nan if (v := nd.get(key)) is None else v for nd in nodes), dtype=np.float64, count=len(nodes))


def tidy_x(par: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slot x and leaf count of every node of a forest (parents before children): leaves
    at consecutive integers in depth-first order, a parent at the midpoint of its first
    and last child. Three linear passes, no recursion."""
    n = len(par)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    if np.any(par >= np.arange(n)):
        raise ValueError("each node's parent id must be smaller than its own id")
    kids = np.flatnonzero(par >= 0)
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    if len(kids):
        order = kids[np.argsort(par[kids], kind="stable")]  # grouped by parent, ids ascending inside
        gp = par[order]
        head = np.r_[True, gp[1:] != gp[:-1]]
        tail = np.r_[gp[1:] != gp[:-1], True]
        first[gp[head]] = order[head]
        last[gp[tail]] = order[tail]
    p = par.tolist()
    cnt = (first < 0).astype(np.int64).tolist()
    for i in range(n - 1, 0, -1):  # leaf counts, bottom-up
        if p[i] >= 0:
            cnt[p[i]] += cnt[i]
    start = [0] * n
    nxt = [0] * n
    off = 0
    for i in range(n):  # first leaf slot of each subtree, top-down
        q = p[i]
        if q < 0:
            s = off
            off += cnt[i]
        else:
            s = nxt[q]
            nxt[q] = s + cnt[i]
        start[i] = s
        nxt[i] = s
    f, la = first.tolist(), last.tolist()
    x = [0.0] * n
    for i in range(n - 1, -1, -1):  # midpoints, bottom-up
        x[i] = float(start[i]) if f[i] < 0 else 0.5 * (x[f[i]] + x[la[i]])
    return np.asarray(x), np.asarray(cnt, dtype=np.int64)


def roots(par: np.ndarray) -> np.ndarray:
    root = np.arange(len(par))
    for i in np.flatnonzero(par >= 0).tolist():
        root[i] = root[par[i]]
    return root


def lineage(par: np.ndarray, ends: list[int]) -> np.ndarray:
    """Bool per node: on the root path of any of ``ends``."""
    on = np.zeros(len(par), dtype=bool)
    for e in ends:
        cur = e
        while cur >= 0 and not on[cur]:
            on[cur] = True
            cur = int(par[cur])
    return on
