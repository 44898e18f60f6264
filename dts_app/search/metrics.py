"""Per-run obstacle metrics reported beside every result (empty without obstacles).

- ``collision_rate``: fraction of final samples within Q* of an obstacle;
- ``path_entry_rate``: fraction of final samples whose own path (the sample and its
  ancestors; rejected revert tries are not on it) came within Q* at some step, where
  entering Q* is a collision for a path planner even when the sample ends outside;
- ``min_D``: the smallest distance any recorded node reached (reverted tries included);
- ``final_min_D``: the smallest distance among final samples;
- ``reverts``: revert-and-resample retries; ``exhausted``: final paths whose tries ran out;
- ``pruned``: paths pruned; ``n_final``: finished paths;
- ``collision_rate_by_obstacle``, ``path_entry_rate_by_obstacle``: the two rates per
  obstacle, in the run's obstacle order (a final or a path within the Q* of two obstacles
  counts for both, so these may sum to more than the overall rate).

:func:`compare_to_baseline` adds ``nfe_overhead`` and ``score_change`` against the same
run with avoidance off and η = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..trace import Node

__all__ = ["run_metrics", "sample_metrics", "compare_to_baseline"]


def _path_hits(nodes: Sequence[Node], final_nodes: Sequence[Node]) -> list[frozenset]:
    """For each of ``final_nodes``, the obstacles whose Q* some node of its path (it and
    its ancestors) entered; a node inside Q* without a per-obstacle record counts as -1."""
    memo: dict[int, frozenset] = {}

    def own(n: Node) -> frozenset:
        return frozenset(n.hits) if n.hits else (frozenset({-1}) if n.inside_q else frozenset())

    def path(i: int) -> frozenset:
        chain = []
        while i is not None and i not in memo:
            chain.append(i)
            i = nodes[i].parent
        hit = memo.get(i, frozenset()) if i is not None else frozenset()
        for j in reversed(chain):  # from the root side down: a node has its own and its ancestors'
            hit = hit | own(nodes[j])
            memo[j] = hit
        return memo[chain[0]] if chain else hit

    return [path(n.id) for n in final_nodes]


def _summary(nodes: Sequence[Node], final_nodes: Sequence[Node], exhausted: int, reverts: int, n_obstacles: int = 0) -> dict:
    ds = [n.D for n in nodes if n.D is not None]
    fd = [n.D for n in final_nodes if n.D is not None]
    k = len(final_nodes)
    paths = _path_hits(nodes, final_nodes)
    out = {
        "collision_rate": (sum(n.inside_q for n in final_nodes) / k) if k else None,
        "path_entry_rate": (sum(bool(p) for p in paths) / k) if k else None,
        "min_D": min(ds) if ds else None,
        "final_min_D": min(fd) if fd else None,
        "reverts": reverts,
        "exhausted": exhausted,
        "pruned": sum(n.status == "pruned" for n in nodes),
        "n_final": k,
    }
    if n_obstacles:  # per obstacle, in the run's obstacle order
        out["collision_rate_by_obstacle"] = [
            (sum(o in n.hits for n in final_nodes) / k) if k else None for o in range(n_obstacles)
        ]
        out["path_entry_rate_by_obstacle"] = [(sum(o in p for p in paths) / k) if k else None for o in range(n_obstacles)]
    return out


def run_metrics(nodes: Sequence[Node], candidates: Sequence, reverts: int, n_obstacles: int = 0) -> dict:
    """Metrics of a search whose finished ``candidates`` (with ``node_id`` and ``flags``)
    sit in the trace ``nodes``; with ``n_obstacles``, the two rates per obstacle too."""
    finals = [nodes[c.node_id] for c in candidates]
    return _summary(nodes, finals, sum("revert_exhausted" in c.flags for c in candidates), reverts, n_obstacles)


def sample_metrics(
    nodes: Sequence[Node], final_ids: Sequence[int], flags: Sequence[set] | None, reverts: int, nfe: int, n_obstacles: int = 0
) -> dict:
    """Metrics of plain sampling: ``final_ids`` are the nodes of the paths that reached t = 0."""
    exhausted = sum("revert_exhausted" in f for f in (flags or []))
    out = _summary(nodes, [nodes[i] for i in final_ids], exhausted, reverts, n_obstacles)
    out["denoiser_nfe"] = nfe
    return out


def compare_to_baseline(metrics: dict, result_nfe: int, best_score, baseline_nfe: int, baseline_score) -> dict:
    """Add ``nfe_overhead`` (relative extra NFEs) and ``score_change`` versus a baseline run
    (same config with ``avoid="none"``, η = 0)."""
    out = dict(metrics)
    out["baseline_nfe"] = baseline_nfe
    out["nfe_overhead"] = (result_nfe / baseline_nfe - 1.0) if baseline_nfe else None
    out["baseline_score"] = baseline_score
    out["score_change"] = None if best_score is None or baseline_score is None else best_score - baseline_score
    return out
