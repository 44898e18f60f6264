"""``reproduce``: re-derive the field's findings on the embedded backends, with error bars."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..config import ConfigError
from .common import fail
from .sweep import add_executor_flags, make_executor_from_args

HELP = "Re-derive the field's findings (steps vs search, hacking, savings, tilted sampling, obstacles, …) with error bars."


def add_parser(sub) -> None:
    from ..reproduce import EXPERIMENTS

    p = sub.add_parser("reproduce", help=HELP, description=HELP)
    p.add_argument("--quick", action="store_true", help="Small budgets and sample counts (a few minutes on 2 CPU cores).")
    p.add_argument("--only", default="", help=f"Comma-separated experiments (default: all): {', '.join(EXPERIMENTS)}.")
    p.add_argument("--seeds", type=int, default=None, help="Seeds per point (mean ± s.e.). Default: 3 with --quick, else 8.")
    p.add_argument("--seed", type=int, default=0, help="Base seed; the same seed gives the same report.json. Default: 0.")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default). Default: 0.")
    p.add_argument("--no-png", action="store_true", help="Skip the PNG figures of report.md (they need kaleido).")
    p.add_argument("--list", action="store_true", help="List the experiments and exit.")
    p.add_argument("--out", default=None, help="Output directory: report.json, report.html, report.md, figures/, cells.jsonl.")
    add_executor_flags(p)
    p.set_defaults(run=main)


def main(args) -> int:
    from ..reproduce import EXPERIMENTS, Context, run_reproduce

    if args.list:
        for e in EXPERIMENTS.values():
            print(f"{e.name:18s} {e.title}")
        return 0
    try:
        if args.out is None:
            raise ConfigError("--out: required (the report's directory)")
        seeds = args.seeds if args.seeds is not None else (3 if args.quick else 8)
        if seeds < 1:
            raise ConfigError(f"--seeds: must be ≥ 1, got {seeds}")
        if args.seed < 0:
            raise ConfigError(f"--seed: must be ≥ 0, got {args.seed}")
        if args.threads < 0:
            raise ConfigError(f"--threads: must be ≥ 0, got {args.threads}")
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        for n in names:
            if n not in EXPERIMENTS:
                raise ConfigError(f"--only: {n!r} is not one of {', '.join(EXPERIMENTS)}")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        executor = make_executor_from_args(args)
        t0 = time.perf_counter()
        try:
            report = run_reproduce(
                names, Context(quick=args.quick, seeds=seeds, seed=args.seed), Path(args.out), executor=executor,
                resume=args.resume, retries=args.retries, progress=not args.no_progress, png=not args.no_png,
            )  # fmt: skip
        finally:
            executor.close()
    except ConfigError as e:
        return fail(str(e))
    out = Path(args.out)
    for e in report["experiments"]:
        print(f"[{e.get('verdict', 'held' if e['held'] else 'not held')}] {e['name']}: {e['finding']}")
    print(f"wrote {out / 'report.json'}, {out / 'report.html'} and {out / 'report.md'} in {time.perf_counter() - t0:.0f} s")
    if report.get("failed"):
        print(f"{len(report['failed'])} cell(s) failed; rerun with --resume --out {out} to retry only those", file=sys.stderr)
        return 1
    return 0
