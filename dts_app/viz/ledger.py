"""The ledger as a table (denoiser NFEs, decoder and verifier calls, reverts) and the
budget views: this run's best score against NFEs (over a stored sweep) and compare mode's
curves. ``this run`` is black, so it never repeats an algorithm's colour."""

from __future__ import annotations

from .style import (
    THIS_RUN_COLOUR,
    algorithm_colour,
    algorithm_style,
    legend_rank,
    num,
    set_log_axis,
    tidy_axes,
)

__all__ = ["ledger_rows", "obstacle_rates", "contact_text", "anytime_figure", "compare_budget_figure"]


def ledger_rows(ledger: dict, metrics: dict | None = None, obstacles: list[dict] | None = None) -> list[list]:
    """``[[counter, value]]`` rows from ``Ledger.to_dict()`` (plus obstacle metrics; a
    per-obstacle metric is one row per obstacle, named by its label in ``obstacles``)."""
    rows = [[k.replace("_", " "), "no cap" if (k == "budget" and not v) else v] for k, v in ledger.items()]
    cell = lambda v: "–" if v is None else (round(v, 4) if isinstance(v, float) else v)
    for k, v in (metrics or {}).items():
        if k in ledger:
            continue
        if isinstance(v, list):
            name = k.removesuffix("_by_obstacle").replace("_", " ")
            rows += [[f"{name} · {label}", cell(r)] for label, r in obstacle_rates(metrics, obstacles or [], k)]
        else:
            rows.append([k.replace("_", " "), cell(v)])
    return rows


def obstacle_rates(metrics: dict | None, obstacles: list[dict], key: str) -> list[tuple[str, float | None]]:
    """``[(label, rate)]`` of a per-obstacle metric (``key``, or ``key + "_by_obstacle"``) in
    the run's obstacle order; an obstacle is named by its label (else "obstacle i")."""
    vals = (metrics or {}).get(key if key.endswith("_by_obstacle") else f"{key}_by_obstacle") or []

    def label(i: int) -> str:
        o = obstacles[i] if i < len(obstacles) and isinstance(obstacles[i], dict) else {}
        return str(o.get("label") or f"obstacle {i + 1}")

    return [(label(i), v) for i, v in enumerate(vals)]


def contact_text(metrics: dict | None, obstacles: list[dict]) -> str:
    """The obstacle phrase of a status line: final collisions and path entries into Q*,
    overall and, with more than one obstacle, per obstacle ("" without obstacles)."""
    m = metrics or {}
    if m.get("collision_rate") is None:
        return ""
    text = f"collision rate {m['collision_rate']:.2f} (finals within Q*)"
    if m.get("path_entry_rate") is not None:
        text += f" · path entries {m['path_entry_rate']:.2f} (paths that came within Q*)"
    entries, finals = obstacle_rates(m, obstacles, "path_entry_rate"), obstacle_rates(m, obstacles, "collision_rate")
    if len(entries) > 1 and len(finals) == len(entries):
        per = [f"{lab}: {e:.2f} entered, {c:.2f} final" for (lab, e), (_, c) in zip(entries, finals) if e is not None]
        text += " · per obstacle: " + "; ".join(per)
    return text


def anytime_figure(curve: list[tuple[int, float]], sweep=None, uirevision: str = "budget", *, algorithm: str | None = None):
    """Best score so far against NFEs spent in this run (and a sweep figure's traces when
    ``sweep`` is a plotly Figure from :mod:`dts_app.viz.scaling`).

    Args:
        curve: ``[(denoiser NFEs, best score so far)]`` from the run's snapshots.
        sweep: optional figure whose traces are copied in (their own colours: one per
            algorithm); the NFE axis is then logarithmic, ticked at the budgets.
        algorithm: the run's algorithm: named in the hover, and its sweep curve is drawn
            wider so the two are easy to compare.

    Returns:
        A figure whose last trace is ``this run`` (black, a step line).
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    xs: list[float] = []
    if sweep is not None:
        for tr in sweep.data:
            fig.add_trace(tr)
            xs += [v for v in (tr.x or ()) if v is not None]
            if algorithm is not None and tr.name == algorithm:
                fig.data[-1].line.width = 3.5
    pts = [(n, s) for n, s in curve if s is not None]
    xs += [n for n, _ in pts]
    who = f" ({algorithm})" if algorithm else ""
    fig.add_trace(
        go.Scatter(
            x=[n for n, _ in pts],
            y=[s for _, s in pts],
            mode="lines+markers",
            name="this run",
            line=dict(shape="hv", color=THIS_RUN_COLOUR, width=2.5),
            marker=dict(size=5, color=THIS_RUN_COLOUR),
            legendrank=1,
            hovertemplate="%{x:,.0f} NFEs<br>best so far %{y:.4g}<extra>this run" + who + "</extra>",
        )
    )
    fig.update_layout(
        title="Best score vs NFEs" + (" (stored sweep: mean ± s.e.)" if sweep is not None else ""),
        xaxis_title="denoiser NFEs" + (" (log scale)" if sweep is not None else ""),
        yaxis_title="best search score",
        uirevision=uirevision,
        height=420,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.18, yanchor="top", font=dict(size=10)),
        template="plotly_white",
    )
    if sweep is not None:
        set_log_axis(fig, xs)
        _focus(fig)
    tidy_axes(fig)
    return fig


def _focus(fig) -> None:
    """When the baseline's curve (with its error bars) lies below every other curve (more
    denoising steps on trap: −330 against scores above −210), fit the y axis to the
    others, so their differences show, and name the baseline's level in a note."""
    import math

    def span(tr) -> list[float]:
        ys = [float(v) for v in (tr.y or ()) if v is not None and math.isfinite(float(v))]
        err = list(tr.error_y.array) if tr.error_y is not None and tr.error_y.array is not None else []
        return ys + [y - float(e or 0) for y, e in zip(ys, err)] + [y + float(e or 0) for y, e in zip(ys, err)]

    base = [tr for tr in fig.data if "(baseline)" in (tr.name or "")]
    rest = [v for tr in fig.data if tr not in base for v in span(tr)]
    low = [v for tr in base for v in span(tr)]
    if not base or not rest or not low:
        return
    lo, hi = min(rest), max(rest)
    pad = 0.08 * ((hi - lo) or 1.0)
    if max(low) >= lo:  # the baseline's band meets the others: all of it is drawn
        return
    fig.update_yaxes(range=[lo - pad, hi + pad])
    means = [float(v) for tr in base for v in (tr.y or ()) if v is not None]
    fig.add_annotation(
        text=f"{base[0].name}: about {num(sum(means) / len(means), 3)}, below this axis",
        x=0.01, y=0.02, xref="paper", yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
        font=dict(size=10, color="#666"), bgcolor="rgba(255,255,255,0.8)",
    )  # fmt: skip


#: compare mode's colours when the runs' algorithms are not given (neither is an algorithm's)
COMPARE_COLOURS = ("#111111", "#7b8794")


def compare_budget_figure(
    curves: dict[str, list[tuple[int, float | None]]],
    uirevision: str = "compare",
    *,
    algorithms: list[str | None] | None = None,
):
    """Best search score against NFEs of several runs on one plot (compare mode).

    Args:
        curves: ``{label: SearchResult.curve}`` (NFEs spent, best finished score or None).
        algorithms: each run's algorithm, in the order of ``curves``: a run is drawn in
            its algorithm's colour and marker; a run whose algorithm repeats an earlier
            one's is dashed. Without it: black and grey.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    seen: set = set()
    for i, (label, curve) in enumerate(curves.items()):
        pts = [(n, s) for n, s in curve if s is not None]
        alg = algorithms[i] if algorithms is not None and i < len(algorithms) else None
        if alg is not None:
            st = algorithm_style(alg)
            line = dict(shape="hv", color=algorithm_colour(alg), width=2.5, dash="dash" if alg in seen else "solid")
            marker = dict(size=6, color=st["marker"]["color"], symbol=st["marker"]["symbol"])
            seen.add(alg)
        else:
            line = dict(shape="hv", color=COMPARE_COLOURS[i % len(COMPARE_COLOURS)], width=2.5, dash="dash" if i % 2 else "solid")
            marker = dict(size=5)
        fig.add_trace(
            go.Scatter(
                x=[n for n, _ in pts],
                y=[s for _, s in pts],
                mode="lines+markers",
                name=label,
                line=line,
                marker=marker,
                legendrank=legend_rank(alg) + i,
                hovertemplate="%{x:,.0f} NFEs<br>best so far %{y:.4g}<extra>" + label + "</extra>",
            )
        )
    fig.update_layout(
        title="Best score vs NFEs, same budget and seed",
        xaxis_title="denoiser NFEs",
        yaxis_title="best search score",
        uirevision=uirevision,
        height=380,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.2, yanchor="top", font=dict(size=10)),
        template="plotly_white",
    )
    tidy_axes(fig)
    return fig
