"""A public (Space-mode) server under varied traffic keeps its memory flat and its log
clean: the CI-sized run of ``benchmarks/space_memory.py`` (whose functions it imports).

``app.py`` runs in a subprocess with ``DTS_MODE=space``; a seeded mix of requests (gmm
over every preset and algorithm, small digits runs, invalid values, model ids a Space
must refuse, distinct model strings, compare, stop) goes through ``gradio_client`` from
client sessions that come and go. Every answer is a result or one clear ⚠️ line, no
traceback from app code reaches the server log, and the server's RSS after the warm-up
grows by at most 10 %; the same holds for reopened and saved run files.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 20  # imports, the digits model, every verifier fit, UMAP on each shape: the baseline comes after them
MEASURED = 40  # requests after the baseline (about 100 s in all on 2 cores)
SEED = 1
#: RSS may grow by 10 % after the warm-up: the issue's bound. Plain runs of this plan on
#: 2 cores are at ×1.01–1.02 after 40 measured requests; the growth is mostly glibc
#: keeping freed heap after the largest figures (a high-water mark: malloc_trim gives it
#: back; one request can add 5–13 MB) plus gradio's per-session component table, see
#: benchmarks/results/space_memory.json. At this size the bound catches about 2 MB or
#: more kept per request (a search result, a figure set or a model per request); slower
#: leaks, like the audit's 2.7 MB per distinct verifier-model string, show in the
#: 200-request benchmark.
TOLERANCE = 1.10


def _benchmark():
    name = "space_memory"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "space_memory.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # (dataclasses look their module up by name)
    spec.loader.exec_module(mod)
    return mod


sm = _benchmark()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``app.py`` in space mode on a free port: ``(process, url, log path)``."""
    log = tmp_path_factory.mktemp("space") / "server.log"
    proc, url = sm.start_server(log)
    try:
        sm.settle(proc.pid, timeout=90)  # the start-up warm-ups (default backend, UMAP's JIT) end first
        yield proc, url, log
    finally:
        sm.stop_server(proc)


def test_plan_is_varied_and_seeded():
    from dts_app.backends.registry import BACKENDS
    from dts_app.search.registry import ALGORITHMS

    asks = sm.plan(WARMUP + MEASURED, seed=SEED)
    assert [a.args for a in asks] == [a.args for a in sm.plan(WARMUP + MEASURED, seed=SEED)]
    kinds = {a.kind for a in asks}
    assert kinds >= {"gmm", "digits", "invalid", "model-string", "compare"}, kinds
    assert {a.endpoint for a in asks} >= {*sm.SEARCH, "/compare"}
    gmm = [a.args for a in asks if a.kind == "gmm"]
    assert {v[1] for v in gmm} == set(BACKENDS["gmm"].presets) and {v[3] for v in gmm} == set(ALGORITHMS)


def test_tracebacks_are_counted_by_where_they_come_from():
    app = 'Traceback (most recent call last):\n  File "/x/dts_app/ui/handlers.py", line 3, in run\n    f()\nValueError: x\n'
    lib = 'Traceback (most recent call last):\n  File "/x/site-packages/uvicorn/server.py", line 1\nOSError: y\n'
    assert sm.tracebacks("start\n" + app + "ok\n" + lib) == (2, 1, [app.rstrip("\n")])
    assert sm.tracebacks("all good\n")[:2] == (0, 0)


def test_space_server_stays_flat_and_clean(served):
    proc, url, log = served
    asks = sm.plan(WARMUP + MEASURED, seed=SEED)
    rep = sm.drive(url, proc.pid, asks, warmup=WARMUP, every=20, session_every=10, log=lambda *_: None)
    total, app, blocks = sm.tracebacks(log.read_text(errors="replace"))
    assert app == 0, blocks[0]
    assert not rep.bad_answers, rep.bad_answers  # every answer: a result or one clear ⚠️ line
    assert not rep.client_errors, rep.client_errors  # nothing refused by gradio before the app saw it
    assert rep.requests == WARMUP + MEASURED and rep.results >= MEASURED // 2 and rep.rejections >= 5
    base, final = sm.baseline_and_final(rep, WARMUP)
    steps = sm.largest_steps(rep, asks, WARMUP, k=3)
    assert final <= TOLERANCE * base, f"RSS {base:.1f} MB after the warm-up, {final:.1f} MB at the end: {rep.rss_mb}; {steps}"
    assert proc.poll() is None  # still serving


REOPEN_WARMUP, REOPEN_MEASURED = 10, 40  # /open_run requests before and after the baseline


def _run_files(tmp_path: Path) -> list[str]:
    """Run files to reopen: a 5,000-node tree search, a small best-of-N, and crafted ones."""
    import json
    import random

    from test_fuzz_runfiles import crafted

    from dts_app.ui.handlers import AppHandlers, input_values
    from dts_app.ui.runfile import run_text
    from dts_app.ui.state import SessionState

    h, out = AppHandlers(), []
    for i, kw in enumerate((dict(n=64, steps=77), dict(n=3, steps=4, obstacles="point:1,1", avoid="repulsion"))):
        state = SessionState()
        assert h.run(state, *input_values(**kw))["status"].startswith("**finished**")
        p = tmp_path / f"run{i}.json"
        p.write_text(run_text(state.result, state.config))
        out.append(str(p))
    rng, small = random.Random(5), json.loads(Path(out[1]).read_text())
    for i in range(3):
        p = tmp_path / f"crafted{i}.json"
        p.write_text(crafted(rng, small))
        out.append(str(p))
    return out


def test_space_server_reopens_stay_flat(served, tmp_path):
    """Reopening run files (a 5,000-node tree among them) and saving them, from sessions
    that come and go, keeps the server's RSS within the bound and its log clean: a reopened
    result is held like a search's, within the node cap, and nothing accumulates on disk."""
    from gradio_client import Client, handle_file

    proc, url, log = served
    files = _run_files(tmp_path)
    client, base = None, None
    for i in range(REOPEN_WARMUP + REOPEN_MEASURED):
        if i % 10 == 0:
            client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        out = client.predict(handle_file(files[i % len(files)]), api_name="/open_run")
        assert sm.judge(out[0], "reopen") in ("result", "rejection"), out[0]
        if i % 3 == 0:
            saved, msg = client.predict(api_name="/save_run")
            assert msg.startswith(("saved: ", "⚠️ save:")), msg
        if i + 1 == REOPEN_WARMUP:
            sm.settle(proc.pid)
            base = sm.rss_mb(proc.pid)
    final = sm.rss_mb(proc.pid)
    print(f"reopens: RSS {base:.1f} MB after {REOPEN_WARMUP}, {final:.1f} MB after {REOPEN_MEASURED} more")
    total, app, blocks = sm.tracebacks(log.read_text(errors="replace"))
    assert app == 0, blocks[0]
    assert final <= TOLERANCE * base, f"RSS {base:.1f} MB after {REOPEN_WARMUP} reopens, {final:.1f} MB after {REOPEN_MEASURED} more"
