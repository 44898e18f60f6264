"""The Gradio Blocks of the exploration app, built from the registries (backends,
algorithms, verifiers) and :data:`dts_app.config.FIELDS`, so new entries appear without
UI code. :func:`build_demo` is the only entry point; ``app.py`` launches it.
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import FIELDS, ConfigError, SearchConfig
from .handlers import INPUTS, LIVE, AppHandlers, Outputs
from .limits import configure_threads
from .serving import call_in_thread, client_alive, named, raw_values, stream_in_thread
from .state import SessionState

__all__ = ["build_demo", "gpu_decorator", "slider_kwargs", "STEPS"]

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


def _targets(handlers: AppHandlers, backend: str, preset: str | None) -> tuple[list[str], str | None]:
    from ..backends.registry import BACKENDS

    if backend not in BACKENDS or not BACKENDS[backend].embedded:
        return [], None
    try:
        b = handlers._problem_backend(backend, preset)
    except ConfigError:
        return [], None
    names = [t.label for t in b.targets()]
    d = b.default_target()
    return names, next((n for n in names if n.split(":", 1)[0].strip() == str(d)), None)


def _public_note(limits) -> str:
    """The header line of a public server: what one request may cost."""
    return (
        f"\n\n*Public demo: each request may spend at most {limits.nfe_points:,} NFEs on the mixture "
        f"({limits.nfe_embedded_image:,} on digits), {limits.max_nodes:,} tree nodes and {limits.deadline_s:g} s; "
        "run the app locally (`make run`) to lift the limits.*"
    )


def gpu_decorator(fn):
    """``spaces.GPU(fn)`` on a Hugging Face ZeroGPU Space; ``fn`` itself when the
    ``spaces`` package is absent (a no-op everywhere else)."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)


def build_demo(handlers: AppHandlers | None = None, umap_warmup: bool = True):
    """Build the app.

    Args:
        handlers: the handler object (a fresh one by default).
        umap_warmup: start the background warm-ups: the default backend and its
            verifiers, and UMAP (tests turn them off).

    Returns:
        A ``gr.Blocks`` with queueing configured.
    """
    import gradio as gr

    from ..backends.registry import BACKENDS
    from ..search.registry import ALGORITHMS
    from ..verifiers.registry import verifiers_for
    from ..viz.embedding import UmapEmbedder

    if handlers is None:
        handlers = AppHandlers(embedder=UmapEmbedder())
    limits = handlers.limits
    configure_threads(limits.concurrency)  # torch threads × concurrent searches ≤ cores
    if umap_warmup:
        handlers.warm_up()  # the default backend and verifiers
        if handlers.embedder is not None:
            handlers.embedder.warm_up_async()
    d = SearchConfig()
    targets, target0 = _targets(handlers, d.backend, d.preset)
    with gr.Blocks(title="DTS Explorer") as demo:
        state = gr.State(SessionState())
        gr.Markdown(
            "# DTS Explorer\nInference-time search in flow models: watch candidates branch, get scored, "
            "and steer around obstacles. On the Gaussian mixture, releasing η, Q*, N or M re-runs the search."
            + (_public_note(limits) if limits.public else "")
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                c: dict[str, Any] = {}
                with gr.Row():
                    run_btn = gr.Button("Run", variant="primary", elem_id="run-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                c["backend"] = gr.Dropdown(
                    [(s.label, s.name) for s in BACKENDS.values()],
                    value=d.backend,
                    label="backend",
                    info="Model family: gmm is exact and instant; image backends need a model.",
                )
                with gr.Accordion("real model (dit / t2i)", open=False):
                    c["model"] = gr.Textbox(
                        value="",
                        label="model: hub id or local directory",
                        info="Loaded only when you name it (safetensors only, no remote code).",
                    )
                    c["prompt"] = gr.Textbox(value="", label="prompt (t2i)", info="The text the image should match.")
                    c["verifier_model"] = gr.Textbox(
                        value="",
                        label="verifier model (CLIP / DINOv2)",
                        info="A hub id or directory, or clip=...,dino=... for both.",
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
                )
                vs = verifiers_for(d.backend)
                c["verifier"] = gr.Dropdown(vs, value=d.verifier, label="search verifier", info="Score the search maximises.")
                c["heldout"] = gr.Dropdown(
                    vs,
                    value="supervised" if "supervised" in vs else d.heldout,
                    label="held-out verifier",
                    info="Independent score, reported only (detects hacking).",
                )
                for k in ("n", "m", "eta", "q_star"):
                    c[k] = gr.Slider(**slider_kwargs(k, getattr(d, k)))
                c["avoid"] = gr.Dropdown(
                    list(FIELDS["avoid"].choices),
                    value=d.avoid,
                    label=FIELDS["avoid"].label,
                    info="none | repulsion (η pushes x̂0 away) | revert (resample on entry) | prune.",
                )
                c["obstacles"] = gr.Textbox(
                    value="",
                    lines=3,
                    label="obstacles (one per line)",
                    placeholder="ball:1.5,0,0.4\npoint:0,2\ncomponent:1\nclass:3",
                    info="ball:x,y,r · point:x,y · component:k (gmm) · class:k (digits); optional @eta=..,q=..",
                )
                with gr.Row(equal_height=True):
                    pick = gr.Dropdown(
                        targets,
                        value=None,
                        label="component / class to avoid",
                        scale=2,
                        info="Pick one, then add it as an obstacle.",
                    )
                    add_pick = gr.Button("add as obstacle", size="sm", scale=1)
                with gr.Row():
                    hazard = gr.Button("avoid preset hazard", size="sm")
                    mark = gr.Button("mark best as obstacle", size="sm")
                with gr.Accordion("more knobs", open=False):
                    for k in ("steps", "budget", "seed", "delta_f", "delta_b", "lam", "guidance"):
                        c[k] = gr.Slider(**slider_kwargs(k, getattr(d, k)))
                    c["solver"] = gr.Dropdown(
                        list(FIELDS["solver"].choices), value=d.solver, label="solver", info=FIELDS["solver"].help
                    )
                c["embed"] = gr.Radio(
                    ["pca", "umap"],
                    value="pca",
                    label="embedding",
                    info="PCA is instant; UMAP shows once warmed up (PCA meanwhile).",
                )
            with gr.Column(scale=3):
                status = gr.Markdown("Press **Run** (or release a slider) to search.", elem_id="status")
                with gr.Row():
                    tree = gr.Plot(label="candidate tree", elem_id="tree-plot")
                    plane = gr.Plot(label="true plane (2-D gmm)", elem_id="plane-plot")
                with gr.Row():
                    traj = gr.Plot(label="score and distance trajectories")
                    embed = gr.Plot(label="paths in latent space")
                with gr.Row():
                    gallery = gr.Plot(label="final candidates")
                    budget_fig = gr.Plot(label="budget")
                images = gr.Gallery(label="final images", columns=8, height="auto", visible=False)
                ledger = gr.Dataframe(headers=["counter", "value"], label="ledger", interactive=False)
                with gr.Accordion("Findings: what the field claims, what we measure", open=False):
                    from .findings import findings_markdown

                    gr.Markdown(findings_markdown(), elem_id="findings")
        assert set(c) == set(INPUTS), sorted(set(INPUTS) ^ set(c))
        inputs = [state] + [c[k] for k in INPUTS]
        outputs = [state, status, tree, traj, embed, plane, gallery, images, ledger, budget_fig]

        images_at = 1 + Outputs.NAMES.index("images")  # after the state

        def keep(t: tuple) -> tuple:
            t = list(t)
            if isinstance(t[images_at], list):  # images: shown only for image backends
                t[images_at] = gr.update(value=t[images_at] or None, visible=bool(t[images_at]))
            return tuple(gr.skip() if v is None else v for v in t)

        raw_values([c[k] for k in INPUTS])
        run_sync, stream_sync = gpu_decorator(handlers.run), gpu_decorator(handlers.stream)

        async def run_live(*a):
            *vals, request = a
            cancel = threading.Event()
            alive = lambda: client_alive(demo, getattr(request, "session_hash", None))
            return keep(await call_in_thread(lambda: run_sync(*vals, cancel=cancel), cancel, alive))

        async def run_stream(*a):
            *vals, request = a
            cancel = threading.Event()
            alive = lambda: client_alive(demo, getattr(request, "session_hash", None))
            async for t in stream_in_thread(lambda: stream_sync(*vals, cancel=cancel), cancel, alive):
                yield keep(t)

        named(run_live, INPUTS, gr.Request)
        named(run_stream, INPUTS, gr.Request)
        search = dict(concurrency_limit=limits.concurrency, concurrency_id="search")
        run_btn.click(run_stream, inputs, outputs, api_name="search", **search)
        live = [
            c[k].release(run_live, inputs, outputs, trigger_mode="always_last", api_name=f"release_{k}", **search) for k in LIVE
        ]
        live.append(demo.load(run_live, inputs, outputs, api_name=False, **search))
        stop_btn.click(handlers.stop, [state], [state, status], queue=False, cancels=live, api_name="stop")

        def on_backend(backend: str):
            if backend not in BACKENDS:
                return (gr.skip(),) * 5
            spec = BACKENDS[backend]
            vs = verifiers_for(backend)
            names, t0 = _targets(handlers, backend, spec.presets[0] if spec.presets else None)
            return (
                gr.update(choices=list(spec.presets), value=spec.presets[0] if spec.presets else None),
                gr.update(choices=names, value=t0),
                gr.update(choices=vs, value=vs[0] if vs else None),
                gr.update(choices=vs, value=vs[-1] if vs else None),
                gr.update(choices=names, value=None),
            )

        c["backend"].change(
            on_backend, [c["backend"]], [c["preset"], c["target"], c["verifier"], c["heldout"], pick], api_name=False
        )

        def on_preset(backend: str, preset: str):
            if backend not in BACKENDS:
                return gr.skip(), gr.skip()
            names, t0 = _targets(handlers, backend, preset)
            return gr.update(choices=names, value=t0), gr.update(choices=names, value=None)

        c["preset"].change(on_preset, [c["backend"], c["preset"]], [c["target"], pick], api_name=False)
        add_pick.click(handlers.add_target_obstacle, [c["backend"], pick, c["obstacles"]], [c["obstacles"]], api_name=False)
        hazard.click(handlers.hazard_text, [c["backend"], c["preset"], c["obstacles"]], [c["obstacles"]], api_name=False)
        mark.click(handlers.mark_best, [state, c["obstacles"]], [c["obstacles"]], api_name=False)
    demo.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    return demo
