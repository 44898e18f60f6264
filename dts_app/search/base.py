"""The search engine: problems, beams of partial paths, one engine that every algorithm
drives, and the streaming driver.

Pieces:

- :class:`Problem`: backend + condition + solver + time grid + search verifier +
  held-out verifier + optional avoidance (obstacles) + seed.
- :class:`Beam`: a batch of partial paths at one grid index, with each row's velocity at
  its state (cached: the evaluation made when a state is created serves both its x̂0 for
  the trace, verifiers and obstacles, and the first stage of the next step, so an Euler
  path of S steps costs exactly S NFEs), its stream key and trace node.
- :class:`Engine`: the primitives every algorithm uses (``start``, ``advance``,
  ``renoise``, ``score``, ``finish``), all charged to one :class:`~dts_app.ledger.Ledger`
  and recorded in one :class:`~dts_app.trace.Trace`.
- :class:`SearchAlgorithm`: ``iterate(engine)`` is a generator that yields after each
  step; :func:`iterate_search` turns it into :class:`~dts_app.trace.Snapshot` objects for
  streaming and stopping, and :func:`run_search` returns the :class:`SearchResult`.

Randomness: every row draws from the stream of its key (:mod:`dts_app.rng`), so a
candidate's path does not depend on the batch it runs in. Children of a row get the key
``parent_key + (c,)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

import torch
from torch import Tensor

from ..backends.base import Backend, Condition, Field
from ..interpolant import renoise as renoise_kernel
from ..interpolant import x0_from_velocity
from ..ledger import Budget, BudgetExceeded, Ledger
from ..rng import Streams
from ..solvers import SOLVER_COST, Step, make_g, ode_step, sde_step, time_grid
from ..trace import Snapshot, Trace
from ..verifiers.base import Verifier

__all__ = [
    "Problem",
    "Beam",
    "Proposal",
    "Engine",
    "Candidate",
    "SearchResult",
    "SearchAlgorithm",
    "SearchStopped",
    "iterate_search",
    "run_search",
]

Key = tuple[int, ...]


class SearchStopped(RuntimeError):
    """Raised inside an algorithm when the user asked to stop."""


class AvoidanceLike(Protocol):
    """What the engine needs from :class:`dts_app.obstacles.avoidance.Avoidance`."""

    mode: str

    def measure(self, x0_hat: Tensor, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """``(D [B], inside [B] bool)``: distance to the nearest obstacle and whether
        the state lies within that obstacle's Q*."""

    def propose(self, engine: "Engine", beam: "Beam", stochastic: bool) -> "Proposal":
        """One step of ``beam`` under the avoidance mode."""


@dataclass
class Problem:
    """One search problem (see module docstring).

    Attributes:
        backend: the loaded backend.
        cond: the denoiser's condition.
        verifier: the search verifier (charged to ``verifier_calls``).
        heldout: the held-out verifier (diagnostic, charged to ``heldout_calls``).
        solver: ``euler``, ``heun`` or ``sde`` (the deterministic solver of every
            non-branching step; ``sde`` makes every step stochastic).
        steps: grid steps from t = 1 to t = 0.
        shift: time-grid shift.
        sde_gamma: γ of the SDE's ``g(t)² = 2γt`` for stochastic steps.
        seed: base seed of every stream.
        avoidance: obstacles with an avoidance mode, or ``None``.
        trace_scores: score every node (not just scored candidates) for the trace with both
            verifiers, counted as ``diagnostic_calls``; defaults to on for point data and
            backends with cheap verifiers (digits).
        config: the :class:`~dts_app.config.SearchConfig` it came from, if any.
    """

    backend: Backend
    cond: Condition
    verifier: Verifier | None
    heldout: Verifier | None = None
    solver: str = "euler"
    steps: int = 32
    shift: float = 1.0
    sde_gamma: float = 0.5
    seed: int = 0
    avoidance: AvoidanceLike | None = None
    trace_scores: bool | None = None
    config: Any = None
    grid: list[float] = field(init=False)

    def __post_init__(self):
        if self.solver not in SOLVER_COST:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of {', '.join(SOLVER_COST)}")
        self.grid = time_grid(self.steps, self.shift)
        if self.trace_scores is None:
            self.trace_scores = self.backend.data_kind == "points" or self.backend.cheap_scores

    @property
    def nfe_per_step(self) -> int:
        """Image-forwards one deterministic step costs per path (solver × CFG)."""
        return SOLVER_COST[self.solver] * self.backend.forwards_per_call(self.cond)

    def path_nfe(self, steps: int | None = None) -> int:
        """Image-forwards of one path over ``steps`` grid steps (default: all)."""
        return (self.steps if steps is None else steps) * self.nfe_per_step


@dataclass
class Beam:
    """A batch of partial paths at grid index ``i`` (time ``grid[i]``).

    Attributes:
        x: states ``[B, *shape]``.
        v: velocities at ``x`` ``[B, *shape]`` (see module docstring).
        i: grid index.
        keys: one stream key per row.
        node_ids: each row's trace node.
        anchor: x̂0 recorded at t ≤ anchor_t (self-supervised verifiers), NaN where not
            yet reached; ``None`` when the verifier needs none.
        flags: per-row flags set by avoidance (e.g. revert tries exhausted).
    """

    x: Tensor
    v: Tensor
    i: int
    keys: list[Key]
    node_ids: list[int]
    anchor: Tensor | None = None
    flags: list[set] | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def take(self, idx: Sequence[int]) -> "Beam":
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
        )

    @staticmethod
    def cat(beams: Sequence["Beam"]) -> "Beam":
        beams = [b for b in beams if len(b)]
        if not beams:
            raise ValueError("cannot concatenate empty beams")
        if len({b.i for b in beams}) != 1:
            raise ValueError("beams must be at the same grid index")
        anchors = [b.anchor for b in beams]
        flags = [b.flags for b in beams]
        return Beam(
            torch.cat([b.x for b in beams]),
            torch.cat([b.v for b in beams]),
            beams[0].i,
            [k for b in beams for k in b.keys],
            [n for b in beams for n in b.node_ids],
            None if anchors[0] is None else torch.cat(anchors),
            None if flags[0] is None else [f for fl in flags for f in fl],
        )


@dataclass
class Proposal:
    """A step's outcome for every row of a beam (built by the engine or by avoidance).

    Attributes:
        x: new states ``[B, *shape]`` at ``t_next``.
        v: velocities at the new states (zeros at t = 0).
        alive: rows that continue (False: pruned).
        flags: per-row flags to carry (e.g. ``"revert_exhausted"``).
        D, inside: distance to the nearest obstacle and within-Q* flag of the new states.
    """

    x: Tensor
    v: Tensor
    alive: Tensor
    flags: list[set] | None = None
    D: Tensor | None = None
    inside: Tensor | None = None


@dataclass
class Candidate:
    """A finished path: its clean sample and both scores."""

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
    """What every search returns.

    Attributes:
        best: the chosen sample (decoded clean sample) or ``None`` if nothing finished.
        best_score, heldout_score: the chosen sample's search and held-out scores.
        candidates: finished candidates (final statuses in the tree).
        ledger: counters at the end.
        tree: the trace.
        message: why it ended.
        partial: True when no path finished and ``best`` is the best scored clean
            prediction of an unfinished path.
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
        }


class Engine:
    """Primitives for algorithms, all counted and traced (see module docstring)."""

    def __init__(
        self,
        problem: Problem,
        budget: Budget | int | None = None,
        stop: Callable[[], bool] | None = None,
    ):
        if not isinstance(budget, Budget):
            budget = Budget(budget or None)
        self.problem = problem
        self.grid = problem.grid
        self.ledger = Ledger(budget)
        self.trace = Trace(store_x0=True)
        self.streams = Streams(problem.seed)
        self.field = Field(problem.backend, problem.cond, self.ledger)
        self.stop = stop
        self.g = make_g(problem.sde_gamma)
        self.finals: list[Candidate] = []
        self.chosen: Candidate | None = None  # set by sampling algorithms; else the best
        self.steps_taken = 0
        self.t_now: float | None = 1.0
        self._best_partial: tuple[float, Tensor, int] | None = None

    # --- helpers ---------------------------------------------------------------------
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
        return self.field(x, t)

    def anchor_t(self) -> float | None:
        v = self.problem.verifier
        return None if v is None else v.anchor_t

    # --- recording ---------------------------------------------------------------------
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

    def record(
        self,
        parents: Sequence[int | None],
        i: int,
        x: Tensor,
        v: Tensor,
        keys: Sequence[Key],
        anchor: Tensor | None,
        status: str = "kept",
        D: Tensor | None = None,
        inside: Tensor | None = None,
    ) -> list[int]:
        """Add one trace node per row at grid index ``i``; measures D when obstacles exist."""
        t = self.grid[i]
        x0 = x0_from_velocity(x, v, t)
        if D is None and self.problem.avoidance is not None:
            D, inside = self.problem.avoidance.measure(x0, x, t)
        s, h = self._diagnostics(x0, anchor)
        if s is not None:
            self._note_partial(s, x0)
        return self.trace.add_batch(parents, i, t, keys, x0, status, s, h, D, inside)

    def _update_anchor(self, anchor: Tensor | None, x0: Tensor, t: float) -> Tensor | None:
        at = self.anchor_t()
        if anchor is None or at is None or t > at + 1e-9:
            return anchor
        missing = torch.isnan(anchor.flatten(1)).any(dim=1)
        if missing.any():
            anchor = anchor.clone()
            anchor[missing] = x0[missing]
        return anchor

    # --- primitives --------------------------------------------------------------------
    def start(self, keys: Sequence[Key], x: Tensor | None = None, parents: Sequence[int | None] | None = None) -> Beam:
        """Fresh paths at t = 1 from each key's noise (or from given noises ``x``)."""
        keys = [tuple(k) for k in keys]
        if x is None:
            x = self.noise(keys)
        v = self.velocity(x, self.grid[0])
        anchor = None
        if self.anchor_t() is not None:
            anchor = torch.full_like(x, float("nan"))
            anchor = self._update_anchor(anchor, x0_from_velocity(x, v, self.grid[0]), self.grid[0])
        ids = self.record(parents or [None] * len(keys), 0, x, v, keys, anchor)
        return Beam(x, v, 0, keys, ids, anchor, [set() for _ in keys])

    def step_states(
        self,
        beam: Beam,
        stochastic: bool,
        x: Tensor | None = None,
        v: Tensor | None = None,
        g: Callable[[float], float] | None = None,
    ) -> Step:
        """One solver step of every row from grid index ``beam.i`` (no recording).

        Deterministic steps use the problem's ODE solver (its first stage reuses the cached
        velocity); stochastic steps are Euler–Maruyama with ``g(t)² = 2γt`` (or the given
        ``g``) and noise from each row's stream. ``x``/``v`` override the beam's states.
        """
        x = beam.x if x is None else x
        v = beam.v if v is None else v
        t, tn = self.grid[beam.i], self.grid[beam.i + 1]
        cached = _Cached(self.field, x, t, v)
        if stochastic or self.problem.solver == "sde":
            noise = self.noise(beam.keys)
            return sde_step(cached, x, t, tn, (g or self.g)(t), noise)
        return ode_step(self.problem.solver, cached, x, t, tn)

    def propose(self, beam: Beam, stochastic: bool = False) -> Proposal:
        """A plain step (no obstacles): new states and their velocities, all alive."""
        st = self.step_states(beam, stochastic)
        tn = self.grid[beam.i + 1]
        vn = self.velocity(st.x, tn)
        return Proposal(st.x, vn, torch.ones(len(beam), dtype=torch.bool), beam.flags)

    def advance(self, beam: Beam, stochastic: bool = False) -> Beam:
        """Step every row one grid step (through the avoidance mode if any) and record it.

        Rows that avoidance prunes get a ``pruned`` node and leave the beam.
        """
        self.check_stop()
        if beam.i >= len(self.grid) - 1:
            raise ValueError("beam is already at t = 0")
        av = self.problem.avoidance
        prop = av.propose(self, beam, stochastic) if av is not None else self.propose(beam, stochastic)
        i = beam.i + 1
        x0n = x0_from_velocity(prop.x, prop.v, self.grid[i])
        anchor = self._update_anchor(beam.anchor, x0n, self.grid[i])
        ids = self.record(beam.node_ids, i, prop.x, prop.v, beam.keys, anchor, "kept", prop.D, prop.inside)
        dead = [j for j in range(len(beam)) if not bool(prop.alive[j])]
        if dead:
            self.trace.set_status([ids[j] for j in dead], "pruned")
        alive = [j for j in range(len(beam)) if bool(prop.alive[j])]
        flags = prop.flags if prop.flags is not None else beam.flags
        new = Beam(prop.x, prop.v, i, beam.keys, ids, anchor, flags)
        self.steps_taken += 1
        self.t_now = self.grid[i]
        return new.take(alive) if dead else new

    def solve(self, beam: Beam, to_i: int | None = None, stochastic: bool = False) -> Iterator[Beam]:
        """Advance ``beam`` to grid index ``to_i`` (default t = 0), yielding after each step."""
        to_i = len(self.grid) - 1 if to_i is None else to_i
        while beam.i < to_i and len(beam):
            beam = self.advance(beam, stochastic)
            yield beam

    def branch(self, beam: Beam, m: int) -> Beam:
        """Repeat each row ``m`` times with child keys ``key + (c,)`` (no cost, no nodes)."""
        idx = [j for j in range(len(beam)) for _ in range(m)]
        out = beam.take(idx)
        out.keys = [beam.keys[j] + (c,) for j in range(len(beam)) for c in range(m)]
        return out

    def renoise(self, beam: Beam, to_i: int) -> Beam:
        """Exact forward re-noising of every row from ``grid[beam.i]`` back to ``grid[to_i]``
        (``to_i < beam.i``: higher t), with fresh noise from each row's stream; records
        the new states as children."""
        self.check_stop()
        t, s = self.grid[beam.i], self.grid[to_i]
        xi = self.noise(beam.keys)
        x = renoise_kernel(beam.x, t, s, xi)
        v = self.velocity(x, s)
        ids = self.record(beam.node_ids, to_i, x, v, beam.keys, beam.anchor)
        self.t_now = s
        return Beam(x, v, to_i, list(beam.keys), ids, beam.anchor, beam.flags)

    def clean(self, beam: Beam) -> Tensor:
        """Clean predictions x̂0 of the beam's states."""
        return x0_from_velocity(beam.x, beam.v, self.grid[beam.i])

    def score(self, beam: Beam, x0: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Search-verifier scores (charged) and held-out scores (diagnostic) of the rows'
        clean predictions; also writes them onto the rows' trace nodes."""
        p = self.problem
        if p.verifier is None:
            raise ValueError("this problem has no search verifier")
        x0 = self.clean(beam) if x0 is None else x0
        dec = self.field.decode(x0) if getattr(p.backend, "has_decoder", False) else p.backend.decode(x0)
        s = p.verifier.score(dec, beam.anchor).float().cpu()
        self.ledger.charge_verifier(len(x0))
        h = None
        if p.heldout is not None:
            h = p.heldout.score(dec, None).float().cpu()
            self.ledger.charge_heldout(len(x0))
        for j, nid in enumerate(beam.node_ids):
            node = self.trace.nodes[nid]
            node.score = float(s[j])
            node.heldout_score = None if h is None else float(h[j])
        self._note_partial(s, x0)
        return s, h

    def _note_partial(self, scores: Tensor, x0: Tensor) -> None:
        """Remember the best scored clean prediction (returned if no path finishes)."""
        if len(scores) == 0:
            return
        j = int(torch.argmax(scores))
        if self._best_partial is None or float(scores[j]) > self._best_partial[0]:
            self._best_partial = (float(scores[j]), x0[j].detach().clone(), -1)

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
        out = []
        for j, nid in enumerate(beam.node_ids):
            c = Candidate(
                x0[j].detach().clone(),
                float(scores[j]),
                None if heldout is None else float(heldout[j]),
                nid,
                beam.keys[j],
                tuple(sorted(beam.flags[j])) if beam.flags else (),
            )
            out.append(c)
        self.trace.set_status(beam.node_ids, "final")
        self.finals.extend(out)
        return out

    def best(self) -> Candidate | None:
        return max(self.finals, key=lambda c: c.score) if self.finals else None

    # --- streaming ---------------------------------------------------------------------
    def snapshot(self, done: bool = False, message: str = "", result: Any = None) -> Snapshot:
        b = self.best()
        return Snapshot(
            step=self.steps_taken,
            t=self.t_now,
            ledger=self.ledger.to_dict(),
            best_score=None if b is None else b.score,
            n_nodes=len(self.trace.nodes),
            done=done,
            message=message,
            result=result,
            trace=self.trace,
        )

    def result(self, message: str = "finished") -> SearchResult:
        """The result so far: the chosen (sampling) or best finished candidate, marked ``best``."""
        b = self.chosen if self.chosen is not None else self.best()
        if b is not None:
            self.trace.set_status([b.node_id], "best")
            best, score, held, node, partial = b.x0, b.score, b.heldout_score, b.node_id, False
        elif self._best_partial is not None:
            score, best, _ = self._best_partial
            held, node, partial = None, None, True
        else:
            best = score = held = node = None
            partial = True
        from ..obstacles.metrics import run_metrics

        res = SearchResult(best, score, held, list(self.finals), self.ledger, self.trace, message, partial, node)
        res.metrics = run_metrics(self, res)
        if self.problem.avoidance is not None:
            res.obstacles = self.problem.avoidance.describe()
        return res


class _Cached:
    """A velocity field whose value at ``(x0, t0)`` is already known (no second charge)."""

    def __init__(self, field: Callable[[Tensor, float], Tensor], x: Tensor, t: float, v: Tensor):
        self.field, self.x, self.t, self.v = field, x, t, v

    def __call__(self, x: Tensor, t: float) -> Tensor:
        if x is self.x and t == self.t:
            return self.v
        return self.field(x, t)


class SearchAlgorithm(ABC):
    """Base class: subclasses implement :meth:`iterate` as a generator over steps."""

    name: str = "algorithm"
    label: str = "algorithm"
    description: str = ""
    params: tuple[str, ...] = ()  # SearchConfig knobs this algorithm reads

    def __init__(self, config=None, **overrides):
        from ..config import SearchConfig

        cfg = config if config is not None else SearchConfig()
        self.config = cfg.replace(**overrides) if overrides else cfg

    @abstractmethod
    def iterate(self, eng: Engine) -> Iterator[None]:
        """Run the search on ``eng``, yielding after every step; record finals with
        ``eng.finish``. May raise BudgetExceeded or SearchStopped at any charge."""

    def natural_nfe(self, problem: Problem) -> int | None:
        """NFEs the algorithm spends with its current settings and no cap (None: unbounded)."""
        return None

    def fit_budget(self, problem: Problem, budget: int) -> "SearchAlgorithm":
        """A copy whose settings spend (about, never more than) ``budget`` NFEs, for sweeps."""
        return self

    def run(self, problem: Problem, budget: Budget | int | None = None, stop=None) -> SearchResult:
        return run_search(problem, self, budget, stop)


def iterate_search(
    problem: Problem,
    algorithm: SearchAlgorithm,
    budget: Budget | int | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Snapshot]:
    """Stream a search: one :class:`Snapshot` after every step, then a final one with
    ``done=True`` and the :class:`SearchResult`. Budget exhaustion and stopping end the
    search cleanly with what it had found."""
    eng = Engine(problem, budget, stop)
    message = "finished"
    try:
        for _ in algorithm.iterate(eng):
            yield eng.snapshot()
            eng.check_stop()
    except BudgetExceeded:
        message = "budget exhausted"
    except SearchStopped:
        message = "stopped"
    res = eng.result(message)
    yield eng.snapshot(done=True, message=message, result=res)


def run_search(
    problem: Problem,
    algorithm: SearchAlgorithm,
    budget: Budget | int | None = None,
    stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Run a search to the end and return its result."""
    last = None
    for snap in iterate_search(problem, algorithm, budget, stop):
        last = snap
    return last.result
