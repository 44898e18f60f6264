"""``sweep``: budget-matched scaling curves (or, with --etas/--q-stars, an obstacle-field scan)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import ConfigError, SearchConfig
from .common import add_config_flags, add_obstacle_flags, config_from_args, fail, write_json
from .search import SEARCH_KNOBS

HELP = "Best score vs NFEs for several algorithms at equal budgets (JSON + HTML); or scan η and Q*."


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated numbers, got {text!r}") from None


def add_parser(sub) -> None:
    from ..search.registry import ALGORITHMS
    from ..verifiers.registry import VERIFIERS

    p = sub.add_parser("sweep", help=HELP, description=HELP)
    d = SearchConfig()
    p.add_argument(
        "--algorithms", default=",".join(ALGORITHMS), help=f"Comma-separated algorithms. Default: {','.join(ALGORITHMS)}."
    )
    p.add_argument(
        "--algorithm", default=d.algorithm, choices=list(ALGORITHMS), help="With --etas/--q-stars: the algorithm to scan."
    )
    p.add_argument(
        "--budgets", default="256,512,1024,2048,4096", help="Comma-separated NFE budgets. Default: 256,512,1024,2048,4096."
    )
    p.add_argument("--seeds", type=int, default=8, help="Seeds per point (mean ± standard error). Default: 8.")
    p.add_argument("--no-baseline", action="store_true", help="Skip the 'more denoising steps' baseline.")
    p.add_argument("--etas", default=None, help="Scan these η values (comma-separated) instead of budgets.")
    p.add_argument("--q-stars", default=None, help="Scan these Q* values (comma-separated) instead of budgets.")
    p.add_argument("--verifier", default=d.verifier, choices=list(VERIFIERS), help=f"Search verifier. Default: {d.verifier}.")
    p.add_argument("--heldout", default=d.heldout, choices=list(VERIFIERS), help=f"Held-out verifier. Default: {d.heldout}.")
    add_config_flags(p, tuple(k for k in SEARCH_KNOBS if k not in ("budget", "seed")) + ("seed",), d)
    p.add_argument("--condition", action="store_true", help="gmm: also restrict the mixture to --class.")
    add_obstacle_flags(p, d)
    p.add_argument(
        "--out", required=True, help="Output directory (sweep.json + sweep.html, or field_scan.*; cells.jsonl as cells finish)."
    )
    add_executor_flags(p)
    p.set_defaults(run=main)


def add_executor_flags(p) -> None:
    """--executor, --address, --gpus-per-run, --cpus-per-run, --resume, --retries, --no-progress
    (shared with other commands that run cells)."""
    from ..executors import EXECUTORS

    g = p.add_argument_group("execution")
    g.add_argument(
        "--executor",
        default="local",
        choices=list(EXECUTORS),
        help="Where cells run: local (this process, in order) or ray (one Ray task per cell; "
        "pip install -e '.[ray]'). Default: local.",
    )
    g.add_argument(
        "--address",
        default=None,
        help="Ray only: the cluster to join (auto: the cluster this machine belongs to; ray://HOST:10001: Ray Client). "
        "Default: start a local Ray.",
    )
    g.add_argument("--gpus-per-run", type=float, default=0.0, help="Ray only: GPUs each cell asks for (≥ 0). Default: 0.")
    g.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray only: CPUs each cell asks for (> 0). Default: 1.")
    g.add_argument("--resume", action="store_true", help="Keep the cells already in OUT/cells.jsonl; run only the rest.")
    g.add_argument("--retries", type=int, default=1, help="Extra attempts for a failing cell (≥ 0). Default: 1.")
    g.add_argument("--no-progress", action="store_true", help="No progress bar over cells on stderr.")


def make_executor_from_args(args):
    """The executor the flags name (starts or joins Ray for --executor ray)."""
    from ..executors import make_executor

    if args.retries < 0:
        raise ConfigError(f"--retries: must be ≥ 0, got {args.retries}")
    ray_opts = {"address": args.address, "gpus_per_run": args.gpus_per_run, "cpus_per_run": args.cpus_per_run}
    return make_executor(args.executor, **ray_opts)


def _failed(out: Path, summary: dict) -> int:
    failed = summary.get("failed") or []
    if failed:
        print(f"{len(failed)} cell(s) failed; rerun with --resume --out {out} to retry only those", file=sys.stderr)
        return 1
    return 0


def main(args) -> int:
    try:
        if args.seeds < 1:
            raise ConfigError("--seeds: must be ≥ 1")
        config = config_from_args(args, condition=args.condition)
        out = Path(args.out)
        opts = {"out": out, "resume": args.resume, "retries": args.retries, "show_progress": not args.no_progress}
        if args.etas is not None or args.q_stars is not None:
            from ..sweep import scan_field
            from ..viz.field import field_figure

            etas = _floats(args.etas, "--etas") if args.etas else [config.eta]
            qs = _floats(args.q_stars, "--q-stars") if args.q_stars else [config.q_star]
            executor = make_executor_from_args(args)
            try:
                scan = scan_field(config, etas, qs, args.seeds, executor=executor, **opts)
            finally:
                executor.close()
            write_json(str(out / "field_scan.json"), scan)
            field_figure(scan).write_html(out / "field_scan.html", include_plotlyjs=True)  # offline: no CDN
            print(f"wrote {out / 'field_scan.json'} and {out / 'field_scan.html'}")
            return _failed(out, scan)
        from ..sweep import run_sweep
        from ..viz.scaling import scaling_figure

        budgets = [int(b) for b in _floats(args.budgets, "--budgets")]
        if not budgets or min(budgets) < 1:
            raise ConfigError("--budgets: need positive integers")
        algos = [a.strip() for a in args.algorithms.split(",") if a.strip()]
        from ..search.registry import ALGORITHMS

        for a in algos or [""]:
            if a not in ALGORITHMS:  # before Ray starts
                raise ConfigError(f"--algorithms: {a!r} is not one of {', '.join(ALGORITHMS)}")
        executor = make_executor_from_args(args)
        try:
            sweep = run_sweep(config, algos, budgets, args.seeds, baseline=not args.no_baseline, executor=executor, **opts)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        finally:
            executor.close()
        write_json(str(out / "sweep.json"), sweep)
        fig = scaling_figure(sweep)
        fig.write_html(out / "sweep.html", include_plotlyjs=True)
        print(f"wrote {out / 'sweep.json'} and {out / 'sweep.html'}")
        return _failed(out, sweep)
    except ConfigError as e:
        return fail(str(e))
