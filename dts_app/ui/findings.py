"""The Findings view: the stored quick report of ``python -m dts_app reproduce`` as a
table (claim, what we measured, whether it held). It renders the report's own sentences
and ``held`` flags; nothing is recomputed here."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["REPORT", "findings_markdown"]

REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "reproduce_quick" / "report.json"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def findings_markdown(path: Path = REPORT) -> str:
    """Markdown for the view; a one-line note when no report is stored."""
    try:
        report = json.loads(path.read_text())
        experiments = report["experiments"]
    except (OSError, ValueError, KeyError):
        return "No stored report: run `python -m dts_app reproduce --quick --out benchmarks/results/reproduce_quick`."
    rows = ["| finding (held or not), and what the field claims | what we measured |", "|---|---|"]
    for e in experiments:
        mark = "**HELD**" if e.get("held") else "**NOT&nbsp;HELD**"
        title, claim, found = _cell(e.get("title", e["name"])), _cell(e.get("claim", "")), _cell(e.get("finding", ""))
        rows.append(f"| {mark} · **{title}**<br>{claim} | {found} |")
    held = sum(bool(e.get("held")) for e in experiments)
    cmd = report.get("command")
    seeds = cmd.get("seeds") if isinstance(cmd, dict) else None
    head = (
        f"{held} of {len(experiments)} findings held in the stored quick report"
        + (f" ({seeds} seeds, mean ± s.e.)" if seeds else "")
        + ". Regenerate it with `python -m dts_app reproduce --quick --out benchmarks/results/reproduce_quick`; "
        "the full run (without `--quick`) uses more seeds and budgets."
    )
    return head + "\n\n" + "\n".join(rows)
