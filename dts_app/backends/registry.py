"""The one backend registry: drives CLI dispatch, ``--help`` and the UI's dropdown.

Entries name their loader as ``"module:function"`` so that heavy backends (diffusers,
transformers) are imported only when chosen (:func:`dts_app.registry.load_object`). A
loader takes keyword options (``preset``, ``model``, ``device``, ...) and returns a
:class:`~dts_app.backends.base.Backend`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import Registry, load_object
from .base import Backend

__all__ = ["BackendSpec", "BACKENDS", "load_backend"]


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend.

    Attributes:
        name: the CLI/UI name.
        label: short human-readable label.
        description: one sentence for ``--help`` and the UI.
        loader: ``"module:function"`` returning a Backend from keyword options.
        options: option names the loader accepts (for the CLI and UI).
        presets: named presets (gmm), if any.
        embedded: True when it needs no download (runs out of the box).
        demo: the app's starting controls on this backend (``knob: value``, with
            ``target``, ``verifier`` and ``heldout``): a setting where search has
            something to find.
    """

    name: str
    label: str
    description: str
    loader: str
    options: tuple[str, ...] = ()
    presets: tuple[str, ...] = field(default=())
    embedded: bool = True
    demo: dict = field(default_factory=dict, compare=False, hash=False)


def _gmm_presets() -> tuple[str, ...]:
    from .gmm import PRESETS

    return tuple(PRESETS)


BACKENDS: Registry[BackendSpec] = Registry(
    "backend",
    [
        BackendSpec(
            "gmm",
            "Gaussian mixture (exact)",
            "Closed-form Gaussian-mixture flow: exact velocities, densities and samples.",
            "dts_app.backends.gmm:GMMBackend",
            options=("preset",),
            presets=_gmm_presets(),
            # the app's one budget: every algorithm fits itself to it (best-of-8 × 32 steps)
            demo={"verifier": "oracle", "heldout": "supervised", "budget": 256},
        ),
        BackendSpec(
            "digits",
            "Digits 8×8 (embedded model)",
            "Class-conditional flow-matching UNet trained on scikit-learn's digits, shipped in assets/; --class K.",
            "dts_app.backends.digits:load_digits_backend",
            options=("model",),
            # unguided sampling (guidance 0) with a class reward: one draw in ten is the
            # class, so best-of-N's held-out score rises with N (docs/app.md)
            demo={"guidance": 0.0, "target": 3, "verifier": "supervised", "heldout": "oracle", "n": 16, "budget": 512},
        ),
        BackendSpec(
            "shapes",
            "Shapes 32×32 (embedded, compositional prompts)",
            "Prompt-conditional flow model of rendered coloured shapes, shipped in assets/; --prompt 'two red circles', "
            "exact GenEval-style checker as the oracle.",
            "dts_app.backends.shapes:load_shapes_backend",
            options=("model", "prompt"),
            # a counting prompt the base model often gets wrong: best-of-N with the CNN
            # raises the exact checker's held-out score (docs/shapes.md)
            demo={
                "guidance": 2.0,
                "target": "three squares",
                "verifier": "supervised",
                "heldout": "oracle",
                "n": 8,
                "budget": 512,
            },  # fmt: skip
        ),
        BackendSpec(
            "dit",
            "DiT (class-conditional ImageNet)",
            "diffusers DiT + VAE from a hub id or local dir (--model), VP ε-model converted to the linear path; --class K.",
            "dts_app.backends.dit:load_dit",
            options=("model", "device", "dtype", "compile", "verifier_model"),
            embedded=False,
        ),
        BackendSpec(
            "t2i",
            "Text-to-image (SD3 flow / SD UNet)",
            "diffusers SD3-style flow transformer or SD 1.5/2-style UNet from --model, conditioned on --prompt.",
            "dts_app.backends.t2i:load_t2i",
            options=("model", "prompt", "device", "dtype", "compile", "verifier_model"),
            embedded=False,
        ),
    ],
)


def load_backend(name: str, **options) -> Backend:
    """Instantiate backend ``name`` with the options its spec accepts (others ignored)."""
    spec = BACKENDS.spec(name)
    factory = load_object(spec.loader)
    kwargs = {k: v for k, v in options.items() if k in spec.options and v is not None}
    return factory(**kwargs)
