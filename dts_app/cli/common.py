"""Shared CLI plumbing: flags built from :data:`dts_app.config.FIELDS`, one-line errors,
deterministic JSON output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..config import FIELDS, ConfigError, ObstacleSpec, SearchConfig

__all__ = ["OneLineParser", "add_config_flags", "config_from_args", "write_json", "fail"]


class OneLineParser(argparse.ArgumentParser):
    """argparse with a single-line error message (and exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _flag(parser, name: str, typ, default, extra: str = ""):
    spec = FIELDS[name]
    rng = f" Choices: {', '.join(spec.choices)}." if spec.choices else f" Range [{spec.lo}, {spec.hi}]."
    kw = {"choices": spec.choices} if spec.choices else {"type": typ}
    parser.add_argument(
        spec.cli_flag, dest=name, default=default, help=f"{spec.label}: {spec.help}{rng}{extra} Default: {default}.", **kw
    )


def add_config_flags(parser: argparse.ArgumentParser, names: tuple[str, ...], defaults: SearchConfig) -> None:
    """Add ``--backend/--preset/--model/--class/...`` and the named numeric knobs."""
    from ..backends.registry import BACKENDS

    presets = sorted({p for s in BACKENDS.values() for p in s.presets})
    parser.add_argument(
        "--backend", default=defaults.backend, choices=list(BACKENDS), help=f"Backend. Default: {defaults.backend}."
    )
    parser.add_argument(
        "--preset",
        default=None,
        help=f"Backend preset (gmm: {', '.join(presets)}). Default: the backend's own (gmm: {defaults.preset}).",
    )
    parser.add_argument("--model", default=None, help="Hub id or local directory of a model (real-model backends only).")
    parser.add_argument("--prompt", default=None, help="Text prompt (text-to-image and shapes backends).")
    parser.add_argument(
        "--verifier-model",
        dest="verifier_model",
        default=None,
        help="CLIP/DINOv2 hub id or dir for real-model verifiers (DIR, or clip=DIR,dino=DIR).",
    )
    parser.add_argument(
        "--class",
        "--target",
        dest="target",
        default=None,
        help="Class or component to condition on / score for. Default: the backend's own.",
    )
    for name in names:
        spec = FIELDS[name]
        typ = int if spec.integer else float
        _flag(parser, name, typ, getattr(defaults, name))


def add_obstacle_flags(parser: argparse.ArgumentParser, defaults: SearchConfig) -> None:
    parser.add_argument(
        "--obstacle",
        action="append",
        default=[],
        metavar="KIND:VALUE",
        help="Repeatable. point:x1,x2,... (a point in x̂0 space), ball:x1,x2,...,radius, component:K (gmm), "
        "class:K (digits), concept:TEXT (text-to-image; shapes: a colour, shape or quadrant); append @eta=..,q=.. to override η and Q* for it.",
    )
    for name in ("eta", "q_star", "avoid", "measure", "max_reverts"):
        spec = FIELDS[name]
        _flag(parser, name, int if spec.integer else float, getattr(defaults, name))


def _target(value):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        if "," in value:
            try:
                return tuple(int(v) for v in value.split(","))
            except ValueError:
                pass
    raise ConfigError(f"--class: expected an integer (or K1,K2,... for gmm), got {value!r}")


def config_from_args(args: argparse.Namespace, **extra) -> SearchConfig:
    """A validated SearchConfig from parsed args (unknown attributes ignored)."""
    base = SearchConfig()
    changes = {}
    for f in base.__dataclass_fields__:
        if hasattr(args, f) and f not in ("obstacles", "target"):
            changes[f] = getattr(args, f)
    if changes.get("preset") is None and getattr(args, "backend", "gmm") != "gmm":
        changes["preset"] = None
    elif changes.get("preset") is None:
        changes["preset"] = base.preset
    changes["target"] = _target(getattr(args, "target", None))
    obstacles = tuple(ObstacleSpec.parse(o) for o in getattr(args, "obstacle", []) or [])
    changes["obstacles"] = obstacles
    changes.update(extra)
    from ..search.problem import validate

    return validate(base.replace(**changes))


def _clean(o):
    if isinstance(o, float):
        return None if math.isnan(o) or math.isinf(o) else o
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json(path: str | None, payload: dict) -> None:
    """Write ``payload`` as JSON (NaN/inf become null) to ``path`` or stdout (``-``)."""
    text = json.dumps(_clean(payload), indent=None, separators=(",", ":"), sort_keys=False)
    if path is None or path == "-":
        sys.stdout.write(text + "\n")
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text + "\n")
