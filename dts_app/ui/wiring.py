"""The events of the app's panels other than the search itself, one function per panel:
the views' tools (a gallery image selected, a tree node clicked and its path drawn in
every view, the tree layout switched) and the files panel (save, reopen, share a link).
:func:`~dts_app.ui.layout.build_demo` calls them once its components exist; each event's
failures come back as a message (:func:`~dts_app.ui.serving.guarded`), never as an error.
"""

from __future__ import annotations

from typing import Any

from .clicks import HIGHLIGHT_JS
from .serving import guarded, named
from .state import SessionState

__all__ = ["SHARE_JS", "wire_view_tools", "wire_files"]

SHARE_JS = (
    "(q) => { const u = location.origin + location.pathname + (q ? '?' + q : ''); history.replaceState(null, '', u); return u; }"
)


def wire_view_tools(gr, handlers, state, status, v: dict, tree_view, node_click, node_path) -> None:
    """The views panel's own events: select a gallery image (and, on shapes, see the scene
    the exact checker parses in it), click a tree or embedding node (its detail beside the
    tree, its root path drawn in every view by the page), switch the tree layout (a redraw
    without a new search)."""

    def on_select(st, evt: Any = None):
        """A gallery image selected (the event's data is read defensively: a forged or
        empty event selects nothing)."""
        st = st if isinstance(st, SessionState) else SessionState()
        data = getattr(evt, "_data", None)
        index = data.get("index") if isinstance(data, dict) else None
        st.selected = index if type(index) is int and 0 <= index < 4096 else None
        if st.selected is None:
            return st, "⚠️ select: no image was selected", gr.skip()
        shown = st.shown or []  # the gallery's images are some of the candidates: its index → theirs
        st.selected = shown[index] if index < len(shown) else index
        scene = handlers.describe_selected(st)  # shapes: the parsed scene and its verdict
        said = f"image {index} selected: **mark best (or selected image) as obstacle** marks this one"
        return st, said, gr.skip() if scene is None else scene

    on_select.__annotations__ = {"evt": gr.EventData}
    skip3 = lambda m: (gr.skip(), m, gr.skip())
    v["images"].select(guarded(on_select, skip3), [state], [state, status, v["node_md"]], api_name=False)

    def inspect(st, click):  # the node's detail beside the tree, and its path in every view
        md, img = handlers.inspect_node(st, click)
        return md, gr.update(value=img, visible=img is not None), handlers.node_path(st, click)

    inspect = guarded(inspect, lambda m: (m, gr.skip(), gr.skip()))
    node_click.change(inspect, [state, node_click], [v["node_md"], v["node_img"], node_path], api_name=False)
    node_path.change(None, [node_path], None, js=HIGHLIGHT_JS)

    def redraw(st, view):
        fig = handlers.redraw_tree(st, view)
        if fig is not None and isinstance(st, SessionState):
            st.drawn.add("tree")
        return gr.skip() if fig is None else fig

    tree_view.input(guarded(redraw, lambda m: gr.skip()), [state, tree_view], [v["tree"]], api_name=False)


def wire_files(gr, handlers, files: dict, state, status, controls: list, outputs: list, with_controls, search: dict) -> None:
    """The files panel: save the last run (the CLI's JSON), reopen a run file (every view
    and the controls; ``outputs`` are the views' and the controls' components and
    ``with_controls`` turns a handler's answer into their updates), and share a link with
    the settings. ``search`` is the queue settings of the search events."""
    save = named(guarded(handlers.save, lambda m: (None, m)), (), first=("state",))
    files["save"].click(save, [state], [files["saved"], status], api_name="save_run", **search)

    def reopen(st, run_file):
        out = handlers.reopen(st, run_file)
        return with_controls(out, out.pop("controls"))

    reopen = guarded(reopen, lambda m: {status: m})
    files["opened"].upload(reopen, [state, files["opened"]], outputs, api_name="open_run", **search)
    share = guarded(handlers.share_query, lambda m: gr.skip())
    files["share"].click(share, controls, [files["link"]], api_name=False).then(
        None, [files["link"]], [files["link"]], js=SHARE_JS
    )
