"""Build time and JSON size of the layered tree figure on synthetic search-like trees
(1k, 10k, 50k nodes; aggregated above 4,000 nodes). Writes benchmarks/results/tree_layout.json.

Run: ``python -m benchmarks.tree_layout`` (or ``python benchmarks/tree_layout.py``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dts_app.viz.tree_layout import layered_positions, layered_tree_figure


def synthetic_tree(n: int, steps: int = 64, roots: int = 8, seed: int = 0) -> tuple[dict, int]:
    """A search-like forest of exactly n nodes: level sizes grow with the step, each node's
    parent is drawn from the previous level; childless non-final nodes are pruned; a
    fifth of the nodes carry visits and values (as tree search leaves them)."""
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
        visited = rng.random(m) < 0.2
        for i, p, v, vis in zip(cur, par, rng.normal(size=m).tolist(), visited.tolist()):
            nodes.append(
                {
                    "id": i,
                    "parent": p,
                    "step": s,
                    "t": 1 - s / steps,
                    "score": v,
                    "heldout_score": None,
                    "value": v if vis else None,
                    "visits": int(rng.integers(1, 50)) if vis else None,
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


def measure(n: int, repeats: int = 3) -> dict:
    tree, best = synthetic_tree(n)
    layered_tree_figure(tree, best)  # warm (imports, plotly validators)
    build, layout, to_json = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        layered_positions(tree["nodes"])
        layout.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fig = layered_tree_figure(tree, best)
        build.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        js = fig.to_json()
        to_json.append(time.perf_counter() - t0)
    return {
        "nodes": n,
        "title": fig.layout.title.text,
        "traces": {tr.name: len(tr.x) for tr in fig.data},
        "layout_ms_median": round(statistics.median(layout) * 1000, 1),
        "figure_ms_median": round(statistics.median(build) * 1000, 1),
        "to_json_ms_median": round(statistics.median(to_json) * 1000, 1),
        "json_bytes": len(js.encode()),
    }


def main() -> dict:
    import plotly

    out = {
        "benchmark": "tree_layout: layered_tree_figure build time (median of 3) and fig.to_json() size, synthetic trees",
        "machine": f"{platform.platform()} {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "versions": {"numpy": np.__version__, "plotly": plotly.__version__},
        "max_markers": 4000,
        "cases": [measure(n) for n in (1_000, 10_000, 50_000)],
    }
    path = Path(__file__).resolve().parent / "results" / "tree_layout.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
