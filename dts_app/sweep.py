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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .config import FIELDS, SearchConfig

__all__ = ["run_sweep", "scan_field", "mean_se"]

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


def _row(name: str, budget: int, results: list) -> dict:
    row = {"algorithm": name, "budget": budget, "runs": len(results)}
    for key, vals in {
        "best_score": [r.best_score for r in results],
        "heldout_score": [r.heldout_score for r in results],
        "nfe": [r.ledger.denoiser_nfe for r in results],
    }.items():
        row[f"{key}_mean"], row[f"{key}_se"] = mean_se(vals)
    row["nfe_max"] = max((r.ledger.denoiser_nfe for r in results), default=0)
    return row


def run_sweep(
    config: SearchConfig,
    algorithms: Sequence[str],
    budgets: Sequence[int],
    seeds: int,
    baseline: bool = True,
    progress=None,
) -> dict:
    """Run the sweep (see module docstring) and return plain JSON-ready data."""
    from .search import ALGORITHMS, backend_for, build_problem, make_algorithm, run_search

    if seeds < 1:
        raise ValueError("--seeds must be ≥ 1")
    for a in algorithms:
        if a not in ALGORITHMS:
            raise ValueError(f"--algorithms: {a!r} is not one of {', '.join(ALGORITHMS)}")
    cache: dict = {}
    rows = []
    for name in algorithms:
        for budget in budgets:
            results = []
            for s in range(seeds):
                cfg = config.replace(algorithm=name, seed=config.seed + s)
                problem = build_problem(cfg, backend=backend_for(cfg, cache))
                problem.trace_scores = False
                algo = make_algorithm(name, cfg).fit_budget(problem, int(budget))
                results.append(run_search(problem, algo, int(budget)))
                if progress:
                    progress(name, budget, s)
            rows.append(_row(name, int(budget), results))
    if baseline:
        for budget in budgets:
            results = []
            for s in range(seeds):
                probe = build_problem(config.replace(algorithm="best-of-n"), backend=backend_for(config, cache))
                steps = int(min(max(budget // (probe.nfe_per_step), 1), FIELDS["steps"].hi))
                cfg = config.replace(algorithm="best-of-n", n=1, steps=steps, seed=config.seed + s)
                problem = build_problem(cfg, backend=backend_for(cfg, cache))
                problem.trace_scores = False
                results.append(run_search(problem, make_algorithm("best-of-n", cfg), int(budget)))
            row = _row(BASELINE, int(budget), results)
            row["steps"] = steps
            rows.append(row)
    return {
        "config": config.to_dict(),
        "algorithms": list(algorithms),
        "budgets": [int(b) for b in budgets],
        "seeds": seeds,
        "baseline": BASELINE if baseline else None,
        "rows": rows,
    }


def scan_field(config: SearchConfig, etas: Sequence[float], q_stars: Sequence[float], seeds: int) -> dict:
    """Run ``config`` (its algorithm, obstacles and avoidance mode) over the grid η × Q*.

    Per-obstacle η/Q* overrides in ``config.obstacles`` are kept; the scan sets the run's
    defaults. ``avoid="none"`` is promoted to ``repulsion`` (scanning η needs a field).

    Returns:
        ``{"config": ..., "etas": [...], "q_stars": [...], "seeds": n, "rows": [...]}`` with
        one row per (η, Q*): ``*_mean`` and ``*_se`` of ``collision_rate``, ``best_score``,
        ``heldout_score``, ``nfe`` and ``reverts``.
    """
    from .search import backend_for, build_problem, make_algorithm, run_search

    if seeds < 1:
        raise ValueError("--seeds must be ≥ 1")
    avoid = config.avoid if config.avoid != "none" else "repulsion"
    cache: dict = {}
    rows = []
    for q_star in q_stars:
        for eta in etas:
            runs = []
            for seed in range(seeds):
                cfg = config.replace(eta=float(eta), q_star=float(q_star), seed=config.seed + seed, avoid=avoid)
                backend = backend_for(cfg, cache)
                res = run_search(build_problem(cfg, backend=backend), make_algorithm(cfg.algorithm, cfg), cfg.budget or None)
                runs.append(res)
            row = {"eta": float(eta), "q_star": float(q_star)}
            for name, vals in {
                "collision_rate": [r.metrics.get("collision_rate") for r in runs],
                "best_score": [r.best_score for r in runs],
                "heldout_score": [r.heldout_score for r in runs],
                "nfe": [r.ledger.denoiser_nfe for r in runs],
                "reverts": [r.ledger.reverts for r in runs],
            }.items():
                row[f"{name}_mean"], row[f"{name}_se"] = mean_se(vals)
            rows.append(row)
    return {
        "config": config.to_dict(),
        "avoid": avoid,
        "etas": list(etas),
        "q_stars": list(q_stars),
        "seeds": seeds,
        "rows": rows,
    }
