"""The served app under concurrency, measured side by side in one run:

1. 20 gmm sessions (trap defaults: best-of-8, 32 Euler steps, one slider release each)
   run one after another, then the same 20 requests from 20 sessions at once; the goal
   is concurrent wall time ≤ 1.5 × sequential wall time (no collapse under load);
2. digits best-of-8 × 32 steps, guidance 2 and the app's digits default (guidance 0, one
   image-forward per image): server time per request (search + every figure, the status
   line's "ms"), goal < 1 s; plus the client's round trip.

Everything goes through ``gradio_client`` against the app on 127.0.0.1, built as
``app.py`` builds it (limits from the environment, torch threads from the concurrency).
Writes benchmarks/results/concurrency.json.

Run: ``python benchmarks/concurrency.py`` (about a minute on 2 cores); with
``DTS_CONCURRENCY=1`` (one search at a time, every core to it) and
``--out concurrency_c1.json`` for the other side of the trade-off.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SESSIONS = 20
SERVER_MS = re.compile(r" · (\d+) ms")


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.machine()} {model or platform.processor()}, {cores} cores available, {platform.system()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_ms(status: str) -> float:
    m = SERVER_MS.search(status)
    if not m or not status.startswith("**finished**"):
        raise RuntimeError(f"unexpected answer: {status}")
    return float(m.group(1))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))], 1)


def main() -> None:
    import argparse

    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="concurrency.json", help="file name under benchmarks/results/")
    args = ap.parse_args()
    from gradio_client import Client

    from dts_app.ui.handlers import AppHandlers, input_values
    from dts_app.ui.layout import build_demo

    handlers = AppHandlers()
    demo = build_demo(handlers, umap_warmup=False)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    load_before = os.getloadavg()  # other processes on the machine (the digits numbers depend on it)
    try:
        clients = [Client(url, verbose=False) for _ in range(SESSIONS)]
        asks = [input_values(seed=i, eta=1.0 + 0.05 * i) for i in range(SESSIONS)]
        clients[0].predict(*asks[0], api_name="/release_eta")  # warm: backend, verifiers, plotly

        def one(ci: int) -> tuple[float, float, str]:
            t0 = time.perf_counter()
            out = clients[ci].predict(*asks[ci], api_name="/release_eta")
            return (time.perf_counter() - t0) * 1000, server_ms(out[0]), out[0]

        t0 = time.perf_counter()
        seq = [one(i) for i in range(SESSIONS)]
        seq_wall = time.perf_counter() - t0
        with ThreadPoolExecutor(SESSIONS) as ex:
            t0 = time.perf_counter()
            con = list(ex.map(one, range(SESSIONS)))
            con_wall = time.perf_counter() - t0
        same = [SERVER_MS.sub("", a[2]) == SERVER_MS.sub("", b[2]) for a, b in zip(seq, con)]

        from dts_app.backends.registry import BACKENDS
        from dts_app.ui.state import SessionState

        demo_g = BACKENDS["digits"].demo.get("guidance", 1.0)
        digits = {}
        for key, g in (("digits", 2.0), ("digits_app_default", demo_g)):
            dig = input_values(backend="digits", preset=None, target="3: digit 3", verifier="supervised", heldout="oracle",
                               n=8, steps=32, guidance=g)  # fmt: skip
            c = clients[0]
            c.predict(*dig, api_name="/release_n")  # warm: load the digits model and classifiers
            d_server, d_round = [], []
            for seed in range(10):
                t0 = time.perf_counter()
                out = c.predict(*input_values(**{**dict(zip(_names(), dig)), "seed": seed}), api_name="/release_n")
                d_round.append((time.perf_counter() - t0) * 1000)
                d_server.append(server_ms(out[0]))
            # the same request in-process: wall and CPU time of the handler's thread (on an idle
            # core the two agree; under other load the wall time grows, the CPU time does not)
            d_wall, d_cpu = [], []
            for seed in range(5):
                vals = input_values(**{**dict(zip(_names(), dig)), "seed": seed})
                w0, c0 = time.perf_counter(), time.thread_time()
                handlers.run(SessionState(), *vals)
                d_cpu.append((time.thread_time() - c0) * 1000)
                d_wall.append((time.perf_counter() - w0) * 1000)
            forwards = 8 * (2 if g not in (0.0, 1.0) else 1)
            digits[key] = {
                "request": f"best-of-8, 32 Euler steps, guidance {g:g} ({forwards} image-forwards per step), class 3, /release_n",
                "repeats": len(d_server),
                "server_ms": {"median": pct(d_server, 0.5), "p90": pct(d_server, 0.9), "max": max(d_server)},
                "round_trip_ms": {"median": pct(d_round, 0.5), "p90": pct(d_round, 0.9)},
                "in_process_wall_ms": {"median": pct(d_wall, 0.5)},
                "in_process_cpu_ms": {"median": pct(d_cpu, 0.5)},
                "goal_server_ms": 1000,
                "mean_server_ms": round(statistics.mean(d_server), 1),
            }
    finally:
        demo.close()

    result = {
        "benchmark": "concurrency: 20 gmm sessions sequential vs concurrent; digits best-of-8 × 32 steps",
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "limits": {"mode": handlers.limits.mode, "concurrency": handlers.limits.concurrency},
        "torch_threads_per_request": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "gmm": {
            "request": "trap defaults: best-of-8, 32 Euler steps, /release_eta, one session each",
            "sessions": SESSIONS,
            "sequential_wall_s": round(seq_wall, 2),
            "concurrent_wall_s": round(con_wall, 2),
            "concurrent_over_sequential": round(con_wall / seq_wall, 3),
            "goal": "≤ 1.5",
            "sequential_round_trip_ms": {"median": pct([s[0] for s in seq], 0.5), "p90": pct([s[0] for s in seq], 0.9)},
            "concurrent_round_trip_ms": {"median": pct([s[0] for s in con], 0.5), "p90": pct([s[0] for s in con], 0.9)},
            "sequential_server_ms": {"median": pct([s[1] for s in seq], 0.5), "p90": pct([s[1] for s in seq], 0.9)},
            "concurrent_server_ms": {"median": pct([s[1] for s in con], 0.5), "p90": pct([s[1] for s in con], 0.9)},
            "answers_identical": all(same),
        },
        **digits,
    }
    path = Path(__file__).resolve().parent / "results" / args.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


def _names() -> tuple[str, ...]:
    from dts_app.ui.inputs import INPUTS

    return INPUTS


if __name__ == "__main__":
    main()
