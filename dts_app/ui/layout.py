"""The Gradio Blocks of the exploration app: the controls column (:mod:`.controls`), the
views, the tools (compare, save / share / reopen, node inspector) and their events.
:func:`build_demo` is the only entry point; ``app.py`` launches it.
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import SearchConfig
from .clicks import CLICK_JS
from .compare import NAMES as COMPARE_NAMES
from .controls import STEPS, build_controls, control_updates, slider_kwargs, wire_controls
from .handlers import INPUTS, LIVE, SLIDERS, AppHandlers, Outputs
from .lessons import lesson_note, opening_values
from .limits import configure_heap, configure_threads
from .panels import LAYOUT_CSS, PHONE_JS, compare_panel, files_panel, guide_panel, lessons_panel, views_panel
from .serving import (
    call_in_thread,
    calm_queue,
    client_alive,
    enqueued_at,
    keep_session_slots,
    named,
    own_error_messages,
    raw_values,
    stream_in_thread,
)
from .snapshot import SNAPSHOT_CSS, hydrate_js, plotly_chunk, snapshots
from .state import SessionState
from .wiring import wire_files, wire_view_tools

__all__ = ["build_demo", "gpu_decorator", "slider_kwargs", "STEPS"]

#: every 15 minutes, Gradio deletes the files of this app older than an hour (uploads that no
#: event read, images of the gallery); saved runs and read uploads are deleted sooner
DELETE_CACHE = (900, 3600)
#: the choices whose change re-runs the search at once (backend and preset re-run after
#: their dependent controls are set; the tree view only redraws)
CHOICES = ("target", "algorithm", "verifier", "heldout", "solver", "avoid", "embed")


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


def build_demo(handlers: AppHandlers | None = None, umap_warmup: bool = True, first_view: bool | None = None):
    """Build the app.

    Args:
        handlers: the handler object (a fresh one by default).
        umap_warmup: start the background warm-ups: the default backend's verifiers
            and UMAP (tests turn them off).
        first_view: compute the default answer now (a few seconds) and build the page
            with it, so a visitor sees every view as soon as the page is drawn
            (default: as ``umap_warmup``; without it the page asks on load).

    Returns:
        A ``gr.Blocks`` with queueing configured.
    """
    import gradio as gr

    from ..viz.embedding import UmapEmbedder

    if handlers is None:
        handlers = AppHandlers(embedder=UmapEmbedder())
    limits = handlers.limits
    configure_threads(limits.concurrency)  # torch threads × concurrent searches ≤ cores
    configure_heap()  # freed figures go back to the system: no high-water plateau
    first: dict[str, Any] = {}
    initial = SessionState()
    static: dict[str, Any] = {}  # image stand-ins of the default views (static first paint)
    if umap_warmup if first_view is None else first_view:
        t = handlers.first_view()  # seeded and pure: every visitor gets the same default answer
        if str(t["status"]).startswith("**"):
            first = {k: t[k] for k in Outputs.NAMES}
            initial = t["state"]
            static = snapshots(first) or {}
    elif umap_warmup:
        handlers.warm_up()  # the default backend and verifiers
    if umap_warmup:
        if handlers.embedder is not None:
            handlers.embedder.warm_up_async()
    d = SearchConfig()
    with gr.Blocks(title="DTS Explorer", delete_cache=DELETE_CACHE) as demo:
        state = gr.State(initial)  # copied per session
        gr.Markdown(
            "# DTS Explorer\nInference-time search in flow models: watch candidates branch, get scored, "
            "and steer around obstacles. Every change of a control re-runs the search."
            + (_public_note(limits) if limits.public else "")
        )
        with gr.Row(elem_id="main-row"):  # on a phone the views come first (LAYOUT_CSS)
            with gr.Column(scale=1, min_width=320):
                c, e = build_controls(gr, handlers, d)
            with gr.Column(scale=3):
                guide_panel(gr)
                v = views_panel(gr, {**first, **static})
                cmp = compare_panel(gr)
                files = files_panel(gr)
                lessons_panel(gr)
        plane_click = gr.Textbox(visible="hidden", elem_id="plane-click", info="the last click on the plane (set by the page)")
        node_click = gr.Textbox(visible="hidden", elem_id="node-click", info="the last clicked tree node (set by the page)")
        node_path = gr.Textbox(visible="hidden", elem_id="node-path", info="the clicked node's path (drawn by the page)")
        status = v["status"]
        controls = [c[k] for k in INPUTS]
        inputs = [state] + controls
        views = {"state": state, **{k: v[k] for k in Outputs.NAMES}}  # a handler's answer's names
        outputs = list(views.values())
        cmp_views = {k: state if k == "state" else cmp[k] for k in COMPARE_NAMES}  # compare's answer's names

        def keep(answer: dict) -> dict:
            """A handler's answer as ``{component: value}``; a None leaves its component as it is."""
            answer = dict(answer)
            st = answer.get("state")
            if isinstance(st, SessionState):  # these views now show this session's own answer
                st.drawn |= {k for k in Outputs.NAMES if answer.get(k) is not None and k != "status"}
            images = answer.get("images")
            if isinstance(images, list):  # image backends: the gallery replaces the points figure
                answer["images"] = gr.update(value=images or None, visible=bool(images))
                answer["gallery"] = gr.update(value=answer.get("gallery"), visible=not images)
            return {views[k]: x for k, x in answer.items() if k in views and x is not None}

        def with_controls(answer: dict, vals: dict | None) -> dict:
            """An answer and the controls set to ``vals`` (None: the controls stay)."""
            settable = {**c, "pick": e["pick"]}
            return {**keep(answer), **{settable[k]: u for k, u in control_updates(gr, handlers, vals).items()}} or gr.skip()

        # compare's B and the private events' inputs too: the server validates, with messages
        raw_values(controls + [cmp["algo_b"], cmp["changes_b"], e["pick"], plane_click, node_click])
        run_sync, stream_sync = gpu_decorator(handlers.run), gpu_decorator(handlers.stream)
        compare_sync = gpu_decorator(handlers.compare)

        def _alive(request):
            return lambda: client_alive(demo, getattr(request, "session_hash", None))

        async def run_live(*a):
            *vals, request = a
            cancel, since = threading.Event(), enqueued_at(demo, request)
            return (
                keep(await call_in_thread(lambda: run_sync(*vals, cancel=cancel, enqueued=since), cancel, _alive(request)))
                or gr.skip()
            )

        async def run_stream(*a):
            *vals, request = a
            cancel, since = threading.Event(), enqueued_at(demo, request)  # a Stop after `since` cancels it
            async for t in stream_in_thread(lambda: stream_sync(*vals, cancel=cancel, enqueued=since), cancel, _alive(request)):
                yield keep(t) or gr.skip()

        async def run_after(*a):
            """The run chained to a click or mark, unless that answered with a warning."""
            st, said, *rest = a
            if isinstance(said, str) and said.lstrip().startswith("⚠️"):
                yield gr.skip()  # nothing changed: the warning stays
                return
            async for t in run_stream(st, *rest):
                yield t

        async def on_load(st, request: gr.Request):
            """The first view: the cached default answer, or the settings of a link."""
            params = handlers.from_query(getattr(request, "query_params", None))
            if not params and first:  # the page was built with the default answer: as images,
                fresh = set(static) - getattr(st, "drawn", set())  # whose live figures go now, where
                return {v[k]: first[k] for k in fresh} or gr.skip()  # nothing newer was drawn
            if not params:
                return with_controls(await call_in_thread(handlers.first_view, threading.Event()), None)
            vals = opening_values(params)  # the defaults, the linked backend's demo settings, the link
            cancel = threading.Event()
            t = await call_in_thread(lambda: run_sync(SessionState(), *[vals[k] for k in INPUTS], cancel=cancel), cancel)
            if str(t["status"]).startswith("**"):
                t["status"] += " · opened from a link" + (f" · {lesson_note(vals)}" if lesson_note(vals) else "")
            return with_controls(t, vals)

        on_load.__annotations__ = {"request": gr.Request}  # (string annotations are not resolved)

        async def run_compare(*a):
            st, *vals, ab, cb, request = a
            cancel = threading.Event()
            work = lambda: compare_sync(st, *vals, algorithm_b=ab, changes_b=cb, cancel=cancel)
            out = await call_in_thread(work, cancel, _alive(request))
            return {cmp_views[k]: x for k, x in out.items() if x is not None} or gr.skip()

        named(run_compare, (*INPUTS, "algorithm_b", "changes_b"), gr.Request)
        named(run_live, INPUTS, gr.Request)
        named(run_stream, INPUTS, gr.Request)
        named(run_after, INPUTS, gr.Request, first=("state", "status"))
        search = dict(concurrency_limit=limits.concurrency, concurrency_id="search")
        # one rule for every control: a change re-runs the search, streamed like Run, its
        # progress on the status line (the views keep their figures until the answer). Each
        # request joins the queue at once (so Stop reaches one still waiting); the newest
        # request of a session to start wins, an older one ends without drawing
        shown = dict(show_progress="minimal", show_progress_on=[status], trigger_mode="multiple", **search)
        triggers = [e["run"].click, *(c[k].release for k in SLIDERS), *(c[k].select for k in CHOICES)]
        triggers += [c["obstacles"].blur, *(c[k].submit for k in ("model", "prompt", "verifier_model"))]
        gr.on(triggers, run_stream, inputs, outputs, api_name="search", **shown)
        after, after_ok = wire_controls(gr, handlers, c, e, state, status, plane_click)
        for event in after:  # a backend or preset choice, an obstacle helper: its controls, then the run
            event.then(run_stream, inputs, outputs, api_name=False, **shown)
        for event in after_ok:
            event.then(run_after, [state, status, *controls], outputs, api_name=False, **shown)
        # the API's one-answer runs (/release_n, …), as before; no control of the page calls them
        api_only = gr.Button(visible=False, elem_id="api-only")
        live = [
            api_only.click(run_live, inputs, outputs, trigger_mode="always_last", api_name=f"release_{k}", **search) for k in LIVE
        ]
        hydrate = hydrate_js(plotly_chunk(), len(static)) if static else None  # images, plotly.js, figures
        progress = "hidden" if static else "full"  # no overlay on the snapshots while plotly loads
        set_controls = outputs + controls + [e["pick"]]  # a link or a run file sets the controls and the avoid menu
        live.append(demo.load(on_load, [state], set_controls, js=hydrate, show_progress=progress, api_name=False, **search))
        demo.load(None, None, None, js=CLICK_JS)
        demo.load(None, None, None, js=PHONE_JS)  # a phone starts with the guide closed: results first
        cmp_outputs = list(cmp_views.values())
        cmp_inputs = inputs + [cmp["algo_b"], cmp["changes_b"]]
        live.append(cmp["button"].click(run_compare, cmp_inputs, cmp_outputs, api_name="compare", **search))
        # Stop: streamed runs end within a step (the running one shows what it found, a
        # queued one answers "stopped before it started"); the one-answer events are cancelled
        e["stop"].click(handlers.stop, [state], [state, status], queue=False, cancels=live, api_name="stop")

        wire_view_tools(gr, handlers, state, status, v, c["tree_view"], node_click, node_path)
        wire_files(gr, handlers, files, state, status, controls, set_controls, with_controls, search)
        handlers.saved_files.cache = files["saved"].GRADIO_CACHE  # saved runs live where Gradio serves them from
    demo.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    calm_queue(demo)  # an idle server does not poll its queue every millisecond
    keep_session_slots()
    own_error_messages()  # the framework's own errors reach a visitor as one line of ours
    launch = demo.launch

    def launch_bounded(*args, **kwargs):  # whoever launches gets the sessions bound of the limits
        kwargs.setdefault("state_session_capacity", limits.sessions)
        kwargs.setdefault("max_file_size", limits.max_file_bytes)  # bigger uploads are refused before they land
        kwargs.setdefault("show_error", False)  # framework errors: our one line (own_error_messages)
        kwargs.setdefault("css", SNAPSHOT_CSS + LAYOUT_CSS)
        return launch(*args, **kwargs)

    demo.launch = launch_bounded
    demo.static_views = sorted(static)  # the views drawn as image snapshots until plotly is loaded
    return demo
