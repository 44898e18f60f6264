"""Text-to-image backends in the linear-interpolant convention.

Two diffusers families through one class, chosen by what the pipeline directory holds:

- ``sd3`` (flow matching, ``SD3Transformer2DModel`` + ``FlowMatchEulerDiscreteScheduler``):
  the scheduler's ``σ`` *is* our ``t`` (``x = (1 − σ)·x0 + σ·ε``) and the transformer
  predicts ``v = ε − x0`` (the scheduler steps ``x ← x + (σ_next − σ)·v``), so the
  velocity is the model output at timestep ``1000·t``; no conversion. The scheduler's
  ``shift`` is reported in :meth:`T2IBackend.describe`; pass it as ``--shift``.
- ``sd-unet`` (Stable Diffusion 1.5/2, ``UNet2DConditionModel`` with a DDPM-type
  scheduler, ``epsilon`` or ``v_prediction``): VP, converted exactly as DiT
  (:class:`~dts_app.backends.vp.VPTable`).

The prompt is encoded once per condition (once per search) with the pipeline's own
``encode_prompt`` and reused by every candidate; classifier-free guidance uses the empty
prompt, batched with the conditional half in one forward. Device/dtype choice, the VAE and
decoding are :class:`~dts_app.backends.latent.LatentBackend`'s; ``concept`` obstacles live
in the CLIP space of :mod:`dts_app.backends.clip_model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..interpolant import as_time
from .base import Condition, Target
from .clip_model import clip_for
from .hf import HFLoadError, is_local, load_pretrained, offline
from .latent import LatentBackend
from .vp import VPTable, cfg_combine

__all__ = ["PromptEmbeds", "T2IBackend", "load_t2i"]


@dataclass(frozen=True)
class PromptEmbeds:
    """Encoded prompt (``[1, L, D]``) and, for CFG, the empty prompt; pooled for SD3."""

    prompt: str
    embeds: Tensor
    null_embeds: Tensor
    pooled: Tensor | None = None
    null_pooled: Tensor | None = None

    def __hash__(self) -> int:
        return hash(self.prompt)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PromptEmbeds) and other.prompt == self.prompt


def _expand(e: Tensor | None, n: int) -> Tensor | None:
    return None if e is None else e.expand(n, *e.shape[1:])


def _model_index(source: str) -> dict:
    """The pipeline's ``model_index.json`` (components set to ``[null, null]`` are absent)."""
    from diffusers import DiffusionPipeline

    try:
        return dict(DiffusionPipeline.load_config(source, local_files_only=is_local(source) or offline()))
    except (OSError, ValueError) as e:
        raise HFLoadError(f"cannot read model_index.json of {source!r}: {str(e).splitlines()[0]}") from None


class T2IBackend(LatentBackend):
    """A text-to-image pipeline directory (SD3-style flow transformer or SD-style UNet).

    Args:
        model: hub id or local directory of the pipeline.
        prompt: the default prompt (the target when ``--class`` is not given).
        device, dtype, compile, verifier_model: as :class:`~dts_app.backends.dit.DiTBackend`.
        max_decode: images per VAE decode call.
    """

    name = "t2i"

    def __init__(
        self,
        model: str,
        prompt: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        compile: str | None = None,
        verifier_model: str | None = None,
        max_decode: int = 8,
    ):
        from diffusers import DiffusionPipeline

        self._setup(model, device, dtype, verifier_model, max_decode)
        self.prompt = prompt or ""
        index = _model_index(model)
        absent = {k: None for k, v in index.items() if isinstance(v, list) and v and v[0] is None}
        if "safety_checker" in index:
            absent.update(safety_checker=None, requires_safety_checker=False)
        pipe = load_pretrained(DiffusionPipeline, model, dtype=self.model_dtype, **absent)
        self._build(pipe, compile)

    @classmethod
    def from_pipeline(
        cls,
        pipe: Any,
        prompt: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        compile: str | None = None,
        verifier_model: str | None = None,
        max_decode: int = 8,
    ) -> T2IBackend:
        """The backend of a loaded SD3-style or SD-UNet pipeline object, computing exactly
        what loading its directory would."""
        self = cls.__new__(cls)
        self._setup(f"<{type(pipe).__name__}>", device, dtype, verifier_model, max_decode)
        self.prompt = prompt or ""
        self._build(pipe, compile)
        return self

    def _build(self, pipe: Any, compile: str | None) -> None:
        model = self.model_id
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        if hasattr(pipe, "transformer") and type(pipe.transformer).__name__ == "SD3Transformer2DModel":
            self.family, net = "sd3", pipe.transformer
            self.vp = None
            self.prediction_type = "flow"
        elif hasattr(pipe, "unet") and type(pipe.unet).__name__ == "UNet2DConditionModel":
            self.family, net = "sd-unet", pipe.unet
            self.vp = VPTable(pipe.scheduler.alphas_cumprod, self.device)
            self.prediction_type = str(pipe.scheduler.config.get("prediction_type", "epsilon"))
        else:
            raise HFLoadError(f"{model!r}: unsupported pipeline {type(pipe).__name__} (need SD3-style transformer or SD UNet)")
        self._set_net(net, compile)
        cfg = self.net.config
        size = int(cfg.sample_size)
        self.channels = int(cfg.in_channels)
        self.out_channels = int(getattr(cfg, "out_channels", self.channels) or self.channels)
        self.latent_shape = (self.channels, size, size)
        self._set_vae(pipe.vae, float(getattr(pipe.vae.config, "shift_factor", None) or 0.0), freeze=False)

    # --- conditioning ---------------------------------------------------------------
    def targets(self) -> list[Target]:
        return [Target(self.prompt, self.prompt)] if self.prompt else []

    def default_target(self) -> str:
        return self.prompt

    @torch.no_grad()
    def encode(self, prompt: str) -> PromptEmbeds:
        """Encode ``prompt`` and the empty prompt once (cached per backend instance)."""

        def encode() -> PromptEmbeds:
            if self.family == "sd3":
                pe, npe, pooled, npooled = self.pipe.encode_prompt(
                    prompt=prompt, prompt_2=None, prompt_3=None, device=self.device,
                    num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="",
                )  # fmt: skip
                return PromptEmbeds(prompt, pe, npe, pooled, npooled)
            pe, npe = self.pipe.encode_prompt(prompt, self.device, 1, True, negative_prompt="")
            return PromptEmbeds(prompt, pe, npe)

        return self.cache.get(("prompt", prompt), encode)

    def condition(self, target: Any = None, guidance: float = 1.0) -> Condition:
        if target is None:
            return Condition(self.encode(""), 1.0, "unconditional")
        prompt = str(target)
        return Condition(self.encode(prompt), float(guidance), prompt)

    def forwards_per_call(self, cond: Condition) -> int:
        return 2 if cond.guidance != 1.0 else 1

    # --- the denoiser ---------------------------------------------------------------
    def _net(self, x: Tensor, timestep: Tensor, pe: PromptEmbeds, guided: bool) -> Tensor:
        n = x.shape[0]
        emb, pooled = _expand(pe.embeds, n), _expand(pe.pooled, n)
        xin, tin = x.to(self.model_dtype), timestep
        if guided:
            xin, tin = torch.cat([xin, xin]), torch.cat([timestep, timestep])
            emb = torch.cat([emb, _expand(pe.null_embeds, n)])
            pooled = None if pooled is None else torch.cat([pooled, _expand(pe.null_pooled, n)])
        if self.family == "sd3":
            out = self._forward(
                hidden_states=xin, timestep=tin, encoder_hidden_states=emb, pooled_projections=pooled, return_dict=False
            )[0]
        else:
            out = self._forward(xin, tin, encoder_hidden_states=emb, return_dict=False)[0]
        return out[:, : self.channels].float()

    def _guided(self, x: Tensor, timestep: Tensor, cond: Condition) -> Tensor:
        guided = self.forwards_per_call(cond) == 2
        out = self._net(x, timestep, cond.value, guided)
        n = x.shape[0]
        return cfg_combine(out[:n], out[n:], cond.guidance) if guided else out

    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        if self.family == "sd3":
            tau = as_time(t, x).reshape(-1) * float(self.pipe.scheduler.config.num_train_timesteps)
            return self._guided(x, tau, cond)
        x_vp, tau, a, b = self.vp.to_vp(x, t)
        out = self._guided(x_vp, tau, cond)
        x0 = self.vp.x0_from_output(x_vp, out, a, b, self.prediction_type)
        return self.vp.velocity(x, x0, t)

    # --- obstacles --------------------------------------------------------------------
    def obstacle_points(self, kind: str, value: Any) -> Tensor:
        """Obstacle coordinates: ``concept`` text → its CLIP text embedding ``[1, D]`` (unit
        norm), a point in the CLIP image-embedding space of the configured CLIP model."""
        if kind != "concept":
            raise ValueError(f"the t2i backend takes concept:TEXT obstacles, not {kind!r}")
        return clip_for(self).text_features([str(value)])

    def obstacle_features(self, kind: str, value: Any = None):
        """``concept`` obstacles live in CLIP's image-embedding space: ``("clip", f)`` with
        ``f(x0) = CLIP(decode(x0))`` ``[B, D]`` (unit norm, on the CPU like the obstacle
        points, differentiable for repulsion)."""
        if kind != "concept":
            return super().obstacle_features(kind, value)
        clip = clip_for(self)
        return "clip", lambda x0: clip.image_features_differentiable(self.decode_differentiable(x0)).cpu()

    def describe(self) -> dict:
        sched = self.pipe.scheduler.config
        return {
            "name": self.name,
            "model": self.model_id,
            "family": self.family,
            "prediction_type": self.prediction_type,
            "prompt": self.prompt,
            "latent_shape": list(self.latent_shape),
            **self._runtime(),
            "scheduler_shift": float(sched.get("shift", 1.0)),
        }


def load_t2i(model: str | None = None, **options) -> T2IBackend:
    """Registry loader: ``--backend t2i --model <hub id or dir> --prompt TEXT``."""
    if not model:
        raise HFLoadError("the t2i backend needs --model (an SD3-style or SD 1.5/2-style pipeline hub id or directory)")
    return T2IBackend(model, **options)
