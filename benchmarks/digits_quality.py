"""Quality bars of the shipped digits model (writes benchmarks/results/digits_quality.json):

1. per-class recognition by the held-out (oracle) classifier without search (32 steps);
2. Fréchet distance (oracle-MLP features) of 500 samples vs the held-out real digits,
   beside 500 real train digits (the floor) and per-class mean images plus noise;
3. best-of-8 with the supervised verifier vs plain sampling: held-out mean log-prob.

    python benchmarks/digits_quality.py [--n-per-class 50] [--guidance 2.0]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample_class(backend, k: int, n: int, steps: int, guidance: float, seed: int) -> torch.Tensor:
    from dts_app.search import Engine, Problem

    p = Problem(backend, backend.condition(k, guidance), None, steps=steps, seed=seed, trace_scores=False)
    eng = Engine(p)
    eng.trace.store_x0 = False
    beam = eng.start([(i,) for i in range(n)])
    for beam in eng.solve(beam):
        pass
    return eng.clean(beam)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-per-class", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "digits_quality.json"))
    args = ap.parse_args()

    from dts_app.backends.digits import DigitsBackend
    from dts_app.config import SearchConfig
    from dts_app.search import run_search
    from dts_app.search.problem import build_problem
    from dts_app.search.registry import make_algorithm
    from dts_app.verifiers.digits import frechet_distance, inception_score

    t0 = time.time()
    b = DigitsBackend()
    oracle = b.classifier("oracle")
    split = b.split()
    per_class, samples = {}, []
    for k in range(10):
        x = sample_class(b, k, args.n_per_class, args.steps, args.guidance, seed=k)
        samples.append(x)
        with torch.no_grad():
            per_class[k] = float((oracle(x.clamp(-1, 1)).argmax(1) == k).float().mean())
    gen = torch.cat(samples).clamp(-1, 1)
    g = torch.Generator().manual_seed(0)
    real_train = split.x_train[torch.randperm(len(split.x_train), generator=g)[:500]]
    means = torch.stack([split.x_train[split.y_train == k].mean(0) for k in range(10)])
    labels = torch.arange(10).repeat_interleave(50)
    baseline = (means[labels] + 0.3 * torch.randn(500, 1, 8, 8, generator=g)).clamp(-1, 1)
    fd = {
        "generated_500": frechet_distance(gen, split.x_heldout, oracle),
        "real_train_500": frechet_distance(real_train, split.x_heldout, oracle),
        "class_means_plus_noise_500": frechet_distance(baseline, split.x_heldout, oracle),
    }
    is_ = {"generated": inception_score(gen, oracle), "real_heldout": inception_score(split.x_heldout, oracle)}
    # best-of-8 (supervised verifier) vs plain sampling, held-out oracle log-prob, same seeds
    plain, bo8 = [], []
    for k in range(10):
        for seed in range(3):
            cfg = SearchConfig(backend="digits", preset=None, target=k, condition=True, guidance=args.guidance,
                               verifier="supervised", heldout="oracle", steps=args.steps, seed=seed)  # fmt: skip
            p = build_problem(cfg, backend=b)
            p.trace_scores = False
            plain.append(run_search(p, make_algorithm("best-of-n", cfg, n=1)).heldout_score)
            bo8.append(run_search(p, make_algorithm("best-of-n", cfg, n=8)).heldout_score)
    out = {
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads",
        "steps": args.steps,
        "guidance": args.guidance,
        "n_per_class": args.n_per_class,
        "recognition_per_class": per_class,
        "recognition_mean": sum(per_class.values()) / 10,
        "frechet_distance": fd,
        "inception_score": is_,
        "heldout_logprob_plain_mean": sum(plain) / len(plain),
        "heldout_logprob_best_of_8_mean": sum(bo8) / len(bo8),
        "seconds": round(time.time() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
