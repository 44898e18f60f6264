"""The page's panels, each built inside the current Blocks context and returned as a dict
of its components: the views (:func:`views_panel`), the guide (:func:`guide_panel`),
compare (:func:`compare_panel`), save / share / reopen (:func:`files_panel`) and the
lessons and findings (:func:`lessons_panel`). :func:`~dts_app.ui.layout.build_demo` lays
them out and wires their events."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CAPTIONS", "GUIDE", "LAYOUT_CSS", "PHONE_JS", "views_panel", "guide_panel", "lessons_list", "compare_panel", "files_panel",
    "lessons_panel",
]  # fmt: skip

#: one line under every view: what it shows, in plain words
CAPTIONS: dict[str, str] = {
    "tree": "Candidate tree: every dot is a partial path (top: noise at t = 1, bottom: samples at t = 0); "
    "colour is the verifier's score; the best path is marked. Click a node to inspect it.",
    "plane": "The 2-D data plane (gmm): the mixture's modes, the samples the search returned and the obstacles with "
    "their Q* regions. Click (or tap) to place an obstacle.",
    "trajectories": "Score and distance along each path: how the verifier's score of x̂0 and the distance to the "
    "nearest obstacle change from noise (t = 1) to sample (t = 0).",
    "embedding": "Every path's states projected to 2-D (PCA or UMAP): colour is time t; obstacles and their Q* "
    "regions are drawn where they fall.",
    "gallery": "The final candidates: search score against held-out score (the best is starred).",
    "budget": "Best score against model calls spent (NFEs): this run's anytime curve beside stored sweeps of every "
    "algorithm at equal budgets.",
    "hacking": "Verifier hacking: the search verifier's score against the independent judge's. Points far right but "
    "low fooled the verifier.",
}

#: "what am I looking at": short enough to project in a lecture
GUIDE = """**What am I looking at?** A flow model turns noise (t = 1) into a sample (t = 0) in small steps.
A *verifier* scores samples; *search* spends extra model calls (NFEs) to find samples it scores highly.

1. **Pick an algorithm**: best-of-N draws N independent samples and keeps the best; search over paths,
   tree search and SMC re-use promising partial paths instead of starting again.
2. **Set the compute budget**: every algorithm fits itself to it, so switching algorithm is a fair comparison.
3. **Read the status line**: the best *verifier* score, the *independent judge's* score of the same sample
   (if they disagree, the search hacked its verifier), and the model calls spent.
4. **Add obstacles** (click the plane): regions the samples must avoid; Q* is how close counts as a collision.

Start with a lesson below, or press **Run**."""

#: phone: the views come first (the controls column moves below them), nothing is wider
#: than the screen, and figure titles wrap
LAYOUT_CSS = (
    "@media (max-width: 768px) {"
    " #main-row { flex-direction: column-reverse !important; }"
    " #main-row > div { min-width: 0 !important; width: 100% !important; }"
    " .js-plotly-plot, .plot-container { max-width: 100% !important; }"
    " gradio-app, .gradio-container { overflow-x: hidden; }"
    "}"
    " .view-caption p { font-size: 0.85em; opacity: 0.8; margin: 0 0 0.6em 0; }"
)


#: on a phone the guide starts closed, so the status line and the first view are on the
#: first screen (one tap opens it again)
PHONE_JS = (
    "() => { if (window.innerWidth < 768) { const b = document.querySelector('#guide .label-wrap');"
    " if (b && b.classList.contains('open')) b.click(); } }"
)


def _caption(gr, name: str):
    return gr.Markdown(CAPTIONS[name], elem_classes=["view-caption"], elem_id=f"caption-{name}")


#: the plotted views: (name, label, elem_id), two per row
PLOTS = (
    ("tree", "candidate tree", "tree-plot"),
    ("plane", "data plane (2-D gmm)", "plane-plot"),
    ("trajectories", "score and distance trajectories", "traj-plot"),
    ("embedding", "paths in latent space", "embed-plot"),
    ("gallery", "final candidates", "gallery-plot"),
    ("budget", "budget", "budget-plot"),
    ("hacking", "verifier hacking", "hacking-plot"),
)


def views_panel(gr, first: dict) -> dict:
    """The right column's views; ``first`` holds the default answer's values, drawn with
    the page itself (no round trip before first paint)."""
    v: dict[str, Any] = {}
    v["status"] = gr.Markdown(first.get("status") or "Press **Run** (or release a slider) to search.", elem_id="status")
    for row in range(0, len(PLOTS) + 1, 2):
        with gr.Row():
            for name, label, elem_id in PLOTS[row : row + 2]:
                with gr.Column(min_width=300):
                    v[name] = gr.Plot(first.get(name), label=label, elem_id=elem_id)
                    if name == "gallery":  # image backends: the decoded finals replace the points figure
                        v["images"] = gr.Gallery(
                            label="final images: search score · held-out score (select one, then mark it as an obstacle)",
                            columns=4,
                            height="auto",
                            object_fit="contain",
                            visible=False,
                            elem_id="images",
                        )
                    _caption(gr, name)
            if row + 2 > len(PLOTS):  # beside the last view: the clicked node's detail
                with gr.Column(min_width=300):
                    v["node_md"] = gr.Markdown("Click a node of the tree to see it here.", elem_id="node-detail")
                    v["node_img"] = gr.Image(label="x̂0 of the clicked node", visible=False, height=160, elem_id="node-image")
    v["ledger"] = gr.Dataframe(first.get("ledger"), headers=["counter", "value"], label="ledger", interactive=False)
    return v


def guide_panel(gr) -> None:
    """The short "what am I looking at" and the one-click lessons (open on a first visit,
    one click to close)."""
    with gr.Accordion("What am I looking at? · lessons", open=True, elem_id="guide"):
        with gr.Row():
            with gr.Column(scale=3, min_width=320):
                gr.Markdown(GUIDE, elem_id="guide-text")
            with gr.Column(scale=2, min_width=260):
                gr.Markdown(lessons_list(), elem_id="lessons")


def lessons_list() -> str:
    """The lessons as one-click links, one line each (the caption shows once opened)."""
    from .lessons import LESSONS

    rows = [f"{i}. [{x.name}]({x.link()})" for i, x in enumerate(LESSONS, 1)]
    return "**Lessons**: one click opens the app with a lesson's settings and runs it.\n\n" + "\n".join(rows)


def compare_panel(gr) -> dict:
    """Compare: B's algorithm and changes, the button, its own status line (its errors
    show here), both figures, the budget curves and the full table."""
    from ..search.registry import ALGORITHMS
    from .compare import HEADERS

    p: dict[str, Any] = {}
    with gr.Accordion("Compare two settings at the same budget and seed", open=False, elem_id="compare"):
        with gr.Row():
            p["algo_b"] = gr.Dropdown(
                [(s.label, s.name) for s in ALGORITHMS.values()],
                value="smc",
                label="B: algorithm",
                info="A is the controls on the left.",
                elem_id="algo-b",
            )
            p["changes_b"] = gr.Textbox(
                value="",
                lines=2,
                label="B: other changes (knob=value per line)",
                placeholder="avoid=smc\nn=16",
                info="Any control's name; B keeps A's seed and budget.",
                elem_id="changes-b",
            )
            p["button"] = gr.Button("Compare", variant="primary", elem_id="compare-btn")
        p["status"] = gr.Markdown("", elem_id="compare-status")
        with gr.Row():
            p["fig_a"] = gr.Plot(label="A", elem_id="compare-a")
            p["fig_b"] = gr.Plot(label="B", elem_id="compare-b")
        with gr.Row():
            p["budget"] = gr.Plot(label="budget curves", elem_id="compare-budget")
        p["table"] = gr.Dataframe(headers=list(HEADERS), label="A against B", interactive=False, elem_id="compare-table")
    return p


def files_panel(gr) -> dict:
    """Save a run as JSON, reopen one, and a link to the current settings."""
    p: dict[str, Any] = {}
    with gr.Accordion("Save, share, reopen", open=False, elem_id="files"):
        with gr.Row():
            p["save"] = gr.Button("save run (JSON)", elem_id="save-btn")
            p["saved"] = gr.File(label="saved run", interactive=False, elem_id="saved-file")
            p["opened"] = gr.File(label="open a saved run (.json)", file_types=[".json"], type="filepath", elem_id="open-file")
        with gr.Row():
            p["share"] = gr.Button("link to these settings", elem_id="share-btn")
            p["link"] = gr.Textbox(
                label="link",
                interactive=False,
                elem_id="share-link",
                buttons=["copy"],
                info="Opens the app with these settings (the address bar shows it too).",
            )
    return p


def lessons_panel(gr) -> dict:
    """The findings of ``reproduce``, each linked to its one-click lesson, with a plot of
    the chosen one (mean ± s.e. as the report stores them)."""
    from .findings import build_findings

    with gr.Accordion("Findings: what the field claims, what we measure", open=False, elem_id="findings-panel") as acc:
        return build_findings(gr, acc)
