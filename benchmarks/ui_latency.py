"""Server-side latency of one slider release on the gmm default preset: search + all
figures, as the app's live handler does it. Writes benchmarks/results/ui_latency.json.

Run: ``OMP_NUM_THREADS=1 python -m benchmarks.ui_latency`` (or ``python benchmarks/ui_latency.py``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.state import SessionState


def measure(repeats: int = 20, **changes) -> dict:
    """Median / p90 / min milliseconds of ``AppHandlers.run`` with the given controls."""
    h = AppHandlers()
    state = SessionState()
    vals = input_values(**changes)
    h.run(state, *vals)  # warm: backend load, plotly import
    times = []
    for i in range(repeats):
        v = input_values(**{**changes, "eta": 0.5 + 0.1 * i})
        t0 = time.perf_counter()
        out = h.run(state, *v)
        times.append((time.perf_counter() - t0) * 1000)
        if out["status"].startswith("⚠️"):
            raise RuntimeError(out["status"])
    times.sort()
    return {
        "controls": changes or "defaults",
        "nodes": len(state.result.tree.nodes),
        "nfe": state.result.ledger.denoiser_nfe,
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
        "min_ms": round(times[0], 1),
    }


def main() -> None:
    import torch

    cases = [measure(), measure(n=32), measure(n=8, steps=100), measure(obstacles="component:1", avoid="repulsion")]
    out = {
        "benchmark": "ui_latency: server-side search + figures per slider release (gmm)",
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}",
        "goal_ms": 150,
        "cases": cases,
    }
    path = Path(__file__).resolve().parent / "results" / "ui_latency.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
