"""Text-to-image backends in the linear-interpolant convention.

Two diffusers families through one class, chosen by what the pipeline directory holds:

- ``sd3`` (flow matching, ``SD3Transformer2DModel`` + ``FlowMatchEulerDiscreteScheduler``):
  the scheduler's ``σ`` *is* our ``t`` (``x = (1 − σ)·x0 + σ·ε``) and the transformer
  predicts ``v = ε − x0`` (the scheduler steps ``x ← x + (σ_next − σ)·v``), so the
  velocity is the model output at timestep ``1000·t``; no conversion. The scheduler's
  ``shift`` is reported in :meth:`T2IBackend.describe`; pass it as ``--shift``.
- ``sd-unet`` (Stable Diffusion 1.5/2, ``UNet2DConditionModel`` with a DDPM-type
  scheduler, ``epsilon`` or ``v_prediction``): VP, converted exactly as DiT
  (:class:`~dts_app.backends.dit.VPTable`).

The prompt is encoded once per condition (once per search) with the pipeline's own
``encode_prompt`` and reused by every candidate; classifier-free guidance uses the empty
prompt, batched with the conditional half in one forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..interpolant import as_time
from .base import Backend, Condition, Target
from .dit import VPTable, _cfg
from .hf import HFLoadError, is_local, load_pretrained, maybe_compile, offline, pick_device, pick_dtype

__all__ = ["PromptEmbeds", "T2IBackend", "load_t2i", "save_random_sd3", "save_random_sd_unet", "save_tiny_clip_tokenizer"]


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


class T2IBackend(Backend):
    """A text-to-image pipeline directory (SD3-style flow transformer or SD-style UNet).

    Args:
        model: hub id or local directory of the pipeline.
        prompt: the default prompt (the target when ``--class`` is not given).
        device, dtype, compile, verifier_model: as :class:`~dts_app.backends.dit.DiTBackend`.
        max_decode: images per VAE decode call.
    """

    name = "t2i"
    data_kind = "image"
    supports_guidance = True
    has_decoder = True

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

        self.model_id = model
        self.prompt = prompt or ""
        self.device = pick_device(device)
        self.model_dtype = pick_dtype(dtype, self.device)
        self.dtype = torch.float32
        index = _model_index(model)
        absent = {k: None for k, v in index.items() if isinstance(v, list) and v and v[0] is None}
        if "safety_checker" in index:
            absent.update(safety_checker=None, requires_safety_checker=False)
        pipe = load_pretrained(DiffusionPipeline, model, dtype=self.model_dtype, **absent)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        if hasattr(pipe, "transformer") and type(pipe.transformer).__name__ == "SD3Transformer2DModel":
            self.family, self.net = "sd3", pipe.transformer
            self.vp = None
            self.prediction_type = "flow"
        elif hasattr(pipe, "unet") and type(pipe.unet).__name__ == "UNet2DConditionModel":
            self.family, self.net = "sd-unet", pipe.unet
            self.vp = VPTable(pipe.scheduler.alphas_cumprod, self.device)
            self.prediction_type = str(pipe.scheduler.config.get("prediction_type", "epsilon"))
        else:
            raise HFLoadError(f"{model!r}: unsupported pipeline {type(pipe).__name__} (need SD3-style transformer or SD UNet)")
        self.net.eval().requires_grad_(False)
        self._forward = maybe_compile(self.net, compile)
        self.compile = compile
        cfg = self.net.config
        size = int(cfg.sample_size)
        self.channels = int(cfg.in_channels)
        self.out_channels = int(getattr(cfg, "out_channels", self.channels) or self.channels)
        self.latent_shape = (self.channels, size, size)
        vcfg = pipe.vae.config
        self.scaling_factor = float(vcfg.scaling_factor)
        self.shift_factor = float(getattr(vcfg, "shift_factor", None) or 0.0)
        self.verifier_model = verifier_model
        self.max_decode = max_decode
        self.hf_cache: dict[Any, Any] = {}

    # --- conditioning ---------------------------------------------------------------
    def targets(self) -> list[Target]:
        return [Target(self.prompt, self.prompt)] if self.prompt else []

    def default_target(self) -> str:
        return self.prompt

    @torch.no_grad()
    def encode(self, prompt: str) -> PromptEmbeds:
        """Encode ``prompt`` and the empty prompt once (cached per backend instance)."""
        key = ("prompt", prompt)
        if key in self.hf_cache:
            return self.hf_cache[key]
        if self.family == "sd3":
            pe, npe, pooled, npooled = self.pipe.encode_prompt(
                prompt=prompt, prompt_2=None, prompt_3=None, device=self.device,
                num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt="",
            )  # fmt: skip
            out = PromptEmbeds(prompt, pe, npe, pooled, npooled)
        else:
            pe, npe = self.pipe.encode_prompt(prompt, self.device, 1, True, negative_prompt="")
            out = PromptEmbeds(prompt, pe, npe)
        self.hf_cache[key] = out
        return out

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
            out = self._forward(hidden_states=xin, timestep=tin, encoder_hidden_states=emb, pooled_projections=pooled, return_dict=False)[0]
        else:
            out = self._forward(xin, tin, encoder_hidden_states=emb, return_dict=False)[0]
        return out[:, : self.channels].float()

    def _guided(self, x: Tensor, timestep: Tensor, cond: Condition) -> Tensor:
        guided = self.forwards_per_call(cond) == 2
        out = self._net(x, timestep, cond.value, guided)
        n = x.shape[0]
        return _cfg(out[:n], out[n:], cond.guidance) if guided else out

    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        if self.family == "sd3":
            tau = as_time(t, x).reshape(-1) * float(self.pipe.scheduler.config.num_train_timesteps)
            return self._guided(x, tau, cond)
        x_vp, tau, a, b = self.vp.to_vp(x, t)
        out = self._guided(x_vp, tau, cond)
        x0 = self.vp.x0_from_output(x_vp, out, a, b, self.prediction_type)
        return self.vp.velocity(x, x0, t)

    @torch.no_grad()
    def velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        return self._velocity(x.to(self.device, torch.float32), t, cond)

    @torch.no_grad()
    def decode(self, x0: Tensor) -> Tensor:
        """VAE-decode clean latents to images ``[B, 3, H, W]`` in [0, 1]."""
        return self.decode_differentiable(x0)

    def decode_differentiable(self, x0: Tensor) -> Tensor:
        """:meth:`decode` without ``no_grad`` (gradients flow to ``x0``; for repulsion)."""
        outs = []
        for i in range(0, x0.shape[0], self.max_decode):
            z = x0[i : i + self.max_decode] / self.scaling_factor + self.shift_factor
            outs.append(self.pipe.vae.decode(z.to(self.device, self.model_dtype), return_dict=False)[0].float())
        return ((torch.cat(outs) + 1) / 2).clamp(0, 1)

    # --- obstacles --------------------------------------------------------------------
    def obstacle_points(self, kind: str, value: Any) -> Tensor:
        """Obstacle coordinates: ``concept`` text → its CLIP text embedding ``[1, D]`` (unit
        norm), a point in the CLIP image-embedding space of the configured CLIP model."""
        if kind != "concept":
            raise ValueError(f"the t2i backend takes concept:TEXT obstacles, not {kind!r}")
        from ..verifiers.clip import clip_for

        clip = clip_for(self)
        return clip.text_features([str(value)])

    def obstacle_features(self, kind: str):
        """``concept`` obstacles live in CLIP's image-embedding space: ``("clip", f)`` with
        ``f(x0) = CLIP(decode(x0))`` ``[B, D]`` (unit norm, on the CPU like the obstacle
        points, differentiable for repulsion)."""
        if kind != "concept":
            return super().obstacle_features(kind)
        from ..verifiers.clip import clip_for

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
            "device": str(self.device),
            "dtype": str(self.model_dtype).replace("torch.", ""),
            "compile": self.compile,
            "scheduler_shift": float(sched.get("shift", 1.0)),
        }


def load_t2i(model: str | None = None, **options) -> T2IBackend:
    """Registry loader: ``--backend t2i --model <hub id or dir> --prompt TEXT``."""
    if not model:
        raise HFLoadError("the t2i backend needs --model (an SD3-style or SD 1.5/2-style pipeline hub id or directory)")
    return T2IBackend(model, **options)


# --- tiny random pipelines for tests and CPU benchmarks ---------------------------------
def save_tiny_clip_tokenizer(path: str | Path) -> Path:
    """A character-level CLIP BPE tokenizer (vocab.json, merges.txt with no merges)."""
    import json

    from transformers import CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for c in chars:
        for tok in (c, c + "</w>"):
            vocab.setdefault(tok, len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=77)
    tok.save_pretrained(path)
    return path


def _tiny_text_config():
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, vocab_size=100, projection_dim=32, max_position_embeddings=77,
    )  # fmt: skip


def save_random_sd3(path: str | Path, sample_size: int = 8, seed: int = 0) -> Path:
    """A random SD3-style pipeline (flow transformer, two tiny CLIP text encoders, no T5)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=sample_size, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=32, pooled_projection_dim=64, out_channels=4,
    )  # fmt: skip
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1, latent_channels=4, norm_num_groups=1,
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035,
    )  # fmt: skip
    tok = save_tiny_clip_tokenizer(path / "_tok")
    tokenizer = CLIPTokenizer.from_pretrained(tok)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=CLIPTextModelWithProjection(_tiny_text_config()), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_tiny_text_config()), tokenizer_2=tokenizer,
        text_encoder_3=None, tokenizer_3=None,
    )  # fmt: skip
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def save_random_sd_unet(path: str | Path, sample_size: int = 8, prediction_type: str = "epsilon", seed: int = 0) -> Path:
    """A random SD 1.5/2-style pipeline (UNet, tiny CLIP text encoder, DDIM scheduler)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=4, attention_head_dim=4,
    )  # fmt: skip
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1, latent_channels=4, norm_num_groups=1,
    )  # fmt: skip
    tok = save_tiny_clip_tokenizer(path / "_tok")
    sched = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                          steps_offset=1, prediction_type=prediction_type)  # fmt: skip
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=CLIPTextModel(_tiny_text_config()), tokenizer=CLIPTokenizer.from_pretrained(tok),
        unet=unet, scheduler=sched, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(path, safe_serialization=True)
    return path
