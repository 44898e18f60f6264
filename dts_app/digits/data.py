"""scikit-learn's bundled 8×8 digits (1,797 images, 10 classes; no download), scaled to
[−1, 1], with one fixed stratified split: 80% train, 20% held out (never trained on)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DigitsSplit", "load_split", "to_model_space", "to_unit"]

SPLIT_SEED = 0
HELDOUT_FRACTION = 0.2


def to_model_space(pixels_0_16: Tensor) -> Tensor:
    """sklearn's 0..16 pixel values → [−1, 1]."""
    return pixels_0_16 / 8.0 - 1.0


def to_unit(x: Tensor) -> Tensor:
    """Model space [−1, 1] → images in [0, 1] (clamped)."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


@dataclass(frozen=True)
class DigitsSplit:
    """``x_*``: ``[n, 1, 8, 8]`` in [−1, 1]; ``y_*``: ``[n]`` labels."""

    x_train: Tensor
    y_train: Tensor
    x_heldout: Tensor
    y_heldout: Tensor


def load_split() -> DigitsSplit:
    """The fixed stratified split (``train_test_split(stratify=y, random_state=0)``)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.long)
    idx = torch.arange(len(y)).numpy()
    tr, ho = train_test_split(idx, test_size=HELDOUT_FRACTION, stratify=d.target, random_state=SPLIT_SEED)
    tr, ho = torch.as_tensor(tr), torch.as_tensor(ho)
    return DigitsSplit(to_model_space(x[tr]), y[tr], to_model_space(x[ho]), y[ho])
