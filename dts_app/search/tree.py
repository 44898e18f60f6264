"""Tree search over denoising paths: Diffusion Tree Sampling (DTS, Jain et al. 2025,
"Diffusion Tree Sampling: Scalable inference-time alignment of diffusion models",
arXiv:2506.20701) with ``backup="soft"``, and its greedy search variant with
``backup="max"``, on the problem's time grid.

Tree: the root is a virtual node above t = 1; its children are fresh noises at t = 1
(streams ``(c,)``); a node at grid index i has children at i + 1, each drawn with one
Euler–Maruyama step of the reverse SDE (``g(t)² = 2γt``, γ = ``sde_gamma`` > 0; every
child owns the stream ``parent_key + (c,)``). Every node keeps its state, velocity, key
and trace node, and the reward r of its own rollout.

One iteration (the exact rules):

1. **Selection.** From the root, while the current node has its full set of children (N =
   ``n`` under the root, M = ``m`` under every other node) and is not *closed* (terminal,
   or every child closed), move to an open child:
   - ``max`` (search, DTS*): the child with the largest value V(c), greedily, as DTS*
     "switches the selection rule to greedy maximization" (Jain et al. 2025, §4). With
     ``c_uct`` > 0 the rule is UCT instead: ``V̄(c) + c_uct·sqrt(log N(p) / N(c))`` (V̄ =
     value rescaled to [0, 1] by the smallest and largest reward seen, N = visit count).
     The default is c_uct = 0: on trap the UCT bonus (≈ 0.9 at c = 1) swamps the gap
     between the hazard's rescaled reward (≈ 0.87) and the prize's (1.0), so visits spread
     evenly over the root noises (docs/search.md has the sweep);
   - ``soft`` (sampling): a child drawn with probability ∝ ``exp(V(c)/τ)`` (τ =
     ``temperature``), from the run's own selection stream (``rng`` domain 1).
2. **Expansion.** One new child of the selected node (a fresh noise under the root, an
   SDE step otherwise).
3. **Rollout.** The new child is solved to t = 0 and its final sample scored by the search
   verifier: the child's reward r (one verifier call). ``soft``: with the reverse SDE, so
   r is a sample of the reward under the base chain's p(x0 | x_t); ``max``: with the
   problem's ODE solver (a pure search).
4. **Backup.** Going up from the new child, every node's visit count grows by one and its
   value is recomputed from its *own rollout's reward and its children's values*:
   - ``max``: ``V = max(r, V(c₁), …)``;
   - ``soft``: ``V = τ·log mean(exp(r/τ), exp(V(c₁)/τ), …)``, the plain mean: each
     term estimates ``E[exp(r(x0)/τ) | x_t]`` under the base chain (the rollout directly,
     a child through one more transition), so V estimates the soft value, the
     log-partition of the reward-tilted law below the node. (Weighting children by their
     visits would apply the tilt twice under Boltzmann selection.)

It runs until the budget is spent (``budget``, or without one ``n·m`` rollouts). The answer
is the best finished rollout (``max``), or (``soft``) a draw from the tree: a descent from
the root that at each node picks among its children and its own rollout with probability
∝ ``exp(V/τ)`` (the rollout's V is its reward) until it picks a rollout. As the tree grows
these draws sample ``p0(x)·exp(r(x)/τ)``. ``draws`` > 1 returns that many independent
draws from the built tree (``SearchResult.draws``), from their own stream (``rng`` domain
3). Cost per iteration: one SDE step (1 evaluation for the new state) plus the rollout's
remaining steps. γ = 0 is refused: every child of a node would be the same state.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ..config import SearchConfig
from ..rng import stream
from .algorithm import SearchAlgorithm
from .engine import Engine
from .problem import Problem
from .types import Beam, Candidate

__all__ = ["TreeSearch"]

_SELECT_DOMAIN = 1  # the selection stream lives outside the paths' key space
_DRAW_DOMAIN = 3  # draws from the finished tree


@dataclass
class _TNode:
    beam: Beam | None  # one-row beam (None for the virtual root)
    parent: _TNode | None
    depth: int  # grid index; -1 for the root
    children: list[_TNode] = field(default_factory=list)
    visits: int = 0
    value: float = -math.inf
    reward: float | None = None  # its own rollout's reward (None: root, or pruned on the way)
    candidate: Candidate | None = None  # its own rollout's final sample
    closed: bool = False
    pending: int = 0  # children reserved by the current batch, not yet made
    vloss: int = 0  # virtual visits of the current batch (spreads a batch's selections)


@dataclass
class _Run:
    """Per-run state of one tree search (the algorithm object holds none)."""

    cfg: SearchConfig
    last: int  # grid index of t = 0
    gen: torch.Generator  # selection draws
    root: _TNode = field(default_factory=lambda: _TNode(None, None, -1))
    lo: float = math.inf  # smallest and largest reward seen (UCT rescaling)
    hi: float = -math.inf

    def width(self, node: _TNode) -> int:
        return self.cfg.n if node.beam is None else self.cfg.m

    def full(self, node: _TNode) -> bool:
        return len(node.children) + node.pending >= self.width(node)

    def reserve(self, k: int) -> list[tuple[_TNode, int]]:
        """Up to ``k`` expansion slots ``(node, child index)``, each found by a selection
        descent; nodes on a descent get a virtual visit until the batch is done, and a
        reserved slot counts as a child, so one batch never expands a slot twice. A descent
        that ends on a node whose every slot is already reserved by this batch (its children
        are not made yet) blocks that node for the rest of the batch and starts again, so a
        batch of K gets K slots while any are left: greedy selection fills the best branch
        first, then the next best (the K greediest slots)."""
        slots, path_nodes, blocked = [], [], set()
        while len(slots) < k and not self.root.closed:
            node = self.root
            while self.full(node) and not node.closed:
                kids = [c for c in node.children if not c.closed and id(c) not in blocked]
                if not kids:
                    break
                node = self.select_child(node, kids)
                path_nodes.append(node)
                node.vloss += 1
            if self.full(node) or node.closed:  # a dead end for this batch
                if node is self.root:
                    break
                blocked.add(id(node))
                continue
            slots.append((node, len(node.children) + node.pending))
            node.pending += 1
        for n in path_nodes:
            n.vloss = 0
        return slots

    def terms(self, node: _TNode) -> list[float]:
        """The node's own reward (if it has one) and its visited children's values."""
        own = [] if node.beam is None else [-math.inf if node.reward is None else node.reward]
        return own + [c.value for c in node.children if c.visits > 0]

    def backup(self, node: _TNode | None, trace=None) -> None:
        """Visits and values from ``node`` up to the root (see module docstring); written
        onto the nodes' trace nodes when a trace is given."""
        tau = self.cfg.temperature
        while node is not None:
            node.visits += 1
            vals = self.terms(node)
            if vals:
                if self.cfg.backup == "max":
                    node.value = max(vals)
                else:
                    v = torch.tensor(vals, dtype=torch.float64) / tau
                    node.value = float(tau * (torch.logsumexp(v, 0) - math.log(len(vals))))
            node.closed = node.depth == self.last or (
                len(node.children) >= self.width(node) and all(c.closed for c in node.children)
            )
            if trace is not None and node.beam is not None and node.beam.node_ids:
                tn = trace.nodes[node.beam.node_ids[0]]
                tn.visits, tn.value = node.visits, node.value if math.isfinite(node.value) else None
            node = node.parent

    def select_child(self, node: _TNode, open_kids: list[_TNode]) -> _TNode:
        if self.cfg.backup == "max":
            if self.cfg.c_uct == 0:  # DTS*: greedy (a batch fills the best branch, see reserve)
                return max(open_kids, key=lambda c: c.value)
            logn = math.log(max(node.visits, 1))
            span = self.hi - self.lo if self.hi > self.lo else 1.0
            return max(
                open_kids,
                key=lambda c: (c.value - self.lo) / span + self.cfg.c_uct * math.sqrt(logn / max(c.visits + c.vloss, 1)),
            )
        return open_kids[_boltzmann([c.value for c in open_kids], self.cfg.temperature, self.gen)]

    def draw(self, gen: torch.Generator) -> Candidate | None:
        """One draw from the tree (see module docstring)."""
        node = self.root
        while True:
            kids = [c for c in node.children if c.visits > 0]
            options: list[_TNode | None] = ([None] if node.beam is not None else []) + kids
            values = [(-math.inf if node.reward is None else node.reward) if o is None else o.value for o in options]
            if not options or all(v == -math.inf for v in values):
                return node.candidate
            pick = options[_boltzmann(values, self.cfg.temperature, gen)]
            if pick is None:
                return node.candidate
            node = pick


def _boltzmann(values: list[float], tau: float, gen: torch.Generator) -> int:
    """An index drawn with probability ∝ exp(value/τ) (−inf: never)."""
    v = torch.tensor(values, dtype=torch.float64) / tau
    return int(torch.multinomial(torch.softmax(v, 0).float(), 1, generator=gen))


class TreeSearch(SearchAlgorithm):
    name = "tree"

    def max_nfe(self, problem: Problem) -> int:
        """Without a budget: n·m rollouts, each at most one SDE step plus one path."""
        return self.config.n * self.config.m * (problem.path_nfe() + problem.nfe_per_step)

    def iterate(self, eng: Engine) -> Iterator[None]:
        cfg, p = self.config, eng.problem
        if p.sde_gamma <= 0:
            from ..config import ConfigError

            raise ConfigError("--sde-gamma: tree search needs γ > 0 (with γ = 0 every child of a node is the same state)")
        soft = cfg.backup == "soft"
        run = _Run(cfg, len(eng.grid) - 1, stream(p.seed, domain=_SELECT_DOMAIN))
        root = run.root
        max_iters = None if eng.ledger.remaining is not None else cfg.n * cfg.m
        it = 0
        try:
            while max_iters is None or it < max_iters:
                want = cfg.batch if max_iters is None else min(cfg.batch, max_iters - it)
                if eng.ledger.remaining is not None:  # start only the rollouts the budget can finish
                    want = max(1, min(want, eng.ledger.remaining // (p.path_nfe() + p.nfe_per_step)))
                slots = run.reserve(want)
                if not slots:
                    eng.trace.event("exhausted", reason="every branch is explored to t = 0")
                    return
                children = yield from self._expand(eng, run, slots)
                yield from self._rollouts(eng, run, children, soft)
                for child in children:
                    run.backup(child, eng.trace)
                    eng.trace.event("rollout", iteration=it, depth=child.depth, reward=child.reward, root_value=root.value)
                    it += 1
                yield
        finally:
            if soft and root.children:
                gen = stream(p.seed, domain=_DRAW_DOMAIN)
                draws = [run.draw(gen) for _ in range(max(1, cfg.draws))]
                eng.chosen = draws[0]
                eng.draws = [d for d in draws if d is not None]

    @staticmethod
    def _expand(eng: Engine, run: _Run, slots: list[tuple[_TNode, int]]):
        """New children for the reserved ``(node, child index)`` slots: the root's in one
        ``start``, the others in one SDE ``advance`` per depth (a batch per depth)."""
        children: list[_TNode] = []
        at_root = [c for node, c in slots if node.beam is None]
        if at_root:
            b = eng.start([(c,) for c in at_root])
            children += [_TNode(b.take([j]), run.root, 0) for j in range(len(b))]
        by_depth: dict[int, list[tuple[_TNode, int]]] = {}
        for node, c in slots:
            if node.beam is not None:
                by_depth.setdefault(node.depth, []).append((node, c))
        for depth in sorted(by_depth):
            group = by_depth[depth]
            kids = Beam.cat([node.beam for node, _ in group])
            kids.keys = [node.beam.keys[0] + (c,) for node, c in group]
            new = eng.advance(kids, stochastic=True)
            rows = {k: j for j, k in enumerate(new.keys)}
            for (node, _), key in zip(group, kids.keys):
                j = rows.get(key)  # missing: pruned by an obstacle at expansion
                beam = new.take([j]) if j is not None else new.take([])
                children.append(_TNode(beam, node, depth + 1))
        for child in children:
            child.parent.children.append(child)
            child.parent.pending -= 1
        yield
        return children

    @staticmethod
    def _rollouts(eng: Engine, run: _Run, children: list[_TNode], soft: bool):
        """Roll every new child out to t = 0 as one wavefront: the shallowest group steps
        until it meets the next depth, where the two continue as one batch."""
        groups: dict[int, Beam] = {}
        for child in children:
            if len(child.beam):
                groups[child.beam.i] = Beam.cat([groups[child.beam.i], child.beam]) if child.beam.i in groups else child.beam
        while any(i < run.last for i in groups):
            i = min(groups)
            b = eng.advance(groups.pop(i), stochastic=soft)
            if len(b):
                groups[b.i] = Beam.cat([groups[b.i], b]) if b.i in groups else b
            yield
        done = {c.key: c for c in eng.finish(groups[run.last])} if run.last in groups else {}
        for child in children:
            cand = done.get(child.beam.keys[0]) if len(child.beam) else None
            if cand is not None:
                child.candidate, child.reward = cand, cand.score
                run.lo, run.hi = min(run.lo, cand.score), max(run.hi, cand.score)
            else:  # pruned by an obstacle: a dead branch (reward −inf)
                child.depth = run.last
