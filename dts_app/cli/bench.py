"""``bench``: run a benchmark script from ``benchmarks/`` (``python -m dts_app bench NAME ...``).

Benchmarks are plain scripts ``benchmarks/NAME.py`` that write JSON to
``benchmarks/results/``; arguments after ``NAME`` go to the script. ``bench`` without a
name (or ``--list``) lists the available ones.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

HELP = "Run a benchmark from benchmarks/ (e.g. bench real_models --device cpu); no name lists them."

__all__ = ["HELP", "benchmarks_dir", "available", "add_parser", "main"]


def benchmarks_dir() -> Path:
    """The repository's ``benchmarks/`` folder."""
    return Path(__file__).resolve().parents[2] / "benchmarks"


def available() -> list[str]:
    """Names of the benchmark scripts (``benchmarks/*.py`` without private ones)."""
    d = benchmarks_dir()
    return sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("_")) if d.is_dir() else []


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help=HELP, description=HELP)
    p.add_argument("name", nargs="?", default=None, help="Benchmark name (a script in benchmarks/).")
    p.add_argument("--list", action="store_true", help="List the available benchmarks.")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="Arguments passed to the benchmark script.")
    p.set_defaults(run=main)


def main(args) -> int:
    names = available()
    if args.list or not args.name:
        print("\n".join(names) if names else "no benchmarks found in " + str(benchmarks_dir()))
        return 0
    if args.name not in names:
        print(f"error: unknown benchmark {args.name!r}; choose one of {', '.join(names) or '(none)'}", file=sys.stderr)
        return 2
    script = benchmarks_dir() / f"{args.name}.py"
    argv = sys.argv
    sys.argv = [str(script), *[a for a in args.rest if a != "--"]]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    finally:
        sys.argv = argv
    return 0
