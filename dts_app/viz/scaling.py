"""Scaling curves: best score (mean ± standard error over seeds) against NFEs, one line per
algorithm, plus the *more denoising steps* baseline, from :func:`dts_app.sweep.run_sweep`.

Every algorithm has its own colour, dash and marker (:mod:`dts_app.viz.style`); best-of-N,
the baseline the others are measured against, is drawn last (on top) and listed first, so
it is never hidden under the curves it meets. The NFE axis is logarithmic with ticks on the
budgets' powers of two (256, 512, 1,024)."""

from __future__ import annotations

from .style import ALGORITHMS, algorithm_style, legend_rank, set_log_axis, tidy_axes

__all__ = ["scaling_figure"]


def _draw_order(names: list[str]) -> list[str]:
    """Baseline and unknown names first, then the algorithms, best-of-N last (on top)."""
    return sorted(names, key=lambda n: (n in ALGORITHMS, n == "best-of-n"))


def scaling_figure(sweep: dict, heldout: bool = False, uirevision: str = "scaling"):
    """Plotly figure of a sweep. ``heldout=True`` plots the held-out score instead, which is
    how verifier hacking shows (the search score rises while the held-out one does not)."""
    import plotly.graph_objects as go

    key = "heldout_score" if heldout else "best_score"
    fig = go.Figure()
    names = list(dict.fromkeys(r["algorithm"] for r in sweep["rows"]))
    budgets: list[float] = []
    for name in _draw_order(names):
        rows = sorted((r for r in sweep["rows"] if r["algorithm"] == name), key=lambda r: r["budget"])
        rows = [r for r in rows if r[f"{key}_mean"] is not None]
        if not rows:
            continue
        budgets += [r["budget"] for r in rows]
        style = algorithm_style(name)
        baseline = name == sweep.get("baseline")
        fig.add_trace(
            go.Scatter(
                x=[r["budget"] for r in rows],
                y=[r[f"{key}_mean"] for r in rows],
                error_y=dict(type="data", array=[r[f"{key}_se"] or 0.0 for r in rows], visible=True, thickness=1, width=3),
                mode="lines+markers",
                name=name + (" (baseline)" if baseline else ""),
                line=style["line"],
                marker=style["marker"],
                legendrank=legend_rank(name),
                hovertemplate="%{x:,} NFEs<br>%{y:.4g}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title=f"{'Held-out' if heldout else 'Search'} score vs NFE budget (mean ± s.e., {sweep['seeds']} seeds)",
        xaxis_title="NFE budget (denoiser image-forwards)",
        yaxis_title="held-out score of the chosen sample" if heldout else "best search score",
        template="plotly_white",
        uirevision=uirevision,
    )
    set_log_axis(fig, budgets)
    tidy_axes(fig)
    return fig
