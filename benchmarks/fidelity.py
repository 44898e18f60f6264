"""Fidelity against exact targets on the Gaussian mixture (``trap``), the tables of
docs/obstacles.md and docs/search.md:

1. Obstacles: every avoidance mode against the exact constrained law p0(x | D > Q*)
   (point obstacle on the hazard mean (1.6, 0.4), Q* = 0.9, n = 2000, 32 steps):
   collision rate, prize-mode share, mean log p0, energy distance and NFEs relative to
   plain sampling; rejection sampling's row is exact (its cost is 1/acceptance).
2. Reward-tilted sampling: soft tree search and SMC against the closed-form tilted mixture
   p0·exp(r/τ) (r = log-density of the prize mode, τ = 20): largest mode-share error and
   energy distance against budget, mean ± s.e. over seeds.

    .venv/bin/python benchmarks/fidelity.py [--quick]

Writes benchmarks/results/fidelity.json (with the machine's description).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dts_app.config import ObstacleSpec, SearchConfig  # noqa: E402
from dts_app.search import build_problem, make_algorithm, run_search, sample_paths, sampling_metrics  # noqa: E402
from dts_app.search.fidelity import (  # noqa: E402
    EXACT_N,
    constrained_reference,
    energy_distance,
    fidelity,
    mode_shares,
    tilted_mixture,
)

HAZARD = (ObstacleSpec("point", (1.6, 0.4)),)
MODES = [("none", {}), ("repulsion", {"eta": 0.1}), ("repulsion", {"eta": 1.0}), ("repulsion", {"eta": 10.0}),
         ("revert", {"sde_gamma": 1.0}), ("prune", {}), ("smc", {"sde_gamma": 1.0})]  # fmt: skip


def obstacles(n: int = 2000, steps: int = 32) -> list[dict]:
    rows = []
    ref = None
    for mode, kw in MODES:
        cfg = SearchConfig(preset="trap", avoid=mode, obstacles=HAZARD, q_star=0.9, n=n, steps=steps, **kw)
        p = build_problem(cfg, verifiers=False)
        mix = p.backend.mixture
        if ref is None:
            ref = constrained_reference(mix, torch.tensor([[1.6, 0.4]]), 0.9)
            rows.append({"mode": "rejection (exact)", "collision_rate": 0.0, "prize_share": float(ref.shares[2]),
                         "mean_log_p0": ref.mean_log_p0, "energy_distance": 0.0,
                         "nfe_ratio": 1 / ref.acceptance, "n": EXACT_N})  # fmt: skip
        t0 = time.perf_counter()
        eng, beam = sample_paths(p, n, store_x0=False)
        secs = time.perf_counter() - t0
        x = eng.clean(beam)
        f = fidelity(mix, x, ref)
        rows.append({
            "mode": mode + "".join(f" {k}={v:g}" for k, v in kw.items()),
            "collision_rate": sampling_metrics(eng, beam)["collision_rate"],
            "prize_share": f["mode_shares"][2], "mean_log_p0": f["mean_log_p0"], "energy_distance": f["energy_distance"],
            "nfe_ratio": eng.ledger.denoiser_nfe / (n * steps), "n": len(x), "seconds": round(secs, 2),
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def tilted(budgets: list[int], seeds: int, tau: float = 20.0, steps: int = 32) -> list[dict]:
    rows = []
    for algo in ("tree", "smc"):
        for budget in budgets:
            errs, eds, secs = [], [], []
            for seed in range(seeds):
                if algo == "tree":
                    cfg = SearchConfig(preset="trap", algorithm="tree", backup="soft", temperature=tau, budget=budget,
                                       steps=steps, sde_gamma=1.0, n=16, m=4, draws=4000, target=2, heldout="", seed=seed)
                else:
                    cfg = SearchConfig(preset="trap", algorithm="smc", n=max(2, budget // steps), steps=steps, sde_gamma=1.0,
                                       temperature=tau, target=2, heldout="", seed=seed)  # fmt: skip
                p = build_problem(cfg)
                p.trace_scores = False
                t0 = time.perf_counter()
                r = run_search(p, make_algorithm(algo, cfg), cfg.budget or None)
                secs.append(time.perf_counter() - t0)
                x = torch.stack([c.x0 for c in (r.draws if algo == "tree" else r.candidates)]).double()
                target = tilted_mixture(p.backend.mixture, 2, tau)
                exact, _ = target.sample(4000, torch.Generator().manual_seed(seed))
                errs.append(float((mode_shares(p.backend.mixture, x) - target.weights).abs().max()))
                eds.append(energy_distance(x[:4000], exact))
            row = {"algorithm": algo, "budget": budget, "seeds": seeds}
            for name, v in (("max_share_error", errs), ("energy_distance", eds)):
                m = sum(v) / len(v)
                se = math.sqrt(sum((a - m) ** 2 for a in v) / max(len(v) - 1, 1) / len(v))
                row[f"{name}_mean"], row[f"{name}_se"] = m, se
            row["seconds_mean"] = sum(secs) / len(secs)
            rows.append(row)
            print(row, flush=True)
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    torch.set_num_threads(1)
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
        "obstacles": obstacles(n=500 if quick else 2000),
        "tilted": tilted([1000, 2000] if quick else [1000, 2000, 4000, 8000], 2 if quick else 4),
    }
    path = ROOT / "benchmarks" / "results" / ("fidelity_quick.json" if quick else "fidelity.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
