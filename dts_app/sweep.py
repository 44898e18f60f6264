"""Budget-matched sweeps: best score against NFEs for several algorithms, at equal compute.

For every algorithm and budget B, the algorithm is fitted to B (``fit_budget``: best-of-N
picks N = ⌊B / path cost⌋, zero-order the number of iterations, search over paths N,
tree search runs until B is spent) and run for ``seeds`` seeds; the sweep reports the
mean and standard error of the best search score and its held-out score, and the NFEs
actually spent (never more than B). The paper's baseline, *more denoising steps*, spends B
on a single sample with ``⌊B / cost per step⌋`` steps (capped at 1000).

:func:`scan_field` scans an obstacle field's strength η and range Q* the same way (the
source text asks to search for both per obstacle): for every (η, Q*) pair and seed it runs
the configured search and reports collision rate, scores, NFEs and reverts.

Both are lists of *cells* (one search run each: algorithm, budget, seed, class or prompt)
handed to an executor (:mod:`dts_app.executors`: ``local`` in this process, or ``ray``, one
Ray task per cell); with ``out`` every finished cell is appended to ``out/cells.jsonl`` and
``resume=True`` reruns only the missing ones. The summary is built from the cells' numbers,
so every executor gives the same summary for the same seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from .config import SearchConfig

__all__ = ["run_sweep", "scan_field", "mean_se", "sweep_cells"]

BASELINE = "more-steps"


def mean_se(xs: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and standard error of the non-missing values."""
    xs = [float(x) for x in xs if x is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))


def _stats(row: dict, results: list[dict], names: Sequence[str]) -> dict:
    for key in names:
        row[f"{key}_mean"], row[f"{key}_se"] = mean_se([r.get(key) for r in results])
    return row


def _row(name: str, budget: int, results: list[dict]) -> dict:
    row = _stats({"algorithm": name, "budget": budget, "runs": len(results)}, results, ("best_score", "heldout_score", "nfe"))
    row["nfe_max"] = max((r["nfe"] for r in results), default=0)
    return row


def sweep_cells(
    config: SearchConfig, algorithms: Sequence[str], budgets: Sequence[int], seeds: int, baseline: bool = True
) -> list:
    """The sweep's cells, in summary order: algorithms × budgets × seeds, then the baseline."""
    from .executors import Cell

    cells = [
        Cell(config.replace(algorithm=name, seed=config.seed + s), int(budget), mode="fit")
        for name in algorithms
        for budget in budgets
        for s in range(seeds)
    ]
    if baseline:
        cells += [
            Cell(config.replace(algorithm="best-of-n", seed=config.seed + s), int(budget), mode="more-steps")
            for budget in budgets
            for s in range(seeds)
        ]
    return cells


def _collect(cells: list, outcomes, progress=None, base_seed: int = 0) -> tuple[dict, list]:
    """Results by cell id (finished cells only) and the failures, from streamed outcomes."""
    results, failed = {}, []
    for o in outcomes:
        if o.ok:
            results[o.cell.id] = o.result
            if progress and o.cell.mode == "fit":
                progress(o.cell.config.algorithm, o.cell.budget, o.cell.config.seed - base_seed)
        else:
            failed.append({"key": o.cell.key, "error": o.error, "attempts": o.attempts})
    return results, failed


def run_sweep(
    config: SearchConfig,
    algorithms: Sequence[str],
    budgets: Sequence[int],
    seeds: int,
    baseline: bool = True,
    progress=None,
    *,
    executor="local",
    out: str | Path | None = None,
    resume: bool = False,
    retries: int = 1,
    show_progress: bool = False,
) -> dict:
    """Run the sweep (see module docstring) and return plain JSON-ready data.

    Args:
        progress: optional callback ``(algorithm, budget, seed index)`` after each finished cell.
        executor: ``"local"`` (in this process), ``"ray"`` or an executor object
            (:func:`dts_app.executors.make_executor`).
        out: directory for ``cells.jsonl`` (every finished cell, appended as it finishes).
        resume: keep the cells already in ``out/cells.jsonl`` and run only the others.
        retries: extra attempts for a failing cell; cells that still fail are left out of
            the rows (``runs`` counts the rest) and listed under ``"failed"``.
        show_progress: progress over cells on stderr.
    """
    from .executors import run_cells
    from .search import ALGORITHMS

    if seeds < 1:
        raise ValueError("--seeds must be ≥ 1")
    for a in algorithms:
        if a not in ALGORITHMS:
            raise ValueError(f"--algorithms: {a!r} is not one of {', '.join(ALGORITHMS)}")
    cells = sweep_cells(config, algorithms, budgets, seeds, baseline)
    outcomes = run_cells(cells, executor, out=out, resume=resume, retries=retries, progress=show_progress, desc="sweep")
    results, failed = _collect(cells, outcomes, progress, config.seed)
    rows, i = [], 0
    for name in [*algorithms, *([BASELINE] if baseline else [])]:
        for budget in budgets:
            done = [results[c.id] for c in cells[i : i + seeds] if c.id in results]
            i += seeds
            row = _row(name, int(budget), done)
            if name == BASELINE:
                row["steps"] = done[0]["steps"] if done else None
            rows.append(row)
    summary = {
        "config": config.to_dict(),
        "algorithms": list(algorithms),
        "budgets": [int(b) for b in budgets],
        "seeds": seeds,
        "baseline": BASELINE if baseline else None,
        "rows": rows,
    }
    if failed:
        summary["failed"] = failed
    return summary


def scan_field(
    config: SearchConfig,
    etas: Sequence[float],
    q_stars: Sequence[float],
    seeds: int,
    *,
    executor="local",
    out: str | Path | None = None,
    resume: bool = False,
    retries: int = 1,
    show_progress: bool = False,
) -> dict:
    """Run ``config`` (its algorithm, obstacles and avoidance mode) over the grid η × Q*.

    Per-obstacle η/Q* overrides in ``config.obstacles`` are kept; the scan sets the run's
    defaults. ``avoid="none"`` is promoted to ``repulsion`` (scanning η needs a field).
    ``executor``, ``out``, ``resume``, ``retries`` and ``show_progress`` as in :func:`run_sweep`.

    Returns:
        ``{"config": ..., "etas": [...], "q_stars": [...], "seeds": n, "rows": [...]}`` with
        one row per (η, Q*): ``*_mean`` and ``*_se`` of ``collision_rate``, ``best_score``,
        ``heldout_score``, ``nfe`` and ``reverts``.
    """
    from .executors import Cell, run_cells

    if seeds < 1:
        raise ValueError("--seeds must be ≥ 1")
    avoid = config.avoid if config.avoid != "none" else "repulsion"
    grid = [(float(q), float(e)) for q in q_stars for e in etas]
    cells = [
        Cell(config.replace(eta=e, q_star=q, seed=config.seed + s, avoid=avoid), config.budget or None, "plain", None)
        for q, e in grid
        for s in range(seeds)
    ]
    outcomes = run_cells(cells, executor, out=out, resume=resume, retries=retries, progress=show_progress, desc="scan")
    results, failed = _collect(cells, outcomes)
    names = ("collision_rate", "best_score", "heldout_score", "nfe", "reverts")
    rows = []
    for k, (q_star, eta) in enumerate(grid):
        done = [results[c.id] for c in cells[k * seeds : (k + 1) * seeds] if c.id in results]
        rows.append(_stats({"eta": eta, "q_star": q_star}, done, names))
    scan = {
        "config": config.to_dict(),
        "avoid": avoid,
        "etas": list(etas),
        "q_stars": list(q_stars),
        "seeds": seeds,
        "rows": rows,
    }
    if failed:
        scan["failed"] = failed
    return scan
