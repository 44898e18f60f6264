"""Reliability of the app as a public service: bounded cost per request, stop and cancel,
a bounded locked model cache, validated input with clear messages. Each audit failure has
a test here that failed before the fix. In-process, under small limits (about a minute on
2 cores); the served half (client fuzz, ten concurrent sessions, Stop and cancel of
served runs) is in ``test_ui_client.py``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dts_app.config import FIELDS, ConfigError, ObstacleSpec, SearchConfig
from dts_app.ui.handlers import INPUTS, AppHandlers, input_values
from dts_app.ui.limits import Limits, RunGuard, configure_threads
from dts_app.ui.models import BackendCache, check_models
from dts_app.ui.render import Outputs, approx_bytes
from dts_app.ui.state import SessionState

ROOT = Path(__file__).resolve().parents[1]
#: small caps: every fuzzed call ends within a few seconds
FUZZ = Limits(deadline_s=3.0, max_nodes=4_000, nfe_points=3_000, nfe_embedded_image=300, max_obstacles=16, max_text=2_000,
              draw_nodes=2_000, umap_points=500)  # fmt: skip
OK = re.compile(r"^\*\*(finished|stopped|budget exhausted|compared|reopened)\*\* ")
CLASS_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback|File \"")
TIMING = re.compile(r" · \d+ ms")


def status_ok(status: str) -> None:
    """A status is a result line or one clear ⚠️ line; never an exception class name."""
    assert isinstance(status, str) and status, f"blank status {status!r}"
    assert "\n" not in status, status
    assert not CLASS_NAME.search(status), status
    if status.startswith("⚠️"):
        assert len(status) > 8 and "internal error" not in status, status
    else:
        assert OK.match(status), status


@pytest.fixture(scope="module")
def handlers() -> AppHandlers:
    configure_threads(FUZZ.concurrency)  # as the app does: torch threads × concurrent searches ≤ cores
    h = AppHandlers(limits=FUZZ)
    h.run(SessionState(), *input_values(n=2, steps=2))  # imports done: timings below are the handlers'
    return h


class Ticks:
    """A fake clock: every reading is ``step`` seconds after the last (runs end at a
    deadline after the same number of checks on any machine)."""

    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def gated(started: threading.Event, held: list):
    """A :class:`RunGuard` whose first check signals ``started`` and holds the search there
    until the guard itself sees the stop (a Stop, a cancel, a client gone) or the deadline;
    the held guards are appended to ``held``. Tests then act on an event, not after a sleep,
    and a stop that never arrives ends at the deadline with that reason."""

    class Gated(RunGuard):
        first = True

        def __call__(self) -> bool:
            if not self.first:
                return super().__call__()
            self.first = False
            held.append(self)
            started.set()
            while not super().__call__():  # wait for the stop to be observed (not a margin)
                time.sleep(0.005)
            return True

    return Gated


def never_searched(monkeypatch, h: AppHandlers) -> list:
    """Record every problem ``h`` builds: a refused request must build none."""
    built: list = []
    real = h._problem
    monkeypatch.setattr(h, "_problem", lambda cfg: built.append(cfg) or real(cfg))
    return built


@pytest.fixture()
def app_log(caplog):
    """Records of the app's logger: an internal error (a bug) logs its traceback there."""
    caplog.set_level(logging.ERROR, logger="dts_app")
    return caplog


# ---- 5. validation: NaN, inf, overrides, coordinates, types --------------------------------
@pytest.mark.parametrize("field", ["eta", "q_star", "lam", "guidance", "n", "steps", "seed"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "nan", "abc", [1], True])
def test_non_finite_and_non_numbers_are_refused_naming_the_field(handlers, field, bad, monkeypatch):
    built = never_searched(monkeypatch, handlers)
    out = handlers.run(SessionState(), *input_values(**{field: bad}))
    status_ok(out["status"])
    assert out["status"].startswith(f"⚠️ {FIELDS[field].cli_flag}:"), out["status"]
    assert built == []  # refused before any search was built (NaN used to run it all)


def test_field_check_refuses_nan_for_the_cli_too():
    for name in ("eta", "q_star", "lam", "guidance"):
        with pytest.raises(ConfigError, match="finite"):
            SearchConfig(**{name: math.nan}).validate()
        with pytest.raises(ConfigError, match="finite"):
            SearchConfig(**{name: math.inf}).validate()


@pytest.mark.parametrize(
    "text, needle",
    [
        ("point:0,0@q=0", "override q=0 is outside"),  # was ZeroDivisionError
        ("point:0,0@eta=-5", "override eta=-5 is outside"),  # used to attract
        ("point:0,0@q=-1", "override q=-1 is outside"),  # reported collision 0
        ("point:nan,0", "finite"),
        ("point:0,inf", "finite"),
        ("ball:0,0,-1", "radius"),
        ("point:0,0@eta=nan", "finite"),
        ("point:0,0@bogus=1", "bad override"),
    ],
)
def test_obstacle_values_are_checked(handlers, text, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        ObstacleSpec.parse(text)
    out = handlers.run(SessionState(), *input_values(obstacles=text))
    status_ok(out["status"])
    assert out["status"].startswith("⚠️ --obstacle:") and needle in out["status"]


@pytest.mark.parametrize("target", [math.inf, -math.inf, math.nan, 1e300, 10**400, 2.5, [3], {"a": 1}])
def test_bad_targets_get_a_message(handlers, target):
    out = handlers.run(SessionState(), *input_values(target=target))  # inf was a blank OverflowError
    status_ok(out["status"])
    assert out["status"].startswith("⚠️ ") and "target" in out["status"]


def test_wrong_number_of_values_and_unknown_names(handlers):
    assert "control values" in handlers.run(SessionState(), "gmm")["status"]
    for k, v in dict(backend="nope", algorithm="nope", solver="rk4", avoid="x", embed="tsne", preset="nope").items():
        out = handlers.run(SessionState(), *input_values(**{k: v}))
        status_ok(out["status"])
        assert out["status"].startswith(f"⚠️ {'' if k == 'embed' else '--'}{k}:"), out["status"]


# ---- 1. bounded cost per request ----------------------------------------------------------
def test_deadline_stops_the_audited_request_cleanly():
    """The audit's /release_n request (tree, n=256, m=16, 200 steps, budget 200,000) took
    164 s and 55 MB; under a deadline it stops, keeps its result and stays small. The
    clock is fake (0.1 s a reading), so the run meets its deadline after the same checks on
    a fast or a slow machine."""
    lim = Limits.space()
    h = AppHandlers(limits=Limits(**{**lim.__dict__, "deadline_s": 1.5}))
    h.clock = Ticks(0.1)
    state = SessionState()
    out = h.run(state, *input_values(algorithm="tree", n=256, m=16, steps=200, budget=200_000))
    status_ok(out["status"])
    assert out["status"].startswith("**stopped**") and "1.5 s deadline" in out["status"] and "DTS_DEADLINE_S" in out["status"]
    assert h.runs[-1][1] == "deadline" and 1.5 < h.clock.t < 1.5 + 0.5  # stopped at its first check past it
    assert state.result is not None and state.result.message == "stopped"
    assert state.result.ledger.denoiser_nfe < 200_000
    assert sum(approx_bytes(out[k]) for k in Outputs.NAMES[1:]) <= lim.max_response_bytes


def test_node_cap_stops_the_run_and_names_the_variable():
    h = AppHandlers(limits=Limits(max_nodes=1_000))
    out = h.run(SessionState(), *input_values(n=64, steps=64))  # 64 × 65 nodes
    status_ok(out["status"])
    assert "cap of 1,000 trace nodes" in out["status"] and "set DTS_MAX_NODES" in out["status"]
    assert h.runs[-1][1] == "nodes"


def test_nfe_cap_clips_the_budget_and_says_how_to_lift_it():
    h = AppHandlers(limits=Limits(nfe_points=500))
    out = h.run(SessionState(), *input_values(n=64, steps=32))
    assert "per-request cap 500 NFEs" in out["status"] and "DTS_MAX_NFE_POINTS" in out["status"]


def test_obstacle_count_is_capped(monkeypatch):
    """8,000 `point:` lines took 53 s; now the request is refused before any search."""
    text = "\n".join(f"point:{i % 7},{i % 5}" for i in range(8_000))
    for lim in (Limits(), Limits.space()):
        h = AppHandlers(limits=lim)
        built = never_searched(monkeypatch, h)
        out = h.run(SessionState(), *input_values(obstacles=text))
        status_ok(out["status"])
        assert f"at most {lim.max_obstacles:,} per request" in out["status"] or "characters" in out["status"]
        assert built == []


def test_umap_and_drawn_nodes_are_capped(handlers):
    """UMAP had no node cap (51k nodes: 79 s); above the cap the view is PCA and says so;
    the tree draws at most ``draw_nodes`` whole paths."""

    class Spy:
        calls = 0

        def embed(self, x, extra=None):
            Spy.calls += 1
            return None

    h = AppHandlers(limits=Limits(umap_points=100, draw_nodes=150), embedder=Spy())
    state = SessionState()
    out = h.run(state, *input_values(n=8, steps=32, embed="umap", tree_view="score"))  # 264 nodes
    assert "UMAP is limited to 100 points" in out["status"] and "DTS_MAX_UMAP_POINTS" in out["status"]
    assert Spy.calls == 0 and "PCA" in out["embedding"].layout.title.text
    assert "of 264 nodes drawn" in out["tree"].layout.title.text
    drawn = sum(len(tr.x) for tr in out["tree"].data if tr.mode == "markers")
    assert drawn <= 150 and drawn % 33 == 0  # whole root-to-leaf paths
    small = h.run(state, *input_values(n=2, steps=32, embed="umap"))  # 66 nodes: UMAP is asked
    assert Spy.calls == 1 and "UMAP is limited" not in small["status"]


# ---- 2. stop: slider runs too ---------------------------------------------------------------
# A run far longer than any test (64 × 1,000 steps) that a gated guard holds at its first
# check until the stop reaches it: the tests act when the run has started and assert the
# reason the guard saw, never a duration. A stop that never arrives ends at the deadline.
LONG = dict(n=64, steps=1000)
HELD = Limits(deadline_s=60.0)


def test_stop_ends_a_slider_run_within_a_step(monkeypatch):
    started, held = threading.Event(), []
    monkeypatch.setattr("dts_app.ui.handlers.RunGuard", gated(started, held))
    h = AppHandlers(limits=HELD)
    state = SessionState()
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("out", h.run(state, *input_values(**LONG))))
    th.start()
    assert started.wait(60), "the run never started"
    assert h.stop(state)[1].startswith("**stopped**")
    th.join(60)
    assert not th.is_alive()
    assert held[0].reason == "stopped" and h.runs[-1][1] == "stopped"  # the guard saw the Stop, not the deadline
    assert box["out"]["status"].startswith("**stopped**")
    # the guard held the run at its first check (within the first steps) and ended it there
    assert state.result.ledger.denoiser_nfe <= 2 * LONG["n"]


def test_cancel_event_stops_without_drawing(monkeypatch):
    started, held = threading.Event(), []
    monkeypatch.setattr("dts_app.ui.handlers.RunGuard", gated(started, held))
    h = AppHandlers(limits=HELD)
    cancel = threading.Event()
    box = {}
    th = threading.Thread(target=lambda: box.setdefault("out", h.run(SessionState(), *input_values(**LONG), cancel=cancel)))
    th.start()
    assert started.wait(60), "the run never started"
    cancel.set()
    th.join(60)
    assert not th.is_alive() and held[0].reason == "cancelled" and h.runs[-1][1] == "cancelled"
    out = box["out"]
    assert out["status"] == "cancelled" and all(out[k] is None for k in Outputs.NAMES[1:])


# ---- 4. streaming throttled by time and size -------------------------------------------------
def test_stream_sends_small_trees_at_most_once_a_second():
    """On a fake clock (0.02 s a reading) the stream's throttle and deadline are the same
    on every machine: trees at least ``live_interval_s`` apart, each decimated."""
    h = AppHandlers(limits=Limits(live_nodes=300, live_interval_s=1.0, deadline_s=3.0))
    h.clock = Ticks(0.02)
    outs = [(h.clock.t, o) for o in h.stream(SessionState(), *input_values(algorithm="tree", n=64, m=8, steps=100))]
    live = [(t, o["tree"]) for t, o in outs[:-1] if o["tree"] is not None]
    assert outs[-1][1]["status"].startswith("**stopped**") and "deadline" in outs[-1][1]["status"]
    assert len(live) >= 2
    ids = [{int(i) for tr in fig.data if tr.mode == "markers" for i in tr.customdata} for _, fig in live]
    assert all(0 < len(d) <= 300 for d in ids)  # a decimated tree: at most live_nodes nodes drawn
    assert all(b - a >= 1.0 for (a, _), (b, _) in zip(live, live[1:]))


# ---- 3. the backend cache ---------------------------------------------------------------------
def test_cache_is_keyed_by_what_the_backend_uses_and_bounded():
    loads = []

    def loader(cfg):
        loads.append(cfg.preset)
        return object()

    cache = BackendCache(max_entries=2, loader=loader, sizer=lambda b: 10)
    a = cache.get(SearchConfig(preset="trap"))
    assert cache.get(SearchConfig(preset="trap", model="x/y", verifier_model="z", prompt="p")) is a  # gmm ignores them
    cache.get(SearchConfig(preset="grid-25"))
    cache.get(SearchConfig(preset="trap"))  # trap is now the most recent
    cache.get(SearchConfig(preset="hack"))  # evicts grid-25, the least recently used
    st = cache.stats()
    assert st["entries"] == 2 and st["evictions"] == 1 and loads == ["trap", "grid-25", "hack"]
    assert [k[1][1] for k in st["keys"]] == ["trap", "hack"]
    by_bytes = BackendCache(max_entries=10, max_bytes=25, loader=loader, sizer=lambda b: 10)
    for p in ("trap", "grid-25", "hack"):
        by_bytes.get(SearchConfig(preset=p))
    assert len(by_bytes) == 2 and by_bytes.nbytes() <= 25


def test_concurrent_first_requests_load_once():
    """The first load holds until all eight requests have arrived (an event, not a sleep)."""
    calls, arrived, lock = [], threading.Event(), threading.Lock()
    count = [0]

    def loader(cfg):
        calls.append(1)
        assert arrived.wait(60)
        return object()

    def get(_):
        with lock:
            count[0] += 1
            if count[0] == 8:
                arrived.set()
        return cache.get(SearchConfig(preset="trap"))

    cache = BackendCache(loader=loader, sizer=lambda b: 1)
    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(get, range(8)))
    assert len(calls) == 1 and all(g is got[0] for g in got)


FIRST_USE = """
import json, sys, threading
from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.state import SessionState
h, res = AppHandlers(), {}
for backend, k, kw in [("gmm", 8, dict(n=4, steps=8)),
                       ("digits", 4, dict(backend="digits", preset=None, target=3, verifier="supervised", heldout="oracle", n=2, steps=4))]:
    out = [None] * k
    def go(i):
        out[i] = h.run(SessionState(), *input_values(**kw))["status"]
    ths = [threading.Thread(target=go, args=(i,)) for i in range(k)]
    [t.start() for t in ths]; [t.join() for t in ths]
    res[backend] = out
res["loads"] = h.cache.loads
print(json.dumps(res))
"""


def test_concurrent_first_use_of_each_embedded_backend():
    """k concurrent first digits requests failed k−1 of k with ImportError, and 8 first
    requests built 8 backends; in a fresh process every request now succeeds and each
    backend loads once."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", FIRST_USE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for backend in ("gmm", "digits"):
        assert all(s.startswith("**finished**") for s in res[backend]), res[backend]
        assert len({TIMING.sub("", s) for s in res[backend]}) == 1
    assert res["loads"] == 2


# ---- model-loading policy ------------------------------------------------------------------------
def test_public_server_loads_only_allowlisted_models_and_never_echoes(tmp_path):
    space = Limits.space()
    h = AppHandlers(limits=space, allowlist=("facebook/DiT-XL-2-256",))
    secret = str(tmp_path)  # exists
    missing = str(tmp_path / "nope")
    msgs = []
    for model in (secret, missing, "someone/else", "../../etc"):
        out = h.run(
            SessionState(), *input_values(backend="dit", preset=None, target=1, verifier="clip", heldout="clip", model=model)
        )
        status_ok(out["status"])
        msgs.append(out["status"])
        assert model not in out["status"] and "nope" not in out["status"]
    assert len(set(msgs)) == 1 and "facebook/DiT-XL-2-256" in msgs[0]  # the same answer whether a path exists or not
    out = h.run(SessionState(), *input_values(backend="digits", preset=None, target=3, model=secret))
    assert out["status"].startswith("⚠️ model:") and secret not in out["status"]
    check_models(SearchConfig(model=secret), space, ())  # gmm ignores the model box: nothing to refuse
    check_models(SearchConfig(backend="digits", model=secret), Limits(), ())  # local: full freedom


def test_allowlist_file_is_read():
    from dts_app.ui.models import ALLOWLIST, read_allowlist

    assert ALLOWLIST.is_file()
    assert all("/" in i and not i.startswith(("/", ".")) for i in read_allowlist())


# ---- 6. the fuzzer over every handler ---------------------------------------------------------------
NUMBERS = [0, 1, 2, 3, -1, 0.5, 1e300, -1e300, math.nan, math.inf, -math.inf, "7", "abc", None, True, [2], {}]
TEXTS = ["", "x", "gmm", "digits", "dit", "t2i", None, 5, ["a"], "a" * 3000, "../etc/passwd", "nan"]
OBSTACLES = ["component:1", "point:0,0", "ball:1,1,0.3", "point:0,0@eta=2,q=0.5", "class:3", "point:nan,0", "point:0,0@q=0",
             "ball:1", "blob:1", "point:1,2,3", "component:99", "concept:cat", "point:" + ",".join(["1"] * 70), ":", "@", "point:0,0@eta"]  # fmt: skip
SMALL = dict(n=[1, 2, 3], m=[1, 2, 3], steps=[1, 2, 4, 6], budget=[0, 0, 16, 48], seed=[0, 1, 99],
             delta_f=[1, 2], delta_b=[3, 4], eta=[0.0, 1.0, 5.0], q_star=[0.1, 0.5, 2.0], lam=[0.1, 0.5], guidance=[1.0, 2.0])  # fmt: skip


def fuzz_values(rng: random.Random) -> dict:
    from dts_app.backends.registry import BACKENDS
    from dts_app.search.registry import ALGORITHMS
    from dts_app.verifiers.registry import VERIFIERS, verifiers_for

    backend = rng.choice(["gmm"] * 7 + ["digits", "dit", "t2i"])
    fits = verifiers_for(backend) if rng.random() < 0.8 else list(VERIFIERS)
    if backend == "digits":
        fits = ["oracle"]  # the other digits verifiers load in test_concurrent_first_use_...
    v: dict = dict(
        backend=backend,
        preset=rng.choice(list(BACKENDS["gmm"].presets) + [None]) if backend == "gmm" else None,
        target=rng.choice([None, None, 0, 1, 2, "2: prize"] if rng.random() < 0.85 else ["digit 3", 11, -1]),
        algorithm=rng.choice(list(ALGORITHMS)),
        verifier=rng.choice(fits),
        heldout=rng.choice([*fits, ""]),
        solver=rng.choice(["euler", "heun", "sde"]),
        avoid=rng.choice(["none", "repulsion", "revert", "prune"]),
        embed=rng.choice(["pca", "umap"]),
        tree_view=rng.choice(["layered", "score"]),
        obstacles="\n".join(rng.sample(OBSTACLES[:5] if rng.random() < 0.7 else OBSTACLES, rng.randint(0, 2))),
        model="",
        prompt="",
        verifier_model="",
    )
    v.update({k: rng.choice(choices) for k, choices in SMALL.items()})
    if rng.random() < 0.5:  # a valid request: it runs a search
        valid = rng.choice([("gmm", "trap", "component:1"), ("gmm", "eight-gaussians", "point:0,0@eta=2,q=0.5"),
                            ("gmm", "trap", "ball:1,1,0.3"), ("digits", None, "class:3")])  # fmt: skip
        v.update(backend=valid[0], preset=valid[1], obstacles=rng.choice(["", valid[2]]), target=None)
        fits = ["oracle"] if valid[0] == "digits" else verifiers_for("gmm")
        v.update(verifier=rng.choice(fits), heldout=rng.choice(fits))
        if not v["obstacles"] and valid[1] != "trap":
            v["avoid"] = "none"
        return v
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # corrupt some fields
        k = rng.choice(INPUTS)
        v[k] = rng.choice(NUMBERS if k in SMALL else TEXTS + NUMBERS[:4])
    return v


def test_fuzz_every_handler(handlers, app_log):
    """A seeded fuzzer: 320 calls over every handler (search stream, slider run, stop,
    obstacle helpers); every answer is a result or one clear line, and nothing reaches
    the log as an internal error."""
    rng = random.Random(1234)
    calls = 0
    kinds: dict[str, int] = {"result": 0, "message": 0}
    for i in range(200):
        vals = fuzz_values(rng)
        state = SessionState()
        if i % 5 == 0:
            out = list(handlers.stream(state, *[vals[k] for k in INPUTS]))[-1]
        else:
            out = handlers.run(state, *[vals[k] for k in INPUTS])
            assert set(out) == {"state", *Outputs.NAMES}
        status_ok(out["status"])
        kinds["message" if out["status"].startswith("⚠️") else "result"] += 1
        calls += 1
    for _ in range(30):
        backend = rng.choice(["gmm", "digits", "nope", None, 3])
        text = rng.choice(TEXTS + OBSTACLES)
        assert isinstance(handlers.hazard_text(backend, rng.choice(["trap", None, "nope"]), text), str)
        assert isinstance(handlers.add_target_obstacle(backend, rng.choice(["1: hazard", 3, None, math.inf, "x"]), text), str)
        assert isinstance(handlers.mark_best(rng.choice([SessionState(), None]), text), str)
        assert handlers.stop(rng.choice([SessionState(), None]))[1]
        calls += 4
    # the tools: clicks, gallery marks, node inspector, tree view, compare, save / reopen, links
    done = SessionState()
    handlers.run(done, *input_values(n=3, steps=4))
    junk = TEXTS + ["", None, 3, '{"x": 1}', '{"x": "nan", "y": 1}', '{"id": -5}', '{"id": 1e9}', "[1, 2]"]
    bad_file = os.path.join(tempfile.mkdtemp(), "bad.json")
    from test_fuzz_runfiles import crafted  # run files with junk in one to three places

    from dts_app.ui.runfile import run_text

    payload = json.loads(run_text(done.result, done.config))
    for i in range(40):
        st = rng.choice([done, SessionState(), None])
        text = rng.choice(TEXTS + OBSTACLES)
        click = rng.choice(junk + ['{"x": 0.5, "y": -1.0}', '{"id": 3}'])
        assert isinstance(
            handlers.place(click, rng.choice([0.5, 0, -1, math.nan, "x"]), text, rng.choice(["gmm", "digits", None]))[1], str
        )
        assert isinstance(handlers.mark_image(st, rng.choice([0, 2, -1, 99, None, "x"]), text)[1], str)
        assert isinstance(handlers.inspect_node(st, click)[0], str)
        assert isinstance(json.loads(handlers.node_path(st, click))["ids"], list)
        assert handlers.redraw_tree(st, rng.choice(["layered", "score", "x", None])) is None or st is done
        with open(bad_file, "w") as f:
            f.write(rng.choice(['{"tree": {"nodes": [{"id": 5}]}, "ledger": {}}', "not json", '{"config": 3}', "[]", crafted(rng, payload)]))
        out = handlers.reopen(SessionState(), rng.choice([bad_file, None, "/nonexistent", 5]))
        status_ok(out["status"])
        assert isinstance(handlers.share_query(*[rng.choice([v, None, 3]) for v in input_values()]), str)
        assert isinstance(handlers.from_query(rng.choice([None, {}, {"n": "x", "zzz": 1}, {"obstacles": "q" * 9000}])), dict)
        calls += 7
        if i % 10 == 0:
            vals = fuzz_values(rng)
            out = handlers.compare(SessionState(), *[vals[k] for k in INPUTS], algorithm_b=rng.choice(["smc", "nope", None]),
                                   changes_b=rng.choice(["", "n=2", "seed=3", "zzz=1", "n", "avoid=smc", 5]))  # fmt: skip
            status_ok(out["status"])
            calls += 1
    assert kinds["result"] >= 60 and kinds["message"] >= 30, kinds  # both paths exercised, not only one
    assert not [r for r in app_log.records if r.levelno >= logging.ERROR], [r.getMessage() for r in app_log.records]
