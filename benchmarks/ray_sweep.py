"""A 32-cell gmm sweep with the local executor and with the Ray executor, side by side in one
run: wall time, speed-up with 2 Ray workers, and the overhead per cell. Writes
benchmarks/results/ray_sweep.json.

Run: ``python benchmarks/ray_sweep.py`` (or ``python -m dts_app bench ray_sweep``); needs Ray
(``pip install -e '.[ray]'``). Options: ``--workers 2`` (Ray CPUs), ``--repeats 3``.

The sweep is trap (n = 8, 32 Euler steps, oracle verifier), algorithms best-of-n, zero-order,
paths and tree at budgets 256, 512, 1024 and 2048 NFEs, 2 seeds: 4 × 4 × 2 = 32 cells, no
baseline. Per repeat: the local executor (in this process, torch's default threads; then again
with 1 torch thread, as a Ray worker runs), then the Ray executor on a fresh local Ray with ``--workers`` CPUs (one CPU per cell): a first run with
cold workers (process start, imports, model load) and a second with warm ones. The summaries
must be identical.

Overhead per cell (Ray, warm) = (wall × workers − Σ seconds the cells spent computing inside
the workers) / cells: the worker time not spent on cells (scheduling, transfer, idle tails).
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

from dts_app.config import SearchConfig
from dts_app.executors import make_executor, run_cells
from dts_app.sweep import run_sweep, sweep_cells

ALGORITHMS = ["best-of-n", "zero-order", "paths", "tree"]
BUDGETS = [256, 512, 1024, 2048]
SEEDS = 2


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def timed_sweep(config: SearchConfig, executor) -> tuple[dict, float, float]:
    """(summary, wall seconds, Σ seconds the cells computed) for one run of the sweep."""
    cells = sweep_cells(config, ALGORITHMS, BUDGETS, SEEDS, baseline=False)
    t0 = time.perf_counter()
    outcomes = list(run_cells(cells, executor))
    wall = time.perf_counter() - t0
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    compute = sum(o.seconds for o in outcomes)
    summary = run_sweep(config, ALGORITHMS, BUDGETS, SEEDS, baseline=False, executor=_Replay(outcomes))
    return summary, wall, compute


class _Replay:
    """An executor that hands back outcomes already computed (builds the summary from them)."""

    def __init__(self, outcomes):
        self.by_id = {o.cell.id: o for o in outcomes}

    def run(self, cells, retries=1, on_retry=None):
        for c in cells:
            yield self.by_id[c.id]

    def close(self):
        pass


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _r(x: float, nd: int = 3) -> float:
    return round(x, nd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (one cell per CPU). Default: 2.")
    ap.add_argument("--repeats", type=int, default=3, help="Local / Ray rounds to measure. Default: 3.")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "ray_sweep.json"))
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    import torch

    config = SearchConfig(preset="trap")
    n_cells = len(sweep_cells(config, ALGORITHMS, BUDGETS, SEEDS, baseline=False))
    runs = []
    for rep in range(args.repeats):
        load_before = os.getloadavg()[0]
        local = make_executor("local")
        s_local, wall_local, comp_local = timed_sweep(config, local)
        local.close()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a Ray worker: the parallel speed-up alone
        local = make_executor("local")
        s_local1, wall_local1, comp_local1 = timed_sweep(config, local)
        local.close()
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t0
        ex = make_executor("ray")
        worker_threads = ray.get(ray.remote(_torch_threads).options(num_cpus=1).remote())
        s_cold, wall_cold, comp_cold = timed_sweep(config, ex)
        s_warm, wall_warm, comp_warm = timed_sweep(config, ex)
        ray.shutdown()
        identical = json.dumps(s_local) == json.dumps(s_local1) == json.dumps(s_cold) == json.dumps(s_warm)
        run = {
            "repeat": rep,
            "load_avg_1min_before_after": [_r(load_before, 2), _r(os.getloadavg()[0], 2)],
            "identical_summaries": identical,
            "local": {"wall_s": _r(wall_local), "cell_compute_s": _r(comp_local), "per_cell_s": _r(wall_local / n_cells)},
            "local_1_thread": {"wall_s": _r(wall_local1), "cell_compute_s": _r(comp_local1)},
            "ray_start_s": _r(ray_start),
            "ray_cold": {"wall_s": _r(wall_cold), "cell_compute_s": _r(comp_cold)},
            "ray_warm": {"wall_s": _r(wall_warm), "cell_compute_s": _r(comp_warm)},
            "speedup_warm": _r(wall_local / wall_warm),
            "speedup_warm_vs_local_1_thread": _r(wall_local1 / wall_warm),
            "speedup_cold": _r(wall_local / wall_cold),
            "speedup_incl_ray_start": _r(wall_local / (ray_start + wall_cold)),
            "overhead_per_cell_warm_s": _r((wall_warm * args.workers - comp_warm) / n_cells),
            "overhead_per_cell_cold_s": _r((wall_cold * args.workers - comp_cold) / n_cells),
            "cell_compute_ratio_ray_vs_local": _r(comp_warm / comp_local),
            "cell_compute_ratio_ray_vs_local_1_thread": _r(comp_warm / comp_local1),
        }
        runs.append(run)
        print(json.dumps(run), flush=True)
        assert identical, "local and Ray summaries differ"
    out = {
        "benchmark": "ray_sweep: 32-cell gmm sweep, local executor vs Ray executor (local Ray)",
        "sweep": {"preset": "trap", "n": config.n, "steps": config.steps, "algorithms": ALGORITHMS, "budgets": BUDGETS,
                  "seeds": SEEDS, "cells": n_cells, "baseline": False},  # fmt: skip
        "machine": {
            "cpu": _cpu(),
            "cores": os.cpu_count(),
            "memory_gib": _mem_gib(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
            "torch_threads_local": torch.get_num_threads(),
            "ray_workers": args.workers,
            "torch_threads_ray_worker": worker_threads,
            "note": "container shared with other work",
        },
        "runs": runs,
        "median": {
            k: _r(statistics.median(r[k] for r in runs))
            for k in (
                "speedup_warm",
                "speedup_warm_vs_local_1_thread",
                "speedup_cold",
                "speedup_incl_ray_start",
                "overhead_per_cell_warm_s",
                "overhead_per_cell_cold_s",
                "ray_start_s",
            )
        },
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
