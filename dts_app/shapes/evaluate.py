"""The base model's pass rate per category, and best-of-N by the checker or the CNN.

Per category, ``prompts`` seeded prompts (``generate_batch(5000 + k)``), 8 candidates each
by batched Euler sampling (:func:`~dts_app.shapes.train.euler_sample`, ``steps``,
``guidance``); *one sample* is candidate 0; *best-of-N* picks among candidates 0..N−1 (the
same candidates for every N) by the exact checker (``oracle``: any that passes) or by the
CNN (``supervised``: its highest log-probability). Each cell is the checker's pass rate and
its standard error over the prompts::

    python -m dts_app.shapes.evaluate assets/shapes 32
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from .checker import check
from .classifier import ShapesCNN, prompt_log_prob
from .model import load_model
from .prompts import CATEGORIES, generate_batch, tokens
from .train import euler_sample

__all__ = ["pass_rates"]

CANDIDATES = 8


def pass_rates(
    model_dir: str | Path, prompts: int = 32, guidance: float = 2.0, steps: int = 32, categories=CATEGORIES, log=None
) -> dict:
    """``{category: {"plain" | "oracle@N" | "supervised@N": [rate, s.e.], "plain_graded": mean score}}``."""
    model_dir = Path(model_dir)
    model, cnn = load_model(model_dir / "model"), load_model(model_dir / "classifier", ShapesCNN)
    out = {}
    for cat in categories:
        k = CATEGORIES.index(cat)
        draws = generate_batch(5000 + k, prompts, cat)
        toks = torch.tensor([tokens(spec) for _, spec, _ in draws for _ in range(CANDIDATES)], dtype=torch.long)
        images = euler_sample(model, toks, steps, guidance, 100 + k)
        rows: dict[str, list] = {"plain": [], **{f"{v}@{n}": [] for v in ("oracle", "supervised") for n in (4, 8)}}
        graded = []
        for i, (_, spec, _) in enumerate(draws):
            x = images[CANDIDATES * i : CANDIDATES * (i + 1)]
            results = [check(im, spec) for im in x]
            ok = np.array([r.passed for r in results])
            with torch.no_grad():
                sup = prompt_log_prob(*cnn(x * 2 - 1), spec).numpy()
            rows["plain"].append(ok[0])
            graded.append(results[0].score)
            for n in (4, 8):
                rows[f"oracle@{n}"].append(ok[:n].any())
                rows[f"supervised@{n}"].append(ok[int(np.argmax(sup[:n]))])
        out[cat] = {key: [float(np.mean(v)), float(np.std(v) / np.sqrt(len(v)))] for key, v in rows.items()}
        out[cat]["plain_graded"] = float(np.mean(graded))
        if log:
            log(f"{cat}: {out[cat]}")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    result = pass_rates(args[0] if args else Path(__file__).resolve().parents[2] / "assets" / "shapes",
                        int(args[1]) if len(args) > 1 else 32, float(args[2]) if len(args) > 2 else 2.0, log=print)  # fmt: skip
    print(json.dumps(result))
