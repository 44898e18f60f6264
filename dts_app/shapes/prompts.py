"""The prompt grammar of the shapes world: GenEval's six categories, a parser, a seeded
prompt + scene generator and the structured prompt tokens the model is conditioned on.

Grammar (lower case; "a photo of" and a final full stop are ignored)::

    prompt   := group | group " and " group | group " " relation " " group
    group    := number [colour] shape["s"]          number: a | an | one | two | three | four
    relation := "left of" | "right of" | "above" | "below"

Categories (GenEval's names), as :func:`generate` writes them:

==================  ===========================================  ==========================
``single_object``   "a triangle"                                 ≥ 1 triangle
``two_object``      "a circle and a square"                      both present
``counting``        "three squares", "two red circles"           exactly that many
``colors``          "a blue circle"                              ≥ 1 blue circle
``position``        "a blue square left of a yellow triangle"    both, and the relation
``color_attr``      "a red circle and a blue square"             both, each in its colour
==================  ===========================================  ==========================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .scene import COLOURS, MAX_SIDE, MIN_SIDE, SHAPES, Obj, Scene, place

__all__ = [
    "CATEGORIES", "RELATIONS", "NUMBERS", "Req", "PromptSpec", "PromptError", "parse", "generate",
    "generate_batch", "layout", "random_scene", "tokens", "NULL_TOKENS", "TOKEN_VOCAB", "EXAMPLES", "example_prompts",
]  # fmt: skip

CATEGORIES = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
RELATIONS = ("left of", "right of", "above", "below")
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
REL_GAP = 6  # the generator's least centre offset along a relation's axis (pixels)
EXAMPLES = (
    "a triangle",
    "a circle and a square",
    "three squares",
    "two red circles",
    "a blue circle",
    "a blue square left of a yellow triangle",
    "a red circle and a blue square",
)
_EXAMPLES_BY_CATEGORY = {
    "single_object": ("a triangle", "a square", "a circle"),
    "two_object": ("a circle and a square", "a triangle and a circle", "a square and a triangle"),
    "counting": ("three squares", "two red circles", "four triangles"),
    "colors": ("a blue circle", "a green triangle", "a yellow square"),
    "position": ("a blue square left of a yellow triangle", "a red circle above a green square", "a triangle right of a circle"),
    "color_attr": ("a red circle and a blue square", "a green triangle and a yellow circle", "a blue triangle and a red square"),
}


def example_prompts() -> dict[str, tuple[str, ...]]:
    """Three example prompts per GenEval category (for the app's prompt box), in
    :data:`CATEGORIES` order; each parses into its category."""
    return {c: _EXAMPLES_BY_CATEGORY[c] for c in CATEGORIES}


class PromptError(ValueError):
    """A prompt outside the grammar (the message says what was expected)."""


@dataclass(frozen=True)
class Req:
    """One group of objects a prompt asks for: ``count`` objects of ``shape`` (in
    ``colour`` when given); exactly ``count`` when ``exact`` (counting), else at least."""

    shape: str
    colour: str | None
    count: int = 1
    exact: bool = False

    def text(self) -> str:
        n = "a" if self.count == 1 else _WORDS[self.count]
        noun = self.shape + ("s" if self.count > 1 else "")
        return " ".join(w for w in (n, self.colour, noun) if w)


@dataclass(frozen=True)
class PromptSpec:
    """A parsed prompt: its category, one or two groups and, for ``position``, the relation
    ``groups[0] RELATION groups[1]``."""

    category: str
    groups: tuple[Req, ...]
    relation: str | None = None

    def text(self) -> str:
        if self.relation:
            return f"{self.groups[0].text()} {self.relation} {self.groups[1].text()}"
        return " and ".join(g.text() for g in self.groups)

    def to_dict(self) -> dict:
        return {
            "category": self.category,
            "groups": [{"shape": g.shape, "colour": g.colour, "count": g.count, "exact": g.exact} for g in self.groups],
            "relation": self.relation,
        }


_GROUP = re.compile(rf"^({'|'.join(NUMBERS)})\s+(?:({'|'.join(COLOURS)})\s+)?({'|'.join(SHAPES)})(s?)$")


def _group(text: str, whole: str) -> Req:
    m = _GROUP.match(text.strip())
    if not m:
        raise PromptError(
            f"cannot read {text.strip()!r} in {whole!r}: expected NUMBER [COLOUR] SHAPE, e.g. 'two red circles' "
            f"(colours: {', '.join(COLOURS)}; shapes: {', '.join(SHAPES)})"
        )
    number, colour, shape, plural = m.groups()
    count = NUMBERS[number]
    if (count > 1) != bool(plural):
        raise PromptError(f"{text.strip()!r} in {whole!r}: the number and the noun disagree")
    return Req(shape, colour, count, exact=count > 1)


def parse(prompt: str) -> PromptSpec:
    """The :class:`PromptSpec` of a prompt in the grammar (module docstring).

    Raises:
        PromptError: one line saying what was expected.
    """
    if not isinstance(prompt, str):
        raise PromptError(f"a prompt is text, got {type(prompt).__name__}")
    text = " ".join(prompt.lower().replace(",", " ").split()).rstrip(".").strip()
    text = re.sub(r"^(a photo of|an image of|a picture of)\s+", "", text)
    if not text:
        raise PromptError("empty prompt; try e.g. 'two red circles' or 'a blue square left of a yellow triangle'")
    for rel in RELATIONS:
        parts = text.split(f" {rel} ")
        if len(parts) == 2:
            a, b = _group(parts[0], prompt), _group(parts[1], prompt)
            if a.count != 1 or b.count != 1:
                raise PromptError(f"{prompt!r}: a position prompt relates two single objects")
            return PromptSpec("position", (a, b), rel)
    parts = text.split(" and ")
    if len(parts) > 2:
        raise PromptError(f"{prompt!r}: at most two groups of objects")
    groups = tuple(_group(p, prompt) for p in parts)
    if len(groups) == 2:
        if any(g.count != 1 for g in groups):
            raise PromptError(f"{prompt!r}: 'X and Y' takes single objects; counting is 'three squares'")
        return PromptSpec("color_attr" if any(g.colour for g in groups) else "two_object", groups)
    g = groups[0]
    if g.count > 1:
        return PromptSpec("counting", groups)
    return PromptSpec("colors" if g.colour else "single_object", groups)


# --- the seeded generator -------------------------------------------------------------
def _pick(rng: np.random.Generator, seq, exclude=()):
    options = [s for s in seq if s not in exclude]
    return options[int(rng.integers(len(options)))]


def layout(rng: np.random.Generator, objs: list[tuple[str, str]], relation: str | None = None) -> Scene | None:
    """Place ``(shape, colour)`` objects at random free positions (the first two in
    ``relation`` when given); ``None`` when no layout was found."""
    top = MAX_SIDE if len(objs) <= 2 else MAX_SIDE - 2 if len(objs) == 3 else MAX_SIDE - 3
    sides = [int(rng.integers(MIN_SIDE, top + 1)) for _ in objs]
    boxes: list[tuple[int, int, int]] = []
    for i, s in enumerate(sides):
        xy = place(rng, [s], boxes)
        if xy is None:
            return None
        boxes.append((xy[0], xy[1], s))
    if relation is not None:
        (ax, ay, sa), (bx, by, sb) = boxes[0], boxes[1]
        dx, dy = (bx + sb / 2) - (ax + sa / 2), (by + sb / 2) - (ay + sa / 2)
        need = {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[relation]
        if need < REL_GAP:
            return None
    return Scene(tuple(Obj(sh, co, x, y, s) for (sh, co), (x, y, s) in zip(objs, boxes)))


def _draw(rng: np.random.Generator, category: str) -> tuple[PromptSpec, list[tuple[str, str]]]:
    def rc() -> str:
        return _pick(rng, COLOURS)

    if category == "single_object":
        sh = _pick(rng, SHAPES)
        return PromptSpec(category, (Req(sh, None),)), [(sh, rc())]
    if category == "colors":
        sh, co = _pick(rng, SHAPES), rc()
        return PromptSpec(category, (Req(sh, co),)), [(sh, co)]
    if category == "counting":
        sh, n = _pick(rng, SHAPES), int(rng.integers(2, 5))
        co = rc() if rng.random() < 0.5 else None
        return PromptSpec(category, (Req(sh, co, n, True),)), [(sh, co or rc()) for _ in range(n)]
    a = _pick(rng, SHAPES)
    if category == "two_object":
        b = _pick(rng, SHAPES, (a,))
        return PromptSpec(category, (Req(a, None), Req(b, None))), [(a, rc()), (b, rc())]
    if category == "color_attr":
        b = _pick(rng, SHAPES, (a,))
        ca = rc()
        cb = _pick(rng, COLOURS, (ca,))
        return PromptSpec(category, (Req(a, ca), Req(b, cb))), [(a, ca), (b, cb)]
    if category == "position":
        b, ca, cb = _pick(rng, SHAPES), rc(), rc()
        while (b, cb) == (a, ca):
            b, cb = _pick(rng, SHAPES), rc()
        rel = _pick(rng, RELATIONS)
        return PromptSpec(category, (Req(a, ca), Req(b, cb)), rel), [(a, ca), (b, cb)]
    raise PromptError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")


def generate(rng: np.random.Generator, category: str | None = None) -> tuple[str, PromptSpec, Scene]:
    """A random prompt of ``category`` (uniform over :data:`CATEGORIES` when ``None``) and a
    scene that satisfies it exactly (the named objects and nothing else), from ``rng``."""
    category = category or CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    spec, objs = _draw(rng, category)
    while True:
        scene = layout(rng, objs, spec.relation)
        if scene is not None:
            return spec.text(), spec, scene


def random_scene(rng: np.random.Generator, max_objects: int = 4) -> Scene:
    """A scene of 1–``max_objects`` objects of random shapes and colours (no prompt)."""
    n = int(rng.integers(1, max_objects + 1))
    objs = [(_pick(rng, SHAPES), _pick(rng, COLOURS)) for _ in range(n)]
    while True:
        scene = layout(rng, objs)
        if scene is not None:
            return scene


def generate_batch(seed: int, n: int, category: str | None = None) -> list[tuple[str, PromptSpec, Scene]]:
    """``n`` :func:`generate` draws from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [generate(rng, category) for _ in range(n)]


# --- structured prompt tokens (the model's condition) -----------------------------------
#: vocabulary size of each token slot: shape A, colour A, count A, shape B, colour B,
#: count B, relation (0 = absent / unspecified in every slot)
TOKEN_VOCAB = (len(SHAPES) + 1, len(COLOURS) + 1, 5, len(SHAPES) + 1, len(COLOURS) + 1, 5, len(RELATIONS) + 1)
NULL_TOKENS = (0,) * len(TOKEN_VOCAB)  # the unconditional prompt of classifier-free guidance


def tokens(spec: PromptSpec) -> tuple[int, ...]:
    """Seven integers: each group's shape, colour and count, then the relation (0 = none).
    Every real prompt has a shape in slot 0, so :data:`NULL_TOKENS` is no prompt's."""
    out: list[int] = []
    for i in range(2):
        if i < len(spec.groups):
            g = spec.groups[i]
            out += [SHAPES.index(g.shape) + 1, COLOURS.index(g.colour) + 1 if g.colour else 0, g.count]
        else:
            out += [0, 0, 0]
    out.append(RELATIONS.index(spec.relation) + 1 if spec.relation else 0)
    return tuple(out)
