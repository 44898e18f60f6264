"""The shapes world's conditional flow model: a small pixel-space UNet in the linear
interpolant's convention (it predicts ``v = ε − x0`` for ``x_t = (1 − t)·x0 + t·ε``).

- Input ``[B, 3, 32, 32]`` in model space [−1, 1] (the grey background is 0) plus two
  fixed coordinate channels (so "left of" and "top-left" are easy to express), folded into
  2×2 patches at the stem (16×16 × 64 channels) and unfolded by a pixel shuffle at the
  end: pixel space at a fraction of a full-resolution UNet's cost.
- Levels 16×16 (64 channels) and 8×8 (128 channels, one self-attention over its 64
  positions: counting and relations are global); residual blocks modulated (scale, shift)
  by the sum of a time embedding (sinusoidal of ``1000·t``) and the prompt embedding.
- The prompt enters as its seven structured tokens (:func:`~dts_app.shapes.prompts.tokens`:
  shape, colour and count of two groups and the relation), one learned table per slot,
  concatenated and mixed by an MLP. The all-zero tokens are the null prompt of
  classifier-free guidance (dropped for 10% of training batches' rows).

Saved as ``model.safetensors`` + ``model.json`` (the constructor's keyword arguments).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from .prompts import TOKEN_VOCAB

__all__ = ["ShapesFlowNet", "save_model", "load_model", "TIME_SCALE"]

TIME_SCALE = 1000.0


def _timestep_embedding(t: Tensor, dim: int) -> Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * TIME_SCALE)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(nn.functional.silu(h))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, c: int, heads: int = 4, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.out = nn.Conv2d(c, c, 1)
        self.heads = heads

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = torch.softmax(torch.einsum("bhdn,bhdm->bhnm", q, k) / math.sqrt(c // self.heads), dim=-1)
        o = torch.einsum("bhnm,bhdm->bhdn", a, v).reshape(b, c, h, w)
        return x + self.out(o)


class PromptEncoder(nn.Module):
    """Seven structured tokens ``[B, 7]`` → an embedding ``[B, emb]``."""

    def __init__(self, emb: int, slot_dim: int = 32):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(v, slot_dim) for v in TOKEN_VOCAB)
        self.mlp = nn.Sequential(nn.Linear(slot_dim * len(TOKEN_VOCAB), emb), nn.SiLU(), nn.Linear(emb, emb))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.mlp(torch.cat([t(tokens[:, i]) for i, t in enumerate(self.tables)], dim=1))


class ShapesFlowNet(nn.Module):
    """``forward(x [B, 3, 32, 32], t [B] in [0, 1], tokens [B, 7]) → v [B, 3, 32, 32]``."""

    def __init__(self, width: int = 64, emb: int = 256, size: int = 32):
        super().__init__()
        self.config = {"width": width, "emb": emb, "size": size}
        c1, c2 = width, 2 * width
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)
        self.time = nn.Sequential(nn.Linear(128, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.prompt = PromptEncoder(emb)
        self.stem = nn.Conv2d(5 * 4, c1, 3, padding=1)  # on 2×2 patches (pixel unshuffle)
        self.down1 = ResBlock(c1, c1, emb)
        self.pool = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid1 = ResBlock(c2, c2, emb)
        self.attn = Attention(c2)
        self.mid2 = ResBlock(c2, c2, emb)
        self.up = nn.Conv2d(c2, c1, 3, padding=1)
        self.up1 = ResBlock(2 * c1, c1, emb)
        self.out_norm = nn.GroupNorm(8, c1)
        self.out = nn.Conv2d(c1, 3 * 4, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor, tokens: Tensor) -> Tensor:
        emb = nn.functional.silu(self.time(_timestep_embedding(t, 128)) + self.prompt(tokens))
        h = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1)
        h = self.stem(nn.functional.pixel_unshuffle(h, 2))  # [B, c1, 16, 16]
        s = self.down1(h, emb)
        m = self.mid2(self.attn(self.mid1(self.pool(s), emb)), emb)  # [B, c2, 8, 8]
        u = self.up(nn.functional.interpolate(m, scale_factor=2.0, mode="nearest"))
        u = self.up1(torch.cat([u, s], dim=1), emb)
        return nn.functional.pixel_shuffle(self.out(nn.functional.silu(self.out_norm(u))), 2)


def save_model(model: nn.Module, path: Path) -> None:
    """``path.safetensors`` (weights) + ``path.json`` (constructor config)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps(model.config))


def load_model(path: Path, cls: type[nn.Module] = ShapesFlowNet) -> nn.Module:
    from safetensors.torch import load_file

    path = Path(path)
    model = cls(**json.loads(path.with_suffix(".json").read_text()))
    model.load_state_dict(load_file(str(path.with_suffix(".safetensors"))))
    return model.eval().requires_grad_(False)
