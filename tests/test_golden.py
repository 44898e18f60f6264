"""Golden digests of the CLI's JSON: refactors must keep outputs byte-identical.

Each case runs ``python -m dts_app ...`` in-process and compares the SHA-256 of its
stdout with ``tests/golden/digests.json``. A change that alters behaviour on purpose
updates the digests in its own commit, with the reason in the message:

    DTS_UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
import torch

from dts_app.__main__ import main

GOLDEN = Path(__file__).parent / "golden" / "digests.json"
BASE = ["--backend", "gmm", "--preset", "trap", "--steps", "12", "--seed", "3"]
CASES: dict[str, list[str]] = {
    "best-of-n": ["search", "--algorithm", "best-of-n", "--n", "8", *BASE],
    "best-of-n-heun-supervised": ["search", "--algorithm", "best-of-n", "--n", "6", "--solver", "heun", "--verifier", "supervised", *BASE],
    "zero-order": ["search", "--algorithm", "zero-order", "--n", "4", "--iterations", "2", *BASE],
    "paths": ["search", "--algorithm", "paths", "--n", "4", "--m", "2", *BASE],
    "paths-selfsup": ["search", "--algorithm", "paths", "--n", "4", "--m", "2", "--verifier", "self-supervised", *BASE],
    "tree-max": ["search", "--algorithm", "tree", "--n", "3", "--m", "2", "--budget", "300", *BASE],
    "tree-soft": ["search", "--algorithm", "tree", "--n", "3", "--m", "2", "--budget", "300", "--backup", "soft", *BASE],
    "repulsion": ["search", "--algorithm", "best-of-n", "--n", "8", "--avoid", "repulsion", "--q-star", "0.9", *BASE],
    "revert": ["search", "--algorithm", "best-of-n", "--n", "8", "--avoid", "revert", "--q-star", "0.9", *BASE],
    "sample-prune": ["sample", "--n", "16", "--avoid", "prune", "--obstacle", "point:1.6,0.4", "--q-star", "0.9", *BASE],
    "sample-sde": ["sample", "--n", "8", "--solver", "sde", *BASE],
}


def _digest(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    assert code == 0, f"exit status {code}"
    return hashlib.sha256(buf.getvalue().encode()).hexdigest()


@pytest.mark.parametrize("name", list(CASES))
def test_cli_json_is_byte_identical(name):
    got = _digest(CASES[name])
    stored = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("DTS_UPDATE_GOLDENS"):
        stored[name] = got
        GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        return
    assert name in stored, "no golden digest stored; run with DTS_UPDATE_GOLDENS=1"
    assert got == stored[name], f"{name}: CLI JSON changed (see this module's docstring)"


@pytest.mark.parametrize("threads", [1, 3])
def test_cli_json_does_not_depend_on_torch_threads(threads):
    """The app sets torch's intra-op threads from the cores and the queue's concurrency, so
    the CLI's JSON must not follow their number (a torch mean over the 16 million distances
    of sample-prune's energy distance did: its digest changed when the suite ran after the
    app's tests, which set one thread)."""
    before = torch.get_num_threads()
    stored = json.loads(GOLDEN.read_text())
    try:
        torch.set_num_threads(threads)
        for name in ("sample-prune", "repulsion", "tree-soft"):
            assert _digest(CASES[name]) == stored[name], f"{name} with {threads} torch threads"
    finally:
        torch.set_num_threads(before)
