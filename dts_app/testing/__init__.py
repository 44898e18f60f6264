"""Test and benchmark fixtures: tiny randomly initialised models written to disk in the
same formats (diffusers / transformers directories, safetensors) as real checkpoints, so
tests, CPU benchmarks and demos exercise the real ``from_pretrained`` loading paths
without downloading anything.

Nothing in the production code imports this package.
"""

from .models import (
    save_random_clip,
    save_random_dino,
    save_random_dit,
    save_random_sd3,
    save_random_sd_unet,
    save_tiny_clip_tokenizer,
    tiny_text_config,
)

__all__ = [
    "save_random_dit",
    "save_random_sd3",
    "save_random_sd_unet",
    "save_random_clip",
    "save_random_dino",
    "save_tiny_clip_tokenizer",
    "tiny_text_config",
]
