"""The search's data types: what the engine steps (:class:`Beam`), what a finished path is
(:class:`Candidate`), what a search returns (:class:`SearchResult`) and what a streaming
search yields (:class:`Snapshot`).

Shapes: ``B`` rows (paths) per beam, ``*shape`` the backend's latent shape, ``K``
finished candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..ledger import Ledger
from ..trace import Trace

__all__ = ["Key", "SearchStopped", "NonFiniteError", "Beam", "Candidate", "SearchResult", "Snapshot"]

Key = tuple[int, ...]


class SearchStopped(RuntimeError):
    """Raised inside an algorithm when the user asked to stop."""


class NonFiniteError(RuntimeError):
    """A NaN or inf in a velocity, state or score: the run stops with this message and
    keeps what it had found (the CLI exits non-zero; the app shows a status line)."""


@dataclass
class Beam:
    """A batch of partial paths at grid index ``i`` (time ``grid[i]``).

    Every state comes with its velocity: the engine evaluates the field once at each new
    state, and that one evaluation serves both the node's clean prediction x̂0 (trace,
    verifiers, obstacles) and the first stage of the next step, so an Euler path of S
    steps costs exactly S NFEs.

    Attributes:
        x: states ``[B, *shape]``.
        v: velocities at ``x`` ``[B, *shape]`` (zeros at t = 0, where x̂0 = x).
        i: grid index.
        keys: one stream key per row (children of a row get ``key + (c,)``).
        node_ids: each row's trace node.
        anchor: x̂0 recorded at the first grid time ≤ the verifier's ``anchor_t``
            (self-supervised verifiers) ``[B, *shape]``, NaN in rows that have not reached
            it; ``None`` when the verifier needs none.
        flags: per-row flags set on the way (e.g. ``"revert_exhausted"``).
        anchor_node: per row, the trace node where its anchor was recorded (None: not
            yet); a row is scorable by an anchor verifier only at a later node.
        logw: particle log-weights ``[B]`` (SMC steering and the SMC obstacle mode), or
            None (all equal).
        aux: per-row tensors ``[B, ...]`` an algorithm carries along (e.g. SMC's last
            rewards, ``logphi`` of the obstacle potential); indexed with the rows.
    """

    x: Tensor
    v: Tensor
    i: int
    keys: list[Key]
    node_ids: list[int]
    anchor: Tensor | None = None
    flags: list[set] | None = None
    anchor_node: list[int | None] | None = None
    logw: Tensor | None = None
    aux: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def take(self, idx: Sequence[int]) -> Beam:
        """Rows ``idx`` (repeats allowed) as a new beam."""
        idx = list(idx)
        it = torch.as_tensor(idx, dtype=torch.long)
        return Beam(
            self.x[it],
            self.v[it],
            self.i,
            [self.keys[j] for j in idx],
            [self.node_ids[j] for j in idx],
            None if self.anchor is None else self.anchor[it],
            None if self.flags is None else [set(self.flags[j]) for j in idx],
            None if self.anchor_node is None else [self.anchor_node[j] for j in idx],
            None if self.logw is None else self.logw[it],
            None if self.aux is None else {k: v[it] for k, v in self.aux.items()},
        )

    @staticmethod
    def cat(beams: Sequence[Beam]) -> Beam:
        """Rows of several beams at the same grid index, in order, as one beam (so their
        next steps go through the denoiser in one batch)."""
        beams = [b for b in beams if len(b)]
        if not beams:
            raise ValueError("cannot concatenate empty beams")
        if len({b.i for b in beams}) != 1:
            raise ValueError("beams must be at the same grid index")

        def opt(get, join):
            vals = [get(b) for b in beams]
            return None if any(v is None for v in vals) else join(vals)

        return Beam(
            torch.cat([b.x for b in beams]),
            torch.cat([b.v for b in beams]),
            beams[0].i,
            [k for b in beams for k in b.keys],
            [n for b in beams for n in b.node_ids],
            opt(lambda b: b.anchor, torch.cat),
            opt(lambda b: b.flags, lambda v: [f for fl in v for f in fl]),
            opt(lambda b: b.anchor_node, lambda v: [a for al in v for a in al]),
            opt(lambda b: b.logw, torch.cat),
            opt(lambda b: b.aux, lambda v: {k: torch.cat([a[k] for a in v]) for k in v[0]}),
        )


@dataclass
class Candidate:
    """A finished path.

    Attributes:
        x0: its clean sample ``[*shape]`` (latent for image backends).
        score, heldout_score: search-verifier and held-out scores.
        node_id, key: its final trace node and stream key.
        flags: flags it collected on the way.
    """

    x0: Tensor
    score: float
    heldout_score: float | None
    node_id: int
    key: Key
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "sample": self.x0.flatten().tolist() if self.x0.numel() <= 4096 else None,
            "score": self.score,
            "heldout_score": self.heldout_score,
            "node_id": self.node_id,
            "key": list(self.key),
            "flags": list(self.flags),
        }


@dataclass
class SearchResult:
    """What every search returns; the CLI and the app render it and re-derive nothing.

    Attributes:
        best: the chosen clean sample ``[*shape]``, or ``None`` if nothing was scored.
        best_score, heldout_score: its search and held-out scores.
        candidates: finished candidates, in finishing order (both scores each).
        ledger: counters at the end.
        tree: the trace.
        message: why it ended (``finished``, ``budget exhausted``, ``stopped``).
        partial: True when no path finished and ``best`` is the best scored clean
            prediction of an unfinished path.
        best_node: the trace node of ``best`` (None when partial).
        metrics: obstacle metrics (empty without obstacles).
        obstacles: the resolved obstacles (including a backend's built-in ones) as dicts
            with their points, radius, η, Q*, mode and space.
        images: decoded images ``[K, C, H, W]`` of the candidates (image backends only,
            decoded once when they were scored), in ``candidates`` order; no size limit.
        curve: the anytime curve, ``(NFEs spent, best finished score or None)`` after
            every step.
        error: why the run failed (a non-finite value), or None; ``message`` says so too.
        draws: independent draws from a sampling algorithm's result (soft tree search's
            ``draws``), or None.
        target: the resolved target of the problem (a class or component number, a
            prompt), or None; the views draw it (the plane's target mode, the shapes
            checker's prompt). Not in :meth:`to_dict`: a run file's config holds it.
    """

    best: Tensor | None
    best_score: float | None
    heldout_score: float | None
    candidates: list[Candidate]
    ledger: Ledger
    tree: Trace
    message: str = "finished"
    partial: bool = False
    best_node: int | None = None
    metrics: dict = field(default_factory=dict)
    obstacles: list[dict] = field(default_factory=list)
    images: Tensor | None = None
    curve: list[tuple[int, float | None]] = field(default_factory=list)
    error: str | None = None
    draws: list[Candidate] | None = None
    target: Any = None

    def to_dict(self, with_x0: bool = True) -> dict:
        return {
            "best": None if self.best is None else self.best.flatten().tolist(),
            "best_shape": None if self.best is None else list(self.best.shape),
            "best_score": self.best_score,
            "heldout_score": self.heldout_score,
            "best_node": self.best_node,
            "partial": self.partial,
            "message": self.message,
            "candidates": [c.to_dict() for c in self.candidates],
            "ledger": self.ledger.to_dict(),
            "tree": self.tree.to_dict(with_x0),
            "metrics": self.metrics,
            "obstacles": self.obstacles,
            "curve": [[nfe, best] for nfe, best in self.curve],
            **({"error": self.error} if self.error else {}),
            **({"draws": [c.to_dict() for c in self.draws]} if self.draws is not None else {}),
        }


@dataclass
class Snapshot:
    """What a streaming search yields after each step.

    Attributes:
        step: steps taken by the algorithm so far.
        t: current time of the frontier.
        ledger: the ledger's counters at this moment.
        best_score: best final score so far (``None`` before any path finished).
        n_nodes: nodes in the trace so far.
        done: True on the last snapshot; ``result`` is set then.
        message: why the search ended (``"finished"``, ``"budget exhausted"``, ``"stopped"``).
        result: the :class:`SearchResult` (last snapshot only).
        trace: the growing trace itself (a live reference, for drawing it while it grows).
    """

    step: int
    t: float | None
    ledger: dict
    best_score: float | None
    n_nodes: int
    done: bool = False
    message: str = ""
    result: Any = None
    trace: Any = None
