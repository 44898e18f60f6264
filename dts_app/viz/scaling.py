"""Scaling curves: best score (mean ± standard error over seeds) against NFEs, one line per
algorithm, plus the *more denoising steps* baseline, from :func:`dts_app.sweep.run_sweep`."""

from __future__ import annotations

__all__ = ["scaling_figure"]

_COLORS = {"best-of-n": "#1f77b4", "zero-order": "#ff7f0e", "paths": "#2ca02c", "tree": "#d62728", "more-steps": "#7f7f7f"}


def scaling_figure(sweep: dict, heldout: bool = False, uirevision: str = "scaling"):
    """Plotly figure of a sweep. ``heldout=True`` plots the held-out score instead, which is
    how verifier hacking shows (the search score rises while the held-out one does not)."""
    import plotly.graph_objects as go

    key = "heldout_score" if heldout else "best_score"
    fig = go.Figure()
    names = list(dict.fromkeys(r["algorithm"] for r in sweep["rows"]))
    for name in names:
        rows = sorted((r for r in sweep["rows"] if r["algorithm"] == name), key=lambda r: r["budget"])
        rows = [r for r in rows if r[f"{key}_mean"] is not None]
        if not rows:
            continue
        fig.add_trace(
            go.Scatter(
                x=[r["budget"] for r in rows],
                y=[r[f"{key}_mean"] for r in rows],
                error_y=dict(type="data", array=[r[f"{key}_se"] or 0.0 for r in rows], visible=True),
                mode="lines+markers",
                name=name + (" (baseline)" if name == sweep.get("baseline") else ""),
                line=dict(color=_COLORS.get(name), dash="dash" if name == sweep.get("baseline") else "solid"),
                hovertemplate="%{x} NFEs<br>%{y:.4g}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title=f"{'Held-out' if heldout else 'Search'} score vs NFE budget (mean ± s.e., {sweep['seeds']} seeds)",
        xaxis_title="NFE budget (denoiser image-forwards)",
        yaxis_title="held-out score of the chosen sample" if heldout else "best search score",
        xaxis_type="log",
        template="plotly_white",
        uirevision=uirevision,
    )
    return fig
