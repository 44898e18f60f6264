"""Per-run obstacle metrics reported beside every result (empty without obstacles).

- ``collision_rate``: fraction of final samples within Q* of an obstacle;
- ``path_entry_rate``: fraction of final samples whose own path (the sample and its
  ancestors; rejected revert tries are not on it) came within Q* at some step, where
  entering Q* is a collision for a path planner even when the sample ends outside;
- ``min_D``: the smallest distance any recorded node reached (reverted tries included);
- ``final_min_D``: the smallest distance among final samples;
- ``reverts``: revert-and-resample retries; ``exhausted``: final paths whose tries ran out;
- ``pruned``: paths pruned; ``n_final``: finished paths.

:func:`compare_to_baseline` adds ``nfe_overhead`` and ``score_change`` against the same
run with avoidance off and η = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..trace import Node

__all__ = ["run_metrics", "sample_metrics", "compare_to_baseline"]


def _entered(nodes: Sequence[Node], final_nodes: Sequence[Node]) -> int:
    """How many of ``final_nodes`` have a node within Q* on their path to the root."""
    memo: dict[int, bool] = {}

    def inside(i: int) -> bool:
        chain = []
        while i is not None and i not in memo:
            chain.append(i)
            i = nodes[i].parent
        hit = memo.get(i, False) if i is not None else False
        for j in reversed(chain):  # from the root side down: a node is hit if it or an ancestor is
            hit = hit or bool(nodes[j].inside_q)
            memo[j] = hit
        return memo[chain[0]] if chain else hit

    return sum(inside(n.id) for n in final_nodes)


def _summary(nodes: Sequence[Node], final_nodes: Sequence[Node], exhausted: int, reverts: int) -> dict:
    ds = [n.D for n in nodes if n.D is not None]
    fd = [n.D for n in final_nodes if n.D is not None]
    return {
        "collision_rate": (sum(n.inside_q for n in final_nodes) / len(final_nodes)) if final_nodes else None,
        "path_entry_rate": (_entered(nodes, final_nodes) / len(final_nodes)) if final_nodes else None,
        "min_D": min(ds) if ds else None,
        "final_min_D": min(fd) if fd else None,
        "reverts": reverts,
        "exhausted": exhausted,
        "pruned": sum(n.status == "pruned" for n in nodes),
        "n_final": len(final_nodes),
    }


def run_metrics(nodes: Sequence[Node], candidates: Sequence, reverts: int) -> dict:
    """Metrics of a search whose finished ``candidates`` (with ``node_id`` and ``flags``)
    sit in the trace ``nodes``."""
    finals = [nodes[c.node_id] for c in candidates]
    return _summary(nodes, finals, sum("revert_exhausted" in c.flags for c in candidates), reverts)


def sample_metrics(nodes: Sequence[Node], final_ids: Sequence[int], flags: Sequence[set] | None, reverts: int, nfe: int) -> dict:
    """Metrics of plain sampling: ``final_ids`` are the nodes of the paths that reached t = 0."""
    exhausted = sum("revert_exhausted" in f for f in (flags or []))
    out = _summary(nodes, [nodes[i] for i in final_ids], exhausted, reverts)
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
