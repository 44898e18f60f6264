"""The app's controls: their names and order, their defaults, and how control values
become a validated :class:`~dts_app.config.SearchConfig` (the server validates again
whatever a browser or API client sends)."""

from __future__ import annotations

from typing import Any

from ..config import ConfigError, ObstacleSpec, SearchConfig

__all__ = ["SLIDERS", "LIVE", "INPUTS", "input_values", "parse_obstacles", "config_from", "target_value"]

SLIDERS: tuple[str, ...] = ("n", "m", "eta", "q_star", "steps", "budget", "seed", "delta_f", "delta_b", "lam", "guidance")
LIVE: tuple[str, ...] = ("eta", "q_star", "n", "m")
INPUTS: tuple[str, ...] = (
    "backend",
    "preset",
    "target",
    "algorithm",
    "verifier",
    "heldout",
    *SLIDERS,
    "solver",
    "avoid",
    "obstacles",
    "embed",
    "model",
    "prompt",
    "verifier_model",
)


def input_values(**changes: Any) -> list:
    """Control values in :data:`INPUTS` order: the app's gmm defaults with ``changes``
    (for API clients, tests and the latency benchmark)."""
    d = SearchConfig()
    base = {k: getattr(d, k) for k in SLIDERS}
    base.update(
        backend=d.backend,
        preset=d.preset,
        target=None,
        algorithm=d.algorithm,
        verifier=d.verifier,
        heldout="supervised",
        solver=d.solver,
        avoid=d.avoid,
        obstacles="",
        embed="pca",
        model="",
        prompt="",
        verifier_model="",
    )
    unknown = set(changes) - set(INPUTS)
    if unknown:
        raise ValueError(f"unknown controls: {', '.join(sorted(unknown))}")
    base.update(changes)
    return [base[k] for k in INPUTS]


def parse_obstacles(text: str) -> tuple[ObstacleSpec, ...]:
    """One obstacle per line (or ';'-separated): ``ball:x,y,r``, ``point:x,y``,
    ``component:k``, ``class:k``; blank lines and ``#`` comments are skipped."""
    out = []
    for line in (text or "").replace(";", "\n").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(ObstacleSpec.parse(line))
    return tuple(out)


def target_value(value: Any) -> Any:
    if value in (None, "", "default"):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    head = str(value).split(":", 1)[0].strip()
    return int(head) if head.lstrip("-").isdigit() else str(value)


def config_from(values: dict) -> SearchConfig:
    """A validated SearchConfig from control values keyed by :data:`INPUTS` names.

    Raises:
        ConfigError: a knob out of range or a bad combination (one line).
    """
    ints = {"n", "m", "steps", "budget", "seed", "delta_f", "delta_b"}
    kw: dict[str, Any] = {}
    for k in SLIDERS:
        v = values.get(k)
        if v is None:
            continue
        try:
            kw[k] = int(round(float(v))) if k in ints else float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{k}: expected a number, got {v!r}") from None
    cfg = SearchConfig(
        backend=values.get("backend") or "gmm",
        preset=(values.get("preset") or None) if _has_presets(values.get("backend") or "gmm") else None,
        target=target_value(values.get("target")),
        algorithm=values.get("algorithm") or "best-of-n",
        verifier=values.get("verifier") or "oracle",
        heldout=values.get("heldout") or "",
        solver=values.get("solver") or "euler",
        avoid=values.get("avoid") or "none",
        obstacles=parse_obstacles(values.get("obstacles") or ""),
        model=(values.get("model") or "").strip() or None,
        prompt=(values.get("prompt") or "").strip() or None,
        verifier_model=(values.get("verifier_model") or "").strip() or None,
        **kw,
    )
    from ..search.problem import validate

    return validate(cfg)


def _has_presets(backend: str) -> bool:
    from ..backends.registry import BACKENDS

    return bool(BACKENDS[backend].presets) if backend in BACKENDS else True
