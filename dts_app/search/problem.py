"""Build a :class:`~dts_app.search.base.Problem` from a validated
:class:`~dts_app.config.SearchConfig` (shared by the CLI, the sweep and the UI)."""

from __future__ import annotations

from ..backends.base import Backend
from ..backends.registry import BACKENDS, load_backend
from ..config import ConfigError, SearchConfig
from ..verifiers.registry import build_verifier
from .base import Problem

__all__ = ["build_problem", "backend_for"]


def backend_for(config: SearchConfig, cache: dict | None = None) -> Backend:
    """Load (or reuse from ``cache``) the backend a config names."""
    key = (config.backend, config.preset, config.model, config.verifier_model)  # the prompt is a target, not a model
    if cache is not None and key in cache:
        return cache[key]
    backend = load_backend(
        config.backend, preset=config.preset, model=config.model, prompt=config.prompt, verifier_model=config.verifier_model
    )
    if cache is not None:
        cache[key] = backend
    return backend


def build_problem(
    config: SearchConfig, backend: Backend | None = None, cache: dict | None = None, verifiers: bool = True
) -> Problem:
    """Validate ``config`` and assemble the problem: backend, condition, verifiers, avoidance.

    ``verifiers=False`` builds a plain-sampling problem (no search or held-out verifier).
    """
    config.validate()
    backend = backend if backend is not None else backend_for(config, cache)
    target = config.target if config.target is not None else backend.default_target()
    if config.target is None and config.prompt is not None and "prompt" in BACKENDS[config.backend].options:
        target = config.prompt  # text-to-image: the prompt is the target (one cached model serves every prompt)
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
    )
