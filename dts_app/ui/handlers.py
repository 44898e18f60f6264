"""Handlers of the exploration app: plain functions of (state, control values) returning
figures and a status line. The layout wires them; tests call them directly.

Control values arrive positionally in the order of :data:`INPUTS`; :func:`config_from`
turns them into a validated :class:`~dts_app.config.SearchConfig` (the server validates
again whatever a browser or API client sends). Every request runs under the caps of
:class:`~dts_app.ui.limits.Limits`: NFEs through the budget, nodes and the deadline
through the engine's ``stop`` callable (a :class:`~dts_app.ui.limits.RunGuard`), and a
``cancel`` event the layout sets when the client cancels or goes away.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from ..config import ConfigError, SearchConfig
from ..ledger import BudgetExceeded
from .inputs import INPUTS, LIVE, SLIDERS, clip, config_from, input_values, parse_obstacles, target_value
from .limits import Limits, RunGuard
from .models import BackendCache, check_models
from .render import Outputs, live_tree, placeholders, render
from .state import STOPPED_QUEUED, SessionState, stopped_before, superseded
from .tools import ToolHandlers

__all__ = [
    "STOPPED_QUEUED",
    "stopped_before",
    "input_values",
    "INPUTS",
    "SLIDERS",
    "LIVE",
    "Outputs",
    "parse_obstacles",
    "config_from",
    "AppHandlers",
]

log = logging.getLogger("dts_app.ui")
#: errors that are the user's (bad knobs, budgets, models that cannot load): shown as a
#: status line; anything else is a bug, logged with its traceback and shown as one line
_USER_ERRORS = (ConfigError, BudgetExceeded)
STATUS_INTERVAL_S = 0.4  # least seconds between two streamed status lines


class AppHandlers(ToolHandlers):
    """The app's handlers plus app-wide helpers (backend cache, UMAP holder, limits).

    Args:
        cache: the backend cache (default: a :class:`BackendCache` sized by ``limits``).
        embedder: the UMAP holder (None: PCA only).
        limits: the per-request caps (default: :meth:`Limits.from_env`).
        allowlist: model ids allowed on a public server (default: ``deploy/space_models.txt``).
    """

    def __init__(self, cache: BackendCache | None = None, embedder: Any = None, limits: Limits | None = None, allowlist=None):
        self.limits = limits or Limits.from_env()
        self.cache = cache if isinstance(cache, BackendCache) else BackendCache.from_limits(self.limits)
        self.embedder = embedder
        self.allowlist = allowlist
        self.runs: deque = deque(maxlen=256)  # (kind, reason, seconds) of finished runs, newest last
        self.clock = time.monotonic  # deadlines and stream throttling (tests substitute a fake clock)
        self._lock = threading.Lock()
        self._first_lock = threading.Lock()  # first_view(): computed once per handler object

    # ---- building --------------------------------------------------------------------
    def backend(self, cfg: SearchConfig):
        """The backend of ``cfg`` from the cache, after the model-loading policy."""
        check_models(cfg, self.limits, self.allowlist)
        return self.cache.get(cfg)

    def _problem(self, cfg: SearchConfig):
        from ..search.problem import build_problem

        backend = self.backend(cfg)
        _check_target(cfg.target, backend)
        return build_problem(cfg, backend=backend)

    def _capped(self, cfg: SearchConfig, problem, algo) -> tuple[int | None, str]:
        """The NFE budget of one request (the user's, at most the per-request cap) and a
        note for the status line.

        Returns:
            ``(budget, note)``; budget None means the algorithm's own natural course, which
            then fits under the cap.

        Raises:
            ConfigError: the budget cannot pay for even one full path.
        """
        need = problem.path_nfe()
        if cfg.budget and cfg.budget < need:
            raise ConfigError(f"NFE budget {cfg.budget} is too small: one path of {cfg.steps} steps costs {need} NFEs")
        from ..backends.registry import BACKENDS

        kind = problem.backend.data_kind
        spec = BACKENDS.get(cfg.backend)
        if kind == "image" and spec is not None and spec.embedded:
            kind = "embedded-image"
        cap = self.limits.nfe_cap(kind)
        var = {"points": "nfe_points", "embedded-image": "nfe_embedded_image"}.get(kind, "nfe_image")
        if need > cap:
            raise ConfigError(
                f"steps: one path costs {need:,} NFEs, over the per-request cap of {cap:,}; {self.limits.lift(var)}"
            )
        if cfg.budget and cfg.budget <= cap:
            return cfg.budget, ""
        if not cfg.budget and algo.max_nfe(problem) <= cap:
            return None, ""  # without a budget an algorithm runs its natural course
        return cap, f" (per-request cap {cap:,} NFEs; {self.limits.lift(var)})"

    def _prepare(self, values: tuple) -> tuple:
        """Validate the inputs and build ``(vals, config, request, note)``: the typed
        :class:`~dts_app.search.runner.RunRequest` of this request under its caps."""
        from ..search.registry import make_algorithm
        from ..search.runner import RunRequest

        if len(values) != len(INPUTS):
            raise ConfigError(f"expected {len(INPUTS)} control values ({', '.join(INPUTS)}), got {len(values)}")
        vals = dict(zip(INPUTS, values))
        cfg = config_from(vals, self.limits)
        problem = self._problem(cfg)
        try:
            algo = make_algorithm(cfg.algorithm, cfg)
        except ValueError as e:
            raise ConfigError(_first_line(e)) from None
        budget, note = self._capped(cfg, problem, algo)
        if cfg.budget and budget:  # the one budget: every algorithm fits its own N to it
            fitted = algo.fit_budget(problem, budget)
            note += _fitted_note(algo, fitted)
            algo = fitted
        return vals, cfg, RunRequest(problem, algo, budget, self.limits.max_nodes), note

    def _drive(self, request, guard: RunGuard) -> Iterator:
        """The snapshots of one run through the one :class:`~dts_app.search.runner.Runner`
        (its node cap ends the run as the guard's ``"nodes"``)."""
        from ..search.runner import Runner

        runner = Runner(request, guard)
        for snap in runner:
            if snap.done and runner.reason == "nodes":
                guard.cancel("nodes")
            yield snap

    # ---- figures ---------------------------------------------------------------------
    def figures(self, result, cfg: SearchConfig, backend, method: str = "pca", tree_view: str = "layered") -> Outputs:
        """All views of one :class:`~dts_app.search.types.SearchResult` within the limits;
        ``method`` is the embedding asked for (the one used is in ``Outputs.embed_used``)."""
        out, notes = render(result, cfg, backend, self.limits, method, self.embedder, tree_view)
        out.status = " · ".join(notes)
        return out

    def _status(self, res, cfg: SearchConfig, note: str, secs: float, guard: RunGuard | None = None) -> str:
        """The status line in plain words: how the run ended, the best verifier score, the
        independent judge's score of the same sample, model calls, and obstacle contact."""
        best, held = res.best_score, res.heldout_score
        ended = res.message  # a search that fits itself to the budget finishes by spending it
        spent = ended == "budget exhausted" and bool(cfg.budget)
        parts = [
            f"**{'finished' if spent else ended}** · {cfg.algorithm} on {cfg.backend}" + (f"/{cfg.preset}" if cfg.preset else ""),
            "no path finished"
            + (f" ({res.metrics['pruned']} cut inside Q*)" if res.metrics.get("pruned") else "")
            + (f": the best partial path's x̂0 scores {best:.4g}" if best is not None else "")
            if res.partial or best is None
            else f"best verifier score {best:.4g}",
            f"independent judge {held:.4g}" if held is not None else "",
            f"{res.ledger.denoiser_nfe:,} NFEs (model calls){' of the budget' if spent else ''}{note}",
            f"{len(res.tree.nodes):,} nodes",
            f"{secs * 1000:.0f} ms",
        ]
        from ..viz.ledger import contact_text

        parts.append(contact_text(res.metrics, res.obstacles))  # per obstacle too, when there are several
        if guard is not None and guard.note():
            parts.append(guard.note())
        return " · ".join(p for p in parts if p)

    # ---- handlers --------------------------------------------------------------------
    def _guard(self, state: SessionState, cancel: threading.Event | None, enqueued: float | None = None) -> RunGuard:
        """The run's stop rules: Stop (a graceful end), and a cancel, a client gone or a newer
        request of the session started (an end that draws nothing)."""
        seen = state.stops
        if enqueued is not None:
            state.newest = max(state.newest, enqueued)
        gone = None if cancel is None else cancel.is_set
        if enqueued is not None:
            gone = lambda: (cancel is not None and cancel.is_set()) or state.newest > enqueued
        return RunGuard(self.limits, lambda: state.stops != seen, gone, clock=self.clock)

    def run(self, state: SessionState, *values, cancel: threading.Event | None = None, enqueued: float | None = None) -> dict:
        """Run a search to the end and redraw everything (the one-answer path: links, the
        API's ``/release_*``): the last answer of :meth:`stream`, with no live frames.

        Args:
            cancel: set by the layout when the client cancels or disconnects; the search
                then stops within a step and nothing is drawn.

        Returns:
            The answer ``{"state", "status", "tree", "trajectories", "embedding", "plane",
            "gallery", "images", "ledger", "budget", "hacking": value}``
            (:meth:`Outputs.answer`); on an error only ``status`` is set (the views are
            None: the layout leaves them as they are)."""
        last = None
        for last in self._answers(state, values, cancel, enqueued, live=False):
            pass
        return last if last is not None else Outputs(status="cancelled").answer(state)

    def stream(
        self, state: SessionState, *values, cancel: threading.Event | None = None, enqueued: float | None = None
    ) -> Iterator[dict]:
        """Stream a search: the tree grows as steps complete; Stop ends it within a step.

        Yields:
            Answers like :meth:`run`'s; intermediate ones carry the status (at most
            every 0.4 s) and, at most every ``Limits.live_interval_s``, a tree decimated to
            ``Limits.live_nodes`` nodes; the last one redraws every view.
        """
        yield from self._answers(state, values, cancel, enqueued, live=True)

    def _answers(self, state, values: tuple, cancel, enqueued, live: bool) -> Iterator[dict]:
        state = state if isinstance(state, SessionState) else SessionState()
        if stopped_before(state, enqueued):  # Stop was pressed while this run waited in the queue
            yield Outputs(status=STOPPED_QUEUED).answer(state)
            return
        if superseded(state, enqueued):  # a newer request of this session has started: it draws
            yield Outputs(status=None).answer(state)
            return
        t0 = time.perf_counter()
        guard = self._guard(state, cancel, enqueued)
        try:
            vals, cfg, request, note = self._prepare(values)
            total = request.total_nfe()
        except Exception as e:
            yield Outputs(status=self._error(e)).answer(state)
            return
        state.running += 1
        state.streaming = live
        last_status = last_tree = -math.inf
        done = False
        shown = getattr(state.config, "backend", None), getattr(state.config, "preset", None)
        switched = state.result is not None and shown != (cfg.backend, cfg.preset)
        view = vals.get("tree_view") or "layered"
        try:
            for snap in self._drive(request, guard):
                if snap.done:
                    res, done = snap.result, True
                    self._record("stream" if live else "run", guard, t0)
                    if guard.reason == "cancelled" or (cancel is not None and cancel.is_set()):
                        if not live:
                            yield Outputs(status="cancelled").answer(state)  # nobody is waiting: draw nothing
                        return
                    out = self.figures(res, cfg, request.problem.backend, vals.get("embed") or "pca", view)
                    extra = out.status
                    out.status = self._status(res, cfg, note, time.perf_counter() - t0, guard)
                    out.status += f" · view {out.embed_used.upper()}" + (f" · {extra}" if extra else "")
                    state.result, state.config, state.selected, state.shown = res, cfg, None, out.shown
                    state.runs += 1
                    yield out.answer(state)
                    return
                now = self.clock()
                if not live or now - last_status < STATUS_INTERVAL_S:
                    continue
                last_status = now
                spent = snap.ledger["denoiser_nfe"]
                frac = min(1.0, spent / total) if total else 0.0
                bar = "█" * int(20 * frac) + "░" * (20 - int(20 * frac))
                status = f"running… step {snap.step} · {bar} {spent:,}/{total:,} NFEs · {snap.n_nodes:,} nodes"
                tree = None
                if now - last_tree >= self.limits.live_interval_s:
                    tree = live_tree(snap.trace, self.limits.live_nodes, view, cfg.algorithm)
                    last_tree = self.clock()  # the interval counts from the end of a redraw
                out = Outputs(status=status, tree=tree)
                if switched:  # another backend or preset: no view of the old one stays beside the new tree
                    switched = False
                    placeholders(out, f"drawing {cfg.backend}" + (f"/{cfg.preset}" if cfg.preset else "") + " when the run ends")
                yield out.answer(state)
        except Exception as e:
            done = True
            yield Outputs(status=self._error(e)).answer(state)
        finally:
            state.running -= 1
            state.streaming = False
            if not done:  # closed by a client that went away between two steps
                guard.cancel()
                self._record("stream" if live else "run", guard, t0)

    def warm_up(self) -> threading.Thread:
        """Load the default backend and fit its verifiers in a daemon thread, so the
        first visitor does not wait for them."""

        def warm():
            try:
                self.first_view()  # the default backend, its verifiers and the first answer
            except Exception as e:  # a warm-up failure shows again, as a message, on first use
                log.warning("warm-up failed: %s", _first_line(e))

        th = threading.Thread(target=warm, daemon=True, name="backend-warmup")
        th.start()
        return th

    def _record(self, kind: str, guard: RunGuard, t0: float) -> None:
        self.runs.append((kind, guard.reason, time.perf_counter() - t0))

    def _error(self, e: BaseException) -> str:
        """The status line of an error: the message of a user error; for anything else a
        generic line (the traceback goes to the server log: it is a bug)."""
        if isinstance(e, _USER_ERRORS):
            return f"⚠️ {clip(_first_line(e)) or 'invalid request'}"
        log.error("search failed", exc_info=e)
        return "⚠️ internal error: this request failed on the server (it is logged); try other settings"

    def _problem_backend(self, backend: str, preset: str | None):
        return self.backend(SearchConfig(backend=backend, preset=preset))

    def hazard_text(self, backend: str, preset: str | None, text: str) -> str:
        """Obstacle text with the backend's built-in obstacles (the preset's hazard) appended."""
        text = text if isinstance(text, str) else ""
        try:
            builtin = self._problem_backend(backend, preset).builtin_obstacles()
        except (ConfigError, ValueError, TypeError):
            return text
        lines = [ln for ln in text.splitlines() if ln.strip()]
        lines += [f"{kind}:{value}" for kind, value in builtin if f"{kind}:{value}" not in lines]
        return "\n".join(lines)

    def add_target_obstacle(self, backend: str, choice: Any, text: str) -> str:
        """Obstacle text with the picked component (gmm), class, or concept (shapes, with the
        Q* measured for it on the model's samples) appended."""
        text = text if isinstance(text, str) else ""
        if backend == "shapes" and isinstance(choice, str) and choice.strip():
            line = f"concept:{choice.strip()[:80]}"  # a concept obstacle, by name, with its measured Q*
            try:
                q = self._problem_backend(backend, None).concept_q_star(choice.strip())
            except (ConfigError, ValueError, TypeError):
                q = None
            line += f"@q={q:.4g}" if q is not None else ""
            lines = [ln for ln in text.splitlines() if ln.strip()]
            return "\n".join(lines if line in lines else lines + [line])
        try:
            k = target_value(choice)
        except ConfigError:
            return text
        if not isinstance(k, int):
            return text
        line = f"{'component' if backend == 'gmm' else 'class'}:{k}"
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return "\n".join(lines if line in lines else lines + [line])

    def mark_best(self, state: SessionState, text: str) -> str:
        """Obstacle text with the last run's best sample appended as a point obstacle."""
        text = text if isinstance(text, str) else ""
        res = getattr(state, "result", None)
        if res is None or res.best is None or res.best.numel() > 64:
            return text
        pt = "point:" + ",".join(f"{v:.3f}" for v in res.best.flatten().tolist())
        return "\n".join([ln for ln in text.splitlines() if ln.strip()] + [pt])

    def stop(self, state: SessionState) -> tuple[SessionState, str]:
        """Ask every running search of this session to stop after its current step."""
        state = state if isinstance(state, SessionState) else SessionState()
        state.stops += 1
        state.stopped_at = time.monotonic()  # runs still waiting in the queue will not start
        if state.streaming:
            return state, "stopping after the current step…"
        return state, "**stopped**: runs of this session were cancelled; the views show the last finished result"


def _check_target(target: Any, backend) -> None:
    """A class or component number must be one the backend has (checked before the
    backend sees it, so the message names the field)."""
    if target is None:
        return
    ids = [t.value for t in backend.targets()]
    if not ids or not all(isinstance(i, int) for i in ids):
        return  # free-form targets (a t2i prompt)
    if target not in ids:
        shown = f"{ids[0]}…{ids[-1]}" if len(ids) > 12 else ", ".join(map(str, ids))
        what = repr(target) if isinstance(target, str) else str(target)
        raise ConfigError(f"target: {what[:40]} is not one of {shown}")


def _fitted_note(algo, fitted) -> str:
    """What fitting to the budget changed (e.g. " · fitted to the budget: N = 8")."""
    names = {"n": "N", "m": "M", "iterations": "iterations"}
    changed = [
        f"{names.get(k, k)} = {getattr(fitted.config, k)}"
        for k in fitted.spec.params
        if k in names and getattr(fitted.config, k) != getattr(algo.config, k)
    ]
    return f" · fitted to the budget: {', '.join(changed)}" if changed else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""
