"""Train the shapes world's flow model and CNN classifier from the seeded generator.

Flow matching in the app's convention: ``x_t = (1 − t)·x0 + t·ε``, t logit-normal, target
``v = ε − x0``; each batch row is a fresh (prompt, scene) draw of
:func:`~dts_app.shapes.prompts.generate` rendered to [−1, 1], and 10% of the rows get the
null prompt (classifier-free guidance). All randomness comes from ``seed`` (a NumPy
generator for the scenes, a torch generator for t, ε and the dropout), so a retrain
reproduces the model. Writes ``model.safetensors/json``, ``classifier.safetensors/json``
and ``training.json`` (the settings, time, losses, the classifier's accuracy and the base
model's checker pass rate per category).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from .checker import check
from .classifier import train_classifier
from .model import ShapesFlowNet, save_model
from .prompts import CATEGORIES, NULL_TOKENS, generate, generate_batch, tokens
from .scene import render

__all__ = ["train_shapes", "retrain_classifier", "flow_batch", "euler_sample", "digests"]


def flow_batch(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0 [n, 3, 32, 32] in [−1, 1], tokens [n, 7])`` from ``n`` generator draws."""
    draws = [generate(rng) for _ in range(n)]
    x = torch.from_numpy(np.stack([render(s) for _, _, s in draws])) * 2 - 1
    return x, torch.tensor([tokens(spec) for _, spec, _ in draws], dtype=torch.long)


@torch.no_grad()
def euler_sample(model, toks: torch.Tensor, steps: int, guidance: float, seed: int) -> torch.Tensor:
    """Plain Euler sampling from t = 1 to 0 with classifier-free guidance (evaluation only;
    the backend samples through the engine). Returns images ``[n, 3, 32, 32]`` in [0, 1]."""
    n = toks.shape[0]
    x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    null = torch.tensor([NULL_TOKENS] * n, dtype=torch.long)
    ts = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        t = torch.full((n,), float(ts[i]))
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([toks, null]))
        v = both[n:] + guidance * (both[:n] - both[n:])
        x = x + (ts[i + 1] - ts[i]) * v
    return ((x + 1) / 2).clamp(0, 1)


def base_pass_rates(model, per_category: int, seed: int, steps: int = 32, guidance: float = 2.0) -> dict:
    """The checker's pass rate of plain samples, per category (prompts from ``seed``)."""
    out = {}
    for k, cat in enumerate(CATEGORIES):
        draws = generate_batch(seed + k, per_category, cat)
        toks = torch.tensor([tokens(spec) for _, spec, _ in draws], dtype=torch.long)
        imgs = euler_sample(model, toks, steps, guidance, seed + k)
        out[cat] = float(np.mean([check(img, spec).passed for img, (_, spec, _) in zip(imgs, draws)]))
    return out


def digests(out: str | Path) -> dict:
    """sha256 of the shipped weight files in ``out`` (a retrain with the recorded command
    and threads reproduces them byte for byte)."""
    out = Path(out)
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(out.glob("*.safetensors"))}


def machine() -> dict:
    """Where a training run ran: CPU model, core count, torch threads and the load average."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None}  # fmt: skip


def train_shapes(
    out: str | Path,
    steps: int = 3000,
    classifier_steps: int = 2000,
    batch: int = 64,
    seed: int = 0,
    width: int = 48,
    eval_per_category: int = 8,
    log=print,
) -> dict:
    """Train and save the flow model and the classifier into ``out``; returns the summary."""
    out = Path(out)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    at_start = machine()
    model = ShapesFlowNet(width=width)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"shapes: flow model {n_params / 1e6:.2f}M parameters, {steps} steps of batch {batch}")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    model.train()
    ema, history = 0.0, []
    for step in range(steps):
        x0, toks = flow_batch(rng, batch)
        toks[torch.rand(batch, generator=g) < 0.1] = 0  # the null prompt
        t = torch.sigmoid(torch.randn(batch, generator=g))
        eps = torch.randn(x0.shape, generator=g)
        tb = t.view(-1, 1, 1, 1)
        loss = torch.nn.functional.mse_loss(model((1 - tb) * x0 + tb * eps, t, toks), eps - x0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        ema = loss.item() if step == 0 else 0.98 * ema + 0.02 * loss.item()
        if (step + 1) % max(steps // 20, 1) == 0 or step == steps - 1:
            history.append([step + 1, round(ema, 5), round(time.time() - t0, 1), machine()["load_average"]])
            log(f"  step {step + 1}/{steps}  loss {ema:.4f}  {time.time() - t0:.0f}s  load {history[-1][3]}")
    model.eval()
    flow_seconds = time.time() - t0
    save_model(model, out / "model")
    classifier_t0 = time.time()
    cnn, accuracy = train_classifier(classifier_steps, seed + 1, log=log)
    save_model(cnn, out / "classifier")
    classifier_seconds = time.time() - classifier_t0
    rates = base_pass_rates(model, eval_per_category, seed + 20_000) if eval_per_category else {}
    summary = {
        "command": f"python -m dts_app train-shapes --out {out} --steps {steps} --classifier-steps {classifier_steps} "
        f"--batch {batch} --width {width} --seed {seed} --threads {torch.get_num_threads()} --eval {eval_per_category}",
        "seed": seed,
        "steps": steps,
        "classifier_steps": classifier_steps,
        "batch": batch,
        "width": width,
        "parameters": n_params,
        "final_loss_ema": ema,
        "loss_history": history,  # [step, loss (EMA), seconds, load average]
        "flow_seconds": round(flow_seconds, 1),
        "classifier_seconds": round(classifier_seconds, 1),
        "classifier_heldout": accuracy,
        "base_pass_rate": {"per_category": rates, "samples_per_category": eval_per_category, "steps": 32, "guidance": 2.0},
        "threads": torch.get_num_threads(),
        "seconds": round(time.time() - t0, 1),
        "machine": at_start,
        "load_average_at_end": machine()["load_average"],
        "sha256": digests(out),
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2))
    log(f"shapes: saved to {out} in {summary['seconds']}s; classifier {accuracy}; base pass rate {rates}")
    return summary


def retrain_classifier(out: str | Path, classifier_steps: int = 2000, seed: int = 0, log=print) -> dict:
    """Retrain only the CNN classifier into ``out`` (seeded by ``seed + 1`` as in
    :func:`train_shapes`, so the result equals that run's classifier with the same steps)
    and update ``training.json``; returns the updated summary."""
    out = Path(out)
    record = out / "training.json"
    summary = json.loads(record.read_text()) if record.exists() else {"seed": seed}
    if summary.get("seed", seed) != seed:
        raise ValueError(f"--seed {seed} differs from the seed {summary['seed']} of the model in {out}")
    at_start = machine()
    t0 = time.time()
    cnn, accuracy = train_classifier(classifier_steps, seed + 1, log=log)
    save_model(cnn, out / "classifier")
    summary.update(classifier_steps=classifier_steps, classifier_heldout=accuracy, classifier_seconds=round(time.time() - t0, 1),
                   classifier_machine={**at_start, "load_average_at_end": machine()["load_average"]}, sha256=digests(out))  # fmt: skip
    record.write_text(json.dumps(summary, indent=2))
    log(f"shapes: classifier saved to {out} in {summary['classifier_seconds']}s; {accuracy}")
    return summary
