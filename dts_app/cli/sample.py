"""``sample``: plain sampling (no search), optionally with obstacles."""

from __future__ import annotations

from ..config import ConfigError, SearchConfig
from .common import add_config_flags, add_obstacle_flags, config_from_args, fail, write_json

HELP = "Draw samples with the chosen solver (no search); writes samples, backend, config, ledger."


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help=HELP, description=HELP)
    d = SearchConfig(n=16, steps=32)
    add_config_flags(p, ("n", "steps", "solver", "shift", "sde_gamma", "guidance", "seed", "ess_threshold"), d)
    p.add_argument(
        "--condition",
        action="store_true",
        help="gmm: restrict the mixture to --class (class-conditional backends always condition).",
    )
    add_obstacle_flags(p, d)
    p.add_argument("--json", default="-", help="Output file ('-' for stdout). Default: -.")
    p.set_defaults(run=main)


def run_sampling(config: SearchConfig, backend=None):
    """Plain sampling of ``config.n`` paths: returns ``(problem, engine, final beam)``."""
    from ..search import build_problem, sample_paths

    problem = build_problem(config, backend=backend, verifiers=False)
    eng, beam = sample_paths(problem, config.n, store_x0=problem.avoidance is not None)
    return problem, eng, beam


def sample_payload(config: SearchConfig) -> dict:
    """Run plain sampling for ``config`` and return the JSON payload."""
    problem, eng, beam = run_sampling(config)
    x0 = eng.clean(beam)
    out = {
        "samples": x0.flatten(1).tolist(),
        "backend": problem.backend.describe(),
        "config": config.to_dict(),
        "ledger": eng.ledger.to_dict(),
    }
    if problem.backend.data_kind == "image":
        out["images"] = problem.backend.decode(x0).squeeze(1).clamp(0, 1).tolist()
    if problem.avoidance is not None:
        from ..search import sampling_metrics
        from ..search.metrics import compare_to_baseline

        out["obstacles"] = problem.avoidance.describe()
        from ..search.fidelity import obstacle_fidelity

        out["metrics"] = metrics = sampling_metrics(eng, beam)
        baseline = None
        if config.avoid != "none" or config.eta != 0:
            from ..obstacles.avoidance import baseline_config

            _, beng, bbeam = run_sampling(baseline_config(config, problem.backend), problem.backend)
            base = sampling_metrics(beng, bbeam)
            baseline = beng.clean(bbeam)
            out["metrics"] = compare_to_baseline(metrics, eng.ledger.denoiser_nfe, None, beng.ledger.denoiser_nfe, None)
            out["metrics"]["baseline_collision_rate"] = base["collision_rate"]
        out["metrics"]["fidelity"] = obstacle_fidelity(problem, x0, baseline)
    return out


def main(args) -> int:
    try:
        config = config_from_args(args, condition=args.condition)
        payload = sample_payload(config)
    except ConfigError as e:
        return fail(str(e))
    except RuntimeError as e:  # NonFiniteError: a NaN or inf stopped the sampler
        from ..search import NonFiniteError

        if not isinstance(e, NonFiniteError):
            raise
        return fail(str(e), 3)
    write_json(args.json, payload)
    return 0
