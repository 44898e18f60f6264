"""The sweep command: budget-matched curves and the η × Q* scan; cells, resume and failures."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dts_app.__main__ import main
from dts_app.config import SearchConfig
from dts_app.executors import Cell, CellStore, LocalExecutor, run_cells
from dts_app.search.registry import ALGORITHMS
from dts_app.sweep import run_sweep, sweep_cells


def test_sweep_cli_writes_json_and_html(tmp_path):
    argv = ["sweep", "--preset", "trap", "--budgets", "64,160", "--seeds", "2", "--n", "4", "--steps", "8", "--out", str(tmp_path)]
    assert main(argv) == 0
    d = json.loads((tmp_path / "sweep.json").read_text())
    names = {r["algorithm"] for r in d["rows"]}
    assert names == {*ALGORITHMS, "more-steps"}  # every registered algorithm by default
    for r in d["rows"]:
        assert r["nfe_max"] <= r["budget"] and r["runs"] == 2
    bon = {r["budget"]: r for r in d["rows"] if r["algorithm"] == "best-of-n"}
    assert bon[64]["nfe_mean"] == 64 and bon[160]["nfe_mean"] == 160
    assert (tmp_path / "sweep.html").read_text().count("<html") == 1


def test_field_scan_cli(tmp_path):
    argv = ["sweep", "--preset", "trap", "--algorithm", "best-of-n", "--n", "8", "--steps", "8", "--etas", "0,1",
            "--q-stars", "0.9", "--seeds", "2", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    d = json.loads((tmp_path / "field_scan.json").read_text())
    rows = {r["eta"]: r for r in d["rows"]}
    assert set(rows) == {0.0, 1.0} and d["avoid"] == "repulsion"
    assert rows[1.0]["collision_rate_mean"] < rows[0.0]["collision_rate_mean"]
    assert (tmp_path / "field_scan.html").exists()


def test_sweep_bad_input(capsys):
    assert main(["sweep", "--budgets", "10,x", "--out", "/tmp/unused"]) == 2
    assert "--budgets" in capsys.readouterr().err


# --- cells, resume, failures, executors (dts_app.executors) -------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--preset", "trap", "--n", "4", "--steps", "8", "--seeds", "2"]
KILL = SMALL + ["--algorithms", "best-of-n,paths", "--budgets", "64,128,192,256"]  # (2 + baseline) × 4 × 2 seeds = 24 cells


def _lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_cells_jsonl_has_every_cell_with_key_and_numbers(tmp_path):
    assert main(["sweep", *SMALL, "--budgets", "64", "--algorithms", "paths", "--out", str(tmp_path), "--no-progress"]) == 0
    recs = _lines(tmp_path / "cells.jsonl")
    assert len(recs) == 4 and len({r["id"] for r in recs}) == 4  # paths × 2 seeds + more-steps × 2 seeds
    assert {(r["key"]["algorithm"], r["key"]["seed"]) for r in recs} == {(a, s) for a in ("paths", "more-steps") for s in (0, 1)}
    assert all(r["result"]["nfe"] <= 64 and "best_score" in r["result"] for r in recs)


def test_resume_after_killed_run_matches_an_uninterrupted_run(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert main(["sweep", *KILL, "--out", str(full), "--no-progress"]) == 0
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "dts_app", "sweep", *KILL, "--out", str(cut), "--no-progress"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (cut / "cells.jsonl").exists() and (cut / "cells.jsonl").read_text().count("\n") >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = _lines(cut / "cells.jsonl")
    assert 3 <= len(before) < 24 and not (cut / "sweep.json").exists()  # killed mid-sweep
    assert main(["sweep", *KILL, "--out", str(cut), "--resume", "--no-progress"]) == 0
    after = _lines(cut / "cells.jsonl")
    assert after[: len(before)] == before  # finished cells kept, not redone
    assert len(after) == 24 and len({r["id"] for r in after}) == 24
    assert {r["worker"] for r in after[len(before) :]} == {f"local:{os.getpid()}"}
    assert (cut / "sweep.json").read_text() == (full / "sweep.json").read_text()


def test_a_failing_cell_is_retried_once_and_never_loses_the_others(tmp_path, monkeypatch, capsys):
    import dts_app.executors.local as local

    config = SearchConfig(preset="trap", n=4, steps=8)
    cells = sweep_cells(config, ["best-of-n"], [64], 3, baseline=False)
    flaky, broken, calls = cells[0].id, cells[1].id, []
    real = local.run_cell

    def run_cell(cell, cache=None):
        calls.append(cell.id)
        if cell.id == broken or (cell.id == flaky and calls.count(flaky) == 1):
            raise RuntimeError("worker fell over")
        return real(cell, cache)

    monkeypatch.setattr(local, "run_cell", run_cell)
    sweep = run_sweep(config, ["best-of-n"], [64], 3, baseline=False, out=tmp_path, show_progress=True)
    assert calls.count(flaky) == 2 and calls.count(broken) == 2 and calls.count(cells[2].id) == 1
    assert sweep["rows"][0]["runs"] == 2 and sweep["rows"][0]["nfe_mean"] == 64
    assert sweep["failed"] == [{"key": cells[1].key, "error": "RuntimeError: worker fell over", "attempts": 2}]
    assert {r["id"] for r in _lines(tmp_path / "cells.jsonl")} == {flaky, cells[2].id}
    err = capsys.readouterr().err
    assert "(attempt 1): RuntimeError: worker fell over; retrying" in err and "failed after 2 attempts" in err
    # the CLI reports it and exits 1; --resume then reruns only the failed cell
    monkeypatch.setattr(local, "run_cell", real)
    argv = ["sweep", *SMALL, "--seeds", "3", "--algorithms", "best-of-n", "--budgets", "64", "--no-baseline", "--out", str(tmp_path)]
    assert main([*argv, "--resume", "--no-progress"]) == 0
    assert len(_lines(tmp_path / "cells.jsonl")) == 3


def test_cli_exit_1_names_failed_cells(tmp_path, monkeypatch, capsys):
    import dts_app.executors.local as local

    monkeypatch.setattr(local, "run_cell", lambda cell, cache=None: 1 / 0)
    argv = ["sweep", *SMALL, "--algorithms", "paths", "--budgets", "64", "--no-baseline", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 1
    assert "2 cell(s) failed; rerun with --resume" in capsys.readouterr().err
    d = json.loads((tmp_path / "sweep.json").read_text())
    assert d["rows"][0]["runs"] == 0 and len(d["failed"]) == 2


def test_torn_last_line_is_dropped_on_resume(tmp_path):
    cell = Cell(SearchConfig(preset="trap", n=4, steps=8), 64)
    outs = list(run_cells([cell], LocalExecutor(), out=tmp_path))
    with open(tmp_path / "cells.jsonl", "a") as f:
        f.write('{"id": "abc", "res')  # a kill in the middle of a write
    again = list(run_cells([cell], "local", out=tmp_path, resume=True))
    assert again[0].resumed and again[0].result == outs[0].result
    assert list(CellStore(tmp_path).load()) == [cell.id]


def test_without_ray_the_executor_fails_with_one_line_saying_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", *SMALL, "--budgets", "64", "--executor", "ray", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install -e '.[ray]'" in err and not (tmp_path / "cells.jsonl").exists()


@pytest.mark.parametrize("flag", [["--address", "auto"], ["--gpus-per-run", "1"], ["--cpus-per-run", "2"]])
def test_ray_flags_need_the_ray_executor(tmp_path, flag, capsys):
    assert main(["sweep", *SMALL, "--budgets", "64", *flag, "--out", str(tmp_path)]) == 2
    assert "need --executor ray" in capsys.readouterr().err
