"""Real-model benchmark: the engine against diffusers' own DiT pipeline, side by side.

Run: ``python -m dts_app bench real_models [--device cpu|cuda] [--full]`` (or run this file).

One run measures, on the same randomly initialised DiT (+VAE, DDIM scheduler) loaded from
a pipeline directory through the backend's ``from_pretrained`` path:

- naive best-of-16: 16 separate ``DiTPipeline`` calls (one label each);
- one ``DiTPipeline`` call with 16 labels;
- the engine's best-of-16 with the same steps and CFG (+ VAE decode and a CLIP verifier);
- the engine's search over paths, tree search (batch N and batch 1) and SMC at the same
  NFE budget, each interleaved with best-of-N (image-NFE/s ratios);
- image-NFEs per second of the backend's velocity at several batch sizes, eager and
  ``torch.compile``-d, with model FLOP utilisation from ``torch.utils.flop_counter``;
- the share of the engine's time spent in the verifier (and in decoding), and the cost of
  the trace's per-node x̂0 storage.

The default is a small DiT on CPU (``--steps 50``, CFG 4.0); ``--full`` uses the DiT-XL/2
configuration (256×256, latent 4×32×32; fp16 on CUDA). Weights are random: timings and
ratios are meaningful, images are not. JSON goes to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

SMALL = dict(sample_size=16, layers=4, heads=4, head_dim=32, patch_size=2, vae_channels=(32, 32))
FULL = dict(sample_size=32, layers=28, heads=16, head_dim=72, patch_size=2, vae_channels=(128, 256, 512, 512))
GPU_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "T4": 65e12}
LABEL = 207


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    """``(seconds, result)`` of ``fn()`` with the device synchronised around it."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def cpu_peak() -> tuple[float, str]:
    """Assumed fp32 peak of this CPU: cores × 2.0 GHz × FLOP/cycle (AVX-512: 64, AVX2: 32)."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    per_cycle = 64 if "avx512f" in flags else 32 if "avx2" in flags else 8
    cores = os.cpu_count() or 1
    return cores * 2.0e9 * per_cycle, f"{cores} cores × 2.0 GHz (assumed) × {per_cycle} fp32 FLOP/cycle"


def device_peak(device: torch.device, override: float | None) -> tuple[float, str]:
    if override:
        return override * 1e12, "given with --peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for k, v in GPU_PEAKS.items():
            if k in name:
                return v, f"{name}: dense fp16/bf16 peak {v / 1e12:.0f} TFLOP/s"
        return float("nan"), f"{name}: unknown peak (pass --peak-tflops)"
    return cpu_peak()


def build(tmp: Path, full: bool, device: str, dtype: str | None):
    from dts_app.backends.dit import load_dit
    from dts_app.testing import save_random_clip, save_random_dit

    save_random_dit(tmp / "dit", **(FULL if full else SMALL))
    save_random_clip(str(tmp / "clip"))
    return load_dit(str(tmp / "dit"), device=device, dtype=dtype, verifier_model=f"clip={tmp / 'clip'}")


def engine_config(backend, algorithm: str, args, **extra):
    from dts_app.config import SearchConfig

    return SearchConfig(
        backend="dit", preset=None, model=backend.model_id, verifier_model=backend.verifier_model, target=LABEL,
        condition=True, guidance=args.guidance, algorithm=algorithm, verifier="clip", heldout=None, n=args.n,
        steps=args.steps, solver="euler", seed=0, **extra,
    )  # fmt: skip


class Clock:
    """Accumulates the time spent inside wrapped callables (instance attributes only)."""

    def __init__(self, device: torch.device):
        self.device, self.total = device, {}

    def wrap(self, obj, attr: str, name: str):
        fn = getattr(obj, attr)

        def inner(*a, **k):
            dt, out = timed(lambda: fn(*a, **k), self.device)
            self.total[name] = self.total.get(name, 0.0) + dt
            return out

        setattr(obj, attr, inner)
        return lambda: delattr(obj, attr)


def run_engine(backend, algorithm: str, args, budget: int | None = None, **extra) -> dict:
    from dts_app.search import run_search
    from dts_app.search.problem import build_problem
    from dts_app.search.registry import make_algorithm

    cfg = engine_config(backend, algorithm, args, **extra)
    problem = build_problem(cfg, backend=backend)
    algo = make_algorithm(algorithm, cfg)
    if budget is not None:
        algo = algo.fit_budget(problem, budget)
    clock = Clock(backend.device)
    undo = [clock.wrap(problem.verifier, "score", "verifier"), clock.wrap(backend, "decode", "decode")]
    try:
        dt, res = timed(lambda: run_search(problem, algo, budget), backend.device)
    finally:
        for u in undo:
            u()
    nfe = res.ledger.denoiser_nfe
    return {
        "seconds": dt,
        "nfe": nfe,
        "image_nfe_per_s": nfe / dt,
        "verifier_s": clock.total.get("verifier", 0.0),
        "decode_s": clock.total.get("decode", 0.0),
        "verifier_share": clock.total.get("verifier", 0.0) / dt,
        "trace_nodes": len(res.tree.nodes),
        "message": res.message,
    }


def throughput(
    backend, batches: list[int], peak: float, seconds: float, compiled: bool, compile_budget: float, flops: dict | None = None
) -> list[dict]:
    """Image-NFEs per second of the backend's velocity (no CFG) per batch size; ``flops``
    (per image, by batch) from an eager pass gives the compiled rows their MFU."""
    from torch.utils.flop_counter import FlopCounterMode

    cond = backend.condition(LABEL, 1.0)  # 1 image-forward per image
    eager = backend._forward
    rows = []
    spent = 0.0
    if compiled:
        backend._forward = torch.compile(backend.transformer, dynamic=False)
    try:
        for b in batches:
            x = torch.randn(b, *backend.latent_shape, device=backend.device)
            row = {"batch": b, "mode": "compiled" if compiled else "eager"}
            if compiled and spent > compile_budget:
                row["skipped"] = f"compile budget of {compile_budget:.0f} s spent ({spent:.0f} s)"
                rows.append(row)
                continue
            first, _ = timed(lambda x=x: backend.velocity(x, 0.5, cond), backend.device)
            spent += first
            row["first_call_s"] = first
            reps, total = 0, 0.0
            while total < seconds or reps < 2:
                dt, _ = timed(lambda x=x: backend.velocity(x, 0.5, cond), backend.device)
                reps, total = reps + 1, total + dt
            row["image_nfe_per_s"] = b * reps / total
            if not compiled:
                with FlopCounterMode(display=False) as fc:
                    backend.velocity(x, 0.5, cond)
                row["flops_per_image"] = fc.get_total_flops() / b
            rows.append(row)
    finally:
        backend._forward = eager
    flops = flops or {r["batch"]: r.get("flops_per_image") for r in rows if r.get("flops_per_image")}
    for r in rows:
        if "image_nfe_per_s" in r and r["batch"] in flops:
            r["flops_per_image"] = flops[r["batch"]]
            r["mfu"] = r["image_nfe_per_s"] * flops[r["batch"]] / peak
    return rows


def trace_cost(backend, steps: int, n: int) -> dict:
    """Seconds the trace spends storing x̂0 for ``n`` rows × ``steps`` steps: as now (one
    Python list per row, one transfer per batch) and with a 4×-pooled batch copy (a proposal for large latents)."""
    from dts_app.trace import Trace

    x0 = torch.randn(n, *backend.latent_shape, device=backend.device)
    keys = [(i,) for i in range(n)]
    tr = Trace(store_x0=True)
    now, _ = timed(lambda: [tr.add_batch([None] * n, 0, 0.5, keys, x0) for _ in range(steps)], backend.device)

    def proposed():
        for _ in range(steps):
            small = torch.nn.functional.avg_pool2d(x0, 4) if x0.shape[-1] >= 16 else x0
            small.flatten(1).float().cpu().tolist()

    prop, _ = timed(proposed, backend.device)
    return {"floats_per_node": int(x0[0].numel()), "stored": tr.nodes[0].x0 is not None, "current_s": now, "proposed_downsampled_s": prop}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available).")
    p.add_argument("--dtype", default=None, help="Model dtype (default float32 on CPU, bf16/fp16 on CUDA).")
    p.add_argument("--full", action="store_true", help="DiT-XL/2 configuration (256×256, latent 4×32×32).")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--repeats", type=int, default=3, help="Interleaved repeats of the pipeline-vs-engine pair.")
    p.add_argument("--batches", default=None, help="Comma-separated batch sizes (default 1,4,16,64; +256 on CUDA).")
    p.add_argument("--seconds", type=float, default=1.0, help="Timing window per throughput point.")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--compile-budget", type=float, default=150.0, help="Stop compiling new shapes after this many seconds.")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own).")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/real_models_<device>.json).")
    args = p.parse_args(argv)

    from diffusers import DiTPipeline

    from dts_app.backends.hf import pick_device
    from dts_app.search.registry import ALGORITHMS

    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    elif device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    batches = [int(b) for b in args.batches.split(",")] if args.batches else [1, 4, 16, 64] + ([256] if device.type == "cuda" else [])
    peak, peak_note = device_peak(device, args.peak_tflops)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        backend = build(Path(tmp), args.full, str(device), args.dtype)
        pipe = DiTPipeline(transformer=backend.transformer, vae=backend.vae, scheduler=backend.scheduler)
        pipe.set_progress_bar_config(disable=True)
        kw = dict(guidance_scale=args.guidance, num_inference_steps=args.steps, output_type="pt")

        def batched():
            return pipe([LABEL] * args.n, generator=torch.Generator(device).manual_seed(0), **kw)

        def naive():
            return [pipe([LABEL], generator=torch.Generator(device).manual_seed(i), **kw) for i in range(args.n)]

        timed(lambda: pipe([LABEL], **{**kw, "num_inference_steps": 2}), device)  # warm-up
        pairs = []
        for _ in range(args.repeats):
            tb, _ = timed(batched, device)
            eng = run_engine(backend, "best-of-n", args)
            pairs.append({"pipeline_batched_s": tb, "engine_best_of_n": eng, "ratio": eng["seconds"] / tb})
        out = {
            "machine": {
                "device": str(device),
                "name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()} container, {os.cpu_count()} CPU cores",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "peak_flops": peak,
                "peak_note": peak_note,
            },
            "config": {
                "model": "DiT-XL/2 config (random weights)" if args.full else f"small DiT config (random weights) {SMALL}",
                "latent_shape": list(backend.latent_shape),
                "dtype": str(backend.model_dtype).replace("torch.", ""),
                "steps": args.steps, "n": args.n, "guidance": args.guidance, "label": LABEL,
                "engine": "best-of-n, euler on the uniform linear grid, CLIP (tiny random) verifier + VAE decode of the 16 finals",
                "pipeline": "DiTPipeline with the same transformer/VAE/DDIM scheduler, output_type='pt'",
            },  # fmt: skip
            "pairs": pairs,
            "ratio_engine_vs_batched_pipeline": statistics.median(p["ratio"] for p in pairs),
        }
        if not args.skip_naive:
            tn, _ = timed(naive, device)
            out["naive_16_calls_s"] = tn
            out["ratio_naive_vs_batched_pipeline"] = tn / statistics.median(p["pipeline_batched_s"] for p in pairs)
        nfe = pairs[0]["engine_best_of_n"]["nfe"]
        # search algorithms against best-of-N at the same NFE budget, interleaved side by side
        contenders = {"paths": ("paths", {}), "tree": ("tree", {"batch": args.n}), "tree_batch1": ("tree", {"batch": 1}),
                      "smc": ("smc", {"sde_gamma": 1.0}),
                      # Fk-Diffusion-Steering scores and resamples at intervals; every 5 of 50 steps here
                      "smc_every5": ("smc", {"sde_gamma": 1.0, "resample_every": 5})}  # fmt: skip
        for key, (algo, extra) in contenders.items():
            if algo not in ALGORITHMS:
                out[key] = {"available": False, "note": f"{algo!r} is not in search.registry.ALGORITHMS"}
                continue
            rows = []
            for _ in range(args.repeats):
                bon = run_engine(backend, "best-of-n", args)
                run = run_engine(backend, algo, args, budget=nfe, **extra)
                rows.append({"best_of_n": bon, key: run, "throughput_ratio": run["image_nfe_per_s"] / bon["image_nfe_per_s"]})
            out[key] = {"budget_nfe": nfe, "settings": extra, "runs": rows,
                        "throughput_ratio": statistics.median(r["throughput_ratio"] for r in rows)}  # fmt: skip
        out["throughput"] = throughput(backend, batches, peak, args.seconds, False, 0.0)
        if args.no_compile:
            out["throughput_compiled"] = [{"skipped": "--no-compile"}]
        else:
            try:
                flops = {r["batch"]: r["flops_per_image"] for r in out["throughput"] if "flops_per_image" in r}
                out["throughput_compiled"] = throughput(backend, batches, peak, args.seconds, True, args.compile_budget, flops)
            except Exception as e:
                out["throughput_compiled"] = [{"skipped": f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"}]
        out["trace_x0_storage"] = trace_cost(backend, args.steps, args.n)
    out["wall_s"] = time.perf_counter() - t_start
    path = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"real_models_{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(summary(out))
    print(f"wrote {path}")
    return 0


def summary(out: dict) -> str:
    """A markdown table of the key figures."""
    lines = ["| measure | value |", "|---|---|"]
    med = statistics.median
    pairs = out["pairs"]
    lines.append(f"| one DiTPipeline call, {out['config']['n']} labels (s) | {med(p['pipeline_batched_s'] for p in pairs):.2f} |")
    lines.append(f"| engine best-of-{out['config']['n']} (s) | {med(p['engine_best_of_n']['seconds'] for p in pairs):.2f} |")
    lines.append(f"| engine / batched pipeline (goal ≤ 1.1) | {out['ratio_engine_vs_batched_pipeline']:.3f} |")
    if "naive_16_calls_s" in out:
        lines.append(f"| naive: {out['config']['n']} separate calls (s) | {out['naive_16_calls_s']:.2f} |")
        lines.append(f"| naive / batched pipeline | {out['ratio_naive_vs_batched_pipeline']:.2f} |")
    v = med(p["engine_best_of_n"]["verifier_share"] for p in pairs)
    lines.append(f"| verifier share of engine time | {100 * v:.1f}% |")
    for key, label in (("paths", "paths"), ("tree", f"tree, batch {out['config']['n']}"), ("tree_batch1", "tree, batch 1"),
                       ("smc", "smc, scored every step"), ("smc_every5", "smc, scored every 5 steps")):  # fmt: skip
        r = out.get(key, {})
        lines.append(f"| {label} / best-of-n throughput (goal ≥ 0.85) | {r['throughput_ratio']:.3f} |" if "throughput_ratio" in r
                     else f"| {label} | {r.get('note', 'not measured')} |")  # fmt: skip
    for r in out["throughput"] + out["throughput_compiled"]:
        if "image_nfe_per_s" in r:
            mfu = f", MFU {100 * r['mfu']:.1f}%" if "mfu" in r else ""
            lines.append(f"| image-NFE/s, batch {r['batch']}, {r['mode']} | {r['image_nfe_per_s']:.1f}{mfu} |")
        elif "batch" in r:
            lines.append(f"| batch {r['batch']}, {r['mode']} | skipped: {r['skipped']} |")
        else:
            lines.append(f"| compiled | skipped: {r['skipped']} |")
    tc = out["trace_x0_storage"]
    lines.append(f"| trace x̂0 storage, {tc['floats_per_node']} floats/node: now / 4×-pooled copy (s) | {tc['current_s']:.3f} / {tc['proposed_downsampled_s']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
