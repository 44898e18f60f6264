"""The API examples run as users run them: each script of ``examples/`` in a fresh Python,
and the code block of the README's "Use it as a library" section (so CI executes it)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "RAY_AUTH_MODE": "disabled",
       "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}  # fmt: skip


def _run(args: list[str], timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


def readme_code() -> str:
    """The python block of the README's library section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it as a library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the library section has one python block"
    return blocks[0]


def test_readme_library_section_runs():
    out = _run(["-c", readme_code()])
    lines = out.strip().splitlines()
    assert lines[0].endswith(" 8192") and lines[1].startswith("torch.Size([64, 2])")


def test_own_model_smc_matches_the_closed_form():
    out = _run(["examples/own_model_smc.py"])
    err = float(re.search(r"largest error ([0-9.]+)", out).group(1))
    assert err < 0.06 and "32768 NFEs" in out


def test_diffusers_pipeline_example():
    pytest.importorskip("diffusers")
    out = _run(["examples/diffusers_pipeline.py"])
    for algorithm in ("best-of-n", "paths", "tree"):
        assert f"{algorithm}: best redness" in out
    assert "images (2, 3, 8, 8)" in out


def test_ray_sweep_example():
    out = _run(["examples/ray_sweep.py"], timeout=240)
    if importlib.util.find_spec("ray") is None:
        assert "Ray is not installed" in out
        return
    assert out.count("NFEs spent") == 6
