"""Compare mode: two algorithms or two settings at the same NFE budget and seed.

Setting A is the app's current controls; setting B is A with an algorithm and any
``knob=value`` lines changed (the names of :data:`~dts_app.ui.inputs.INPUTS`). Both run
with the same seed and the same NFE budget: the user's budget when set, otherwise what A
costs on its natural course, so neither gets more compute. The answer is one figure per
setting (the true plane on 2-D gmm presets, else the candidate tree), their budget curves
on one plot and a table of both results.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..config import ConfigError
from .inputs import INPUTS
from .state import SessionState

__all__ = ["FIXED", "NAMES", "parse_changes", "compare"]

#: knobs B may not change: a comparison keeps the seed and the budget of A
FIXED = ("seed", "budget")
HEADERS = (
    "setting", "algorithm settings", "best verifier score", "independent judge", "NFEs", "nodes", "final collisions",
    "path entries into Q*", "seconds", "ended",
)  # fmt: skip


def parse_changes(text: Any, algorithm: Any = None) -> dict:
    """``knob=value`` lines (one per line; ``#`` comments allowed) as a dict of control
    values, with B's algorithm when given.

    Raises:
        ConfigError: an unknown knob, a fixed one or a line without ``=``.
    """
    out: dict[str, Any] = {"algorithm": algorithm} if algorithm else {}  # a line may override it
    if text is not None and not isinstance(text, str):
        raise ConfigError("compare: B's changes must be text (knob=value per line)")
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        k, sep, v = line.partition("=")
        k = k.strip()
        if not sep:
            raise ConfigError(f"compare: cannot read {line[:40]!r} (use knob=value, one per line)")
        if k in FIXED:
            raise ConfigError(f"compare: B keeps A's {k} (a comparison at the same {k})")
        if k not in INPUTS:
            raise ConfigError(f"compare: unknown knob {k[:40]!r} (one of {', '.join(INPUTS)})")
        out[k] = v.strip()
    return out


def _label(vals: dict, changes: dict) -> str:
    if not changes:
        return f"A: {vals['algorithm']}"
    return "B: " + ", ".join(f"{k}={v}" for k, v in changes.items())


#: the names of compare's answer (the compare panel's components, and the session state)
NAMES = ("state", "status", "fig_a", "fig_b", "budget", "table")


def _answer(state: SessionState, status: str, *views: Any) -> dict:
    return dict(zip(NAMES, (state, status, *(views or (None,) * 4))))


def compare(handlers, state: SessionState, values: tuple, algorithm_b: Any, changes_b: Any, cancel=None) -> dict:
    """Run A (the controls) and B (A with ``changes_b``) at the same budget and seed.

    Returns:
        ``{"state", "status", "fig_a", "fig_b", "budget", "table": value}`` (figure A,
        figure B, their budget curves, the table rows); on an error only the status is
        set (the others are None: the views stay as they are).
    """
    state = state if isinstance(state, SessionState) else SessionState()
    cancel = cancel or threading.Event()
    try:
        changes = parse_changes(changes_b, algorithm_b)
        vals_a, cfg_a, req_a, _ = handlers._prepare(values)
        shared = req_a.budget or req_a.algorithm.max_nfe(req_a.problem)
        vals_b = dict(vals_a, **changes, budget=shared)
        _, cfg_b, req_b, _ = handlers._prepare(tuple(vals_b[k] for k in INPUTS))
        runs = [  # A's request is the one built above, run at the shared budget
            (cfg, req.problem, *_run(handlers, state, req, cancel))
            for cfg, req in ((cfg_a, req_a.with_budget(shared)), (cfg_b, req_b))
        ]
    except Exception as e:
        return _answer(state, handlers._error(e))
    if cancel.is_set():
        return _answer(state, "cancelled")
    from ..viz.ledger import compare_budget_figure

    labels = [_label(vals_a, {}), _label(vals_b, changes)]
    settings = {lab: _settings(req) for lab, req in zip(labels, (req_a, req_b))}
    figs, rows = [], []
    for label, (cfg, problem, res, secs, reason) in zip(labels, runs):
        out = handlers.figures(res, cfg, problem.backend)
        mixture = problem.backend.reference_mixture()
        fig = out.plane if mixture is not None and mixture.dim == 2 else out.tree
        fig.update_layout(title=f"{label}<br>best {_fmt(res.best_score)} · held-out {_fmt(res.heldout_score)}")
        figs.append(fig)
        m = res.metrics or {}
        rows.append(
            [
                label,
                settings[label],
                _fmt(res.best_score),
                _fmt(res.heldout_score),
                res.ledger.denoiser_nfe,
                len(res.tree.nodes),
                _rate(m, "collision_rate", res.obstacles),
                _rate(m, "path_entry_rate", res.obstacles),
                round(secs, 2),
                reason or res.message,
            ]
        )
    from .render import budget_curve

    algos = (cfg_a.algorithm, cfg_b.algorithm)
    curves = {lab: budget_curve(r[2], algorithm=al) for lab, r, al in zip(labels, runs, algos)}
    budget_fig = compare_budget_figure(curves, algorithms=[cfg_a.algorithm, cfg_b.algorithm])
    a, b = runs[0][2], runs[1][2]
    verdict = _verdict(labels, a, b)
    status = f"**compared** at {shared:,} NFEs, seed {cfg_a.seed}: {verdict}"
    return _answer(state, status, figs[0], figs[1], budget_fig, rows)


def _run(handlers, state, request, cancel) -> tuple:
    """One setting run through the handlers' runner: ``(result, seconds, end reason)``."""
    t0 = time.perf_counter()
    guard = handlers._guard(state, cancel)
    res = None
    for snap in handlers._drive(request, guard):
        res = snap.result if snap.done else None
    return res, time.perf_counter() - t0, guard.reason


def _rate(metrics: dict, key: str, obstacles: list[dict]) -> Any:
    """A rate for the table: the overall one and, with several obstacles, each one's."""
    if metrics.get(key) is None:
        return "–"
    from ..viz.ledger import obstacle_rates

    per = obstacle_rates(metrics, obstacles, key)
    if len(per) < 2:
        return round(metrics[key], 3)
    return f"{metrics[key]:.3f} (" + "; ".join(f"{lab}: {'–' if r is None else f'{r:.2f}'}" for lab, r in per) + ")"


def _settings(request) -> str:
    """The algorithm's own settings as it ran (after fitting to the budget)."""
    algo = request.algorithm
    return f"{algo.name}: " + ", ".join(f"{k}={getattr(algo.config, k)}" for k in algo.spec.params)


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.4g}"


def _verdict(labels: list[str], a, b) -> str:
    """Which setting found the better candidate, by the search and the held-out score."""
    parts = []
    for what, x, y in (("search", a.best_score, b.best_score), ("held-out", a.heldout_score, b.heldout_score)):
        if x is None or y is None:
            continue
        if x == y:
            parts.append(f"same {what} score")
        else:
            parts.append(
                f"{(labels[0] if x > y else labels[1]).split(':')[0]} higher by {what} score ({_fmt(max(x, y))} vs {_fmt(min(x, y))})"
            )
    return "; ".join(parts) or "no finished candidate to compare"
