"""CLI: JSON schema, determinism, one-line errors."""

import json
import subprocess
import sys

import pytest

from dts_app.__main__ import main


def _run(tmp_path, argv, name="out.json"):
    out = tmp_path / name
    assert main(argv + ["--json", str(out)]) == 0
    return out


def test_sample_schema_and_determinism(tmp_path):
    argv = ["sample", "--backend", "gmm", "--preset", "eight-gaussians", "--n", "50", "--steps", "16", "--solver", "heun", "--seed", "0"]
    a = _run(tmp_path, argv, "a.json")
    b = _run(tmp_path, argv, "b.json")
    assert a.read_bytes() == b.read_bytes()
    d = json.loads(a.read_text())
    assert len(d["samples"]) == 50 and all(len(s) == 2 for s in d["samples"])
    assert len(d["backend"]["weights"]) == 8 and len(d["backend"]["means"]) == 8
    assert len(d["backend"]["covariances"][0]) == 2
    assert d["config"]["solver"] == "heun" and d["config"]["steps"] == 16
    assert d["ledger"]["denoiser_nfe"] == 50 * (16 * 2 - 1)  # Heun: the step onto t = 0 is an Euler step
    c = json.loads(_run(tmp_path, argv[:-1] + ["1"], "c.json").read_text())
    assert c["samples"] != d["samples"]


def test_search_schema(tmp_path):
    d = json.loads(_run(tmp_path, ["search", "--preset", "trap", "--n", "4", "--steps", "8", "--budget", "64"]).read_text())
    for key in ("best_score", "heldout_score", "best", "candidates", "ledger", "tree", "config"):
        assert key in d
    assert d["ledger"]["denoiser_nfe"] == 32 and d["ledger"]["verifier_calls"] == 4
    assert "decoder_calls" in d["ledger"]
    assert len(d["candidates"]) == 4 and all("heldout_score" in c for c in d["candidates"])
    assert len(d["tree"]["nodes"]) == 4 * 9
    assert d["best_score"] == max(c["score"] for c in d["candidates"])


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["sample", "--n", "0"], "--n: 0 is outside [1, 100000]"),
        (["sample", "--steps", "2.5"], "--steps"),
        (["search", "--solver", "rk9"], "--solver"),
        (["search", "--preset", "moon"], "--preset"),
        (["search", "--q-star", "0"], "--q-star"),
        (["search", "--delta-f", "4", "--delta-b", "3"], "--delta-b"),
        (["search", "--obstacle", "cube:1"], "--obstacle"),
    ],
)
def test_bad_input_one_line_error(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        code = main(argv)
        raise SystemExit(code)
    assert e.value.code != 0
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_subprocess_help_and_error():
    r = subprocess.run([sys.executable, "-m", "dts_app", "sample", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--preset" in r.stdout and "--solver" in r.stdout
    r = subprocess.run([sys.executable, "-m", "dts_app", "sample", "--n", "-3"], capture_output=True, text=True)
    assert r.returncode == 2 and "--n" in r.stderr


def test_huge_integers_and_missing_numbers_get_one_line(capsys):
    """A 400-digit --n (beyond any float) and a knob left None are one-line errors, never an
    OverflowError or TypeError."""
    from dts_app.config import ConfigError, SearchConfig

    assert main(["search", "--n", "9" * 400]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --n: 999") and "outside [1, 100000]" in err and len(err) < 120
    for kw in ({"seed": -(10**400)}, {"delta_b": None}, {"lam": None}):
        with pytest.raises(ConfigError, match="^--"):
            SearchConfig(**kw).validate()
