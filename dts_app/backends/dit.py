"""Class-conditional DiT (diffusers ``DiTTransformer2DModel`` + ``AutoencoderKL``) in the
linear-interpolant convention of :mod:`dts_app.interpolant`.

DiT is a VP ε-prediction model (learned-σ channels are dropped); the exact VP → linear
conversion is :class:`~dts_app.backends.vp.VPTable` (DESIGN §3), shared with the SD-UNet
family of :mod:`dts_app.backends.t2i`. Device/dtype choice, the VAE and decoding are
:class:`~dts_app.backends.latent.LatentBackend`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .base import Condition, Target
from .hf import HFLoadError, is_local, load_pretrained
from .latent import LatentBackend
from .vp import VPTable, cfg_combine

__all__ = ["DiTBackend", "load_dit"]


def _read_json(source: str, name: str) -> dict:
    p = Path(source).expanduser() / name
    if is_local(source) and p.is_file():
        return json.loads(p.read_text())
    return {}


class DiTBackend(LatentBackend):
    """A diffusers DiT pipeline directory (``transformer/``, ``vae/``, ``scheduler/``).

    Args:
        model: hub id or local directory.
        device: ``cpu``/``cuda``...; default CUDA when available.
        dtype: model weights' dtype; default float32 on CPU, bf16/fp16 on CUDA. States,
            velocities and the ODE stay float32.
        compile: ``torch.compile`` mode for the transformer (``reduce-overhead`` = CUDA graphs).
        verifier_model: CLIP/DINOv2 source(s) for the verifiers (``clip=DIR,dino=DIR`` or one).
        max_decode: images per VAE decode call.
    """

    name = "dit"

    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: str | None = None,
        compile: str | None = None,
        verifier_model: str | None = None,
        max_decode: int = 16,
    ):
        from diffusers import AutoencoderKL, DDIMScheduler, DiTTransformer2DModel

        self._setup(model, device, dtype, verifier_model, max_decode)
        transformer = load_pretrained(DiTTransformer2DModel, model, "transformer", dtype=self.model_dtype)
        vae = load_pretrained(AutoencoderKL, model, "vae", dtype=self.model_dtype)
        scheduler = load_pretrained(DDIMScheduler, model, "scheduler")
        self._build(transformer, vae, scheduler, _read_json(model, "model_index.json").get("id2label") or {}, compile)

    @classmethod
    def from_pipeline(
        cls,
        pipe: Any,
        device: str | None = None,
        dtype: str | None = None,
        compile: str | None = None,
        verifier_model: str | None = None,
        max_decode: int = 16,
    ) -> DiTBackend:
        """The backend of a loaded ``DiTPipeline`` object (its transformer, VAE, scheduler's
        ᾱ table and class labels), computing exactly what loading its directory would."""
        self = cls.__new__(cls)
        self._setup(f"<{type(pipe).__name__}>", device, dtype, verifier_model, max_decode)
        id2label: dict = {}
        for name, k in (getattr(pipe, "labels", None) or {}).items():  # DiTPipeline.labels: name -> id
            id2label.setdefault(int(k), name)
        self._build(pipe.transformer, pipe.vae, pipe.scheduler, id2label, compile)
        return self

    def _build(self, transformer, vae, scheduler, id2label: dict, compile: str | None) -> None:
        self.transformer, self.scheduler = transformer, scheduler
        self._set_net(self.transformer, compile)
        self._set_vae(vae)  # DiT's VAE takes no shift factor
        self.vp = VPTable(self.scheduler.alphas_cumprod, self.device)
        cfg = self.transformer.config
        self.channels = int(cfg.in_channels)
        self.learned_sigma = int(cfg.out_channels) == 2 * self.channels
        self.latent_shape = (self.channels, int(cfg.sample_size), int(cfg.sample_size))
        self.num_classes = int(cfg.num_embeds_ada_norm)
        self.null_class = self.num_classes
        self.labels = {int(k): str(v).split(",")[0].strip() for k, v in id2label.items()}

    # --- conditioning ---------------------------------------------------------------
    def label(self, k: int) -> str:
        return self.labels.get(int(k), f"class {int(k)}")

    def targets(self) -> list[Target]:
        return [Target(k, f"{k}: {self.label(k)}") for k in range(self.num_classes)]

    def default_target(self) -> int:
        return 207 if self.num_classes > 207 else 0

    def condition(self, target: Any = None, guidance: float = 1.0) -> Condition:
        if target is None:
            return Condition(self.null_class, 1.0, "unconditional")
        k = int(target)
        if not 0 <= k < self.num_classes:
            raise ValueError(f"--class: {k} is outside [0, {self.num_classes - 1}]")
        return Condition(k, float(guidance), self.label(k))

    def forwards_per_call(self, cond: Condition) -> int:
        return 2 if cond.guidance != 1.0 and cond.value != self.null_class else 1

    # --- the denoiser ---------------------------------------------------------------
    def eps(self, x_vp: Tensor, tau: Tensor, cond: Condition) -> Tensor:
        """Guided ε̂ ``[B, C, H, W]`` (float32) at VP states ``x_vp`` and timesteps ``tau`` [B]."""
        n = x_vp.shape[0]
        guided = self.forwards_per_call(cond) == 2
        labels = torch.full((n,), int(cond.value), device=self.device, dtype=torch.long)
        xin, tin = x_vp.to(self.model_dtype), tau
        if guided:
            xin, tin = torch.cat([xin, xin]), torch.cat([tau, tau])
            labels = torch.cat([labels, torch.full_like(labels, self.null_class)])
        out = self._forward(xin, timestep=tin, class_labels=labels, return_dict=False)[0]
        out = out[:, : self.channels].float()
        if guided:
            out = cfg_combine(out[:n], out[n:], cond.guidance)
        return out

    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        x_vp, tau, a, b = self.vp.to_vp(x, t)
        eps = self.eps(x_vp, tau, cond)
        x0 = self.vp.x0_from_output(x_vp, eps, a, b, "epsilon")
        return self.vp.velocity(x, x0, t)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "model": self.model_id,
            "latent_shape": list(self.latent_shape),
            **self._runtime(),
            "num_classes": self.num_classes,
            "t_range": [self.vp.t_min, self.vp.t_max],
        }


def load_dit(model: str | None = None, **options) -> DiTBackend:
    """Registry loader: ``--backend dit --model <hub id or dir>``."""
    if not model:
        raise HFLoadError("the dit backend needs --model (a hub id such as facebook/DiT-XL-2-256 or a local directory)")
    return DiTBackend(model, **options)
