"""App handlers called directly on the exact GMM backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dts_app.config import ConfigError, ObstacleSpec, SearchConfig
from dts_app.ui.handlers import INPUTS, AppHandlers, Outputs, config_from, input_values, parse_obstacles
from dts_app.ui.limits import Limits, RunGuard, threads_per_request
from dts_app.ui.state import SessionState

ROOT = Path(__file__).resolve().parents[1]

SMALL = dict(target="2: prize", n=6, steps=8)


def values(**kw) -> list:
    return input_values(**{**SMALL, **kw})


def drawn_ids(fig) -> set[int]:
    """Node ids drawn as markers (every marker carries its node id for click-to-inspect)."""
    return {int(i) for tr in fig.data if tr.mode == "markers" and tr.customdata is not None for i in tr.customdata}


@pytest.fixture(scope="module")
def handlers() -> AppHandlers:
    return AppHandlers()


def test_run_draws_every_view_and_counts_match(handlers):
    state = SessionState()
    out = handlers.run(state, *values())
    assert set(out) == {"state", *Outputs.NAMES}  # an answer by name: every view of the page
    st, status, tree, traj, emb, plane, gallery, images, ledger, budget, hacking = (out[k] for k in ("state", *Outputs.NAMES))
    assert st is state and state.runs == 1 and status.startswith("**finished**")
    n_nodes = len(state.result.tree.to_dict()["nodes"])
    assert n_nodes == 6 * 9
    # the layered tree draws every node once (its id as customdata, for click-to-inspect)
    drawn = [i for tr in tree.data if tr.mode == "markers" and tr.name.startswith("nodes") for i in tr.customdata]
    assert sorted(int(i) for i in drawn) == list(range(n_nodes))
    assert "layered" in tree.layout.title.text
    score_view = handlers.run(SessionState(), *values(tree_view="score"))["tree"]
    assert sum(len(tr.x) for tr in score_view.data if tr.mode == "markers") == n_nodes
    assert f"{n_nodes} nodes" in status and "48 NFEs" in status
    assert {"search score", "held-out score", "best path"} <= {tr.name for tr in traj.data}
    assert "log p₀" in {tr.name for tr in plane.data}
    assert len(gallery.data[0].x) == 6 and images == []
    assert dict(ledger)["denoiser nfe"] == 48
    assert budget.data[-1].name == "this run"
    assert hacking.layout.title.text.startswith("Too few candidates to judge hacking (6 with both scores")  # N = 6


def test_eta_changes_the_result_with_repulsion(handlers):
    """With an obstacle and repulsion, η moves the samples (the config reaches the engine);
    without avoidance η changes nothing."""
    kw = dict(obstacles="component:1", avoid="repulsion")
    cfg = config_from(dict(zip(INPUTS, values(eta=3.0, **kw))))
    assert cfg.eta == 3.0 and cfg.avoid == "repulsion" and cfg.obstacles[0].kind == "component" and cfg.target == 2

    def finals(**v):
        state = SessionState()
        out = handlers.run(state, *values(**v))
        assert out["status"].startswith("**finished**"), out["status"]
        return [c.x0.tolist() for c in state.result.candidates]

    assert finals(eta=0.5, **kw) != finals(eta=3.0, **kw)
    assert finals(eta=0.5) == finals(eta=3.0)  # no avoidance: η has nothing to act on


def test_bad_input_gives_a_message_and_keeps_previous_results(handlers):
    state = SessionState()
    handlers.run(state, *values())
    before = state.result
    out = handlers.run(state, *values(n=0))
    assert out["status"].startswith("⚠️") and "--n" in out["status"] and "[1, 100000]" in out["status"]
    assert all(out[k] is None for k in Outputs.NAMES[1:]) and state.result is before
    out = handlers.run(state, *values(delta_f=5, delta_b=3))
    assert "--delta-b" in out["status"]
    out = handlers.run(state, *values(obstacles="blob:1"))
    assert out["status"].startswith("⚠️ --obstacle")
    out = handlers.run(state, *values(verifier="clip"))
    assert out["status"].startswith("⚠️") and "not available for backend" in out["status"]


def test_budget_too_small_is_reported(handlers):
    state = SessionState()
    out = handlers.run(state, *values(budget=5))
    assert out["status"] == "⚠️ NFE budget 5 is too small: one path of 8 steps costs 8 NFEs"
    assert state.result is None
    out = handlers.run(state, *values(budget=20))
    assert out["status"].startswith("**") and state.result.ledger.denoiser_nfe <= 20


def test_stream_grows_and_stop_keeps_what_was_found(handlers):
    state = SessionState()
    outs = list(handlers.stream(state, *values(n=4, steps=6)))
    assert outs[-1]["status"].startswith("**finished**") and state.running == 0
    state2 = SessionState()
    gen = handlers.stream(state2, *values(n=4, steps=200))
    first = next(gen)
    handlers.stop(state2)
    rest = list(gen)
    final = (rest or [first])[-1]
    assert "**stopped**" in final["status"] and state2.result.message == "stopped"
    assert state2.result.ledger.denoiser_nfe < 4 * 200


def test_obstacle_text_and_helpers(handlers):
    assert [o.kind for o in parse_obstacles("ball:1,2,0.3\n# note\npoint:0,1; class:3")] == ["ball", "point", "class"]
    with pytest.raises(ConfigError):
        parse_obstacles("ball:1")
    assert handlers.hazard_text("gmm", "trap", "point:0,0") == "point:0,0\ncomponent:1"
    state = SessionState()
    handlers.run(state, *values())
    text = handlers.mark_best(state, "")
    assert text.startswith("point:") and len(text.split(":")[1].split(",")) == 2


def test_layout_is_built_from_the_registries():
    import gradio as gr

    from dts_app.backends.registry import BACKENDS
    from dts_app.config import FIELDS
    from dts_app.search.registry import ALGORITHMS
    from dts_app.ui.layout import build_demo

    demo = build_demo(umap_warmup=False)
    comps = list(demo.blocks.values())
    sliders = {c.label: c for c in comps if isinstance(c, gr.Slider)}
    for k in ("n", "m", "eta", "q_star"):
        assert FIELDS[k].label in sliders and sliders[FIELDS[k].label].info == FIELDS[k].help
    assert {"N: candidates", "M: branches per candidate", "η: repulsion strength", "Q*: influence radius"} <= set(sliders)
    drops = {c.label: c for c in comps if isinstance(c, gr.Dropdown)}
    assert [v for _, v in drops["algorithm"].choices] == list(ALGORITHMS)
    assert [v for _, v in drops["backend"].choices] == list(BACKENDS)
    assert all(c.info for c in comps if isinstance(c, (gr.Slider, gr.Dropdown, gr.Textbox, gr.Radio)))


def test_pick_component_or_class_as_obstacle(handlers):
    assert handlers.add_target_obstacle("gmm", "1: hazard", "") == "component:1"
    assert handlers.add_target_obstacle("gmm", "1: hazard", "component:1") == "component:1"
    assert handlers.add_target_obstacle("digits", 3, "point:0,0") == "point:0,0\nclass:3"
    assert handlers.add_target_obstacle("gmm", None, "x") == "x"
    # by name, with the Q* measured for it on the model's samples (assets/shapes/concepts.json)
    q = json.loads((ROOT / "assets" / "shapes" / "concepts.json").read_text())["concepts"]["no red objects"]["samples"]["q_star"]
    line = handlers.add_target_obstacle("shapes", "no red objects", "")
    assert line == f"concept:no red objects@q={q:.4g}"
    assert ObstacleSpec.parse(line).q_star == pytest.approx(q, rel=1e-3)
    assert handlers.add_target_obstacle("shapes", "no green triangles", "") == "concept:no green triangles"  # not measured: Q* as set


def test_obstacles_reach_every_view(handlers):
    pytest.importorskip("dts_app.obstacles.avoidance")
    state = SessionState()
    out = handlers.run(state, *values(obstacles="component:1", avoid="revert"))
    assert out["status"].startswith("**finished**") and "collision rate" in out["status"]
    traj, emb, plane = out["trajectories"], out["embedding"], out["plane"]
    assert "D" in {tr.name for tr in traj.data}
    assert {"Q* circle", "obstacles"} <= {tr.name for tr in plane.data}
    assert "obstacles" in {tr.name for tr in emb.data}
    nodes = state.result.tree.to_dict()["nodes"]
    assert all(n["D"] is not None for n in nodes)
    assert drawn_ids(out["tree"]) == set(range(len(nodes)))


def test_a_run_where_no_path_finishes_says_so(handlers):
    """Prune with a region that holds every path: nothing finishes, and the status line
    says so (how many were cut) instead of calling a partial path's score the best."""
    state = SessionState()
    out = handlers.run(state, *values(obstacles="ball:0,0,50", avoid="prune"))
    res = state.result
    assert res.partial and res.metrics["n_final"] == 0 and res.metrics["pruned"] == 6
    assert "no path finished (6 cut inside Q*): the best partial path's x̂0 scores" in out["status"]
    assert "best verifier score" not in out["status"]


def test_contact_with_each_obstacle_is_reported_per_obstacle(handlers, tmp_path):
    """Two obstacles: the status line, the ledger table and a reopened run give final
    collisions and path entries per obstacle, equal to a recount from the trace."""
    state = SessionState()
    out = handlers.run(state, *values(n=32, steps=12, obstacles="component:1\npoint:0,0@q=0.8", avoid="repulsion", eta=0.05))
    res = state.result
    m, nodes = res.metrics, res.tree.nodes
    finals = [nodes[c.node_id] for c in res.candidates]

    def path(i):
        while i is not None:
            yield nodes[i]
            i = nodes[i].parent

    for o in range(2):
        entered = sum(any(o in p.hits for p in path(f.id)) for f in finals)
        assert m["path_entry_rate_by_obstacle"][o] == entered / len(finals)
        assert m["collision_rate_by_obstacle"][o] == sum(o in f.hits for f in finals) / len(finals)
    labels = [ob["label"] for ob in res.obstacles]
    entries = m["path_entry_rate_by_obstacle"]
    assert min(entries) > 0, entries  # both obstacles were entered
    per = "; ".join(
        f"{lab}: {e:.2f} entered, {c:.2f} final" for lab, e, c in zip(labels, entries, m["collision_rate_by_obstacle"])
    )
    assert f"per obstacle: {per}" in out["status"], out["status"]
    rows = dict((k, v) for k, v in out["ledger"])
    assert rows[f"path entry rate · {labels[1]}"] == round(entries[1], 4)
    path_file, _ = handlers.save(state)
    again = handlers.reopen(SessionState(), path_file)
    assert again["state"].result.metrics == m  # the per-obstacle lists survive a run file
    assert [n.hits for n in again["state"].result.tree.nodes] == [n.hits for n in nodes]


@pytest.mark.parametrize("algorithm", ["zero-order", "paths", "tree"])
def test_every_registered_algorithm_draws(handlers, algorithm):
    from dts_app.search.registry import ALGORITHMS

    if algorithm not in ALGORITHMS:
        pytest.skip(f"{algorithm} not registered")
    state = SessionState()
    out = handlers.run(state, *values(algorithm=algorithm, n=3, m=2, steps=6))
    assert out["status"].startswith("**finished**"), out["status"]
    nodes = state.result.tree.to_dict()["nodes"]
    assert drawn_ids(out["tree"]) == set(range(len(nodes)))
    assert state.result.best_node is not None and nodes[state.result.best_node]["status"] == "best"


def test_builtin_hazard_is_drawn_on_the_plane(handlers):
    """--avoid with no obstacle typed uses the trap preset's hazard; the plane draws it."""
    state = SessionState()
    out = handlers.run(state, *values(avoid="repulsion", obstacles=""))
    assert out["status"].startswith("**finished**")
    assert [o["kind"] for o in state.result.obstacles] == ["component"]
    plane = out["plane"]
    assert [tr.name for tr in plane.data].count("Q* circle") == 1
    hazard = state.result.obstacles[0]["points"][0]
    marks = next(tr for tr in plane.data if tr.name == "obstacles")
    assert [marks.x[0], marks.y[0]] == pytest.approx(hazard)


def test_large_latents_show_every_image(handlers):
    """A 4×64×64 latent (16,384 values, over the 4,096 cut-off of the JSON's samples) still
    shows every final image: the gallery renders the result's decoded images."""
    import torch

    from dts_app.backends.base import Backend, Condition
    from dts_app.search import Problem, make_algorithm, run_search
    from dts_app.verifiers.base import Verifier

    class Latent(Backend):
        name, data_kind, latent_shape = "latent-test", "image", (4, 64, 64)

        def _velocity(self, x, t, cond):
            return x  # x̂0 = x − t·v = (1 − t)·x

        def decode(self, x0):
            return torch.sigmoid(x0[:, :3])

    class Mean(Verifier):
        def score(self, x0, anchor=None):
            return x0.flatten(1).mean(1)

    problem = Problem(Latent(), Condition(), Mean(), Mean(), steps=2)
    res = run_search(problem, make_algorithm("best-of-n", n=3))
    assert all(c.to_dict()["sample"] is None for c in res.candidates)  # too large for the JSON
    assert res.images.shape == (3, 3, 64, 64)
    out = handlers.figures(res, SearchConfig(backend="gmm"), problem.backend)
    assert len(out.images) == 3 and all(img.shape == (64, 64, 3) for img, _ in out.images)
    assert sum(cap.startswith("★") for _, cap in out.images) == 1


def test_search_events_share_one_queue_and_stop_cancels_slider_runs():
    from dts_app.ui.layout import build_demo

    demo = build_demo(umap_warmup=False)
    fns = {f.api_name: f for f in demo.fns.values()}
    searches = [fns[n] for n in ("search", "release_n", "release_m", "release_eta", "release_q_star")]
    assert {f.concurrency_id for f in searches} == {"search"}  # one concurrency budget for every search
    assert {f.concurrency_limit for f in searches} == {AppHandlers().limits.concurrency}
    cancelled = {i for f in demo.fns.values() for i in (f.cancels or [])}
    ids = {f.api_name: i for i, f in demo.fns.items()}
    assert {ids[n] for n in ("release_n", "release_m", "release_eta", "release_q_star")} <= cancelled
    assert ids["search"] not in cancelled  # a streamed run stops through the flag and shows what it found
    import os

    import torch

    cores = len(os.sched_getaffinity(0))
    assert torch.get_num_threads() * AppHandlers().limits.concurrency <= max(cores, AppHandlers().limits.concurrency)
    on_backend = next(f.fn for f in demo.fns.values() if f.name == "on_backend")
    assert len(on_backend(None)) == 9  # was a blank KeyError
    assert len(on_backend("nope")) == 9 and on_backend("gmm")[0]["value"] == "trap"  # the app's gmm default
    assert on_backend("gmm")[0]["visible"] and not on_backend("digits")[0]["visible"]  # no preset on digits (issue 24)
    # digits starts where search has something to find: unguided sampling, a class reward
    preset, target, verifier, heldout, pick, guidance, n, obstacles, budget = on_backend("digits")
    assert budget["value"] == 512  # the backend's own compute budget
    assert (
        target["value"] == 3
        and ("digit 3", 3) in target["choices"]
        and (verifier["value"], heldout["value"]) == ("supervised", "oracle")
    )
    assert guidance["value"] == 0.0 and n["value"] == 16 and obstacles["value"] == ""
    assert fns["compare"].concurrency_id == "search" and ids["compare"] in cancelled


def test_helpers_survive_junk_from_api_clients(handlers):
    assert handlers.hazard_text(None, None, None) == ""
    assert handlers.hazard_text("nope", "trap", "point:0,0") == "point:0,0"
    assert handlers.add_target_obstacle("gmm", float("inf"), "x") == "x"
    assert handlers.mark_best(None, 5) == ""
    state, text = handlers.stop(None)
    assert isinstance(state, SessionState) and text


def test_limits_profiles_and_environment():
    assert Limits.from_env({}).mode == "local"
    space = Limits.from_env({"SPACE_ID": "someone/dts"})
    assert space.mode == "space" and space.models == "allowlist" and space.deadline_s <= 30
    assert Limits.from_env({"SPACE_ID": "x", "DTS_MODE": "local"}).mode == "local"
    assert Limits.from_env({"DTS_MODE": "space", "DTS_DEADLINE_S": "5", "DTS_MAX_NODES": "100"}).max_nodes == 100
    with pytest.raises(ValueError, match="DTS_DEADLINE_S"):
        Limits.from_env({"DTS_DEADLINE_S": "nan"})
    assert threads_per_request(2, cores=2) == 1 and threads_per_request(1, cores=2) == 2 and threads_per_request(4, 16) == 4
    assert space.sessions == 64 and Limits().sessions == 10_000  # gradio's own default, locally
    assert Limits.from_env({"DTS_MODE": "space", "DTS_SESSIONS": "8"}).sessions == 8


def test_configure_heap_respects_the_environment(monkeypatch):
    import sys

    from dts_app.ui.limits import configure_heap

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert configure_heap() is False  # the variable set before start-up stands
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert configure_heap() is (sys.platform.startswith("linux") and "glibc" in __import__("platform").libc_ver()[0])


def test_guard_reasons():
    clock = [0.0]
    g = RunGuard(Limits(deadline_s=10, max_nodes=5), clock=lambda: clock[0])
    assert not g()
    clock[0] = 11
    assert g() and g.reason == "deadline"


def test_node_cap_is_the_runners_and_shows_in_the_status():
    """The node cap travels in the run request: the runner ends the run past it (with what
    it found) and the status names the cap."""
    h = AppHandlers(limits=Limits(max_nodes=40))
    state = SessionState()
    out = h.run(state, *values(algorithm="best-of-n", n=16, steps=8))
    assert out["status"].startswith("**stopped**") and "cap of 40 trace nodes" in out["status"], out["status"]
    nodes = len(state.result.tree.nodes)
    assert 40 < nodes <= 40 + 16  # one step past the cap at most (a step adds one node per path)
    assert h.runs[-1][1] == "nodes"


def test_findings_view_renders_the_stored_report(tmp_path):
    import json

    from dts_app.ui.findings import REPORT, findings_markdown

    report = json.loads(REPORT.read_text())
    md = findings_markdown()
    assert md.count("| **HELD** · ") == sum(e["held"] for e in report["experiments"])
    assert md.count("| **NOT&nbsp;HELD** · ") == sum(not e["held"] for e in report["experiments"])
    assert all(e["title"].split("|")[0].strip()[:20] in md for e in report["experiments"])
    assert findings_markdown(tmp_path / "missing.json").startswith("No stored report")


def test_calm_queue_sets_the_idle_poll():
    import gradio as gr

    from dts_app.ui.serving import QUEUE_POLL_S, calm_queue

    with gr.Blocks() as demo:
        gr.Markdown("x")
    demo.queue()
    assert demo._queue.sleep_when_free < QUEUE_POLL_S  # gradio's own: 1 ms outside Windows
    assert calm_queue(demo) and demo._queue.sleep_when_free == QUEUE_POLL_S
    assert not calm_queue(object())  # nothing to set: left alone


def test_the_digits_gallery_shows_the_runs_best_after_a_tree_search():
    """Issue 24: a tree search finishes 64 rollouts; the gallery showed its first 16 (the
    early ones, best-of-N's own), so the best image appeared nowhere."""
    from dts_app.ui.controls import demo_values
    from dts_app.ui.render import GALLERY_MAX
    from dts_app.ui.state import SessionState

    state = SessionState()
    vals = demo_values("digits") | {"budget": 0}  # the tree's own course: 64 rollouts
    out = AppHandlers().run(state, *input_values(backend="digits", preset=None, **vals, algorithm="tree"))
    assert out["status"].startswith("**finished**"), out["status"]
    res, images = state.result, out["images"]
    assert len(res.candidates) > GALLERY_MAX and len(images) == GALLERY_MAX
    best = next(i for i, c in enumerate(res.candidates) if c.node_id == res.best_node)
    assert best >= GALLERY_MAX and best in state.shown  # beyond the first 16, and shown
    assert [cap for _, cap in images].count(next(cap for _, cap in images if cap.startswith("★"))) == 1
    assert images[state.shown.index(best)][1].startswith("★")
