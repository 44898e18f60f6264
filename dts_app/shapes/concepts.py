"""Concept obstacles of the shapes world: "no red objects", "nothing in the top-left
quadrant", "no blue triangles".

A concept is a predicate on one object (a colour, a shape and/or a quadrant of the image
its centre lies in); a scene shows the concept when any of its objects satisfies it. As an
obstacle it is a region of the CNN classifier's features, built from :data:`N_RENDERS`
seeded random scenes (the same scenes every time); D is the distance to its nearest point:

- *what* (a colour and/or a shape): the pooled penultimate features ``[128]``; the points
  are the features of the scenes that show the concept;
- *where* (a quadrant, with or without a colour or shape): the last convolution's 8×8
  cells (64 activations each, a 13-pixel window, plus the cell's place on the grid in
  [−1, 1]² weighted by :data:`POSITION_WEIGHT`), read as a set per image: the points are
  the cells at the centres of the objects that satisfy the concept, and D is from the
  image's nearest cell. One pooled vector mixes every object, so it cannot say where one
  is (53% balanced separation of the top-left quadrant on renders, chance 50%); the
  cells do (83%).

The cells separate colours too (100% on renders, against 64% pooled), but D in them only
registers once x̂0 is sharp, when a path's colours are settled, so revert and repulsion
cannot act on them there (docs/shapes.md); colour and shape concepts stay pooled.

Q* is measured on the model's own samples (:func:`calibration_images`, read by the exact
checker; ``python -m dts_app.shapes.concepts`` writes ``assets/shapes/concepts.json``),
where the exact checker decides whether an image shows the concept (:func:`shows`), which
is also how avoidance is judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .checker import find_objects
from .prompts import generate, random_scene, tokens
from .scene import COLOURS, SHAPES, SIZE, Scene, render

__all__ = [
    "Concept", "parse_concept", "shows", "scene_shows", "in_cells", "concept_features", "concept_points", "concept_distance",
    "measure_q_star", "calibration_images", "calibrate", "N_RENDERS", "QUADRANTS", "POSITION_WEIGHT", "NAMED", "CALIBRATION",
]  # fmt: skip

N_RENDERS = 512
SEED = 4242
QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
POSITION_WEIGHT = 3.0  # measured: place concepts separate best at 2–5 (docs/shapes.md)
#: the concepts the app offers by name, with Q* measured on the model's samples (concepts.json)
NAMED = ("no red objects", "no circles", "no blue squares", "nothing in the top-left quadrant")
#: the samples Q* is measured on: prompts of every category, plain Euler with guidance
CALIBRATION = {"n": 512, "steps": 16, "guidance": 2.0, "seed": 31}


@dataclass(frozen=True)
class Concept:
    """Objects of ``colour`` and/or ``shape`` and/or centred in ``quadrant`` (None: any)."""

    colour: str | None = None
    shape: str | None = None
    quadrant: str | None = None

    def holds(self, shape: str, colour: str, cx: float, cy: float) -> bool:
        if self.colour is not None and colour != self.colour:
            return False
        if self.shape is not None and shape != self.shape:
            return False
        if self.quadrant is not None:
            vert, horiz = self.quadrant.split("-")
            if (cy < SIZE / 2) != (vert == "top") or (cx < SIZE / 2) != (horiz == "left"):
                return False
        return True


def parse_concept(text: str) -> Concept:
    """Read a concept ("no red objects", "nothing in the top-left quadrant", "blue
    triangles"); a ValueError naming the vocabulary when nothing in it is recognised."""
    words = " ".join(str(text).lower().replace("_", " ").split())
    words = re.sub(r"\b(top|bottom)[ -](left|right)\b", r"\1-\2", words)
    colour = next((c for c in COLOURS if re.search(rf"\b{c}\b", words)), None)
    shape = next((s for s in SHAPES if re.search(rf"\b{s}s?\b", words)), None)
    quadrant = next((q for q in QUADRANTS if q in words), None)
    if colour is None and shape is None and quadrant is None:
        raise ValueError(
            f"concept {text!r}: name a colour ({', '.join(COLOURS)}), a shape ({', '.join(SHAPES)}) "
            f"and/or a quadrant ({', '.join(QUADRANTS)}), e.g. 'no red objects' or 'nothing in the top-left quadrant'"
        )
    return Concept(colour, shape, quadrant)


def scene_shows(scene: Scene, concept: Concept) -> bool:
    return any(concept.holds(o.shape, o.colour, *o.centre) for o in scene.objects)


def shows(image, concept: Concept | str) -> bool:
    """Whether an image ``[3, H, W]`` in [0, 1] shows the concept, by the exact checker's
    reading of its objects."""
    c = parse_concept(concept) if isinstance(concept, str) else concept
    return any(c.holds(f.shape, f.colour, f.cx, f.cy) for f in find_objects(image))


def in_cells(concept: Concept) -> bool:
    """Whether the concept lives in the feature map's cells (it names a place) rather than
    in the pooled features (what, not where)."""
    return concept.quadrant is not None


def concept_features(cnn, x: Tensor, concept: Concept | str) -> Tensor:
    """Images ``x`` (model space) in the concept's space: the pooled features ``[B, 128]``,
    or, for a concept that names a quadrant, the cells ``[B, 64, 66]`` (each cell's 64
    activations and its place). Differentiable (repulsion goes through it)."""
    c = parse_concept(concept) if isinstance(concept, str) else concept
    if not in_cells(c):
        return cnn.features(x)
    fmap = cnn.feature_map(x)
    b, _, g, _ = fmap.shape
    cells = fmap.flatten(2).transpose(1, 2)
    ys, xs = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    place = torch.stack([xs, ys], -1).reshape(g * g, 2).to(cells.dtype) / (g - 1) * 2 - 1
    return torch.cat([cells, POSITION_WEIGHT * place.expand(b, -1, -1)], dim=-1)


def concept_distance(feats: Tensor, points: Tensor) -> Tensor:
    """D ``[B]``: from each image (its nearest cell, in the cells) to the nearest concept
    point."""
    if len(feats) == 0:
        return torch.zeros(0, dtype=torch.float64)
    f = feats.reshape(-1, feats.shape[-1]).double()
    d = torch.cdist(f, points.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return d.min(dim=1).values.view(len(feats), -1).min(dim=1).values


def _scenes(seed: int, n: int) -> tuple[list[Scene], Tensor]:
    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng) for _ in range(n)]
    return scenes, torch.from_numpy(np.stack([render(s) for s in scenes])) * 2 - 1


@torch.no_grad()
def concept_points(cnn, text: str, n: int = N_RENDERS) -> Tensor:
    """The concept's points ``[P, F]`` among ``n`` seeded random scenes: the pooled
    features of the scenes that show it, or (a place) the cells at the centres of the
    objects that satisfy it."""
    concept = parse_concept(text)
    scenes, x = _scenes(SEED, n)
    feats = concept_features(cnn, x, concept)
    if not in_cells(concept):
        pts = [feats[i] for i, s in enumerate(scenes) if scene_shows(s, concept)]
    else:
        g = round(feats.shape[1] ** 0.5)
        pts = [
            feats[i, min(int(o.centre[1] * g // SIZE), g - 1) * g + min(int(o.centre[0] * g // SIZE), g - 1)]
            for i, s in enumerate(scenes)
            for o in s.objects
            if concept.holds(o.shape, o.colour, *o.centre)
        ]  # fmt: skip
    if not pts:
        raise ValueError(f"concept {text!r}: no seeded scene shows it")
    return torch.stack(pts)


@torch.no_grad()
def calibration_images(model, n: int = 512, steps: int = 16, guidance: float = 2.0, seed: int = 31) -> Tensor:
    """``n`` seeded samples ``[n, 3, 32, 32]`` in [0, 1] of the flow model, one prompt each
    from the training prompt generator (every category), by plain Euler with guidance: the
    kind of image a search meets, which clean renders are not (their edges are exact)."""
    from .train import euler_sample

    rng = np.random.default_rng(seed)
    toks = torch.tensor([tokens(generate(rng)[1]) for _ in range(n)], dtype=torch.long)
    return euler_sample(model, toks, steps, guidance, seed + 1)


@torch.no_grad()
def measure_q_star(cnn, text: str, images: Tensor | None = None, n: int = 512, seed: int = 777) -> dict:
    """Q* measured in the concept's space: D of ``images`` (``[n, 3, H, W]`` in [0, 1], e.g.
    :func:`calibration_images`; whether each shows the concept is the exact checker's
    reading) or, without them, of ``n`` *fresh* seeded renders (the scene says), split by
    whether they show the concept; the threshold that best separates the two (balanced
    accuracy), with its accuracy and quantiles of D."""
    concept = parse_concept(text)
    pts = concept_points(cnn, text)
    if images is None:
        scenes, x = _scenes(seed, n)
        inside = np.array([scene_shows(s, concept) for s in scenes])
    else:
        x = images * 2 - 1
        inside = np.array([shows(im, concept) for im in images])
    d = concept_distance(concept_features(cnn, x, concept), pts).numpy()
    best = (0.0, 0.0)
    for q in np.unique(d):
        acc = 0.5 * ((d[inside] <= q).mean() + (d[~inside] > q).mean())
        best = max(best, (float(acc), float(q)))
    quant = (0.05, 0.5, 0.95)
    return {
        "concept": text,
        "on": "renders" if images is None else "samples",
        "q_star": best[1],
        "balanced_accuracy": best[0],
        "d_with_concept": [float(np.quantile(d[inside], p)) for p in quant] if inside.any() else None,
        "d_without": [float(np.quantile(d[~inside], p)) for p in quant] if (~inside).any() else None,
        "share_with_concept": float(inside.mean()),
        "points": int(len(pts)),
    }


def calibrate(model_dir, concepts=NAMED, log=None) -> dict:
    """Q* of each concept on the model's :func:`calibration_images` (:data:`CALIBRATION`),
    beside its separation on clean renders: what ``assets/shapes/concepts.json`` holds."""
    from .classifier import ShapesCNN
    from .model import load_model

    model, cnn = load_model(Path(model_dir) / "model"), load_model(Path(model_dir) / "classifier", ShapesCNN)
    images = calibration_images(model, **CALIBRATION)
    out: dict = {"calibration": dict(CALIBRATION), "position_weight": POSITION_WEIGHT, "concepts": {}}
    for text in concepts:
        out["concepts"][text] = {"samples": measure_q_star(cnn, text, images), "renders": measure_q_star(cnn, text)}
        if log:
            log(f"{text}: Q* {out['concepts'][text]['samples']['q_star']:.3f}")
    return out


if __name__ == "__main__":  # python -m dts_app.shapes.concepts [MODEL_DIR]: writes MODEL_DIR/concepts.json
    import json
    import sys

    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "assets" / "shapes"
    torch.set_num_threads(1)
    (where / "concepts.json").write_text(json.dumps(calibrate(where, log=print), indent=1) + "\n")
