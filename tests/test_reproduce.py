"""`python -m dts_app reproduce`: the quick run end to end (schema, held computed from the
data, same seed → same JSON), the rules that compute `held`, and the stored quick report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dts_app.__main__ import main
from dts_app.executors import Cell
from dts_app.reproduce import EXPERIMENTS, Context
from dts_app.reproduce.base import VERDICTS, num
from dts_app.reproduce.scaling import nfe_to_reach
from dts_app.reproduce.verifiers import nested_best

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "benchmarks" / "results" / "reproduce_quick" / "report.json"
ENTRY_KEYS = {"name", "title", "claim", "command", "setup", "data", "finding", "held", "verdict", "reason", "figure", "table", "runs"}


def _reproduce(out: Path, *flags: str) -> subprocess.CompletedProcess:
    """The command in a fresh process (torch's thread setting stays out of this one)."""
    cmd = [sys.executable, "-m", "dts_app", "reproduce", "--threads", "1", "--no-png", "--out", str(out), *flags]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "quick"
    proc = _reproduce(out, "--quick")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def _check_schema(report: dict) -> None:
    assert report["schema"] == 1
    names = [e["name"] for e in report["experiments"]]
    assert names == report["command"]["only"] and len(names) == len(set(names))
    for e in report["experiments"]:
        assert ENTRY_KEYS <= set(e), e["name"]
        assert isinstance(e["held"], bool)
        assert e["verdict"] in VERDICTS and e["held"] == (e["verdict"] == "held"), e["name"]
        assert (e["verdict"] == "not testable here") == bool(e["reason"]), e["name"]
        assert e["command"].startswith("python -m dts_app "), e["name"]
        assert isinstance(e["finding"], str) and any(ch.isdigit() for ch in e["finding"]), e["name"]
        assert e["data"] and e["setup"], e["name"]
        assert e["figure"]["traces"] and all(len(t["x"]) == len(t["y"]) for t in e["figure"]["traces"])
        assert e["runs"]["finished"] == e["runs"]["cells"] > 0


def test_quick_run_writes_every_experiment(quick):
    out, proc = quick
    report = json.loads((out / "report.json").read_text())
    assert report["command"] == {"quick": True, "seeds": 3, "seed": 0, "only": list(EXPERIMENTS)}
    _check_schema(report)
    assert "failed" not in report
    # one line per finding on stdout, saying whether it held
    for e in report["experiments"]:
        assert f"] {e['name']}: " in proc.stdout
    assert "reproduce:" in proc.stderr  # the progress bar over cells
    html = (out / "report.html").read_text()
    assert html.count("plotly.js v") == 1 and '<script src="http' not in html  # inlined once: opens offline
    assert html.count('class="plotly-graph-div"') == len(report["experiments"])
    md = (out / "report.md").read_text()
    assert all(e["title"] in md and e["finding"] in md for e in report["experiments"])
    assert "No PNG figures" in md  # --no-png: the Markdown points to the HTML instead
    assert json.loads((out / "timings.json").read_text())["total_s"] > 0  # its time is a figure, not a test


def test_same_seed_same_json(quick, tmp_path):
    """A second process, a subset: its entries are the quick run's, byte for byte."""
    out, _ = quick
    proc = _reproduce(tmp_path, "--quick", "--only", "verifier-hacking,obstacles", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    full = {e["name"]: e for e in json.loads((out / "report.json").read_text())["experiments"]}
    sub = json.loads((tmp_path / "report.json").read_text())["experiments"]
    assert [e["name"] for e in sub] == ["verifier-hacking", "obstacles"]
    for e in sub:
        assert json.dumps(e, sort_keys=True) == json.dumps(full[e["name"]], sort_keys=True)


def test_held_follows_the_data():
    """`held` is computed: the same summarizer on data that shows and does not show hacking."""
    exp, ctx = EXPERIMENTS["verifier-hacking"], Context(quick=True, seeds=3)
    cells = exp.plan(ctx)
    top = cells[0].config.n

    def tz(i):  # trailing zeros of i + 1: in an aligned block of 2^k candidates the favourite has tz ≥ k
        return ((i + 1) & -(i + 1)).bit_length() - 1

    def results(heldout):
        return {
            c.id: {"score": [float(tz(i)) for i in range(top)], "heldout": [heldout(tz(i)) + s for i in range(top)]}
            for s, c in enumerate(cells)
        }

    hacked = exp.summarize(ctx, cells, results(lambda z: -abs(z - 3.0)))  # agrees up to a point, then not
    honest = exp.summarize(ctx, cells, results(lambda z: z / 10))  # agrees all the way
    assert hacked.held and not honest.held
    assert "not shown" in honest.finding and 4 <= hacked.data["peak_n"] <= 16


def test_best_of_n_blocks_and_nfe_to_reach():
    score, held = [0.0, 3.0, 1.0, 2.0], [10.0, 30.0, 11.0, 20.0]
    assert nested_best(score, held, [1, 2, 4]) == {1: (1.5, 17.75), 2: (2.5, 25.0), 4: (3.0, 30.0)}
    budgets = [100, 200, 400]
    b, how = nfe_to_reach(budgets, [0.0, 1.0, 2.0], 1.0)
    assert how == "exact" and abs(b - 200) < 1e-6
    b, how = nfe_to_reach(budgets, [0.0, 1.0, 2.0], 1.5)
    assert how == "exact" and abs(b - 200 * 2**0.5) < 1e-6  # log-linear between budgets
    assert nfe_to_reach(budgets, [5.0, 6.0, 7.0], 1.0) == (100.0, "at most")
    assert nfe_to_reach(budgets, [0.0, 0.1, 0.2], 1.0) == (None, "not reached")


def test_missing_cells_are_reported_not_invented():
    exp, ctx = EXPERIMENTS["obstacles"], Context(quick=True, seeds=2)
    from dts_app.reproduce.runner import _entry

    entry = _entry(exp, ctx, exp.plan(ctx), {})
    assert entry["held"] is False and entry["runs"]["finished"] == 0


def test_every_algorithm_and_avoidance_mode_is_planned():
    from dts_app.config import FIELDS
    from dts_app.search import ALGORITHMS

    ctx = Context(quick=True, seeds=1)
    sweep = {c.key["algorithm"] for c in EXPERIMENTS["algorithms"].plan(ctx)}
    assert sweep == {*ALGORITHMS, "more-steps"}
    modes = {c.config.avoid for c in EXPERIMENTS["obstacles"].plan(ctx)}
    assert modes == set(FIELDS["avoid"].choices)
    assert all(isinstance(c, Cell) for e in EXPERIMENTS.values() for c in e.plan(ctx))


def test_bad_flags_exit_2(capsys):
    assert main(["reproduce", "--quick", "--only", "nope", "--out", "/tmp/x"]) == 2
    assert "--only" in capsys.readouterr().err
    assert main(["reproduce", "--quick", "--seeds", "0", "--out", "/tmp/x"]) == 2


def test_ray_executor_gives_the_same_entries(tmp_path):
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        flags = ["reproduce", "--quick", "--only", "verifier-hacking", "--seeds", "2", "--no-png", "--no-progress"]
        for ex in ("local", "ray"):
            assert main([*flags, "--executor", ex, "--out", str(tmp_path / ex)]) == 0
        assert (tmp_path / "ray" / "report.json").read_text() == (tmp_path / "local" / "report.json").read_text()
    finally:
        if started:
            ray.shutdown()


@pytest.mark.skipif(not STORED.exists(), reason="no stored quick report")
def test_stored_quick_report_is_well_formed():
    report = json.loads(STORED.read_text())
    assert report["command"]["quick"] is True
    _check_schema(report)
    assert set(report["command"]["only"]) == set(EXPERIMENTS)
    assert (STORED.parent / "report.md").exists()  # report.html (plotly inlined, ~5 MB) is kept out of git


def test_digits_hacking_verdict_follows_the_distribution_of_the_picks():
    """held when the picks' Fréchet distance rises past its lowest point while the search
    score rises; not testable while it is still falling at the largest N; not held when it
    turns but not beyond 2 s.e."""
    exp, ctx = EXPERIMENTS["digits-hacking"], Context(quick=True, seeds=3)
    cells = exp.plan(ctx)
    ns = cells[0].extra["ns"]

    def results(fd):
        return {
            c.id: {str(n): {"score": -10.0 / (i + 1) + s * 0.01, "heldout": 0.0, "frechet": fd(i) + s, "diversity": 1.0}
                   for i, n in enumerate(ns)} | {"nfe": 1}  # fmt: skip
            for s, c in enumerate(cells)
        }

    turns = exp.summarize(ctx, cells, results(lambda i: (i - 1) ** 2 * 50.0))
    falling = exp.summarize(ctx, cells, results(lambda i: 100.0 / (i + 1)))
    flat = exp.summarize(ctx, cells, results(lambda i: 10.0 if i == 1 else 10.5))
    assert turns.verdict == "held" and turns.data["lowest_n"] == ns[1]
    assert falling.verdict == "not testable here" and "still falling" in falling.reason
    assert flat.verdict == "not held"
    assert "saturates" in turns.finding  # the held-out log P at 0 cannot fall: the report says so


def test_self_supervised_verdict_reads_only_the_class_conditional_settings():
    exp, ctx = EXPERIMENTS["self-supervised"], Context(quick=True, seeds=3)
    cells = exp.plan(ctx)
    names = list(__import__("dts_app.reproduce.verifiers", fromlist=["x"])._ss_settings(ctx))

    def results(sign_uncond):
        out = {}
        for k, name in enumerate(names):
            sign = sign_uncond if "unconditional" in name else 1.0
            for s, c in enumerate(cells[k * 3 : (k + 1) * 3]):
                xs = [float(i) for i in range(20)]
                out[c.id] = {"score": xs, "heldout": [sign * x + 0.1 * ((i * 7 + s) % 5) for i, x in enumerate(xs)]}
        return out

    assert exp.summarize(ctx, cells, results(-1.0)).verdict == "held"  # unconditional rows do not decide
    assert any("unconditional" in n for n in names) and sum("unconditional" not in n for n in names) >= 3


def test_sweep_rows_report_median_hit_rate_and_nfe_spent():
    from dts_app.reproduce.scaling import sweep_rows, sweep_table

    exp, ctx = EXPERIMENTS["algorithms"], Context(quick=True, seeds=3)
    cells = exp.plan(ctx)
    res = {c.id: {"best_score": float(c.config.seed), "nfe": c.budget - 1, "hit": c.config.seed > 0} for c in cells}
    data, budgets, _ = sweep_rows(ctx, cells, res)
    assert budgets[-1] >= 4096
    s = data["best_score"]["tree"][0]
    assert (s["mean"], s["median"]) == (1.0, 1.0) and data["hit_rate"]["tree"][0] == num(2 / 3)
    assert data["nfe"]["paths"][-1]["mean"] == budgets[-1] - 1
    table = sweep_table(data, budgets, ["tree"])
    assert "med 1" in table["rows"][0][1] and "hit 0.67" in table["rows"][0][1]
    assert table["rows"][1][0] == "tree: NFEs spent"
