"""Issue 24's items 2–7 ("App v3"), each in a real browser (Debian's chromium via
Playwright), at desktop size and at phone size (390×844):

2. lessons: a lesson's link opens the app with its settings, runs them and names the
   lesson; the Findings view draws the chosen finding with its error bars;
3. plain language: the status line, every view's caption, the guide and the plane's
   mode labels say what they show;
4. equal budgets: one compute budget that every algorithm fits itself to;
5. honest metrics: collision rate beside path entries; compare has its own status line,
   its table and its errors;
6. one visual encoding: an algorithm's colour in every view, axis titles, the plane's Q*
   circles drawn round;
7. phone: the results come first, nothing is wider than the screen, the plane places an
   obstacle where it is tapped (a touch screen's tap: plotly answers it with a click at
   (0, 0), so the page reads the plane's pointer events).

Item 8 (speed) has no timing assert here: ``benchmarks/browser_speed.py`` measures it.
Every wait is on page state (a selector, text or a figure's data), never a sleep.
"""

from __future__ import annotations

import re
import shutil

import pytest
from test_ui_browser_state import (  # noqa: F401 (app: a fixture)
    BUDGET,
    DESKTOP,
    LIVE,
    PHONE,
    RECORD,
    SIZES,
    VIEWS,
    app,
    choose,
    open_page,
    status_is,
    statuses,
    type_number,
)
from test_ui_browser_tools import ARGS, CHROMIUM, browser, free_port  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (apt-get install chromium)")

#: a plotted figure as the browser drew it: titles, axes and each trace's name, mode,
#: colours (plain strings only: a per-point colour array is a colour scale's), text and
#: error bars
FIGURE = """(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  if (!gd || !gd._fullLayout || !gd._fullData) return null;
  const fl = gd._fullLayout, str = (c) => (typeof c === 'string' ? c : null);
  const axis = (a) => (a ? {title: a.title && a.title.text, visible: a.visible, scaleanchor: a.scaleanchor || null,
                            scaleratio: a.scaleratio === undefined ? null : a.scaleratio} : null);
  return {
    title: fl.title && fl.title.text,
    xaxis: axis(fl.xaxis), yaxis: axis(fl.yaxis),
    traces: gd._fullData.map(t => ({
      name: t.name, mode: t.mode || null,
      line: t.line ? str(t.line.color) : null,
      marker: t.marker ? str(t.marker.color) : null,
      symbol: t.marker ? str(t.marker.symbol) : null,
      text: Array.isArray(t.text) ? Array.from(t.text) : null,
      err: t.error_y && t.error_y.visible && t.error_y.array ? Array.from(t.error_y.array) : null,
    })),
  };
}"""


def figure(page, elem_id: str) -> dict:
    fig = page.evaluate(FIGURE, f"#{elem_id}")
    assert fig is not None, f"#{elem_id} has no drawn figure"
    return fig


def trace(fig: dict, name: str) -> dict:
    found = [t for t in fig["traces"] if t["name"] == name]
    assert found, (name, [t["name"] for t in fig["traces"]])
    return found[0]


def rgb(colour: str | None) -> tuple[int, int, int] | None:
    """``#rrggbb``, ``rgb(...)`` or ``rgba(...)`` as an (r, g, b) triple (None otherwise)."""
    if not colour:
        return None
    c = colour.strip().lower()
    if re.fullmatch(r"#[0-9a-f]{6}", c):
        return tuple(int(c[k : k + 2], 16) for k in (1, 3, 5))
    m = re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*[\d.]+\s*)?\)", c)
    return tuple(int(v) for v in m.groups()) if m else None


def words(text: str) -> str:
    """Text with its whitespace collapsed (Markdown wraps lines; the browser reflows them)."""
    return " ".join(text.split())


def nfes(status: str) -> int:
    found = re.search(r"([\d,]+) NFEs \(model calls\)", status)
    assert found, status
    return int(found.group(1).replace(",", ""))


def number(label: str, page) -> str:
    return page.get_by_label(f"number input for {label}").input_value()


def open_guide(page) -> None:
    """Open the "What am I looking at?" accordion if it is closed (a phone starts it closed)."""
    head = page.locator("#guide .label-wrap")
    if "open" not in (head.get_attribute("class") or ""):
        head.click()
    page.locator("#guide-text").wait_for(state="visible", timeout=30_000)


def guide_settled(page, size: dict) -> None:
    """Wait until the page's phone script has run: on a phone the guide starts closed."""
    want = "false" if size["width"] < 768 else "true"
    page.wait_for_function(
        f"(() => {{ const h = document.querySelector('#guide .label-wrap');"
        f" return h && h.classList.contains('open') === {want}; }})()",
        timeout=30_000,
    )


# ---- 2. lessons and findings ------------------------------------------------------------------
@SIZES
def test_a_lesson_opens_with_its_settings_and_findings_plot_error_bars(browser, app, size):  # noqa: F811
    from dts_app.search.registry import ALGORITHMS
    from dts_app.ui.findings import finding_plot
    from dts_app.ui.lessons import LESSONS, finding_titles

    x = LESSONS[0]  # the first lesson of the list: search over paths on trap (242 NFEs)
    vals = x.values()
    page = open_page(browser, app[2], size)
    page.context.add_init_script(RECORD)  # the lesson's tab records its status lines too
    guide_settled(page, size)
    open_guide(page)  # a phone starts with it closed: one tap opens it
    link = page.locator("#lessons a", has_text=x.name)
    assert link.get_attribute("href") == x.link()
    with page.context.expect_page() as opened:  # the list's links open a tab of their own
        link.click()
    lesson = opened.value
    text = status_is(lesson, r"^\s*finished · paths on gmm/trap.*opened from a link.*Lesson:")
    assert f"Lesson: {x.name}." in text and words(x.caption) in words(text), text
    assert nfes(text) == 242  # the caption's number: 2 starting noises, 242 model calls
    # the controls hold the lesson's settings, so the next change starts from them
    assert lesson.locator("#algorithm input").input_value() == ALGORITHMS[vals["algorithm"]].label
    assert lesson.locator("#preset input").input_value() == vals["preset"] == "trap"
    assert number("N: candidates", lesson) == str(vals["n"]) == "2"
    assert number(BUDGET, lesson) == "0"  # a lesson runs its N and M as set
    lesson.get_by_text("more knobs").click()
    for k, label in (("steps", "steps"), ("seed", "seed")):
        want = str(vals[k])
        lesson.wait_for_function(
            f"(() => {{ const b = document.querySelector('input[aria-label=\"number input for {label}\"]');"
            f" return b && b.value === '{want}'; }})()",
            timeout=30_000,
        )
    lesson.close()

    # Findings: a finding picked in the menu is drawn with its error bars (mean ± s.e.)
    name = "obstacles"
    titles = finding_titles()
    want = finding_plot(name)
    page.locator("#findings-panel").get_by_text("Findings: what the field claims").click()
    page.wait_for_function("((document.querySelector('#finding-plot .js-plotly-plot') || {})._fullData || []).length > 0")
    choose(page, "finding-pick", titles[name])
    page.wait_for_function(  # its title: the stored figure spec's
        "(t) => ((document.querySelector('#finding-plot .js-plotly-plot') || {})._fullLayout || {title: {}}).title.text === t",
        arg=want.layout.title.text,
        timeout=30_000,
    )
    fig = figure(page, "finding-plot")
    bars = {t.name: list(t.error_y.array) for t in want.data if t.error_y is not None and t.error_y.array is not None}
    drawn = {t["name"]: t["err"] for t in fig["traces"] if t["err"]}
    assert bars and sorted(drawn) == sorted(bars), (drawn, bars)
    for k, err in bars.items():
        assert drawn[k] == pytest.approx(err), k
    assert page.locator("#finding-detail").inner_text().startswith(titles[name])
    page.close()


# ---- 3. plain language ------------------------------------------------------------------------
@SIZES
def test_status_captions_guide_and_mode_labels_are_plain(browser, app, size):  # noqa: F811
    from dts_app.ui.panels import CAPTIONS, GUIDE, PLOTS

    page = open_page(browser, app[2], size)
    text = status_is(page, r"^\s*finished · best-of-n on gmm/trap")
    for said in ("best verifier score", "independent judge", "NFEs (model calls)"):
        assert said in text, text
    assert nfes(text) == 256  # the page's compute budget
    # every view has its caption, as visible text under it
    assert {name for name, _, _ in PLOTS} == set(CAPTIONS)
    for name, caption in CAPTIONS.items():
        shown = page.locator(f"#caption-{name}")
        assert shown.is_visible(), name
        assert words(shown.inner_text()) == words(caption), name
    # the guide: open on a desktop; on a phone closed (results first) and one tap opens it
    guide_settled(page, size)
    open_guide(page)
    shown = words(page.locator("#guide-text").inner_text())
    for bold in re.findall(r"\*\*(.+?)\*\*", GUIDE):
        assert bold in shown, bold
    # the plane names its modes, with their weights, where they are
    backend = app[0]._problem_backend("gmm", "trap")
    weights = backend.reference_mixture().weights.tolist()
    want = [f"{t.label} ({w:.0%})" for t, w in zip(backend.targets(), weights)]
    assert want == ["0: common (62%)", "1: hazard (30%)", "2: prize (8%)"]
    assert trace(figure(page, "plane-plot"), "modes")["text"] == want
    assert sorted(page.locator("#plane-plot .textpoint text").all_text_contents()) == sorted(want)
    page.close()


# ---- 4. equal budgets -------------------------------------------------------------------------
@SIZES
def test_every_algorithm_fits_the_one_budget(browser, app, size):  # noqa: F811
    from dts_app.search.registry import ALGORITHMS
    from dts_app.ui.controls import page_values
    from dts_app.ui.inputs import INPUTS

    budget = 128
    page = open_page(browser, app[2], size)
    type_number(page, BUDGET, budget)
    fitted = 0
    for name in ("best-of-n", "tree", "smc", "paths", "zero-order"):
        if name != "best-of-n":  # the page's own algorithm re-ran on the typed budget
            choose(page, "algorithm", ALGORITHMS[name].label)
        # best-of-N: the typed budget's run (the page's first answer was best-of-N at 256)
        text = status_is(page, rf"^\s*finished · {name} on gmm/trap" + (rf".* {budget} NFEs" if name == "best-of-n" else ""))
        assert number(BUDGET, page) == str(budget), name  # the budget box keeps the value
        assert 0 < nfes(text) <= budget, (name, text)
        # what fitting changed (N, M, iterations) is said, exactly as the server fitted it
        vals = page_values() | {"algorithm": name, "budget": budget}
        note = app[0]._prepare(tuple(vals[k] for k in INPUTS))[3]
        if "fitted to the budget" in note:
            fitted += 1
            assert note.strip(" ·") in text, (name, note, text)
        else:
            assert "fitted to the budget" not in text, (name, text)
    assert fitted >= 3, "best-of-N, SMC and paths change N to fit 128 NFEs"
    page.close()


# ---- 5. honest metrics, compare ---------------------------------------------------------------
@SIZES
def test_collisions_beside_path_entries_and_compare_has_its_own_line(browser, app, size):  # noqa: F811
    from dts_app.ui.compare import HEADERS

    page = open_page(browser, app[2], size)
    page.get_by_role("button", name="avoid preset hazard").click()  # trap's hazard, as an obstacle
    text = status_is(page, r"^\s*finished · best-of-n on gmm/trap.*collision rate")
    assert page.locator("#obstacles textarea").input_value() == "component:1"
    found = re.search(
        r"collision rate ([\d.]+) \(finals within Q\*\) · path entries ([\d.]+) \(paths that came within Q\*\)", text
    )
    assert found, text
    collisions, entries = (float(v) for v in found.groups())
    assert 0 <= collisions <= entries <= 1  # a final inside Q* came within it on its path
    main = page.locator("#status").inner_text()

    page.locator("#compare").get_by_text("Compare two settings").click()
    choose(page, "algo-b", "tree search (DTS-style)")
    page.locator("#compare-btn").click()
    page.locator("#compare-status", has_text="compared").wait_for(timeout=90_000)
    said = page.locator("#compare-status").inner_text().strip()
    assert said.startswith("compared at 256 NFEs, seed 0: ") and "\n" not in said, said
    rows = page.evaluate(
        "[...document.querySelectorAll('#compare-table [role=row]')].map(r =>"
        " [...r.querySelectorAll('[role=columnheader], [role=gridcell]')].map(c => c.innerText.trim()))"
    )
    assert rows[0] == list(HEADERS) and len(rows) == 3, rows
    table = [dict(zip(HEADERS, r)) for r in rows[1:]]
    assert [r["setting"] for r in table] == ["A: best-of-n", "B: algorithm=tree"]
    assert table[0]["algorithm settings"] == "best-of-n: n=8" and table[1]["algorithm settings"].startswith("tree: n=")
    spent = [int(r["NFEs"].replace(",", "")) for r in table]
    assert spent[0] == 256 and 0 < spent[1] <= 256, spent  # the same budget for both
    # A is the main run again (same settings, seed and budget): the same collision rate
    assert float(table[0]["final collisions"]) == pytest.approx(collisions, abs=0.005 + 1e-9)
    assert float(table[0]["path entries into Q*"]) == pytest.approx(entries, abs=0.005 + 1e-9)
    assert 0 <= float(table[1]["final collisions"]) <= float(table[1]["path entries into Q*"]) <= 1
    assert page.locator("#status").inner_text() == main  # compare never touches the main status

    # a bad line for B: one line of ⚠️ in compare's status, none in the main one
    seen = len(statuses(page))
    page.locator("#changes-b textarea").fill("foo")
    page.locator("#compare-btn").click()
    page.locator("#compare-status", has_text="⚠️").wait_for(timeout=30_000)
    said = page.locator("#compare-status").inner_text().strip()
    assert said == "⚠️ compare: cannot read 'foo' (use knob=value, one per line)", said
    assert page.locator("#status").inner_text() == main
    assert not any("⚠️" in s for s in statuses(page)[seen:]), statuses(page)
    assert page.locator("#compare-table [role=row]").count() == 3  # the last comparison stays
    page.close()


# ---- 6. one visual encoding -------------------------------------------------------------------
#: the Q* circle's width and height on screen, in pixels, as plotly drew its path
CIRCLE = """() => {
  const gd = document.querySelector('#plane-plot .js-plotly-plot');
  const g = [...gd.querySelectorAll('.scatterlayer .trace')].find(g => g.__data__ && g.__data__[0].trace.name === 'Q* circle');
  if (!g) return null;
  const r = g.querySelector('path.js-line').getBoundingClientRect();
  const fl = gd._fullLayout;
  return {w: r.width, h: r.height, px_x: fl.xaxis.l2p(1) - fl.xaxis.l2p(0), px_y: fl.yaxis.l2p(0) - fl.yaxis.l2p(1)};
}"""
#: the views that draw one run, in its algorithm's colour
RUN_VIEWS = ("tree-plot", "plane-plot", "traj-plot", "embed-plot", "hacking-plot")


def colours(fig: dict) -> set:
    return {rgb(c) for t in fig["traces"] for c in (t["line"], t["marker"]) if rgb(c) is not None}


@SIZES
def test_one_colour_per_algorithm_axis_titles_and_round_circles(browser, app, size):  # noqa: F811
    from dts_app.search.registry import ALGORITHMS
    from dts_app.viz import style

    page = open_page(browser, app[2], size)
    status_is(page, r"^\s*finished · best-of-n on gmm/trap")
    # the budget view: every algorithm's stored curve in its own colour and marker
    fig = figure(page, "budget-plot")
    algos = [t for t in fig["traces"] if t["name"] in style.ALGORITHM_COLOURS]
    assert sorted(t["name"] for t in algos) == sorted(style.ALGORITHMS)
    for t in algos:
        assert t["line"] == t["marker"] == style.ALGORITHM_COLOURS[t["name"]], t
        assert t["symbol"] == style.ALGORITHM_SYMBOLS[t["name"]], t
    assert trace(fig, "more-steps (baseline)")["line"] == style.BASELINE_COLOUR
    assert trace(fig, "this run")["line"] == style.THIS_RUN_COLOUR
    # every view with axes names them
    for v in VIEWS:
        f = figure(page, v)
        assert f["xaxis"]["title"] and f["yaxis"]["title"], (v, f["xaxis"], f["yaxis"])
    # an obstacle typed into the list: its Q* circle is round on screen (one unit is as
    # long on both axes)
    box = page.locator("#obstacles textarea")
    box.fill("point:1.6,0.4@q=0.9")
    box.blur()
    status_is(page, r"^\s*finished · best-of-n on gmm/trap.*collision rate")
    plane = figure(page, "plane-plot")
    assert (plane["xaxis"]["title"], plane["yaxis"]["title"]) == ("x₁", "x₂")
    assert plane["yaxis"]["scaleanchor"] == "x" and plane["yaxis"]["scaleratio"] == 1
    page.wait_for_function(CIRCLE, timeout=30_000)  # (null until the circle is drawn)
    c = page.evaluate(CIRCLE)
    assert c["px_x"] == pytest.approx(c["px_y"], rel=1e-3), c
    assert c["w"] == pytest.approx(c["h"], rel=0.02, abs=1.0), c
    # switch algorithm: every view of the run draws it in SMC's colour, no other algorithm's
    choose(page, "algorithm", ALGORITHMS["smc"].label)
    status_is(page, r"^\s*finished · smc on gmm/trap")
    others = {rgb(c) for a, c in style.ALGORITHM_COLOURS.items() if a != "smc"}
    for v in RUN_VIEWS:
        seen = colours(figure(page, v))
        assert rgb(style.ALGORITHM_COLOURS["smc"]) in seen, (v, seen)
        assert not seen & others, (v, seen)
    # compare: A (SMC) and B (tree) each in its algorithm's colour and marker
    page.locator("#compare").get_by_text("Compare two settings").click()
    choose(page, "algo-b", "tree search (DTS-style)")
    page.locator("#compare-btn").click()
    page.locator("#compare-status", has_text="compared").wait_for(timeout=90_000)
    page.wait_for_function("((document.querySelector('#compare-budget .js-plotly-plot') || {})._fullData || []).length == 2")
    fig = figure(page, "compare-budget")
    assert [t["name"] for t in fig["traces"]] == ["A: smc", "B: algorithm=tree"]
    for t, a in zip(fig["traces"], ("smc", "tree")):
        assert t["line"] == t["marker"] == style.ALGORITHM_COLOURS[a] and t["symbol"] == style.ALGORITHM_SYMBOLS[a], t
    assert fig["xaxis"]["title"] and fig["yaxis"]["title"]
    page.close()


# ---- 7. phone ---------------------------------------------------------------------------------
#: the boxes of the controls column, the views column, the status line and the first view
BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {top: r.top + scrollY, left: r.left, right: r.right, bottom: r.bottom + scrollY}; };
  return {
    controls: box(document.querySelector('#run-btn').closest('#main-row > div')),
    views: box(document.querySelector('#tree-plot').closest('#main-row > div')),
    status: box(document.querySelector('#status')),
    first: box(document.querySelector('#tree-plot')),
    plots: [...document.querySelectorAll('.js-plotly-plot')].map(box),
    width: document.documentElement.scrollWidth,
  };
}"""


def place_by_click(page) -> None:
    """Click the plane's upper-left quarter: the obstacle is listed and drawn (the run)."""
    drag = page.locator("#plane-plot .nsewdrag").first
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.wait_for_function("document.querySelector('#obstacles textarea').value.startsWith('point:')", timeout=30_000)
    status_is(page, r"^\s*finished · best-of-n on gmm/trap.*collision rate")
    text = page.locator("#obstacles textarea").input_value()
    x, y = (float(v) for v in text[len("point:") : text.index("@")].split(","))
    assert x < 0 < y and text.endswith("@q=0.5"), text  # where it was clicked, with the current Q*
    assert trace(figure(page, "plane-plot"), "Q* circle")


@SIZES
def test_results_first_on_a_phone_nothing_wider_and_the_plane_places(browser, app, size):  # noqa: F811
    page = open_page(browser, app[2], size)
    guide_settled(page, size)
    b = page.evaluate(BOXES)
    assert b["width"] <= size["width"], b["width"]  # nothing wider than the screen
    assert all(p["right"] <= size["width"] + 0.5 for p in b["plots"]), b["plots"]
    if size["width"] < 768:
        # the views come first: the status line and the first view on the first screen,
        # the controls below every view
        assert b["first"]["top"] < b["controls"]["top"] and b["views"]["bottom"] <= b["controls"]["top"], b
        assert b["status"]["top"] < b["first"]["top"] < size["height"], b
    else:
        assert b["controls"]["right"] <= b["views"]["left"], b  # the controls are left of the views
        assert b["controls"]["top"] == pytest.approx(b["views"]["top"], abs=1.0), b
    place_by_click(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    page.close()


def test_a_tap_on_the_plane_places_an_obstacle(browser, app):  # noqa: F811
    page = browser.new_page(viewport=PHONE, has_touch=True, is_mobile=True)
    page.add_init_script(RECORD)
    page.goto(app[2], wait_until="domcontentloaded")
    page.wait_for_function(LIVE, timeout=90_000)
    drag = page.locator("#plane-plot .nsewdrag").first
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    try:
        page.touchscreen.tap(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
        page.wait_for_function("document.querySelector('#obstacles textarea').value.startsWith('point:')", timeout=30_000)
        status_is(page, r"collision rate")
        text = page.locator("#obstacles textarea").input_value()
        assert text.count("point:") == 1, text  # one tap, one obstacle (not a tap and plotly's echo of it)
        x, y = (float(v) for v in text[len("point:") : text.index("@")].split(","))
        assert x < 0 < y, text  # where it was tapped: the upper-left quarter of the plane
    finally:
        page.close()


# ---- 6. a clicked node's path in every view ------------------------------------------------------
@SIZES
def test_a_clicked_node_shows_its_path_in_every_view(browser, app, size):  # noqa: F811
    """Click the tree's best node: its detail shows beside the tree, and its root path is drawn
    as "selected path" in the tree, the trajectories, the embedding and the plane, exactly
    where each view draws the best path (the same nodes)."""
    from test_ui_browser_tools import click_best_node

    page = open_page(browser, app[2], size)
    assert "best" in click_best_node(page)
    page.close()
