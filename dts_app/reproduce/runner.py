"""Run the selected experiments: every cell once (shared cells run once), then each
experiment's summary, then the report files."""

from __future__ import annotations

import json
import math
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from .base import EXPERIMENTS, Context, num

__all__ = ["run_reproduce", "build_report", "clean"]

SCHEMA = 1


def clean(x):
    """JSON-ready data with every float rounded to 6 significant digits (NaN/inf → None)."""
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return num(x) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if hasattr(x, "item"):
        return clean(x.item())
    return str(x)


def _entry(exp, ctx: Context, cells: list, results: dict) -> dict:
    done = sum(c.id in results for c in cells)
    base = {"name": exp.name, "title": exp.title, "claim": exp.claim, "command": exp.command}
    try:
        f = exp.summarize(ctx, cells, results)
        body = {"setup": f.setup, "data": f.data, "finding": f.finding, "held": bool(f.held), "figure": f.figure}
        body |= {"table": f.table, "verdict": f.verdict, "reason": f.reason}
    except Exception as e:  # a summary that cannot be computed is reported, never invented
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        body = {"setup": {}, "data": {}, "finding": f"could not be computed: {tb}", "held": False, "figure": {}, "table": {}}
        body |= {"verdict": "not testable here", "reason": "the summary could not be computed from the runs"}
    return clean(base | body | {"runs": {"cells": len(cells), "finished": done}})


def build_report(names: Sequence[str], ctx: Context, results: dict, plans: dict) -> dict:
    """The report from finished cell results (``results``: cell id → numbers)."""
    from ..search import ALGORITHMS

    return {
        "schema": SCHEMA,
        "command": {"quick": ctx.quick, "seeds": ctx.seeds, "seed": ctx.seed, "only": list(names)},
        "algorithms": list(ALGORITHMS),
        "experiments": [_entry(EXPERIMENTS[n], ctx, plans[n], results) for n in names],
    }


def run_reproduce(
    names: Sequence[str],
    ctx: Context,
    out: str | Path,
    *,
    executor="local",
    resume: bool = False,
    retries: int = 1,
    progress: bool = True,
    png: bool = True,
) -> dict:
    """Run ``names`` (all when empty) and write ``out/report.{json,html,md}`` (+ figures/,
    cells.jsonl, timings.json). Returns the report."""
    from ..executors import run_cells
    from .report import write_html, write_json, write_markdown, write_pngs

    names = list(names) or list(EXPERIMENTS)
    for n in names:
        if n not in EXPERIMENTS:
            raise ValueError(f"--only: {n!r} is not one of {', '.join(EXPERIMENTS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    plans = {n: EXPERIMENTS[n].plan(ctx) for n in names}
    cells = [c for n in names for c in plans[n]]
    results, failed, seconds = {}, [], {}
    for o in run_cells(cells, executor, out=out, resume=resume, retries=retries, progress=progress, desc="reproduce"):
        if o.ok:
            results[o.cell.id] = o.result
            seconds[o.cell.id] = o.seconds
        else:
            failed.append({"key": o.cell.key, "task": o.cell.task, "error": o.error})
    t_cells = time.perf_counter() - t0
    report = build_report(names, ctx, results, plans)
    if failed:
        report["failed"] = clean(failed)
    write_json(report, out / "report.json")
    write_html(report, out / "report.html")
    t1 = time.perf_counter()
    pngs, note = write_pngs(report, out) if png else ({}, "PNGs were turned off (--no-png)")
    write_markdown(report, out / "report.md", pngs, note)
    timing = {
        "total_s": round(time.perf_counter() - t0, 1),
        "cells_s": round(t_cells, 1),
        "png_s": round(time.perf_counter() - t1, 1),
        "cell_seconds_by_experiment": {n: round(sum(seconds.get(c.id, 0.0) for c in plans[n]), 1) for n in names},
    }
    (out / "timings.json").write_text(json.dumps(timing, indent=1) + "\n")
    return report
