"""Tiny random model directories for tests and CPU benchmarks (see the package docstring).

Every factory seeds torch's global generator, builds a model from a small config and
writes it with ``save_pretrained`` (safetensors) to ``path``, returning ``path``. Heavy
libraries (diffusers, transformers) are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = [
    "save_random_dit",
    "save_tiny_clip_tokenizer",
    "tiny_text_config",
    "save_random_sd3",
    "save_random_sd_unet",
    "save_random_clip",
    "save_random_dino",
]


# --- class-conditional DiT ----------------------------------------------------------------
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


# --- text-to-image pipelines ----------------------------------------------------------------
def save_tiny_clip_tokenizer(path: str | Path) -> Path:
    """A character-level CLIP BPE tokenizer (vocab.json, merges.txt with no merges)."""
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


def tiny_text_config():
    """The ``CLIPTextConfig`` of the tiny text encoders (hidden size 32, 2 layers)."""
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
        text_encoder=CLIPTextModelWithProjection(tiny_text_config()), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(tiny_text_config()), tokenizer_2=tokenizer,
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
        vae=vae, text_encoder=CLIPTextModel(tiny_text_config()), tokenizer=CLIPTokenizer.from_pretrained(tok),
        unet=unet, scheduler=sched, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(path, safe_serialization=True)
    return path


# --- verifier models --------------------------------------------------------------------------
def save_random_clip(path: str, image_size: int = 32, seed: int = 0) -> str:
    """A random tiny CLIP (model, char-level tokenizer, image processor) for tests."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPTokenizer, CLIPVisionConfig

    torch.manual_seed(seed)
    text = CLIPTextConfig(bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=100, max_position_embeddings=77)  # fmt: skip
    vision = CLIPVisionConfig(image_size=image_size, patch_size=8, hidden_size=32, intermediate_size=37,
                              num_attention_heads=4, num_hidden_layers=2)  # fmt: skip
    CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)).save_pretrained(
        path, safe_serialization=True
    )
    save_tiny_clip_tokenizer(path)
    CLIPTokenizer.from_pretrained(path).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}).save_pretrained(
        path
    )
    return path


def save_random_dino(path: str, image_size: int = 32, seed: int = 0) -> str:
    """A random tiny DINOv2 with its image processor, for tests."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    Dinov2Model(Dinov2Config(image_size=image_size, patch_size=8, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=4, intermediate_size=37)).save_pretrained(path, safe_serialization=True)  # fmt: skip
    BitImageProcessor(
        size={"shortest_edge": image_size + 4}, crop_size={"height": image_size, "width": image_size},
        do_center_crop=True, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(path)  # fmt: skip
    return path
