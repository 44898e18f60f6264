"""The app's left column: every control, built from the registries (backends, algorithms,
verifiers) and :data:`dts_app.config.FIELDS`, so new entries appear without UI code."""

from __future__ import annotations

from typing import Any

from ..config import FIELDS, ConfigError, SearchConfig
from .inputs import TREE_VIEWS

__all__ = ["STEPS", "slider_kwargs", "targets_for", "demo_values", "build_controls"]

STEPS: dict[str, float] = {"eta": 0.1, "q_star": 0.05, "lam": 0.05, "guidance": 0.5}
_SLIDER_MAX: dict[str, float] = {
    "n": 256,
    "m": 16,
    "steps": 200,
    "budget": 200_000,
    "seed": 10_000,
    "eta": 20.0,
    "q_star": 5.0,
    "delta_f": 20,
    "delta_b": 40,
}


def slider_kwargs(name: str, default: Any) -> dict:
    """Label, info line, range and step of a slider from ``FIELDS[name]`` (the UI's
    range is a comfortable sub-range; the server validates the full one)."""
    spec = FIELDS[name]
    hi = _SLIDER_MAX.get(name, spec.hi)
    return dict(
        label=spec.label,
        info=spec.help,
        minimum=spec.lo,
        maximum=hi,
        value=default,
        step=1 if spec.integer else STEPS.get(name, 0.01),
    )


def targets_for(handlers, backend: str, preset: str | None) -> tuple[list[tuple[str, Any]], Any]:
    """The target dropdown's choices ``(label, value)`` on an embedded backend and the
    default value."""
    from ..backends.registry import BACKENDS

    if backend not in BACKENDS or not BACKENDS[backend].embedded:
        return [], None
    try:
        b = handlers._problem_backend(backend, preset)
    except ConfigError:
        return [], None
    choices = [(t.label, t.value) for t in b.targets()]
    d = BACKENDS[backend].demo.get("target", b.default_target())
    return choices, next((v for _, v in choices if v == d), None)


def demo_values(backend: str) -> dict:
    """The controls a backend starts with in the app (``BackendSpec.demo``: a setting
    where search has something to find), verifiers included."""
    from ..backends.registry import BACKENDS
    from ..verifiers.registry import verifiers_for

    vs = verifiers_for(backend)
    out: dict[str, Any] = {"verifier": vs[0] if vs else None, "heldout": vs[-1] if vs else None}
    if backend in BACKENDS:
        out.update(BACKENDS[backend].demo)
    return out


def build_controls(gr, handlers, d: SearchConfig) -> tuple[dict, dict]:
    """Build the controls column inside the current Blocks context.

    Returns:
        ``(c, extra)``: ``c`` maps every :data:`~dts_app.ui.inputs.INPUTS` name to its
        component; ``extra`` holds the buttons and helpers wired by the layout.
    """
    from ..backends.registry import BACKENDS
    from ..search.registry import ALGORITHMS
    from ..verifiers.registry import verifiers_for

    targets, target0 = targets_for(handlers, d.backend, d.preset)
    demo = demo_values(d.backend)
    c: dict[str, Any] = {}
    e: dict[str, Any] = {}
    with gr.Row():
        e["run"] = gr.Button("Run", variant="primary", elem_id="run-btn")
        e["stop"] = gr.Button("Stop", variant="stop", elem_id="stop-btn")
    c["backend"] = gr.Dropdown(
        [(s.label, s.name) for s in BACKENDS.values()],
        value=d.backend,
        label="backend",
        info="Model family: gmm is exact and instant; digits is embedded; image backends need a model.",
        elem_id="backend",
    )
    with gr.Accordion("real model (dit / t2i)", open=False):
        c["model"] = gr.Textbox(
            value="",
            label="model: hub id or local directory",
            info="Loaded only when you name it (safetensors only, no remote code).",
        )
        c["prompt"] = gr.Textbox(value="", label="prompt (t2i)", info="The text the image should match.")
        c["verifier_model"] = gr.Textbox(
            value="", label="verifier model (CLIP / DINOv2)", info="A hub id or directory, or clip=...,dino=... for both."
        )
    c["preset"] = gr.Dropdown(
        list(BACKENDS[d.backend].presets), value=d.preset, label="preset", info="Which mixture (gmm) to search in."
    )
    c["target"] = gr.Dropdown(
        targets,
        value=target0,
        label="target (component / class)",
        allow_custom_value=True,
        info="What the search verifier rewards.",
    )
    c["algorithm"] = gr.Dropdown(
        [(s.label, s.name) for s in ALGORITHMS.values()],
        value=d.algorithm,
        label="algorithm",
        info="How candidates are proposed and kept.",
        elem_id="algorithm",
    )
    vs = verifiers_for(d.backend)
    c["verifier"] = gr.Dropdown(vs, value=demo["verifier"], label="search verifier", info="Score the search maximises.")
    c["heldout"] = gr.Dropdown(
        vs, value=demo["heldout"], label="held-out verifier", info="Independent score, reported only (detects hacking)."
    )
    for k in ("n", "m", "eta", "q_star"):
        c[k] = gr.Slider(**slider_kwargs(k, demo.get(k, getattr(d, k))))
    c["avoid"] = gr.Dropdown(
        list(FIELDS["avoid"].choices),
        value=d.avoid,
        label=FIELDS["avoid"].label,
        info="none | repulsion (η pushes x̂0 away) | revert (resample on entry) | prune | smc (exact constrained law).",
    )
    c["obstacles"] = gr.Textbox(
        value="",
        lines=3,
        label="obstacles (one per line; edit freely)",
        placeholder="click the true plane to place one\nball:1.5,0,0.4\npoint:0,2@q=0.5\ncomponent:1\nclass:3",
        info="Click the 2-D plane to place a point with the current Q*; or type ball:x,y,r · point:x,y · component:k · class:k; "
        "optional @eta=..,q=..",
        elem_id="obstacles",
    )
    with gr.Row(equal_height=True):
        e["pick"] = gr.Dropdown(
            targets, value=None, label="component / class to avoid", scale=2, info="Pick one, then add it as an obstacle."
        )
        e["add_pick"] = gr.Button("add as obstacle", size="sm", scale=1)
    with gr.Row():
        e["hazard"] = gr.Button("avoid preset hazard", size="sm")
        e["mark"] = gr.Button("mark best (or selected image) as obstacle", size="sm", elem_id="mark-btn")
        e["clear"] = gr.Button("clear obstacles", size="sm", elem_id="clear-obstacles")
    with gr.Accordion("more knobs", open=False):
        for k in ("steps", "budget", "seed", "delta_f", "delta_b", "lam", "guidance"):
            c[k] = gr.Slider(**slider_kwargs(k, demo.get(k, getattr(d, k))))
        c["solver"] = gr.Dropdown(list(FIELDS["solver"].choices), value=d.solver, label="solver", info=FIELDS["solver"].help)
    c["embed"] = gr.Radio(
        ["pca", "umap"], value="pca", label="embedding", info="PCA is instant; UMAP shows once warmed up (PCA meanwhile)."
    )
    c["tree_view"] = gr.Radio(
        list(TREE_VIEWS),
        value=TREE_VIEWS[0],
        label="tree view",
        info="layered: children under parents, size = visits, colour = value or score · score: score against step.",
        elem_id="tree-view",
    )
    return c, e
