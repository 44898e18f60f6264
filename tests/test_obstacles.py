"""Obstacles on the exact mixture: collision rates, the three modes, exact ledgers."""

import json
import math

import pytest
import torch

from dts_app.__main__ import main
from dts_app.cli.sample import run_sampling
from dts_app.config import ConfigError, ObstacleSpec, SearchConfig
from dts_app.rng import stream
from dts_app.search import run_search
from dts_app.search import sampling_metrics as sample_metrics
from dts_app.search.problem import build_problem
from dts_app.search.registry import ALGORITHMS, make_algorithm

HAZARD = (ObstacleSpec("component", 1),)  # trap's hazard mode: mean (1.6, 0.4), std 0.245
Q = 0.9  # 3.7 hazard std; the prize mode lies 0.66 beyond it (3.9 of its std)


def _sample(avoid, n=2000, steps=32, **kw):
    cfg = SearchConfig(preset="trap", avoid=avoid, obstacles=HAZARD, q_star=Q, n=n, steps=steps, **kw)
    problem, eng, beam = run_sampling(cfg)
    return eng, beam, sample_metrics(eng, beam)


def test_eta0_collision_rate_is_the_modes_mass():
    eng, beam, m = _sample("none", eta=0.0)
    mix = build_problem(SearchConfig(preset="trap"), verifiers=False).backend.mixture
    # exact: P(|x − μ_h| ≤ Q) = Σ_k w_k P_k(...); hazard: 1 − exp(−Q²/2σ²); others ≈ 0
    sigma2 = float(mix.variances[1, 0])
    expected = float(mix.weights[1]) * (1 - math.exp(-(Q**2) / (2 * sigma2)))
    se = math.sqrt(expected * (1 - expected) / 2000)
    assert abs(m["collision_rate"] - expected) < 4 * se + 0.01  # Monte Carlo + 32-step discretisation
    assert eng.ledger.denoiser_nfe == 2000 * 32


def test_repulsion_halves_collisions_at_no_extra_cost():
    _, _, base = _sample("none", n=1000)
    eng, _, m = _sample("repulsion", n=1000, eta=1.0)
    assert m["collision_rate"] <= base["collision_rate"] / 2
    assert eng.ledger.denoiser_nfe == 1000 * 32


def test_revert_leaves_no_unflagged_collision_and_counts_exactly():
    eng, beam, m = _sample("revert", n=300, steps=16, max_reverts=3)
    nodes = eng.trace.nodes
    for j, nid in enumerate(beam.node_ids):
        if nodes[nid].inside_q:
            assert "revert_exhausted" in beam.flags[j]
    assert m["exhausted"] == sum("revert_exhausted" in f for f in beam.flags)
    reverted = [n for n in nodes if n.status == "reverted"]
    # every retry leaves exactly one rejected try in the tree, and costs one velocity
    # evaluation, except at the last step where t = 0 and x̂0 = x costs nothing
    assert eng.ledger.reverts > 0 and len(reverted) == eng.ledger.reverts
    at_zero = sum(n.t == 0.0 for n in reverted)
    assert eng.ledger.denoiser_nfe == 300 * 16 + eng.ledger.reverts - at_zero
    assert m["collision_rate"] < 0.3 * 0.95


def test_prune_drops_paths_entering_q_star():
    eng, beam, m = _sample("prune", n=400, steps=16)
    assert all(not eng.trace.nodes[i].inside_q for i in beam.node_ids)
    assert m["pruned"] == 400 - len(beam) > 0


def test_same_seed_same_tree_with_reverts():
    cfg = SearchConfig(preset="trap", avoid="revert", q_star=Q, n=16, steps=12, max_reverts=2)
    a = run_search(build_problem(cfg), make_algorithm("best-of-n", cfg)).to_dict()
    b = run_search(build_problem(cfg), make_algorithm("best-of-n", cfg)).to_dict()
    assert json.dumps(a) == json.dumps(b)
    assert any(n["status"] == "reverted" for n in a["tree"]["nodes"])


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
@pytest.mark.parametrize("avoid", ["repulsion", "revert", "prune"])
def test_modes_work_with_every_algorithm(algorithm, avoid):
    cfg = SearchConfig(preset="trap", algorithm=algorithm, avoid=avoid, q_star=Q, n=4, m=2, steps=8, budget=400, iterations=2)
    res = run_search(build_problem(cfg), make_algorithm(algorithm, cfg), cfg.budget)
    assert res.ledger.denoiser_nfe <= 400
    assert res.metrics["n_final"] == len(res.candidates)
    assert res.obstacles and res.obstacles[0]["kind"] == "component"
    if res.candidates and avoid != "revert":
        assert res.metrics["collision_rate"] <= 0.5


def test_measure_on_noisy_state_and_point_obstacles():
    cfg = SearchConfig(preset="trap", avoid="prune", measure="xt", q_star=0.5, n=50, steps=8,
                       obstacles=(ObstacleSpec.parse("point:1.6,0.4"), ObstacleSpec.parse("ball:-1.5,-1,0.3@q=0.2")))  # fmt: skip
    problem, eng, beam = run_sampling(cfg)
    desc = problem.avoidance.describe()
    assert [d["kind"] for d in desc] == ["point", "ball"] and desc[1]["q_star"] == 0.2 and desc[1]["radius"] == 0.3
    root = eng.trace.nodes[0]
    # at t = 1 both obstacles are carried to the origin (radius 0): D(x_1, 1) = |x_1|
    x1 = torch.randn(2, generator=stream(cfg.seed, 0))  # root 0's noise: first draw of stream (seed, 0)
    assert root.D == pytest.approx(float(x1.norm()), rel=1e-6)


def test_bad_obstacles_give_clear_errors():
    with pytest.raises(ConfigError, match="needs 2 coordinates"):
        build_problem(SearchConfig(preset="trap", avoid="repulsion", obstacles=(ObstacleSpec.parse("point:1,2,3"),)))
    with pytest.raises(ConfigError, match="component 9"):
        build_problem(SearchConfig(preset="trap", avoid="repulsion", obstacles=(ObstacleSpec("component", 9),)))
    with pytest.raises(ConfigError, match="--avoid"):
        build_problem(SearchConfig(preset="eight-gaussians", avoid="repulsion"))


def test_cli_obstacle_json(tmp_path):
    out = tmp_path / "o.json"
    argv = ["search", "--preset", "trap", "--n", "8", "--steps", "8", "--obstacle", "component:1", "--avoid", "revert",
            "--q-star", str(Q), "--max-reverts", "2", "--no-x0", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    d = json.loads(out.read_text())
    ob = d["obstacles"][0]
    assert ob["kind"] == "component" and ob["space"] == "x0" and ob["points"] == [[1.600000023841858, 0.4000000059604645]]
    m = d["metrics"]
    for key in ("collision_rate", "min_D", "reverts", "nfe_overhead", "score_change", "baseline_collision_rate"):
        assert key in m
    assert m["reverts"] == d["ledger"]["reverts"]
    at_zero = sum(n["status"] == "reverted" and n["t"] == 0.0 for n in d["tree"]["nodes"])
    assert d["ledger"]["denoiser_nfe"] == 8 * 8 + m["reverts"] - at_zero
    assert abs(m["nfe_overhead"] - (m["reverts"] - at_zero) / 64) < 1e-12


def test_repulsion_strength_is_monotone_in_eta():
    """Repulsion is a potential-field flow with step control (no cap): η sets its strength."""
    rates = [_sample("repulsion", n=600, eta=eta)[2]["collision_rate"] for eta in (0.0, 0.03, 0.1, 1.0)]
    assert rates[0] > 0.25 and rates[0] >= rates[1] >= rates[2] >= rates[3] and rates[3] <= 0.01
    assert rates[1] > rates[3]


def test_revert_uses_the_configured_gamma():
    a = _sample("revert", n=300, steps=16, sde_gamma=0.5)[0]
    b = _sample("revert", n=300, steps=16, sde_gamma=1.5)[0]
    assert a.ledger.reverts > 0 and a.ledger.reverts != b.ledger.reverts
    with pytest.raises(ConfigError, match="γ > 0"):
        SearchConfig(avoid="revert", sde_gamma=0.0).validate()


def test_measure_xt_carries_q_star_to_t():
    """On the noisy state Q* shrinks with the obstacle, (1 − t)·Q*: pure noise at t = 1 is
    never inside, and prune keeps the paths a measurement on x̂0 keeps too (about 70%)."""
    eng, beam, m = _sample("prune", n=1000, steps=16, measure="xt")
    starts = [n for n in eng.trace.nodes if n.t == 1.0]
    assert starts and not any(n.inside_q for n in starts)
    assert 0.6 < len(beam) / 1000 < 0.85


def test_every_obstacle_run_reports_fidelity(capsys):
    """sample with obstacles reports fidelity to p0(x | D > Q*) beside collision and NFEs."""
    assert main(["sample", "--n", "300", "--steps", "16", "--avoid", "prune", "--obstacle", "point:1.6,0.4",
                 "--q-star", "0.9"]) == 0  # fmt: skip
    f = json.loads(capsys.readouterr().out)["metrics"]["fidelity"]
    assert f["reference"].startswith("exact") and f["rejection_nfe_ratio"] == pytest.approx(1 / 0.70, abs=0.05)
    assert f["target_shares"][2] == pytest.approx(0.12, abs=0.02) and f["target_mean_log_p0"] == pytest.approx(-2.22, abs=0.1)
    assert f["mode_shares"][2] < 0.03  # prune removes the paths to the prize: measured, not hidden


def test_path_entry_rate_counts_paths_that_entered_q_star_on_the_way():
    """A path that came within Q* at some step counts as an entry even when its sample ends
    outside: recomputed here from each final path's recorded x̂0 and the obstacle point."""
    cfg = SearchConfig(preset="trap", obstacles=(ObstacleSpec("point", (1.6, 0.4)),), q_star=0.5, n=200, steps=16,
                       avoid="repulsion", eta=0.05)  # fmt: skip
    eng, beam = run_sampling(cfg)[1:]
    m = sample_metrics(eng, beam)
    nodes, point = eng.trace.nodes, torch.tensor([1.6, 0.4])
    entered = 0
    for nid in beam.node_ids:
        hit, i = False, nid
        while i is not None:
            x0 = nodes[i].x0
            hit = hit or (x0 is not None and float((torch.tensor(x0) - point).norm()) <= 0.5)
            i = nodes[i].parent
        entered += hit
    assert m["path_entry_rate"] == entered / len(beam.node_ids)
    assert m["path_entry_rate"] > m["collision_rate"]  # weak repulsion: some paths pass through and leave


def test_per_obstacle_entries_and_collisions_match_a_recount_from_the_paths():
    """Two point obstacles with their own Q*: each final's path entries and its final
    collision are recounted per obstacle from the recorded x̂0, and the per-obstacle rates
    are exactly those counts (the overall rates are their union)."""
    pts = [(1.6, 0.4), (0.0, 0.0)]
    qs = [0.5, 0.8]
    obstacles = tuple(ObstacleSpec("point", p, q_star=q) for p, q in zip(pts, qs))
    cfg = SearchConfig(preset="trap", obstacles=obstacles, n=200, steps=16, avoid="repulsion", eta=0.05)
    eng, beam = run_sampling(cfg)[1:]
    m = sample_metrics(eng, beam)
    nodes = eng.trace.nodes

    def within(i: int, o: int) -> bool:
        x0 = nodes[i].x0
        return float((torch.tensor(x0) - torch.tensor(pts[o])).norm()) <= qs[o]

    entered, final_in = [[0, 0] for _ in range(2)]
    any_entry = 0
    for nid in beam.node_ids:
        path, i = [], nid
        while i is not None:
            path.append(i)
            i = nodes[i].parent
        hit = [any(within(j, o) for j in path) for o in range(2)]
        for o in range(2):
            entered[o] += hit[o]
            final_in[o] += within(nid, o)
            assert (o in nodes[nid].hits) == within(nid, o)
        any_entry += any(hit)
    k = len(beam.node_ids)
    assert m["path_entry_rate_by_obstacle"] == [e / k for e in entered]
    assert m["collision_rate_by_obstacle"] == [c / k for c in final_in]
    assert m["path_entry_rate"] == any_entry / k
    assert min(entered) > 0  # both obstacles were entered: the per-obstacle split is exercised


def test_every_recorded_try_keeps_its_own_state():
    """Revert records each rejected try with its own x̂0 and D: the distance recomputed from
    the stored x̂0 is the stored D at every node (the first try of a row once showed the
    kept state's x̂0, a view of the row that the kept try overwrote)."""
    point = torch.tensor([1.6, 0.4])
    cfg = SearchConfig(preset="trap", obstacles=(ObstacleSpec("point", (1.6, 0.4)),), q_star=Q, n=64, steps=12,
                       avoid="revert", max_reverts=3)  # fmt: skip
    eng, beam = run_sampling(cfg)[1:]
    reverted = [n for n in eng.trace.nodes if n.status == "reverted"]
    assert len(reverted) == eng.ledger.reverts > 0
    for n in eng.trace.nodes:
        if n.D is not None:
            assert float((torch.tensor(n.x0) - point).norm()) == pytest.approx(n.D, abs=1e-4), n.id
            assert n.inside_q == (n.D <= Q) and n.hits == ((0,) if n.D <= Q else ())
    assert all(n.inside_q for n in reverted)  # a try is rejected only inside Q*
