"""Scenes of coloured shapes and their exact renderer.

A :class:`Scene` is 1–4 :class:`Obj` (circle, square or triangle; one of four saturated
colours; an integer box of side ``size`` whose top-left pixel is ``(x, y)``) on a plain
mid-grey background. :func:`render` draws it into a ``[3, 32, 32]`` float image in [0, 1]
with hard pixel masks (no anti-aliasing), so the program checker can read every clean
render back exactly:

- square: the whole box (fill 1);
- circle: pixels whose centre lies in the inscribed disc (fill ≈ π/4);
- triangle: apex at the top centre, base on the bottom row (fill ≈ ½).

Boxes never overlap and keep a gap of at least :data:`GAP` pixels, so objects of the same
colour stay separate connected components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SIZE", "SHAPES", "COLOURS", "PALETTE", "BACKGROUND", "GAP", "MIN_SIDE", "MAX_SIDE",
    "Obj", "Scene", "mask", "render", "render_batch", "place",
]  # fmt: skip

SIZE = 32
SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
PALETTE = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], dtype=np.float32)
BACKGROUND = np.array([0.5, 0.5, 0.5], dtype=np.float32)
GAP = 2  # pixels between boxes (and at least 1 to the border)
MIN_SIDE, MAX_SIDE = 7, 11


@dataclass(frozen=True)
class Obj:
    """One object: ``shape`` in :data:`SHAPES`, ``colour`` in :data:`COLOURS`, its box's
    top-left pixel ``(x, y)`` (x to the right, y down) and side ``size`` in pixels."""

    shape: str
    colour: str
    x: int
    y: int
    size: int

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.size / 2.0, self.y + self.size / 2.0

    def to_dict(self) -> dict:
        return {"shape": self.shape, "colour": self.colour, "x": self.x, "y": self.y, "size": self.size}


@dataclass(frozen=True)
class Scene:
    """The objects of one image, in drawing order."""

    objects: tuple[Obj, ...]

    def to_dict(self) -> dict:
        return {"objects": [o.to_dict() for o in self.objects]}


def mask(obj: Obj, size: int = SIZE) -> np.ndarray:
    """Boolean ``[size, size]`` mask of ``obj`` (row = y, column = x)."""
    s = obj.size
    py, px = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5  # pixel centres inside the box
    if obj.shape == "square":
        m = np.ones((s, s), dtype=bool)
    elif obj.shape == "circle":
        m = (px - s / 2) ** 2 + (py - s / 2) ** 2 <= (s / 2) ** 2
    elif obj.shape == "triangle":
        m = np.abs(px - s / 2) <= py / 2 + 0.25
    else:
        raise ValueError(f"unknown shape {obj.shape!r}; choose one of {', '.join(SHAPES)}")
    out = np.zeros((size, size), dtype=bool)
    out[obj.y : obj.y + s, obj.x : obj.x + s] = m
    return out


def render(scene: Scene, size: int = SIZE) -> np.ndarray:
    """The scene as a float32 image ``[3, size, size]`` in [0, 1]."""
    img = np.broadcast_to(BACKGROUND[:, None, None], (3, size, size)).copy()
    for o in scene.objects:
        img[:, mask(o, size)] = PALETTE[COLOURS.index(o.colour)][:, None]
    return img


def render_batch(scenes: list[Scene], size: int = SIZE) -> np.ndarray:
    """``[N, 3, size, size]`` float32 images in [0, 1]."""
    return np.stack([render(s, size) for s in scenes]) if scenes else np.zeros((0, 3, size, size), np.float32)


def _free(x: int, y: int, s: int, boxes: list[tuple[int, int, int]]) -> bool:
    return all(x + s + GAP <= bx or bx + bs + GAP <= x or y + s + GAP <= by or by + bs + GAP <= y for bx, by, bs in boxes)


def place(
    rng: np.random.Generator,
    sides: list[int],
    boxes: list[tuple[int, int, int]] | None = None,
    region: tuple[int, int, int, int] | None = None,
    tries: int = 200,
) -> tuple[int, int] | None:
    """A random free top-left ``(x, y)`` for a box of side ``sides[0]`` not within
    :data:`GAP` of ``boxes``, inside ``region = (x_lo, x_hi, y_lo, y_hi)`` (inclusive bounds
    of the top-left corner; default: the whole image, 1 pixel from the border); ``None``
    when ``tries`` draws find none."""
    s = sides[0]
    boxes = boxes or []
    x_lo, x_hi, y_lo, y_hi = region or (1, SIZE - 1 - s, 1, SIZE - 1 - s)
    x_lo, y_lo = max(x_lo, 1), max(y_lo, 1)
    x_hi, y_hi = min(x_hi, SIZE - 1 - s), min(y_hi, SIZE - 1 - s)
    if x_lo > x_hi or y_lo > y_hi:
        return None
    for _ in range(tries):
        x, y = int(rng.integers(x_lo, x_hi + 1)), int(rng.integers(y_lo, y_hi + 1))
        if _free(x, y, s, boxes):
            return x, y
    return None
