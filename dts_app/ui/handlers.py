"""Handlers of the exploration app: plain functions of (state, control values) returning
figures and a status line. The layout wires them; tests call them directly.

Control values arrive positionally in the order of :data:`INPUTS`; :func:`config_from`
turns them into a validated :class:`~dts_app.config.SearchConfig` (the server validates
again whatever a browser or API client sends).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..config import ConfigError, SearchConfig
from ..ledger import BudgetExceeded
from .inputs import INPUTS, LIVE, SLIDERS, config_from, input_values, parse_obstacles, target_value
from .state import SessionState

__all__ = ["input_values", "INPUTS", "SLIDERS", "LIVE", "NFE_CAP", "Outputs", "parse_obstacles", "config_from", "AppHandlers"]

LIVE_TREE_MAX = 4000  # nodes drawn while a run streams
GALLERY_MAX = 16  # final images shown
#: errors that are the user's (bad knobs, budgets, models that cannot load): shown as a
#: status line; anything else is a bug and propagates
_USER_ERRORS = (ConfigError, BudgetExceeded)
NFE_CAP: dict[str, int] = {"points": 200_000, "embedded-image": 50_000, "image": 2_000}


@dataclass
class Outputs:
    """Everything one update shows (None = leave that view as it is)."""

    status: str
    tree: Any = None
    trajectories: Any = None
    embedding: Any = None
    plane: Any = None
    gallery: Any = None
    images: Any = None
    ledger: Any = None
    budget: Any = None
    embed_used: str = "pca"

    NAMES = ("status", "tree", "trajectories", "embedding", "plane", "gallery", "images", "ledger", "budget")

    def as_tuple(self) -> tuple:
        return tuple(getattr(self, k) for k in self.NAMES)


@dataclass
class AppHandlers:
    """The app's handlers plus app-wide read-only helpers (backend cache, UMAP holder)."""

    cache: dict = field(default_factory=dict)
    embedder: Any = None

    # ---- building --------------------------------------------------------------------
    def _problem(self, cfg: SearchConfig):
        from ..search.problem import build_problem

        return build_problem(cfg, cache=self.cache)

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
        cap = NFE_CAP.get(kind, NFE_CAP["image"])
        if cfg.budget and cfg.budget <= cap:
            return cfg.budget, ""
        if not cfg.budget and algo.max_nfe(problem) <= cap:
            return None, ""  # without a budget an algorithm runs its natural course
        return cap, f" (per-request cap {cap:,} NFEs)"

    # ---- figures ---------------------------------------------------------------------
    def figures(self, result, cfg: SearchConfig, backend, method: str = "pca") -> Outputs:
        """All views of one :class:`~dts_app.search.types.SearchResult`; ``method`` is the
        embedding asked for (``pca`` or ``umap``; the one used is in ``Outputs.embed_used``)."""
        from ..viz.embedding import embedding_figure
        from ..viz.gallery import image_gallery, points_gallery_figure
        from ..viz.ledger import anytime_figure, ledger_rows
        from ..viz.plane import obstacle_geometry, plane_figure
        from ..viz.trajectories import trajectories_figure
        from ..viz.tree import tree_figure

        tree, best = result.tree.to_dict(), result.best_node
        cands = [c.to_dict() for c in result.candidates]
        obstacles = result.obstacles
        mixture = backend.reference_mixture()
        out = Outputs(status="")
        out.tree = tree_figure(tree, best)
        q_stars = [o["q_star"] for o in obstacles]
        out.trajectories = trajectories_figure(tree, best, min(q_stars) if q_stars else None)
        out.embedding, out.embed_used = embedding_figure(tree, obstacle_geometry(obstacles), method, self.embedder)
        if mixture is not None and mixture.dim == 2:
            tgt = cfg.target if cfg.target is not None else backend.default_target()
            tm = [mixture.means[int(tgt)].tolist()] if isinstance(tgt, int) else None
            out.plane = plane_figure(mixture.to_dict(), tree, best, obstacles, tm)
        else:
            out.plane = _note_figure("the true plane is drawn for 2-D gmm presets")
        if result.images is not None:
            shown = list(zip(result.images[:GALLERY_MAX].numpy(), result.candidates))
            out.images = image_gallery([(img, c.score, c.heldout_score, c.node_id) for img, c in shown], best)
            out.gallery = _note_figure("final candidates are shown as images below")
        else:
            out.gallery = points_gallery_figure(cands, best)
            out.images = []
        out.ledger = ledger_rows(result.ledger.to_dict(), result.metrics)
        curve = result.curve
        scored = len({n for n, v in curve if v is not None}) > 2
        out.budget = anytime_figure(curve if scored else _finals_curve(cands, result.ledger.denoiser_nfe), self._sweep(cfg))
        return out

    def _sweep(self, cfg: SearchConfig):
        """The stored sweep of this backend/preset (``benchmarks/results/sweep_<preset>/
        sweep.json``, written by ``python -m dts_app sweep``) as a scaling figure, if any and
        if it used the same verifier."""
        import json
        from pathlib import Path

        path = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / f"sweep_{cfg.preset}" / "sweep.json"
        if cfg.backend != "gmm" or not path.is_file():
            return None
        try:
            sweep = json.loads(path.read_text())
            scfg = sweep.get("config", {})
            if scfg.get("backend", "gmm") != cfg.backend or scfg.get("verifier", cfg.verifier) != cfg.verifier:
                return None
            from ..viz.scaling import scaling_figure

            return scaling_figure(sweep)
        except (ValueError, KeyError, OSError, ImportError):
            return None

    # ---- handlers --------------------------------------------------------------------
    def _status(self, res, cfg: SearchConfig, note: str, secs: float) -> str:
        best, held = res.best_score, res.heldout_score
        parts = [
            f"**{res.message}** · {cfg.algorithm} on {cfg.backend}" + (f"/{cfg.preset}" if cfg.preset else ""),
            f"best score {best:.4g}" if best is not None else "no finished path",
            f"held-out {held:.4g}" if held is not None else "",
            f"{res.ledger.denoiser_nfe:,} NFEs{note}",
            f"{len(res.tree.nodes)} nodes",
            f"{secs * 1000:.0f} ms",
        ]
        m = res.metrics or {}
        if m.get("collision_rate") is not None:
            parts.append(f"collision rate {m['collision_rate']:.2f}")
        return " · ".join(p for p in parts if p)

    def _prepare(self, values: tuple) -> tuple:
        """Validate the inputs and build ``(vals, config, problem, algorithm, budget, note)``."""
        from ..search.registry import make_algorithm

        vals = dict(zip(INPUTS, values))
        cfg = config_from(vals)
        problem = self._problem(cfg)
        algo = make_algorithm(cfg.algorithm, cfg)
        budget, note = self._capped(cfg, problem, algo)
        return vals, cfg, problem, algo, budget, note

    def run(self, state: SessionState, *values) -> tuple:
        """Run a search to the end and redraw everything (the live path for sliders).

        Returns:
            ``(state, status, tree, trajectories, embedding, plane, gallery, images, ledger, budget)``;
            on an error only ``status`` changes (figures are ``gr.skip()``-like ``None``s
            that the layout maps to "keep")."""
        t0 = time.perf_counter()
        try:
            from ..search import run_search

            vals, cfg, problem, algo, budget, note = self._prepare(values)
            res = run_search(problem, algo, budget)
            out = self.figures(res, cfg, problem.backend, method=vals.get("embed") or "pca")
        except _USER_ERRORS as e:
            return (state, *Outputs(status=f"⚠️ {_one_line(e)}").as_tuple())
        out.status = self._status(res, cfg, note, time.perf_counter() - t0) + f" · view {out.embed_used.upper()}"
        state.result = res
        state.runs += 1
        return (state, *out.as_tuple())

    def stream(self, state: SessionState, *values) -> Iterator[tuple]:
        """Stream a search: the tree grows as steps complete; Stop ends it within a step.

        Yields:
            The same tuples as :meth:`run`; intermediate ones redraw the tree and status
            (at most every 0.4 s), the last one redraws every view.
        """
        t0 = time.perf_counter()
        state.stop = False
        try:
            vals, cfg, problem, algo, budget, note = self._prepare(values)
            total = min(budget, algo.max_nfe(problem)) if budget else algo.max_nfe(problem)
        except _USER_ERRORS as e:
            yield (state, *Outputs(status=f"⚠️ {_one_line(e)}").as_tuple())
            return
        from ..search import iterate_search
        from ..viz.tree import tree_figure

        state.running = True
        last = 0.0
        try:
            for snap in iterate_search(problem, algo, budget, lambda: state.stop):
                if snap.done:
                    res = snap.result
                    out = self.figures(res, cfg, problem.backend, vals.get("embed") or "pca")
                    out.status = self._status(res, cfg, note, time.perf_counter() - t0)
                    state.result = res
                    state.runs += 1
                    yield (state, *out.as_tuple())
                    return
                now = time.perf_counter()
                if now - last >= 0.4:
                    last = now
                    spent = snap.ledger["denoiser_nfe"]
                    frac = min(1.0, spent / total) if total else 0.0
                    bar = "█" * int(20 * frac) + "░" * (20 - int(20 * frac))
                    status = f"running… step {snap.step} · {bar} {spent:,}/{total:,} NFEs · {snap.n_nodes} nodes"
                    # a live tree past LIVE_TREE_MAX nodes would stall the browser (it must
                    # stay responsive for Stop): then only the status moves until the end
                    tree = tree_figure(snap.trace.to_dict(with_x0=False), None) if snap.n_nodes <= LIVE_TREE_MAX else None
                    yield (state, *Outputs(status=status, tree=tree).as_tuple())
        except _USER_ERRORS as e:
            yield (state, *Outputs(status=f"⚠️ {_one_line(e)}").as_tuple())
        finally:
            state.running = False

    def _problem_backend(self, backend: str, preset: str | None):
        from ..search import backend_for

        return backend_for(SearchConfig(backend=backend, preset=preset), self.cache)

    def hazard_text(self, backend: str, preset: str | None, text: str) -> str:
        """Obstacle text with the backend's built-in obstacles (the preset's hazard) appended."""
        builtin = self._problem_backend(backend, preset).builtin_obstacles()
        lines = [ln for ln in (text or "").splitlines() if ln.strip()]
        lines += [f"{kind}:{value}" for kind, value in builtin if f"{kind}:{value}" not in lines]
        return "\n".join(lines)

    def add_target_obstacle(self, backend: str, choice: Any, text: str) -> str:
        """Obstacle text with the picked component (gmm) or class (other backends) appended."""
        k = target_value(choice)
        if not isinstance(k, int):
            return text
        line = f"{'component' if backend == 'gmm' else 'class'}:{k}"
        lines = [ln for ln in (text or "").splitlines() if ln.strip()]
        return "\n".join(lines if line in lines else lines + [line])

    def mark_best(self, state: SessionState, text: str) -> str:
        """Obstacle text with the last run's best sample appended as a point obstacle."""
        res = state.result
        if res is None or res.best is None or res.best.numel() > 64:
            return text
        pt = "point:" + ",".join(f"{v:.3f}" for v in res.best.flatten().tolist())
        return "\n".join([ln for ln in (text or "").splitlines() if ln.strip()] + [pt])

    def stop(self, state: SessionState) -> tuple[SessionState, str]:
        """Ask the running search of this session to stop after its current step."""
        state.stop = True
        return state, "stopping after the current step…"


def _finals_curve(cands: list[dict], total: int) -> list[tuple[float, float]]:
    """Best score among the first k finished candidates against k/K of the NFEs spent
    (exact for best-of-N, whose candidates cost the same; an ordering view otherwise)."""
    cands = sorted(cands, key=lambda c: c["node_id"])
    out, best = [], None
    for k, c in enumerate(cands, 1):
        best = c["score"] if best is None else max(best, c["score"])
        out.append((round(total * k / len(cands), 1), best))
    return out


def _note_figure(text: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(color="#888"))
    fig.update_layout(height=300, xaxis_visible=False, yaxis_visible=False)
    return fig


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if isinstance(e, ConfigError) else f"{type(e).__name__}: {msg}"
