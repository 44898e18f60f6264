"""Tree search over denoising paths, after Diffusion Tree Sampling (Jain et al. 2025,
"Diffusion Tree Sampling: Scalable inference-time alignment of diffusion models",
arXiv:2506.20701), on the problem's time grid.

Tree: the root is a virtual node above t = 1; its children are fresh noises at t = 1
(streams ``(c,)``); a node at grid index i has children at i + 1 drawn with one
Euler–Maruyama step of the reverse SDE (``g(t)² = 2γt``, γ = ``sde_gamma``; every child
owns the stream ``parent_key + (c,)``, so each expansion is a new random continuation).
Every node keeps its state, cached velocity, key and trace node, so it can be expanded at
any later time.

One iteration (the exact rules):

1. **Selection.** From the root, while the current node has its full set of children (N =
   ``n`` fresh noises under the root, M = ``m`` under every other node) and is not terminal, move to a child that is not *closed* (a closed node
   is terminal or has all M children closed):
   - ``backup="max"`` (search): the child maximising
     ``V̄(c) + c_uct·sqrt(log N(p) / N(c))`` (UCT; V = backed-up value rescaled to [0, 1]
     by the smallest and largest reward seen so far, N = visit count);
   - ``backup="soft"`` (sampling): a child drawn with probability ∝ ``exp(V(c)/τ)``
     (τ = ``temperature``), with the draws taken from the run's own selection stream (``rng`` domain 1, apart
     from every path key).
2. **Expansion.** Add one child to the selected node (a fresh noise under the root, an SDE
   step otherwise).
3. **Rollout.** Solve the new child deterministically (the problem's ODE solver) to t = 0;
   the rollout's states are recorded in the trace (status kept), and the final sample is
   scored by the search verifier: the reward r (one verifier call).
4. **Backup.** The child's value is r; going up, each ancestor's visit count grows by one
   and its value becomes ``max_c V(c)`` (max backup) or
   ``τ·log(Σ_c N(c)·exp(V(c)/τ) / Σ_c N(c))`` (soft backup: a visit-weighted soft-max,
   which estimates the log-partition of the reward-tilted distribution below the node).

It runs until the budget is spent (``budget``, or without one ``n·m`` rollouts). The final
sample is the best finished rollout (``max``), or (``soft``) a draw by backed-up values: a
descent from the root sampling children ∝ exp(V/τ) to a node without children, whose
rollout is returned. Cost per iteration: one SDE step (1 evaluation for the new state)
plus the rollout's remaining ``(S − i)`` steps of the ODE solver.
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


@dataclass
class _TNode:
    beam: Beam | None  # one-row beam (None for the virtual root)
    parent: _TNode | None
    depth: int  # grid index; -1 for the root
    children: list[_TNode] = field(default_factory=list)
    visits: int = 0
    value: float = -math.inf
    candidate: Candidate | None = None
    closed: bool = False


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

    def backup(self, node: _TNode | None) -> None:
        tau = self.cfg.temperature
        while node is not None:
            node.visits += 1
            kids = [c for c in node.children if c.visits > 0]
            if kids:
                if self.cfg.backup == "max":
                    node.value = max(c.value for c in kids)
                else:
                    w = torch.tensor([float(c.visits) for c in kids], dtype=torch.float64)
                    v = torch.tensor([c.value for c in kids], dtype=torch.float64)
                    node.value = float(tau * (torch.logsumexp(v / tau + w.log(), 0) - w.sum().log()))
            node.closed = node.depth == self.last or (
                len(node.children) >= self.width(node) and all(c.closed for c in node.children)
            )
            node = node.parent

    def select_child(self, node: _TNode) -> _TNode:
        open_kids = [c for c in node.children if not c.closed]
        if self.cfg.backup == "max":
            logn = math.log(max(node.visits, 1))
            span = self.hi - self.lo if self.hi > self.lo else 1.0
            return max(
                open_kids,
                key=lambda c: (c.value - self.lo) / span + self.cfg.c_uct * math.sqrt(logn / max(c.visits, 1)),
            )
        v = torch.tensor([c.value for c in open_kids], dtype=torch.float64) / self.cfg.temperature
        j = int(torch.multinomial(torch.softmax(v, 0).float(), 1, generator=self.gen))
        return open_kids[j]

    def draw(self) -> Candidate | None:
        node = self.root
        while node.children:
            kids = [c for c in node.children if c.visits > 0 and math.isfinite(c.value)]
            if not kids:
                break
            v = torch.tensor([c.value for c in kids], dtype=torch.float64) / self.cfg.temperature
            node = kids[int(torch.multinomial(torch.softmax(v, 0).float(), 1, generator=self.gen))]
        return node.candidate


class TreeSearch(SearchAlgorithm):
    name = "tree"

    def max_nfe(self, problem: Problem) -> int:
        """Without a budget: n·m rollouts, each at most one SDE step plus one path."""
        return self.config.n * self.config.m * (problem.path_nfe() + problem.nfe_per_step)

    def iterate(self, eng: Engine) -> Iterator[None]:
        cfg, p = self.config, eng.problem
        run = _Run(cfg, len(eng.grid) - 1, stream(p.seed, domain=_SELECT_DOMAIN))
        root = run.root
        max_iters = None if eng.ledger.remaining is not None else cfg.n * cfg.m
        it = 0
        try:
            while max_iters is None or it < max_iters:
                node = root
                while len(node.children) >= run.width(node) and not node.closed:
                    node = run.select_child(node)
                if node.closed:
                    eng.trace.event("exhausted", reason="every branch is explored to t = 0")
                    return
                c = len(node.children)
                if node.beam is None:
                    child_beam = eng.start([(c,)])
                else:
                    kid = eng.branch(node.beam, 1)
                    kid.keys = [node.beam.keys[0] + (c,)]
                    child_beam = eng.advance(kid, stochastic=True)
                child = _TNode(child_beam, node, child_beam.i)
                node.children.append(child)
                yield
                beam = child_beam
                for beam in eng.solve(beam):
                    yield
                done = eng.finish(beam)
                if done:
                    child.candidate = done[0]
                    child.value = done[0].score
                    run.lo, run.hi = min(run.lo, child.value), max(run.hi, child.value)
                else:  # pruned by an obstacle: a dead branch
                    child.depth = run.last
                run.backup(child)
                eng.trace.event("rollout", iteration=it, depth=child.depth, reward=child.value, root_value=root.value)
                it += 1
                yield
        finally:
            if cfg.backup == "soft" and root.children:
                eng.chosen = run.draw()
