"""Write the report: ``report.json`` (the data), ``report.html`` (self-contained, plotly
inlined once, opens offline) and ``report.md`` (the findings as text, with PNG figures).

Figures are plain specs in the JSON (``figure``: title, axes, traces with x, y and error
bars); :func:`to_plotly` turns one into a plotly figure. PNGs need kaleido (and a
Chrome/Chromium it can drive); without it the Markdown points to the HTML instead.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

__all__ = ["to_plotly", "write_json", "write_html", "write_markdown", "write_pngs"]

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]


def to_plotly(spec: dict):
    """A plotly figure from a figure spec (see the module docstring)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, t in enumerate(spec.get("traces", [])):
        color = COLORS[k % len(COLORS)]
        err = None if t.get("err") is None else {"type": "data", "array": [e or 0.0 for e in t["err"]], "visible": True}
        common = {"name": t["name"], "x": t["x"], "y": t["y"], "error_y": err}
        if t.get("axis") == "y2":
            common["yaxis"] = "y2"
        if t.get("type") == "bar":
            fig.add_trace(go.Bar(marker_color=color, **common))
        else:
            line = {"color": color, "dash": t.get("dash", "solid")}
            text = {"text": t["text"], "textposition": "top center"} if t.get("text") else {}
            mode = "lines+markers+text" if text else "lines+markers"
            fig.add_trace(go.Scatter(mode=mode, line=line, **common, **text))
    xs = [x for t in spec.get("traces", []) for x in t["x"]]
    for h in spec.get("hlines", []):  # as dotted traces: shapes on log axes take exponents, traces do not
        if h.get("y") is not None and xs:
            ends = [min(xs), max(xs)] if not isinstance(xs[0], str) else [xs[0], xs[-1]]
            line = {"color": "gray", "dash": "dot", "width": 1.5}
            fig.add_trace(go.Scatter(x=ends, y=[h["y"]] * 2, mode="lines", name=h["name"], line=line))
    layout = {
        "title": {"text": spec.get("title", ""), "font": {"size": 14}},
        "xaxis": {"title": {"text": spec.get("x_title", "")}, "type": "log" if spec.get("x_log") else None},
        "yaxis": {"title": {"text": spec.get("y_title", "")}, "type": "log" if spec.get("y_log") else None},
        "template": "plotly_white",
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"l": 70, "r": 70, "t": 60, "b": 40},
        "barmode": "group",
    }
    if spec.get("x_log") and xs and not isinstance(xs[0], str):
        layout["xaxis"] |= {"tickvals": sorted(set(xs)), "ticktext": [f"{v:g}" for v in sorted(set(xs))]}
    if spec.get("y2_title"):
        layout["yaxis2"] = {"title": {"text": spec["y2_title"]}, "overlaying": "y", "side": "right", "showgrid": False}
    fig.update_layout(**layout)
    return fig


def write_json(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=1, sort_keys=False, ensure_ascii=False) + "\n")


def _table_html(table: dict) -> str:
    if not table:
        return ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table["columns"])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in table["rows"])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(e: dict) -> str:
    return e.get("verdict") or ("held" if e["held"] else "not held")


def _badge(e: dict) -> str:
    v = _verdict(e)
    css = {"held": "held", "not held": "not"}.get(v, "nt")
    return f'<span class="{css}">{html.escape(v)}</span>'


def _shown_by(e: dict) -> list[str]:
    """The reason (not testable) and the command that shows the finding, as text lines."""
    out = []
    if e.get("reason"):
        out.append(f"Why not testable here: {e['reason']}")
    if e.get("command"):
        out.append(f"Shown by: `{e['command']}`")
    return out


def write_html(report: dict, path: Path) -> None:
    """One page: every finding, its figure and table; plotly.js inlined with the first figure."""
    import plotly.io as pio

    parts, first = [], True
    for e in report["experiments"]:
        fig = (
            pio.to_html(to_plotly(e["figure"]), include_plotlyjs=first, full_html=False, default_height=460)
            if e.get("figure")
            else ""
        )
        first = first and not fig
        parts.append(
            f'<section id="{html.escape(e["name"])}"><h2>{html.escape(e["title"])} {_badge(e)}</h2>'
            f'<p class="claim"><b>Claim.</b> {html.escape(e["claim"])}</p>'
            f"<p><b>Measured.</b> {html.escape(e['finding'])}</p>"
            + "".join(f"<p>{html.escape(line)}</p>" for line in _shown_by(e))
            + f"{fig}{_table_html(e.get('table', {}))}"
            f"<details><summary>setup</summary><pre>{html.escape(json.dumps(e['setup'], indent=1, ensure_ascii=False))}</pre></details>"
            "</section>"
        )
    summary = "".join(
        f'<tr><td><a href="#{html.escape(e["name"])}">{html.escape(e["name"])}</a></td><td>{_badge(e)}</td></tr>'
        for e in report["experiments"]
    )
    meta = html.escape(json.dumps({k: v for k, v in report.items() if k != "experiments"}, ensure_ascii=False))
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        ".held{color:#fff;background:#2a7;padding:1px 6px;border-radius:4px;font-size:13px}"
        ".not{color:#fff;background:#c33;padding:1px 6px;border-radius:4px;font-size:13px}"
        ".nt{color:#fff;background:#888;padding:1px 6px;border-radius:4px;font-size:13px}"
        "section{border-top:1px solid #ddd;margin-top:1.5em}.claim{color:#555}"
    )
    doc = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>DTS Explorer: reproduce</title><style>{style}</style>'
        f"</head><body><h1>What the field claims, what we measure</h1><p><code>{meta}</code></p>"
        f"<table>{summary}</table>{''.join(parts)}</body></html>"
    )
    path.write_text(doc)


def write_pngs(report: dict, directory: Path) -> tuple[dict[str, str], str | None]:
    """``figures/NAME.png`` for every experiment, with kaleido; ``({name: path}, None)``, or
    ``({}, why)`` when PNGs cannot be made here."""
    try:
        import kaleido  # noqa: F401
        import plotly.io as pio
    except ImportError:
        return {}, "kaleido is not installed (pip install kaleido; it drives a local Chrome/Chromium)"
    named = [(e["name"], to_plotly(e["figure"])) for e in report["experiments"] if e.get("figure")]
    if not named:
        return {}, None
    figdir = directory / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    paths = [figdir / f"{n}.png" for n, _ in named]
    try:
        pio.write_images([f for _, f in named], paths, width=900, height=480)
    except Exception as e:  # no Chrome, a crashed browser: the report stands without PNGs
        return {}, f"kaleido could not render ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return {n: f"figures/{n}.png" for n, _ in named}, None


def _esc(v) -> str:
    """Text for a Markdown table cell."""
    return str(v).replace("|", "\\|")


def _md_table(table: dict) -> str:
    if not table:
        return ""
    lines = ["| " + " | ".join(_esc(c) for c in table["columns"]) + " |", "|" + "---|" * len(table["columns"])]
    lines += ["| " + " | ".join(_esc(v) for v in row) + " |" for row in table["rows"]]
    return "\n".join(lines)


def write_markdown(report: dict, path: Path, pngs: dict[str, str], png_note: str | None) -> None:
    lines = ["# What the field claims, what we measure", ""]
    lines += [f"`{json.dumps({k: v for k, v in report.items() if k != 'experiments'}, ensure_ascii=False)}`", ""]
    lines += ["| experiment | claim | verdict |", "|---|---|---|"]
    lines += [f"| [{e['name']}](#{e['name']}) | {_esc(e['claim'])} | {_verdict(e)} |" for e in report["experiments"]]
    if png_note:
        lines += ["", f"_No PNG figures: {png_note}. The same figures are in report.html._"]
    for e in report["experiments"]:
        lines += ["", f'<a id="{e["name"]}"></a>', f"## {e['title']} ({_verdict(e)})", ""]
        lines += [f"**Claim.** {e['claim']}", "", f"**Measured.** {e['finding']}", ""]
        lines += [x for line in _shown_by(e) for x in (line, "")]
        if e["name"] in pngs:
            lines += [f"![{e['title']}]({pngs[e['name']]})", ""]
        lines += [_md_table(e.get("table", {}))]
    path.write_text("\n".join(lines) + "\n")
