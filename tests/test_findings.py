"""The Findings view (dts_app/ui/findings.py, dts_app/viz/findings.py): it renders the
stored report as it is (table, verdicts, a small plot per finding with the report's means
and standard errors) and links every finding that has a lesson to that lesson."""

from __future__ import annotations

import json

import pytest

from dts_app.ui.findings import (
    REPORT,
    build_findings,
    experiments,
    finding_detail,
    finding_plot,
    finding_spec,
    finding_titles,
    findings_markdown,
)
from dts_app.ui.lessons import lesson_for_finding
from dts_app.viz.findings import finding_figure


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads(REPORT.read_text())


def test_table_rows_verdicts_and_lesson_links(report):
    md = findings_markdown()
    exps = report["experiments"]
    assert md.count("| **HELD** · ") == sum(bool(e["held"]) for e in exps)
    assert md.count("| **NOT&nbsp;HELD** · ") == sum(not e["held"] for e in exps)
    rows = [line for line in md.splitlines() if line.startswith("| **")]
    assert len(rows) == len(exps)
    for e, row in zip(exps, rows):
        assert e["title"].replace("|", "\\|") in row
        x = lesson_for_finding(e["name"])
        assert row.endswith(f"| [▶ {x.name}]({x.link()}) |" if x else "| – |"), row
    assert sum(lesson_for_finding(e["name"]) is not None for e in exps) >= 5


def test_missing_or_broken_report(tmp_path):
    assert findings_markdown(tmp_path / "missing.json").startswith("No stored report")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1}')
    assert findings_markdown(bad).startswith("No stored report")
    assert experiments(bad) == [] and finding_titles(bad) == {}
    assert finding_plot(None, bad) is None
    assert finding_detail(None, bad).startswith("No stored report")
    assert finding_detail("nope") == "No stored finding 'nope'."


def test_every_finding_has_a_plot_of_the_stored_numbers(report):
    for e in report["experiments"]:
        fig = finding_plot(e["name"])
        assert fig is not None and fig.layout.height <= 400, e["name"]
        spec = finding_spec(e)
        drawn = {t.name: t for t in fig.data}
        for t in spec["traces"]:  # the report's means and s.e. as they are: nothing recomputed
            d = drawn[t["name"]]
            assert list(d.y) == list(t["y"]) and list(d.x) == list(t["x"])
            if t.get("err"):
                assert list(d.error_y.array) == [v or 0.0 for v in t["err"]]
                assert d.error_y.visible
        for h in spec.get("hlines", []):
            assert set(drawn[h["name"]].y) == {h["y"]}
    plots_with_bars = [
        e["name"] for e in report["experiments"] if any(t.error_y.array is not None for t in finding_plot(e["name"]).data)
    ]
    assert len(plots_with_bars) >= len(report["experiments"]) - 1  # dts-savings stores ratios of means


def test_obstacles_plot_shows_mean_and_se_per_mode_beside_the_exact_law(report):
    e = next(x for x in report["experiments"] if x["name"] == "obstacles")
    fig = finding_plot("obstacles")
    modes = e["data"]["modes"]
    share = next(t for t in fig.data if t.name == "prize share")
    logp = next(t for t in fig.data if t.name == "mean log p0")
    assert list(share.x) == list(modes) and logp.yaxis == "y2"
    assert list(share.y) == [modes[m]["prize_share"]["mean"] for m in modes]
    assert list(share.error_y.array) == [modes[m]["prize_share"]["se"] for m in modes]
    assert list(logp.error_y.array) == [modes[m]["mean_log_p0"]["se"] for m in modes]
    exact = {t.name: t for t in fig.data}["exact: mean log p0"]
    assert exact.yaxis == "y2" and exact.y[0] == modes["smc"]["target_mean_log_p0"]


def test_detail_names_verdict_claim_measurement_reason_and_lesson(report):
    for e in report["experiments"]:
        md = finding_detail(e["name"])
        assert e["title"] in md and e["claim"].split()[0] in md
        x = lesson_for_finding(e["name"])
        assert (f"[▶ {x.name}]({x.link()})" in md) if x else ("No lesson" in md)
        if e.get("reason"):
            assert "Why not testable here" in md
    assert finding_detail(None) == finding_detail(report["experiments"][0]["name"])


def test_figure_builder_axes_and_edge_cases():
    assert finding_figure(None) is None and finding_figure({"traces": []}) is None
    spec = {
        "title": "t " * 80,
        "x_title": "N",
        "y_title": "score",
        "y2_title": "held-out",
        "x_log": True,
        "traces": [
            {"name": "paths", "x": [1, 4, 1024], "y": [1.0, 2.0, 3.0], "err": [0.1, None, 0.3]},
            {"name": "held-out", "x": [1, 4, 1024], "y": [0.0, -1.0, -2.0], "err": None, "axis": "y2", "dash": "dash"},
        ],
        "hlines": [{"y": 2.5, "name": "max"}, {"y": None, "name": "none"}],
    }
    fig = finding_figure(spec)
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.ticktext) == ["1", "4", "1,024"]
    assert fig.layout.yaxis2.overlaying == "y" and fig.data[1].yaxis == "y2"
    assert list(fig.data[0].error_y.array) == [0.1, 0.0, 0.3] and fig.data[1].error_y.array is None
    assert fig.data[0].line.color == "#009E73"  # paths keeps its colour
    assert [t.name for t in fig.data] == ["paths", "held-out", "max"]  # a line without y is left out
    assert "<br>" in fig.layout.title.text  # long titles wrap


def test_build_findings_makes_the_view_without_drawing_a_plot_until_asked():
    gr = pytest.importorskip("gradio")
    with gr.Blocks() as demo:
        with gr.Accordion("Findings", open=False) as acc:
            f = build_findings(gr, acc)
    assert f["plot"].value is None  # no plotly before anyone opens the view
    assert f["table"].value == findings_markdown()
    names = list(finding_titles())
    assert [v for _, v in f["pick"].choices] == names and f["pick"].value == names[0]
    fig, md = f["show"]("verifier-hacking")
    assert fig.data[0].name == "search verifier" and "Verifier hacking" in md
    triggers = {t[1] for d in demo.config["dependencies"] for t in d["targets"]}
    assert {"change", "expand"} <= triggers
