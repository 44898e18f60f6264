"""The one algorithm registry: drives CLI choices, the sweep and the UI's dropdown.

Each entry declares an algorithm once: its name, label, description, the
:class:`~dts_app.config.SearchConfig` knobs it reads, and its class as
``"module:Class"`` (imported on first use).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry, load_object

__all__ = ["AlgorithmSpec", "ALGORITHMS", "make_algorithm"]


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    label: str
    description: str
    cls: str
    params: tuple[str, ...]


ALGORITHMS: Registry[AlgorithmSpec] = Registry(
    "algorithm",
    [
        AlgorithmSpec(
            "best-of-n",
            "best-of-N (random search)",
            "N independent noises solved to t = 0; keep the verifier's favourite.",
            "dts_app.search.best_of_n:BestOfN",
            ("n",),
        ),
        AlgorithmSpec(
            "zero-order",
            "zero-order search (ZO-n)",
            "Move a pivot noise to its best neighbour on the noise sphere, K times.",
            "dts_app.search.zero_order:ZeroOrder",
            ("n", "lam", "iterations"),
        ),
        AlgorithmSpec(
            "paths",
            "search over paths (Paths-n)",
            "Branch M times, re-noise Δf steps, solve Δb back, keep the N best; repeat to t = 0.",
            "dts_app.search.over_paths:OverPaths",
            ("n", "m", "sigma", "delta_f", "delta_b"),
        ),
        AlgorithmSpec(
            "tree",
            "tree search (DTS-style)",
            "Expand promising partial paths with stochastic children; roll out, back up rewards.",
            "dts_app.search.tree:TreeSearch",
            ("n", "m", "sde_gamma", "temperature", "c_uct", "backup", "draws", "batch"),
        ),
        AlgorithmSpec(
            "smc",
            "SMC / Feynman–Kac steering",
            "N particles on the reverse SDE, weighted by verifier potentials on x̂0, resampled when the ESS drops.",
            "dts_app.search.smc:SMC",
            ("n", "sde_gamma", "temperature", "potential", "ess_threshold", "resample_every", "resample_from", "resample_until"),
        ),
    ],
)


def make_algorithm(name: str, config=None, **overrides):
    """An instance of algorithm ``name`` with ``config`` (and overrides)."""
    return load_object(ALGORITHMS.spec(name).cls)(config, **overrides)
