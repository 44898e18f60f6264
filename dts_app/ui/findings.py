"""The Findings view: the stored quick report of ``python -m dts_app reproduce`` as a
table (claim, what we measured, whether it held, the lesson that shows it) and, per
finding, a small plot of its numbers with error bars (mean ± s.e. over seeds). It renders
the report's own sentences, ``held`` flags and figure specs; nothing is recomputed here.

The plot is the figure spec the report stores with the experiment
(:func:`dts_app.viz.findings.finding_figure`); where that spec has no error bars but the
experiment's data has means and standard errors (``obstacles``), the plot is drawn from
those instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .lessons import REPORT, finding_titles, lesson_for_finding

__all__ = [
    "REPORT",
    "build_findings",
    "experiments",
    "finding_detail",
    "finding_plot",
    "finding_spec",
    "finding_titles",
    "findings_markdown",
]

_REGENERATE = "python -m dts_app reproduce --quick --out benchmarks/results/reproduce_quick"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _report(path: Path) -> dict | None:
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and isinstance(report.get("experiments"), list) else None


def experiments(path: Path = REPORT) -> list[dict]:
    """The stored experiments (empty without a readable report)."""
    report = _report(path)
    return list(report["experiments"]) if report else []


def _lesson_link(name: str) -> str:
    x = lesson_for_finding(name)
    return f"[▶ {x.name}]({x.link()})" if x else "–"


def _mark(e: dict) -> str:
    return "**HELD**" if e.get("held") else "**NOT&nbsp;HELD**"


def findings_markdown(path: Path = REPORT) -> str:
    """Markdown for the view; a one-line note when no report is stored."""
    report = _report(path)
    if report is None:
        return f"No stored report: run `{_REGENERATE}`."
    rows = ["| finding (held or not), and what the field claims | what we measured | try it |", "|---|---|---|"]
    for e in report["experiments"]:
        title, claim, found = _cell(e.get("title", e["name"])), _cell(e.get("claim", "")), _cell(e.get("finding", ""))
        rows.append(f"| {_mark(e)} · **{title}**<br>{claim} | {found} | {_lesson_link(e['name'])} |")
    experiments_ = report["experiments"]
    held = sum(bool(e.get("held")) for e in experiments_)
    cmd = report.get("command")
    seeds = cmd.get("seeds") if isinstance(cmd, dict) else None
    head = (
        f"{held} of {len(experiments_)} findings held in the stored quick report"
        + (f" ({seeds} seeds, mean ± s.e.)" if seeds else "")
        + f". Regenerate it with `{_REGENERATE}`; "
        "the full run (without `--quick`) uses more seeds and budgets. "
        "*Try it* opens the app with a lesson that shows the finding."
    )
    return head + "\n\n" + "\n".join(rows)


def _stat(s: Any) -> tuple[float | None, float | None]:
    return (s.get("mean"), s.get("se")) if isinstance(s, dict) else (None, None)


def _obstacles_spec(e: dict) -> dict | None:
    """Prize share and mean log p0 per avoidance mode (mean ± s.e.) beside the exact
    constrained law's: the stored figure has the ratios to the targets, without s.e."""
    modes = (e.get("data") or {}).get("modes") or {}
    if not modes:
        return None
    names = list(modes)
    share = [_stat(modes[m].get("prize_share")) for m in names]
    logp = [_stat(modes[m].get("mean_log_p0")) for m in names]
    first = modes[names[0]]
    point = (e.get("setup") or {}).get("obstacle", {})
    where = f" at {tuple(point['point'])}, Q* = {point.get('q_star')}" if point.get("point") else ""
    return {
        "title": f"Obstacle{where}: do the samples keep the law outside Q*? (mean ± s.e.)",
        "x_title": "avoidance mode",
        "y_title": "prize share",
        "y2_title": "mean log p0",
        "traces": [
            {"name": "prize share", "x": names, "y": [m for m, _ in share], "err": [s for _, s in share], "type": "bar"},
            {"name": "mean log p0", "x": names, "y": [m for m, _ in logp], "err": [s for _, s in logp], "axis": "y2"},
        ],
        "hlines": [
            {"y": first.get("target_prize_share"), "name": "exact: prize share"},
            {"y": first.get("target_mean_log_p0"), "name": "exact: mean log p0", "axis": "y2"},
        ],
    }


def finding_spec(e: dict) -> dict | None:
    """The figure spec of a stored experiment, as the view draws it."""
    spec = e.get("figure")
    has_err = bool(spec) and any(t.get("err") for t in spec.get("traces", []))
    if not has_err and e.get("name") == "obstacles":
        return _obstacles_spec(e) or spec
    return spec


def _find(name: str | None, path: Path) -> dict | None:
    exps = experiments(path)
    return next((e for e in exps if e["name"] == name), exps[0] if exps and name is None else None)


def finding_plot(name: str | None, path: Path = REPORT):
    """The small plot of finding ``name`` (None: the first), or None without one."""
    from ..viz.findings import finding_figure

    e = _find(name, path)
    return finding_figure(finding_spec(e), uirevision=f"finding-{name}") if e else None


def finding_detail(name: str | None, path: Path = REPORT) -> str:
    """Markdown beside the plot: the verdict, the claim, what we measured, why it is not
    testable here (when so), and the lesson that shows it."""
    e = _find(name, path)
    if e is None:
        return f"No stored finding {name!r}." if name else f"No stored report: run `{_REGENERATE}`."
    verdict = e.get("verdict") or ("held" if e.get("held") else "not held")
    parts = [f"**{_cell(e.get('title', e['name']))}**: {verdict}.", f"*Claim.* {_cell(e.get('claim', ''))}"]
    parts.append(f"*Measured.* {_cell(e.get('finding', ''))}")
    if e.get("reason"):
        parts.append(f"*Why not testable here.* {_cell(e['reason'])}")
    link = _lesson_link(e["name"])
    parts.append(f"*Try it:* {link}" if link != "–" else "*No lesson shows this one in the app yet.*")
    return "\n\n".join(parts)


def build_findings(gr, accordion: Any = None, path: Path = REPORT) -> dict:
    """The Findings view, built inside the current Blocks context: the table, then a menu of
    findings with the chosen one's plot and text. The plot is drawn when the menu changes and,
    given the ``accordion`` that holds the view, when it is opened (so the page does not load
    a plot, nor plotly, before anyone looks).

    Returns:
        ``{"table", "pick", "plot", "detail", "show"}``: the components and ``show(name) ->
        (figure, markdown)``, the handler that fills them.
    """
    titles = finding_titles(path)
    table = gr.Markdown(findings_markdown(path), elem_id="findings")
    first = next(iter(titles), None)
    with gr.Row():
        pick = gr.Dropdown(
            choices=[(t, n) for n, t in titles.items()],
            value=first,
            label="finding",
            elem_id="finding-pick",
            info="its numbers as the report stores them: mean ± s.e. over seeds",
            scale=1,
        )
    with gr.Row():
        plot = gr.Plot(label="finding's plot", elem_id="finding-plot", scale=3)
        detail = gr.Markdown(finding_detail(first, path) if first else "", elem_id="finding-detail")

    def show(name: str | None):
        return finding_plot(name, path), finding_detail(name, path)

    pick.change(show, [pick], [plot, detail], api_name=False, queue=False)
    if accordion is not None:
        accordion.expand(show, [pick], [plot, detail], api_name=False, queue=False)
    return {"table": table, "pick": pick, "plot": plot, "detail": detail, "show": show}
