"""The exact program checker of the shapes world (GenEval-style).

1. **Segment by colour**: every pixel goes to the nearest of the background and the four
   palette colours (Euclidean in RGB).
2. **Connected components** of each colour (4-connectivity); components smaller than
   :data:`MIN_AREA` pixels are noise and dropped.
3. **Classify by geometry**: the fill of the bounding box, ``area / (w·h)``: a square
   fills it (1), a circle ≈ π/4, a triangle ≈ ½. Components far from square in aspect are
   not a shape of ours (``"blob"``, matching nothing).
4. **Compare with the prompt**: each group of the parsed prompt
   (:class:`~dts_app.shapes.prompts.PromptSpec`) against the objects found; a position
   prompt also needs a pair of *distinct* objects in the relation (centre offset along its
   axis of at least :data:`REL_MARGIN` pixels).

The result is GenEval's pass/fail and a graded score in [0, 1] for partial credit, the mean
of one credit per group (and one for the relation): a group with at-least semantics gets 1
when present, ½ when only the shape is there in another colour, else 0; a counting group
gets ``max(0, 1 − |found − n| / n)``; the relation 1 or 0. ``score == 1`` exactly when
the prompt passes. Deterministic, and exact on every clean render (tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .prompts import PromptSpec, Req, parse
from .scene import BACKGROUND, COLOURS, PALETTE

__all__ = [
    "Found", "CheckResult", "segment", "find_objects", "check", "check_batch", "summary", "describe", "MIN_AREA", "REL_MARGIN",
]  # fmt: skip

MIN_AREA = 10
REL_MARGIN = 3.0
SQUARE_FILL, TRIANGLE_FILL = 0.93, 0.69  # fill ≥ 0.93: square (1); < 0.69: triangle (0.59–0.63); between: circle (0.76–0.85)
MAX_ASPECT = 1.6


@dataclass(frozen=True)
class Found:
    """One object read from an image: shape (``circle``, ``square``, ``triangle`` or
    ``blob``), colour, bounding-box centre ``(cx, cy)`` in pixels, area and box side."""

    shape: str
    colour: str
    cx: float
    cy: float
    area: int
    w: int
    h: int

    def to_dict(self) -> dict:
        return {"shape": self.shape, "colour": self.colour, "cx": self.cx, "cy": self.cy, "area": self.area}


@dataclass(frozen=True)
class CheckResult:
    """``passed`` (GenEval's verdict), ``score`` in [0, 1] (1 iff passed), the objects
    found and the credit of each requirement (``[(what, credit), ...]``)."""

    passed: bool
    score: float
    found: tuple[Found, ...]
    credits: tuple[tuple[str, float], ...] = field(default=())

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "score": self.score,
            "found": [f.to_dict() for f in self.found],
            "credits": [list(c) for c in self.credits],
        }


def _as_numpy(image) -> np.ndarray:
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"expected an RGB image [3, H, W], got shape {tuple(img.shape)}")
    return img


def segment(image) -> np.ndarray:
    """Label map ``[H, W]``: 0 = background, ``k + 1`` = palette colour k (nearest colour)."""
    img = _as_numpy(image)
    refs = np.concatenate([BACKGROUND[None], PALETTE])  # [5, 3]
    d = ((img[None] - refs[:, :, None, None]) ** 2).sum(1)  # [5, H, W]
    return d.argmin(0)


def _classify(area: int, w: int, h: int) -> str:
    if max(w, h) > MAX_ASPECT * min(w, h):
        return "blob"
    fill = area / float(w * h)
    return "square" if fill >= SQUARE_FILL else "triangle" if fill < TRIANGLE_FILL else "circle"


def find_objects(image) -> tuple[Found, ...]:
    """Every object in an image ``[3, H, W]`` in [0, 1], ordered by colour, then top to
    bottom and left to right."""
    from scipy import ndimage

    labels = segment(image)
    out: list[Found] = []
    for k, colour in enumerate(COLOURS):
        comp, n = ndimage.label(labels == k + 1)  # 4-connectivity
        if n == 0:
            continue
        for sl, idx in zip(ndimage.find_objects(comp), range(1, n + 1)):
            area = int((comp[sl] == idx).sum())
            if area < MIN_AREA:
                continue
            ys, xs = sl
            h, w = ys.stop - ys.start, xs.stop - xs.start
            out.append(Found(_classify(area, w, h), colour, (xs.start + xs.stop) / 2.0, (ys.start + ys.stop) / 2.0, area, w, h))
    return tuple(out)


def _matches(g: Req, objs: tuple[Found, ...]) -> list[int]:
    return [i for i, o in enumerate(objs) if o.shape == g.shape and (g.colour is None or o.colour == g.colour)]


def _group_credit(g: Req, objs: tuple[Found, ...]) -> float:
    n = len(_matches(g, objs))
    if g.exact:
        return max(0.0, 1.0 - abs(n - g.count) / g.count)
    if n >= g.count:
        return 1.0
    if g.colour is not None and any(o.shape == g.shape for o in objs):
        return 0.5
    return 0.0


def _offset(rel: str, a: Found, b: Found) -> float:
    """How far ``a`` is in ``rel`` of ``b`` along the relation's axis (pixels)."""
    return {"left of": b.cx - a.cx, "right of": a.cx - b.cx, "above": b.cy - a.cy, "below": a.cy - b.cy}[rel]


def check(image, prompt: str | PromptSpec) -> CheckResult:
    """Check one image ``[3, H, W]`` in [0, 1] (numpy or torch) against a prompt."""
    spec = parse(prompt) if isinstance(prompt, str) else prompt
    objs = find_objects(image)
    credits = [(g.text(), _group_credit(g, objs)) for g in spec.groups]
    if spec.relation is not None:
        a, b = spec.groups
        ok = any(
            i != j and _offset(spec.relation, objs[i], objs[j]) >= REL_MARGIN
            for i in _matches(a, objs)
            for j in _matches(b, objs)
        )
        credits.append((spec.relation, 1.0 if ok else 0.0))
    score = float(np.mean([c for _, c in credits]))
    passed = all(c == 1.0 for _, c in credits)
    return CheckResult(passed, 1.0 if passed else min(score, 1.0 - 1e-6), objs, tuple(credits))


def check_batch(images, prompt: str | PromptSpec) -> list[CheckResult]:
    """:func:`check` for every image of a batch ``[B, 3, H, W]``."""
    spec = parse(prompt) if isinstance(prompt, str) else prompt
    return [check(img, spec) for img in images]


def _mark(credit: float) -> str:
    return "✓" if credit == 1.0 else "✗" if credit == 0.0 else f"{credit:.2g}"


def summary(result: CheckResult | dict) -> str:
    """One line of a check: each requirement with ✓, ✗ or its partial credit, e.g.
    ``"a blue square ✓ · a yellow triangle ✗ · left of ✗"`` (for gallery captions)."""
    credits = result["credits"] if isinstance(result, dict) else result.credits
    return " · ".join(f"{what} {_mark(float(c))}" for what, c in credits)


def describe(image, prompt: str | PromptSpec | None = None) -> str:
    """A short markdown of the scene the checker reads in one image ``[3, H, W]`` in
    [0, 1]: the verdict against ``prompt`` (when given), each requirement's credit, and a
    table of the objects found (shape, colour, centre in pixels, area)."""
    objs = find_objects(image)
    lines = []
    if prompt is not None:
        spec = parse(prompt) if isinstance(prompt, str) else prompt
        r = check(image, spec)
        verdict = "✓ **passes**" if r.passed else "✗ **fails**"
        lines += [f"{verdict} *{spec.text()}* ({spec.category}); graded score {r.score:.2f}", ""]
        lines += [f"- {what}: {_mark(c)}" for what, c in r.credits] + [""]
    if not objs:
        return "\n".join(lines + ["No objects found (nothing of ≥ 10 pixels in a palette colour)."])
    lines += [f"{len(objs)} object{'s' if len(objs) > 1 else ''} found:", "", "| shape | colour | centre (x, y) | area |"]
    lines += ["|---|---|---|---|"] + [f"| {o.shape} | {o.colour} | ({o.cx:g}, {o.cy:g}) | {o.area} |" for o in objs]
    return "\n".join(lines)
