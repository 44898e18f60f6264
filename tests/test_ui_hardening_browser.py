"""The second hardening in a real browser (Debian's chromium via Playwright): a CLI run file
with n = 300 (valid for the server, beyond the N slider's 256) reopens, the slider takes
the value, and the session's next requests run with it instead of failing with Gradio's
"Value 300 is greater than maximum value 256"."""

from __future__ import annotations

import re
import shutil

import pytest
from test_ui_browser_tools import ARGS, CHROMIUM, app_url, browser, open_page  # noqa: F401 (fixtures)

from dts_app.ui.handlers import AppHandlers, input_values
from dts_app.ui.runfile import run_text
from dts_app.ui.state import SessionState

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (apt-get install chromium)")


def test_a_reopened_value_beyond_a_slider_keeps_working(browser, app_url, tmp_path):  # noqa: F811
    state = SessionState()
    assert AppHandlers().run(state, *input_values(n=300, steps=4))["status"].startswith("**finished**")
    path = tmp_path / "n300.json"
    path.write_text(run_text(state.result, state.config))
    page = open_page(browser, app_url)
    page.locator("#files").get_by_text("Save, share, reopen").click()
    page.locator("#open-file input[type=file]").set_input_files(str(path))
    page.locator("#status").get_by_text("reopened").wait_for(timeout=60_000)
    n_box = page.get_by_label("number input for N: candidates")
    assert n_box.input_value() == "300"
    page.locator("#run-btn").click()  # the session's next request, after the controls were updated
    # the Run's own answer (the reopened status says "reopened · … finished · … 1,200 NFEs" too)
    page.locator("#status", has_text=re.compile(r"^\s*(finished\b.*1,200 NFEs|⚠️)")).wait_for(timeout=60_000)
    status = page.locator("#status").text_content()
    assert "finished" in status and "greater than maximum" not in status, status
    page.evaluate(  # count the status line's changes: the slider run shows its progress, then its answer
        "window.__n = 0; new MutationObserver(() => window.__n++).observe(document.querySelector('#status'),"
        " {subtree: true, childList: true, characterData: true})"
    )
    eta = page.get_by_label("number input for η: repulsion strength")
    eta.fill("2")
    eta.press("Enter")
    eta.blur()
    page.wait_for_function(  # the slider run's answer (after its "running…" line)
        "(() => { const t = document.querySelector('#status [data-testid=markdown]').textContent.trim();"
        " return window.__n >= 2 && (t.startsWith('finished') || t.startsWith('⚠️')); })()",
        timeout=60_000,
    )
    assert "1,200 NFEs" in page.locator("#status").text_content()
    page.close()
