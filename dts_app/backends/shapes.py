"""The embedded shapes backend: a prompt-conditional flow-matching model of procedurally
rendered scenes (1–4 coloured circles, squares and triangles, 32×32 RGB), trained by
``python -m dts_app train-shapes`` and shipped in ``assets/shapes`` (safetensors).

The network predicts the velocity ``ε − x0`` of the linear interpolant directly, so no
conversion is needed. The condition is a prompt in the grammar of
:mod:`dts_app.shapes.prompts` ("two red circles", "a blue square left of a yellow
triangle"), parsed once per condition into seven structured tokens; classifier-free
guidance uses the null tokens, both halves in one forward (2 NFEs per image when the
guidance scale ≠ 0, 1). Latents are ``[3, 32, 32]`` in [−1, 1]; ``decode`` maps them to
images in [0, 1].

``concept:TEXT`` obstacles ("no red objects", "nothing in the top-left quadrant") are
regions of the CNN classifier's features built from seeded renders: its pooled features
for a colour or shape, its feature map's cells for a place, with Q* measured on this
model's samples (:mod:`dts_app.shapes.concepts`, ``concepts.json``).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..interpolant import as_time
from .base import Backend, Condition, Target

__all__ = ["ShapesBackend", "DEFAULT_DIR", "DEFAULT_PROMPT", "load_shapes_backend"]

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "assets" / "shapes"
DEFAULT_PROMPT = "two red circles"
DEFAULT_GUIDANCE = 2.0


class ShapesBackend(Backend):
    name = "shapes"
    data_kind = "image"
    latent_shape = (3, 32, 32)
    supports_guidance = True
    cheap_scores = True  # the checker and a small CNN: scoring every node for the UI costs little

    def __init__(self, model: str | Path | None = None, prompt: str | None = None):
        from ..shapes.model import load_model

        self.model_dir = Path(model) if model else DEFAULT_DIR
        if not (self.model_dir / "model.safetensors").exists():
            from ..config import ConfigError

            raise ConfigError("--model: no shapes model there (run `python -m dts_app train-shapes --out DIR`)")
        self.net = load_model(self.model_dir / "model")
        self._forward = _traced(self.net)
        self.prompt = prompt or DEFAULT_PROMPT
        self._cnn = None

    # --- conditioning ---------------------------------------------------------------
    def targets(self) -> list[Target]:
        from ..shapes.prompts import EXAMPLES

        prompts = [self.prompt] + [e for e in EXAMPLES if e != self.prompt]
        return [Target(p, p) for p in prompts]

    def default_target(self) -> str:
        return self.prompt

    def spec(self, prompt: Any):
        """The parsed prompt (:class:`~dts_app.shapes.prompts.PromptSpec`); a ValueError
        naming the grammar for anything else."""
        from ..shapes.prompts import PromptError, parse

        try:
            return parse(str(prompt))
        except PromptError as e:
            raise ValueError(f"--prompt: {e}") from None

    def condition(self, target: Any = None, guidance: float = DEFAULT_GUIDANCE) -> Condition:
        from ..shapes.prompts import NULL_TOKENS, tokens

        if target is None:
            return Condition(NULL_TOKENS, 1.0, "unconditional")
        spec = self.spec(target)
        return Condition(tokens(spec), float(guidance), f"{spec.text()}, guidance {guidance:g}")

    @torch.no_grad()
    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        from ..shapes.prompts import NULL_TOKENS

        b = x.shape[0]
        ts = as_time(t, x).reshape(b).float()
        toks = torch.tensor([cond.value], dtype=torch.long).expand(b, -1)
        null = torch.tensor([NULL_TOKENS], dtype=torch.long).expand(b, -1)
        if cond.value == NULL_TOKENS or cond.guidance == 0.0:  # v_u + 0·(v_c − v_u): one forward
            return self._forward(x, ts, null)
        if cond.guidance == 1.0:
            return self._forward(x, ts, toks)
        both = self._forward(torch.cat([x, x]), torch.cat([ts, ts]), torch.cat([toks, null]))
        v_c, v_u = both[:b], both[b:]
        return v_u + cond.guidance * (v_c - v_u)

    def forwards_per_call(self, cond: Condition) -> int:
        from ..shapes.prompts import NULL_TOKENS

        return 2 if (cond.value != NULL_TOKENS and cond.guidance not in (0.0, 1.0)) else 1

    def decode(self, x0: Tensor) -> Tensor:
        """Images ``[B, 3, 32, 32]`` in [0, 1]."""
        return ((x0 + 1.0) / 2.0).clamp(0.0, 1.0)

    # --- the shipped classifier and concept obstacles -----------------------------------
    def classifier(self):
        """The CNN attribute/count classifier (:class:`~dts_app.shapes.classifier.ShapesCNN`),
        loaded once per backend."""

        def load():
            from ..shapes.classifier import ShapesCNN
            from ..shapes.model import load_model

            return load_model(self.model_dir / "classifier", ShapesCNN)

        return self.cache.get(("classifier",), load)

    def obstacle_points(self, kind: str, value: Any) -> Tensor:
        """``concept:TEXT``: the concept's points in the CNN's features, from seeded renders
        (:func:`~dts_app.shapes.concepts.concept_points`)."""
        if kind != "concept":
            raise ValueError(f"the shapes backend takes concept:TEXT obstacles (e.g. concept:red objects), not {kind!r}")
        from ..shapes.concepts import concept_points

        return self.cache.get(("concept", str(value)), lambda: concept_points(self.classifier(), str(value)))

    def concept_q_star(self, text: str) -> float | None:
        """Q* of a concept measured on this model's samples (``concepts.json`` beside the
        weights, written by ``python -m dts_app.shapes.concepts``), or None if not measured."""

        def load() -> dict:
            path = self.model_dir / "concepts.json"
            try:
                return {k: v["samples"]["q_star"] for k, v in json.loads(path.read_text())["concepts"].items()}
            except (OSError, ValueError, KeyError, TypeError):
                return {}

        q = self.cache.get(("concept q*",), load).get(" ".join(str(text).lower().split()))
        return float(q) if isinstance(q, (int, float)) else None

    def obstacle_q_star(self, kind: str, value: Any) -> float | None:
        """A concept without ``@q=`` takes its Q* measured on this model's samples, or, if it
        has none, on seeded renders (:func:`~dts_app.shapes.concepts.measure_q_star`, about
        a second, once): its space has its own scale (about 16–19 pooled, 1.5 in cells)."""
        if kind != "concept":
            return None
        q = self.concept_q_star(str(value))
        if q is not None:
            return q
        from ..shapes.concepts import measure_q_star

        try:
            return self.cache.get(
                ("concept q* renders", str(value)), lambda: measure_q_star(self.classifier(), str(value))["q_star"]
            )
        except ValueError:
            return None  # an unreadable concept: obstacle_points says why

    def obstacle_features(self, kind: str, value: Any = None):
        """``concept`` obstacles live in the CNN's features: ``("cnn", f)`` with ``f(x0)`` the
        pooled features ``[B, 128]``, or for a place ``("cnn cells", f)`` with its feature
        map's cells ``[B, 64, 66]`` (:mod:`~dts_app.shapes.concepts`; differentiable, for repulsion)."""
        if kind != "concept":
            return super().obstacle_features(kind, value)
        from ..shapes.concepts import concept_features, in_cells, parse_concept

        cnn, concept = self.classifier(), parse_concept(str(value))
        return ("cnn cells" if in_cells(concept) else "cnn"), lambda x0: concept_features(cnn, x0.clamp(-1.0, 1.0), concept)

    def describe(self) -> dict:
        return {"name": self.name, "model": str(self.model_dir), "latent_shape": list(self.latent_shape), "prompt": self.prompt,
                "guidance_default": DEFAULT_GUIDANCE, "parameters": sum(p.numel() for p in self.net.parameters())}  # fmt: skip


def load_shapes_backend(model: str | None = None, prompt: str | None = None) -> ShapesBackend:
    return ShapesBackend(model, prompt)


def _traced(net: torch.nn.Module):
    """The network traced with TorchScript when the trace equals the eager forward exactly
    on a batch of another size (else eager); ``DTS_SHAPES_TRACE=0`` turns it off."""
    if os.environ.get("DTS_SHAPES_TRACE", "1") == "0":
        return net
    g = torch.Generator().manual_seed(0)

    def probe(b: int) -> tuple[Tensor, Tensor, Tensor]:
        return torch.randn(b, 3, 32, 32, generator=g), torch.rand(b, generator=g), torch.randint(0, 4, (b, 7), generator=g)

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(net, probe(3), check_trace=False)
            check = probe(5)
            if torch.equal(traced(*check), net(*check)):
                return traced
    except Exception:  # an architecture the tracer cannot follow: eager is always right
        pass
    return net
