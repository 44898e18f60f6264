"""``search``: one inference-time search; writes the result with its tree and ledger."""

from __future__ import annotations

from ..config import ConfigError, SearchConfig
from ..ledger import BudgetExceeded
from .common import add_config_flags, add_obstacle_flags, config_from_args, fail, write_json

HELP = "Run one search (any registered algorithm) and write best, scores, candidates, ledger, tree."

SEARCH_KNOBS = (
    "n", "m", "steps", "solver", "shift", "sde_gamma", "guidance", "budget", "seed",
    "lam", "iterations", "sigma", "delta_f", "delta_b", "temperature", "c_uct", "backup", "draws", "batch",
    "potential", "ess_threshold", "resample_every", "resample_from", "resample_until",
)  # fmt: skip


def add_parser(sub) -> None:
    from ..search.registry import ALGORITHMS
    from ..verifiers.registry import VERIFIERS

    p = sub.add_parser("search", help=HELP, description=HELP)
    d = SearchConfig()
    p.add_argument(
        "--algorithm", default=d.algorithm, choices=list(ALGORITHMS), help=f"Search algorithm. Default: {d.algorithm}."
    )
    p.add_argument("--verifier", default=d.verifier, choices=list(VERIFIERS), help=f"Search verifier. Default: {d.verifier}.")
    p.add_argument(
        "--heldout",
        default=d.heldout,
        choices=list(VERIFIERS),
        help=f"Held-out verifier (diagnostic only). Default: {d.heldout}.",
    )
    add_config_flags(p, SEARCH_KNOBS, d)
    p.add_argument("--condition", action="store_true", help="gmm: also restrict the mixture to --class.")
    add_obstacle_flags(p, d)
    p.add_argument("--no-x0", action="store_true", help="Leave per-node clean predictions out of the JSON.")
    p.add_argument("--json", default="-", help="Output file ('-' for stdout). Default: -.")
    p.set_defaults(run=main)


def search_payload(config: SearchConfig, with_x0: bool = True) -> dict:
    from ..search import Runner, RunRequest

    request = RunRequest.from_config(config)
    problem = request.problem
    result = Runner(request).run()
    out = result.to_dict(with_x0)
    out["config"] = config.to_dict()
    out["backend"] = problem.backend.describe()
    if problem.backend.data_kind == "image":
        out["best_image"] = best_image(result, problem.backend)
    if problem.avoidance is not None and (config.avoid != "none" or config.eta != 0):
        from ..obstacles.avoidance import baseline_config
        from ..search.metrics import compare_to_baseline

        base_cfg = baseline_config(config, problem.backend)
        base = Runner(RunRequest.from_config(base_cfg, backend=problem.backend, budget=config.budget or None)).run()
        out["metrics"] = compare_to_baseline(
            result.metrics, result.ledger.denoiser_nfe, result.best_score, base.ledger.denoiser_nfe, base.best_score
        )
        out["metrics"]["baseline_collision_rate"] = base.metrics.get("collision_rate")
    return out


def best_image(result, backend) -> list | None:
    """The chosen sample as an image ``[C, H, W]`` in [0, 1] (image backends): the decoded
    candidate the search kept, or, for a partial result of a backend whose decoding is a
    fixed map, its clean prediction decoded; ``None`` when there is none (a partial result
    would need an uncounted VAE call)."""
    if result.best is None:
        return None
    ids = [c.node_id for c in result.candidates]
    if result.images is not None and result.best_node in ids:
        image = result.images[ids.index(result.best_node)]
    elif not backend.has_decoder:
        image = backend.decode(result.best[None])[0]
    else:
        return None
    return image.clamp(0, 1).tolist()


def main(args) -> int:
    try:
        config = config_from_args(args, condition=args.condition)
        payload = search_payload(config, with_x0=not args.no_x0)
    except (ConfigError, BudgetExceeded) as e:
        return fail(str(e))
    write_json(args.json, payload)
    if payload.get("error"):  # a non-finite value stopped the run: what it found is in the JSON
        return fail(payload["error"], 3)
    return 0
