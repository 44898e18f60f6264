"""The common base of the diffusers latent-space backends (DiT, text-to-image).

Both run a denoiser network on VAE latents and decode with the VAE, so they share:

- the runtime choice: device (CUDA when available), the weights' dtype (float32 on CPU,
  bf16/fp16 on CUDA) while states, velocities and the ODE stay float32;
- the network setup: moved to the device, frozen, optionally ``torch.compile``-d;
- the VAE setup (frozen, its ``scaling_factor``) and decoding latents to images in [0, 1],
  in chunks of ``max_decode``, with and without gradients (the differentiable decode
  serves repulsion from concept obstacles).

Subclasses call :meth:`LatentBackend._setup`, :meth:`LatentBackend._set_net` and
:meth:`LatentBackend._set_vae` from their constructor and implement ``_velocity``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Backend, Condition
from .hf import maybe_compile, pick_device, pick_dtype

__all__ = ["LatentBackend"]


class LatentBackend(Backend):
    """A denoiser on VAE latents with a VAE decoder (see module docstring).

    Attributes set by the helpers:
        model_id: the hub id or directory the model came from.
        model_dtype: the weights' dtype (``dtype`` is the states', float32).
        net: the denoiser network; ``_forward`` is it, compiled when asked.
        compile: the ``torch.compile`` mode or ``None``.
        vae: the ``AutoencoderKL``; ``scaling_factor`` and ``shift_factor`` from its config.
        max_decode: images per VAE decode call.
    """

    data_kind = "image"
    supports_guidance = True
    has_decoder = True
    #: added to ``latents / scaling_factor`` before the VAE (SD3); ``None``: nothing (DiT)
    shift_factor: float | None = None
    max_decode: int = 8

    # --- constructor pieces -----------------------------------------------------------
    def _setup(self, model: str, device: str | None, dtype: str | None, verifier_model: str | None, max_decode: int) -> None:
        """Source, runtime device and dtypes, verifier source and decode chunk size."""
        self.model_id = model
        self.device = pick_device(device)
        self.model_dtype = pick_dtype(dtype, self.device)
        self.dtype = torch.float32
        self.verifier_model = verifier_model
        self.max_decode = max_decode

    def _set_net(self, net: torch.nn.Module, compile: str | None) -> None:
        """The denoiser network: on the device, frozen, compiled with mode ``compile``."""
        self.net = net.to(self.device).eval().requires_grad_(False)
        self._forward = maybe_compile(self.net, compile)
        self.compile = compile

    def _set_vae(self, vae: torch.nn.Module, shift_factor: float | None = None, freeze: bool = True) -> None:
        """The decoder: on the device in eval mode, ``scaling_factor`` from its config.

        ``freeze=False`` leaves its parameters' ``requires_grad`` as loaded (the text-to-image
        pipeline's VAE always was; on CPU, freezing changes the convolution kernels torch
        picks and so the decoded images' last bits).
        """
        self.vae = vae.to(self.device).eval()
        if freeze:
            self.vae.requires_grad_(False)
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.shift_factor = shift_factor

    # --- the denoiser -----------------------------------------------------------------
    @torch.no_grad()
    def velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        """:meth:`Backend.velocity` on the backend's device, states in float32, no autograd."""
        return self._velocity(x.to(self.device, torch.float32), t, cond)

    # --- decoding ---------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, x0: Tensor) -> Tensor:
        """VAE-decode clean latents ``[B, C, h, w]`` to images ``[B, 3, H, W]`` in [0, 1]."""
        return self.decode_differentiable(x0)

    def decode_differentiable(self, x0: Tensor) -> Tensor:
        """:meth:`decode` without ``no_grad`` (gradients flow to ``x0``; for repulsion)."""
        outs = []
        for i in range(0, x0.shape[0], self.max_decode):
            z = x0[i : i + self.max_decode] / self.scaling_factor
            if self.shift_factor is not None:
                z = z + self.shift_factor
            outs.append(self.vae.decode(z.to(self.device, self.model_dtype), return_dict=False)[0].float())
        return ((torch.cat(outs) + 1) / 2).clamp(0, 1)

    # --- description --------------------------------------------------------------------
    def _runtime(self) -> dict[str, Any]:
        """``device``, ``dtype`` and ``compile`` for :meth:`describe`."""
        return {"device": str(self.device), "dtype": str(self.model_dtype).replace("torch.", ""), "compile": self.compile}
