"""DINOv2 feature agreement: the self-supervised verifier for image backends.

``score = cos(DINO(decode(x̂0 at t = 0.4)), DINO(x0))``: how much the final sample still
looks like what the model predicted at t = 0.4 (Ma et al. 2025's self-supervised
verifier). The engine passes the anchor x̂0 as a *latent*; it is decoded here (through the
backend's decoder, not charged to the ledger's decoder count). Rows whose anchor is
missing (NaN) score 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Verifier
from .clip import cached_model, preprocess

__all__ = ["DinoModel", "dino_for", "DinoAgreement", "save_random_dino"]


class DinoModel:
    """A DINOv2 (or any ``AutoModel`` vision backbone) with its image processor."""

    def __init__(self, source: str, device: torch.device, dtype: torch.dtype):
        from transformers import AutoImageProcessor, AutoModel

        from ..backends.hf import load_pretrained

        self.source, self.device, self.dtype = source, device, dtype
        self.model = load_pretrained(AutoModel, source, dtype=dtype).to(device).eval().requires_grad_(False)
        self.processor = load_pretrained(AutoImageProcessor, source)

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """Unit-norm CLS features ``[B, D]`` (float32) of images ``[B, 3, H, W]`` in [0, 1]."""
        px = preprocess(images.to(self.device), self.processor).to(self.dtype)
        out = self.model(pixel_values=px)
        feat = out.pooler_output if getattr(out, "pooler_output", None) is not None else out.last_hidden_state[:, 0]
        return F.normalize(feat.float(), dim=-1)


def dino_for(backend: Any) -> DinoModel:
    """The backend's DINOv2 model (loaded once per backend instance and source)."""
    return cached_model(backend, "dino", DinoModel)


class DinoAgreement(Verifier):
    name, kind = "dino-agreement", "self_supervised"
    anchor_t = 0.4

    def __init__(self, backend: Any, target: Any):
        self.backend = backend
        self.dino = dino_for(backend)

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        if anchor is None:
            return torch.zeros(x0.shape[0], device=x0.device)
        missing = torch.isnan(anchor.flatten(1)).any(dim=1)
        ref = self.backend.decode(torch.nan_to_num(anchor))
        s = (self.dino.features(x0) * self.dino.features(ref)).sum(-1)
        return torch.where(missing.to(s.device), torch.zeros_like(s), s)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "anchor_t": self.anchor_t, "model": self.dino.source}


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
