"""Issue 24's broken state, in a real browser (Debian's chromium via Playwright), at desktop
size and, where the layout matters, at phone size (390×844):

1. a link with settings leaves the status line live (it froze on "Opening the linked
   settings…": the page script replaced the Markdown's DOM);
2. the digits gallery shows the run's own candidates, its best among them (after a tree
   search it kept best-of-N's first 16 images);
3. Stop cancels a run still waiting in the queue (it started after the Stop);
4. every control change re-runs with progress on the status line, and no run blanks the
   views into spinners (typed N or steps ran silently, Run covered every view);
5. switching backend never shows one backend's views or preset beside the other's;
6. a link to another backend sets the avoid menu to that backend's choices.

Every wait is on page state (a selector or text) or on the server's queue, never a sleep.
"""

from __future__ import annotations

import re
import shutil

import pytest
from test_ui_browser_tools import ARGS, CHROMIUM, browser, free_port  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium not installed (apt-get install chromium)")

DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
VIEWS = ["tree-plot", "plane-plot", "traj-plot", "embed-plot", "gallery-plot", "budget-plot", "hacking-plot"]
#: the page's record of every status line it showed (``window.__st``) and whether any view
#: showed a progress overlay (``window.__spun``, reset by the test)
RECORD = """
window.__st = []; window.__spun = false;
(function attach() {
  const st = document.querySelector('#status');
  if (!st) { requestAnimationFrame(attach); return; }
  const read = () => {
    const m = st.querySelector('[data-testid=markdown]'); const t = m ? m.textContent.trim() : '';
    if (window.__st[window.__st.length - 1] !== t) window.__st.push(t);
  };
  read();
  new MutationObserver(read).observe(st, {subtree: true, childList: true, characterData: true});
  (function spin() {
    if (document.querySelector("[id$='-plot'] [data-testid=status-tracker]:not(.hide)")) window.__spun = true;
    requestAnimationFrame(spin);
  })();
})();
"""
LIVE = "() => " + " && ".join(
    f"((document.querySelector('#{v} .js-plotly-plot') || {{}})._fullData || []).length > 0" for v in VIEWS
)


@pytest.fixture(scope="module")
def app():
    """The app as ``app.py`` serves it (default answer baked in as image snapshots, so the
    link's page script runs), with one search at a time, so a second run waits in the
    queue: ``(handlers, demo, url)``."""
    from dts_app.ui.handlers import AppHandlers
    from dts_app.ui.layout import build_demo
    from dts_app.ui.limits import Limits

    h = AppHandlers(limits=Limits(concurrency=1))
    demo = build_demo(h, umap_warmup=False, first_view=True)
    assert demo.static_views  # kaleido rendered the snapshots (the link's page script needs them)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield h, demo, f"http://127.0.0.1:{port}/"
    demo.close()


def open_page(browser, url: str, size: dict = DESKTOP, live: bool = True):  # noqa: F811
    page = browser.new_page(viewport=size)
    page.add_init_script(RECORD)
    page.goto(url, wait_until="domcontentloaded")
    if live:  # the load event has swapped the snapshots for live figures
        page.wait_for_function(LIVE, timeout=90_000)
    return page


def statuses(page) -> list[str]:
    return page.evaluate("window.__st")


def answered(page) -> list[str]:
    return [s for s in statuses(page) if s.startswith("finished")]


def status_is(page, pattern: str, timeout: float = 90_000) -> str:
    """Wait until the status line matches ``pattern`` (a regex); its text (on a timeout, the
    error lists every status line the page showed)."""
    try:
        page.locator("#status [data-testid=markdown]", has_text=re.compile(pattern)).wait_for(timeout=timeout)
    except Exception as e:
        raise AssertionError(f"status never matched {pattern!r}; it showed {statuses(page)}") from e
    return page.locator("#status [data-testid=markdown]").inner_text()


BUDGET = "compute budget (NFEs = model calls)"


def type_number(page, label: str, value: int) -> None:
    """Type a value into a slider's number box and leave it (how a visitor types N)."""
    box = page.get_by_label(f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).click()


# ---- 1. a link with settings ------------------------------------------------------------------
@SIZES
def test_a_link_leaves_the_status_line_live(browser, app, size):  # noqa: F811
    page = open_page(browser, app[2] + "?budget=128", size, live=False)  # best-of-N fits N = 4
    text = status_is(page, r"^\s*finished\b.*132 nodes.*opened from a link")
    assert "Opening the linked settings" not in page.locator("#status").inner_text(), text
    page.locator("#run-btn").click()  # a later Run shows its progress and its answer
    text = status_is(page, r"^\s*finished\b(?!.*opened from a link)")
    assert "132 nodes" in text
    assert any(s.startswith("running…") for s in statuses(page)), statuses(page)
    page.close()


# ---- 2. the digits gallery after a tree search ------------------------------------------------
@SIZES
def test_the_digits_gallery_holds_the_runs_best(browser, app, size):  # noqa: F811
    page = open_page(browser, app[2], size)
    choose(page, "backend", "Digits 8×8 (embedded model)")  # re-runs best-of-N on digits
    status_is(page, r"^\s*finished · best-of-n on digits")
    type_number(page, BUDGET, 1024)  # a tree that finishes more rollouts than the gallery holds
    status_is(page, r"^\s*finished · best-of-n on digits.*1,024 NFEs")
    choose(page, "algorithm", "tree search (DTS-style)")
    text = status_is(page, r"^\s*finished · tree on digits")
    found = re.search(r"best verifier score (\S+)", text)
    assert found, (text, statuses(page))
    best = float(found.group(1))
    page.locator("#images img").first.wait_for(timeout=30_000)
    captions = page.locator("#images .caption-label").all_text_contents()
    assert len(captions) == 16, captions
    starred = [c for c in captions if c.strip().startswith("★")]
    assert len(starred) == 1, captions  # the best image is shown, marked
    shown = float(starred[0].strip().lstrip("★").split("·")[0])
    assert shown == pytest.approx(best, rel=1e-2, abs=1e-3), (shown, text)
    page.close()


# ---- 3. Stop and a queued run -----------------------------------------------------------------
def test_stop_cancels_a_run_still_in_the_queue(browser, monkeypatch):  # noqa: F811
    """Another visitor's run holds the only slot (held by its stop probe until the test lets
    it go: an event, not a duration); this page's Run waits in the queue; Stop answers it
    "stopped before it started" and it never runs."""
    import threading

    from dts_app.ui.handlers import AppHandlers
    from dts_app.ui.layout import build_demo
    from dts_app.ui.limits import Limits, RunGuard

    armed, holding, release = threading.Event(), threading.Event(), threading.Event()

    class Held(RunGuard):
        def __call__(self) -> bool:
            if armed.is_set() and not release.is_set():
                holding.set()
                while not release.wait(0.01) and not super().__call__():
                    pass
            return super().__call__()

    monkeypatch.setattr("dts_app.ui.handlers.RunGuard", Held)
    h = AppHandlers(limits=Limits(concurrency=1))
    demo = build_demo(h, umap_warmup=False, first_view=True)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        busy = open_page(browser, url)
        armed.set()
        busy.locator("#run-btn").click()  # its run takes the slot and is held there
        assert holding.wait(90), "the first run never started"
        page = open_page(browser, url, live=False)

        def queued_run() -> bool:  # a Run (not a load event) waits in the server's queue
            queues = demo._queue.event_queue_per_concurrency_id.values()
            return any(getattr(ev.fn, "api_name", None) == "search" for q in queues for ev in q.queue)

        # the page is not live yet (its load event waits behind the held run): a click before
        # Gradio has wired the button is lost, so click until its Run is in the queue (each
        # try bounded; a second click that lands queues a second Run, stopped alike)
        page.locator("#run-btn").wait_for(state="visible", timeout=90_000)
        for _ in range(30):
            page.locator("#run-btn").click()
            for _ in range(20):
                if queued_run():
                    break
                page.wait_for_timeout(100)
            if queued_run():
                break
        assert queued_run(), "the Run never joined the queue"
        page.locator("#stop-btn").click()
        status_is(page, r"stopped")
        release.set()  # the slot frees; the queued Run starts now, and finds it was stopped
        status_is(busy, r"^\s*(finished|stopped)\b")
        status_is(page, r"before it started")
        seen = statuses(page)
        assert not any(s.startswith("running…") for s in seen), seen  # it never ran
        assert "before it started" in seen[-1], seen
        busy.close()
        page.close()
    finally:
        release.set()
        demo.close()


# ---- 4. one rule: every change re-runs, with progress ------------------------------------------
@SIZES
def test_every_change_reruns_with_progress_and_keeps_the_views(browser, app, size):  # noqa: F811
    page = open_page(browser, app[2], size)
    # open "more knobs" first: its sliders mount when it opens, and a value typed into one
    # that is still mounting is reset to the initial one (the run then used steps = 32)
    page.get_by_text("more knobs").click()
    page.wait_for_function(
        "(() => { const b = document.querySelector('input[aria-label=\"number input for steps\"]');"
        " return b && b.value === '32'; })()",
        timeout=30_000,
    )
    page.evaluate("window.__spun = false; window.__st = window.__st.slice(-1)")
    type_number(page, BUDGET, 0)  # N as set (with a budget, every algorithm fits its N to it)
    status_is(page, r"^\s*finished\b.*256 NFEs(?!.*fitted)")
    type_number(page, "N: candidates", 4)
    status_is(page, r"^\s*finished\b.*132 nodes")
    type_number(page, "steps", 50)
    status_is(page, r"^\s*finished\b.*200 NFEs")
    type_number(page, "M: branches per candidate", 3)
    choose(page, "algorithm", "search over paths (Paths-n)")
    status_is(page, r"^\s*finished · paths on gmm")
    done = len(answered(page))
    page.locator("#run-btn").click()
    page.wait_for_function(f"window.__st.filter(s => s.startsWith('finished')).length > {done}", timeout=90_000)
    seen = statuses(page)
    runs = [i for i, s in enumerate(seen) if s.startswith("running…")]
    answers = [i for i, s in enumerate(seen) if s.startswith("finished")]
    assert len(runs) >= 4 and len(answers) >= 4, seen  # N, steps, M or the algorithm, Run: each showed progress
    assert not page.evaluate("window.__spun"), "a view was covered by a progress overlay"
    assert page.locator("#tree-plot .js-plotly-plot").count() == 1
    page.close()


# ---- 5. switching backend -------------------------------------------------------------------------
#: while a run streams, what the plane and the preset show (recorded every frame)
WATCH = """
window.__mixed = []; window.__frames = 0;
(function watch() {
  const m = document.querySelector('#status [data-testid=markdown]');
  if (m && m.textContent.trim().startsWith('running…')) {
    window.__frames += 1;
    const plane = document.querySelector('#plane-plot .gtitle');
    if (plane && plane.textContent.includes('Data plane')) window.__mixed.push(m.textContent.trim());
  }
  requestAnimationFrame(watch);
})();
"""


@SIZES
def test_switching_backend_shows_one_backend(browser, app, size):  # noqa: F811
    page = open_page(browser, app[2], size)
    page.evaluate(WATCH)
    choose(page, "backend", "Digits 8×8 (embedded model)")
    status_is(page, r"^\s*finished · best-of-n on digits")
    preset = page.locator("#preset")
    assert preset.count() == 0 or not preset.is_visible() or "trap" not in preset.locator("input").input_value()
    assert page.evaluate("window.__frames") > 0  # the run streamed (and was watched)
    assert page.evaluate("window.__mixed") == []  # no gmm plane beside the digits run
    page.locator("#images img").first.wait_for(timeout=30_000)
    assert "Data plane" not in (page.locator("#plane-plot").text_content() or "")
    choose(page, "backend", "Gaussian mixture (exact)")  # and back: the gallery images go
    status_is(page, r"^\s*finished · best-of-n on gmm/trap")
    page.locator("#plane-plot .gtitle", has_text="Data plane").wait_for(timeout=30_000)
    assert page.locator("#preset input").input_value() == "trap"
    assert not page.locator("#images").is_visible()
    page.close()


def test_a_link_to_another_backend_sets_the_avoid_menu_and_a_concept_comes_with_its_q_star(browser, app):  # noqa: F811
    """6. A link to shapes offers shapes' concepts in the avoid menu (it kept gmm's
    components: the menu followed only a backend chosen by hand), and a picked concept is
    added with the Q* measured for it on the model's samples."""
    from dts_app.backends.shapes import ShapesBackend

    page = open_page(browser, app[2] + "?backend=shapes&n=4&budget=64", live=False)
    status_is(page, r"^\s*finished · best-of-n on shapes")
    choose(page, "avoid-pick", "concept: no red objects")
    page.locator("#add-pick").click()
    q = ShapesBackend(None, None).concept_q_star("no red objects")
    page.wait_for_function(
        f"document.querySelector('#obstacles textarea').value === 'concept:no red objects@q={q:.4g}'", timeout=30_000
    )
    page.close()
