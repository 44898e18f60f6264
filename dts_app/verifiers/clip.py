"""CLIP verifiers through transformers: text–image score and zero-shot class score.

Images come from the backend's decoder as ``[B, 3, H, W]`` in [0, 1] on the model's
device. They are resized, centre-cropped and normalised with the sizes, mean and std of
the model's *own* image processor (read from its config), on the device and batched, so no
image goes through PIL or the host (:func:`preprocess`).

The verifier model is chosen by ``SearchConfig.verifier_model`` (CLI ``--verifier-model``),
which the backend keeps: a hub id or directory, or ``clip=SRC,dino=SRC`` for both kinds.
Loaded models are cached on the backend instance, so a search verifier and a held-out
verifier share one copy.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Verifier

__all__ = ["verifier_source", "preprocess", "ClipModel", "clip_for", "CLIPScore", "CLIPZeroShot", "save_random_clip"]


def verifier_source(backend: Any, kind: str) -> str:
    """The hub id / directory of the ``kind`` (``clip`` or ``dino``) verifier model.

    ``backend.verifier_model`` is ``SRC`` (used for every kind) or ``clip=SRC,dino=SRC``.

    Raises:
        ValueError: one line saying which option to set.
    """
    spec = getattr(backend, "verifier_model", None)
    if spec:
        if "=" not in spec:
            return spec
        parts = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
        if parts.get(kind):
            return parts[kind]
    raise ValueError(f"this verifier needs a {kind.upper()} model: pass --verifier-model {kind}=<hub id or dir>")


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

        from ..backends.hf import load_pretrained

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


def cached_model(backend: Any, kind: str, cls: type) -> Any:
    """``cls(source, device, dtype)`` for the backend's ``kind`` verifier source, loaded
    once per backend instance and source (kept in ``backend.hf_cache``)."""
    key = (kind, verifier_source(backend, kind))
    if key not in backend.hf_cache:
        backend.hf_cache[key] = cls(key[1], backend.device, getattr(backend, "model_dtype", torch.float32))
    return backend.hf_cache[key]


def clip_for(backend: Any) -> ClipModel:
    """The backend's CLIP model (loaded once per backend instance and source)."""
    return cached_model(backend, "clip", ClipModel)


def _prompt_for(backend: Any, target: Any) -> str:
    if getattr(backend, "name", "") == "dit":
        return f"a photo of a {backend.label(int(target))}"
    return str(target) if target is not None else ""


class CLIPScore(Verifier):
    """``100·cos(CLIP(image), CLIP(text))``: text = the prompt (t2i) or
    ``"a photo of a {class name}"`` (DiT)."""

    name, kind = "clip", "supervised"

    def __init__(self, backend: Any, target: Any):
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
        key = ("clip-classes", self.clip.source)
        if key not in backend.hf_cache:
            names = [f"a photo of a {backend.label(k)}" for k in range(backend.num_classes)]
            backend.hf_cache[key] = torch.cat([self.clip.text_features(names[i : i + 256]) for i in range(0, len(names), 256)])
        self.class_emb = backend.hf_cache[key]

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        logits = self.clip.logit_scale * self.clip.image_features(x0) @ self.class_emb.T
        return torch.log_softmax(logits, dim=-1)[:, self.target]


def save_random_clip(path: str, image_size: int = 32, seed: int = 0) -> str:
    """A random tiny CLIP (model, char-level tokenizer, image processor) for tests."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPTokenizer, CLIPVisionConfig

    from ..backends.t2i import save_tiny_clip_tokenizer

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
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}).save_pretrained(path)
    return path
