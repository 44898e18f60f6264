"""A plain reward function as a :class:`~dts_app.verifiers.base.Verifier`.

``reward(x) -> [B]``, higher is better, where ``x`` is what the backend decodes (images
``[B, C, H, W]`` in [0, 1] with a decoder, otherwise the clean samples ``[B, *shape]``).
:class:`~dts_app.search.problem.Problem` wraps plain functions given as its verifiers with
:func:`as_verifier`, so ``Problem(backend, cond, verifier=my_reward)`` works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .base import Verifier

__all__ = ["FunctionVerifier", "as_verifier"]


class FunctionVerifier(Verifier):
    """``fn(x) -> [B]`` as a verifier (an ``oracle``: the user's own ground truth), called
    without autograd; its output is checked to hold one score per row."""

    kind = "oracle"

    def __init__(self, fn: Callable[[Tensor], Any], name: str = "reward"):
        if not callable(fn):
            raise TypeError(f"{name} must be a function x -> scores [B], got {type(fn).__name__}")
        self.fn, self.name = fn, name

    def score(self, x0: Tensor, anchor: Tensor | None = None) -> Tensor:
        with torch.no_grad():
            out = torch.as_tensor(self.fn(x0))
        if out.numel() != x0.shape[0]:
            raise ValueError(f"{self.name} must return one score per row, shape [{x0.shape[0]}]; got {tuple(out.shape)}")
        return out.reshape(x0.shape[0]).float()

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "function": getattr(self.fn, "__qualname__", type(self.fn).__name__)}


def as_verifier(reward: Any, name: str = "reward") -> Verifier | None:
    """``None``, a :class:`Verifier` as it is, or a function wrapped in :class:`FunctionVerifier`."""
    if reward is None or isinstance(reward, Verifier):
        return reward
    return FunctionVerifier(reward, name)
