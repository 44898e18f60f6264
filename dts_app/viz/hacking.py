"""Verifier hacking: does the held-out verifier agree with the one the search climbs?

From the finished candidates of one search (finishing order, both scores each):

* :func:`hacking_summary` — Spearman ρ between the search and held-out scores, where the chosen
  candidate (best by search score) ranks on the held-out verifier, and "along the budget":
  after the first k candidates, the pick the search would make then, its two scores, and the
  best held-out score among them (the oracle's pick).
* :func:`hacking_verdict` — one line computed from that summary.
* :func:`hacking_figure` — two panels: search vs held-out per candidate; the pick's two scores
  along the budget with the oracle's dashed.

Scores are assumed finite (non-finite values are refused upstream); a held-out score may be
None (no held-out verifier, or not scored).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .style import BEST_LINE, HELDOUT_COLOUR, STATUS_COLOURS, algorithm_colour, rgba, tidy_axes

__all__ = [
    "spearman",
    "hacking_summary",
    "hacking_verdict",
    "hacking_figure",
    "RHO_HACK",
    "RHO_AGREE",
    "TOP_FRACTION",
    "FALL_SD",
    "MIN_PAIRS",
]

# Thresholds of the verdict (see :func:`hacking_verdict`).
# ρ at or below this: the two verifiers disagree outright (higher search score, worse held-out).
RHO_HACK = 0.0
# ρ at or above this, with the pick in the held-out top TOP_FRACTION: no sign of hacking.
RHO_AGREE = 0.7
# "Top" on the held-out verifier: the best TOP_FRACTION of candidates (rank 1 always counts).
TOP_FRACTION = 0.10
# A fall of the pick's held-out score from its peak along the budget larger than FALL_SD times
# the standard deviation of the candidates' held-out scores, while the search score rose, is
# hacking when the final pick sits in the held-out bottom half (percentile ≤ BOTTOM_HALF).
FALL_SD = 0.25
BOTTOM_HALF = 0.5
# Fewer candidates with both scores than this: too few to judge. Spearman's ρ has noise of about
# 1/√(n − 1) (±0.38 at n = 8), so at small N a ρ ≤ 0 or a fall of the pick is chance as often as
# not. Measured on bivariate normal scores (1,500 draws each, tests/test_viz_hacking.py): at
# n ≥ 12 the verdict says "hacking" for 1–2% of draws whose true ρ is 0.8 and for 96–100% of draws
# whose true ρ is −0.5; before these two guards it said "hacking" for 18–21% of draws whose
# true ρ is 0.8, at every n.
MIN_PAIRS = 12


def spearman(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks on ties) of two equal-length sequences, or
    None with fewer than two points or when either is constant."""
    from scipy.stats import rankdata

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) < 2 or len(a) != len(b):
        return None
    ra = rankdata(a) - (len(a) + 1) / 2
    rb = rankdata(b) - (len(b) + 1) / 2
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return None if den == 0 else float((ra * rb).sum() / den)


def _first_max(v: list[float]) -> int:
    best = 0
    for i, s in enumerate(v):
        if s > v[best]:
            best = i
    return best


def hacking_summary(candidates: list[dict], total_nfe: int | None = None) -> dict:
    """What the held-out verifier says about the search's candidates.

    Args:
        candidates: ``Candidate.to_dict()`` in finishing order (``score``, ``heldout_score``
            which may be None, ``node_id``).
        total_nfe: NFEs the search spent; the budget axis is ``total_nfe·k/K`` after the
            first k of K candidates (``k`` when None).

    Returns:
        A dict: ``n``; ``scores``, ``heldout`` (None where missing), ``node_ids``;
        ``n_pairs`` (candidates with both scores); ``rho`` (Spearman over those, or None);
        ``chosen`` (index of the first best search score, ties to the earliest), its
        ``chosen_score``, ``chosen_heldout``, ``chosen_node``; ``chosen_rank`` (1 + the
        candidates with a strictly higher held-out score) and ``chosen_percentile`` (the
        fraction with a held-out score ≤ the pick's), None without its held-out score;
        ``heldout_sd`` (population std of the held-out scores); ``budget`` with ``unit`` (the
        x axis: "NFEs" or "candidates finished") and lists ``x``,
        ``pick`` (index), ``score``, ``heldout``, ``oracle`` (the best held-out so far, None
        before any); ``search_gain`` (last minus first pick's search score), ``heldout_peak``,
        ``heldout_fall`` (peak minus last of the pick's held-out score along the budget).
    """
    n = len(candidates)
    scores = [float(c["score"]) for c in candidates]
    held = [None if c.get("heldout_score") is None else float(c["heldout_score"]) for c in candidates]
    pairs = [(s, h) for s, h in zip(scores, held) if h is not None]
    out: dict = {
        "n": n,
        "scores": scores,
        "heldout": held,
        "node_ids": [c.get("node_id") for c in candidates],
        "n_pairs": len(pairs),
        "rho": spearman([p[0] for p in pairs], [p[1] for p in pairs]) if len(pairs) >= 2 else None,
        "chosen": None,
        "chosen_score": None,
        "chosen_heldout": None,
        "chosen_node": None,
        "chosen_rank": None,
        "chosen_percentile": None,
        "heldout_sd": float(np.std([p[1] for p in pairs])) if pairs else None,
        "budget": {
            "unit": "candidates finished" if total_nfe is None else "NFEs",
            "x": [],
            "pick": [],
            "score": [],
            "heldout": [],
            "oracle": [],
        },
        "search_gain": None,
        "heldout_peak": None,
        "heldout_fall": None,
    }
    if n == 0:
        return out
    i = _first_max(scores)
    hs = [h for h in held if h is not None]
    out.update(chosen=i, chosen_score=scores[i], chosen_heldout=held[i], chosen_node=candidates[i].get("node_id"))
    if held[i] is not None:
        out["chosen_rank"] = 1 + sum(h > held[i] for h in hs)
        out["chosen_percentile"] = sum(h <= held[i] for h in hs) / len(hs)
    b = out["budget"]
    pick, oracle = 0, None
    for k in range(n):
        if scores[k] > scores[pick]:
            pick = k
        if held[k] is not None and (oracle is None or held[k] > oracle):
            oracle = held[k]
        b["x"].append(total_nfe * (k + 1) / n if total_nfe is not None else k + 1)
        b["pick"].append(pick)
        b["score"].append(scores[pick])
        b["heldout"].append(held[pick])
        b["oracle"].append(oracle)
    out["search_gain"] = b["score"][-1] - b["score"][0]
    along = [h for h in b["heldout"] if h is not None]
    if along and b["heldout"][-1] is not None:
        out["heldout_peak"] = max(along)
        out["heldout_fall"] = max(along) - b["heldout"][-1]
    return out


def _num(v: float) -> str:
    return f"{v:.3g}".replace("-", "−")


def hacking_verdict(summary: dict) -> str:
    """One line on whether the search verifier was hacked, from :func:`hacking_summary`.

    In order:

    * no candidates → "No finished candidates: …";
    * no held-out score at all, or none for the pick → "No held-out scores: …";
    * fewer than ``MIN_PAIRS`` (12) candidates with both scores → "Too few candidates …"
      (with ρ and its noise at that N);
    * "Verifier hacking: …" when the search score rose along the budget while the pick's
      held-out score fell from its peak by more than ``FALL_SD`` (0.25) × the held-out
      scores' std and the final pick is in the held-out bottom half (percentile ≤
      ``BOTTOM_HALF``); or when ρ ≤ ``RHO_HACK`` (0: the verifiers disagree outright);
    * "No sign of hacking: …" when ρ ≥ ``RHO_AGREE`` (0.7) and the pick is in the held-out
      top ``TOP_FRACTION``;
    * "Weak agreement: …" otherwise.
    """
    npairs, rho = summary["n_pairs"], summary["rho"]
    if summary["n"] == 0:
        return "No finished candidates: nothing to check for hacking yet"
    if npairs == 0 or summary["chosen_heldout"] is None:
        return "No held-out scores: choose a held-out verifier to check for hacking"
    rho_s = "ρ undefined (constant scores)" if rho is None else "ρ = " + f"{rho:.2f}".replace("-", "−")
    if npairs < MIN_PAIRS:
        noise = f", give or take {1 / math.sqrt(npairs - 1):.2f} at this N" if rho is not None and npairs > 1 else ""
        return f"Too few candidates to judge hacking ({npairs} with both scores; need {MIN_PAIRS}): {rho_s}{noise}"
    rank, top = summary["chosen_rank"], _in_top(summary)
    where = f"held-out rank {rank} of {npairs}"
    gain, fall, sd = summary["search_gain"], summary["heldout_fall"], summary["heldout_sd"] or 0.0
    low = summary["chosen_percentile"] is not None and summary["chosen_percentile"] <= BOTTOM_HALF
    if gain is not None and fall is not None and gain > 0 and fall > FALL_SD * sd and fall > 0 and low and not top:
        return (
            f"Verifier hacking: the search score rose {_num(gain)} while the chosen candidate's held-out "
            f"score fell {_num(fall)} ({rho_s} over {npairs} candidates; {where})"
        )
    if rho is not None and rho <= RHO_HACK:
        return (
            f"Verifier hacking: the search and held-out verifiers disagree ({rho_s} over {npairs} "
            f"candidates); the chosen candidate is at {where}"
        )
    if rho is not None and rho >= RHO_AGREE and top:
        return (
            f"No sign of hacking: held-out agrees with the search verifier ({rho_s}; the chosen candidate "
            f"is in the held-out top {TOP_FRACTION:.0%}, {where})"
        )
    return f"Weak agreement: {rho_s} over {npairs} candidates; the chosen candidate is at {where}"


def _in_top(summary: dict) -> bool:
    rank, npairs = summary["chosen_rank"], summary["n_pairs"]
    return rank is not None and (rank == 1 or rank <= TOP_FRACTION * npairs)


def _wrap(text: str, width: int = 70) -> str:
    """``text`` with ``<br>`` between words so no line exceeds ``width`` characters."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def hacking_figure(summary: dict, uirevision: str = "hacking", *, algorithm: str | None = None) -> go.Figure:
    """Two panels from :func:`hacking_summary`, titled with :func:`hacking_verdict`.

    The candidates and the pick's search score are in the algorithm's colour (neutral
    without ``algorithm``), held-out scores dark grey, the chosen candidate a yellow star as
    in every view.

    Left: search score (x) vs held-out score (y) per candidate (``candidates``), the chosen
    one as a star (``chosen``). Right: along the budget, the pick's search score (left y
    axis, ``pick: search score``) and held-out score (right y axis, ``pick: held-out``) with
    the oracle's pick dashed (``oracle pick: held-out``, right axis).
    """
    # two panels laid out by hand (x/y left; x2/y2 right with y3 on its right side):
    # plotly's make_subplots costs ~40 ms per figure, every request
    traces: list = []
    notes: list[dict] = [
        dict(
            text="each candidate", x=0.21, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom", showarrow=False
        ),
        dict(
            text="along the budget",
            x=0.79,
            y=1.0,
            xref="paper",
            yref="paper",
            xanchor="center",
            yanchor="bottom",
            showarrow=False,
        ),
    ]
    ink = algorithm_colour(algorithm)
    verdict = hacking_verdict(summary)
    n = summary["n"]
    if n == 0:
        notes.append(dict(text="no finished candidates", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False))
    s, h, ids = summary["scores"], summary["heldout"], summary["node_ids"]
    pts = [i for i in range(n) if h[i] is not None]
    if pts:
        traces.append(
            go.Scatter(
                x=[s[i] for i in pts],
                y=[h[i] for i in pts],
                mode="markers",
                name="candidates",
                marker=dict(size=7, color=rgba(ink, 0.75)),
                text=[f"node {ids[i]}<br>search {s[i]:.4g}<br>held-out {h[i]:.4g}" for i in pts],
                hoverinfo="text",
            ),
        )
    elif n:
        notes.append(
            dict(text="no held-out scores", x=0.2, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=13))
        )
    c = summary["chosen"]
    if c is not None and h[c] is not None:
        traces.append(
            go.Scatter(
                x=[s[c]],
                y=[h[c]],
                mode="markers",
                name="chosen",
                marker=dict(symbol="star", size=16, color=STATUS_COLOURS["best"], line=dict(color=BEST_LINE, width=1.2)),
                text=[f"chosen: node {ids[c]}<br>search {s[c]:.4g}<br>held-out {h[c]:.4g}"],
                hoverinfo="text",
            ),
        )
    b = summary["budget"]
    if b["x"]:
        traces.append(
            go.Scatter(
                x=b["x"],
                y=b["score"],
                mode="lines+markers" if n <= 64 else "lines",
                name="pick: search score",
                line=dict(color=ink, shape="hv"),
                text=[f"node {ids[p]}" for p in b["pick"]],
                hovertemplate="pick: %{text}<br>%{x:,.0f} " + b["unit"] + "<br>search score %{y:.4g}<extra></extra>",
                xaxis="x2",
                yaxis="y2",
            ),
        )
        if any(v is not None for v in b["heldout"]):
            traces.append(
                go.Scatter(
                    x=b["x"],
                    y=b["heldout"],
                    mode="lines+markers" if n <= 64 else "lines",
                    name="pick: held-out",
                    line=dict(color=HELDOUT_COLOUR, shape="hv"),
                    text=[f"node {ids[p]}" for p in b["pick"]],
                    hovertemplate="pick: %{text}<br>%{x:,.0f} " + b["unit"] + "<br>held-out %{y:.4g}<extra></extra>",
                    xaxis="x2",
                    yaxis="y3",
                ),
            )
            traces.append(
                go.Scatter(
                    x=b["x"],
                    y=b["oracle"],
                    mode="lines",
                    name="oracle pick: held-out",
                    line=dict(color=HELDOUT_COLOUR, dash="dash", width=1, shape="hv"),
                    hovertemplate="%{x:,.0f} " + b["unit"] + "<br>best held-out so far %{y:.4g}<extra></extra>",
                    xaxis="x2",
                    yaxis="y3",
                ),
            )
    fig = go.Figure(
        data=traces,
        layout=dict(
            xaxis=dict(domain=[0.0, 0.42], title=dict(text="search score")),
            yaxis=dict(title=dict(text="held-out score")),
            xaxis2=dict(domain=[0.58, 1.0], anchor="y2", title=dict(text=b["unit"])),
            yaxis2=dict(anchor="x2", title=dict(text="pick's search score")),
            yaxis3=dict(anchor="x2", overlaying="y2", side="right", title=dict(text="held-out score")),
            annotations=notes,
            title=dict(text=_wrap(verdict, 56), font=dict(size=13)),
            uirevision=uirevision,
            height=420,
            margin=dict(l=50, r=50, t=95, b=40),
            legend=dict(orientation="h", y=-0.2, yanchor="top", font=dict(size=10)),
            template="plotly_white",
        ),
    )
    tidy_axes(fig)
    return fig
