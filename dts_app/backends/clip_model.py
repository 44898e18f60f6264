"""Vision–language and vision models that backends and verifiers share: CLIP (and the
image preprocessing every transformers vision model here uses).

This lives in the backends layer because the text-to-image backend's ``concept``
obstacles live in CLIP's embedding space; the verifiers (:mod:`dts_app.verifiers.clip`,
:mod:`dts_app.verifiers.dino`) import it from here (the dependency runs verifiers →
backends, never back).

Images come from the backend's decoder as ``[B, 3, H, W]`` in [0, 1] on the model's
device. They are resized, centre-cropped and normalised with the sizes, mean and std of
the model's *own* image processor (read from its config), on the device and batched, so no
image goes through PIL or the host (:func:`preprocess`).

The model is chosen by ``SearchConfig.verifier_model`` (CLI ``--verifier-model``), which
the backend keeps as :attr:`~dts_app.backends.base.Backend.verifier_model`: a hub id or
directory, or ``clip=SRC,dino=SRC`` for both kinds. Loaded models are kept in the backend's
:attr:`~dts_app.backends.base.Backend.cache`, so a search verifier, a held-out verifier and
the obstacles share one copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Backend
from .hf import load_pretrained

__all__ = ["verifier_source", "preprocess", "cached_model", "ClipModel", "clip_for"]

M = TypeVar("M")


def verifier_source(backend: Backend, kind: str) -> str:
    """The hub id / directory of the ``kind`` (``clip`` or ``dino``) verifier model.

    ``backend.verifier_model`` is ``SRC`` (used for every kind) or ``clip=SRC,dino=SRC``.

    Raises:
        ValueError: one line saying which option to set.
    """
    spec = backend.verifier_model
    if spec:
        if "=" not in spec:
            return spec
        parts = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
        if parts.get(kind):
            return parts[kind]
    raise ValueError(f"this verifier needs a {kind.upper()} model: pass --verifier-model {kind}=<hub id or dir>")


def cached_model(backend: Backend, kind: str, cls: Callable[[str, torch.device, torch.dtype], M]) -> M:
    """``cls(source, device, dtype)`` for the backend's ``kind`` verifier source, loaded
    once per backend instance and source (kept in ``backend.cache``)."""
    source = verifier_source(backend, kind)
    return backend.cache.get((kind, source), lambda: cls(source, backend.device, backend.model_dtype))


def _size(d: Any) -> tuple[str, Any]:
    d = dict(d) if d is not None else {}
    if d.get("shortest_edge"):
        return "shortest_edge", int(d["shortest_edge"])
    if d.get("height") and d.get("width"):
        return "hw", (int(d["height"]), int(d["width"]))
    return "none", None


def preprocess(images: Tensor, processor: Any) -> Tensor:
    """Resize (bicubic, antialiased), centre-crop and normalise ``images`` like ``processor``.

    Args:
        images: ``[B, 3, H, W]`` in [0, 1].
        processor: a transformers image processor (CLIP / BitImageProcessor ...): only its
            ``size``, ``crop_size``, ``image_mean``, ``image_std`` and ``do_*`` flags are read.

    Returns:
        ``pixel_values`` ``[B, 3, h, w]`` on ``images``' device.
    """
    x = images.float()
    if getattr(processor, "do_resize", True):
        kind, val = _size(getattr(processor, "size", None))
        if kind == "shortest_edge":
            h, w = x.shape[-2:]
            scale = val / min(h, w)
            val = (max(val, round(h * scale)), max(val, round(w * scale)))
        if val is not None:
            x = F.interpolate(x, size=val, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    if getattr(processor, "do_center_crop", False):
        kind, val = _size(getattr(processor, "crop_size", None))
        if kind == "hw":
            (ch, cw), (h, w) = val, x.shape[-2:]
            top, left = max((h - ch) // 2, 0), max((w - cw) // 2, 0)
            x = x[..., top : top + ch, left : left + cw]
    if getattr(processor, "do_normalize", True):
        mean = torch.tensor(processor.image_mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(processor.image_std, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
    return x


class ClipModel:
    """A CLIP model with its tokenizer and image processor, on the backend's device."""

    def __init__(self, source: str, device: torch.device, dtype: torch.dtype):
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        self.source, self.device, self.dtype = source, device, dtype
        self.model = load_pretrained(CLIPModel, source, dtype=dtype).to(device).eval().requires_grad_(False)
        self.tokenizer = load_pretrained(AutoTokenizer, source)
        self.processor = load_pretrained(AutoImageProcessor, source)
        self.logit_scale = float(self.model.logit_scale.exp())

    @torch.no_grad()
    def image_features(self, images: Tensor) -> Tensor:
        """Unit-norm image embeddings ``[B, D]`` (float32) of images ``[B, 3, H, W]`` in [0, 1]."""
        return self.image_features_differentiable(images)

    def image_features_differentiable(self, images: Tensor) -> Tensor:
        """:meth:`image_features` without ``no_grad`` (for gradients through the images)."""
        px = preprocess(images.to(self.device), self.processor).to(self.dtype)
        out = self.model.get_image_features(pixel_values=px)
        out = out if isinstance(out, Tensor) else out.pooler_output
        return F.normalize(out.float(), dim=-1)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> Tensor:
        """Unit-norm text embeddings ``[K, D]`` (float32)."""
        tok = self.tokenizer(texts, padding="max_length", truncation=True, return_tensors="pt").to(self.device)
        out = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask"))
        out = out if isinstance(out, Tensor) else out.pooler_output
        return F.normalize(out.float(), dim=-1)


def clip_for(backend: Backend) -> ClipModel:
    """The backend's CLIP model (loaded once per backend instance and source)."""
    return cached_model(backend, "clip", ClipModel)
