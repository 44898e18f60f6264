"""Sampling the reward-tilted law across temperatures (issue 22, docs/search.md): the soft
tree (DTS) and SMC against the closed-form tilted mixture p0·exp(r/τ) on ``trap`` (r =
the prize's log-density), for τ ∈ {10, 20, 30, 50} and budgets of 2,000 and 8,000 NFEs,
over ``--seeds`` seeds (default 8).

SMC is fitted to the budget (budget / 32 particles); the soft tree runs with the root
width n of each row (15 at 2,000 NFEs; 62 and 16 at 8,000: a quarter of the rollouts
against the smallest width that worked), M = 4, batch 8, 1,000 draws. Each row: the largest mode-share
error against 10⁵ exact draws, mean ± s.e., median and largest over seeds.

    .venv/bin/python benchmarks/fidelity_tau.py [--quick] [--seeds 8]

Writes benchmarks/results/fidelity_tau.json (with the machine's description).
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

from dts_app.config import SearchConfig  # noqa: E402
from dts_app.search import backend_for, build_problem, make_algorithm, run_search  # noqa: E402
from dts_app.search.fidelity import EXACT_N, Reference, mode_shares, tilted_mixture  # noqa: E402

CACHE: dict = {}


def row(algorithm: str, tau: float, budget: int, seeds: int, fit: bool = True, **knobs) -> dict:
    errs, prize, widths = [], [], []
    for s in range(seeds):
        cfg = SearchConfig(preset="trap", target=2, verifier="oracle", heldout="", steps=32, seed=s, algorithm=algorithm,
                           temperature=tau, sde_gamma=1.0, backup="soft", m=4, batch=8, draws=1000, **knobs)  # fmt: skip
        p = build_problem(cfg, backend=backend_for(cfg, CACHE))
        p.trace_scores = False
        mix = p.backend.reference_mixture()
        ref = Reference.of(mix, tilted_mixture(mix, 2, tau).sample(EXACT_N, torch.Generator().manual_seed(12345))[0])
        algo = make_algorithm(algorithm, cfg)
        algo = algo.fit_budget(p, budget) if fit else algo
        widths.append(algo.config.n)
        r = run_search(p, algo, budget)
        draws = r.draws if r.draws else r.candidates
        shares = mode_shares(mix, torch.stack([c.x0.reshape(-1) for c in draws]).double())
        errs.append(float((shares - ref.shares).abs().max()))
        prize.append(float(shares[2]))
    out = {"algorithm": algorithm, "tau": tau, "budget": budget, "n": widths[0], "seeds": seeds}
    out |= {"mean": statistics.mean(errs), "se": statistics.stdev(errs) / len(errs) ** 0.5 if len(errs) > 1 else 0.0}
    out |= {"median": statistics.median(errs), "max": max(errs), "prize_shares": prize, "exact_prize": float(ref.shares[2])}
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="τ = 20 and 30 at 2,000 NFEs, 2 seeds")
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = 2 if args.quick else args.seeds
    taus = [20.0, 30.0] if args.quick else [10.0, 20.0, 30.0, 50.0]
    budgets = [2000] if args.quick else [2000, 8000]
    rows = []
    for tau in taus:
        for b in budgets:
            rows.append(row("tree", tau, b, seeds, fit=False, n=b // 128))
            rows.append(row("smc", tau, b, seeds))
        rows.append(row("tree", tau, budgets[-1], seeds, fit=False, n=16))
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
        "rows": rows,
    }
    path = ROOT / "benchmarks" / "results" / ("fidelity_tau_quick.json" if args.quick else "fidelity_tau.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
