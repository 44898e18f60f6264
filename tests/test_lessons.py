"""Lessons (dts_app/ui/lessons.py): every lesson is a link the page opens to exactly its
settings, the settings fit the app's controls and the public server's caps, and running
it through AppHandlers.run shows what its caption claims (numbers checked here)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from urllib.parse import parse_qsl

import pytest
import torch

from dts_app.ui.findings import REPORT
from dts_app.ui.inputs import INPUTS, SLIDERS, config_from, values_from_query
from dts_app.ui.lessons import (
    LESSONS,
    lesson,
    lesson_for_finding,
    lesson_for_values,
    lesson_note,
    lessons_markdown,
    opening_values,
)
from dts_app.ui.limits import Limits

#: the public server's caps, without its 20 s deadline (a loaded test machine is slower)
LIMITS = replace(Limits.space(), deadline_s=600.0)


@pytest.fixture(scope="module")
def handlers():
    from dts_app.ui.handlers import AppHandlers

    return AppHandlers(limits=LIMITS)


def _run(handlers, values: dict):
    """``(status, result, outputs)`` of one run of these control values."""
    from dts_app.ui.state import SessionState

    out = handlers.run(SessionState(), *[values[k] for k in INPUTS])
    return out["status"], out["state"].result, out


@pytest.fixture(scope="module")
def runs(handlers):
    """Every lesson run once, as the page runs it after opening the lesson's link."""
    out = {}
    for x in LESSONS:
        vals = opening_values(values_from_query(dict(parse_qsl(x.query()))))
        out[x.key] = _run(handlers, vals)
    return out


def _report() -> dict:
    return {e["name"]: e for e in json.loads(REPORT.read_text())["experiments"]}


def _trap():
    from dts_app.backends.mixture import make_preset

    return make_preset("trap")


def _finals(res) -> torch.Tensor:
    return torch.stack([c.x0.reshape(-1) for c in res.candidates]).double()


# ---- the registry ---------------------------------------------------------------------


def test_five_or_six_lessons_each_named_captioned_and_tied_to_a_stored_finding():
    assert 5 <= len(LESSONS) <= 6
    assert len({x.key for x in LESSONS}) == len(LESSONS) and len({x.name for x in LESSONS}) == len(LESSONS)
    report = _report()
    for x in LESSONS:
        sentences = re.findall(r"[.!?](?:\s|$)", x.caption)
        assert len(sentences) == 2, (x.key, x.caption)
        assert x.finding in report, x.key
        assert lesson_for_finding(x.finding) is x
        assert lesson(x.key) is x
        assert set(x.settings) <= set(INPUTS)
    assert lesson_for_finding("self-supervised") is None
    with pytest.raises(KeyError, match="rare-prize"):
        lesson("nope")


def test_each_link_opens_exactly_the_lessons_settings():
    for x in LESSONS:
        assert x.link() == "?" + x.query()
        params = values_from_query(dict(parse_qsl(x.query())))
        opened = opening_values(params)
        assert config_from(opened) == x.config(), x.key
        assert lesson_for_values(opened) is x
        assert lesson_note(opened).startswith(f"**Lesson: {x.name}.**")
    # a knob changed since: no longer the lesson
    changed = dict(lesson("hacking").values(), n=4)
    assert lesson_for_values(changed) is None and lesson_note(changed) == ""
    assert lesson_for_values({"n": "many"}) is None


def test_a_backend_lesson_keeps_values_its_demo_settings_would_change():
    # digits' demo sets guidance 0 and N = 16; a lesson asking for the gmm default guidance
    # must say so in its link, or the page would open it at guidance 0
    from dts_app.ui.lessons import Lesson

    x = Lesson("k", "n", "One. Two.", None, {"backend": "digits", "guidance": 1.0, "n": 8, "steps": 16})
    assert "guidance=1" in x.query() and "n=8" in x.query()
    opened = opening_values(values_from_query(dict(parse_qsl(x.query()))))
    assert config_from(opened) == x.config()


def test_lesson_values_fit_the_controls():
    from dts_app.backends.registry import BACKENDS
    from dts_app.search.registry import ALGORITHMS
    from dts_app.ui.controls import slider_kwargs
    from dts_app.verifiers.registry import verifiers_for

    for x in LESSONS:
        v = x.values()
        for k in SLIDERS:
            s = slider_kwargs(k, v[k])
            assert s["minimum"] <= v[k] <= s["maximum"], (x.key, k, v[k])
        assert v["backend"] in BACKENDS and v["algorithm"] in ALGORITHMS
        assert {v["verifier"], v["heldout"]} <= set(verifiers_for(v["backend"]))
        config_from(v, LIMITS)  # the caps on text and obstacles


def test_lessons_markdown_links_every_lesson_with_its_caption_and_finding():
    md = lessons_markdown()
    titles = {e: r["title"] for e, r in _report().items()}
    for x in LESSONS:
        assert f"[{x.name}]({x.link()})" in md
        assert x.caption in md and titles[x.finding] in md


# ---- what each lesson shows -----------------------------------------------------------


def test_every_lesson_runs_within_the_public_caps(runs):
    for key, (status, res, out) in runs.items():
        assert status.startswith("**finished**"), (key, status)
        assert "per-request cap" not in status and "stopped" not in status, (key, status)
        assert res is not None and res.best is not None and res.error is None, key
        assert all(out[k] is not None for k in ("tree", "trajectories", "embedding")), key  # tree, trajectories, embedding drawn


def test_rare_prize_paths_find_it_where_best_of_n_at_the_same_cost_does_not(handlers, runs):
    mix = _trap()
    prize = lambda x: int(mix.responsibilities(x.double().reshape(1, -1), 0.0).argmax(1)) == 2
    _, res, _ = runs["rare-prize"]
    assert res.ledger.denoiser_nfe == 242 and prize(res.best) and res.best_score > 1.6  # oracle max 1.67
    vals = lesson("rare-prize").values()
    cost = res.ledger.denoiser_nfe // vals["steps"]  # 15 draws: the same cost
    _, bon, _ = _run(handlers, dict(vals, algorithm="best-of-n", n=cost))
    assert not prize(bon.best) and bon.best_score < 0
    _, bon32, _ = _run(handlers, dict(vals, algorithm="best-of-n", n=32))
    _, bon40, _ = _run(handlers, dict(vals, algorithm="best-of-n", n=40))
    assert not prize(bon32.best) and prize(bon40.best) and bon40.ledger.denoiser_nfe == 640


def test_hacking_the_classifier_climbs_while_the_true_density_falls(handlers, runs):
    _, res, out = runs["hacking"]
    assert res.best_score > -0.001  # the classifier's log P(target): at its ceiling
    assert res.heldout_score < -4.0 and res.heldout_score < res.best_score - 4.0
    _, small, _ = _run(handlers, dict(lesson("hacking").values(), n=4))
    assert small.heldout_score > res.heldout_score + 2.0  # best-of-4's pick is truer
    assert out["hacking"].layout.title.text.startswith("Verifier hacking")


def test_obstacle_smc_keeps_the_law_where_repulsion_distorts_it(handlers, runs):
    mix = _trap()
    exact = _report()["obstacles"]["data"]["modes"]["smc"]
    share0, logp0 = exact["target_prize_share"], exact["target_mean_log_p0"]

    def law(res):
        x = _finals(res)
        share = float((mix.responsibilities(x, 0.0).argmax(1) == 2).double().mean())
        return share, float(mix.log_prob(x, 0.0).mean())

    _, res, _ = runs["obstacle-fidelity"]
    assert len(res.candidates) == 256 and res.metrics["collision_rate"] == 0
    share, logp = law(res)
    assert abs(share - share0) < 0.03 and abs(logp - logp0) < 0.3, (share, logp)
    _, rep, _ = _run(handlers, dict(lesson("obstacle-fidelity").values(), avoid="repulsion"))
    r_share, r_logp = law(rep)
    assert rep.metrics["collision_rate"] == 0
    assert r_logp < logp0 - 1.0 and abs(r_share - share0) > abs(share - share0), (r_share, r_logp)


def test_smc_samples_the_tilted_law_best_of_n_does_not(handlers, runs):
    from dts_app.search.fidelity import tilted_mixture

    mix = _trap()
    cfg = lesson("tilted").config()
    target = tilted_mixture(mix, 2, cfg.temperature)  # the app's τ
    exact, _ = target.sample(20_000, torch.Generator().manual_seed(0))
    _, res, _ = runs["tilted"]
    x = _finals(res)
    assert len(x) == 64 and cfg.temperature == 0.1
    assert bool((mix.responsibilities(x, 0.0).argmax(1) == 2).all())
    sd, sd0 = x.std(0), exact.std(0)
    assert bool(((sd / sd0 - 1).abs() < 0.3).all()), (sd, sd0)
    lp, lp0 = float(mix.log_prob(x, 0.0).mean()), float(mix.log_prob(exact, 0.0).mean())
    assert abs(lp - lp0) < 0.1, (lp, lp0)
    _, bon, _ = _run(handlers, dict(lesson("tilted").values(), algorithm="best-of-n"))
    xb = _finals(bon)
    assert float((mix.responsibilities(xb, 0.0).argmax(1) == 2).double().mean()) < 0.3
    assert bool((xb.std(0) > 5 * sd0).all())


def test_digits_the_held_out_judge_agrees_with_the_pick(handlers, runs):
    _, res, _ = runs["digits"]
    assert res.heldout_score > -0.01 and res.best_score > -0.01  # both read a 3
    _, one, _ = _run(handlers, dict(lesson("digits").values(), n=1))
    assert one.heldout_score < -30  # one unguided draw on this seed: far from a 3


def test_shapes_best_of_8_by_the_checker_keeps_a_passing_sample(runs):
    """2 of the 8 samples pass the checker (their gallery badges say ✓); the pick passes and
    the CNN judge it never used scores it near the top (log P of the prompt's attributes)."""
    from dts_app.shapes.checker import check

    _, res, out = runs["shapes"]
    passed = [check(img.float().clamp(0, 1), "three squares").passed for img in res.images]
    assert sum(passed) == 2 and len(passed) == 8
    best = next(i for i, c in enumerate(res.candidates) if c.node_id == res.best_node)
    assert passed[best] and res.best_score == 1.0
    assert res.heldout_score > -0.5  # the CNN agrees
    captions = [c for _, c in out["images"]]
    assert sum(c.lstrip("★ ").startswith("✓") for c in captions) == 2
