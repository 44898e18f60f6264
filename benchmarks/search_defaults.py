"""The sweeps behind the search defaults (issue 22), the tables of docs/search.md:

1. Tree search with ``--backup max`` (DTS*): root width n ∈ {4, 8, 16} × selection
   c_uct ∈ {0 (greedy), 0.1, 1 (UCT)} against best-of-N at 1,024 / 2,048 / 4,096 NFEs.
   Tree rows expand one leaf at a time (``batch=1``, the default when they were measured;
   the batched default's rows are in docs/search.md).
2. Zero-order search: λ ∈ {0.5, 0.75, 1.0, 1.25} at the same budgets on ``trap`` (2-D) and
   λ ∈ {0.5, 0.75, 1.0} on ``hd-64`` (64-D).

Everything on the exact mixture with the oracle verifier, 32 Euler steps, N = 8 (unless
swept), ``--seeds`` seeds (default 12). Each row: mean ± s.e. of the best score, its
median, the hit rate (share of seeds whose best sample lies in the target mode, by the
mixture's responsibilities) and the NFEs actually spent.

    .venv/bin/python benchmarks/search_defaults.py [--quick] [--seeds 12]

Writes benchmarks/results/search_defaults.json (with the machine's description).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dts_app.backends.mixture import PRESETS  # noqa: E402
from dts_app.config import SearchConfig  # noqa: E402
from dts_app.search import backend_for, build_problem, make_algorithm, run_search  # noqa: E402

CACHE: dict = {}


def cell(algorithm: str, budget: int, seeds: int, preset: str = "trap", **knobs) -> dict:
    """One row: ``algorithm`` fitted to ``budget`` over ``seeds`` seeds."""
    scores, nfes, hits = [], [], []
    for s in range(seeds):
        cfg = SearchConfig(preset=preset, verifier="oracle", heldout="oracle", steps=32, seed=s, algorithm=algorithm, **knobs)
        p = build_problem(cfg, backend=backend_for(cfg, CACHE))
        p.trace_scores = False
        r = run_search(p, make_algorithm(algorithm, cfg).fit_budget(p, budget), budget)
        mix = p.backend.reference_mixture()
        resp = mix.responsibilities(r.best.reshape(1, -1).double())
        scores.append(float(r.best_score))
        nfes.append(int(r.ledger.denoiser_nfe))
        hits.append(int(resp.argmax()) == PRESETS[preset].default_target)
    se = statistics.stdev(scores) / len(scores) ** 0.5 if len(scores) > 1 else 0.0
    row = {"algorithm": algorithm, "preset": preset, "budget": budget, **knobs, "seeds": seeds}
    row |= {"mean": statistics.mean(scores), "se": se, "median": statistics.median(scores)}
    row |= {"hit_rate": sum(hits) / len(hits), "nfe_mean": statistics.mean(nfes)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,024 NFEs only, 4 seeds")
    ap.add_argument("--seeds", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = 4 if args.quick else args.seeds
    budgets = [1024] if args.quick else [1024, 2048, 4096]
    rows = []
    for b in budgets:
        rows.append(cell("best-of-n", b, seeds))
        for n in (4, 8, 16):
            for c in (0.0, 0.1, 1.0):
                rows.append(cell("tree", b, seeds, backup="max", n=n, c_uct=c, batch=1))
        for lam in (0.5, 0.75, 1.0, 1.25):
            rows.append(cell("zero-order", b, seeds, lam=lam))
        rows.append(cell("best-of-n", b, seeds, preset="hd-64"))
        for lam in (0.5, 0.75, 1.0):
            rows.append(cell("zero-order", b, seeds, preset="hd-64", lam=lam))
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
        "rows": rows,
    }
    path = ROOT / "benchmarks" / "results" / ("search_defaults_quick.json" if args.quick else "search_defaults.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
