"""Every knob of a search in one validated dataclass, with ranges and help text.

:data:`FIELDS` holds each numeric knob's range, label (with the symbol the method uses)
and a plain-words help line; the CLI builds its flags and the UI its sliders from it, and
:meth:`SearchConfig.validate` checks values again on the server (requests can come from an
API client too). Errors are :class:`ConfigError` with one line naming the field and range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = ["ConfigError", "FieldSpec", "FIELDS", "SearchConfig", "ObstacleSpec"]


class ConfigError(ValueError):
    """A bad knob value; the message names the knob and what is allowed."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    help: str
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    choices: tuple[str, ...] = ()
    flag: str = ""  # CLI flag; default "--" + name with dashes

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> None:
        """Raise :class:`ConfigError` (one line naming the flag) unless ``value`` is allowed:
        one of ``choices``, or a finite number (an integer where ``integer``) in
        ``[lo, hi]``. NaN and ±inf are refused (comparisons with NaN are all False, so a
        plain range check would let it through)."""
        if value is None:
            return
        if self.choices:
            if not isinstance(value, str) or value not in self.choices:
                raise ConfigError(f"{self.cli_flag}: {_show(value)} is not one of {', '.join(self.choices)}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.cli_flag}: expected a number, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{self.cli_flag}: must be a finite number, got {value}")
        if self.integer and int(value) != value:
            raise ConfigError(f"{self.cli_flag}: must be an integer, got {_show(value)}")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            # a Python int can exceed any float (10**400): show it cut, never format it as one
            shown = f"{value:.6g}" if isinstance(value, float) or abs(value) < 10**15 else _show(value, 24)
            raise ConfigError(f"{self.cli_flag}: {shown} is outside [{self.lo}, {self.hi}]")


def _show(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (messages stay one short line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(text: str, what: str) -> float:
    """``float(text)``, refusing NaN and ±inf with a one-line :class:`ConfigError`."""
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"--obstacle: {what} {_show(text.strip())} is not a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"--obstacle: {what} must be a finite number, got {text.strip()}")
    return v


_SPECS = [
    FieldSpec(
        "n",
        "N: candidates",
        "How many noises (or surviving paths) the search keeps in play; samples for sample.",
        1,
        100_000,
        True,
    ),
    FieldSpec("m", "M: branches per candidate", "Search over paths and tree search: children drawn per kept path.", 1, 64, True),
    FieldSpec("steps", "steps", "Denoising steps from t = 1 to t = 0.", 1, 1000, True),
    FieldSpec("budget", "NFE budget", "Most denoiser image-forwards the search may spend (0 = no cap).", 0, 10_000_000, True),
    FieldSpec("seed", "seed", "Base seed; every candidate has its own stream derived from it.", 0, 2**31 - 1, True),
    FieldSpec(
        "guidance", "guidance scale", "Classifier-free guidance scale (1 = off; costs 2 NFEs per image when on).", 0.0, 20.0
    ),
    FieldSpec("shift", "time shift", "Time-grid shift: >1 spends more steps at high noise.", 0.1, 10.0),
    FieldSpec("sde_gamma", "γ: SDE noise", "Noise of the reverse SDE, g(t)² = 2γt (0 = ODE).", 0.0, 5.0),
    FieldSpec(
        "lam",
        "λ: neighbourhood radius",
        "Zero-order search: neighbours are cos λ·pivot + sin λ·ξ (at angle ≈ λ from the pivot in high dimension).",
        0.0,
        2.0,
    ),
    FieldSpec("iterations", "K: iterations", "Zero-order search: pivot updates.", 1, 1000, True),
    FieldSpec("sigma", "σ: start level", "Search over paths: noise level t where branching starts.", 0.0, 1.0),
    FieldSpec("delta_f", "Δf: forward steps", "Search over paths: grid steps re-noised forward per round.", 1, 100, True),
    FieldSpec("delta_b", "Δb: backward steps", "Search over paths: grid steps solved back per round (> Δf).", 1, 200, True),
    FieldSpec("temperature", "τ: backup temperature", "Tree search: soft-max backup temperature (small = greedy).", 1e-4, 100.0),
    FieldSpec(
        "c_uct", "c: exploration", "Tree search (max): 0 = greedy selection (DTS*); > 0 = UCT with this weight.", 0.0, 10.0
    ),
    FieldSpec(
        "draws",
        "K: draws",
        "Soft tree search: independent draws from the built tree (the first is the answer).",
        1,
        100_000,
        True,
    ),
    FieldSpec(
        "batch",
        "K: batch",
        "Tree search: leaves expanded and rolled out together per iteration (1 = one at a time).",
        1,
        4096,
        True,
    ),
    FieldSpec(
        "ess_threshold",
        "ESS threshold",
        "SMC and --avoid smc: resample when the effective sample size falls below this fraction of N.",
        0.0,
        1.0,
    ),
    FieldSpec("resample_every", "resample every", "SMC: score and consider resampling every this many steps.", 1, 1000, True),
    FieldSpec("resample_from", "resample from t", "SMC: resampling starts once t ≤ this (1 = from the start).", 0.0, 1.0),
    FieldSpec(
        "resample_until", "resample until t", "SMC: no resampling below this t (the final step always resamples).", 0.0, 1.0
    ),
    FieldSpec("eta", "η: repulsion strength", "Strength of the repulsive potential around obstacles.", 0.0, 100.0),
    FieldSpec(
        "q_star",
        "Q*: influence radius",
        "Distance within which an obstacle repels (and counts as a collision); a shapes concept takes its own, measured.",
        1e-3,
        100.0,
    ),
    FieldSpec("max_reverts", "R: max reverts", "Revert-and-resample: fresh tries per step before giving up.", 0, 100, True),
    FieldSpec("solver", "solver", "ODE/SDE stepper.", choices=("euler", "heun", "sde")),
    FieldSpec("avoid", "avoidance", "How paths treat obstacles.", choices=("none", "repulsion", "revert", "prune", "smc")),
    FieldSpec(
        "measure",
        "D measured on",
        "x0: on the clean prediction; xt: on the noisy state against obstacles carried to t.",
        choices=("x0", "xt"),
    ),
    FieldSpec(
        "potential", "FK potential", "SMC: difference (samples p0·exp(r/τ)), max or add.", choices=("difference", "max", "add")
    ),
    FieldSpec(
        "backup",
        "backup",
        "Tree search: max (pure search) or soft (sampling from the reward-tilted law).",
        choices=("max", "soft"),
    ),
]
FIELDS: dict[str, FieldSpec] = {s.name: s for s in _SPECS}


@dataclass(frozen=True)
class ObstacleSpec:
    """An obstacle as the user gives it (``--obstacle KIND:ARGS``).

    Kinds: ``point`` (coordinates), ``ball`` (coordinates, last value the radius),
    ``component`` (a gmm component index), ``class`` (a digits class), ``concept`` (text).
    ``eta`` and ``q_star`` override the run's defaults for this obstacle.
    """

    kind: str
    value: Any
    eta: float | None = None
    q_star: float | None = None

    @staticmethod
    def parse(text: str) -> ObstacleSpec:
        """One obstacle from ``KIND:VALUE[@eta=..,q=..]``.

        Coordinates and overrides must be finite numbers; a ball's radius is ≥ 0; the
        overrides are checked against the run-wide ranges of ``--eta`` (η ≥ 0) and
        ``--q-star`` (Q* > 0). The dimension is checked where the backend is known.

        Raises:
            ConfigError: one line naming what is wrong.
        """
        if not isinstance(text, str) or ":" not in text:
            raise ConfigError(f"--obstacle: expected KIND:VALUE (point:x1,x2 | component:K | class:K), got {_show(text)}")
        kind, _, rest = text.partition(":")
        kind = kind.strip()
        opts: dict[str, float] = {}
        if "@" in rest:  # per-obstacle overrides: point:1,2@eta=2,q=0.5
            rest, _, tail = rest.partition("@")
            for kv in tail.split(","):
                k, _, v = kv.partition("=")
                name = {"eta": "eta", "q": "q_star", "q_star": "q_star"}.get(k.strip())
                if name is None or not v.strip():
                    raise ConfigError(f"--obstacle: bad override {_show(kv)} (use eta=..., q=...)")
                value = _finite(v, "override " + k.strip())
                spec = FIELDS[name]
                if value < spec.lo or value > spec.hi:
                    raise ConfigError(f"--obstacle: override {k.strip()}={value:g} is outside [{spec.lo:g}, {spec.hi:g}]")
                opts[name] = value
        if kind in ("point", "ball"):
            parts = rest.split(",")
            if not rest.strip() or any(not p.strip() for p in parts):
                raise ConfigError(f"--obstacle: cannot read {_show(text)} (use {kind}:x1,x2{',r' if kind == 'ball' else ''})")
            value: Any = tuple(_finite(p, "coordinate") for p in parts)
            if kind == "ball" and len(value) < 2:
                raise ConfigError(f"--obstacle: cannot read {_show(text)} (use ball:x1,x2,r)")
            if kind == "ball" and value[-1] < 0:
                raise ConfigError(f"--obstacle: ball radius must be ≥ 0, got {value[-1]:g}")
        elif kind in ("component", "class"):
            try:
                value = int(rest)
            except ValueError:
                raise ConfigError(f"--obstacle: cannot read {_show(text)} ({kind}:K with an integer K)") from None
        elif kind == "concept":
            value = rest.strip()
            if not value:
                raise ConfigError(f"--obstacle: cannot read {_show(text)} (concept:TEXT)")
        else:
            raise ConfigError(f"--obstacle: unknown kind {_show(kind)} (point, ball, component, class, concept)")
        return ObstacleSpec(kind, value, **opts)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchConfig:
    """All knobs of one search (defaults are the app's defaults on the gmm backend)."""

    backend: str = "gmm"
    preset: str | None = "trap"
    model: str | None = None
    verifier_model: str | None = None  # CLIP/DINOv2 source(s) for real-model verifiers: DIR or clip=DIR,dino=DIR
    prompt: str | None = None
    target: Any = None  # class / component; None = the backend's default
    condition: bool = False  # gmm: also restrict the mixture to the target (class-conditional backends always condition)
    guidance: float = 1.0
    algorithm: str = "best-of-n"
    verifier: str = "oracle"
    heldout: str = "oracle"
    n: int = 8
    m: int = 4
    steps: int = 32
    solver: str = "euler"
    shift: float = 1.0
    sde_gamma: float = 0.5
    budget: int = 0
    seed: int = 0
    lam: float = 0.75
    iterations: int = 4
    sigma: float = 0.75
    delta_f: int = 2
    delta_b: int = 4
    temperature: float = 0.1
    c_uct: float = 0.0
    backup: str = "max"
    draws: int = 1
    batch: int = 8
    potential: str = "difference"
    ess_threshold: float = 0.5
    resample_every: int = 1
    resample_from: float = 0.5
    resample_until: float = 0.0
    eta: float = 1.0
    q_star: float = 0.5
    avoid: str = "none"
    measure: str = "x0"
    max_reverts: int = 4
    obstacles: tuple[ObstacleSpec, ...] = field(default_factory=tuple)

    def validate(self) -> SearchConfig:
        """Check every knob against :data:`FIELDS` and cross-field rules; returns self.
        (Names of backends, presets and algorithms are checked against their registries
        by :func:`dts_app.search.problem.validate`.)"""
        for f in fields(self):
            if f.name in FIELDS:
                value = getattr(self, f.name)
                if value is None and f.default is not None:  # e.g. --delta-b left empty: no number to run with
                    raise ConfigError(f"{FIELDS[f.name].cli_flag}: expected a number, got None")
                FIELDS[f.name].check(value)
        if self.algorithm == "tree" and self.sde_gamma == 0:
            raise ConfigError("--sde-gamma: tree search needs γ > 0 (with γ = 0 every child of a node is the same state)")
        if self.sde_gamma == 0 and (self.algorithm == "smc" or self.avoid in ("smc", "revert")):
            what = "smc" if self.algorithm == "smc" else f"--avoid {self.avoid}"
            raise ConfigError(f"--sde-gamma: {what} needs γ > 0 (its particles or redraws must be random continuations)")
        if self.delta_b <= self.delta_f:
            raise ConfigError(f"--delta-b: must exceed --delta-f ({self.delta_f}) so paths make progress")
        return self

    def replace(self, **changes) -> SearchConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["obstacles"] = [o.to_dict() if isinstance(o, ObstacleSpec) else o for o in self.obstacles]
        return d
