"""The verifier-hacking view: summary, verdict and figure, on synthetic and real candidates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from dts_app.config import SearchConfig
from dts_app.search import run_search
from dts_app.search.problem import build_problem
from dts_app.search.registry import make_algorithm
from dts_app.viz.hacking import hacking_figure, hacking_summary, hacking_verdict, spearman


def _cands(scores, held):
    return [{"score": s, "heldout_score": h, "node_id": 100 + i} for i, (s, h) in enumerate(zip(scores, held))]


def test_anti_correlated_candidates_are_hacking():
    rng = np.random.default_rng(1)
    s = rng.normal(size=40)
    h = -s + 0.1 * rng.normal(size=40)
    summ = hacking_summary(_cands(s, h), total_nfe=400)
    assert summ["rho"] < -0.9 and summ["chosen"] == int(np.argmax(s))
    assert summ["chosen_rank"] >= 38  # the search's pick is near the held-out bottom
    assert hacking_verdict(summ).startswith("Verifier hacking")
    assert summ["budget"]["x"][-1] == 400 and summ["budget"]["x"][0] == 10


def test_correlated_candidates_show_no_sign():
    rng = np.random.default_rng(2)
    s = rng.normal(size=50)
    h = 2 * s + 0.05 * rng.normal(size=50)
    summ = hacking_summary(_cands(s, h))
    v = hacking_verdict(summ)
    assert v.startswith("No sign of hacking") and summ["chosen_rank"] == 1 and summ["chosen_percentile"] == 1.0
    assert summ["heldout_fall"] == 0.0 and summ["budget"]["x"] == list(range(1, 51))


def test_missing_heldout_scores_and_edge_cases():
    summ = hacking_summary(_cands([0.1, 0.5, 0.3], [None, None, None]))
    assert summ["rho"] is None and summ["chosen"] == 1 and summ["chosen_rank"] is None
    assert hacking_verdict(summ).startswith("No held-out")
    assert summ["budget"]["oracle"] == [None, None, None]
    empty = hacking_summary([])
    assert empty["chosen"] is None and empty["budget"]["x"] == []
    assert hacking_verdict(empty).startswith("No finished candidates")
    one = hacking_summary(_cands([1.0], [2.0]), total_nfe=8)
    assert one["chosen_rank"] == 1 and one["budget"]["x"] == [8.0] and one["heldout_fall"] == 0.0
    assert hacking_verdict(one).startswith("Too few")
    ties = hacking_summary(_cands([1.0, 1.0, 1.0, 0.0], [3.0, 1.0, 1.0, 1.0]))
    assert ties["chosen"] == 0  # ties go to the first finished
    assert ties["rho"] == pytest.approx(spearmanr([1, 1, 1, 0], [3, 1, 1, 1])[0])
    flat = hacking_summary(_cands([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert flat["rho"] is None and flat["chosen_rank"] == 1
    assert not hacking_verdict(flat).startswith("Verifier hacking")


def test_spearman_matches_scipy_on_random_data():
    rng = np.random.default_rng(0)
    for n in (2, 5, 17, 200):
        a, b = rng.normal(size=n), rng.normal(size=n)
        b[: n // 3] = np.round(b[: n // 3])  # some ties
        assert spearman(a, b) == pytest.approx(spearmanr(a, b)[0], abs=1e-12)
    assert spearman([1.0], [2.0]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_budget_series_is_monotone_in_search_score():
    rng = np.random.default_rng(3)
    s, h = rng.normal(size=60), rng.normal(size=60)
    h[::7] = np.nan
    held = [None if np.isnan(v) else float(v) for v in h]
    summ = hacking_summary(_cands(s, held), total_nfe=600)
    b = summ["budget"]
    assert np.all(np.diff(b["score"]) >= 0) and b["score"][-1] == s.max()
    assert [s[p] for p in b["pick"]] == b["score"]
    assert b["heldout"] == [held[p] for p in b["pick"]]
    oracle = [o for o in b["oracle"] if o is not None]
    assert np.all(np.diff(oracle) >= 0) and oracle[-1] == max(v for v in held if v is not None)
    assert all(o is None or o >= hh for o, hh in zip(b["oracle"], b["heldout"]) if hh is not None)
    assert summ["n_pairs"] == 60 - len(range(0, 60, 7))


def _real(verifier: str, heldout: str, preset: str = "hack", seed: int = 0, n: int = 64):
    cfg = SearchConfig(preset=preset, verifier=verifier, heldout=heldout, n=n, steps=16, seed=seed)
    r = run_search(build_problem(cfg), make_algorithm("best-of-n", cfg))
    cands = [c.to_dict() for c in r.candidates]
    return r, hacking_summary(cands, total_nfe=r.ledger.denoiser_nfe)


def test_real_hack_preset_shows_hacking():
    # docs/search.md "Verifier hacking, reproduced": hack preset, best-of-N on the supervised
    # (linear classifier) verifier with the oracle held out, 16 Euler steps.
    r, summ = _real("supervised", "oracle")
    assert summ["chosen_node"] == r.best_node and summ["chosen_heldout"] == pytest.approx(r.heldout_score)
    assert summ["budget"]["x"][-1] == r.ledger.denoiser_nfe
    # the search score keeps rising, the pick's held-out log-density falls from its peak and
    # the final pick is mid-pack on the oracle, even though ρ over all candidates is positive
    # (the wrong class is bad on both verifiers)
    assert summ["search_gain"] > 0 and summ["heldout_fall"] > 1.0
    assert summ["chosen_percentile"] < 0.5 and summ["rho"] > 0.5
    assert hacking_verdict(summ).startswith("Verifier hacking: the search score rose")


def test_real_runs_without_hacking():
    # searching on the oracle with the classifier held out: the classifier agrees broadly but
    # ranks the oracle's pick 18th of 64, so the data supports only "weak agreement"
    _, summ = _real("oracle", "supervised")
    assert summ["rho"] > 0.7 and summ["heldout_fall"] == 0.0
    assert hacking_verdict(summ).startswith("Weak agreement")
    # on trap (one target mode, no broad classes to drift along) the classifier is not hacked:
    # its pick is the oracle's second best
    _, summ = _real("supervised", "oracle", preset="trap")
    assert summ["rho"] > 0.95 and summ["chosen_rank"] <= 6
    assert hacking_verdict(summ).startswith("No sign of hacking")


def test_hacking_figure_has_two_panels_and_a_star():
    rng = np.random.default_rng(4)
    s = rng.normal(size=12)
    summ = hacking_summary(_cands(s, -s), total_nfe=120)
    fig = hacking_figure(summ)
    names = [tr.name for tr in fig.data]
    assert {"candidates", "chosen", "pick: search score", "pick: held-out", "oracle pick: held-out"} <= set(names)
    star = next(tr for tr in fig.data if tr.name == "chosen")
    assert star.marker.symbol == "star" and star.x[0] == s.max() and "node 1" in star.text[0]
    assert fig.layout.xaxis.domain[1] < fig.layout.xaxis2.domain[0]  # two side-by-side panels
    held = next(tr for tr in fig.data if tr.name == "pick: held-out")
    assert held.yaxis != next(tr for tr in fig.data if tr.name == "pick: search score").yaxis
    assert fig.layout.title.text.replace("<br>", " ") == hacking_verdict(summ) and fig.layout.uirevision == "hacking"
    oracle = next(tr for tr in fig.data if tr.name == "oracle pick: held-out")
    assert oracle.line.dash == "dash"
    for summ in (hacking_summary([]), hacking_summary(_cands([1.0, 2.0], [None, None]))):
        fig = hacking_figure(summ)
        assert "chosen" not in [tr.name for tr in fig.data] and fig.layout.annotations


def _verdicts(rho: float, n: int, draws: int = 1500, seed: int = 0) -> dict[str, float]:
    """Shares of each verdict over ``draws`` seeded bivariate normal samples of ``n``
    (search, held-out) score pairs with true correlation ``rho``."""
    rng = np.random.default_rng(seed)
    out = {"hack": 0, "few": 0, "other": 0}
    for _ in range(draws):
        s = rng.normal(size=n)
        h = rho * s + np.sqrt(1 - rho * rho) * rng.normal(size=n)
        v = hacking_verdict(hacking_summary(_cands(s, h), total_nfe=8 * n))
        out["hack" if v.startswith("Verifier hacking") else "few" if v.startswith("Too few") else "other"] += 1
    return {k: c / draws for k, c in out.items()}


def test_the_verdict_is_right_at_the_rates_documented():
    """Verifiers that agree (true ρ 0.8) are almost never called hacked, verifiers that
    disagree (true ρ −0.5) almost always, and below MIN_PAIRS the view says it cannot tell
    (a small lesson run once read "hacking" on a chance ρ < 0 over 8 candidates)."""
    assert _verdicts(0.8, 8, draws=300)["few"] == 1.0
    assert _verdicts(0.8, 16)["hack"] <= 0.03  # 0.021; it was 0.18–0.21 before the bottom-half and minimum-N guards
    assert _verdicts(-0.5, 16)["hack"] >= 0.95
    v = hacking_verdict(hacking_summary(_cands([3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0])))
    assert v == "Too few candidates to judge hacking (4 with both scores; need 12): ρ = −1.00, give or take 0.58 at this N"
