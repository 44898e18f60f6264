"""Shared loading helpers for Hugging Face models (diffusers and transformers).

Every real model goes through :func:`load_pretrained`: ``from_pretrained`` with
``use_safetensors=True`` (never pickles), no remote code, and ``local_files_only`` when
the source is a local directory or ``HF_HUB_OFFLINE`` is set, so nothing downloads in
offline mode. Errors are one clear line naming the source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..config import ConfigError

__all__ = ["HFLoadError", "is_local", "offline", "load_pretrained", "pick_device", "pick_dtype", "maybe_compile"]


class HFLoadError(ConfigError):
    """A model could not be loaded; the message names the source and the cause."""


def is_local(source: str) -> bool:
    """True when ``source`` is an existing local directory."""
    return Path(source).expanduser().is_dir()


def offline() -> bool:
    """True when the hub is switched off (``HF_HUB_OFFLINE`` set to a true value)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def load_pretrained(cls: Any, source: str, subfolder: str | None = None, **kwargs) -> Any:
    """``cls.from_pretrained(source, ...)`` with the project's safety rules.

    Args:
        cls: a diffusers/transformers class (model, pipeline, processor or tokenizer).
        source: a hub id or a local directory.
        subfolder: component folder inside a pipeline directory (``transformer``, ``vae``...).
        **kwargs: passed on (``torch_dtype`` ...). ``trust_remote_code`` is refused.

    Raises:
        HFLoadError: with one line naming ``source`` and the reason.
    """
    if kwargs.pop("trust_remote_code", False):
        raise HFLoadError("trust_remote_code is not allowed")
    if not source:
        raise HFLoadError("no model given: pass --model with a hub id or a local directory")
    local = is_local(source)
    if not local and offline() and "/" not in source:
        raise HFLoadError(f"{source!r} is neither a local directory nor a hub id")
    path = str(Path(source).expanduser()) if local else source
    kw: dict[str, Any] = {"local_files_only": local or offline()}
    name = getattr(cls, "__name__", "")
    if not ("Tokenizer" in name or "Processor" in name or "Scheduler" in name):
        kw["use_safetensors"] = True
    if subfolder:
        kw["subfolder"] = subfolder
    kw.update(kwargs)
    try:
        return cls.from_pretrained(path, **kw)
    except (OSError, ValueError, KeyError) as e:
        where = f"{source}/{subfolder}" if subfolder else source
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HFLoadError(f"cannot load {name or 'model'} from {where!r}: {first}") from None


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        try:
            return torch.device(device)
        except RuntimeError:
            raise HFLoadError(f"unknown device {device!r} (use cpu, cuda, cuda:0 ...)") from None
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}  # fmt: skip


def pick_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """Model weights' dtype: float32 on CPU; on CUDA ``dtype`` or bf16 where supported, else fp16."""
    if dtype:
        if dtype not in _DTYPES:
            raise HFLoadError(f"unknown dtype {dtype!r} (use {', '.join(_DTYPES)})")
        return _DTYPES[dtype]
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def maybe_compile(module: torch.nn.Module, mode: str | None) -> torch.nn.Module:
    """``torch.compile(module, mode=...)`` when ``mode`` is given, else ``module``.

    Modes: ``default``, ``reduce-overhead`` (CUDA graphs; static shapes), ``max-autotune``.
    """
    if not mode or mode == "none":
        return module
    if mode not in ("default", "reduce-overhead", "max-autotune"):
        raise HFLoadError(f"unknown compile mode {mode!r} (none, default, reduce-overhead, max-autotune)")
    return torch.compile(module, mode=mode, dynamic=False)
