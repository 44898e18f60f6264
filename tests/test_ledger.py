"""Ledger counts and budgets, exact."""

import pytest
import torch

from dts_app.backends.base import Backend, Condition
from dts_app.backends.gmm import GMMBackend
from dts_app.config import SearchConfig
from dts_app.ledger import Budget, BudgetExceeded, Ledger
from dts_app.search import Engine, Problem, run_search
from dts_app.search.problem import build_problem
from dts_app.search.registry import make_algorithm


class _CFGToy(Backend):
    """v = x·(guidance) : a toy with classifier-free guidance (2 forwards per call)."""

    name, latent_shape, supports_guidance = "cfg-toy", (2,), True

    def _velocity(self, x, t, cond):
        return x * cond.guidance


@pytest.mark.parametrize("solver,per_path", [("euler", 10), ("heun", 19), ("sde", 10)])
def test_path_costs(solver, per_path):
    """Euler and SDE: one evaluation per step; Heun: two, but the step onto t = 0 is an
    Euler step (EDM), so 2·S − 1."""
    p = Problem(GMMBackend("trap"), Condition(), None, solver=solver, steps=10)
    eng = Engine(p)
    beam = eng.start([(i,) for i in range(5)])
    for beam in eng.solve(beam):
        pass
    assert eng.ledger.denoiser_nfe == 5 * per_path
    assert p.path_nfe() == per_path


def test_cfg_doubles_nfe():
    b = _CFGToy()
    for guidance, cost in ((1.0, 1), (3.0, 2)):
        p = Problem(b, Condition(None, guidance), None, steps=4)
        eng = Engine(p)
        beam = eng.start([(0,), (1,), (2,)])
        for beam in eng.solve(beam):
            pass
        assert eng.ledger.denoiser_nfe == 3 * 4 * cost
        assert eng.ledger.denoiser_calls == 4


def test_budget_refuses_before_work():
    led = Ledger(Budget(10))
    led.charge_denoiser(4, 2)
    assert led.remaining == 2 and led.can_afford(2) and not led.can_afford(3)
    with pytest.raises(BudgetExceeded, match="8 of 10"):
        led.charge_denoiser(3)
    assert led.denoiser_nfe == 8 and led.denoiser_calls == 1
    with pytest.raises(ValueError):
        Budget(0)


def test_budget_exhaustion_returns_best_found():
    cfg = SearchConfig(preset="trap", n=8, steps=8, solver="heun")
    p = build_problem(cfg)
    # best-of-N plans whole paths (15 NFEs each: Heun, 8 steps, last one Euler) and never exceeds the cap
    res = run_search(p, make_algorithm("best-of-n", cfg), budget=50)
    assert res.ledger.denoiser_nfe == 45 and len(res.candidates) == 3
    assert res.best_score == max(c.score for c in res.candidates)
    # an engine interrupted mid-path by the budget keeps what it had finished
    eng = Engine(p, budget=20)
    beam = eng.start([(0,)])
    for beam in eng.solve(beam):
        pass
    eng.finish(beam)
    with pytest.raises(BudgetExceeded):
        b2 = eng.start([(1,)])
        for b2 in eng.solve(b2):
            pass
    r = eng.result("budget exhausted")
    assert r.best_score == eng.finals[0].score and eng.ledger.denoiser_nfe <= 20


def test_verifier_and_heldout_counted_separately():
    cfg = SearchConfig(preset="trap", n=6, steps=5)
    res = run_search(build_problem(cfg), make_algorithm("best-of-n", cfg))
    d = res.ledger.to_dict()
    assert d["denoiser_nfe"] == 30 and d["verifier_calls"] == 6 and d["heldout_calls"] == 6
    assert d["decoder_calls"] == 0
    torch.testing.assert_close(res.best, max(res.candidates, key=lambda c: c.score).x0)
