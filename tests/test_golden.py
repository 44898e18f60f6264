"""Golden digests of the CLI's JSON: refactors must keep outputs byte-identical.

Each case runs ``python -m dts_app ...`` in-process and compares the SHA-256 of its
stdout with ``tests/golden/digests.json``. The outputs themselves are kept beside them
(``tests/golden/outputs/<case>.json.gz``, used only while their digest is the stored one),
so a failure shows a diff of the JSON, not only two hashes. A change that alters
behaviour on purpose updates the digests (and outputs) in its own commit, with the reason
in the message:

    DTS_UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import contextlib
import difflib
import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
import torch

from dts_app.__main__ import main

GOLDEN = Path(__file__).parent / "golden" / "digests.json"
OUTPUTS = GOLDEN.parent / "outputs"
DIFF_LINES = 60  # lines of a failure's diff shown
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


def _run(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    assert code == 0, f"exit status {code}"
    return buf.getvalue()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(argv: list[str]) -> str:
    return _sha(_run(argv))


def _stored_output(name: str, digest: str) -> str | None:
    """The stored output of case ``name`` when it is the one ``digest`` names."""
    path = OUTPUTS / f"{name}.json.gz"
    if not path.is_file():
        return None
    text = gzip.decompress(path.read_bytes()).decode()
    return text if _sha(text) == digest else None


def _pretty(text: str) -> list[str]:
    try:
        return json.dumps(json.loads(text), indent=1, sort_keys=True).splitlines()
    except ValueError:
        return text.splitlines()


def report(name: str, got: str, stored_digest: str, expected: str | None) -> str:
    """A failure's message: a unified diff of the pretty-printed JSON (at most
    ``DIFF_LINES`` lines) when the expected output is stored, else the hashes and the head
    of the new output."""
    head = f"{name}: CLI JSON changed (see this module's docstring): {stored_digest[:12]} -> {_sha(got)[:12]}"
    if expected is None:
        return head + " (no stored output to diff against); new output begins:\n" + "\n".join(_pretty(got)[:DIFF_LINES])
    diff = list(difflib.unified_diff(_pretty(expected), _pretty(got), "stored", "now", n=2, lineterm=""))
    more = f"\n… {len(diff) - DIFF_LINES} more diff lines" if len(diff) > DIFF_LINES else ""
    return head + "\n" + "\n".join(diff[:DIFF_LINES]) + more


@pytest.mark.parametrize("name", list(CASES))
def test_cli_json_is_byte_identical(name):
    text = _run(CASES[name])
    got = _sha(text)
    stored = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("DTS_UPDATE_GOLDENS"):
        stored[name] = got
        GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        OUTPUTS.mkdir(exist_ok=True)
        (OUTPUTS / f"{name}.json.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
        return
    assert name in stored, "no golden digest stored; run with DTS_UPDATE_GOLDENS=1"
    assert got == stored[name], report(name, text, stored[name], _stored_output(name, stored[name]))


def test_a_golden_failure_shows_a_diff():
    old = json.dumps({"best_score": -1.25, "ledger": {"denoiser_nfe": 96}, "tree": {"nodes": [1, 2]}})
    new = json.dumps({"best_score": -1.5, "ledger": {"denoiser_nfe": 96}, "tree": {"nodes": [1, 2]}})
    msg = report("case", new, _sha(old), old)
    assert '- "best_score": -1.25,' in msg and '+ "best_score": -1.5,' in msg and '"nodes"' not in msg  # the change, in context
    assert "new output begins" in report("case", new, _sha(old), None)


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
