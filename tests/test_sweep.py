"""The sweep command: budget-matched curves and the η × Q* scan."""

import json

from dts_app.__main__ import main


def test_sweep_cli_writes_json_and_html(tmp_path):
    argv = ["sweep", "--preset", "trap", "--budgets", "64,160", "--seeds", "2", "--n", "4", "--steps", "8", "--out", str(tmp_path)]
    assert main(argv) == 0
    d = json.loads((tmp_path / "sweep.json").read_text())
    names = {r["algorithm"] for r in d["rows"]}
    assert names == {"best-of-n", "zero-order", "paths", "tree", "more-steps"}
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
