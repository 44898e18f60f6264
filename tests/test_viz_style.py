"""One encoding across views (viz.style): one colour per algorithm in every view, one colour
map for scores and another for t, axis titles everywhere, rounded hovers, legible log axes
and Q* regions in their true aspect, on small real gmm searches of every algorithm."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.colors import hex_to_rgb, unlabel_rgb

from dts_app.backends.gmm import GMMBackend
from dts_app.config import ObstacleSpec, SearchConfig
from dts_app.search import run_search
from dts_app.search.problem import build_problem
from dts_app.search.registry import ALGORITHMS as REGISTRY
from dts_app.search.registry import make_algorithm
from dts_app.viz import style
from dts_app.viz.embedding import embedding_figure
from dts_app.viz.hacking import hacking_figure, hacking_summary
from dts_app.viz.ledger import anytime_figure, compare_budget_figure
from dts_app.viz.plane import obstacle_geometry, plane_figure
from dts_app.viz.scaling import scaling_figure
from dts_app.viz.trajectories import trajectories_figure
from dts_app.viz.tree import tree_figure
from dts_app.viz.tree_layout import layered_tree_figure

ALGS = ("best-of-n", "zero-order", "paths", "tree", "smc")
SWEEP = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "sweep_trap" / "sweep.json"


def rgb(colour: str) -> tuple[int, int, int]:
    """The colour's red, green, blue (hex or rgb(a) strings; alpha dropped)."""
    if colour.startswith("#"):
        return tuple(hex_to_rgb(colour))
    return tuple(int(float(v)) for v in unlabel_rgb(colour.replace("rgba", "rgb").rsplit(",", 1)[0] + ")"))


def by_name(fig, name):
    return next(tr for tr in fig.data if tr.name == name)


@pytest.fixture(scope="module")
def runs():
    """A small search of every algorithm on trap with the hazard as an obstacle."""
    out = {}
    backend = GMMBackend("trap")
    for alg in ALGS:
        cfg = SearchConfig(
            preset="trap", algorithm=alg, n=4, m=2, steps=8, iterations=2, seed=1, heldout="supervised",
            obstacles=(ObstacleSpec("component", 1),), avoid="repulsion",
        )  # fmt: skip
        res = run_search(build_problem(cfg, backend), make_algorithm(alg, cfg))
        out[alg] = res.to_dict()
    return out, backend.reference_mixture()


def views(res: dict, mixture, alg: str | None) -> dict:
    """Every view of one result, the algorithm passed (or left to inference with None)."""
    tree, best = res["tree"], res["best_node"]
    light = {"nodes": [{k: v for k, v in n.items() if k != "x0"} for n in tree["nodes"]], "events": []}
    return {
        "tree": layered_tree_figure(light, best, algorithm=alg),
        "score view": tree_figure(light, best, algorithm=alg),
        "trajectories": trajectories_figure(tree, best, 0.5, algorithm=alg),
        "embedding": embedding_figure(tree, obstacle_geometry(res["obstacles"]), algorithm=alg, best_node=best)[0],
        "plane": plane_figure(mixture.to_dict(), tree, best, res["obstacles"], algorithm=alg),
        "budget": anytime_figure(res["curve"], algorithm=alg),
        "hacking": hacking_figure(hacking_summary(res["candidates"], res["ledger"]["denoiser_nfe"]), algorithm=alg),
    }


# the trace of each view drawn in the algorithm's colour, and where that colour sits
INKED = {
    "tree": ("edges", lambda tr: tr.line.color),
    "score view": ("edges", lambda tr: tr.line.color),
    "trajectories": ("search score", lambda tr: tr.line.color),
    "embedding": ("paths", lambda tr: tr.line.color),
    "plane": ("paths (x̂0)", lambda tr: tr.line.color),
    "hacking": ("candidates", lambda tr: tr.marker.color),
}


# ---------------------------------------------------------------- the palette


def test_palette_covers_the_registry_with_distinct_colours():
    assert set(style.ALGORITHM_COLOURS) == set(REGISTRY.names()) == set(style.ALGORITHMS)
    colours = [rgb(c) for c in style.ALGORITHM_COLOURS.values()]
    assert len(set(colours)) == 5
    others = [style.THIS_RUN_COLOUR, style.BASELINE_COLOUR, style.OBSTACLE, style.BEST_LINE, *style.STATUS_COLOURS.values()]
    for a in colours:  # far (in RGB) from each other and from every non-algorithm colour
        for b in colours + [rgb(c) for c in others]:
            assert a == b or np.linalg.norm(np.subtract(a, b)) > 60, (a, b)
    assert len({style.ALGORITHM_SYMBOLS[a] for a in ALGS}) == 5
    assert style.algorithm_colour("nope") == style.NEUTRAL and style.algorithm_colour("more-steps") == style.BASELINE_COLOUR


def test_score_and_t_colour_maps_differ():
    assert style.SCORE_SCALE == "Viridis"
    assert style.T_SCALE[0][1] != style.T_SCALE[-1][1] and "Viridis" not in str(style.T_SCALE)


def test_num_rounds_for_people():
    assert style.num(-0.0133333) == "−0.01333"
    assert style.num(1024) == "1,024" and style.num(2048.0) == "2,048"
    assert style.num(None) == "–" and style.num(float("nan")) == "–"
    assert style.num(1.58987654, 3) == "1.59" and style.num(-411.458) == "−411.5"


@pytest.mark.parametrize(
    ("values", "ticks"),
    [
        ([256, 512, 1024, 2048, 4096], ["256", "512", "1,024", "2,048", "4,096"]),
        ([245, 1960, 4096], ["256", "512", "1,024", "2,048", "4,096"]),
        ([16, 64, 256, 1024], ["16", "32", "64", "128", "256", "512", "1,024"]),
        ([40, 260, 1960], ["50", "100", "200", "500", "1,000"]),
        ([5, 100, 2000], ["10", "30", "100", "300", "1,000"]),
    ],
)
def test_log_ticks_are_full_numbers(values, ticks):
    vals, text = style.log_ticks(values)
    assert text == ticks and all(min(values) <= v <= max(values) for v in vals)


def test_score_colours_spread_a_heavy_tail_and_stay_monotone():
    v = np.array([-400.0, -300.0, -50.0, -10.0, -2.0, 0.5, 1.0, 1.5, 1.6, np.nan])
    u, marker = style.score_colours(v)
    assert np.isnan(u[-1]) and marker["colorscale"] == "Viridis" and (marker["cmin"], marker["cmax"]) == (0.0, 1.0)
    assert np.all(np.diff(u[:-1]) > 0) and u[0] == 0.0 and u[-2] == 1.0
    assert u[5] < 0.7 < u[7]  # the good scores get most of the colours (linear: all above 0.98)
    bar = marker["colorbar"]
    assert bar["ticktext"][0] == "−400" and bar["ticktext"][-1] == "1.6" and len(bar["tickvals"]) == len(bar["ticktext"])
    same, m = style.score_colours([2.0, 2.0])
    assert list(same) == [2.0, 2.0] and m["colorscale"] == "Viridis"


# ---------------------------------------------------------------- every view


@pytest.mark.parametrize("passed", [True, False], ids=["algorithm passed", "inferred from the trace"])
def test_one_colour_per_algorithm_in_every_view(runs, passed):
    results, mixture = runs
    seen: dict[str, tuple] = {}
    for alg in ALGS:
        figs = views(results[alg], mixture, alg if passed else None)
        want = rgb(style.ALGORITHM_COLOURS[alg])
        for view, (name, get) in INKED.items():
            if view == "hacking" and not passed:
                continue  # a summary of candidates carries no trace to infer from
            assert rgb(get(by_name(figs[view], name))) == want, (alg, view)
        seen[alg] = want
    assert len(set(seen.values())) == len(ALGS)


def test_budget_views_keep_this_run_apart_and_best_of_n_on_top(runs):
    results, _ = runs
    sweep = scaling_figure(json.loads(SWEEP.read_text()))
    fig = anytime_figure(results["paths"]["curve"], sweep, algorithm="paths")
    run = fig.data[-1]
    assert run.name == "this run" and rgb(run.line.color) == rgb(style.THIS_RUN_COLOUR)
    sweeps = {tr.name: tr for tr in fig.data[:-1]}
    assert {rgb(tr.line.color) for tr in sweeps.values()} == {rgb(style.algorithm_colour(a)) for a in [*ALGS, "more-steps"]}
    assert rgb(run.line.color) not in {rgb(tr.line.color) for tr in sweeps.values()}
    assert sweeps["paths"].line.width > sweeps["tree"].line.width  # this run's algorithm stands out
    algs = [tr for tr in fig.data[:-1] if tr.name in ALGS]
    assert algs[-1].name == "best-of-n"  # drawn last: on top of the curves it meets
    ranked = sorted(fig.data, key=lambda tr: tr.legendrank)
    assert [tr.name for tr in ranked][:2] == ["this run", "best-of-n"]
    assert len({(tr.line.dash, tr.marker.symbol) for tr in algs}) == len(algs)
    # the log axis reads 50, 100, 200, ... 2,000 (full numbers at 1-2-5), not "5 100 2 5 1000"
    ax = fig.layout.xaxis
    assert ax.type == "log" and len(ax.tickvals) >= 4
    assert list(ax.ticktext) == [f"{v:,.0f}" for v in ax.tickvals]
    pow2 = all(np.log2(v) == round(np.log2(v)) for v in ax.tickvals)
    assert pow2 or {f"{v:g}"[0] for v in ax.tickvals} <= {"1", "2", "5"}
    # the baseline far below is named, the others fill the axis
    assert fig.layout.yaxis.range[0] > -300 and "more-steps" in fig.layout.annotations[0].text
    # compare mode: each run in its algorithm's colour, a repeated algorithm dashed
    cmp = compare_budget_figure(
        {"A": results["smc"]["curve"], "B": results["best-of-n"]["curve"]}, algorithms=["smc", "best-of-n"]
    )
    assert [rgb(tr.line.color) for tr in cmp.data] == [rgb(style.ALGORITHM_COLOURS[a]) for a in ("smc", "best-of-n")]
    same = compare_budget_figure({"A": results["smc"]["curve"], "B": results["smc"]["curve"]}, algorithms=["smc", "smc"])
    assert [tr.line.dash for tr in same.data] == ["solid", "dash"]


def test_score_colour_map_means_score_and_t_map_means_t(runs):
    results, mixture = runs
    for alg in ("best-of-n", "tree"):
        figs = views(results[alg], mixture, alg)
        nodes = by_name(figs["tree"], "nodes")
        assert nodes.marker.colorbar.title.text in ("search score", "value")
        assert nodes.marker.colorscale == go.Scatter(marker=dict(colorscale=style.SCORE_SCALE)).marker.colorscale
        emb = by_name(figs["embedding"], "nodes")
        assert emb.marker.colorbar.title.text == "t"
        assert [list(s) for s in emb.marker.colorscale] == style.T_SCALE
        ts = [n["t"] for n in results[alg]["tree"]["nodes"]]
        assert np.allclose(np.asarray(emb.marker.color, dtype=float), ts)


def _axes(fig) -> dict:
    """The x/y axes that some trace is drawn on, by layout name."""
    used = set()
    for tr in fig.data:
        used.add("xaxis" + (tr.xaxis or "x")[1:])
        used.add("yaxis" + (tr.yaxis or "y")[1:])
    return {k: fig.layout[k] for k in used}


NUMBER = re.compile(r"\d[\d,]*\.\d+(?:e[-−+]?\d+)?")


def raw_floats(text: str) -> list[str]:
    """Decimal numbers in ``text`` with more than 4 significant digits."""
    out = []
    for m in NUMBER.findall(text):
        digits = m.split("e")[0].replace(",", "").replace(".", "").lstrip("0")
        if len(digits) > 4:
            out.append(m)
    return out


@pytest.mark.parametrize("alg", ALGS)
def test_every_axis_has_a_title_and_hovers_are_rounded(runs, alg):
    results, mixture = runs
    for view, fig in views(results[alg], mixture, alg).items():
        for name, ax in _axes(fig).items():
            shared = ax.matches and ax.showticklabels is False  # a stacked panel: titled at the bottom
            assert ax.title.text or shared, (view, name)
            assert ax.hoverformat == style.HOVER_FORMAT, (view, name)
        for tr in fig.data:
            if tr.hoverinfo == "skip":
                continue
            assert tr.hovertemplate or tr.type == "contour" or tr.hoverinfo == "text", (view, tr.name)
            texts = [tr.hovertemplate or ""] + [
                t for t in (tr.text if isinstance(tr.text, (list, tuple)) else []) if isinstance(t, str)
            ]
            assert not [f for t in texts for f in raw_floats(t)], (view, tr.name, texts[:2])


def test_q_star_regions_are_drawn_in_their_true_aspect(runs):
    results, mixture = runs
    figs = views(results["best-of-n"], mixture, "best-of-n")
    for view in ("plane", "embedding"):
        ax = figs[view].layout.yaxis
        assert ax.scaleanchor == "x" and ax.scaleratio == 1, view
    circle = by_name(figs["plane"], "Q* circle")
    cx, cy = mixture.means[1].tolist()
    r = np.hypot(np.asarray(circle.x) - cx, np.asarray(circle.y) - cy)
    assert np.allclose(r, r[0])  # a circle in data units, drawn with one unit on both axes
