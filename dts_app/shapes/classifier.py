"""The shapes world's CNN attribute/count classifier (the hackable ``supervised`` verifier).

From an image ``[B, 3, 32, 32]`` in model space [−1, 1] it predicts, for each of the 12
(shape, colour) pairs and for each of the 3 shapes whatever their colour, the number of
such objects (0–4, a 5-way softmax) and the mean centre of those objects (regression in
[−1, 1]², trained only where there are some). A prompt's score is the log-probability the
classifier gives its groups' counts (exact or at least, as the checker reads them) plus,
for a position prompt, ``log σ(offset / 0.1)`` of the predicted centres along the
relation's axis. Trained on renders (prompted scenes and random ones, with pixel noise),
so it knows clean renders and can be fooled off them: the point of a supervised verifier.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .prompts import PromptSpec, generate, random_scene
from .scene import COLOURS, SHAPES, SIZE, Scene, render

__all__ = ["ShapesCNN", "scene_targets", "prompt_log_prob", "train_classifier", "N_HEADS"]

N_PAIRS = len(SHAPES) * len(COLOURS)
N_HEADS = N_PAIRS + len(SHAPES)  # (shape, colour) pairs, then shapes of any colour
MAX_COUNT = 4
FLATTEN = 8  # index of the body's Flatten: the layers before it keep the image's layout
_AXIS = {"left of": (0, 1.0), "right of": (0, -1.0), "above": (1, 1.0), "below": (1, -1.0)}


def head_index(shape: str, colour: str | None) -> int:
    s = SHAPES.index(shape)
    return N_PAIRS + s if colour is None else s * len(COLOURS) + COLOURS.index(colour)


class ShapesCNN(nn.Module):
    """``forward(x) → (count logits [B, 15, 5], centres [B, 15, 2])``; ``features(x)`` the
    penultimate ``[B, 128]`` (the self-supervised verifier's space); ``feature_map(x)`` the
    last convolution's ``[B, 64, 8, 8]`` (the concept obstacles' space)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.config = {"width": width}
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(5, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1, stride=2), nn.SiLU(),  # 16×16
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1, stride=2), nn.SiLU(),  # 8×8
            nn.Flatten(), nn.Linear(2 * w * 64, 128), nn.SiLU(),
        )  # fmt: skip
        self.counts = nn.Linear(128, N_HEADS * (MAX_COUNT + 1))
        self.centres = nn.Linear(128, N_HEADS * 2)

    def feature_map(self, x: Tensor) -> Tensor:
        """The last convolution's map ``[B, 2·width, 8, 8]`` (before the flatten): each cell
        sees a 13-pixel window, 4 pixels apart (the concept obstacles' space)."""
        return self.body[:FLATTEN](torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1))

    def features(self, x: Tensor) -> Tensor:
        return self.body[FLATTEN:](self.feature_map(x))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return self.counts(f).view(-1, N_HEADS, MAX_COUNT + 1), torch.tanh(self.centres(f)).view(-1, N_HEADS, 2)


def scene_targets(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts [15] int, centres [15, 2] in [−1, 1], has [15] bool)`` of a scene."""
    counts = np.zeros(N_HEADS, dtype=np.int64)
    sums = np.zeros((N_HEADS, 2), dtype=np.float32)
    for o in scene.objects:
        cx, cy = o.centre
        c = np.array([cx, cy], dtype=np.float32) / SIZE * 2 - 1
        for h in (head_index(o.shape, o.colour), head_index(o.shape, None)):
            counts[h] += 1
            sums[h] += c
    has = counts > 0
    centres = np.where(has[:, None], sums / np.maximum(counts, 1)[:, None], 0.0).astype(np.float32)
    return np.minimum(counts, MAX_COUNT), centres, has


def prompt_log_prob(logits: Tensor, centres: Tensor, spec: PromptSpec) -> Tensor:
    """The classifier's log-probability ``[B]`` (float64) that images satisfy ``spec``."""
    logp = torch.log_softmax(logits.double(), dim=2)
    total = torch.zeros(logits.shape[0], dtype=torch.float64)
    for g in spec.groups:
        lp = logp[:, head_index(g.shape, g.colour)]
        total = total + (lp[:, g.count] if g.exact else torch.logsumexp(lp[:, g.count :], dim=1))
    if spec.relation is not None:
        axis, sign = _AXIS[spec.relation]
        a, b = (centres[:, head_index(g.shape, g.colour), axis].double() for g in spec.groups)
        total = total + nn.functional.logsigmoid(sign * (b - a) / 0.1)
    return total


def _batch(rng: np.random.Generator, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    scenes = [generate(rng)[2] if rng.random() < 0.5 else random_scene(rng) for _ in range(n)]
    x = torch.from_numpy(np.stack([render(s) for s in scenes])) * 2 - 1
    c, m, h = zip(*(scene_targets(s) for s in scenes))
    return x, torch.from_numpy(np.stack(c)), torch.from_numpy(np.stack(m)), torch.from_numpy(np.stack(h))


def train_classifier(steps: int, seed: int, batch: int = 64, width: int = 32, log=None) -> tuple[ShapesCNN, dict]:
    """Adam on count cross-entropy + masked centre MSE, renders with pixel noise of a random
    σ in [0, 0.15] (model space). Returns the model and held-out accuracies on fresh renders."""
    torch.manual_seed(seed)
    model = ShapesCNN(width)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.05)
    for step in range(steps):
        x, counts, centres, has = _batch(rng, batch)
        x = x + torch.rand(batch, 1, 1, 1, generator=g) * 0.15 * torch.randn(x.shape, generator=g)
        logits, pred = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, MAX_COUNT + 1), counts.reshape(-1))
        loss = loss + (((pred - centres) ** 2).sum(-1) * has).sum() / has.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step + 1) % max(steps // 5, 1) == 0:
            log(f"  classifier step {step + 1}/{steps} loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        x, counts, centres, has = _batch(np.random.default_rng(seed + 10_000), 512)
        logits, pred = model(x)
        exact = float((logits.argmax(2) == counts).all(1).float().mean())
        per_head = float((logits.argmax(2) == counts).float().mean())
        err = float((((pred - centres) ** 2).sum(-1).sqrt() * has).sum() / has.sum()) * SIZE / 2
    return model, {"all_counts_right": exact, "count_accuracy": per_head, "centre_error_px": err}
