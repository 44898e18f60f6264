"""What a search leaves behind for people to look at: the trace, view-only diagnostics,
the best partial result, decoded final images, the anytime curve and streaming
snapshots.

The engine steps and charges; after it makes nodes or scores them it hands them to the
:class:`Recorder` (the spirit of k-diffusion's per-step ``callback``). Nothing here changes
which path a search takes. Diagnostics (both verifiers on every node, so the views can
colour the tree) are charged to ``ledger.diagnostic_calls``, never to the search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..ledger import Ledger
from ..trace import Trace
from .problem import Problem
from .types import Key, Snapshot

__all__ = ["Recorder"]


class Recorder:
    """Trace, diagnostics, best partial, decoded finals and snapshots of one run.

    Attributes:
        trace: the growing :class:`~dts_app.trace.Trace`.
        curve: ``(NFEs, best finished score)`` at every snapshot that changed either.
        callbacks: functions called with every :class:`Snapshot` (e.g. a progress bar).
    """

    def __init__(self, problem: Problem, ledger: Ledger, callbacks: Sequence[Callable[[Snapshot], None]] = ()):
        self.problem = problem
        self.ledger = ledger
        self.trace = Trace(store_x0=True)
        self.curve: list[tuple[int, float | None]] = []
        self.callbacks = list(callbacks)
        self.best_partial: tuple[float, Tensor] | None = None
        self._decoded: dict[int, Tensor] = {}

    # --- nodes ---------------------------------------------------------------------------
    def nodes(
        self,
        parents: Sequence[int | None],
        i: int,
        x0: Tensor,
        keys: Sequence[Key],
        anchor: Tensor | None,
        status: str = "kept",
        D: Tensor | None = None,
        inside: Tensor | None = None,
    ) -> list[int]:
        """One trace node per row at grid index ``i`` with clean predictions ``x0``
        ``[B, *shape]``; scores them for the views when the problem traces scores."""
        s, h = self._diagnostics(x0, anchor)
        if s is not None:
            self.note_partial(s, x0)
        return self.trace.add_batch(parents, i, self.problem.grid[i], keys, x0, status, s, h, D, inside)

    def _diagnostics(self, x0: Tensor, anchor: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        p = self.problem
        if not p.trace_scores or p.verifier is None:
            return None, None
        dec = p.backend.decode(x0)
        s = p.verifier.score(dec, anchor)
        self.ledger.charge_diagnostic(len(x0))
        h = None
        if p.heldout is not None:
            h = p.heldout.score(dec, None)
            self.ledger.charge_diagnostic(len(x0))
        return s, h

    def scored(self, node_ids: Sequence[int], s: Tensor, h: Tensor | None, x0: Tensor, decoded: Tensor | None) -> None:
        """Write charged scores onto their nodes; keep ``decoded`` images of nodes at t = 0
        (image backends) for the result."""
        for j, nid in enumerate(node_ids):
            node = self.trace.nodes[nid]
            node.score = float(s[j])
            node.heldout_score = None if h is None else float(h[j])
        if decoded is not None:
            dec = decoded.detach().float().cpu()
            for j, nid in enumerate(node_ids):
                self._decoded[nid] = dec[j]
        self.note_partial(s, x0)

    def note_partial(self, scores: Tensor, x0: Tensor) -> None:
        """Remember the best scored clean prediction (returned if no path finishes)."""
        if len(scores) == 0:
            return
        j = int(torch.argmax(scores))
        if self.best_partial is None or float(scores[j]) > self.best_partial[0]:
            self.best_partial = (float(scores[j]), x0[j].detach().clone())

    def images(self, node_ids: Sequence[int]) -> Tensor | None:
        """Decoded images ``[K, C, H, W]`` of these final nodes (None when not kept)."""
        if not node_ids or any(n not in self._decoded for n in node_ids):
            return None
        return torch.stack([self._decoded[n] for n in node_ids])

    # --- streaming -----------------------------------------------------------------------
    def snapshot(
        self, step: int, t: float | None, best_score: float | None, done: bool = False, message: str = "", result=None
    ) -> Snapshot:
        """A snapshot of the run now; appends to the anytime curve and runs the callbacks."""
        led = self.ledger.to_dict()
        point = (led["denoiser_nfe"], best_score)
        if not self.curve or self.curve[-1] != point:
            self.curve.append(point)
        snap = Snapshot(step, t, led, best_score, len(self.trace.nodes), done, message, result, self.trace)
        for cb in self.callbacks:
            cb(snap)
        return snap
