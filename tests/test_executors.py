"""The Ray executor on a local Ray (one start for the module: CI has 2 cores)."""

import json
import os

import pytest

from dts_app.__main__ import main
from dts_app.config import SearchConfig
from dts_app.executors import Cell, make_executor, run_cells
from dts_app.search.registry import ALGORITHMS

ray = pytest.importorskip("ray")

SMALL = ["--preset", "trap", "--n", "4", "--steps", "8", "--seeds", "2", "--budgets", "64", "--no-progress"]


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster: no token file under ~/.ray
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_and_local_sweeps_are_identical(tmp_path, local_ray):
    for executor in ("local", "ray"):
        assert main(["sweep", *SMALL, "--executor", executor, "--out", str(tmp_path / executor)]) == 0
    assert (tmp_path / "ray" / "sweep.json").read_text() == (tmp_path / "local" / "sweep.json").read_text()
    recs = [json.loads(line) for line in (tmp_path / "ray" / "cells.jsonl").read_text().splitlines()]
    assert len(recs) == 2 * (len(ALGORITHMS) + 1) and all(not r["worker"].startswith("local:") for r in recs)  # + more-steps
    assert local_ray.is_initialized()  # the CLI leaves a Ray it did not start running


def test_ray_loads_a_model_once_per_worker_and_retries_then_reports_a_failing_cell(local_ray):
    config = SearchConfig(preset="trap", n=4, steps=8)
    good = [Cell(config.replace(seed=s), 64) for s in range(6)]
    bad = Cell(config.replace(preset="no-such-preset"), 64)
    outcomes = list(run_cells([*good[:3], bad, *good[3:]], make_executor("ray")))
    ok = [o for o in outcomes if o.ok]
    assert {o.cell.id for o in ok} == {c.id for c in good} and all(o.attempts == 1 for o in ok)
    (failed,) = [o for o in outcomes if not o.ok]
    assert failed.cell == bad and failed.attempts == 2 and "no-such-preset" in failed.error and "\n" not in failed.error
    assert all(o.meta["backend_loads"] == 1 for o in ok)  # one trap backend per worker process, whatever it ran
    assert len({o.worker for o in ok}) <= 2
