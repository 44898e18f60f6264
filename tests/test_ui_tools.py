"""The app's tools called directly: save / reopen in the CLI's schema, links, clicks,
gallery marks, the node inspector, the tree views, compare mode and the digits demo."""

from __future__ import annotations

import json
import statistics
from urllib.parse import parse_qsl

import pytest

from dts_app.config import ConfigError, SearchConfig
from dts_app.ui.handlers import INPUTS, AppHandlers, config_from, input_values
from dts_app.ui.render import Outputs
from dts_app.ui.state import SessionState


@pytest.fixture(scope="module")
def handlers() -> AppHandlers:
    return AppHandlers()


@pytest.fixture(scope="module")
def tree_run(handlers):
    state = SessionState()
    out = handlers.run(state, *input_values(algorithm="tree", n=4, m=2, steps=8, obstacles="component:1", avoid="repulsion"))
    assert out["status"].startswith("**finished**")
    return state, out


def test_save_and_reopen_reproduce_every_view(handlers, tree_run, tmp_path):
    state, out = tree_run
    path, msg = handlers.save(state)
    assert path.endswith(".json") and "saved" in msg
    saved = json.loads(open(path).read())
    from dts_app.cli.search import search_payload

    cli = search_payload(state.config)  # the CLI's own JSON for the same config
    assert set(cli) == set(saved) and saved["config"] == cli["config"]
    assert saved["tree"] == cli["tree"] and saved["candidates"] == cli["candidates"]
    again = handlers.reopen(SessionState(), path)
    assert again["status"].startswith("**reopened**") and "tree on gmm/trap" in again["status"]
    for k in ("tree", "trajectories", "plane", "gallery", "budget", "hacking"):  # the same figures as the run's
        assert again[k].to_json() == out[k].to_json(), k
    controls = again["controls"]
    assert config_from(controls) == state.config  # the controls reproduce the run
    assert state.result.target == again["state"].result.target == 2  # trap's prize: the plane's target mode
    # a file written by the CLI opens too
    p = tmp_path / "cli.json"
    p.write_text(json.dumps(cli))
    assert handlers.reopen(SessionState(), str(p))["status"].startswith("**reopened**")


@pytest.mark.parametrize(
    "text, why",
    [
        ("not json", "not a JSON file"),
        ("[]", "not a DTS Explorer run"),
        ('{"tree": {"nodes": [{"id": 3}]}, "ledger": {}, "config": {}}', "run file"),
        ('{"tree": {"nodes": []}, "ledger": {}, "config": {"n": -1}}', "--n"),
        ('{"tree": {"nodes": []}, "ledger": {}, "config": {"zzz": 1}}', "unknown config knob"),
    ],
)
def test_bad_run_files_get_one_line(handlers, tmp_path, text, why):
    p = tmp_path / "bad.json"
    p.write_text(text)
    out = handlers.reopen(SessionState(), str(p))
    assert out["status"].startswith("⚠️") and why in out["status"] and "\n" not in out["status"]
    assert all(out[k] is None for k in Outputs.NAMES[1:])  # nothing else changes


def test_links_carry_the_settings(handlers):
    vals = input_values(n=16, algorithm="smc", avoid="smc", obstacles="point:1,2@q=0.5\ncomponent:1", tree_view="score")
    q = handlers.share_query(*vals)
    assert "seed" not in q and "backend" not in q  # defaults stay out of the link
    back = dict(zip(INPUTS, input_values()))
    back.update(handlers.from_query(dict(parse_qsl(q))))
    assert config_from(back) == config_from(dict(zip(INPUTS, vals)))
    assert back["tree_view"] == "score"
    assert handlers.from_query({"n": "nan"})["n"] != handlers.from_query({"n": "16"})["n"]
    with pytest.raises(ConfigError, match="--n"):
        config_from({**back, **handlers.from_query({"n": "nan"})})


def test_click_places_an_obstacle_with_the_current_q(handlers):
    text, msg = handlers.place(json.dumps({"x": 1.23456, "y": -2}), 0.7, "component:1", "gmm")
    assert text == "component:1\npoint:1.235,-2.000@q=0.7" and "placed" in msg
    cfg = config_from(dict(zip(INPUTS, input_values(obstacles=text))))
    assert cfg.obstacles[1].value == (1.235, -2.0) and cfg.obstacles[1].q_star == 0.7
    for bad in ('{"x": "nan", "y": 0}', "{", '{"y": 1}'):
        assert handlers.place(bad, 0.5, "keep", "gmm")[0] == "keep"
    assert handlers.place('{"x": 0, "y": 0}', 0, "keep", "gmm")[1].startswith("⚠️")
    assert "2-D plane" in handlers.place('{"x": 0, "y": 0}', 0.5, "", "digits")[1]


def test_node_inspector_shows_both_scores(handlers, tree_run):
    state, _ = tree_run
    node = next(n for n in state.result.tree.nodes if n.score is not None and n.heldout_score is not None)
    md, img = handlers.inspect_node(state, json.dumps({"id": node.id}))
    assert f"| node | {node.id} " in md and f"{node.score:.4g}" in md and f"{node.heldout_score:.4g}" in md
    assert img is None and "x̂0" in md  # a 2-D point is written out
    assert "not in the last run" in handlers.inspect_node(state, '{"id": 99999}')[0]
    assert handlers.inspect_node(SessionState(), '{"id": 1}')[1] is None


def test_tree_views_switch_without_rerunning(handlers, tree_run):
    state, _ = tree_run
    layered = handlers.redraw_tree(state, "layered")
    score = handlers.redraw_tree(state, "score")
    assert "layered" in layered.layout.title.text and "layered" not in score.layout.title.text
    values = [n.value for n in state.result.tree.nodes if n.value is not None]
    assert values and any(
        "value" in str(tr.marker.colorbar.title.text) for tr in layered.data if tr.marker and tr.marker.colorbar
    )
    assert handlers.redraw_tree(state, "bogus") is None and handlers.redraw_tree(SessionState(), "layered") is None


def test_compare_runs_both_at_the_same_budget_and_seed(handlers):
    from dts_app.ui.compare import HEADERS

    out = handlers.compare(
        SessionState(), *input_values(n=4, steps=8), algorithm_b="smc", changes_b="avoid=smc\nobstacles=component:1"
    )
    st, status, fa, fb, budget, rows = (out[k] for k in ("state", "status", "fig_a", "fig_b", "budget", "table"))
    assert status.startswith("**compared** at 32 NFEs, seed 0"), status
    assert [r[0] for r in rows] == ["A: best-of-n", "B: algorithm=smc, avoid=smc, obstacles=component:1"]
    col = {h: i for i, h in enumerate(HEADERS)}
    assert all(r[col["NFEs"]] <= 32 for r in rows) and rows[0][col["NFEs"]] == 32
    assert [tr.name for tr in budget.data] == [rows[0][0], rows[1][0]]
    assert rows[1][col["final collisions"]] == 0.0  # smc avoidance on trap: no collision
    assert rows[0][col["algorithm settings"]] == "best-of-n: n=4" and rows[1][col["algorithm settings"]].startswith("smc: n=4")
    for changes in ("seed=3", "budget=5", "zzz=1", "n"):
        assert handlers.compare(SessionState(), *input_values(n=4, steps=8), algorithm_b="smc", changes_b=changes)["status"].startswith(
            "⚠️"
        )


def test_digits_mark_any_gallery_image_and_see_its_pixels(handlers):
    from dts_app.backends.registry import BACKENDS

    demo = BACKENDS["digits"].demo
    state = SessionState()
    out = handlers.run(state, *input_values(backend="digits", preset=None, n=3, steps=4, verifier=demo["verifier"],
                                            heldout=demo["heldout"], guidance=demo["guidance"], target=demo["target"]))  # fmt: skip
    assert out["status"].startswith("**finished**"), out["status"]
    images = out["images"]
    cands = state.result.candidates
    assert len(images) == 3 and [cap.lstrip("★ ") for _, cap in images] == [
        f"{c.score:.3g} · {c.heldout_score:.3g}" for c in cands
    ]
    text, msg = handlers.mark_image(state, 2, "")
    assert text.startswith("point:") and len(text.split(":")[1].split(",")) == 64 and "candidate 2" in msg
    cfg = config_from(dict(zip(INPUTS, input_values(backend="digits", preset=None, obstacles=text))))
    assert cfg.obstacles[0].value == pytest.approx(tuple(state.result.candidates[2].x0.flatten().tolist()), abs=1e-3)
    md, img = handlers.inspect_node(state, json.dumps({"id": state.result.candidates[0].node_id}))
    assert img is not None and img.ndim == 2 and img.shape[0] >= 64  # the clean digit, upscaled
    assert handlers.mark_image(state, 7, "")[1].startswith("⚠️")


def test_digits_demo_gives_search_something_to_find(handlers):
    """At the app's digits defaults (unguided, class 3 reward) best-of-N's held-out score
    rises with N: one unguided draw in ten is a 3."""
    from dts_app.backends.registry import BACKENDS
    from dts_app.search import build_problem, make_algorithm, run_search

    demo = dict(BACKENDS["digits"].demo)
    backend = handlers.backend(SearchConfig(backend="digits", preset=None))
    held = {}
    for n in (1, demo["n"]):
        scores = []
        for seed in range(3):
            cfg = SearchConfig(backend="digits", preset=None, target=demo["target"], guidance=demo["guidance"],
                               verifier=demo["verifier"], heldout=demo["heldout"], n=n, steps=16, seed=seed)  # fmt: skip
            scores.append(run_search(build_problem(cfg, backend=backend), make_algorithm("best-of-n", cfg), None).heldout_score)
        held[n] = statistics.mean(scores)
    assert held[demo["n"]] > held[1] + 3.0, held  # log P(class 3) under the held-out classifier
    assert held[demo["n"]] > -1.0, held


def test_shapes_gallery_badges_and_the_parsed_scene_of_a_selected_image(handlers):
    """Shapes: every gallery image carries the exact checker's ✓/✗ badge for the prompt, and
    a selected image's parsed scene and verdict are what the checker reads in it."""
    from dts_app.shapes.checker import check
    from dts_app.ui.controls import demo_values

    state = SessionState()
    vals = demo_values("shapes") | {"budget": 0, "n": 4, "steps": 8, "target": "two red circles"}
    out = handlers.run(state, *input_values(backend="shapes", preset=None, **vals))
    assert out["status"].startswith("**finished**"), out["status"]
    images = out["images"]
    shown = state.shown
    assert state.result.target == "two red circles"  # the result names its prompt: the badges read it
    for (_, caption), i in zip(images, shown):
        passed = check(state.result.images[i].float().clamp(0, 1), "two red circles").passed
        assert caption.lstrip("★ ").startswith("✓" if passed else "✗"), caption
    state.selected = shown[0]
    md = handlers.describe_selected(state)
    verdict = check(state.result.images[shown[0]].float().clamp(0, 1), "two red circles").passed
    assert "what the exact checker reads" in md and ("passes" if verdict else "fails") in md
    state.selected = None
    assert handlers.describe_selected(state) is None
    handlers.run(state, *input_values(n=4, steps=8))  # gmm: no scene to describe
    state.selected = 0
    assert handlers.describe_selected(state) is None


def test_the_budget_curve_is_honest_per_algorithm():
    """Best-of-N: the best of the first k candidates at k/N of the NFEs (exact, candidate i is
    the same sample alone or among N). SMC's particles share the whole budget: one point at
    the end, not a flat line from the start."""
    from dts_app.search import Runner, RunRequest
    from dts_app.ui.render import budget_curve

    cfg = SearchConfig(n=8, steps=8)
    bon = Runner(RunRequest.from_config(cfg)).run()
    curve = budget_curve(bon, algorithm="best-of-n")
    scores = [c.score for c in sorted(bon.candidates, key=lambda c: c.node_id)]
    assert [n for n, _ in curve] == [8.0 * k for k in range(1, 9)]
    assert [s for _, s in curve] == [max(scores[:k]) for k in range(1, 9)]
    smc = Runner(RunRequest.from_config(cfg.replace(algorithm="smc"))).run()
    finished = [(n, s) for n, s in budget_curve(smc, algorithm="smc") if s is not None]
    assert finished == [(64, smc.best_score)]


def test_a_clicked_nodes_path_is_sent_for_every_view(handlers, tree_run):
    """The path the page draws: root to the clicked node, with t, score, D and the 2-D x̂0,
    exactly the trace's; a click that names no node of the last run sends an empty path."""
    state, _ = tree_run
    nodes = state.result.tree.nodes
    leaf = state.result.best_node
    p = json.loads(handlers.node_path(state, json.dumps({"id": leaf, "n": 7})))
    chain = []
    i = leaf
    while i is not None:
        chain.insert(0, nodes[i])
        i = nodes[i].parent
    assert p["ids"] == [n.id for n in chain] and p["ids"][0] < p["ids"][-1] == leaf
    assert p["t"] == [n.t for n in chain] and p["score"] == [n.score for n in chain]
    assert p["D"] == [n.D for n in chain] and p["x"] == [n.x0[0] for n in chain] and p["n"] == 7
    for bad in ("", "nope", '{"id": -1}', '{"id": 1e12}', None, '{"id": "x"}'):
        assert json.loads(handlers.node_path(state, bad)) == {"ids": []}
    assert json.loads(handlers.node_path(SessionState(), json.dumps({"id": 0}))) == {"ids": []}
