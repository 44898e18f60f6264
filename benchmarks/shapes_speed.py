"""Is the shapes backend Space-ready? Best-of-8 × 32 steps within 1.5 s of server time on 2 cores (issue 26).

One request as the app makes it: ``best-of-n``, N = 8, 32 Euler steps, guidance 2 (two
image-forwards per step: 512 NFEs), the CNN as search verifier and the exact checker held
out, through the one run pipeline (``RunRequest.from_config`` + ``runner.run``) with the
shipped model loaded once (the server's warm state); then the gallery's pass/fail badges
(:func:`dts_app.viz.gallery.image_gallery` with the prompt: the checker on every image).

Side by side in one process, each setting ``--repeats`` times after a warm-up run: torch
threads 1 and 2; the app's default of scoring every trace node for the views
(``trace_scores``, the backend's ``cheap_scores``) against none; the CNN against the
checker as the search verifier. Each row: median, min and max seconds of the search and
of search + badges, and the ledger (NFEs, verifier calls). The machine, torch and the load
average before and after (other processes share the cores) are recorded.

    .venv/bin/python benchmarks/shapes_speed.py [--repeats 5] [--out benchmarks/results/shapes_speed.json]
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

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dts_app.config import SearchConfig  # noqa: E402
from dts_app.search import backend_for  # noqa: E402
from dts_app.search.runner import RunRequest, run  # noqa: E402
from dts_app.viz.gallery import image_gallery  # noqa: E402

GOAL_S = 1.5
PROMPT = "two red circles"


def machine() -> str:
    model = ""
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} {model or platform.processor()}, {os.cpu_count()} cores, torch {torch.__version__}"


def one(cfg: SearchConfig, cache: dict, trace_scores: bool) -> dict:
    """One request: the search, then the gallery with badges; seconds and the ledger."""
    t0 = time.perf_counter()
    request = RunRequest.from_config(cfg, backend=backend_for(cfg, cache), trace_scores=trace_scores)
    problem = request.problem
    res = run(request)
    t1 = time.perf_counter()
    images = res.images if res.images is not None else problem.backend.decode(torch.stack([c.x0 for c in res.candidates]))
    rows = image_gallery(
        [(img, c.score, c.heldout_score, c.node_id) for img, c in zip(images.numpy(), res.candidates)],
        res.best_node,
        prompt=cfg.prompt,
    )
    t2 = time.perf_counter()
    led = res.ledger
    return {
        "search_s": t1 - t0,
        "with_badges_s": t2 - t0,
        "nfe": int(led.denoiser_nfe),
        "verifier_calls": int(led.verifier_calls),
        "passes": sum(cap.split(" · ")[0].lstrip("★ ").startswith("✓") for _, cap in rows),
    }


def row(threads: int, verifier: str, trace_scores: bool, repeats: int, cache: dict) -> dict:
    torch.set_num_threads(threads)
    cfg = SearchConfig(backend="shapes", preset=None, prompt=PROMPT, guidance=2.0, n=8, steps=32, verifier=verifier,
                       heldout="oracle" if verifier != "oracle" else "supervised", algorithm="best-of-n", seed=0)  # fmt: skip
    one(cfg, cache, trace_scores)  # warm-up (traced model, first calls)
    runs = [one(cfg, cache, trace_scores) for _ in range(repeats)]
    s = [r["search_s"] for r in runs]
    b = [r["with_badges_s"] for r in runs]
    out = {"threads": threads, "verifier": verifier, "trace_scores": trace_scores, "repeats": repeats}
    out |= {"search_median_s": round(statistics.median(s), 3), "search_min_s": round(min(s), 3), "search_max_s": round(max(s), 3)}
    out |= {"with_badges_median_s": round(statistics.median(b), 3), "with_badges_max_s": round(max(b), 3)}
    out |= {k: runs[0][k] for k in ("nfe", "verifier_calls", "passes")}
    out["within_goal"] = out["with_badges_median_s"] <= GOAL_S
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shapes_speed.json"))
    args = ap.parse_args()
    cache: dict = {}
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = [
        row(threads, verifier, trace, args.repeats, cache)
        for threads in (1, 2)
        for verifier, trace in (("supervised", True), ("supervised", False), ("oracle", True))
    ]
    app = [r for r in rows if r["verifier"] == "supervised" and r["trace_scores"]]
    result = {
        "goal": f"best-of-8 × 32 steps (guidance 2, {PROMPT!r}) with gallery badges within {GOAL_S} s of server time",
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
        "app_default_within_goal": {str(r["threads"]): r["within_goal"] for r in app},
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
