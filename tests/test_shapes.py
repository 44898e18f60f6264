"""The shapes world: renderer, prompt grammar, seeded generator and the exact checker."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from dts_app.shapes.checker import check, describe, find_objects, summary
from dts_app.shapes.prompts import (
    CATEGORIES,
    EXAMPLES,
    NULL_TOKENS,
    RELATIONS,
    PromptError,
    PromptSpec,
    Req,
    example_prompts,
    generate_batch,
    parse,
    random_scene,
    tokens,
)
from dts_app.shapes.scene import COLOURS, PALETTE, SHAPES, Obj, Scene, mask, render

PER_CATEGORY = 100


@pytest.fixture(scope="module")
def draws():
    return {cat: generate_batch(100 + k, PER_CATEGORY, cat) for k, cat in enumerate(CATEGORIES)}


def test_render_range_shape_and_palette():
    scene = Scene((Obj("circle", "red", 2, 3, 9), Obj("triangle", "blue", 18, 18, 11)))
    img = render(scene)
    assert img.shape == (3, 32, 32) and img.dtype == np.float32
    assert img.min() >= 0 and img.max() <= 1
    colours = {tuple(img[:, y, x]) for y in range(32) for x in range(32)}
    assert colours == {(0.5, 0.5, 0.5), tuple(PALETTE[0]), tuple(PALETTE[2])}
    assert mask(Obj("square", "red", 0, 0, 8)).sum() == 64


@pytest.mark.parametrize("category", CATEGORIES)
def test_checker_passes_every_clean_render(draws, category):
    """Every category, 100 seeded scenes each: the checker reads back exactly the scene
    (shapes, colours, centres) and the generated prompt passes with score 1."""
    for text, spec, scene in draws[category]:
        assert spec.category == category and parse(text) == spec
        img = render(scene)
        found = find_objects(img)
        want = sorted((o.shape, o.colour, *o.centre) for o in scene.objects)
        assert sorted((f.shape, f.colour, f.cx, f.cy) for f in found) == want
        r = check(img, text)
        assert r.passed and r.score == 1.0, (text, scene, r)
        assert check(torch.from_numpy(img), spec).passed  # torch input too


def test_checker_reads_random_scenes_exactly():
    rng = np.random.default_rng(5)
    for _ in range(300):
        scene = random_scene(rng)
        found = find_objects(render(scene))
        assert sorted((f.shape, f.colour, f.cx, f.cy) for f in found) == sorted((o.shape, o.colour, *o.centre) for o in scene.objects)


def _mismatch(spec: PromptSpec) -> PromptSpec:
    """A prompt the scene of ``spec`` does not satisfy."""
    g = spec.groups
    if spec.category == "position":
        flip = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
        return replace(spec, relation=flip[spec.relation])
    if spec.category == "counting":
        return replace(spec, groups=(replace(g[0], count=g[0].count + 1 if g[0].count < 4 else 2),))
    if spec.category == "colors":
        return replace(spec, groups=(replace(g[0], colour=COLOURS[(COLOURS.index(g[0].colour) + 1) % 4]),))
    if spec.category == "single_object":
        return replace(spec, groups=(replace(g[0], shape=SHAPES[(SHAPES.index(g[0].shape) + 1) % 3]),))
    if spec.category == "two_object":
        third = next(s for s in SHAPES if s not in (g[0].shape, g[1].shape))
        return replace(spec, groups=(g[0], replace(g[1], shape=third)))
    return replace(spec, groups=(replace(g[0], colour=g[1].colour), replace(g[1], colour=g[0].colour)))


@pytest.mark.parametrize("category", CATEGORIES)
def test_checker_fails_mismatched_prompts(draws, category):
    for text, spec, scene in draws[category][:50]:
        bad = _mismatch(spec)
        r = check(render(scene), parse(bad.text()))
        assert not r.passed and 0.0 <= r.score < 1.0, (text, bad.text(), r)


def test_graded_score_gives_partial_credit():
    scene = Scene((Obj("circle", "red", 2, 2, 9), Obj("square", "green", 20, 20, 9)))
    img = render(scene)
    r = check(img, "a red circle and a blue square")
    assert not r.passed and r.score == pytest.approx(0.75)  # the circle right, the square in another colour
    assert dict(r.credits) == {"a red circle": 1.0, "a blue square": 0.5}
    assert check(img, "a red circle and a green square").passed
    assert check(img, "three circles").score == pytest.approx(1 / 3)
    assert check(img, "two circles").score == pytest.approx(0.5)
    assert check(img, "a triangle").score == 0.0
    r = check(img, "a red circle above a green square")
    assert r.passed and check(img, "a red circle below a green square").score == pytest.approx(2 / 3)
    assert check(img, "a red circle left of a green square").passed
    assert not check(img, "a red circle right of a green square").passed


def test_noise_and_empty_images():
    blank = np.full((3, 32, 32), 0.5, dtype=np.float32)
    assert find_objects(blank) == () and not check(blank, "a circle").passed
    rng = np.random.default_rng(0)
    img = render(Scene((Obj("square", "yellow", 10, 10, 10),)))
    noisy = np.clip(img + 0.15 * rng.standard_normal(img.shape).astype(np.float32), 0, 1)
    assert check(noisy, "a yellow square").passed  # moderate pixel noise does not change the verdict
    speckle = blank.copy()
    speckle[0, 5, 5] = 1.0  # one red pixel is not an object
    assert find_objects(speckle) == ()


def test_parser_round_trip_categories_and_errors():
    cats = [parse(e).category for e in EXAMPLES]
    assert cats == ["single_object", "two_object", "counting", "counting", "colors", "position", "color_attr"]
    for e in EXAMPLES:
        assert parse(e).text() == e and parse(f"A photo of {e.upper()}.") == parse(e)
    assert parse("two red circles").groups == (Req("circle", "red", 2, True),)
    assert parse("a blue square left of a yellow triangle").relation == "left of"
    for bad in ("", "a hexagon", "two circle", "a circles", "a red circle and a square and a triangle",
                "two circles left of a square", "purple square", 3):  # fmt: skip
        with pytest.raises(PromptError):
            parse(bad)


def test_generator_is_seeded_and_covers_the_grammar():
    a, b, c = generate_batch(7, 50), generate_batch(7, 50), generate_batch(8, 50)
    assert a == b and a != c
    draws = generate_batch(0, 600)
    assert {spec.category for _, spec, _ in draws} == set(CATEGORIES)
    assert {spec.relation for _, spec, _ in draws} == set(RELATIONS) | {None}
    assert {len(s.objects) for _, _, s in draws} == {1, 2, 3, 4}


def test_tokens_distinguish_prompts():
    seen = {}
    for text, spec, _ in generate_batch(1, 400):
        tok = tokens(spec)
        assert len(tok) == 7 and tok != NULL_TOKENS
        assert seen.setdefault(tok, text) == text  # one prompt per token tuple


def test_example_prompts_per_category():
    ex = example_prompts()
    assert list(ex) == list(CATEGORIES) and all(len(v) == 3 and len(set(v)) == 3 for v in ex.values())
    assert all(parse(p).category == cat and parse(p).text() == p for cat, ps in ex.items() for p in ps)


def test_describe_and_summary_of_a_rendered_scene():
    scene = Scene((Obj("circle", "red", 2, 3, 9), Obj("square", "blue", 18, 18, 11)))
    img = render(scene)
    text = describe(img, "a red circle left of a blue square")
    assert text.startswith("✓ **passes** *a red circle left of a blue square* (position); graded score 1.00")
    assert "- a red circle: ✓" in text and "- left of: ✓" in text and "2 objects found:" in text
    assert "| circle | red | (6.5, 7.5) | 69 |" in text and "| square | blue | (23.5, 23.5) | 121 |" in text
    text = describe(img, "two blue squares")
    assert text.startswith("✗ **fails**") and "- two blue squares: 0.5" in text  # one of two: credit ½
    assert describe(img).startswith("2 objects found:")  # no prompt: the scene only
    assert "No objects found" in describe(np.full((3, 32, 32), 0.5, dtype=np.float32), "a circle")
    r = check(img, "a red circle right of a blue square")
    assert summary(r) == "a red circle ✓ · a blue square ✓ · right of ✗" == summary(r.to_dict())


def test_gallery_badges_from_checks_or_the_prompt():
    from dts_app.verifiers.shapes import check_results, pass_flags
    from dts_app.viz.gallery import image_gallery

    good = render(Scene((Obj("circle", "red", 2, 3, 9), Obj("circle", "red", 18, 18, 9))))
    bad = render(Scene((Obj("circle", "red", 2, 3, 9),)))
    assert pass_flags(torch.from_numpy(np.stack([good, bad])), "two red circles") == [True, False]
    rows = image_gallery([(good, 1.0, 0.5, 3), (bad * 2 - 1, 0.25, None, 4)], best_node=3, prompt="two red circles")
    assert [c for _, c in rows] == ["★ ✓ 1 · 0.5 — two red circles ✓", "✗ 0.25 · – — two red circles 0.5"]
    assert rows[0][0].shape == (96, 96, 3) and rows[0][0].dtype == np.uint8
    (_, cap), = image_gallery([(bad, 0.1, None, 5, check_results(bad[None], "a red circle")[0].to_dict())])
    assert cap == "✓ 0.1 · – — a red circle ✓"  # a given check wins; no prompt needed
    (_, cap), = image_gallery([(bad, 0.1, None, 5)])
    assert cap == "0.1 · –"  # no check, no prompt: no badge
    (_, cap), = image_gallery([(np.zeros((1, 8, 8)), 0.1, None, 5)], prompt="a circle")
    assert cap == "0.1 · –"  # a one-channel image (digits) is never checked
