"""The embedded digits backend: a class-conditional flow-matching ``UNet2DModel`` trained
by ``python -m dts_app train-digits`` on scikit-learn's 8×8 digits, shipped in
``assets/digits`` (diffusers directory + safetensors), loaded with ``from_pretrained``
like any diffusers model. The network predicts the velocity ``ε − x0`` of the linear
interpolant directly (timestep input ``t·1000``), so no conversion is needed.

Conditioning: a class 0–9; classifier-free guidance with the null label 10, both halves
in one forward (2 NFEs per image when the guidance scale ≠ 1). Latents are 1×8×8 in
[−1, 1]; ``decode`` maps them to images in [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..interpolant import as_time
from .base import Backend, Condition, Target

__all__ = ["DigitsBackend", "DEFAULT_DIR", "load_digits_backend"]

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "assets" / "digits"
NULL_CLASS = 10
TIME_SCALE = 1000.0
DEFAULT_GUIDANCE = 2.0


class DigitsBackend(Backend):
    name = "digits"
    data_kind = "image"
    latent_shape = (1, 8, 8)
    supports_guidance = True
    cheap_scores = True  # 8×8 classifiers: scoring every node for the UI costs little

    def __init__(self, model: str | Path | None = None):
        from diffusers import UNet2DModel

        self.model_dir = Path(model) if model else DEFAULT_DIR
        unet_dir = self.model_dir / "unet"
        if not (unet_dir / "config.json").exists():
            from ..config import ConfigError

            raise ConfigError("--model: no digits model there (run `python -m dts_app train-digits --out DIR`)")
        self.unet = UNet2DModel.from_pretrained(unet_dir, use_safetensors=True, low_cpu_mem_usage=False).eval()
        self._classifiers: dict[str, torch.nn.Module] = {}
        self._split = None

    # --- conditioning ---------------------------------------------------------------
    def targets(self) -> list[Target]:
        return [Target(k, f"digit {k}") for k in range(10)]

    def default_target(self) -> int:
        return 3

    def condition(self, target: Any = None, guidance: float = DEFAULT_GUIDANCE) -> Condition:
        if target is None:
            return Condition(None, 1.0, "unconditional")
        k = int(target)
        if not 0 <= k <= 9:
            raise ValueError(f"--class: {k} is outside [0, 9]")
        return Condition(k, float(guidance), f"digit {k}, guidance {guidance:g}")

    @torch.no_grad()
    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        b = x.shape[0]
        ts = as_time(t, x).reshape(b) * TIME_SCALE
        if cond.value is None:
            labels = torch.full((b,), NULL_CLASS, dtype=torch.long)
            return self.unet(x, ts, class_labels=labels).sample
        labels = torch.full((b,), int(cond.value), dtype=torch.long)
        if cond.guidance == 1.0:
            return self.unet(x, ts, class_labels=labels).sample
        if cond.guidance == 0.0:  # v_u + 0·(v_c − v_u): the unconditional velocity, one forward
            return self.unet(x, ts, class_labels=torch.full_like(labels, NULL_CLASS)).sample
        both = self.unet(
            torch.cat([x, x]), torch.cat([ts, ts]), class_labels=torch.cat([labels, torch.full_like(labels, NULL_CLASS)])
        ).sample
        v_c, v_u = both[:b], both[b:]
        return v_u + cond.guidance * (v_c - v_u)

    def forwards_per_call(self, cond: Condition) -> int:
        return 2 if (cond.value is not None and cond.guidance not in (0.0, 1.0)) else 1

    def decode(self, x0: Tensor) -> Tensor:
        """Images ``[B, 1, 8, 8]`` in [0, 1]."""
        return ((x0 + 1.0) / 2.0).clamp(0.0, 1.0)

    # --- shipped classifiers and data -----------------------------------------------
    def classifier(self, which: str) -> torch.nn.Module:
        """``"supervised"`` (CNN) or ``"oracle"`` (MLP), loaded once per backend."""
        if which not in self._classifiers:
            from ..digits.classifiers import load_classifier

            self._classifiers[which] = load_classifier(self.model_dir / f"classifier_{which}")
        return self._classifiers[which]

    def split(self):
        if self._split is None:
            from ..digits.data import load_split

            self._split = load_split()
        return self._split

    def obstacle_points(self, kind: str, value: Any) -> Tensor:
        """``class:K``: the train-split images of digit K (``[P, 1, 8, 8]``, model space)."""
        if kind != "class":
            return super().obstacle_points(kind, value)
        k = int(value)
        if not 0 <= k <= 9:
            raise ValueError(f"--obstacle: class {k} is outside [0, 9]")
        s = self.split()
        return s.x_train[s.y_train == k]

    def describe(self) -> dict:
        return {"name": self.name, "model": str(self.model_dir), "latent_shape": list(self.latent_shape),
                "guidance_default": DEFAULT_GUIDANCE, "parameters": sum(p.numel() for p in self.unet.parameters())}  # fmt: skip


def load_digits_backend(model: str | None = None) -> DigitsBackend:
    return DigitsBackend(model)
