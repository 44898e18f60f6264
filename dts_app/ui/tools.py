"""The app's handlers beyond running a search: switch the tree view, inspect a clicked
node, place and mark obstacles, compare two settings, save / reopen / share a run, and the
cached first view of the defaults (fast first paint).

:class:`ToolHandlers` is a base of :class:`~dts_app.ui.handlers.AppHandlers`; it uses its
``limits``, ``backend()``, ``figures()``, ``run()`` and ``_error()``.
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import ConfigError
from . import clicks
from .inputs import INPUTS, config_inputs, query_string, values_from_query
from .runfile import load_run, run_name, run_text
from .serving import SavedFiles
from .state import SessionState

__all__ = ["ToolHandlers"]


class ToolHandlers:
    """Mixin of the app's tool handlers (see the module docstring)."""

    _first: dict | None = None  # the default answer, once computed
    _first_lock: threading.Lock  # set by AppHandlers.__init__ (one per handler object)

    # ---- first paint -----------------------------------------------------------------
    def first_view(self) -> dict:
        """The answer for the default controls, computed once per server (the search is
        seeded and pure, so every visitor would compute the same views). A fresh
        :class:`SessionState` holding that result is returned each time."""
        with self._first_lock:
            if self._first is None:
                from .controls import page_values

                out = self.run(SessionState(), *page_values().values())  # the page's own controls
                if not str(out["status"]).startswith("**"):  # an error: not cached, shown as it is
                    return out
                self._first = out
        st = self._first["state"]
        return {**self._first, "state": SessionState(result=st.result, config=st.config, runs=1)}

    def describe_selected(self, state: SessionState) -> str | None:
        """Shapes: markdown of the scene the exact checker parses in the selected image and
        its verdict against the prompt (None elsewhere or without a selected image)."""
        from .render import shapes_prompt

        res, cfg, i = getattr(state, "result", None), getattr(state, "config", None), getattr(state, "selected", None)
        if res is None or cfg is None or res.images is None or i is None or not 0 <= i < len(res.images):
            return None
        prompt = shapes_prompt(res, cfg.backend)
        if prompt is None:
            return None
        from ..shapes.checker import describe

        image = res.images[i].float().clamp(0, 1)
        return f"**Image {i}: what the exact checker reads**\n\n" + describe(image, prompt)

    # ---- tree view -------------------------------------------------------------------
    def redraw_tree(self, state: SessionState, view: Any):
        """The tree figure of the session's last run in ``view`` (None: nothing to draw)."""
        from .inputs import TREE_VIEWS
        from .render import tree_view_figure

        res = getattr(state, "result", None)
        if res is None or view not in TREE_VIEWS:
            return None
        algorithm = getattr(getattr(state, "config", None), "algorithm", None)
        return tree_view_figure(res.tree.nodes, res.best_node, view, self.limits.draw_nodes, algorithm=algorithm)

    def inspect_node(self, state: SessionState, click: Any) -> tuple[str, Any]:
        """Markdown of a clicked node (id, t, both scores, value, visits, D) and its x̂0
        as an image on image backends."""
        res = getattr(state, "result", None)
        decode = None
        cfg = getattr(state, "config", None)
        if res is not None and cfg is not None and res.best is not None and res.best.dim() >= 2:
            try:
                backend = self.backend(cfg)
            except ConfigError:
                backend = None
            if backend is not None and backend.data_kind == "image":
                decode = _decoder(backend, tuple(res.best.shape))
        return clicks.node_detail(res, click, decode)

    def node_path(self, state: SessionState, click: Any) -> str:
        """The clicked node's path from its root as JSON for the page to draw in every
        view (:func:`~dts_app.ui.clicks.node_path`)."""
        return clicks.node_path(getattr(state, "result", None), click)

    # ---- obstacles by hand -----------------------------------------------------------
    def place(self, click: Any, q_star: Any, text: Any, backend: Any) -> tuple[str, str]:
        """A clicked point of the plane appended to the obstacle list (with the current Q*)."""
        return clicks.place_obstacle(click, q_star, text, backend)

    def mark_image(self, state: SessionState, index: Any, text: Any) -> tuple[str, str]:
        """The gallery's ``index``-th image appended to the obstacle list as a point."""
        return clicks.mark_candidate(getattr(state, "result", None), index, text)

    # ---- compare ---------------------------------------------------------------------
    def compare(self, state: SessionState, *values, algorithm_b: Any = None, changes_b: Any = "", cancel=None) -> dict:
        """Settings A (the controls) and B at the same budget and seed (:mod:`.compare`)."""
        from .compare import compare

        return compare(self, state, values, algorithm_b, changes_b, cancel)

    # ---- save / reopen / share -------------------------------------------------------
    @property
    def saved_files(self) -> SavedFiles:
        """Where saved runs are written (the newest ``Limits.saved_files`` are kept)."""
        files = getattr(self, "_saved", None)
        if files is None:
            files = self._saved = SavedFiles(self.limits.saved_files)
        return files

    def save(self, state: SessionState) -> tuple[str | None, str]:
        """The last run as a JSON file in the CLI's schema: ``(path, status)``."""
        res, cfg = getattr(state, "result", None), getattr(state, "config", None)
        if res is None or cfg is None:
            return None, "⚠️ save: run a search first"
        try:
            try:
                backend = self.backend(cfg)
            except ConfigError:
                backend = None
            path = self.saved_files.write(run_name(cfg), run_text(res, cfg, backend))
        except Exception as e:
            return None, self._error(e)
        return (
            path,
            f"saved: {len(res.tree.nodes):,} nodes, {len(res.candidates):,} candidates (the CLI's `search --json` schema)",
        )

    def reopen(self, state: SessionState, path: Any) -> dict:
        """A saved run shown again: the answer of :meth:`run` plus ``"controls"``, the
        control values of its settings by name; on a bad file only the status changes
        (``"controls"`` is None). The file is read under the request's limits (bytes, depth,
        nodes, deadline) and deleted afterwards when it is an upload in Gradio's cache."""
        state = state if isinstance(state, SessionState) else SessionState()
        from .render import Outputs

        try:
            if isinstance(path, (list, tuple)):
                path = path[0] if path else None
            path = getattr(path, "name", path)
            try:
                cfg, res = load_run(path, self.limits, self.clock)
            finally:
                self.saved_files.discard(path)
            from ..search.problem import resolve_target

            backend = self.backend(cfg)
            res.target = resolve_target(cfg, backend)  # a run file's config holds its target
            if res.candidates and backend.data_kind == "image" and res.best is not None:
                import torch

                xs = [c.x0 for c in res.candidates[:16]]
                if all(x.shape == res.best.shape for x in xs):
                    res.images = backend.decode(torch.stack(xs)).float().cpu()
            out = self.figures(res, cfg, backend)
        except Exception as e:
            return Outputs(status=self._error(e)).answer(state, controls=None)
        extra = out.status
        out.status = (
            f"**reopened** · {cfg.algorithm} on {cfg.backend}"
            + (f"/{cfg.preset}" if cfg.preset else "")
            + f" · {res.message} · best score {_fmt(res.best_score)} · held-out {_fmt(res.heldout_score)}"
            + f" · {res.ledger.denoiser_nfe:,} NFEs · {len(res.tree.nodes):,} nodes"
            + (f" · {extra}" if extra else "")
        )
        state.result, state.config, state.selected, state.shown = res, cfg, None, out.shown
        vals = config_inputs(cfg)
        return out.answer(state, controls={k: vals[k] for k in INPUTS})

    def share_query(self, *values) -> str:
        """URL query parameters of the controls that differ from the page's defaults."""
        from .controls import page_values

        return query_string(dict(zip(INPUTS, values)), page_values())

    def from_query(self, params: Any) -> dict:
        """Control values from a link's query parameters."""
        return values_from_query(params)


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.4g}"


def _decoder(backend, shape: tuple):
    """``flat x̂0 → uint8 image`` through the backend's decoder (None when the stored x̂0
    is a reduced copy of another size)."""
    import math

    def decode(x0: list) -> Any:
        if len(x0) != math.prod(shape):
            return None
        import torch

        from ..viz.gallery import image_gallery

        img = backend.decode(torch.tensor(x0, dtype=torch.float32).reshape(1, *shape))[0].float().cpu().numpy()
        return image_gallery([(img, 0.0, None, -1)])[0][0]

    return decode
