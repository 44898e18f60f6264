"""Class-conditional DiT (diffusers ``DiTTransformer2DModel`` + ``AutoencoderKL``) in the
linear-interpolant convention of :mod:`dts_app.interpolant`.

VP → linear conversion (DESIGN §3), done once here and reused by the SD-UNet family of
:mod:`dts_app.backends.t2i`. For a state ``x_t`` at linear time ``t``::

    r = sqrt((1 − t)² + t²),  a = (1 − t)/r = sqrt(ᾱ),  b = t/r = sqrt(1 − ᾱ)
    x_vp = (a + b)·x_t = x_t / r                      (the VP state with that ᾱ)
    τ    = the model timestep whose ᾱ_τ = a²         (from the scheduler's ᾱ table)
    ε̂    = model(x_vp, τ)  (learned-σ channels dropped; CFG applied to ε̂)
    x̂0   = (x_vp − b·ε̂)/a,   v = (x_t − x̂0)/t  (= ε̂ − x̂0 for t inside the table)

The timestep τ is *continuous*: ``−log ᾱ`` is interpolated linearly between the table's
neighbouring integer timesteps (exact at table entries). Beyond the table's last ᾱ (t
closer to 1 than the model was trained on, e.g. the grid's first point t = 1) the model is
evaluated at its last timestep ``T − 1`` with ``(a, b)`` of that timestep, and ``x̂0`` is
turned into the velocity at the true ``t`` through ``v = (x_t − x̂0)/t``, so
``x̂0 = x_t − t·v`` holds exactly everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..interpolant import as_time, vp_to_linear
from .base import Backend, Condition, Target
from .hf import HFLoadError, is_local, load_pretrained, maybe_compile, pick_device, pick_dtype

__all__ = ["VPTable", "timestep_from_alpha_bar", "DiTBackend", "load_dit", "save_random_dit"]


def timestep_from_alpha_bar(alpha_bar: Tensor, table: Tensor) -> Tensor:
    """Continuous model timestep τ with ``ᾱ_τ = alpha_bar`` from a decreasing ᾱ table.

    ``−log ᾱ`` is interpolated linearly between integer timesteps; values outside the table
    clamp to ``[0, T − 1]``.

    Args:
        alpha_bar: target ᾱ values, any shape.
        table: ``alphas_cumprod`` ``[T]``, strictly decreasing.

    Returns:
        τ of ``alpha_bar``'s shape, float, in ``[0, T − 1]``.
    """
    ell = -torch.log(table.to(alpha_bar.dtype))
    target = -torch.log(alpha_bar.clamp_min(1e-30))
    i = torch.searchsorted(ell, target.reshape(-1).contiguous()).clamp(1, len(ell) - 1)
    lo, hi = ell[i - 1], ell[i]
    tau = (i - 1).to(alpha_bar.dtype) + (target.reshape(-1) - lo) / (hi - lo)
    return tau.clamp(0, len(ell) - 1).reshape(alpha_bar.shape)


class VPTable:
    """A VP model's ᾱ table and the exact state/prediction conversions to the linear path.

    Args:
        alphas_cumprod: the scheduler's ``alphas_cumprod`` ``[T]``.
        device: where the conversions run (the model's device).
    """

    def __init__(self, alphas_cumprod: Tensor, device: torch.device):
        self.table = alphas_cumprod.to(device=device, dtype=torch.float64)
        self.t_max = float(vp_to_linear(self.table[-1]))
        self.t_min = float(vp_to_linear(self.table[0]))

    def to_vp(self, x_t: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(x_vp, τ [B], a, b)`` for linear states ``x_t`` ``[B, ...]`` at time ``t``.

        ``a``, ``b`` broadcast against ``x_t``; ``t`` is clamped to the table's range.
        """
        tb = as_time(t, x_t).clamp(self.t_min, self.t_max)
        r = torch.sqrt((1 - tb) ** 2 + tb**2)
        a, b = (1 - tb) / r, tb / r
        tau = timestep_from_alpha_bar((a.reshape(-1).double()) ** 2, self.table).to(x_t.dtype)
        return x_t / r, tau, a, b

    @staticmethod
    def x0_from_output(x_vp: Tensor, out: Tensor, a: Tensor, b: Tensor, prediction_type: str) -> Tensor:
        """Clean prediction from a VP model output (``epsilon`` or ``v_prediction``).

        ε: ``x̂0 = (x_vp − b·ε̂)/a``; v (Salimans & Ho, ``v = a·ε − b·x0``): ``x̂0 = a·x_vp − b·v̂``.
        """
        if prediction_type == "epsilon":
            return (x_vp - b * out) / a
        if prediction_type == "v_prediction":
            return a * x_vp - b * out
        raise HFLoadError(f"unsupported prediction_type {prediction_type!r} (epsilon, v_prediction)")

    @staticmethod
    def velocity(x_t: Tensor, x0: Tensor, t: float | Tensor) -> Tensor:
        """``v = (x_t − x̂0)/t`` at the true time ``t`` (so ``x̂0 = x_t − t·v`` exactly)."""
        return (x_t - x0) / as_time(t, x_t)


def _read_json(source: str, name: str) -> dict:
    p = Path(source).expanduser() / name
    if is_local(source) and p.is_file():
        return json.loads(p.read_text())
    return {}


def _cfg(out_c: Tensor, out_u: Tensor, guidance: float) -> Tensor:
    """Classifier-free guidance ``u + w·(c − u)``."""
    return out_u + guidance * (out_c - out_u)


class DiTBackend(Backend):
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
    data_kind = "image"
    supports_guidance = True
    has_decoder = True

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

        self.model_id = model
        self.device = pick_device(device)
        self.model_dtype = pick_dtype(dtype, self.device)
        self.dtype = torch.float32
        self.transformer = load_pretrained(DiTTransformer2DModel, model, "transformer", dtype=self.model_dtype)
        self.vae = load_pretrained(AutoencoderKL, model, "vae", dtype=self.model_dtype)
        self.scheduler = load_pretrained(DDIMScheduler, model, "scheduler")
        self.transformer.to(self.device).eval().requires_grad_(False)
        self.vae.to(self.device).eval().requires_grad_(False)
        self._forward = maybe_compile(self.transformer, compile)
        self.compile = compile
        self.vp = VPTable(self.scheduler.alphas_cumprod, self.device)
        cfg = self.transformer.config
        self.channels = int(cfg.in_channels)
        self.learned_sigma = int(cfg.out_channels) == 2 * self.channels
        self.latent_shape = (self.channels, int(cfg.sample_size), int(cfg.sample_size))
        self.num_classes = int(cfg.num_embeds_ada_norm)
        self.null_class = self.num_classes
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.verifier_model = verifier_model
        self.max_decode = max_decode
        labels = _read_json(model, "model_index.json").get("id2label") or {}
        self.labels = {int(k): str(v).split(",")[0].strip() for k, v in labels.items()}
        self.hf_cache: dict[Any, Any] = {}

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
            out = _cfg(out[:n], out[n:], cond.guidance)
        return out

    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        x_vp, tau, a, b = self.vp.to_vp(x, t)
        eps = self.eps(x_vp, tau, cond)
        x0 = self.vp.x0_from_output(x_vp, eps, a, b, "epsilon")
        return self.vp.velocity(x, x0, t)

    @torch.no_grad()
    def velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        return self._velocity(x.to(self.device, torch.float32), t, cond)

    @torch.no_grad()
    def decode(self, x0: Tensor) -> Tensor:
        """VAE-decode clean latents ``[B, C, h, w]`` to images ``[B, 3, H, W]`` in [0, 1]."""
        outs = []
        for i in range(0, x0.shape[0], self.max_decode):
            z = (x0[i : i + self.max_decode] / self.scaling_factor).to(self.device, self.model_dtype)
            outs.append(self.vae.decode(z, return_dict=False)[0].float())
        return ((torch.cat(outs) + 1) / 2).clamp(0, 1)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "model": self.model_id,
            "latent_shape": list(self.latent_shape),
            "device": str(self.device),
            "dtype": str(self.model_dtype).replace("torch.", ""),
            "compile": self.compile,
            "num_classes": self.num_classes,
            "t_range": [self.vp.t_min, self.vp.t_max],
        }


def load_dit(model: str | None = None, **options) -> DiTBackend:
    """Registry loader: ``--backend dit --model <hub id or dir>``."""
    if not model:
        raise HFLoadError("the dit backend needs --model (a hub id such as facebook/DiT-XL-2-256 or a local directory)")
    return DiTBackend(model, **options)


def save_random_dit(
    path: str | Path,
    sample_size: int = 8,
    channels: int = 4,
    layers: int = 2,
    heads: int = 2,
    head_dim: int = 16,
    patch_size: int = 2,
    num_classes: int = 1000,
    vae_channels: tuple[int, ...] = (8, 8),
    seed: int = 0,
) -> Path:
    """Write a randomly initialised DiT pipeline directory (safetensors) for tests and CPU
    benchmarks: ``transformer/``, ``vae/``, ``scheduler/`` and ``model_index.json``.

    ``DiT-XL/2`` is ``sample_size=32, layers=28, heads=16, head_dim=72`` with the
    ``(128, 256, 512, 512)`` VAE.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, DiTTransformer2DModel

    path = Path(path)
    torch.manual_seed(seed)
    DiTTransformer2DModel(
        num_attention_heads=heads, attention_head_dim=head_dim, in_channels=channels, out_channels=2 * channels,
        num_layers=layers, sample_size=sample_size, patch_size=patch_size, num_embeds_ada_norm=num_classes,
    ).save_pretrained(path / "transformer", safe_serialization=True)  # fmt: skip
    n = len(vae_channels)
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=channels, block_out_channels=vae_channels,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        norm_num_groups=min(vae_channels[0], 32), layers_per_block=1,
    ).save_pretrained(path / "vae", safe_serialization=True)  # fmt: skip
    DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False).save_pretrained(path / "scheduler")
    index = {
        "_class_name": "DiTPipeline",
        "transformer": ["diffusers", "DiTTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "id2label": {str(k): f"class{k}" for k in range(num_classes)},
    }
    (path / "model_index.json").write_text(json.dumps(index))
    return path
