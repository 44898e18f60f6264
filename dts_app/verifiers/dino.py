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

from ..backends.base import Backend
from ..backends.clip_model import cached_model, preprocess
from ..backends.hf import load_pretrained
from .base import Verifier

__all__ = ["DinoModel", "dino_for", "DinoAgreement"]


class DinoModel:
    """A DINOv2 (or any ``AutoModel`` vision backbone) with its image processor."""

    def __init__(self, source: str, device: torch.device, dtype: torch.dtype):
        from transformers import AutoImageProcessor, AutoModel

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


def dino_for(backend: Backend) -> DinoModel:
    """The backend's DINOv2 model (loaded once per backend instance and source)."""
    return cached_model(backend, "dino", DinoModel)


class DinoAgreement(Verifier):
    name, kind = "dino-agreement", "self_supervised"
    anchor_t = 0.4

    def __init__(self, backend: Backend, target: Any):
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
