"""Two different digit classifiers (shipped as safetensors + JSON config):

- :class:`ConvClassifier` (the *supervised* search verifier): a small CNN;
- :class:`MLPClassifier` (the *oracle* / held-out verifier): a two-layer MLP with another
  seed and architecture, so the held-out score is an independent judge; it is also the
  feature extractor of the Fréchet distance and Inception-Score analogues.

Both are trained on the train split only; the held-out split measures them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["ConvClassifier", "MLPClassifier", "CLASSIFIERS", "train_classifier", "save_classifier", "load_classifier"]


class ConvClassifier(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.config = {"kind": "conv", "width": width}
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.SiLU(),  # 4×4
            nn.Flatten(), nn.Linear(width * 16, 128), nn.SiLU(),
        )  # fmt: skip
        self.head = nn.Linear(128, 10)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``[B, 128]`` of images ``[B, 1, 8, 8]`` in [−1, 1]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLPClassifier(nn.Module):
    def __init__(self, hidden: int = 256):
        super().__init__()
        self.config = {"kind": "mlp", "hidden": hidden}
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 64), nn.ReLU())
        self.head = nn.Linear(64, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


CLASSIFIERS = {"conv": ConvClassifier, "mlp": MLPClassifier}


def train_classifier(model: nn.Module, x: Tensor, y: Tensor, steps: int, seed: int, log=None) -> nn.Module:
    """Adam on cross-entropy with light noise augmentation (so the classifier also copes
    with the slightly noisy samples a generator makes)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for step in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        xb = x[idx] + 0.1 * torch.randn(x[idx].shape, generator=g)
        loss = nn.functional.cross_entropy(model(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and (step + 1) % max(steps // 4, 1) == 0:
            log(f"  {model.config['kind']} classifier step {step + 1}/{steps} loss {loss.item():.4f}")
    return model.eval()


def save_classifier(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps(model.config))


def load_classifier(path: Path) -> nn.Module:
    from safetensors.torch import load_file

    path = Path(path)
    cfg = json.loads(path.with_suffix(".json").read_text())
    kind = cfg.pop("kind")
    model = CLASSIFIERS[kind](**cfg)
    model.load_state_dict(load_file(str(path.with_suffix(".safetensors"))))
    return model.eval()
