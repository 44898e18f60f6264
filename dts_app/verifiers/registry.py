"""The one verifier registry: which verifiers exist, their kind, and for each backend the
factory that builds it (``"module:Class"``, imported lazily by
:func:`dts_app.registry.load_object`). Drives the CLI choices and the UI's dropdowns (only
verifiers that the chosen backend supports are offered).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry, load_object
from .base import Verifier

__all__ = ["VerifierSpec", "VERIFIERS", "build_verifier", "verifiers_for"]


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    kind: str
    description: str
    factories: tuple[tuple[str, str], ...]  # (backend name, "module:callable(backend, target)")

    def factory_for(self, backend: str) -> str | None:
        return dict(self.factories).get(backend)


VERIFIERS: Registry[VerifierSpec] = Registry(
    "verifier",
    [
        VerifierSpec(
            "oracle",
            "oracle",
            "Ground truth: exact log-density of the target (gmm); the independent held-out classifier (digits); "
            "the exact program checker's graded score, pass = 1 (shapes).",
            (
                ("gmm", "dts_app.verifiers.gmm:GMMOracle"),
                ("digits", "dts_app.verifiers.digits:DigitsOracle"),
                ("shapes", "dts_app.verifiers.shapes:ShapesOracle"),
            ),
        ),
        VerifierSpec(
            "clip",
            "supervised",
            "CLIP text–image score (100·cosine) with the prompt or 'a photo of a {class}' (--verifier-model).",
            (("dit", "dts_app.verifiers.clip:CLIPScore"), ("t2i", "dts_app.verifiers.clip:CLIPScore")),
        ),
        VerifierSpec(
            "clip-zeroshot",
            "supervised",
            "CLIP zero-shot log-probability of the ImageNet class among all class names (--verifier-model).",
            (("dit", "dts_app.verifiers.clip:CLIPZeroShot"),),
        ),
        VerifierSpec(
            "dino-agreement",
            "self_supervised",
            "DINOv2 feature cosine between the decoded x̂0 at t = 0.4 and the final image (--verifier-model).",
            (("dit", "dts_app.verifiers.dino:DinoAgreement"), ("t2i", "dts_app.verifiers.dino:DinoAgreement")),
        ),
        VerifierSpec(
            "supervised",
            "supervised",
            "A trained classifier's log-probability of the target (hackable off the data).",
            (
                ("gmm", "dts_app.verifiers.gmm:GMMClassifier"),
                ("digits", "dts_app.verifiers.digits:DigitsSupervised"),
                ("shapes", "dts_app.verifiers.shapes:ShapesSupervised"),
                ("dit", "dts_app.verifiers.clip:CLIPZeroShot"),
                ("t2i", "dts_app.verifiers.clip:CLIPScore"),
            ),
        ),
        VerifierSpec(
            "self-supervised",
            "self_supervised",
            "Agreement of the clean prediction at t = 0.4 with the final sample; no labels.",
            (
                ("gmm", "dts_app.verifiers.gmm:AnchorAgreement"),
                ("digits", "dts_app.verifiers.digits:DigitsAgreement"),
                ("shapes", "dts_app.verifiers.shapes:ShapesAgreement"),
                ("dit", "dts_app.verifiers.dino:DinoAgreement"),
                ("t2i", "dts_app.verifiers.dino:DinoAgreement"),
            ),
        ),
    ],
)


def verifiers_for(backend: str) -> list[str]:
    """Names of verifiers that support ``backend``, in registry order."""
    return [n for n, s in VERIFIERS.items() if s.factory_for(backend)]


def build_verifier(name: str, backend, target) -> Verifier:
    """Build verifier ``name`` for a loaded backend instance and a target."""
    path = VERIFIERS.spec(name).factory_for(backend.name)
    if path is None:
        raise ValueError(
            f"verifier {name!r} is not available for backend {backend.name!r}; "
            f"choose one of {', '.join(verifiers_for(backend.name))}"
        )
    return load_object(path)(backend, target)
