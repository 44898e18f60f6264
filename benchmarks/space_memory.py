"""Does a public (Space-mode) server stay healthy under varied traffic?

The app is started as ``app.py`` starts it, in a subprocess with ``DTS_MODE=space`` (the
strict public profile of :class:`dts_app.ui.limits.Limits`), on a free 127.0.0.1 port,
its stdout and stderr going to a log file. A seeded plan of requests then goes through
``gradio_client`` over every API endpoint (``/search`` streamed, ``/release_n|m|eta|q_star``,
``/compare``, ``/stop``): mostly gmm runs (every preset, every algorithm, every avoid
mode, obstacles), some small digits runs, invalid values (NaN, out of range, junk text,
too many obstacles, model ids a Space must refuse), and distinct ``model`` /
``verifier_model`` strings (an audit once found 30 distinct verifier-model strings adding
81 MB). Visitors come and go: a new client session every ``--session-every`` requests.

The server's resident memory (VmRSS) is read after a warm-up (the first ``--warmup``
requests: imports, model loads and verifier fits happen there; that is the baseline) and
after every ``--every`` requests. The goal: final RSS within 10 % of the baseline, and no
traceback from app code (``dts_app/`` frames) in the server log.

Writes benchmarks/results/space_memory.json (with the requests after which RSS rose
most) and prints a one-line summary. Run: ``python benchmarks/space_memory.py`` (200
requests, about 4 minutes on 2 cores). ``tests/test_space_memory.py`` imports this file
for the same check at CI size.

Finding what grows: ``--debug DUMP`` serves :data:`DEBUG_SERVER` instead (the same app,
plus a dump at every sample: tracemalloc's growth since the baseline, objects by type,
gradio's sessions and the size of each session's component table, glibc's heap in use
and free-but-kept, numba's compiled specialisations, the backend cache). Its knobs go
through ``--env``: ``SPACE_MEMORY_FRAMES=0`` (no tracemalloc: fast),
``SPACE_MEMORY_TRIM=1`` (``malloc_trim`` at each dump: how much RSS is free heap),
``SPACE_MEMORY_GRADIO_FIX=1`` (the workaround for gradio's per-session growth); plain
runs take allocator settings the same way (``--env MALLOC_ARENA_MAX=2``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the result lines of a served answer (anything else must be one ⚠️ line)
OK = re.compile(r"^\*\*(finished|stopped|budget exhausted|compared|reopened)\*\*")
#: what an answer must never show: an exception class, a traceback, a file path
LEAK = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback|File \"")
SEARCH = ("/search", "/release_n", "/release_m", "/release_eta", "/release_q_star")
GMM_OBSTACLES = ["", "", "component:1", "point:0,0", "ball:1,1,0.3", "point:0,0@eta=2,q=0.5", "ball:-1,0,0.4\npoint:1,-1"]
INVALID = [
    dict(eta="nan"),
    dict(q_star="inf"),
    dict(lam="-inf"),
    dict(n=200_000),
    dict(steps=-3),
    dict(m=0),
    dict(seed="abc"),
    dict(eta=1e300),
    dict(backend="nope"),
    dict(algorithm="nope"),
    dict(preset="zzz"),
    dict(solver="rk4"),
    dict(avoid="x"),
    dict(embed="tsne"),
    dict(tree_view="3d"),
    dict(delta_f=5, delta_b=3),
    dict(target="1e300"),
    dict(target="digit 3"),
    dict(obstacles="blob:1"),
    dict(obstacles="point:nan,0"),
    dict(obstacles="point:0,0@q=0"),
    dict(obstacles="\n".join(f"point:{i % 7},{i % 5}" for i in range(65))),  # over the Space's 64
    dict(obstacles="x" * 5_000),  # over the Space's 4,000 characters
    dict(prompt="p" * 5_000),
    dict(backend="digits", preset=None, target=3, model="someone/model"),  # not on the allowlist
    dict(backend="dit", preset=None, target=1, verifier="clip", heldout="clip", model="someone/model"),
    dict(backend="t2i", preset=None, verifier="clip", heldout="clip", model="someone/model", prompt="a cat"),
    dict(backend="dit", preset=None, target=1, model="../../etc"),
    dict(budget=3),  # cannot pay for one path
]
CHANGES_B = ["", "", "n=4", "seed=3", "eta=2", "avoid=repulsion\nobstacles=component:1", "zzz=1", "n", "seed"]


@dataclass
class Ask:
    """One planned request: the endpoint, its positional values, and what kind it is."""

    endpoint: str
    args: list
    kind: str  # gmm | digits | invalid | model-string | compare | stop


@dataclass
class Report:
    """What a drive of the server saw."""

    requests: int = 0
    endpoints: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    results: int = 0
    rejections: int = 0
    other: int = 0
    bad_answers: list = field(default_factory=list)  # (index, kind, endpoint, status) that break the rules
    client_errors: list = field(default_factory=list)  # (index, kind, endpoint, message): gradio's own refusals
    refused: Counter = field(default_factory=Counter)  # (kind, the ⚠️ line's head) -> count
    rss_mb: list = field(default_factory=list)  # (requests done, MB)
    seconds: list = field(default_factory=list)  # per request
    rss_each: list = field(default_factory=list)  # MB after each request (to find the requests that raise it)


# ---- the server -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def space_env(port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTS_") and k != "SPACE_ID"}
    env.update(
        DTS_MODE="space",
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
    )
    env.update(extra)
    return env


#: ``--debug``: the app as app.py builds it, plus a SIGUSR1 handler that appends what holds
#: memory to the file named by SPACE_MEMORY_DUMP (one JSON line per signal); the first
#: signal (the baseline) starts tracemalloc, later ones report what grew since
DEBUG_SERVER = r"""
import gc, json, os, signal, threading, time, tracemalloc
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("SPACE_MEMORY_GRADIO_FIX"):  # the workaround for gradio's per-session growth
    from gradio import state_holder
    from gradio.blocks import Block

    _set = state_holder.SessionState.__setitem__

    def _setitem(self, key, value):
        if isinstance(value, Block) and value._id != key:
            value._id = key  # a replacement made by gr.skip()/gr.update() keeps its slot: no new entry later
        _set(self, key, value)

    state_holder.SessionState.__setitem__ = _setitem
from dts_app.ui.handlers import AppHandlers
from dts_app.ui.layout import build_demo
from dts_app.viz.embedding import UmapEmbedder

h = AppHandlers(embedder=UmapEmbedder())
demo = build_demo(h)
seen = {}

def top(snap, base, key, n):
    return [(d.traceback.format()[-12:] if key == "traceback" else str(d.traceback[0]), round(d.size_diff / 2**20, 3),
             d.count_diff) for d in snap.compare_to(base, key)[:n]]

def dump(*_):
    gc.collect()
    rec = {"t": time.time()}
    frames = int(os.environ.get("SPACE_MEMORY_FRAMES", "6"))  # 0: no tracemalloc (fast)
    if frames and not tracemalloc.is_tracing():  # the first dump (the baseline): trace from here on
        tracemalloc.start(frames)
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]) if frames else None
    rec["traced_since_baseline_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 3)
    if "first" in seen and snap is not None:
        rec["grew_since_baseline"] = top(snap, seen["first"], "lineno", 25)
        rec["grew_since_baseline_by_traceback"] = top(snap, seen["first"], "traceback", 10)
        rec["grew_since_last"] = top(snap, seen["last"], "lineno", 10)
    else:
        seen["first"] = snap
    seen["last"] = snap
    sh = getattr(demo, "state_holder", None)
    if sh is not None:
        rec["gradio_sessions"] = len(sh.session_data)
        rec["gradio_session_blocks"] = [(len(v.blocks_config.blocks), len(v.config_values), len(v.state_data))
                                        for v in list(sh.session_data.values())][-4:]
        rec["gradio_temp_file_sets"] = len(getattr(demo, "temp_file_sets", []))
        rec["gradio_default_blocks"] = len(demo.default_config.blocks)
    try:
        st = h.cache.stats()
        rec["cache"] = {k: (v if k != "keys" else [str(x) for x in v]) for k, v in st.items()}
    except Exception as e:
        rec["cache"] = repr(e)
    rec["threads"] = threading.active_count()
    try:  # glibc's view: bytes in use vs free-but-kept (fragmentation) in its arenas
        import ctypes

        class MallInfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in
                        ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        mi = libc.mallinfo2()
        rec["malloc_mb"] = {"heap": round(mi.arena / 2**20, 1), "mmapped": round(mi.hblkhd / 2**20, 1),
                            "in_use": round(mi.uordblks / 2**20, 1), "free_kept": round(mi.fordblks / 2**20, 1)}
    except Exception as e:
        rec["malloc_mb"] = repr(e)
    objs = gc.get_objects()  # what kinds of objects grew in number and in bytes since the baseline
    count, size = {}, {}
    for o in objs:
        t = type(o)
        name = f"{t.__module__}.{t.__qualname__}"
        count[name] = count.get(name, 0) + 1
        if t is str or t is bytes:
            size[name] = size.get(name, 0) + len(o)
        elif name == "numpy.ndarray":
            size[name] = size.get(name, 0) + (o.nbytes if o.base is None else 0)
        elif name == "torch.Tensor" or name == "torch.nn.parameter.Parameter":
            try:
                size[name] = size.get(name, 0) + o.untyped_storage().nbytes()
            except Exception:
                pass
    import numpy as np

    ids = set()
    for o in objs:  # strings, bytes and arrays are not tracked by gc: reach them through their holders
        for r in gc.get_referents(o):
            t = type(r)
            if (t is str or t is bytes or t is np.ndarray) and id(r) not in ids:
                ids.add(id(r))
                name = f"{t.__module__}.{t.__qualname__} (reached)"
                count[name] = count.get(name, 0) + 1
                n = len(r) if t is not np.ndarray else (r.nbytes if r.base is None else 0)
                size[name] = size.get(name, 0) + n
    try:  # numba specialisations compiled so far (UMAP compiles one per new argument type)
        from numba.core.dispatcher import Dispatcher

        rec["numba_overloads"] = sum(len(o.overloads) for o in objs if isinstance(o, Dispatcher))
    except Exception as e:
        rec["numba_overloads"] = repr(e)
    chains = {}
    for cls in ("gradio.components.plot.Plot", "dts_app.trace.Node", "dts_app.ui.state.SessionState"):
        inst = [o for o in objs if f"{type(o).__module__}.{type(o).__qualname__}" == cls][-3:]
        out = []
        for o in inst:  # who holds the newest ones, three levels up
            level, path = [o], []
            for _ in range(4):
                refs = [r for x in level for r in gc.get_referrers(x) if r is not objs and r is not level
                        and type(r).__name__ not in ("frame", "list_iterator")][:4]
                if not refs:
                    break
                desc = []
                for r in refs:
                    d = type(r).__qualname__
                    if isinstance(r, dict):
                        keys = [str(k)[:24] for k, v in r.items() if any(v is x for x in level)][:2]
                        d += f"[{','.join(keys)}]"
                    desc.append(d)
                path.append(" | ".join(desc))
                level = refs
            out.append(path)
        chains[cls] = out
    rec["holders"] = chains
    del objs, ids
    if "count" in seen:
        grew = sorted(((count[k] - seen["count"].get(k, 0), k) for k in count), reverse=True)[:20]
        rec["more_objects"] = [[k, n] for n, k in grew if n > 0]
        rec["bytes_mb"] = {k: [round(seen["size"].get(k, 0) / 2**20, 2), round(v / 2**20, 2)] for k, v in size.items()}
    else:
        seen["count"], seen["size"] = count, size
    if os.environ.get("SPACE_MEMORY_TRIM"):  # how much of the RSS is free memory glibc keeps?
        import ctypes

        def rss():
            return int(next(ln for ln in open("/proc/self/status") if ln.startswith("VmRSS")).split()[1]) / 1024

        before = rss()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        rec["rss_before_after_malloc_trim"] = [round(before, 1), round(rss(), 1)]
    seen["dumps"] = seen.get("dumps", 0) + 1
    with open(os.environ["SPACE_MEMORY_DUMP"], "a") as f:
        f.write(json.dumps(rec) + "\n")

signal.signal(signal.SIGUSR1, dump)
demo.launch(show_error=True)
"""


def start_server(log_path: Path, timeout: float = 180.0, debug_dump: Path | None = None,
                 **extra_env: str) -> tuple[subprocess.Popen, str]:  # fmt: skip
    """``app.py`` in space mode in a subprocess (output to ``log_path``); returns once it
    answers HTTP: ``(process, url)``. With ``debug_dump`` the server is
    :data:`DEBUG_SERVER` (tracemalloc on; :func:`debug_dump` asks it what holds memory)."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # the child writes it for its whole life
    if debug_dump is not None:
        extra_env = {**extra_env, "SPACE_MEMORY_DUMP": str(debug_dump)}
    cmd = [sys.executable, str(ROOT / "app.py")] if debug_dump is None else [sys.executable, "-c", DEBUG_SERVER]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=space_env(port, **extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"server did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def request_dump(proc: subprocess.Popen, path: Path, timeout: float = 120.0) -> dict:
    """Ask a :data:`DEBUG_SERVER` for a dump; its record once written."""
    import signal

    before = path.read_text().count("\n") if path.exists() else 0
    proc.send_signal(signal.SIGUSR1)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) > before:
            return json.loads(lines[-1])
        time.sleep(0.5)
    raise RuntimeError("no dump from the server")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (VmRSS; psutil is not a dependency)."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of resident memory (VmHWM) in MB."""
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def cpu_seconds(pid: int) -> float:
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, window_s: float = 2.0, busy: float = 0.3, timeout: float = 120.0) -> float:
    """Wait until the server's background warm-ups (default backend, UMAP) are done: its
    CPU use stays under ``busy`` cores for ``window_s`` (an idle server still uses a
    little). Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        c0 = cpu_seconds(pid)
        time.sleep(window_s)
        if cpu_seconds(pid) - c0 < busy * window_s:
            break
    return time.monotonic() - t0


def tracebacks(log_text: str) -> tuple[int, int, list[str]]:
    """``(all, from app code, the app ones)``: traceback blocks in a log; a block is the
    app's when one of its frames is a file under ``dts_app/``."""
    lines = log_text.splitlines()
    total, app, blocks = 0, 0, []
    i = 0
    while i < len(lines):
        if lines[i].startswith("Traceback (most recent call last)"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                j += 1
            block = lines[i : j + 1]
            total += 1
            if any(ln.lstrip().startswith("File ") and "dts_app/" in ln for ln in block):
                app += 1
                blocks.append("\n".join(block))
            i = j
        i += 1
    return total, app, blocks


# ---- the plan ---------------------------------------------------------------------------
def _values(**changes):
    from dts_app.ui.inputs import input_values

    return input_values(**changes)


def gmm_values(rng: random.Random, **over) -> dict:
    from dts_app.backends.registry import BACKENDS
    from dts_app.search.registry import ALGORITHMS
    from dts_app.verifiers.registry import verifiers_for

    fits = verifiers_for("gmm")
    preset = rng.choice(BACKENDS["gmm"].presets)
    obstacles = rng.choice(GMM_OBSTACLES if preset != "hd-64" else ["", "component:1"])  # coordinates are 2-D
    avoid = rng.choice(["none", "repulsion", "revert", "prune"])
    if not obstacles and preset != "trap":  # the trap has its own hazard; others need a line
        avoid = "none"
    v = dict(
        backend="gmm",
        preset=preset,
        target=rng.choice([None, None, 0, 1]),
        algorithm=rng.choice(list(ALGORITHMS)),
        verifier=rng.choice(fits),
        heldout=rng.choice(fits),
        n=rng.randint(1, 16),
        m=rng.randint(1, 4),
        steps=rng.choice([2, 4, 8, 16, 24]),
        seed=rng.randint(0, 10_000),
        eta=rng.choice([0.0, 0.5, 1.0, 2.0, 5.0]),
        q_star=rng.choice([0.1, 0.5, 1.0, 2.0]),
        solver=rng.choice(["euler", "euler", "heun", "sde"]),
        avoid=avoid,
        obstacles=obstacles,
        embed="umap" if rng.random() < 0.1 else "pca",
        tree_view=rng.choice(["layered", "score"]),
    )
    v.update(over)
    return v


def digits_values(rng: random.Random, **over) -> dict:
    from dts_app.search.registry import ALGORITHMS
    from dts_app.verifiers.registry import verifiers_for

    cls = rng.randint(0, 9)
    avoid, obstacles = ("none", "") if rng.random() < 0.7 else (rng.choice(["repulsion", "prune"]), f"class:{(cls + 1) % 10}")
    v = dict(
        backend="digits",
        preset=None,
        target=cls,
        algorithm=rng.choice(list(ALGORITHMS)),
        verifier=rng.choice(verifiers_for("digits")),
        heldout="oracle",
        n=rng.randint(1, 4),
        m=rng.randint(1, 2),
        steps=rng.choice([2, 4, 6]),
        seed=rng.randint(0, 10_000),
        guidance=rng.choice([0.0, 1.0, 2.0]),
        avoid=avoid,
        obstacles=obstacles,
        embed="umap" if rng.random() < 0.1 else "pca",
    )
    v.update(over)
    return v


def _ask(endpoint: str, vals: dict, kind: str, extra: tuple = ()) -> Ask:
    args = [("nan" if isinstance(x, float) and math.isnan(x) else x) for x in _values(**vals)]
    return Ask(endpoint, [*args, *extra], kind)


def plan(n: int, seed: int = 0, umap: bool = True) -> list[Ask]:
    """``n`` seeded requests. The first few cover every model, verifier and view once, so
    the loads and fits fall in the warm-up; then a mix: about 50 % gmm runs, 10 % digits,
    15 % invalid, 10 % distinct model strings, 10 % compare, 5 % stop."""
    from dts_app.backends.registry import BACKENDS
    from dts_app.search.registry import ALGORITHMS
    from dts_app.verifiers.registry import verifiers_for

    rng = random.Random(seed)
    asks: list[Ask] = []
    for i, preset in enumerate(BACKENDS["gmm"].presets):  # every preset, every algorithm
        algos = list(ALGORITHMS)
        asks.append(_ask(SEARCH[i % len(SEARCH)], gmm_values(rng, preset=preset, algorithm=algos[i % len(algos)]), "gmm"))
    for v in verifiers_for("digits"):
        asks.append(_ask("/release_n", digits_values(rng, verifier=v, heldout="oracle"), "digits"))
    # UMAP compiles (numba) a specialisation per data shape on first use: 2-D, 64-D, images, with extras
    asks.append(_ask("/search", gmm_values(rng, preset="trap", embed="umap", n=8, steps=8), "gmm"))
    asks.append(_ask("/release_m", gmm_values(rng, preset="hd-64", embed="umap", obstacles="component:1"), "gmm"))
    asks.append(_ask("/release_q_star", gmm_values(rng, preset="eight-gaussians", embed="umap", obstacles="ball:1,1,0.3",
                                                   avoid="repulsion"), "gmm"))  # fmt: skip
    asks.append(_ask("/release_eta", digits_values(rng, embed="umap", n=4, steps=6), "digits"))
    asks.append(_ask("/compare", gmm_values(rng), "compare", ("smc", "")))
    asks.append(_ask("/release_eta", dict(INVALID[0]), "invalid"))
    asks = asks[:n]
    while len(asks) < n:
        i = len(asks)
        r = rng.random()
        if r < 0.50:
            asks.append(_ask(rng.choice(SEARCH), gmm_values(rng), "gmm"))
        elif r < 0.60:
            asks.append(_ask(rng.choice(SEARCH), digits_values(rng), "digits"))
        elif r < 0.75:
            base = gmm_values(rng) if rng.random() < 0.8 else digits_values(rng)
            asks.append(_ask(rng.choice(SEARCH), {**base, **rng.choice(INVALID)}, "invalid"))
        elif r < 0.85:  # a string never seen before: must not load or keep anything
            which = rng.choice(["gmm-verifier", "gmm-model", "digits-verifier", "digits-model", "dit-verifier"])
            if which == "gmm-verifier":
                vals = gmm_values(rng, verifier_model=f"someone/verifier-{i}")
            elif which == "gmm-model":
                vals = gmm_values(rng, model=f"org{i}/model-{i}")
            elif which == "digits-verifier":
                vals = digits_values(rng, verifier_model=f"clip=someone/clip-{i},dino=someone/dino-{i}")
            elif which == "digits-model":
                vals = digits_values(rng, model=f"someone/digits-{i}")
            else:
                vals = dict(backend="dit", preset=None, target=1, verifier="clip", heldout="clip",
                            model="facebook/DiT-XL-2-256", verifier_model=f"someone/verifier-{i}")  # fmt: skip
            asks.append(_ask(rng.choice(SEARCH), vals, "model-string"))
        elif r < 0.95:
            from dts_app.search.registry import ALGORITHMS as algos

            vals = gmm_values(rng, n=rng.randint(1, 8), steps=rng.choice([4, 8, 16]))
            extra = (rng.choice([*algos, "nope", None]), rng.choice(CHANGES_B))
            asks.append(_ask("/compare", vals, "compare", extra))
        else:
            asks.append(Ask("/stop", [], "stop"))
    if not umap:  # PCA views only (to tell UMAP's first-use compiles from the rest)
        from dts_app.ui.inputs import INPUTS

        at = INPUTS.index("embed")
        for a in asks:
            if len(a.args) > at and a.args[at] == "umap":
                a.args[at] = "pca"
    return asks


# ---- the drive --------------------------------------------------------------------------
def status_of(out) -> str:
    """The status line of an answer (the first output; ``/stop`` answers it alone)."""
    return out[0] if isinstance(out, (list, tuple)) else out


def judge(status, kind: str) -> str | None:
    """``result``, ``rejection`` or None when the answer breaks the rules (blank, several
    lines, an exception name, an internal error)."""
    if not isinstance(status, str) or not status or "\n" in status or LEAK.search(status):
        return None
    if status.startswith("⚠️"):
        return None if len(status) <= 8 or "internal error" in status else "rejection"
    if OK.match(status) or (kind == "stop" and status.startswith("stopping")):
        return "result"
    return None


def drive(url: str, pid: int, asks: list[Ask], warmup: int = 20, every: int = 20, session_every: int = 10,
          log=print, on_sample=None) -> Report:  # fmt: skip
    """Send ``asks`` one after another (a new client session every ``session_every``);
    read the server's RSS after ``warmup`` requests and then after every ``every``."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    rep = Report()
    client = None
    for i, ask in enumerate(asks):
        if client is None or i % session_every == 0:
            if client is not None:
                client.close()
            client = Client(url, verbose=False)
        t0 = time.perf_counter()
        try:
            out = client.predict(*ask.args, api_name=ask.endpoint)
        except AppError as e:  # refused by gradio itself, before any app code ran
            out = None
            rep.client_errors.append((i, ask.kind, ask.endpoint, str(e)[:300]))
        rep.seconds.append(time.perf_counter() - t0)
        rep.rss_each.append(rss_mb(pid))
        rep.requests += 1
        rep.endpoints[ask.endpoint] += 1
        rep.kinds[ask.kind] += 1
        status = status_of(out) if out is not None else None
        verdict = judge(status, ask.kind) if out is not None else "client-error"
        if verdict == "client-error":
            pass
        elif verdict == "result":
            rep.results += 1
        elif verdict == "rejection":
            rep.rejections += 1
            rep.refused[f"{ask.kind}: {status.split(':', 1)[0]}"] += 1
        else:
            rep.other += 1
            rep.bad_answers.append((i, ask.kind, ask.endpoint, str(status)[:300]))
        done = i + 1
        if done == warmup:  # background warm-ups (UMAP's JIT) end before the baseline
            settle(pid)
        if done == warmup or (done > warmup and (done - warmup) % every == 0) or done == len(asks):
            if not rep.rss_mb or rep.rss_mb[-1][0] != done:
                rep.rss_mb.append((done, round(rss_mb(pid), 1)))
                log(f"  {done:4d} requests  RSS {rep.rss_mb[-1][1]:8.1f} MB")
                if on_sample is not None:
                    on_sample(done)
    if client is not None:
        client.close()
    return rep


def describe(ask: Ask) -> str:
    """A short label of a request (for the largest RSS steps)."""
    if not ask.args:
        return ask.endpoint
    from dts_app.ui.inputs import INPUTS

    v = dict(zip(INPUTS, ask.args))
    parts = [ask.endpoint, ask.kind, str(v["backend"]), str(v["preset"] or ""), str(v["algorithm"])]
    parts += [f"n={v['n']}", f"m={v['m']}", f"steps={v['steps']}", f"embed={v['embed']}"]
    if ask.endpoint == "/compare":
        parts.append(f"B={ask.args[len(INPUTS)]}")
    return " ".join(p for p in parts if p)


def largest_steps(rep: Report, asks: list[Ask], warmup: int, k: int = 8) -> list[dict]:
    """The ``k`` requests after the warm-up after which RSS rose most."""
    steps = [(rep.rss_each[i] - rep.rss_each[i - 1], i) for i in range(max(1, warmup), len(rep.rss_each))]
    return [{"request": i, "mb": round(d, 1), "what": describe(asks[i])} for d, i in sorted(steps, reverse=True)[:k] if d > 0]


def baseline_and_final(rep: Report, warmup: int) -> tuple[float, float]:
    base = next(mb for n, mb in rep.rss_mb if n >= warmup)
    return base, rep.rss_mb[-1][1]


def machine() -> dict:
    import torch

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu": model or platform.processor(),
        "cores": cores,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def main() -> None:
    import argparse

    import gradio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="requests in all, warm-up included")
    ap.add_argument("--warmup", type=int, default=20, help="requests before the baseline RSS")
    ap.add_argument("--every", type=int, default=20, help="requests between two RSS samples")
    ap.add_argument("--session-every", type=int, default=10, help="requests per client session")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-umap", action="store_true", help="PCA views only (a diagnostic)")
    ap.add_argument("--out", default="space_memory.json", help="file name under benchmarks/results/")
    ap.add_argument("--log", default=None, help="server log (default: a temporary file)")
    ap.add_argument("--debug", default=None, metavar="DUMP",
                    help="serve with tracemalloc and append what grew at every sample to DUMP (JSON lines; slower: "
                         "do not compare its RSS with a plain run)")  # fmt: skip
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)")  # fmt: skip
    args = ap.parse_args()
    extra_env = dict(kv.split("=", 1) for kv in args.env)

    import tempfile

    log_path = Path(args.log) if args.log else Path(tempfile.mkdtemp(prefix="space_memory_")) / "server.log"
    dump = Path(args.debug) if args.debug else None
    if dump is not None and dump.exists():
        dump.unlink()
    t0 = time.perf_counter()
    proc, url = start_server(log_path, debug_dump=dump, **extra_env)
    try:
        startup_s = time.perf_counter() - t0
        settle_s = settle(proc.pid)  # the background warm-ups: otherwise UMAP requests fall back to PCA until later
        rss_start = rss_mb(proc.pid)
        print(f"server up in {startup_s:.1f} s, settled in {settle_s:.1f} s, RSS {rss_start:.1f} MB; log {log_path}")
        asks = plan(args.requests, args.seed, umap=not args.no_umap)
        t1 = time.perf_counter()
        on_sample = None if dump is None else (lambda done: request_dump(proc, dump))
        rep = drive(url, proc.pid, asks, args.warmup, args.every, args.session_every, on_sample=on_sample)
        drive_s = time.perf_counter() - t1
        peak = max(peak_rss_mb(proc.pid), *(mb for _, mb in rep.rss_mb))
    finally:
        stop_server(proc)
    wall = time.perf_counter() - t0
    total_tb, app_tb, blocks = tracebacks(log_path.read_text(errors="replace"))
    base, final = baseline_and_final(rep, args.warmup)
    ratio = final / base
    secs = sorted(rep.seconds)
    result = {
        "benchmark": "space memory: a DTS_MODE=space server under varied requests (gradio_client)",
        "machine": machine(),
        "gradio": gradio.__version__,
        "requests": rep.requests,
        "warmup_requests": args.warmup,
        "sample_every": args.every,
        "requests_per_session": args.session_every,
        "seed": args.seed,
        "umap_requests": not args.no_umap,
        "server_env": {"DTS_MODE": "space", **extra_env},
        "endpoints": dict(sorted(rep.endpoints.items())),
        "kinds": dict(sorted(rep.kinds.items())),
        "results": rep.results,
        "rejections": rep.rejections,
        "refused_by": dict(rep.refused.most_common()),
        "bad_answers": rep.bad_answers,
        "client_errors": rep.client_errors,
        "rss_mb": {
            "after_startup": round(rss_start, 1),
            "series": [{"requests": n, "mb": mb} for n, mb in rep.rss_mb],
            "baseline": base,
            "final": final,
            "peak": round(peak, 1),
            "final_over_baseline": round(ratio, 4),
            "goal": "final ≤ 1.10 × baseline",
            "largest_steps_after_warmup": largest_steps(rep, asks, args.warmup),
        },
        "tracebacks": {"app": app_tb, "all": total_tb, "first_app": blocks[0][-3000:] if blocks else None},
        "seconds": {
            "startup": round(startup_s, 1),
            "settle": round(settle_s, 1),
            "requests": round(drive_s, 1),
            "wall": round(wall, 1),
            "per_request_median": round(secs[len(secs) // 2], 3),
            "per_request_max": round(secs[-1], 3),
        },
        "flat": ratio <= 1.10,
        "passed": ratio <= 1.10 and app_tb == 0,  # the "done when"
        "answers_clean": not rep.bad_answers and not rep.client_errors,
        "debug": bool(dump),
    }
    path = Path(__file__).resolve().parent / "results" / args.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(
        f"space memory: {rep.requests} requests ({rep.results} results, {rep.rejections} refused, {len(rep.bad_answers)} bad, "
        f"{len(rep.client_errors)} gradio errors), "
        f"RSS baseline {base:.1f} MB → final {final:.1f} MB (×{ratio:.3f}, peak {peak:.1f}), "
        f"app tracebacks {app_tb} (all {total_tb}), wall {wall:.0f} s → {'PASS' if result['passed'] else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
