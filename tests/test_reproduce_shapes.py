"""The shapes experiments of `reproduce` (issue 26): their plan, and every summary computed
from hand-made cell results whose pass rates, best-of-n picks, paired differences and
verdicts are known exactly; one real candidates cell on the shipped model."""

import pytest

from dts_app.executors import Cell
from dts_app.reproduce import EXPERIMENTS, Context
from dts_app.reproduce import shapes as rs
from dts_app.shapes.prompts import CATEGORIES, parse

CTX = Context(quick=True, seeds=2)
NAMES = ("shapes-base", "shapes-search", "shapes-fk", "shapes-hacking")


def _results(cells, cand=None, sde=None, fit=None) -> dict:
    """Results for every cell: ``cand(category, seed) -> (score, heldout)`` for the ODE
    candidates, ``sde(category, seed) -> heldout`` for the SDE ones, ``fit(category,
    algorithm, k, seed) -> checker score`` for the fitted searches (k: sample-equivalents)."""
    out = {}
    path = 2 * rs.setup(CTX)["steps"]
    for c in cells:
        cat, s = parse(c.config.prompt).category, c.config.seed - CTX.seed
        if c.task == rs.TASK and c.config.solver == "euler":
            score, held = cand(cat, s)
            out[c.id] = {"score": score, "heldout": held, "nfe": 8 * path}
        elif c.task == rs.TASK:
            held = sde(cat, s)
            out[c.id] = {"score": held, "heldout": held, "nfe": 8 * path}
        else:
            h = fit(cat, c.config.algorithm, c.budget // path, s)
            out[c.id] = {"best_score": h, "heldout_score": h, "nfe": c.budget}
    return out


@pytest.fixture(scope="module")
def cells():
    return EXPERIMENTS["shapes-base"].plan(CTX)


def test_registered_and_sharing_one_plan(cells):
    assert all(n in EXPERIMENTS for n in NAMES)
    ids = [c.id for c in cells]
    assert all([c.id for c in EXPERIMENTS[n].plan(CTX)] == ids for n in NAMES)  # one set of runs for all four
    assert len(ids) == len(set(ids))
    st = rs.setup(CTX)
    assert st["steps"] == 16 and st["n_max"] == 8 and st["search_categories"] == ["counting", "colors"]
    cand = [c for c in cells if c.task == rs.TASK and c.config.solver == "euler"]
    assert len(cand) == 6 * 2 and all(c.config.verifier == "supervised" and c.config.n == 8 for c in cand)
    assert [parse(c.config.prompt).category for c in cand] == [c for c in CATEGORIES for _ in range(2)]
    sde = [c for c in cells if c.task == rs.TASK and c.config.solver == "sde"]
    assert len(sde) == 2 * 2 and all(c.config.verifier == "oracle" and c.config.n == 8 for c in sde)
    fit = [c for c in cells if c.mode == "fit"]
    one = (fit[0].config.prompt, fit[0].config.seed)
    runs = sorted((c.config.algorithm, c.budget) for c in fit if (c.config.prompt, c.config.seed) == one)
    assert runs == [("paths", 256), ("smc", 64), ("smc", 128), ("smc", 256), ("tree", 64), ("tree", 256)]
    assert all(c.config.verifier == "oracle" and c.config.heldout == "oracle" and c.config.guidance == 2 for c in fit)
    assert len(fit) == 2 * 2 * 6
    # a full run's prompts extend the quick run's, and every prompt is of its category
    full = Context(quick=False, seeds=8)
    for cat in CATEGORIES:
        assert rs.prompts(full, cat)[:2] == rs.prompts(CTX, cat)
        assert all(parse(p).category == cat for p in rs.prompts(full, cat))
    assert rs.setup(full)["steps"] == 32 and rs.setup(full)["search_categories"] == list(CATEGORIES)


def _summary(name, cells, results):
    return EXPERIMENTS[name].summarize(CTX, cells, results)


def test_base_pass_rate_per_category(cells):
    # single objects: every candidate passes; elsewhere 2 of 8 (graded 0.5 for the rest)
    def cand(cat, s):
        held = [1.0] * 8 if cat == "single_object" else [1.0, 1.0] + [0.5] * 6
        return [0.0] * 8, held

    f = _summary("shapes-base", cells, _results(cells, cand, lambda c, s: [0.0] * 8, lambda *a: 0.0))
    rate = f.data["pass_rate"]
    assert rate["single_object"]["mean"] == 1.0 and rate["counting"]["mean"] == 0.25 and rate["counting"]["se"] == 0
    assert f.data["graded"]["counting"]["mean"] == pytest.approx(0.625)
    assert f.data["single_minus"]["position"] == [0.75, 0.0] and f.verdict == "held"

    def cand2(cat, s):  # single objects no easier than counting: not held
        return [0.0] * 8, [1.0, 1.0] + [0.5] * 6

    f = _summary("shapes-base", cells, _results(cells, cand2, lambda c, s: [0.0] * 8, lambda *a: 0.0))
    assert f.verdict == "not held"


def test_search_curves_and_verdict(cells):
    def cand(cat, s):  # only candidate 0 passes: one sample 1/8, best-of-2 1/4, best-of-8 1
        return [0.0] * 8, [1.0] + [0.5] * 7

    def fit(cat, algo, k, s):  # tree passes at k = 8 on seed 0 only; smc always; paths never
        return 1.0 if algo == "smc" or (algo == "tree" and k == 8 and s == 0) else 0.5

    results = _results(cells, cand, lambda c, s: [0.0] * 8, fit)
    cur = rs.curves(CTX, cells, results, "counting")
    nfe, bon = cur["best-of-n"]
    assert nfe == [32, 64, 256] and [s["mean"] for s in bon] == [0.125, 0.25, 1.0]
    assert [s["mean"] for s in cur["tree"][1]] == [0.0, 0.5] and cur["tree"][0] == [64, 256]
    assert [s["mean"] for s in cur["smc"][1]] == [1.0, 1.0, 1.0] and cur["paths"][1][0]["mean"] == 0.0
    f = _summary("shapes-search", cells, results)
    assert f.data["gain_at_top"]["counting"] == [0.875, 0.0] and f.verdict == "held"
    # nothing beats one sample: not held
    results = _results(cells, lambda c, s: ([0.0] * 8, [1.0] * 8), lambda c, s: [0.0] * 8, lambda *a: 0.5)
    assert _summary("shapes-search", cells, results).verdict == "not held"


def test_fk_pairs_smc_with_best_of_k_on_the_same_prompt(cells):
    def sde(cat, s):  # the last candidate passes: best-of-2, -4 miss it (blocks of the first 8) except best-of-8
        return [0.0] * 7 + [1.0]

    def fit(cat, algo, k, s):
        return 1.0 if algo == "smc" and (k >= 4 or s == 0) else 0.0

    f = _summary("shapes-fk", cells, _results(cells, lambda c, s: ([0.0] * 8, [0.0] * 8), sde, fit))
    # best-of-2 over blocks of 2: 1 block in 4 passes; best-of-4: 1 in 2; best-of-8: 1
    assert [s["mean"] for s in f.data["best_of_k"]] == [0.25, 0.5, 1.0]
    assert [s["mean"] for s in f.data["smc"]] == [0.5, 1.0, 1.0]
    assert [d["mean"] for d in f.data["difference"]] == [0.25, 0.5, 0.0]
    assert f.data["difference"][1]["se"] == 0 and f.data["difference"][1]["n"] == 4
    assert f.verdict == "not held"  # SMC ahead beyond 2 s.e. at k = 4 only (k = 2: ±0.25 noise; k = 8: tie)

    def fit2(cat, algo, k, s):
        return 1.0 if algo == "smc" else 0.0

    f = _summary("shapes-fk", cells, _results(cells, lambda c, s: ([0.0] * 8, [0.0] * 8), sde, fit2))
    assert [d["mean"] for d in f.data["difference"]] == [0.75, 0.5, 0.0] and f.verdict == "held"


def test_hacking_verdicts(cells):
    sde, fit = (lambda c, s: [0.0] * 8), (lambda *a: 0.0)

    def fooled(cat, s):  # the CNN ranks the one passing candidate last
        return [float(i) for i in range(8)], [1.0] + [0.5] * 7

    f = _summary("shapes-hacking", cells, _results(cells, fooled, sde, fit))
    assert f.data["n"] == [1, 2, 4, 8]
    assert [s["mean"] for s in f.data["cnn_score"]] == [3.5, 4.0, 5.0, 7.0]
    assert [s["mean"] for s in f.data["pass_cnn_pick"]] == [0.125, 0.0, 0.0, 0.0]
    assert [s["mean"] for s in f.data["pass_checker_pick"]] == [0.125, 0.25, 0.5, 1.0]
    assert f.data["peak_n"] == 1 and f.verdict == "held"

    def stall(cat, s):  # beyond N = 4 the CNN's score and the checker's picks rise, the CNN's picks do not
        return [5.0] + [0.0] * 6 + [9.0], [1.0] + [0.5] * 6 + [1.0 if s == 0 else 0.5]

    f = _summary("shapes-hacking", cells, _results(cells, stall, sde, fit))
    assert [s["mean"] for s in f.data["pass_cnn_pick"]] == [0.1875, 0.375, 0.75, 0.5]
    assert [s["mean"] for s in f.data["pass_checker_pick"]] == [0.1875, 0.375, 0.75, 1.0]
    assert f.data["upper_half"]["from_n"] == 4 and f.data["upper_half"]["gains"][0] == [2.0, 0.0]
    assert f.verdict == "held" and "hacking by a stall" in f.finding  # the fall from 0.75 is within 2 s.e.

    def aligned(cat, s):  # the CNN ranks the passing candidate first
        return [10.0 - i for i in range(8)], [1.0] + [0.5] * 7

    assert _summary("shapes-hacking", cells, _results(cells, aligned, sde, fit)).verdict == "not held"

    def even(cat, s):  # the CNN's score rises, but its picks pass as often at every N: too few prompts to tell
        return [float(i) for i in range(8)], [1.0 if s == 0 else 0.5] * 8

    f = _summary("shapes-hacking", cells, _results(cells, even, sde, fit))
    assert [s["mean"] for s in f.data["pass_cnn_pick"]] == [0.5] * 4 and f.verdict == "not testable here"
    assert "neither rises nor falls" in f.reason

    def flat(cat, s):  # a constant CNN: its score cannot rise
        return [0.0] * 8, [1.0] + [0.5] * 7

    f = _summary("shapes-hacking", cells, _results(cells, flat, sde, fit))
    assert f.verdict == "not testable here" and "does not rise" in f.reason


def test_candidates_cell_on_the_shipped_model():
    """One real cell through the executor's task: per-candidate CNN and checker scores, the
    ledger's NFEs exact (2 candidates × 2 steps × 2 with guidance), the same twice."""
    from dts_app.executors.cells import run_cell

    cfg = rs._config(CTX, "two red circles", 0, verifier="supervised", n=2, steps=2)
    cell = Cell(cfg, None, "plain", task=rs.TASK)
    a, b = run_cell(cell, {}), run_cell(cell, {})
    assert a == b and a["nfe"] == 2 * 2 * 2 and len(a["score"]) == len(a["heldout"]) == 2
    assert all(0.0 <= h <= 1.0 for h in a["heldout"]) and all(s <= 0.0 for s in a["score"])
