"""Adapters: a user's denoiser, in whatever parametrisation, as a :class:`FlowModel` that
:func:`dts_app.search` and :func:`dts_app.sample` drive.

Every adapter returns a :class:`FlowModel`: a :class:`~dts_app.backends.base.Backend` with
its condition bound, in the one time convention of :mod:`dts_app.interpolant` (linear
interpolant ``x_t = (1 − t)·x0 + t·ε``, t = 0 data, t = 1 noise, velocity ``v = ε − x0``).
The conversions are the backends' own (VP tables: :class:`~dts_app.backends.vp.VPTable`;
diffusers pipelines: :class:`~dts_app.backends.dit.DiTBackend` and
:class:`~dts_app.backends.t2i.T2IBackend` built from the loaded modules), so a model wrapped
here computes exactly what the CLI's backend computes from the same weights.

- :func:`from_velocity`: ``velocity(x, t)`` already in this convention;
- :func:`from_x0`: a clean-sample predictor (linear, or VP with a schedule);
- :func:`from_eps`: a VP ε- (or v-) prediction network with its ᾱ schedule;
- :func:`from_diffusers`: a loaded diffusers pipeline object (DiT, SD3-style flow
  transformer, SD 1.5/2 UNet), conditioned on ``class_label`` or ``prompt`` with
  classifier-free ``guidance``; it has ``.shape`` and a VAE decoder.

Heavy libraries (diffusers) are never imported here: pipelines are recognised by their
components' class names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .backends.base import Backend, Condition
from .backends.vp import VPTable
from .config import FIELDS, ConfigError
from .interpolant import as_time, velocity_from_x0

__all__ = ["FlowModel", "CallableBackend", "from_velocity", "from_x0", "from_eps", "from_diffusers", "as_model"]

Shape = tuple[int, ...]


class CallableBackend(Backend):
    """A backend around a plain function of ``(x, t)`` (``t`` a tensor ``[B]``).

    Args:
        fn: the network: ``fn(x [B, *shape], t [B]) -> [B, *shape]``; with a ``table``
            it is called on the VP state and the continuous model timestep ``τ [B]``.
        output: what ``fn`` predicts: ``velocity`` (``ε − x0``), ``x0``, ``epsilon`` or
            ``v_prediction`` (the last two VP only).
        shape: the state shape (without the batch dimension); ``None`` until given.
        table: a VP model's ᾱ table (``alphas_cumprod`` ``[T]``), or None (linear path).
        device, dtype: where and in which dtype states are made.
    """

    name = "callable"
    data_kind = "points"

    def __init__(
        self,
        fn: Callable[[Tensor, Tensor], Tensor],
        output: str = "velocity",
        shape: Shape | None = None,
        table: Tensor | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        if not callable(fn):
            raise TypeError(f"expected a function of (x, t), got {type(fn).__name__}")
        if output not in ("velocity", "x0", "epsilon", "v_prediction"):
            raise ValueError(f"output must be velocity, x0, epsilon or v_prediction, got {output!r}")
        if output in ("epsilon", "v_prediction") and table is None:
            raise ValueError(f"an {output} model needs its VP schedule (alphas_cumprod)")
        self.fn, self.output = fn, output
        self.device = torch.device(device or "cpu")
        self.dtype = dtype
        self.vp = None if table is None else VPTable(torch.as_tensor(table), self.device)
        self.latent_shape = () if shape is None else _shape(shape)
        self.data_kind = "image" if len(self.latent_shape) == 3 else "points"

    def with_shape(self, shape: Shape) -> CallableBackend:
        """A copy with the state shape set."""
        out = CallableBackend.__new__(CallableBackend)
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_model_cache"})
        out.latent_shape = _shape(shape)
        out.data_kind = "image" if len(out.latent_shape) == 3 else "points"
        return out

    def _call(self, x: Tensor, t: Tensor) -> Tensor:
        out = torch.as_tensor(self.fn(x, t))
        if out.shape != x.shape:
            raise ValueError(f"the model returned shape {tuple(out.shape)} for x of shape {tuple(x.shape)}; they must match")
        return out.to(x.dtype)

    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        if self.vp is None:
            tt = as_time(t, x).reshape(-1)
            out = self._call(x, tt)
            return out if self.output == "velocity" else velocity_from_x0(x, out, t)
        x_vp, tau, a, b = self.vp.to_vp(x, t)
        out = self._call(x_vp, tau)
        x0 = out if self.output == "x0" else self.vp.x0_from_output(x_vp, out, a, b, self.output)
        return self.vp.velocity(x, x0, t)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "function": getattr(self.fn, "__qualname__", type(self.fn).__name__),
            "output": self.output,
            "latent_shape": list(self.latent_shape),
            **({"t_range": [self.vp.t_min, self.vp.t_max]} if self.vp is not None else {}),
        }


def _shape(shape: Any) -> Shape:
    try:
        out = tuple(int(s) for s in ((shape,) if isinstance(shape, int) else shape))
    except TypeError:
        raise ValueError(f"shape must be a tuple of positive ints, got {shape!r}") from None
    if not out or any(s < 1 for s in out):
        raise ValueError(f"shape must be a non-empty tuple of positive ints, got {shape!r}")
    return out


@dataclass(frozen=True)
class FlowModel:
    """A denoiser with its condition bound, in the linear-interpolant convention.

    Call it like a velocity: ``model(x, t)`` with ``x`` ``[B, *shape]`` and ``t`` a float or
    a tensor ``[B]`` returns ``v(x, t)`` ``[B, *shape]`` (uncounted; searches count their
    own calls).

    Attributes:
        backend: the :class:`~dts_app.backends.base.Backend` doing the work.
        cond: the bound :class:`~dts_app.backends.base.Condition`.
    """

    backend: Backend
    cond: Condition = Condition()

    @property
    def shape(self) -> Shape:
        """State shape without the batch dimension (latents for image models)."""
        return tuple(self.backend.latent_shape)

    @property
    def has_decoder(self) -> bool:
        """True when :meth:`decode` runs a learned decoder (a VAE)."""
        return self.backend.has_decoder

    def decode(self, x0: Tensor) -> Tensor:
        """Clean states ``[B, *shape]`` to what a reward sees (images ``[B, C, H, W]`` in
        [0, 1] with a decoder; otherwise ``x0`` itself)."""
        return self.backend.decode(x0)

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        with torch.no_grad():
            return self.backend.velocity(x, t, self.cond)

    def with_condition(self, **condition) -> FlowModel:
        """The same network under another condition (``class_label``, ``prompt``, ``guidance``)."""
        return FlowModel(self.backend, _condition(self.backend, condition, self.cond))

    def with_shape(self, shape: Shape) -> FlowModel:
        """The model with its state shape set (function adapters made without ``shape``)."""
        shape = _shape(shape)
        if self.backend.latent_shape:
            if tuple(self.backend.latent_shape) != shape:
                raise ValueError(f"shape {shape} does not match the model's shape {self.shape}")
            return self
        if not isinstance(self.backend, CallableBackend):
            raise ValueError("this model has no shape")
        return replace(self, backend=self.backend.with_shape(shape))


def from_velocity(velocity: Callable[[Tensor, Tensor], Tensor], shape: Shape | None = None, device=None) -> FlowModel:
    """Wrap ``velocity(x, t) -> v`` (``x`` ``[B, *shape]``, ``t`` ``[B]``, ``v = ε − x0``).

    Example:
        >>> import torch, dts_app
        >>> m = dts_app.from_velocity(lambda x, t: x, shape=(2,))
        >>> m(torch.ones(3, 2), 0.5).shape
        torch.Size([3, 2])
    """
    return FlowModel(CallableBackend(velocity, "velocity", shape, device=device))


def from_x0(
    x0_fn: Callable[[Tensor, Tensor], Tensor], shape: Shape | None = None, schedule: Any = None, device=None
) -> FlowModel:
    """Wrap a clean-sample predictor.

    Without ``schedule``: ``x0_fn(x_t, t) -> x̂0`` on the linear path, and
    ``v = (x_t − x̂0)/t``. With a VP ``schedule`` (``alphas_cumprod`` ``[T]`` or a diffusers
    scheduler): ``x0_fn(x_vp, τ) -> x̂0`` with the VP state and continuous timestep τ ``[B]``.

    Example:
        >>> import torch, dts_app
        >>> m = dts_app.from_x0(lambda x, t: torch.zeros_like(x), shape=(2,))
        >>> m(torch.ones(1, 2), 0.5)  # v = (x − 0)/t
        tensor([[2., 2.]])
    """
    return FlowModel(CallableBackend(x0_fn, "x0", shape, _table(schedule) if schedule is not None else None, device))


def from_eps(
    eps_fn: Callable[[Tensor, Tensor], Tensor],
    schedule: Any,
    shape: Shape | None = None,
    prediction_type: str = "epsilon",
    device=None,
) -> FlowModel:
    """Wrap a VP (DDPM-type) network: ``eps_fn(x_vp [B, *shape], τ [B]) -> ε̂`` (or v̂ with
    ``prediction_type="v_prediction"``) trained on ``x_vp = sqrt(ᾱ)·x0 + sqrt(1 − ᾱ)·ε``.

    The state at linear time t is converted exactly (DESIGN §3, :mod:`dts_app.backends.vp`):
    ``x_vp = x_t / sqrt((1 − t)² + t²)`` and τ the continuous timestep with ``ᾱ_τ`` the
    matching ᾱ of ``schedule`` (``alphas_cumprod`` ``[T]`` or a diffusers scheduler).

    Example:
        >>> import torch, dts_app
        >>> ab = torch.linspace(0.999, 0.001, 1000)
        >>> m = dts_app.from_eps(lambda x, tau: torch.zeros_like(x), ab, shape=(2,))
        >>> m(torch.zeros(1, 2), 0.5).abs().max().item()  # ε̂ = 0 at x = 0: x̂0 = 0, v = 0
        0.0
    """
    return FlowModel(CallableBackend(eps_fn, prediction_type, shape, _table(schedule), device))


def _table(schedule: Any) -> Tensor:
    table = getattr(schedule, "alphas_cumprod", schedule)
    table = torch.as_tensor(table, dtype=torch.float64)
    if table.ndim != 1 or len(table) < 2 or not bool((table[1:] < table[:-1]).all()):
        raise ValueError("schedule must be a strictly decreasing alphas_cumprod table [T] (or a scheduler holding one)")
    return table


# --- diffusers pipelines -------------------------------------------------------------------
_KEYS = {"dit": ("class_label", "guidance"), "t2i": ("prompt", "guidance")}


def _family(pipeline: Any) -> str:
    net = getattr(pipeline, "transformer", None)
    if net is not None and type(net).__name__ in ("DiTTransformer2DModel", "Transformer2DModel"):
        if getattr(net.config, "num_embeds_ada_norm", None):
            return "dit"
    if net is not None and type(net).__name__ == "SD3Transformer2DModel":
        return "t2i"
    if type(getattr(pipeline, "unet", None)).__name__ == "UNet2DConditionModel":
        return "t2i"
    raise ValueError(
        f"from_diffusers: unsupported pipeline {type(pipeline).__name__} (supported: DiT, SD3-style flow transformer, "
        "SD 1.5/2 UNet); wrap another network with from_velocity, from_eps or from_x0, or search its noise with search_noise"
    )


def _condition(backend: Backend, condition: dict, base: Condition | None = None) -> Condition:
    keys = _KEYS.get(getattr(backend, "name", ""), ("guidance",))
    bad = sorted(set(condition) - set(keys))
    if bad:
        raise ValueError(
            f"unknown condition {', '.join(map(repr, bad))} for the {backend.name} model; it takes {', '.join(keys)}"
        )
    guidance = condition.get("guidance", 1.0 if base is None else base.guidance)
    FIELDS["guidance"].check(guidance)
    target = condition.get("class_label", condition.get("prompt"))
    if base is not None and "class_label" not in condition and "prompt" not in condition:
        return replace(base, guidance=float(guidance))
    try:
        return backend.condition(target, float(guidance))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def from_diffusers(pipeline: Any, *, device: str | None = None, verifier_model: str | None = None, **condition) -> FlowModel:
    """Wrap a loaded diffusers pipeline object.

    Supported: ``DiTPipeline`` (class-conditional, ``class_label=K``), SD3-style pipelines
    (``SD3Transformer2DModel``, ``prompt="..."``) and SD 1.5/2 pipelines
    (``UNet2DConditionModel``, ``prompt="..."``); all take ``guidance`` (classifier-free
    guidance scale; 1 = off, otherwise 2 forwards per image). Without ``class_label`` or
    ``prompt`` the model is unconditional. The networks stay where they are (device and
    dtype of the pipeline unless ``device`` is given); they are put in eval mode and their
    parameters frozen (the text-to-image VAE's are left as they are).

    Args:
        pipeline: the pipeline object (``DiffusionPipeline.from_pretrained(...)`` or built
            from configs).
        device: where to run (default: the pipeline's device).
        verifier_model: CLIP/DINOv2 source(s) for the real-model verifiers and ``concept``
            obstacles (``clip=DIR,dino=DIR``).
        **condition: ``class_label`` (DiT) or ``prompt`` (text-to-image), and ``guidance``.

    Returns:
        A :class:`FlowModel` with ``.shape`` (``(C, h, w)`` latents) and ``.decode`` (the
        VAE, latents to images ``[B, 3, H, W]`` in [0, 1]).

    Example:
        >>> model = dts_app.from_diffusers(pipe, class_label=207, guidance=4.0)  # doctest: +SKIP
        >>> result = dts_app.search(model, reward, n=4, steps=20)  # doctest: +SKIP
    """
    family = _family(pipeline)
    net = getattr(pipeline, "transformer", None)
    net = pipeline.unet if net is None else net
    param = next(net.parameters())
    opts = {
        "device": device or str(param.device),
        "dtype": str(param.dtype).replace("torch.", ""),
        "verifier_model": verifier_model,
    }
    if family == "dit":
        from .backends.dit import DiTBackend

        backend: Backend = DiTBackend.from_pipeline(pipeline, **opts)
    else:
        from .backends.t2i import T2IBackend

        backend = T2IBackend.from_pipeline(pipeline, prompt=condition.get("prompt"), **opts)
    return FlowModel(backend, _condition(backend, condition))


def as_model(velocity: Any, shape: Shape | None = None) -> FlowModel:
    """What :func:`dts_app.search` accepts as ``velocity``: a :class:`FlowModel`, a
    :class:`~dts_app.backends.base.Backend` (unconditional), or a function ``v(x, t)``
    (then ``shape`` is required)."""
    if isinstance(velocity, FlowModel):
        model = velocity
    elif isinstance(velocity, Backend):
        model = FlowModel(velocity, velocity.condition(None))
    elif callable(velocity):
        model = from_velocity(velocity)
    else:
        raise TypeError(f"velocity must be a function v(x, t) or a model from an adapter, got {type(velocity).__name__}")
    if shape is not None:
        return model.with_shape(shape)
    if not model.shape:
        raise ValueError("shape is required for a plain velocity function (e.g. shape=(2,))")
    return model
