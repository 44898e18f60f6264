"""Scan an obstacle field's strength η and range Q* (the source text asks to search for
both per obstacle): for every (η, Q*) pair and seed, run the configured search and report
collision rate, scores, NFEs and reverts (mean and standard error over seeds).
"""

from __future__ import annotations

from typing import Sequence

from ..config import SearchConfig
from ..sweep import mean_se

__all__ = ["scan_field"]


def scan_field(config: SearchConfig, etas: Sequence[float], q_stars: Sequence[float], seeds: int) -> dict:
    """Run ``config`` (its algorithm, obstacles and avoidance mode) over the grid η × Q*.

    Per-obstacle η/Q* overrides in ``config.obstacles`` are kept; the scan sets the run's
    defaults. ``avoid="none"`` is promoted to ``repulsion`` (scanning η needs a field).

    Returns:
        ``{"config": ..., "etas": [...], "q_stars": [...], "seeds": n, "rows": [...]}`` with
        one row per (η, Q*): ``*_mean`` and ``*_se`` of ``collision_rate``, ``best_score``,
        ``heldout_score``, ``nfe`` and ``reverts``.
    """
    from ..search.base import run_search
    from ..search.problem import backend_for, build_problem
    from ..search.registry import make_algorithm

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
    return {"config": config.to_dict(), "avoid": avoid, "etas": list(etas), "q_stars": list(q_stars), "seeds": seeds, "rows": rows}
