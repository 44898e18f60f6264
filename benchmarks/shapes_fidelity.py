"""Concept obstacles on the shapes backend: how faithful is each avoidance mode to rejection with the same model?

The target of avoiding an obstacle is the model's own law restricted to the allowed
region, ``p(x | D(x) > Q*)``. Rejection with the same model draws it exactly: plain samples
(the same prompt, guidance and steps) whose final D, in the CNN feature map's cells, exceeds
Q*. Each avoidance mode (repulsion, revert-and-resample, prune, SMC) runs the same paths
(streams) under the concept obstacle. Per mode, against the rejection samples:

- the share of delivered images whose objects show the concept, read by the exact checker
  (how avoidance is judged), and the share still within Q*;
- the colour, shape and quadrant shares of the objects the checker reads, and their
  total-variation distance to rejection's (the composition the model would have drawn);
- the energy distance of the delivered images' CNN features to rejection's, with a
  permutation p-value (seeded): small p = distinguishable from the constrained law;
- NFEs per delivered image (rejection: the plain cost over its acceptance).

    .venv/bin/python benchmarks/shapes_fidelity.py [--n 256] [--out benchmarks/results/shapes_fidelity.json]

``tests/test_shapes_concepts.py`` imports :func:`measure` for the same check at CI size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dts_app.config import ObstacleSpec, SearchConfig  # noqa: E402
from dts_app.search import backend_for, build_problem, sample_paths  # noqa: E402
from dts_app.shapes.checker import find_objects  # noqa: E402
from dts_app.shapes.concepts import QUADRANTS, Concept, concept_distance, concept_features, measure_q_star, parse_concept  # noqa: E402
from dts_app.shapes.concepts import shows as concept_shows  # noqa: E402
from dts_app.shapes.scene import COLOURS, SHAPES  # noqa: E402

MODES = ("repulsion", "revert", "prune", "smc")
SETTINGS = {  # concept → a prompt that leaves it free
    "no red objects": "a circle",
    "no blue squares": "a square",
    "nothing in the top-left quadrant": "a square",
}


def energy_distance(a: torch.Tensor, b: torch.Tensor, permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """The energy distance of two samples ``[n, d]``, ``[m, d]`` and its permutation p-value."""
    z = torch.cat([a, b]).double()
    d = torch.cdist(z, z)
    n = len(a)

    def stat(idx: torch.Tensor) -> float:
        x, y = idx[:n], idx[n:]
        return float(2 * d[x][:, y].mean() - d[x][:, x].mean() - d[y][:, y].mean())

    base = torch.arange(len(z))
    e = stat(base)
    g = torch.Generator().manual_seed(seed)
    hits = sum(stat(torch.randperm(len(z), generator=g)) >= e for _ in range(permutations))
    return e, (hits + 1) / (permutations + 1)


def _shares(images: torch.Tensor) -> dict:
    objs = [o for img in images for o in find_objects(img) if o.shape != "blob"]
    total = max(len(objs), 1)
    where = [next(q for q in QUADRANTS if Concept(quadrant=q).holds(o.shape, o.colour, o.cx, o.cy)) for o in objs]
    return {
        "colour": {c: sum(o.colour == c for o in objs) / total for c in COLOURS},
        "shape": {s: sum(o.shape == s for o in objs) / total for s in SHAPES},
        "quadrant": {q: where.count(q) / total for q in QUADRANTS},
        "objects": len(objs),
    }


def _tv(p: dict, q: dict) -> float:
    return 0.5 * sum(abs(p[k] - q[k]) for k in p)


def _run(cfg: SearchConfig, cache: dict, n: int):
    problem = build_problem(cfg, backend=backend_for(cfg, cache), verifiers=False)
    problem.trace_scores = False
    eng, beam = sample_paths(problem, n, store_x0=False)
    return problem, eng, beam.x


def measure(concept: str, prompt: str, n: int = 64, steps: int = 16, guidance: float = 2.0, seed: int = 0,
            modes=MODES, q_star: float | None = None, cache: dict | None = None, permutations: int = 200,
            knobs: dict | None = None) -> dict:  # fmt: skip
    """Rejection and every avoidance mode of ``modes`` on ``n`` paths: see the module
    docstring. ``knobs``: settings of the avoiding runs (e.g. ``eta``, ``max_reverts``,
    ``sde_gamma``)."""
    cache = {} if cache is None else cache
    base = SearchConfig(backend="shapes", preset=None, prompt=prompt, guidance=guidance, steps=steps, seed=seed, n=n)
    backend = backend_for(base, cache)
    cnn = backend.classifier()
    pts = backend.obstacle_points("concept", concept)
    on = "given" if q_star is not None else "samples"
    q_star = q_star if q_star is not None else backend.concept_q_star(concept)  # given, or measured on samples
    q = {"q_star": q_star, "on": on} if q_star is not None else measure_q_star(cnn, concept)  # else on renders
    q_star = float(q["q_star"])
    c = parse_concept(concept)

    def distance(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return concept_distance(concept_features(cnn, x.clamp(-1, 1), c), pts)

    def judge(x: torch.Tensor, nfe: int) -> tuple[dict, torch.Tensor]:
        with torch.no_grad():
            f = cnn.features(x.clamp(-1, 1))
        d = distance(x)
        images = backend.decode(x)
        shows = [concept_shows(img, c) for img in images]
        row = {
            "delivered": len(x),
            "shows_concept": sum(shows) / max(len(x), 1),
            "within_q": float((d <= q_star).double().mean()) if len(x) else None,
        }
        row |= {"nfe_per_image": nfe / max(len(x), 1)} | _shares(images)
        return row, f

    t0 = time.perf_counter()
    _, eng, x = _run(base, cache, n)
    plain, f_plain = judge(x, int(eng.ledger.denoiser_nfe))
    keep = distance(x) > q_star
    rejection, f_rej = judge(x[keep], int(eng.ledger.denoiser_nfe))
    rejection["acceptance"] = float(keep.double().mean())
    out = {"concept": concept, "prompt": prompt, "n": n, "steps": steps, "guidance": guidance, "seed": seed, "q_star": q}
    out |= {"plain": plain, "rejection": rejection, "modes": {}}
    obstacle = (ObstacleSpec("concept", concept, q_star=q_star),)
    for mode in modes:
        cfg = base.replace(obstacles=obstacle, avoid=mode, q_star=q_star, **(knobs or {}))
        _, eng, xm = _run(cfg, cache, n)
        row, f = judge(xm, int(eng.ledger.denoiser_nfe))
        row["obstacle_calls"] = int(eng.ledger.obstacle_calls)
        row["reverts"] = int(eng.ledger.reverts)
        last = len(eng.grid) - 1  # a redrawn last step lands at t = 0, where no field evaluation is needed
        row["reverts_at_t0"] = sum(1 for nd in eng.trace.nodes if nd.status == "reverted" and nd.step == last)
        if len(xm) > 1 and len(f_rej) > 1:
            row["energy_distance"], row["p_value"] = energy_distance(f, f_rej, permutations, seed)
        row["tv_colour"] = _tv(row["colour"], rejection["colour"])
        row["tv_shape"] = _tv(row["shape"], rejection["shape"])
        row["tv_quadrant"] = _tv(row["quadrant"], rejection["quadrant"])
        out["modes"][mode] = row
    if len(f_plain) > 1 and len(f_rej) > 1:
        out["plain"]["energy_distance"], out["plain"]["p_value"] = energy_distance(f_plain, f_rej, permutations, seed)
    out["plain"]["tv_colour"] = _tv(plain["colour"], rejection["colour"])
    out["plain"]["tv_quadrant"] = _tv(plain["quadrant"], rejection["quadrant"])
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shapes_fidelity.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache: dict = {}
    load = [round(x, 2) for x in os.getloadavg()]
    rows = []
    for concept, prompt in SETTINGS.items():
        rows.append(measure(concept, prompt, n=args.n, steps=args.steps, cache=cache))
        print(json.dumps(rows[-1]), flush=True)
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread"}
    out |= {"load_average_before": load, "load_average_after": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
