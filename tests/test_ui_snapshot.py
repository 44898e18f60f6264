"""Static first paint (dts_app/ui/snapshot.py) without a browser: the switch, the
plotly module's name, the page script."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from dts_app.ui.snapshot import ENV_VAR, hydrate_js, plotly_chunk, snapshots


def test_switched_off_or_nothing_to_draw(monkeypatch):
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    monkeypatch.setenv(ENV_VAR, "0")
    assert snapshots({"tree": fig}) is None
    monkeypatch.setenv(ENV_VAR, "1")
    assert snapshots({"status": "**finished**", "ledger": [["a", 1]]}) is None  # no plotly figure among them


def test_plotly_chunk_is_gradios_module_and_the_script_imports_it():
    import gradio

    name = plotly_chunk()
    assert name and name.startswith("PlotlyPlot-") and name.endswith(".js")
    assert (Path(gradio.__file__).parent / "templates" / "frontend" / "assets" / name).is_file()
    js = hydrate_js(name)
    assert f'"{name}"' in js and "await import(" in js and js.strip().endswith("}")
    assert hydrate_js(None) == "(...args) => args"  # the event's inputs pass through
