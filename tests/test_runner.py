"""The one run pipeline: a typed RunRequest and the Runner, the only code that drives an
algorithm. Every front end (CLI, app, compare, sweep cell, Python API) goes through it and
gets the same answer for the same settings; the runner owns the budget, the node cap, the
stop probe, progress callbacks and snapshots."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import torch

import dts_app
from dts_app.config import SearchConfig
from dts_app.search import Runner, RunRequest, run_search
from dts_app.search import runner as runner_mod

CFG = SearchConfig(backend="gmm", preset="trap", algorithm="best-of-n", n=6, steps=8, seed=3)


def test_only_the_runner_drives_an_algorithm():
    """No module but the runner calls an algorithm's ``iterate`` (the three UI loops went)."""
    root = Path(dts_app.__file__).parent
    callers = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"\.iterate\(\s*(eng|engine|self\.engine)", p.read_text()) and p.name != "runner.py"
    ]
    assert callers == []


def test_a_request_runs_its_exact_ledger_and_equals_run_search():
    req = RunRequest.from_config(CFG)
    res = Runner(req).run()
    assert res.message == "finished" and res.ledger.denoiser_nfe == 6 * 8 == req.total_nfe()
    again = run_search(req.problem, req.algorithm)
    assert again.best_score == res.best_score and torch.equal(again.best, res.best)


def test_the_budget_and_fit_are_part_of_the_request():
    req = RunRequest.from_config(CFG.replace(algorithm="tree", n=4, m=2), budget=100, fit=True)
    res = Runner(req).run()
    assert req.budget == 100 and 0 < res.ledger.denoiser_nfe <= 100
    capped = Runner(RunRequest.from_config(CFG, budget=20)).run()
    assert capped.ledger.denoiser_nfe == 16 and len(capped.candidates) == 2  # best-of-N fits whole paths: 20 // 8


def test_the_node_cap_ends_the_run_with_what_it_found():
    runner = Runner(RunRequest.from_config(CFG.replace(n=8), max_nodes=30))
    res = runner.run()
    assert runner.reason == "nodes" and res.message == "stopped"
    assert 30 < len(res.tree.nodes) <= 30 + 8  # at most one step (one node per path) past it
    assert res.ledger.denoiser_nfe < 8 * 8


def test_stop_and_progress_synchronise_on_events():
    """A stop set from a progress callback after the third step ends the run there."""
    stop = threading.Event()
    seen = []

    def progress(snap):
        seen.append(snap.step)
        if len(seen) == 3:
            stop.set()

    runner = Runner(RunRequest.from_config(CFG), stop.is_set, [progress])
    snaps = list(runner)
    assert runner.reason == "stopped" and snaps[-1].done and snaps[-1].message == "stopped"
    assert snaps[-1].result.ledger.denoiser_nfe == 3 * 6  # three steps of six paths


def test_every_front_end_runs_through_the_runner_and_agrees(monkeypatch):
    """CLI, Python API, sweep cell and the app: the same settings, the same best score, each
    through Runner."""
    from dts_app.backends.mixture import make_preset
    from dts_app.cli.search import search_payload
    from dts_app.executors.cells import Cell, run_cell
    from dts_app.ui.handlers import AppHandlers, input_values
    from dts_app.ui.state import SessionState

    runs = []
    real_iter = runner_mod.Runner.__iter__

    def counted(self):
        runs.append(self.request.algorithm.name)
        yield from real_iter(self)

    monkeypatch.setattr(runner_mod.Runner, "__iter__", counted)
    cfg = CFG
    cli = search_payload(cfg, with_x0=False)["best_score"]
    cell = run_cell(Cell(cfg, budget=None, mode="plain"))["best_score"]
    state = SessionState()
    vals = dict(backend="gmm", preset="trap", algorithm="best-of-n", n=6, steps=8, seed=3)
    AppHandlers().run(state, *input_values(**vals))
    app = state.result.best_score
    mix = make_preset("trap")
    oracle = RunRequest.from_config(cfg).problem.verifier
    api = dts_app.search(mix.velocity, lambda x: oracle.score(x, None), shape=(2,), n=6, steps=8, seed=3).best_score
    assert len(runs) == 4 and set(runs) == {"best-of-n"}
    assert cli == pytest.approx(cell) and cli == pytest.approx(app) and cli == pytest.approx(api, rel=1e-5)
