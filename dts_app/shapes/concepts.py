"""Concept obstacles of the shapes world: "no red objects", "nothing in the top-left
quadrant", "no blue triangles".

A concept is a predicate on one object (a colour, a shape and/or a quadrant of the image
its centre lies in); a scene shows the concept when any of its objects satisfies it. As an
obstacle it is a *region of the CNN classifier's feature space*: the penultimate features
of :data:`N_RENDERS` seeded random scenes that show the concept (the same scenes every
time). D is the distance of a sample's features to the nearest of them; the exact checker
decides whether a finished image shows the concept (:func:`shows`), which is how avoidance
is judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .checker import find_objects
from .prompts import random_scene
from .scene import COLOURS, SHAPES, SIZE, Scene, render

__all__ = [
    "Concept", "parse_concept", "shows", "scene_shows", "concept_points", "measure_q_star", "N_RENDERS", "QUADRANTS",
]  # fmt: skip

N_RENDERS = 512
SEED = 4242
QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


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


@torch.no_grad()
def concept_points(cnn, text: str, n: int = N_RENDERS) -> Tensor:
    """CNN features ``[P, 128]`` of the renders among ``n`` seeded random scenes that show
    the concept (model space input)."""
    concept = parse_concept(text)
    rng = np.random.default_rng(SEED)
    scenes = [s for s in (random_scene(rng) for _ in range(n)) if scene_shows(s, concept)]
    if not scenes:
        raise ValueError(f"concept {text!r}: no seeded scene shows it")
    x = torch.from_numpy(np.stack([render(s) for s in scenes])) * 2 - 1
    return cnn.features(x)


@torch.no_grad()
def measure_q_star(cnn, text: str, n: int = 512, seed: int = 777) -> dict:
    """Q* measured in the feature space: D (distance to the nearest concept exemplar) of
    ``n`` *fresh* seeded renders, split by whether they show the concept, and the threshold
    that best separates the two (balanced accuracy), with its accuracy and quantiles of D."""
    concept = parse_concept(text)
    pts = concept_points(cnn, text)
    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng) for _ in range(n)]
    x = torch.from_numpy(np.stack([render(s) for s in scenes])) * 2 - 1
    d = torch.cdist(cnn.features(x).double(), pts.double()).min(dim=1).values.numpy()
    inside = np.array([scene_shows(s, concept) for s in scenes])
    best = (0.0, 0.0)
    for q in np.unique(d):
        acc = 0.5 * ((d[inside] <= q).mean() + (d[~inside] > q).mean())
        best = max(best, (float(acc), float(q)))
    quant = (0.05, 0.5, 0.95)
    return {
        "concept": text,
        "q_star": best[1],
        "balanced_accuracy": best[0],
        "d_with_concept": [float(np.quantile(d[inside], p)) for p in quant] if inside.any() else None,
        "d_without": [float(np.quantile(d[~inside], p)) for p in quant] if (~inside).any() else None,
        "share_with_concept": float(inside.mean()),
    }
