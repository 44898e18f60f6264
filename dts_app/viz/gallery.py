"""Final candidates: a scatter of final points (points backends) or captioned images
(image backends, upscaled nearest-neighbour)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .tree import STATUS_COLOURS

__all__ = ["points_gallery_figure", "image_gallery", "upscale_nearest"]


def points_gallery_figure(candidates: list[dict], best_node: int | None = None, uirevision: str = "gallery") -> go.Figure:
    """Scatter of the final samples (first two coordinates), coloured by search score.

    Args:
        candidates: ``Candidate.to_dict()`` dicts (``sample``, ``score``, ``heldout_score``).
        best_node: node id of the chosen candidate (drawn as a star).
        uirevision: plotly ``uirevision``.
    """
    fig = go.Figure()
    c = [d for d in candidates if d.get("sample") is not None]
    if c:
        xy = np.asarray([(d["sample"] + [0.0])[:2] for d in c], dtype=float)
        text = [
            f"node {d['node_id']}<br>score {d['score']:.3g}<br>held-out {d['heldout_score'] if d['heldout_score'] is None else round(d['heldout_score'], 3)}"
            for d in c
        ]
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                name="final candidates",
                text=text,
                hoverinfo="text",
                marker=dict(
                    color=[d["score"] for d in c],
                    colorscale="RdYlGn",
                    size=10,
                    colorbar=dict(title="score", len=0.6),
                    line=dict(width=1, color="black"),
                ),
            )
        )
        best = [i for i, d in enumerate(c) if d["node_id"] == best_node]
        if best:
            fig.add_trace(
                go.Scatter(
                    x=xy[best, 0],
                    y=xy[best, 1],
                    mode="markers",
                    name="best",
                    marker=dict(symbol="star", size=18, color=STATUS_COLOURS["best"], line=dict(width=1, color="black")),
                )
            )
    fig.update_layout(
        title=f"Final candidates ({len(c)})",
        uirevision=uirevision,
        height=380,
        margin=dict(l=40, r=10, t=40, b=40),
        xaxis_title="x₁",
        yaxis_title="x₂",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def upscale_nearest(img: np.ndarray, size: int = 112) -> np.ndarray:
    """Nearest-neighbour upscale of ``[H, W]`` or ``[H, W, C]`` to about ``size`` pixels."""
    k = max(1, size // max(img.shape[0], 1))
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def _to_uint8(img) -> np.ndarray:
    a = np.asarray(img, dtype=float)
    if a.ndim == 3:
        a = a.transpose(1, 2, 0)
        if a.shape[2] == 1:
            a = a[:, :, 0]
    if a.min() < 0:
        a = (a + 1) / 2
    return (np.clip(a, 0, 1) * 255).astype(np.uint8)


def _unit(img) -> np.ndarray:
    """An image ``[C, H, W]`` in [0, 1] (from [0, 1] or [−1, 1])."""
    a = np.asarray(img, dtype=np.float32)
    return np.clip((a + 1) / 2 if a.min() < 0 else a, 0, 1)


def _badge(check) -> tuple[str, str]:
    """``(badge, summary)`` of a shapes check (a CheckResult or its dict); empty without one."""
    if check is None:
        return "", ""
    from ..shapes.checker import summary

    passed = check["passed"] if isinstance(check, dict) else check.passed
    return ("✓ " if passed else "✗ "), summary(check)


def image_gallery(candidates: list, best_node: int | None = None, prompt=None) -> list[tuple[np.ndarray, str]]:
    """``[(uint8 image [H, W, C], caption)]`` for gr.Gallery.

    The caption is ``[★ ][✓|✗ ]search score · held-out score[ — checks]``: ★ marks the chosen
    candidate; on the shapes backend a pass/fail badge and the prompt check's one-line
    summary (each requirement ✓, ✗ or its partial credit, :func:`dts_app.shapes.checker.summary`).

    Args:
        candidates: ``(image [C, H, W] float in [0, 1] or [-1, 1], score, heldout, node_id)``
            tuples, with an optional fifth item: the exact checker's result for the image
            (a ``CheckResult`` or its ``to_dict()``; None: none).
        best_node: the chosen candidate's node id (caption marked ★).
        prompt: a shapes prompt: RGB candidates without a check are checked against it
            (:func:`dts_app.verifiers.shapes.check_results`). None: no badges unless given.
    """
    rows = [tuple(c) + (None,) * (5 - len(c)) for c in candidates]
    todo = [i for i, r in enumerate(rows) if r[4] is None and np.ndim(r[0]) == 3 and np.shape(r[0])[0] == 3]
    if prompt is not None and todo:
        from ..verifiers.shapes import check_results

        found = check_results(np.stack([_unit(rows[i][0]) for i in todo]), prompt)
        for i, r in zip(todo, found):
            rows[i] = rows[i][:4] + (r,)
    out = []
    for img, score, held, node, check in rows:
        held_s = "–" if held is None else f"{held:.3g}"
        badge, checks = _badge(check)
        caption = f"{'★ ' if node == best_node else ''}{badge}{score:.3g} · {held_s}"  # search · held-out
        out.append((upscale_nearest(_to_uint8(img)), caption + (f" — {checks}" if checks else "")))
    return out
