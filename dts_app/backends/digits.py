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

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..interpolant import as_time
from .base import Backend, Condition, Target

__all__ = ["DigitsBackend", "DEFAULT_DIR", "load_digits_backend"]

log = logging.getLogger("dts_app.backends")

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
        self.unet.requires_grad_(False)
        self._net = fast_forward(self.unet, self.latent_shape)
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
        net = self._net
        if cond.value is None:
            return net(x, ts, torch.full((b,), NULL_CLASS, dtype=torch.long))
        labels = torch.full((b,), int(cond.value), dtype=torch.long)
        if cond.guidance == 1.0:
            return net(x, ts, labels)
        if cond.guidance == 0.0:  # v_u + 0·(v_c − v_u): the unconditional velocity, one forward
            return net(x, ts, torch.full_like(labels, NULL_CLASS))
        both = net(torch.cat([x, x]), torch.cat([ts, ts]), torch.cat([labels, torch.full_like(labels, NULL_CLASS)]))
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


class _Forward(torch.nn.Module):
    """``(x, t·1000, labels) → velocity``: the UNet's forward with positional tensors only."""

    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, ts: Tensor, labels: Tensor) -> Tensor:
        return self.unet(x, ts, class_labels=labels).sample


def fast_forward(unet: torch.nn.Module, latent_shape: tuple[int, ...]) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """The UNet's forward, traced with TorchScript when that is exact.

    On 8×8 inputs about a third of an eager call is Python: module dispatch and diffusers'
    per-call scan of the parameters for their dtype. A trace runs the same kernels without
    it (32 calls at batch 8 on one thread: 0.79 s eager, 0.51 s traced, measured on this
    project's 2-core machine). The trace is taken on a probe batch and kept only if it
    equals the eager forward exactly on a second batch of another size (any other model,
    ``--model DIR``, falls back the same way); ``DTS_DIGITS_TRACE=0`` turns it off.
    """
    forward = _Forward(unet).eval()
    if os.environ.get("DTS_DIGITS_TRACE", "1") == "0":
        return forward
    g = torch.Generator().manual_seed(0)

    def probe(b: int) -> tuple[Tensor, Tensor, Tensor]:
        labels = torch.arange(b) % (NULL_CLASS + 1)
        return torch.randn(b, *latent_shape, generator=g), torch.rand(b, generator=g) * TIME_SCALE, labels

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings on diffusers' shape asserts
            traced = torch.jit.trace(forward, probe(3), check_trace=False)
            check = probe(5)
            if torch.equal(traced(*check), forward(*check)):
                return traced
        log.info("digits: the traced UNet differs from the eager one; using the eager forward")
    except Exception as e:  # an architecture the tracer cannot follow: eager is always right
        log.info("digits: tracing the UNet failed (%s); using the eager forward", e)
    return forward
