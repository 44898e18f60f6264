"""From a search result to the app's views, within the request's size limits.

:func:`decimate` picks whole root-to-leaf paths of a large trace (the best path first,
then finals, then other leaves, in a fixed pseudo-random order) so a drawn tree stays
connected and under a node count; :func:`render` draws every view from it and keeps the
answer under ``Limits.max_response_bytes``; :func:`live_tree` is the small figure a
streamed run sends while it grows.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

from ..config import SearchConfig
from .limits import Limits

__all__ = [
    "GALLERY_MAX",
    "Outputs",
    "gallery_picks",
    "budget_curve",
    "approx_bytes",
    "decimate",
    "live_tree",
    "note_figure",
    "render",
]

GALLERY_MAX = 16  # final images shown


@dataclass
class Outputs:
    """Everything one update shows (None = leave that view as it is)."""

    status: str
    tree: Any = None
    trajectories: Any = None
    embedding: Any = None
    plane: Any = None
    gallery: Any = None
    images: Any = None
    ledger: Any = None
    budget: Any = None
    hacking: Any = None
    embed_used: str = "pca"
    shown: list | None = None  # candidate indices of the gallery's images, in order

    NAMES = ("status", "tree", "trajectories", "embedding", "plane", "gallery", "images", "ledger", "budget", "hacking")

    def answer(self, state: Any, **more: Any) -> dict[str, Any]:
        """This update as a handler's answer: ``{"state": state, name: value}`` for every
        name of :attr:`NAMES` (None = leave that view as it is), plus ``more``. The layout
        maps each name to its component."""
        return {"state": state, **{k: getattr(self, k) for k in self.NAMES}, **more}


def _attr(n: Any, k: str) -> Any:
    return n[k] if isinstance(n, dict) else getattr(n, k)


def select(nodes: list, cap: int, best: int | None = None) -> list[int] | None:
    """Ids of whole root paths to draw (at most ``cap`` nodes, sorted), or None when the
    trace fits. The best path comes first, then final candidates, then other leaves."""
    if len(nodes) <= cap:
        return None
    parents = [_attr(n, "parent") for n in nodes]
    has_child = set(p for p in parents if p is not None)
    finals = [i for i, n in enumerate(nodes) if _attr(n, "status") in ("final", "best") and i != best]
    leaves = [i for i in range(len(nodes)) if i not in has_child and _attr(nodes[i], "status") not in ("final", "best")]
    rng = random.Random(0)
    rng.shuffle(finals)
    rng.shuffle(leaves)
    keep: set[int] = set()
    misses = 0
    for end in ([best] if best is not None else []) + finals + leaves:
        path = []
        cur = end
        while cur is not None and cur not in keep:
            path.append(cur)
            cur = parents[cur]
        if len(keep) + len(path) > cap:
            misses += 1
            if misses > 64:
                break
            continue
        keep.update(path)
    return sorted(keep)


def decimate(nodes: list, cap: int, best: int | None = None, with_x0: bool = True) -> tuple[dict, list[int], int | None]:
    """A tree dict (``Trace.to_dict()`` format, ids renumbered 0..k−1) of at most ``cap``
    nodes drawn from ``nodes`` (``trace.nodes`` or dicts), the original id of each, and
    the renumbered best id."""
    ids = select(nodes, cap, best)
    if ids is None:
        ids = list(range(len(nodes)))
    new = {old: i for i, old in enumerate(ids)}
    out = []
    for old in ids:
        n = nodes[old]
        d = dict(n) if isinstance(n, dict) else _shallow(n)
        if not with_x0:
            d.pop("x0", None)
        d["id"] = new[old]
        d["parent"] = new.get(d["parent"]) if d["parent"] is not None else None
        out.append(d)
    return {"nodes": out, "events": []}, ids, (new.get(best) if best is not None else None)


def _shallow(node, x0: bool = True) -> dict:
    """``Node.to_dict()`` without deep-copying x̂0 (``dataclasses.asdict`` copies every
    list; the views only read it): the same keys and values (x̂0 left out with ``x0=False``)."""
    d = dict(node) if isinstance(node, dict) else dict(vars(node))
    d["key"] = list(d.get("key", ()))
    if not x0:
        d.pop("x0", None)
    return d


def _relabel(fig, ids: list[int], total: int) -> None:
    """Hover ids back to the trace's ids and the title counting drawn / all nodes."""
    if len(ids) == total:
        return
    for tr in fig.data:
        cd = getattr(tr, "customdata", None)
        if cd is not None and tr.text is not None:
            tr.text = [f"id {ids[int(i)]}" + s[s.index("<br>") :] if "<br>" in s else s for i, s in zip(cd, tr.text)]
            tr.customdata = [ids[int(i)] for i in cd]
    fig.update_layout(title=f"Candidate tree ({len(ids):,} of {total:,} nodes drawn)")


def live_tree(trace, cap: int, view: str = "layered", algorithm: str | None = None):
    """The tree figure of a growing trace, decimated to ``cap`` nodes (no x̂0)."""
    nodes = list(trace.nodes)
    if view == "layered":  # aggregated into at most cap / 2 cells (plus the marked statuses)
        return tree_view_figure(nodes, None, view, cap, max_markers=max(50, cap // 2), algorithm=algorithm)
    from ..viz.tree import tree_figure

    tree, ids, _ = decimate(nodes, cap, None, with_x0=False)
    fig = tree_figure(tree, None, algorithm=algorithm)
    _relabel(fig, ids, len(nodes))
    return fig


def tree_view_figure(nodes: list, best: int | None, view: str, cap: int, max_markers: int = 4000, algorithm: str | None = None):
    """The tree view of a trace's nodes: ``layered`` (every node, aggregated into cells
    when large: the counts stay exact) or ``score`` (score against step, decimated to
    ``cap`` nodes along whole root paths)."""
    if view == "layered":
        from ..viz.tree_layout import layered_tree_figure

        tree = {"nodes": [_shallow(n, x0=False) for n in nodes], "events": []}
        return layered_tree_figure(tree, best, max_markers=max_markers, algorithm=algorithm)
    from ..viz.tree import tree_figure

    tree, ids, b = decimate(nodes, cap, best, with_x0=False)
    fig = tree_figure(tree, b, algorithm=algorithm)
    _relabel(fig, ids, len(nodes))
    return fig


def approx_bytes(obj: Any) -> int:
    """Approximate JSON bytes of a plotly figure (or a list of images): 14 per number,
    the length of every string."""
    if obj is None:
        return 0
    if isinstance(obj, (list, tuple)):  # gallery images (array, caption) or ledger rows
        return sum(_item_bytes(x) for x in obj)
    total = 4_000
    for tr in getattr(obj, "data", ()):
        for k in ("x", "y", "z", "customdata"):
            v = getattr(tr, k, None)
            if v is not None:
                total += 14 * _count(v)
        text = getattr(tr, "text", None)
        if isinstance(text, (list, tuple)):
            total += sum(len(s) for s in text if isinstance(s, str)) + 4 * len(text)
        marker = getattr(tr, "marker", None)
        color = getattr(marker, "color", None) if marker is not None else None
        if isinstance(color, (list, tuple)):
            total += 14 * len(color)
    return total


def _item_bytes(x: Any) -> int:
    if isinstance(x, (list, tuple)):
        return sum(_item_bytes(y) for y in x)
    size = getattr(x, "size", None)
    return 4 * size if isinstance(size, int) else len(str(x))


def _count(v: Any) -> int:
    size = getattr(v, "size", None)
    if isinstance(size, int):
        return size
    try:
        return sum(_count(x) if isinstance(x, (list, tuple)) else 1 for x in v)
    except TypeError:
        return 1


def note_figure(text: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(color="#888"))
    fig.update_layout(height=300, xaxis_visible=False, yaxis_visible=False)
    return fig


def render(
    result, cfg: SearchConfig, backend, limits: Limits, method: str = "pca", embedder=None, tree_view: str = "layered"
) -> tuple[Outputs, list[str]]:
    """All views of a :class:`~dts_app.search.types.SearchResult` within ``limits``.

    Returns:
        ``(outputs, notes)``: notes say what was drawn reduced (decimated tree, PCA instead
        of UMAP, figures shrunk to the response-size cap) and how to lift it.
    """
    nodes = result.tree.nodes
    notes: list[str] = []
    cap = limits.draw_nodes
    for _ in range(4):
        out = _draw(result, cfg, backend, limits, method, embedder, cap, tree_view)
        size = sum(approx_bytes(getattr(out, k)) for k in Outputs.NAMES[1:])
        if size <= limits.max_response_bytes or cap <= 200:
            break
        cap = max(200, int(cap * limits.max_response_bytes / size * 0.8))
    if size > limits.max_response_bytes:
        for k in ("embedding", "trajectories", "plane", "tree"):
            setattr(out, k, note_figure(f"not drawn: over {limits.max_response_bytes:,} bytes per answer"))
    if len(nodes) > cap and tree_view == "layered":
        notes.append(
            f"the tree shows all {len(nodes):,} nodes; the other figures show {min(cap, len(nodes)):,} ({limits.lift('draw_nodes')})"
        )
    elif len(nodes) > cap:
        notes.append(f"figures show {min(cap, len(nodes)):,} of {len(nodes):,} nodes ({limits.lift('draw_nodes')})")
    if cap < limits.draw_nodes:
        notes.append(f"reduced to fit {limits.max_response_bytes:,} bytes per answer ({limits.lift('max_response_bytes')})")
    if method == "umap" and out.embed_used != "umap" and min(cap, len(nodes)) > limits.umap_points:
        notes.append(f"UMAP is limited to {limits.umap_points:,} points, PCA shown ({limits.lift('umap_points')})")
    return out, notes


def _draw(result, cfg: SearchConfig, backend, limits: Limits, method: str, embedder, cap: int, tree_view: str) -> Outputs:
    from ..viz.embedding import embedding_figure
    from ..viz.gallery import image_gallery, points_gallery_figure
    from ..viz.hacking import hacking_figure, hacking_summary
    from ..viz.ledger import anytime_figure, ledger_rows
    from ..viz.plane import obstacle_geometry, plane_figure
    from ..viz.trajectories import trajectories_figure

    nodes = result.tree.nodes
    tree, ids, best = decimate(nodes, cap, result.best_node)
    cands = [c.to_dict() for c in result.candidates]
    shown = _top(cands, cap, result.best_node)
    obstacles = result.obstacles
    mixture = backend.reference_mixture()
    out = Outputs(status="")
    algo = cfg.algorithm  # one colour per algorithm in every view (viz/style.py)
    out.tree = tree_view_figure(nodes, result.best_node, tree_view, cap, algorithm=algo)
    q_stars = [o["q_star"] for o in obstacles]
    out.trajectories = trajectories_figure(tree, best, min(q_stars) if q_stars else None, algorithm=algo)
    use = method if len(tree["nodes"]) <= limits.umap_points else "pca"
    out.embedding, out.embed_used = embedding_figure(
        tree, obstacle_geometry(obstacles), use, embedder, algorithm=algo, best_node=best
    )
    if mixture is not None and mixture.dim == 2:
        tgt = result.target
        tm = [mixture.means[int(tgt)].tolist()] if isinstance(tgt, int) and 0 <= tgt < len(mixture.means) else None
        labels = [t.label for t in backend.targets()]  # the modes named as the target menu names them
        out.plane = plane_figure(mixture.to_dict(), tree, best, obstacles, tm, algorithm=algo, mode_labels=labels)
    else:
        out.plane = note_figure("the data plane is drawn for 2-D gmm presets")
    if result.images is not None:
        out.shown = gallery_picks(result.candidates, result.best_node, min(len(result.candidates), len(result.images)))
        images = result.images.numpy()
        picks = [(images[i], result.candidates[i]) for i in out.shown]
        prompt = shapes_prompt(result, cfg.backend)  # shapes: a ✓/✗ badge of the exact checker on every image
        rows = [(img, c.score, c.heldout_score, c.node_id) for img, c in picks]
        out.images = image_gallery(rows, result.best_node, prompt=prompt)
        out.gallery = note_figure("final candidates are shown as images below")
    else:
        out.gallery = points_gallery_figure(shown, result.best_node)
        out.images = []
    out.hacking = hacking_figure(hacking_summary(cands[: limits.draw_nodes], result.ledger.denoiser_nfe), algorithm=algo)
    out.ledger = ledger_rows(result.ledger.to_dict(), result.metrics, obstacles)
    out.budget = anytime_figure(budget_curve(result, cands, algo), _sweep(cfg), algorithm=algo)
    return out


def shapes_prompt(result, backend: str) -> str | None:
    """The prompt the shapes images of ``result`` are checked against (None on other backends)."""
    target = getattr(result, "target", None)
    return target if backend == "shapes" and isinstance(target, str) else None


def gallery_picks(candidates: list, best: int | None, count: int, cap: int = GALLERY_MAX) -> list[int]:
    """Indices of the candidates a gallery shows: all of them when at most ``cap``, else
    the best one and the highest search scores (in candidate order), so the run's own
    best image is always among them (a tree search finishes 64 rollouts: its first 16
    are the early ones, best-of-N's own)."""
    if count <= cap:
        return list(range(count))
    low = float("-inf")
    ranked = sorted(
        range(count),
        key=lambda i: (candidates[i].node_id != best, -(candidates[i].score if candidates[i].score is not None else low)),
    )
    return sorted(ranked[:cap])


def _top(cands: list[dict], cap: int, best: int | None) -> list[dict]:
    """At most ``cap`` candidates: the best one and the highest scores."""
    if len(cands) <= cap:
        return cands
    ranked = sorted(cands, key=lambda c: (c["node_id"] != best, -(c["score"] if c["score"] is not None else float("-inf"))))
    return sorted(ranked[:cap], key=lambda c: c["node_id"])


def budget_curve(result, cands: list[dict] | None = None, algorithm: str | None = None) -> list[tuple[float, float | None]]:
    """The run's best score against NFEs: its anytime curve, or, for best-of-N whose
    candidates all finished in one or two steps (a batched run), the best of the first k
    finished candidates at k/K of the NFEs (exact: candidate i is the same sample alone or
    among K). Other algorithms keep their own curve: SMC's particles share the whole
    budget, so its only finished score is at the end (one point, not a flat line)."""
    curve = result.curve
    if len({n for n, v in curve if v is not None}) > 2 or algorithm not in (None, "best-of-n"):
        return curve
    cands = cands if cands is not None else [c.to_dict() for c in result.candidates]
    return _finals_curve(cands, result.ledger.denoiser_nfe)


def _finals_curve(cands: list[dict], total: int) -> list[tuple[float, float]]:
    """Best score among the first k finished candidates against k/K of the NFEs spent
    (exact for best-of-N, whose candidates cost the same; an ordering view otherwise)."""
    cands = sorted(cands, key=lambda c: c["node_id"])
    out, best = [], None
    step = max(1, len(cands) // 2000)  # at most ~2,000 points
    for k, c in enumerate(cands, 1):
        best = c["score"] if best is None else max(best, c["score"])
        if k % step == 0 or k == len(cands):
            out.append((round(total * k / len(cands), 1), best))
    return out


def _sweep(cfg: SearchConfig):
    """The stored sweep of this backend/preset (``benchmarks/results/sweep_<preset>/
    sweep.json``, written by ``python -m dts_app sweep``) as a scaling figure, if any and
    if it used the same verifier (read and drawn once per file version and verifier)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / f"sweep_{cfg.preset}" / "sweep.json"
    if cfg.backend != "gmm" or not path.is_file():
        return None
    try:
        return _sweep_figure(str(path), path.stat().st_mtime_ns, cfg.backend, cfg.verifier)
    except OSError:
        return None


@functools.lru_cache(maxsize=16)
def _sweep_figure(path: str, mtime_ns: int, backend: str, verifier: str):
    """The scaling figure of one stored sweep (the views only read its traces)."""
    import json

    try:
        with open(path) as f:
            sweep = json.load(f)
        scfg = sweep.get("config", {})
        if scfg.get("backend", "gmm") != backend or scfg.get("verifier", verifier) != verifier:
            return None
        from ..viz.scaling import scaling_figure

        return scaling_figure(sweep)
    except (ValueError, KeyError, OSError, ImportError):
        return None


def placeholders(out: Outputs, text: str) -> None:
    """Every view but the tree and the status as a note (the views of another run)."""
    for k in ("trajectories", "embedding", "plane", "gallery", "budget", "hacking"):
        setattr(out, k, note_figure(text))
    out.images, out.ledger = [], []
