"""The engine every algorithm drives: start, advance, renoise, branch, score, finish.

It works over three things: the :class:`~dts_app.backends.base.Field` (the denoiser with
its condition bound, charging the :class:`~dts_app.ledger.Ledger` before each call), the
:class:`~dts_app.rng.Streams` (one random stream per path key, so a path does not depend
on the batch it runs in) and a :class:`~dts_app.search.recorder.Recorder` (trace and
views). Algorithms hold only their own rules and call these primitives.

Velocities: the field is evaluated once at every new state. That value is kept on the
:class:`~dts_app.search.types.Beam` next to the state and passed explicitly to the next
step's solver as its first stage, so an Euler path of S steps costs exactly S NFEs and
every node's x̂0 is free.

Obstacles: when the problem has an avoidance, :meth:`Engine.advance` applies it. The
avoidance only provides pure functions (D, inside-Q*, repulsion displacement); the engine
runs the step, the prune rule and the one revert-and-resample retry loop, and records
every try.

Non-finite values are errors: a NaN or inf in a velocity, a new state or a score raises
:class:`~dts_app.search.types.NonFiniteError` at once, naming what and where; the driver
ends the run with that message and keeps what was found before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from ..backends.base import Field
from ..interpolant import renoise as renoise_kernel
from ..interpolant import x0_from_velocity
from ..ledger import Budget, Ledger
from ..rng import Streams, stream_seed
from ..solvers import Step, make_g, ode_step, sde_step
from .metrics import run_metrics
from .obstacle_steps import obstacle_smc, revert
from .problem import Problem
from .recorder import Recorder
from .types import Beam, Candidate, Key, NonFiniteError, SearchResult, SearchStopped, Snapshot

__all__ = ["Engine"]

_TIE_DOMAIN = 2  # rng domain of the tie-break draws (apart from every path stream)


class Engine:
    """Primitives for algorithms, all counted and recorded (see module docstring).

    Attributes:
        problem, grid, ledger, streams, field, recorder: the run's parts.
        finals: candidates finished so far.
        chosen: the answer picked by a sampling algorithm (else the best final is used).
    """

    def __init__(
        self,
        problem: Problem,
        budget: Budget | int | None = None,
        stop: Callable[[], bool] | None = None,
        callbacks: Sequence[Callable[[Snapshot], None]] = (),
    ):
        if not isinstance(budget, Budget):
            budget = Budget(budget or None)
        self.problem = problem
        self.grid = problem.grid
        self.ledger = Ledger(budget)
        self.streams = Streams(problem.seed)
        self.field = Field(problem.backend, problem.cond, self.ledger)
        self.recorder = Recorder(problem, self.ledger, callbacks)
        self.stop = stop
        self.g = make_g(problem.sde_gamma)
        self.finals: list[Candidate] = []
        self.chosen: Candidate | None = None
        self.draws: list[Candidate] | None = None
        self.steps_taken = 0
        self.t_now: float | None = 1.0
        self.obstacle_gen = None  # resampling stream of the SMC obstacle mode (made on use)

    @property
    def trace(self):
        return self.recorder.trace

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.problem.backend.latent_shape)

    def check_stop(self) -> None:
        if self.stop is not None and self.stop():
            raise SearchStopped("stopped by the user")

    def noise(self, keys: Sequence[Key]) -> Tensor:
        """One standard-normal draw of the latent shape from each key's stream."""
        b = self.problem.backend
        return self.streams.randn(keys, self.shape, device=b.device, dtype=b.dtype)

    def velocity(self, x: Tensor, t: float) -> Tensor:
        """Counted velocity; at t = 0 returns zeros without a call (x̂0 = x there)."""
        if t <= 0.0:
            return torch.zeros_like(x)
        return self._eval(x, t)

    def _eval(self, x: Tensor, t: float) -> Tensor:
        """The counted field, checked: every evaluation (solver stages included) passes here."""
        v = self.field(x, t)
        self._check(v, "velocity", t)
        return v

    def _check(self, values: Tensor, what: str, t: float) -> None:
        if values.numel() == 0:
            return
        bad = ~torch.isfinite(values.reshape(len(values), -1)).all(dim=1)
        if bool(bad.any()):
            raise NonFiniteError(
                f"non-finite {what} (NaN or inf) at t = {t:.4g} in {int(bad.sum())} of {len(values)} paths "
                f"on the {self.problem.backend.name} backend; the run stopped and keeps what it found before"
            )

    def anchor_t(self) -> float | None:
        v = self.problem.verifier
        return None if v is None else v.anchor_t

    # --- recording -----------------------------------------------------------------------
    def record(self, parents, i, x, v, keys, anchor, status="kept", D=None, inside=None) -> list[int]:
        """Trace nodes for states ``x`` with velocities ``v`` at grid index ``i``; D is
        measured when obstacles exist and it was not given."""
        t = self.grid[i]
        x0 = x0_from_velocity(x, v, t)
        if D is None and self.problem.avoidance is not None:
            D, inside = self._measure(x0, x, t)
        return self.recorder.nodes(parents, i, x0, keys, anchor, status, D, inside)

    def _measure(self, x0: Tensor, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """The avoidance's D ``[B]`` and inside-Q* per obstacle ``[B, O]`` (the trace
        records which obstacles a node is inside); feature-space checks are charged."""
        av = self.problem.avoidance
        if av.feature_space:
            self.ledger.charge_obstacle(len(x))
        return av.measure_each(x0, x, t)

    def _update_anchor(self, anchor: Tensor | None, x0: Tensor, t: float) -> tuple[Tensor | None, Tensor | None]:
        """Fill missing anchors with ``x0`` once ``t ≤ anchor_t``; returns the anchors and
        the mask of rows filled now (None when none)."""
        at = self.anchor_t()
        if anchor is None or at is None or t > at + 1e-9:
            return anchor, None
        missing = torch.isnan(anchor.flatten(1)).any(dim=1)
        if not missing.any():
            return anchor, None
        anchor = anchor.clone()
        anchor[missing] = x0[missing]
        return anchor, missing

    @staticmethod
    def _anchor_nodes(before: list | None, n: int, filled: Tensor | None, ids: list[int]) -> list | None:
        if filled is None:
            return before
        prev = before if before is not None else [None] * n
        return [ids[j] if bool(filled[j]) else prev[j] for j in range(n)]

    def scorable(self, beam: Beam) -> Tensor:
        """``[B]`` bool: rows the search verifier can score with meaning. A self-supervised
        verifier compares the anchor x̂0 with the current prediction, so a row needs an
        anchor recorded at an earlier node (before it, every row would tie at 0)."""
        if self.anchor_t() is None:
            return torch.ones(len(beam), dtype=torch.bool)
        nodes = beam.anchor_node or [None] * len(beam)
        return torch.tensor([a is not None and a != n for a, n in zip(nodes, beam.node_ids)], dtype=torch.bool)

    # --- stepping --------------------------------------------------------------------------
    def start(self, keys: Sequence[Key], x: Tensor | None = None, parents: Sequence[int | None] | None = None) -> Beam:
        """Fresh paths at t = 1 from each key's noise (or from given noises ``x``)."""
        keys = [tuple(k) for k in keys]
        if x is None:
            x = self.noise(keys)
        v = self.velocity(x, self.grid[0])
        anchor = filled = None
        if self.anchor_t() is not None:
            anchor = torch.full_like(x, float("nan"))
            anchor, filled = self._update_anchor(anchor, x0_from_velocity(x, v, self.grid[0]), self.grid[0])
        ids = self.record(parents or [None] * len(keys), 0, x, v, keys, anchor)
        nodes = self._anchor_nodes(None, len(keys), filled, ids)
        return Beam(x, v, 0, keys, ids, anchor, [set() for _ in keys], nodes)

    def step(self, beam: Beam, stochastic: bool, g: Callable[[float], float] | None = None) -> Step:
        """One solver step of every row from ``beam.i`` (no recording; the beam's cached
        velocity is the first stage). Stochastic steps are Euler–Maruyama with
        ``g(t)² = 2γt`` (or the given ``g``) and noise from each row's stream."""
        t, tn = self.grid[beam.i], self.grid[beam.i + 1]
        if stochastic or self.problem.solver == "sde":
            noise = self.noise(beam.keys)
            st = sde_step(self._eval, beam.x, t, tn, (g or self.g)(t), noise, beam.v)
        else:
            st = ode_step(self.problem.solver, self._eval, beam.x, t, tn, beam.v)
        self._check(st.x, "state", tn)
        return st

    def advance(self, beam: Beam, stochastic: bool = False) -> Beam:
        """Step every row one grid step (under the avoidance mode, if any) and record it.

        Rows that the prune mode drops get a ``pruned`` node and leave the beam.
        """
        self.check_stop()
        if beam.i >= len(self.grid) - 1:
            raise ValueError("beam is already at t = 0")
        i = beam.i + 1
        t, tn = self.grid[beam.i], self.grid[i]
        av = self.problem.avoidance
        if av is not None and av.mode == "smc":
            stochastic = True  # particles must be random continuations
        if av is not None and av.mode == "repulsion" and av.feature_space:
            self.ledger.charge_obstacle(len(beam))  # the push differentiates the feature map
        st = self.step(beam, stochastic)
        x = st.x
        if av is not None and av.mode == "repulsion":
            x = x + av.displacement(st.x0_hat, t, tn)
        v = self.velocity(x, tn)
        flags, D, inside = beam.flags, None, None
        alive = torch.ones(len(beam), dtype=torch.bool)
        if av is not None:
            D, inside = self._measure(x0_from_velocity(x, v, tn), x, tn)
            flags = [set(f) for f in beam.flags] if beam.flags else [set() for _ in range(len(beam))]
            if av.mode == "prune":
                alive = ~inside.any(dim=1)
            elif av.mode == "revert" and bool(inside.any()):
                x, v, D, inside = revert(self, beam, x, v, D, inside, flags)
        anchor, filled = self._update_anchor(beam.anchor, x0_from_velocity(x, v, tn), tn)
        ids = self.record(beam.node_ids, i, x, v, beam.keys, anchor, "kept", D, inside)
        anchor_nodes = self._anchor_nodes(beam.anchor_node, len(beam), filled, ids)
        new = Beam(x, v, i, beam.keys, ids, anchor, flags, anchor_nodes, beam.logw, beam.aux)
        self.steps_taken += 1
        self.t_now = tn
        if av is not None and av.mode == "smc":
            return obstacle_smc(self, new, x0_from_velocity(x, v, tn), inside)
        if bool(alive.all()):
            return new
        self.trace.set_status([ids[j] for j in range(len(beam)) if not bool(alive[j])], "pruned")
        return new.take([j for j in range(len(beam)) if bool(alive[j])])

    def solve(self, beam: Beam, to_i: int | None = None, stochastic: bool = False) -> Iterator[Beam]:
        """Advance ``beam`` to grid index ``to_i`` (default t = 0), yielding after each step."""
        to_i = len(self.grid) - 1 if to_i is None else to_i
        while beam.i < to_i and len(beam):
            beam = self.advance(beam, stochastic)
            yield beam

    def branch(self, beam: Beam, m: int) -> Beam:
        """Repeat each row ``m`` times with child keys ``key + (c,)`` (no cost, no nodes)."""
        out = beam.take([j for j in range(len(beam)) for _ in range(m)])
        out.keys = [beam.keys[j] + (c,) for j in range(len(beam)) for c in range(m)]
        return out

    def renoise(self, beam: Beam, to_i: int) -> Beam:
        """Exact forward re-noising of every row from ``grid[beam.i]`` back to ``grid[to_i]``
        (``to_i < beam.i``: higher t), with fresh noise from each row's stream; records
        the new states as children. Re-noised above the verifier's ``anchor_t``, a path
        will cross it again: its anchor is cleared and recorded anew on the way down."""
        self.check_stop()
        t, s = self.grid[beam.i], self.grid[to_i]
        x = renoise_kernel(beam.x, t, s, self.noise(beam.keys))
        v = self.velocity(x, s)
        anchor, anchor_node = beam.anchor, beam.anchor_node
        at = self.anchor_t()
        if anchor is not None and at is not None and s > at + 1e-9:  # the path redoes its t = anchor_t: a new anchor
            anchor, anchor_node = torch.full_like(anchor, float("nan")), None
        ids = self.record(beam.node_ids, to_i, x, v, beam.keys, anchor)
        self.t_now = s
        return Beam(x, v, to_i, list(beam.keys), ids, anchor, beam.flags, anchor_node)

    # --- scoring -------------------------------------------------------------------------
    def clean(self, beam: Beam) -> Tensor:
        """Clean predictions x̂0 of the beam's states."""
        return x0_from_velocity(beam.x, beam.v, self.grid[beam.i])

    def decode(self, x0: Tensor) -> Tensor:
        """What verifiers see: decoded clean samples (decoder calls counted)."""
        p = self.problem
        return self.field.decode(x0) if p.backend.has_decoder else p.backend.decode(x0)

    def score(self, beam: Beam, x0: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Search-verifier scores (charged) and held-out scores (charged as held-out) of the
        rows' clean predictions, written onto the rows' trace nodes."""
        p = self.problem
        if p.verifier is None:
            raise ValueError("this problem has no search verifier")
        x0 = self.clean(beam) if x0 is None else x0
        dec = self.decode(x0)
        s = p.verifier.score(dec, beam.anchor).float().cpu()
        self.ledger.charge_verifier(len(x0))
        self._check(s, "search score", self.grid[beam.i])
        h = None
        if p.heldout is not None:
            h = p.heldout.score(dec, None).float().cpu()
            self.ledger.charge_heldout(len(x0))
            self._check(h, "held-out score", self.grid[beam.i])
        keep = p.backend.data_kind == "image" and beam.i == len(self.grid) - 1
        self.recorder.scored(beam.node_ids, s, h, x0, dec if keep else None)
        return s, h

    def finish(self, beam: Beam, scores: Tensor | None = None, heldout: Tensor | None = None) -> list[Candidate]:
        """Score (if not given) finished rows at t = 0, mark their nodes final, keep them.

        An empty beam (every path pruned on the way) finishes nothing."""
        if len(beam) == 0:
            return []
        if beam.i != len(self.grid) - 1:
            raise ValueError("finish() needs paths at t = 0")
        if scores is None:
            scores, heldout = self.score(beam)
        x0 = self.clean(beam)
        out = [
            Candidate(
                x0[j].detach().clone(),
                float(scores[j]),
                None if heldout is None else float(heldout[j]),
                nid,
                beam.keys[j],
                tuple(sorted(beam.flags[j])) if beam.flags else (),
            )
            for j, nid in enumerate(beam.node_ids)
        ]
        self.trace.set_status(beam.node_ids, "final")
        self.finals.extend(out)
        return out

    def tiebreak(self, key: Key) -> int:
        """A seeded uniform draw that is a pure function of a path's key: ties in score are
        broken by it, never by position."""
        return stream_seed(self.problem.seed, *key, domain=_TIE_DOMAIN)

    def order(self, beam: Beam, scores: Tensor | None) -> list[int]:
        """Row indices, best first: by score, ties broken by :meth:`tiebreak`; without
        scores, a seeded uniformly random order."""
        u = [self.tiebreak(k) for k in beam.keys]
        if scores is None:
            return sorted(range(len(beam)), key=lambda j: u[j])
        return sorted(range(len(beam)), key=lambda j: (-float(scores[j]), u[j]))

    def best(self) -> Candidate | None:
        """The best finished candidate (ties broken by :meth:`tiebreak`)."""
        if not self.finals:
            return None
        top = max(c.score for c in self.finals)
        ties = [c for c in self.finals if c.score == top]
        return ties[0] if len(ties) == 1 else min(ties, key=lambda c: self.tiebreak(c.key))

    # --- results ---------------------------------------------------------------------------
    def snapshot(self, done: bool = False, message: str = "", result: SearchResult | None = None) -> Snapshot:
        b = self.best()
        return self.recorder.snapshot(self.steps_taken, self.t_now, None if b is None else b.score, done, message, result)

    def result(self, message: str = "finished") -> SearchResult:
        """The result so far: the chosen (sampling) or best finished candidate, marked ``best``."""
        b = self.chosen if self.chosen is not None else self.best()
        rec = self.recorder
        if b is not None:
            self.trace.set_status([b.node_id], "best")
            best, score, held, node, partial = b.x0, b.score, b.heldout_score, b.node_id, False
        elif rec.best_partial is not None:
            (score, best), held, node, partial = rec.best_partial, None, None, True
        else:
            best = score = held = node = None
            partial = True
        av = self.problem.avoidance
        finals = list(self.finals)
        return SearchResult(
            best, score, held, finals, self.ledger, self.trace, message, partial, node,
            metrics=run_metrics(self.trace.nodes, finals, self.ledger.reverts, len(av.obstacles)) if av is not None else {},
            obstacles=av.describe() if av is not None else [],
            images=rec.images([c.node_id for c in finals]),
            curve=rec.curve,
            draws=self.draws,
            target=self.problem.target,
        )  # fmt: skip
