"""Train the embedded digits model: a class-conditional flow-matching ``UNet2DModel`` in
the linear-interpolant convention, plus the two classifiers.

Flow matching: ``x_t = (1 − t)·x0 + t·ε`` with t from a logit-normal law (more weight in
the middle, as in SD3) and the target ``v = ε − x0``; the UNet gets ``t·1000`` as its
timestep and the class (10 = the null label, used for 10% of the batch so one network
gives both halves of classifier-free guidance). The split is fixed (see ``data.py``); all
randomness comes from one seed. Saved as a diffusers directory (``save_pretrained``,
safetensors) that loads with ``UNet2DModel.from_pretrained(dir)``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .classifiers import ConvClassifier, MLPClassifier, save_classifier, train_classifier
from .data import load_split

__all__ = ["unet_config", "train_digits", "NULL_CLASS", "TIME_SCALE"]

NULL_CLASS = 10
TIME_SCALE = 1000.0


def unet_config(tiny: bool = False) -> dict:
    """The UNet2DModel config (``tiny``: a much smaller one for tests)."""
    return dict(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(16, 32) if tiny else (32, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        num_class_embeds=11,
        attention_head_dim=16 if tiny else 32,
    )


def train_digits(
    out: str | Path,
    steps: int = 3000,
    classifier_steps: int = 1500,
    batch: int = 128,
    seed: int = 0,
    tiny: bool = False,
    log=print,
) -> dict:
    """Train and save the model and classifiers into ``out``; returns a summary dict."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    out = Path(out)
    data = load_split()
    x, y = data.x_train, data.y_train
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()

    model = UNet2DModel(**unet_config(tiny))
    n_params = sum(p.numel() for p in model.parameters())
    log(f"digits: {len(x)} train / {len(data.x_heldout)} held-out images; UNet {n_params / 1e6:.2f}M parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    model.train()
    ema = 0.0
    for step in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        x0, labels = x[idx], y[idx].clone()
        labels[torch.rand(batch, generator=g) < 0.1] = NULL_CLASS
        t = torch.sigmoid(torch.randn(batch, generator=g))
        eps = torch.randn(x0.shape, generator=g)
        tb = t.view(-1, 1, 1, 1)
        x_t = (1 - tb) * x0 + tb * eps
        pred = model(x_t, t * TIME_SCALE, class_labels=labels).sample
        loss = torch.nn.functional.mse_loss(pred, eps - x0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        ema = loss.item() if step == 0 else 0.98 * ema + 0.02 * loss.item()
        if (step + 1) % max(steps // 20, 1) == 0 or step == steps - 1:
            log(f"  step {step + 1}/{steps}  loss {ema:.4f}  {time.time() - t0:.0f}s")
    model.eval()
    (out / "unet").mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / "unet", safe_serialization=True)

    conv = train_classifier(ConvClassifier(), x, y, classifier_steps, seed + 1, log)
    mlp = train_classifier(MLPClassifier(), x, y, classifier_steps, seed + 2, log)
    save_classifier(conv, out / "classifier_supervised")
    save_classifier(mlp, out / "classifier_oracle")
    accs = {}
    with torch.no_grad():
        for name, m in (("supervised", conv), ("oracle", mlp)):
            accs[name] = float((m(data.x_heldout).argmax(1) == data.y_heldout).float().mean())
    summary = {
        "seed": seed,
        "steps": steps,
        "classifier_steps": classifier_steps,
        "batch": batch,
        "tiny": tiny,
        "unet_parameters": n_params,
        "final_loss_ema": ema,
        "heldout_accuracy": accs,
        "seconds": round(time.time() - t0, 1),
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2))
    log(f"digits: saved to {out} in {summary['seconds']}s; held-out accuracy {accs}")
    return summary
