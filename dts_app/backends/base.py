"""The backend contract: a denoiser in the linear-interpolant convention plus what the
search and the UI need to know about it.

A backend converts its own parametrisation (VP ε-prediction, x0-prediction, flow
velocity) to the convention of :mod:`dts_app.interpolant` *once*, inside
:meth:`Backend.velocity`. Classifier-free guidance is applied there too, and
:meth:`Backend.forwards_per_call` tells the ledger what one call costs per image.

Search code never calls :meth:`Backend.velocity` directly: it goes through
:class:`Field`, which binds a condition, charges the ledger before each call and chunks
large batches.

Everything the search, the obstacles, the verifiers and the UI may ask of a backend is
declared here (no attribute probing): :attr:`Backend.has_decoder`,
:attr:`Backend.verifier_model`, :attr:`Backend.model_dtype`,
:meth:`Backend.builtin_obstacles`, :meth:`Backend.reference_mixture` and the per-instance
:attr:`Backend.cache`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..ledger import Ledger
from .cache import ModelCache

if TYPE_CHECKING:
    from .mixture import GaussianMixture

__all__ = ["Condition", "Target", "Backend", "Field", "ModelCache"]

_CACHE_INIT = threading.Lock()


@dataclass(frozen=True)
class Condition:
    """What the denoiser is conditioned on.

    Attributes:
        value: backend-specific (gmm: a tuple of component indices or ``None`` for the full
            mixture; class-conditional models: an int class; text-to-image: prompt
            embeddings prepared once per search).
        guidance: classifier-free guidance scale (1 = none; ignored where not supported).
        label: human-readable description for traces and the UI.
    """

    value: Any = None
    guidance: float = 1.0
    label: str = "unconditional"


@dataclass(frozen=True)
class Target:
    """A choice of what to condition on or score for (a class, a component)."""

    value: Any
    label: str


class Backend(ABC):
    """Base class of every backend (see module docstring).

    Subclasses set ``name``, ``latent_shape``, ``data_kind`` (``"points"`` for vectors,
    ``"image"`` for pixel or latent images) and implement :meth:`_velocity`.
    """

    name: str = "base"
    data_kind: str = "points"
    latent_shape: tuple[int, ...] = ()
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    supports_guidance: bool = False
    #: class-conditional models always condition on the target; the exact mixture can
    #: sample the full mixture and be *scored* for a component (``condition`` opts in)
    conditions_on_target: bool = True
    #: verifiers cheap enough to score every trace node for the UI (diagnostics)
    cheap_scores: bool = False
    #: :meth:`decode` runs a learned decoder (a VAE) that the ledger counts
    #: (:meth:`Field.decode`); False where decoding is a cheap fixed map
    has_decoder: bool = False
    #: CLIP/DINOv2 source(s) for the real-model verifiers: ``SRC`` or ``clip=SRC,dino=SRC``
    verifier_model: str | None = None
    #: dtype of the network weights (``dtype`` is that of the states, velocities and ODE)
    model_dtype: torch.dtype = torch.float32

    # --- per-instance cache ---------------------------------------------------------
    @property
    def cache(self) -> ModelCache:
        """Things built once per backend instance (verifier models, encoded prompts,
        fitted classifiers), thread-safe; created on first use."""
        c = self.__dict__.get("_model_cache")
        if c is None:
            with _CACHE_INIT:
                c = self.__dict__.get("_model_cache")
                if c is None:
                    c = self.__dict__["_model_cache"] = ModelCache()
        return c

    # --- conditioning ---------------------------------------------------------------
    def targets(self) -> list[Target]:
        """Classes or components that can be conditioned on or scored for."""
        return []

    def default_target(self) -> Any:
        """The target used when the user names none."""
        ts = self.targets()
        return ts[0].value if ts else None

    def condition(self, target: Any = None, guidance: float = 1.0) -> Condition:
        """Build the condition for ``target`` (``None``: unconditional)."""
        return Condition(value=target, guidance=guidance, label=str(target))

    def forwards_per_call(self, cond: Condition) -> int:
        """Image-forwards per image in one :meth:`velocity` call (2 with CFG)."""
        return 2 if (self.supports_guidance and cond.guidance != 1.0) else 1

    # --- the denoiser ---------------------------------------------------------------
    def velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        """Velocity ``v(x, t) = E[ε − x0 | x_t = x]`` for a batch ``[B, *latent_shape]``."""
        return self._velocity(x, t, cond)

    @abstractmethod
    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        """The backend's own velocity computation (converted to the linear interpolant)."""

    def decode(self, x0: Tensor) -> Tensor:
        """Map clean latents to what verifiers and the gallery see (identity by default)."""
        return x0

    # --- obstacles ------------------------------------------------------------------
    def builtin_obstacles(self) -> tuple[tuple[str, Any], ...]:
        """Obstacles the backend defines itself, as ``(kind, value)`` pairs in the kinds
        of :meth:`obstacle_points` (gmm ``trap``: ``(("component", 1),)``); default none."""
        return ()

    def obstacle_points(self, kind: str, value: Any) -> Tensor:
        """Points ``[P, *latent_shape]`` in x̂0 space for a backend-specific obstacle kind
        (gmm ``component``, digits ``class``, ...). Generic kinds (``point``, ``ball``) are
        handled by :mod:`dts_app.obstacles.avoidance` for every backend."""
        raise ValueError(f"the {self.name} backend has no {kind!r} obstacles; use point:... or ball:...")

    def obstacle_q_star(self, kind: str, value: Any) -> float | None:
        """The Q* an obstacle of ``kind`` and ``value`` takes when none is given with it
        (``@q=``): the measured scale of its own feature space; None (default) for the
        run's ``q_star``."""
        return None

    def obstacle_features(self, kind: str, value: Any = None) -> tuple[str, Callable[[Tensor], Tensor] | None]:
        """The space a ``kind`` obstacle (of ``value``) lives in: ``(name, features)`` where
        ``features`` maps clean latents ``[B, *latent_shape]`` to ``[B, F]``, or to a set
        ``[B, K, F]`` of local features whose nearest member gives D (``None``: x̂0 itself)."""
        return "x0", None

    # --- description ----------------------------------------------------------------
    def reference_mixture(self) -> GaussianMixture | None:
        """The exact Gaussian mixture behind the backend (gmm), else ``None``: lets views
        draw true densities and tests compare with closed forms."""
        return None

    def describe(self) -> dict:
        """JSON-serialisable description of the backend (for the CLI and traces)."""
        return {"name": self.name, "latent_shape": list(self.latent_shape)}


@dataclass
class Field:
    """A backend's velocity with its condition bound, counted by a ledger.

    ``Field(backend, cond, ledger)(x, t)`` charges ``len(x)·forwards_per_call`` NFEs (raising
    :class:`~dts_app.ledger.BudgetExceeded` *before* computing when over budget) and
    evaluates the velocity in chunks of at most ``max_batch``.
    """

    backend: Backend
    cond: Condition
    ledger: Ledger
    max_batch: int = 4096

    @property
    def cost_per_image(self) -> int:
        return self.backend.forwards_per_call(self.cond)

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        self.ledger.charge_denoiser(x.shape[0], self.cost_per_image)
        with torch.no_grad():  # sampling never differentiates the denoiser (no graph, less memory)
            if x.shape[0] <= self.max_batch:
                return self.backend.velocity(x, t, self.cond)
            tt = torch.as_tensor(t)
            outs = []
            for i in range(0, x.shape[0], self.max_batch):
                ti = tt if tt.ndim == 0 else tt[i : i + self.max_batch]
                outs.append(self.backend.velocity(x[i : i + self.max_batch], ti, self.cond))
            return torch.cat(outs)

    def decode(self, x0: Tensor) -> Tensor:
        """Decode clean latents, counting decoder calls."""
        self.ledger.charge_decoder(x0.shape[0])
        return self.backend.decode(x0)
