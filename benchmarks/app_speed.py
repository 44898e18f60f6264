"""Server time a person waits for: every algorithm at the page's defaults (each backend's
demo settings and compute budget, which every algorithm fits itself to), search plus every
figure, as ``AppHandlers.run`` answers a click. Goals (issue 24): ≤ 1 s on gmm and ≤ 2 s on
digits, on 2 cores. Side by side in one run: 1 and 2 torch threads, the same requests.

Run: ``python benchmarks/app_speed.py [--repeats 5]``; writes benchmarks/results/app_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ALGORITHMS = ("best-of-n", "zero-order", "paths", "tree", "smc")
GOALS_S = {"gmm": 1.0, "digits": 2.0}


def measure(backend: str, algorithm: str, repeats: int) -> dict:
    from dts_app.ui.controls import demo_values, page_values
    from dts_app.ui.handlers import AppHandlers
    from dts_app.ui.state import SessionState

    vals = page_values() | demo_values(backend) | {"backend": backend, "algorithm": algorithm}
    if backend != "gmm":
        vals["preset"] = None
    h = AppHandlers()
    out = h.run(SessionState(), *vals.values())  # warm: the backend, its verifiers, plotly
    if not str(out["status"]).startswith("**"):
        raise RuntimeError(out["status"])
    times = []
    for seed in range(repeats):
        state = SessionState()
        t0 = time.perf_counter()
        out = h.run(state, *(vals | {"seed": seed + 1}).values())
        times.append(time.perf_counter() - t0)
    return {
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "nfe": state.result.ledger.denoiser_nfe,
        "nodes": len(state.result.tree.nodes),
        "within_goal": statistics.median(times) <= GOALS_S[backend],
    }


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "app_speed.json"))
    args = ap.parse_args()
    before = os.getloadavg()
    rows = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for backend in GOALS_S:
            for algorithm in ALGORITHMS:
                r = measure(backend, algorithm, args.repeats)
                rows[f"{backend}/{algorithm}/{threads} thread(s)"] = r
                print(backend, algorithm, threads, r, flush=True)
    out = {
        "what": "AppHandlers.run at the page's defaults (search + every figure), median of repeats, seeds 1..repeats",
        "goals_s": GOALS_S,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "load_average_before_after": [round(before[0], 2), round(os.getloadavg()[0], 2)],
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
