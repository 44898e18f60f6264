"""CLIP verifiers through transformers: text–image score and zero-shot class score.

The CLIP model itself (loading, the on-device preprocessing, per-backend caching and the
``--verifier-model`` source) is :mod:`dts_app.backends.clip_model`, shared with the
text-to-image backend's concept obstacles; a search verifier and a held-out verifier
share one loaded copy through the backend's cache.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..backends.base import Backend
from ..backends.clip_model import ClipModel, cached_model, clip_for, preprocess, verifier_source
from .base import Verifier

__all__ = ["CLIPScore", "CLIPZeroShot", "ClipModel", "clip_for", "cached_model", "preprocess", "verifier_source"]


def _prompt_for(backend: Backend, target: Any) -> str:
    if backend.name == "dit":
        return f"a photo of a {backend.label(int(target))}"  # type: ignore[attr-defined]
    return str(target) if target is not None else ""


class CLIPScore(Verifier):
    """``100·cos(CLIP(image), CLIP(text))``: text = the prompt (t2i) or
    ``"a photo of a {class name}"`` (DiT)."""

    name, kind = "clip", "supervised"

    def __init__(self, backend: Backend, target: Any):
        self.clip = clip_for(backend)
        self.text = _prompt_for(backend, target)
        self.text_emb = self.clip.text_features([self.text])

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        return 100.0 * (self.clip.image_features(x0) @ self.text_emb.T)[:, 0]

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "text": self.text, "model": self.clip.source}


class CLIPZeroShot(Verifier):
    """Zero-shot ImageNet class score: ``log softmax_k(s·cos(image, "a photo of a {k}"))[target]``
    over all the DiT backend's class names (``s`` = CLIP's logit scale)."""

    name, kind = "clip-zeroshot", "supervised"

    def __init__(self, backend: Any, target: Any):
        self.clip = clip_for(backend)
        self.target = int(target)

        def class_embeddings() -> Tensor:
            names = [f"a photo of a {backend.label(k)}" for k in range(backend.num_classes)]
            return torch.cat([self.clip.text_features(names[i : i + 256]) for i in range(0, len(names), 256)])

        self.class_emb = backend.cache.get(("clip-classes", self.clip.source), class_embeddings)

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        logits = self.clip.logit_scale * self.clip.image_features(x0) @ self.class_emb.T
        return torch.log_softmax(logits, dim=-1)[:, self.target]
