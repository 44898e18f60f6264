"""The ledger as a table: denoiser NFEs, decoder and verifier calls, reverts."""

from __future__ import annotations

__all__ = ["ledger_rows", "anytime_figure", "compare_budget_figure"]


def ledger_rows(ledger: dict, metrics: dict | None = None) -> list[list]:
    """``[[counter, value]]`` rows from ``Ledger.to_dict()`` (plus obstacle metrics)."""
    rows = [[k.replace("_", " "), "no cap" if (k == "budget" and not v) else v] for k, v in ledger.items()]
    for k, v in (metrics or {}).items():
        if k in ledger:
            continue
        rows.append([k.replace("_", " "), "–" if v is None else (round(v, 4) if isinstance(v, float) else v)])
    return rows


def anytime_figure(curve: list[tuple[int, float]], sweep=None, uirevision: str = "budget"):
    """Best score so far against NFEs spent in this run (and a sweep figure's traces when
    ``sweep`` is a plotly Figure from :mod:`dts_app.viz.scaling`).

    Args:
        curve: ``[(denoiser NFEs, best score so far)]`` from the run's snapshots.
        sweep: optional figure whose traces are copied in.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    if sweep is not None:
        for tr in sweep.data:
            fig.add_trace(tr)
        fig.update_xaxes(type="log")
    pts = [(n, s) for n, s in curve if s is not None]
    fig.add_trace(
        go.Scatter(
            x=[n for n, _ in pts],
            y=[s for _, s in pts],
            mode="lines+markers",
            name="this run",
            line=dict(shape="hv", color="#27ae60"),
        )
    )
    fig.update_layout(
        title="Best score vs NFEs" + (" (stored sweep: mean ± s.e.)" if sweep is not None else ""),
        xaxis_title="denoiser NFEs",
        yaxis_title="best search score",
        uirevision=uirevision,
        height=420,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="v", x=1.02, y=1, font=dict(size=10)),
    )
    return fig


COMPARE_COLOURS = ("#2e86de", "#e67e22")


def compare_budget_figure(curves: dict[str, list[tuple[int, float | None]]], uirevision: str = "compare"):
    """Best search score against NFEs of several runs on one plot (compare mode).

    Args:
        curves: ``{label: SearchResult.curve}`` (NFEs spent, best finished score or None).
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (label, curve) in enumerate(curves.items()):
        pts = [(n, s) for n, s in curve if s is not None]
        fig.add_trace(
            go.Scatter(
                x=[n for n, _ in pts],
                y=[s for _, s in pts],
                mode="lines+markers",
                name=label,
                line=dict(shape="hv", color=COMPARE_COLOURS[i % len(COMPARE_COLOURS)]),
                marker=dict(size=4),
            )
        )
    fig.update_layout(
        title="Best score vs NFEs, same budget and seed",
        xaxis_title="denoiser NFEs",
        yaxis_title="best search score",
        uirevision=uirevision,
        height=380,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig
