"""One visual encoding for every view, defined once.

* **Algorithms**: one colour each (Okabe–Ito, colour-blind safe), plus a marker symbol and a
  line dash so curves that overlap stay apart; :func:`algorithm_colour` is what every view
  draws an algorithm's paths, curves and edges in. ``this run`` is black and the
  *more denoising steps* baseline grey, so neither repeats an algorithm's colour.
* **Statuses** of trace nodes use neutrals, red (an obstacle's doing) and yellow (the chosen
  candidate), so they never collide with an algorithm's colour.
* **Colour maps**: :data:`SCORE_SCALE` (Viridis) means a score or value in every view,
  :data:`T_SCALE` (a grey ramp, dark at t = 0, light at t = 1) means the time t; no view uses
  either for anything else.
* **Numbers**: :func:`num` and :data:`HOVER_FORMAT` round what hovers show (4 significant
  digits, thousands separators); :func:`tidy_axes` applies the format to every axis.
* **Log axes**: :func:`log_ticks` puts ticks on powers of two or 1-2-5 with full labels
  (16, 64, 256, 1,024) instead of plotly's "5 100 2 5 1000".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_COLOURS",
    "ALGORITHM_SYMBOLS",
    "ALGORITHM_DASHES",
    "BASELINE_COLOUR",
    "THIS_RUN_COLOUR",
    "NEUTRAL",
    "STATUS_COLOURS",
    "STATUS_SYMBOLS",
    "BEST_LINE",
    "HELDOUT_COLOUR",
    "OBSTACLE",
    "REGION_FILL",
    "REGION_LINE",
    "SCORE_SCALE",
    "T_SCALE",
    "HOVER_FORMAT",
    "algorithm_colour",
    "algorithm_style",
    "legend_rank",
    "rgba",
    "score_colours",
    "num",
    "log_ticks",
    "set_log_axis",
    "tidy_axes",
]

#: the registered algorithms, in the order legends list them
ALGORITHMS: tuple[str, ...] = ("best-of-n", "zero-order", "paths", "tree", "smc")
ALGORITHM_COLOURS: dict[str, str] = {
    "best-of-n": "#0072B2",  # blue
    "zero-order": "#E69F00",  # orange
    "paths": "#009E73",  # bluish green
    "tree": "#CC79A7",  # reddish purple
    "smc": "#6A3D9A",  # dark violet
}
ALGORITHM_SYMBOLS: dict[str, str] = {
    "best-of-n": "square",
    "zero-order": "diamond",
    "paths": "circle",
    "tree": "triangle-up",
    "smc": "x",
}
ALGORITHM_DASHES: dict[str, str] = {
    "best-of-n": "solid",
    "zero-order": "dash",
    "paths": "solid",
    "tree": "dashdot",
    "smc": "dot",
}
BASELINE_COLOUR = "#8c8c8c"  # "more denoising steps"
THIS_RUN_COLOUR = "#111111"
NEUTRAL = "#5d6d7e"  # an algorithm the views do not know

STATUS_COLOURS: dict[str, str] = {
    "kept": "#9aa3ad",
    "pruned": "#5f5f5f",
    "reverted": "#c0392b",
    "resampled": "#7b8794",
    "final": "#1a1a1a",
    "best": "#F0E442",  # yellow (Okabe–Ito), with a black outline
}
STATUS_SYMBOLS: dict[str, str] = {"pruned": "x", "reverted": "triangle-down", "resampled": "diamond"}
HELDOUT_COLOUR = "#4d4d4d"  # the held-out verifier's score, next to the search score's colour
BEST_LINE = "#111111"  # the chosen candidate's root path (its node is a yellow star)
OBSTACLE = "#c0392b"
REGION_FILL = "rgba(192,57,43,0.12)"
REGION_LINE = "rgba(192,57,43,0.55)"

SCORE_SCALE = "Viridis"  # scores and values, everywhere
T_SCALE: list[list] = [[0.0, "#1f2328"], [1.0, "#d5d9de"]]  # t: dark at 0 (data), light at 1 (noise)

HOVER_FORMAT = ",.4~g"  # d3: 4 significant digits, thousands separators, no trailing zeros


def algorithm_colour(name: str | None) -> str:
    """The colour of ``name`` (``"more-steps"``: the baseline's grey; unknown: neutral)."""
    if name == "more-steps":
        return BASELINE_COLOUR
    return ALGORITHM_COLOURS.get(name or "", NEUTRAL)


def algorithm_style(name: str | None) -> dict:
    """``line`` and ``marker`` dicts for a curve of ``name`` (colour, dash, symbol)."""
    c = algorithm_colour(name)
    dash = "dash" if name == "more-steps" else ALGORITHM_DASHES.get(name or "", "solid")
    return dict(
        line=dict(color=c, dash=dash, width=2), marker=dict(color=c, symbol=ALGORITHM_SYMBOLS.get(name or "", "circle"), size=7)
    )


def legend_rank(name: str | None) -> int:
    """Legend position of an algorithm's curve: registry order, then the rest."""
    return 10 * (ALGORITHMS.index(name) + 1) if name in ALGORITHMS else 900


def rgba(colour: str, alpha: float) -> str:
    """``"#rrggbb"`` with an alpha, as ``"rgba(r,g,b,a)"``."""
    h = colour.lstrip("#")
    r, g, b = (int(h[k : k + 2], 16) for k in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:g})"


def score_colours(values, stops: int = 9) -> tuple[np.ndarray, dict]:
    """Colours for scores on :data:`SCORE_SCALE`, spread over the nodes.

    Scores are heavy-tailed (a trap's hazard scores −400 next to a prize at 1.6): a linear
    map paints every good node the same yellow. The colour of a value is its position
    between the quantiles of ``values`` (``stops`` of them, linear in between, so the map is
    monotone), and the colour bar is labelled with those quantiles' true values: like a log
    colour bar, its ticks are evenly spaced but not its numbers.

    Returns:
        ``(u, marker)``: ``u`` in [0, 1] per value (NaN stays NaN) and the marker settings
        (``colorscale``, ``cmin``, ``cmax``, and ``colorbar`` tick values and labels) to
        update a marker with. Fewer than two distinct finite values: the values
        themselves on the plain scale.
    """
    v = np.asarray(values, dtype=float)
    fin = v[np.isfinite(v)]
    if fin.size < 2 or float(fin.max() - fin.min()) <= 0:
        rng = dict(cmin=float(fin.min()), cmax=float(fin.max())) if fin.size else {}
        return v, dict(colorscale=SCORE_SCALE, **rng)
    knots = np.unique(np.quantile(fin, np.linspace(0.0, 1.0, stops)))
    pos = np.linspace(0.0, 1.0, len(knots))
    u = np.where(np.isfinite(v), np.interp(np.nan_to_num(v), knots, pos), np.nan)
    bar = dict(tickmode="array", tickvals=pos.tolist(), ticktext=[num(k, 3) for k in knots])
    return u, dict(colorscale=SCORE_SCALE, cmin=0.0, cmax=1.0, colorbar=bar)


def num(v, digits: int = 4) -> str:
    """A number for people: ``–`` for None / NaN, integers with thousands separators,
    floats to ``digits`` significant digits, a true minus sign."""
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        s = f"{int(v):,}"
    else:
        f = float(v)
        if math.isnan(f):
            return "–"
        if math.isinf(f):
            return "∞" if f > 0 else "−∞"
        s = f"{int(f):,}" if f == int(f) and abs(f) < 1e15 else f"{f:.{digits}g}"
    return s.replace("-", "−")


def _sequence(kind: str, lo: float, hi: float) -> list[float]:
    """Tick candidates of one kind inside ``[lo, hi]`` (lo > 0)."""
    out: list[float] = []
    if kind.startswith("2^"):
        stride = int(kind[2:])
        k = math.floor(math.log2(lo))
        k -= k % stride
        while 2.0**k <= hi * (1 + 1e-9):
            if 2.0**k >= lo * (1 - 1e-9):
                out.append(2.0**k)
            k += stride
        return out
    mant = {"1-2-5": (1, 2, 5), "1-3": (1, 3), "10^": (1,)}[kind]
    e = math.floor(math.log10(lo))
    while 10.0**e <= hi * (1 + 1e-9):
        for m in mant:
            v = m * 10.0**e
            if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
                out.append(v)
        e += 1
    return out


def _label(v: float) -> str:
    return f"{v:,.0f}" if v >= 1 else f"{v:g}"


def log_ticks(values: Sequence[float], max_ticks: int = 7) -> tuple[list[float], list[str]]:
    """Ticks for a log axis over the positive ``values``.

    The densest of powers of two (every one, every second, ...), 1-2-5, 1-3 and powers of
    ten with at most ``max_ticks`` ticks in the range; on a tie, powers of two when the
    values are powers of two (NFE budgets: 256, 512, 1,024), else the decimal kinds. Labels
    are full numbers with thousands separators. ``([], [])`` without a positive value.
    """
    v = [float(x) for x in values if x is not None and math.isfinite(float(x)) and float(x) > 0]
    if len(v) < 1:
        return [], []
    lo, hi = min(v), max(v)
    if hi <= lo:
        return [lo], [_label(lo)]
    pow2 = all(abs(math.log2(x) - round(math.log2(x))) < 1e-9 for x in v)
    kinds = ["2^1", "2^2", "2^3", "2^4", "1-2-5", "1-3", "10^"]
    best: list[float] = []
    for kind in sorted(kinds, key=lambda k: k.startswith("2^") != pow2):  # ties: the data's own kind
        ticks = _sequence(kind, lo, hi)
        if len(best) < len(ticks) <= max_ticks:
            best = ticks
    if len(best) >= 2:
        return best, [_label(t) for t in best]
    ticks = [lo, hi]
    return ticks, [_label(t) for t in ticks]


def set_log_axis(fig, values: Sequence[float], axis: str = "x", max_ticks: int = 7) -> None:
    """Make ``axis`` of ``fig`` logarithmic with :func:`log_ticks` over ``values``."""
    vals, text = log_ticks(values, max_ticks)
    upd = dict(type="log", minor=dict(showgrid=False, ticks=""))
    if vals:
        upd.update(tickmode="array", tickvals=vals, ticktext=text)
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**upd)


def tidy_axes(fig) -> None:
    """Rounded hover numbers on every axis of ``fig`` (traces without a template of their
    own show their x / y with :data:`HOVER_FORMAT`)."""
    fig.update_xaxes(hoverformat=HOVER_FORMAT)
    fig.update_yaxes(hoverformat=HOVER_FORMAT)
