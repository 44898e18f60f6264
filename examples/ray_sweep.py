"""A budget-matched sweep of your own model on Ray, from Python.

Each cell (algorithm × NFE budget × seed) is one Ray task that calls ``dts_app.search``
with your velocity and reward (Ray pickles the functions). Every search is seeded and
counts its NFEs exactly, so the table is the same on one laptop or a cluster, and the
same as running the cells in a loop here. For the built-in backends the CLI and
``dts_app.sweep.run_sweep(config, algorithms, budgets, seeds, executor="ray")`` do the
same with resumable cell files (docs/sweeps.md).

Ray is optional: ``pip install 'dts-explorer[ray]'``. Without it this script says so and
exits. Set RAY_ADDRESS to use a running cluster instead of a local one.

Run: python examples/ray_sweep.py   (about 15 s on 2 CPUs, most of it starting Ray)
"""

import os
import statistics

import torch

import dts_app

try:
    import ray
except ImportError:
    ray = None

MEANS = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, 3.0]])


def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact velocity of an equal mixture of N(μ_k, 0.05·I) (x [B, 2], t [B])."""
    var, tb = 0.05, t.reshape(-1, 1, 1)
    s = (1 - tb) ** 2 * var + tb**2
    resid = x.unsqueeze(1) - (1 - tb) * MEANS
    r = torch.softmax(-0.5 * (resid**2 / s).sum(-1), dim=1).unsqueeze(-1)
    return (r * (tb / s * resid - MEANS - (1 - tb) * var / s * resid)).sum(1)


def reward(x: torch.Tensor) -> torch.Tensor:
    """Closeness to a point between two modes (x0 [B, 2] -> [B])."""
    return -(x - torch.tensor([1.0, 2.0])).norm(dim=1)


def cell(algorithm: str, budget: int, seed: int) -> dict:
    """One search at one budget; returns plain numbers."""
    knobs = {"best-of-n": dict(n=budget // 16), "paths": dict(n=4, m=2), "smc": dict(n=budget // 16, sde_gamma=1.0)}
    r = dts_app.search(velocity, reward, shape=(2,), algorithm=algorithm, steps=16, budget=budget, seed=seed, **knobs[algorithm])
    return {"algorithm": algorithm, "budget": budget, "seed": seed, "score": r.best_score, "nfe": r.ledger.denoiser_nfe}


def main() -> list[dict]:
    if ray is None:
        print("Ray is not installed: pip install 'dts-explorer[ray]' to run this example")
        return []
    cells = [(a, b, s) for a in ("best-of-n", "paths", "smc") for b in (64, 256) for s in range(3)]
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster needs no token
    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS"), num_cpus=None if os.environ.get("RAY_ADDRESS") else 2,
                 include_dashboard=False, log_to_driver=False)  # fmt: skip
    try:
        task = ray.remote(cell).options(num_cpus=1)
        results = ray.get([task.remote(*c) for c in cells])
    finally:
        if started:
            ray.shutdown()
    rows = []
    for a in ("best-of-n", "paths", "smc"):
        for b in (64, 256):
            done = [r for r in results if r["algorithm"] == a and r["budget"] == b]
            rows.append({"algorithm": a, "budget": b, "score": statistics.mean(r["score"] for r in done),
                         "nfe_max": max(r["nfe"] for r in done)})  # fmt: skip
            print(f"{a:>10} @ {b:>3} NFEs: mean best reward {rows[-1]['score']:+.3f} (max {rows[-1]['nfe_max']} NFEs spent)")
    assert all(r["nfe_max"] <= r["budget"] for r in rows)
    assert results == [cell(*c) for c in cells[:2]] + results[2:]  # a Ray cell is the same search as a local one
    return rows


if __name__ == "__main__":
    main()
