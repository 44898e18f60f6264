"""The trace of a search: a tree of nodes, events and streaming snapshots.

A node is one partial state of one path: ``{id, parent, step, t, score, heldout_score,
D, inside_q, status, key, value, visits, x0}``; ``value`` and ``visits`` are set by
algorithms that keep them (tree search: the backed-up value and visit count). ``status`` ``resampled`` marks a particle that had no offspring at a resampling step.
``x0`` is the clean prediction x̂0 at that node (kept
small: the UI embeds them; image backends may store a downsampled copy). ``hits`` lists
the obstacles (indices into the run's obstacles) whose Q* holds the node; it is written
only for such nodes (the engine records it with ``inside_q``; a run file written before
it existed has ``inside_q`` alone). ``status`` is
one of :data:`STATUSES`. The trace is plain data and serialises to JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import torch

__all__ = ["STATUSES", "Node", "Trace"]

STATUSES = ("kept", "pruned", "reverted", "resampled", "final", "best")


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


@dataclass
class Node:
    id: int
    parent: int | None
    step: int
    t: float
    score: float | None = None
    heldout_score: float | None = None
    D: float | None = None
    inside_q: bool = False
    status: str = "kept"
    key: tuple[int, ...] = ()
    value: float | None = None
    visits: int | None = None
    x0: list[float] | None = None
    hits: tuple[int, ...] = ()  # the obstacles (their indices) whose Q* holds this node

    def to_dict(self, with_x0: bool = True) -> dict:
        d = asdict(self)
        d["key"] = list(self.key)
        if self.hits:
            d["hits"] = list(self.hits)
        else:
            d.pop("hits")  # only nodes inside some Q* carry it
        if not with_x0:
            d.pop("x0")
        return d


@dataclass
class Trace:
    """Growing tree of :class:`Node` plus a list of events (dicts)."""

    nodes: list[Node] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    store_x0: bool = True
    max_x0_dim: int = 4096

    def add_batch(
        self,
        parents: Iterable[int | None],
        step: int,
        t: float,
        keys: Iterable[tuple[int, ...]],
        x0: torch.Tensor | None = None,
        status: str = "kept",
        scores: torch.Tensor | None = None,
        heldout: torch.Tensor | None = None,
        D: torch.Tensor | None = None,
        inside: torch.Tensor | None = None,
    ) -> list[int]:
        """Append one node per row; optional per-row tensors fill the numeric fields.

        Values become Python values once per batch
        (one device-to-host transfer, one rounding, one ``tolist`` for each field)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        parents, keys = list(parents), list(keys)
        n = len(keys)
        vecs: list = [None] * n
        if self.store_x0 and x0 is not None and n:
            flat = x0.detach().float().cpu().reshape(n, -1)
            if flat.shape[1] <= self.max_x0_dim:
                vecs = (torch.round(flat.double() * 1e6) / 1e6).tolist()  # 6 decimals

        def column(v):
            return [None] * n if v is None else torch.as_tensor(v).detach().double().cpu().reshape(n).tolist()

        sc, hc, dc = column(scores), column(heldout), column(D)
        hits: list[tuple[int, ...]] = [()] * n
        if inside is None:
            ins = [False] * n
        elif torch.as_tensor(inside).dim() == 2:  # per obstacle: which ones hold the node
            hits = [tuple(j for j, b in enumerate(row) if b) for row in torch.as_tensor(inside).bool().tolist()]
            ins = [bool(h) for h in hits]
        else:
            ins = [bool(v) for v in torch.as_tensor(inside).reshape(n).tolist()]
        start = len(self.nodes)
        t = float(t)
        for i in range(n):
            k = keys[i]
            self.nodes.append(
                Node(
                    id=start + i,
                    parent=parents[i],
                    step=step,
                    t=t,
                    score=_num(sc[i]),
                    heldout_score=_num(hc[i]),
                    D=_num(dc[i]),
                    inside_q=ins[i],
                    hits=hits[i],
                    status=status,
                    key=k if type(k) is tuple else tuple(int(v) for v in k),
                    x0=vecs[i],
                )
            )
        return list(range(start, start + n))

    def set_status(self, ids: Iterable[int], status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        for i in ids:
            self.nodes[i].status = status

    def event(self, kind: str, **data) -> None:
        self.events.append({"kind": kind, **data})

    def to_dict(self, with_x0: bool = True) -> dict:
        return {
            "nodes": [n.to_dict(with_x0) for n in self.nodes],
            "events": list(self.events),
        }
