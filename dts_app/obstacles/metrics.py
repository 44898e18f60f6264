"""Per-run obstacle metrics reported beside every search result.

``collision_rate``: fraction of final samples within Q* of an obstacle; ``min_D``: the
smallest distance any recorded node reached; ``reverts``: revert-and-resample retries;
``exhausted``: final paths whose revert tries ran out; ``pruned``: nodes pruned.
Empty when the problem has no obstacles.
"""

from __future__ import annotations


def run_metrics(engine, result) -> dict:
    nodes = engine.trace.nodes
    av = engine.problem.avoidance
    if av is None:
        return {}
    finals = [nodes[c.node_id] for c in result.candidates]
    ds = [n.D for n in nodes if n.D is not None]
    return {
        "collision_rate": (sum(n.inside_q for n in finals) / len(finals)) if finals else None,
        "min_D": min(ds) if ds else None,
        "reverts": engine.ledger.reverts,
        "exhausted": sum("revert_exhausted" in c.flags for c in result.candidates),
        "pruned": sum(n.status == "pruned" for n in nodes),
        "n_final": len(finals),
    }
