"""The app's left column: every control, built from the registries (backends, algorithms,
verifiers) and :data:`dts_app.config.FIELDS`, so new entries appear without UI code."""

from __future__ import annotations

from typing import Any

from ..config import FIELDS, ConfigError, SearchConfig
from .inputs import INPUTS, SLIDERS, TREE_VIEWS, target_value
from .serving import guarded

__all__ = [
    "STEPS", "slider_kwargs", "targets_for", "demo_values", "page_values", "build_controls", "control_updates",
    "wire_controls",
]  # fmt: skip

STEPS: dict[str, float] = {"eta": 0.1, "q_star": 0.05, "lam": 0.05, "guidance": 0.5}
_SLIDER_MAX: dict[str, float] = {
    "n": 256,
    "m": 16,
    "steps": 200,
    "budget": 8192,
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


def avoid_choices(backend: str, targets: list) -> list:
    """The "component, class or concept to avoid" menu: the targets, or on shapes the
    concepts with a measured Q* (``shapes.concepts.NAMED``; any text concept:... works)."""
    if backend == "shapes":
        from ..shapes.concepts import NAMED

        return [(f"concept: {c}", c) for c in NAMED]
    return targets


def page_values() -> dict:
    """The controls a visitor starts with (the default backend's demo settings, its compute
    budget included): what the first answer runs, what a link is read against and what a
    shared link leaves out."""
    from .inputs import input_values

    return dict(zip(INPUTS, input_values(**demo_values(SearchConfig().backend))))


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
        list(BACKENDS[d.backend].presets),
        value=d.preset,
        label="preset",
        info="Which mixture (gmm) to search in.",
        elem_id="preset",
    )
    c["target"] = gr.Dropdown(
        targets,
        value=target0,
        label="target (component / class / shapes prompt)",
        allow_custom_value=True,
        info="What the search verifier rewards. On shapes, pick an example prompt or type one: "
        "'two red circles', 'a blue square left of a yellow triangle'.",
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
    c["budget"] = gr.Slider(
        **slider_kwargs("budget", demo.get("budget", d.budget))
        | dict(
            label="compute budget (NFEs = model calls)",
            info="Every algorithm fits its N to it, so switching algorithm compares equal compute; "
            "0: each runs its own N and M as set.",
            elem_id="budget",
        )
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
            targets,
            value=None,
            label="component, class or concept to avoid",
            scale=2,
            info="Pick one, then add it as an obstacle.",
            elem_id="avoid-pick",
        )
        e["add_pick"] = gr.Button("add as obstacle", size="sm", scale=1, elem_id="add-pick")
    with gr.Row():
        e["hazard"] = gr.Button("avoid preset hazard", size="sm")
        e["mark"] = gr.Button("mark best (or selected image) as obstacle", size="sm", elem_id="mark-btn")
        e["clear"] = gr.Button("clear obstacles", size="sm", elem_id="clear-obstacles")
    with gr.Accordion("more knobs", open=False):
        for k in ("steps", "seed", "delta_f", "delta_b", "lam", "guidance"):
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


def control_updates(gr, handlers, vals: dict | None) -> dict:
    """Control values as updates by name, every name of :data:`INPUTS` and the avoid menu
    ``pick`` (choices follow the backend; a slider whose value is valid for the server but beyond its UI range gets a
    range that holds it, so the browser sends it back unchanged); no values, no updates."""
    from ..backends.registry import BACKENDS
    from ..verifiers.registry import verifiers_for

    if not vals:
        return {}
    backend = vals.get("backend")
    spec = BACKENDS.get(backend) if isinstance(backend, str) else None
    vs = verifiers_for(backend) if spec is not None else []
    names, t0 = targets_for(handlers, backend, vals.get("preset")) if spec is not None else ([], None)
    try:
        label = target_value(vals.get("target"))  # the dropdown's values are the targets themselves
    except ConfigError:
        label = vals.get("target")
    label = t0 if label is None else label  # None: the backend's default target
    choices = {"preset": list(spec.presets) if spec else None, "target": names, "verifier": vs, "heldout": vs}
    out = {}
    for k in INPUTS:
        val = label if k == "target" else vals.get(k)
        extra: dict[str, Any] = {}
        if choices.get(k) is not None:
            extra["choices"] = choices[k]
        if k == "preset":  # a backend without presets shows none (not the last one's "trap")
            extra["visible"] = bool(spec is None or spec.presets)
            val = val if extra["visible"] else None
        if k in SLIDERS and type(val) in (int, float) and val > slider_kwargs(k, None)["maximum"]:
            extra["maximum"] = val
        out[k] = gr.update(value=val, **extra)
    if spec is not None:  # the avoid menu follows the backend (a link or a run file may switch it)
        out["pick"] = gr.update(choices=avoid_choices(backend, names), value=None)
    return out


def wire_controls(gr, handlers, c: dict, e: dict, state, status, plane_click) -> tuple[list, list]:
    """The controls' own events (backend and preset choices, the obstacle helpers, a click
    on the plane); each one's failures come back as a message, never as an error.

    Returns:
        ``(after, after_ok)``: the events after which the search re-runs (the layout
        chains it: a changed control re-runs, whichever way it changed), and those after
        which it re-runs unless they answered with a warning (a click that placed nothing)."""
    from ..backends.registry import BACKENDS
    from ..verifiers.registry import verifiers_for

    d = SearchConfig()
    skip2 = lambda msg: (gr.skip(), msg)

    def on_backend(backend: str):
        if not isinstance(backend, str) or backend not in BACKENDS:
            return (gr.skip(),) * 9
        spec = BACKENDS[backend]
        vs = verifiers_for(backend)
        dv = demo_values(backend)
        preset = d.preset if d.preset in spec.presets else (spec.presets[0] if spec.presets else None)  # gmm: trap
        names, t0 = targets_for(handlers, backend, preset)
        return (
            gr.update(choices=list(spec.presets), value=preset, visible=bool(spec.presets)),
            gr.update(choices=names, value=t0),
            gr.update(choices=vs, value=dv["verifier"]),
            gr.update(choices=vs, value=dv["heldout"]),
            gr.update(choices=avoid_choices(backend, names), value=None),
            gr.update(value=dv.get("guidance", d.guidance)),
            gr.update(value=dv.get("n", d.n)),
            gr.update(value=""),  # obstacles of another backend do not carry over
            gr.update(value=dv.get("budget", d.budget)),  # the backend's own compute budget
        )

    backend_out = [c["preset"], c["target"], c["verifier"], c["heldout"], e["pick"], c["guidance"], c["n"], c["obstacles"]]
    backend_out.append(c["budget"])
    on_backend = guarded(on_backend, lambda m: (gr.skip(),) * 9)
    after = [c["backend"].select(on_backend, [c["backend"]], backend_out, api_name=False)]

    def on_preset(backend: str, preset: str):
        if not isinstance(backend, str) or backend not in BACKENDS:
            return gr.skip(), gr.skip()
        names, t0 = targets_for(handlers, backend, preset)
        return gr.update(choices=names, value=t0), gr.update(choices=names, value=None)

    on_preset = guarded(on_preset, lambda m: (gr.skip(), gr.skip()))
    after.append(c["preset"].select(on_preset, [c["backend"], c["preset"]], [c["target"], e["pick"]], api_name=False))
    keep1 = lambda m: gr.skip()
    add = guarded(handlers.add_target_obstacle, keep1)
    after.append(e["add_pick"].click(add, [c["backend"], e["pick"], c["obstacles"]], [c["obstacles"]], api_name=False))
    hazard = guarded(handlers.hazard_text, keep1)
    after.append(e["hazard"].click(hazard, [c["backend"], c["preset"], c["obstacles"]], [c["obstacles"]], api_name=False))
    after.append(e["clear"].click(lambda: "", None, [c["obstacles"]], api_name=False))

    def mark(st, text):
        sel = getattr(st, "selected", None)
        if sel is not None:
            return handlers.mark_image(st, sel, text)
        new = handlers.mark_best(st, text)
        if new == (text or ""):
            return new, "⚠️ mark: no best candidate to mark (run first; on image backends select an image)"
        return new, "best candidate marked as an obstacle"

    after_ok = [e["mark"].click(guarded(mark, skip2), [state, c["obstacles"]], [c["obstacles"], status], api_name=False)]
    place = guarded(handlers.place, skip2)
    inputs = [plane_click, c["q_star"], c["obstacles"], c["backend"]]
    after_ok.append(plane_click.change(place, inputs, [c["obstacles"], status], api_name=False))
    return after, after_ok
