"""One search problem, and how to build it from a validated
:class:`~dts_app.config.SearchConfig` (shared by the CLI, the sweep and the app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor

from ..backends.base import Backend, Condition
from ..backends.registry import BACKENDS, load_backend
from ..config import ConfigError, SearchConfig
from ..solvers import SOLVER_COST, time_grid
from ..verifiers.base import Verifier
from ..verifiers.function import as_verifier
from ..verifiers.registry import build_verifier

__all__ = ["AvoidanceLike", "Problem", "validate", "resolve_target", "build_problem", "backend_for", "backend_key"]


class AvoidanceLike(Protocol):
    """What the engine needs from :class:`dts_app.obstacles.avoidance.Avoidance`: pure
    functions of states; the engine runs the steps, retries and records."""

    mode: str  # none | repulsion | revert | prune
    max_reverts: int
    revert_g: Callable[[float], float]

    def measure(self, x0_hat: Tensor, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """``(D [B], inside [B] bool)`` of states ``x`` at ``t`` with clean predictions
        ``x0_hat``."""

    def measure_each(self, x0_hat: Tensor, x: Tensor, t: float) -> tuple[Tensor, Tensor]:
        """``(D [B], inside [B, O] bool)``: as :meth:`measure`, inside-Q* per obstacle."""

    def displacement(self, x0_hat: Tensor, t: float, t_next: float) -> Tensor:
        """The state displacement repulsion adds to a plain step from ``t`` to ``t_next``."""

    def describe(self) -> list[dict]:
        """The resolved obstacles as dicts."""


@dataclass
class Problem:
    """One search problem.

    Attributes:
        backend: the loaded backend.
        cond: the denoiser's condition.
        verifier: the search verifier (charged to ``verifier_calls``); None for sampling. A
            plain function ``reward(x) -> [B]`` is wrapped as a verifier.
        heldout: the held-out verifier (diagnostic, charged to ``heldout_calls``), or a function.
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
        ess_threshold: the SMC obstacle mode resamples when the ESS falls below this
            fraction of the beam.
        target: the resolved target the verifiers judge against (a class or component
            number, a prompt), or None; results carry it for their views.
        grid: the time grid ``t_0 = 1 > … > t_S = 0`` (derived).
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
    ess_threshold: float = 0.5
    target: Any = None
    grid: list[float] = field(init=False)

    def __post_init__(self):
        self.verifier = as_verifier(self.verifier, "reward")  # a plain function reward(x) -> [B] works too
        self.heldout = as_verifier(self.heldout, "heldout")
        if self.solver not in SOLVER_COST:
            raise ValueError(f"unknown solver {self.solver!r}; choose one of {', '.join(SOLVER_COST)}")
        self.grid = time_grid(self.steps, self.shift)
        if self.trace_scores is None:
            self.trace_scores = self.backend.data_kind == "points" or self.backend.cheap_scores

    @property
    def last(self) -> int:
        """Grid index of t = 0."""
        return len(self.grid) - 1

    @property
    def nfe_per_step(self) -> int:
        """Image-forwards one deterministic step costs per path (solver stages × CFG),
        counting the velocity at the new state (the next step's first stage)."""
        return SOLVER_COST[self.solver] * self.backend.forwards_per_call(self.cond)

    @property
    def forwards(self) -> int:
        """Image-forwards of one velocity evaluation of one path (2 with CFG)."""
        return self.backend.forwards_per_call(self.cond)

    def solve_nfe(self, i: int, j: int) -> int:
        """Image-forwards of one path solved deterministically from grid index ``i`` (its
        velocity known) to ``j``, including the velocity at the state reached. The step that
        lands on t = 0 saves the solver's extra stages and the velocity there (x̂0 = x):
        ``c`` evaluations fewer, with c the solver's stages per step."""
        if j <= i:
            return 0
        return ((j - i) * SOLVER_COST[self.solver] - (SOLVER_COST[self.solver] if j == self.last else 0)) * self.forwards

    def path_nfe(self) -> int:
        """Image-forwards of one whole path: the velocity at the noise, then every step
        (Euler S, Heun 2·S − 1; ×2 with classifier-free guidance)."""
        return self.forwards + self.solve_nfe(0, self.last)


def validate(config: SearchConfig) -> SearchConfig:
    """``config.validate()`` plus its names against the registries; returns ``config``.

    Raises:
        ConfigError: one line naming the knob.
    """
    from .registry import ALGORITHMS

    config.validate()
    if config.backend not in BACKENDS:
        raise ConfigError(f"--backend: {config.backend!r} is not one of {', '.join(BACKENDS)}")
    if config.algorithm not in ALGORITHMS:
        raise ConfigError(f"--algorithm: {config.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    spec = BACKENDS[config.backend]
    if spec.presets and config.preset is not None and config.preset not in spec.presets:
        raise ConfigError(f"--preset: {config.preset!r} is not one of {', '.join(spec.presets)}")
    return config


def backend_key(config: SearchConfig) -> tuple:
    """The cache key of the backend a config names: its name and only the options it takes
    (the prompt is a target, not a model)."""
    options = BACKENDS[config.backend].options
    return (config.backend, *((o, getattr(config, o)) for o in ("preset", "model", "verifier_model") if o in options))


def backend_for(config: SearchConfig, cache: dict | None = None) -> Backend:
    """Load (or reuse from ``cache``) the backend a config names."""
    key = backend_key(config)
    if cache is not None and key in cache:
        return cache[key]
    backend = load_backend(
        config.backend, preset=config.preset, model=config.model, prompt=config.prompt, verifier_model=config.verifier_model
    )
    if cache is not None:
        cache[key] = backend
    return backend


def resolve_target(config: SearchConfig, backend: Backend) -> Any:
    """The target ``config`` asks of ``backend``: its own, else the prompt on a
    text-to-image backend (one cached model serves every prompt), else the backend's
    default."""
    if config.target is not None:
        return config.target
    if config.prompt is not None and "prompt" in BACKENDS[config.backend].options:
        return config.prompt
    return backend.default_target()


def build_problem(
    config: SearchConfig, backend: Backend | None = None, cache: dict | None = None, verifiers: bool = True
) -> Problem:
    """Validate ``config`` and assemble the problem: backend, condition, verifiers, avoidance.

    ``verifiers=False`` builds a plain-sampling problem (no search or held-out verifier).
    """
    validate(config)
    backend = backend if backend is not None else backend_for(config, cache)
    target = resolve_target(config, backend)
    try:
        conditioned = config.condition or backend.conditions_on_target
        cond = backend.condition(target if conditioned else None, config.guidance)
        verifier = build_verifier(config.verifier, backend, target) if verifiers else None
        heldout = build_verifier(config.heldout, backend, target) if verifiers and config.heldout else None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    avoidance = None
    if config.obstacles or config.avoid != "none":
        from ..obstacles.avoidance import build_avoidance

        avoidance = build_avoidance(config, backend)
    return Problem(
        backend=backend,
        cond=cond,
        verifier=verifier,
        heldout=heldout,
        solver=config.solver,
        steps=config.steps,
        shift=config.shift,
        sde_gamma=config.sde_gamma,
        seed=config.seed,
        avoidance=avoidance,
        config=config,
        ess_threshold=config.ess_threshold,
        target=target,
    )
