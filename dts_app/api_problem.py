"""The pieces :mod:`dts_app.api` assembles a :class:`~dts_app.search.problem.Problem` from:
a plain reward function as a verifier (:mod:`dts_app.verifiers.function`), a distance
function as an obstacle, and the algorithm's knobs checked against the algorithm registry
and :data:`dts_app.config.FIELDS` (the CLI's one-line messages)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .adapters import FlowModel
from .config import ConfigError, ObstacleSpec, SearchConfig
from .obstacles.avoidance import Avoidance, Obstacle, build_avoidance
from .obstacles.field import u_rep
from .search.problem import Problem
from .search.registry import ALGORITHMS
from .verifiers.function import FunctionVerifier, as_verifier

__all__ = ["FunctionVerifier", "DistanceObstacle", "as_verifier", "search_config", "make_avoidance", "make_problem", "RUN_KNOBS"]

#: settings every search takes besides the algorithm's own knobs (explicit keyword
#: arguments of :func:`dts_app.search`)
RUN_KNOBS = ("n", "steps", "seed", "budget", "solver", "shift", "sde_gamma", "avoid", "eta", "q_star", "measure", "max_reverts")


class DistanceObstacle(Obstacle):
    """An obstacle given by a distance function ``distance(x0 [B, *shape]) -> D [B]``.

    It is measured on the clean prediction x̂0 like every x0 obstacle; repulsion pushes x̂0
    along ``−Q*⁴·∇U_rep(D(x̂0))`` by autograd through the function (it must then be
    differentiable in torch). Each check is counted in ``ledger.obstacle_calls``.
    """

    def __init__(self, fn: Callable[[Tensor], Any], eta: float, q_star: float, label: str = ""):
        name = label or getattr(fn, "__name__", "distance")
        super().__init__("distance", torch.zeros(0, 1), eta, q_star, 0.0, "distance", _identity, name)
        self.fn = fn

    def distance(self, x0: Tensor, x: Tensor | None = None, t: float | None = None) -> Tensor:
        d = torch.as_tensor(self.fn(x0))
        if d.numel() != x0.shape[0]:
            raise ValueError(f"obstacle distance must return [{x0.shape[0]}], got shape {tuple(d.shape)}")
        return d.reshape(x0.shape[0])

    def push(self, x0: Tensor) -> Tensor:
        with torch.enable_grad():
            y = x0.detach().requires_grad_(True)
            d = self.distance(y)
            if not d.requires_grad:
                raise ValueError("avoid='repulsion' needs a distance function that torch can differentiate")
            (g,) = torch.autograd.grad(u_rep(d, self.eta, self.q_star).sum(), y)
        return -(self.q_star**4) * g


def _identity(x0: Tensor) -> Tensor:
    return x0.flatten(1)


def _unknown_knobs(algorithm: str, unknown: Sequence[str], own: Sequence[str]) -> ValueError:
    """One ValueError naming the bad knobs and every valid one (from the registry)."""
    parts = []
    for k in unknown:
        owners = [name for name, spec in ALGORITHMS.items() if k in spec.params]
        if k in ("guidance", "class_label", "prompt"):
            parts.append(
                f"{k!r} is part of the model's condition: from_diffusers(pipe, {k}=...) or model.with_condition({k}=...)"
            )
        elif owners:
            parts.append(f"{k!r} is a knob of {', '.join(owners)}, not of {algorithm}")
        else:
            every = {p for spec in ALGORITHMS.values() for p in spec.params} | set(RUN_KNOBS)
            near = difflib.get_close_matches(k, sorted(every), 1)
            parts.append(f"unknown knob {k!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    knobs = f"takes the knobs {', '.join(own)}" if own else "has no knobs of its own"
    return ValueError(f"{'; '.join(parts)}. {algorithm} {knobs}; every search takes {', '.join(RUN_KNOBS)}")


def search_config(algorithm: str, knobs: dict[str, Any], **run: Any) -> SearchConfig:
    """A validated :class:`SearchConfig` for ``algorithm`` with its ``knobs`` and the
    run-wide settings ``run`` (``n``, ``steps``, ``seed``, ...).

    Raises:
        ValueError: an unknown algorithm or knob (one line naming the valid ones).
        ConfigError: a bad value, with the CLI's one-line message.
    """
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"--algorithm: {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    own = [p for p in ALGORITHMS[algorithm].params if p not in RUN_KNOBS]
    unknown = sorted(set(knobs) - set(own))
    if unknown:
        raise _unknown_knobs(algorithm, unknown, own)
    if run.get("budget") is None:
        run["budget"] = 0  # the CLI's "no cap"
    cfg = SearchConfig(backend="api", preset=None, algorithm=algorithm, verifier="", heldout="", **run, **knobs)
    return cfg.validate()


def make_avoidance(obstacles: Any, model: FlowModel, config: SearchConfig) -> Avoidance | None:
    """The avoidance of ``obstacles``: the CLI's text syntax (``"point:1,2@q=0.5"``, one
    string or a list), :class:`~dts_app.config.ObstacleSpec`, or functions
    ``distance(x0) -> D [B]``, with the run's mode and defaults. None without obstacles
    and ``avoid="none"``."""
    items = [] if obstacles is None else [obstacles] if isinstance(obstacles, str) or callable(obstacles) else list(obstacles)
    specs, fns = [], []
    for o in items:
        if isinstance(o, str):
            specs.append(ObstacleSpec.parse(o))
        elif isinstance(o, ObstacleSpec):
            specs.append(o)
        elif callable(o):
            fns.append(DistanceObstacle(o, config.eta, config.q_star))
        else:
            raise ConfigError(f"--obstacle: expected KIND:VALUE text or a distance function, got {type(o).__name__}")
    if not items and config.avoid == "none":
        return None
    found: list[Obstacle] = []
    if specs or not fns:  # text obstacles, or the model's built-in ones (its message when it has none)
        found = build_avoidance(config.replace(obstacles=tuple(specs)), model.backend).obstacles
    return Avoidance([*found, *fns], config.avoid, config.measure, config.max_reverts, config.sde_gamma)


def make_problem(
    model: FlowModel,
    config: SearchConfig,
    reward: Any = None,
    heldout: Any = None,
    obstacles: Any = None,
    trace_scores: bool = False,
) -> Problem:
    """The :class:`Problem` of a model, a validated config, rewards and obstacles."""
    return Problem(
        backend=model.backend,
        cond=model.cond,
        verifier=as_verifier(reward, "reward"),
        heldout=as_verifier(heldout, "heldout"),
        solver=config.solver,
        steps=config.steps,
        shift=config.shift,
        sde_gamma=config.sde_gamma,
        seed=config.seed,
        avoidance=make_avoidance(obstacles, model, config),
        trace_scores=bool(trace_scores),
        config=config,
        ess_threshold=config.ess_threshold,
    )
