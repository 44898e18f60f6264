"""A finding's small plot: the figure spec that ``python -m dts_app reproduce`` stores with
every experiment in ``report.json`` (title, axis titles and scales, traces of x, y and the
standard error ``err`` per point, optional second y axis, bars, reference lines), drawn at
the size of the app's Findings view. Nothing is computed here: the numbers are the report's.

A spec (``report.json``'s ``figure``)::

    {"title": ..., "x_title": ..., "y_title": ..., "y2_title": ..., "x_log": bool, "y_log": bool,
     "traces": [{"name", "x", "y", "err" (list or None), "axis": "y2", "dash", "type": "bar"}],
     "hlines": [{"y", "name", "axis": "y2"}]}
"""

from __future__ import annotations

from typing import Any

__all__ = ["HEIGHT", "finding_figure"]

HEIGHT = 360  # px: small enough to sit beside the finding's text
#: algorithms keep the colour they have in the other views (Okabe–Ito, colour-blind safe);
#: other traces take the remaining colours in order
_ALGORITHMS = {"best-of-n": "#0072B2", "zero-order": "#E69F00", "paths": "#009E73", "tree": "#CC79A7", "smc": "#6A3D9A"}
_OTHERS = ("#D55E00", "#56B4E9", "#F0E442", "#000000", "#999999", "#882255", "#117733")


def _colour(name: str) -> str | None:
    """An algorithm's own colour (``"tree: energy distance"`` is the tree's), grey for the
    more-steps baseline, else None (the caller takes the next of :data:`_OTHERS`)."""
    head = str(name).split(":", 1)[0].strip()
    return _ALGORITHMS.get(head) or ("#7f7f7f" if head == "more-steps" else None)


def _short(text: str, width: int = 60) -> str:
    """A title on lines of at most ``width`` characters (plotly does not wrap)."""
    words, lines, line = str(text).split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "<br>".join([*lines, line] if line else lines)


def _hover(t: dict) -> str:
    return "%{x}: %{y:.4g}" + (" ± %{customdata:.2g}" if t.get("err") else "") + f"<extra>{t['name']}</extra>"


def finding_figure(spec: dict | None, height: int = HEIGHT, uirevision: str = "finding") -> Any:
    """A plotly figure of one finding's stored figure spec: mean ± s.e. as error bars where
    the spec has them, reference lines dotted grey; None when there is no spec."""
    import plotly.graph_objects as go

    if not spec or not spec.get("traces"):
        return None
    fig = go.Figure()
    xs = [x for t in spec["traces"] for x in t.get("x", [])]
    others = 0
    for t in spec["traces"]:
        colour = _colour(t["name"])
        if colour is None:
            colour, others = _OTHERS[others % len(_OTHERS)], others + 1
        err = [e or 0.0 for e in t["err"]] if t.get("err") else None
        error_y = None if err is None else dict(type="data", array=err, visible=True, thickness=1.2)
        common = dict(name=t["name"], x=t["x"], y=t["y"], error_y=error_y, customdata=err, hovertemplate=_hover(t))
        if t.get("axis") == "y2":
            common["yaxis"] = "y2"
        if t.get("type") == "bar":
            fig.add_trace(go.Bar(marker_color=colour, **common))
        else:
            line = dict(color=colour, dash=t.get("dash", "solid"), width=2)
            text = dict(text=t["text"], textposition="top center", mode="lines+markers+text") if t.get("text") else {}
            fig.add_trace(go.Scatter(mode=text.pop("mode", "lines+markers"), line=line, **common, **text))
    first_on = {}  # with two y axes a reference line takes the colour of its axis's first trace
    for t, tr in zip(spec["traces"], fig.data):
        first_on.setdefault(t.get("axis", "y"), (tr.marker.color if t.get("type") == "bar" else tr.line.color))
    for h in spec.get("hlines", []):  # as traces: a shape's y on a log axis would be an exponent
        if h.get("y") is None or not xs:
            continue
        colour = first_on.get(h.get("axis", "y"), "#7f7f7f") if spec.get("y2_title") else "#7f7f7f"
        ends = [xs[0], xs[-1]] if isinstance(xs[0], str) else [min(xs), max(xs)]
        fig.add_trace(
            go.Scatter(
                x=ends,
                y=[h["y"]] * 2,
                mode="lines",
                name=h["name"],
                yaxis="y2" if h.get("axis") == "y2" else "y",
                line=dict(color=colour, dash="dot", width=1.5),
                hovertemplate=f"{h['name']}: %{{y:.4g}}<extra></extra>",
            )
        )
    numeric = bool(xs) and not isinstance(xs[0], str)
    xaxis: dict[str, Any] = dict(title=dict(text=spec.get("x_title", ""), font=dict(size=11)))
    if spec.get("x_log") and numeric:
        ticks = sorted(set(xs))
        xaxis |= dict(type="log", tickvals=ticks, ticktext=[f"{v:,g}" for v in ticks])
    yaxis = dict(
        title=dict(text=_short(spec.get("y_title", ""), 40), font=dict(size=11)), type="log" if spec.get("y_log") else None
    )
    layout: dict[str, Any] = dict(
        title=dict(text=_short(spec.get("title", "")), font=dict(size=12)),
        xaxis=xaxis,
        yaxis=yaxis,
        height=height,
        template="plotly_white",
        legend=dict(orientation="h", y=-0.3, font=dict(size=10)),
        margin=dict(l=60, r=60 if spec.get("y2_title") else 20, t=60, b=40),
        barmode="group",
        hoverlabel=dict(font_size=11),
        uirevision=uirevision,
    )
    if spec.get("y2_title"):
        layout["yaxis2"] = dict(
            title=dict(text=_short(spec["y2_title"], 40), font=dict(size=11)), overlaying="y", side="right", showgrid=False
        )
    fig.update_layout(**layout)
    return fig
