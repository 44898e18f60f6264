"""Black-box search over the initial noise of any ``generate(noise) -> image``.

For pipelines no adapter covers (a closed sampler, an API, a distilled one-step model),
the searched object is the noise itself: best-of-N draws N noises, zero-order moves a
pivot noise to its best neighbour on the noise sphere (Ma et al. 2025). Both run on the
same engine as :func:`dts_app.search` (same streams, candidates, budget, tree and anytime
curve) through a one-step "flow" whose state never moves (velocity 0, so ``x0`` is the
noise) and whose decoder is ``generate``:

- ``ledger.decoder_calls`` counts the noises passed to ``generate``, and equals
  ``ledger.denoiser_nfe`` (one per noise tried), which ``budget`` caps;
- ``result.best`` and ``result.candidates[i].x0`` are noises ``[*shape]``;
  ``result.images[i]`` is ``generate`` of candidate i (kept when scored).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .adapters import FlowModel, _shape
from .api import run
from .api_problem import make_problem, search_config
from .backends.base import Backend, Condition
from .search import make_algorithm
from .search.types import SearchResult, Snapshot

__all__ = ["NoiseBackend", "search_noise", "NOISE_ALGORITHMS"]

#: the algorithms that need no intermediate states
NOISE_ALGORITHMS = ("best-of-n", "zero-order")


class NoiseBackend(Backend):
    """The noise as the state (velocity 0) and ``generate`` as the decoder (counted).

    Args:
        generate: ``generate(noise [B, *shape]) -> outputs [B, ...]`` (images, anything
            the reward takes).
        shape: the noise shape without the batch dimension.
        max_batch: noises per ``generate`` call (None: the whole batch at once).
    """

    name = "black-box"
    data_kind = "image"  # keep each scored candidate's output in ``result.images``
    has_decoder = True

    def __init__(self, generate: Callable[[Tensor], Any], shape: tuple[int, ...], max_batch: int | None = None, device=None):
        if not callable(generate):
            raise TypeError(f"generate must be a function noise -> output, got {type(generate).__name__}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be ≥ 1, got {max_batch}")
        self.generate, self.max_batch = generate, max_batch
        self.latent_shape = _shape(shape)
        self.device = torch.device(device or "cpu")

    def _velocity(self, x: Tensor, t: float | Tensor, cond: Condition) -> Tensor:
        return torch.zeros_like(x)

    def decode(self, x0: Tensor) -> Tensor:
        step = self.max_batch or max(len(x0), 1)
        outs = []
        for i in range(0, len(x0), step):
            out = torch.as_tensor(self.generate(x0[i : i + step]))
            if out.ndim == 0 or out.shape[0] != len(x0[i : i + step]):
                raise ValueError(f"generate must return one output per noise ([B, ...]); got shape {tuple(out.shape)}")
            outs.append(out)
        return torch.cat(outs)

    def describe(self) -> dict:
        name = getattr(self.generate, "__qualname__", type(self.generate).__name__)
        return {"name": self.name, "generate": name, "latent_shape": list(self.latent_shape)}


def search_noise(
    generate: Callable[[Tensor], Any],
    reward: Callable[[Any], Any],
    *,
    shape: tuple[int, ...],
    algorithm: str = "best-of-n",
    n: int = 8,
    budget: int | None = None,
    seed: int = 0,
    heldout: Callable[[Any], Any] | None = None,
    max_batch: int | None = None,
    progress: Callable[[Snapshot], None] | None = None,
    stop: Any = None,
    device: str | None = None,
    **knobs: Any,
) -> SearchResult:
    """Search the initial noise of a black-box ``generate`` for the highest reward.

    Args:
        generate: ``generate(noise [B, *shape]) -> outputs [B, ...]``, e.g. a diffusers
            pipeline called with ``latents=noise``.
        reward: ``reward(outputs) -> [B]``, higher is better.
        shape: the noise shape without the batch dimension.
        algorithm: ``best-of-n`` (N noises) or ``zero-order`` (``lam``: the angle of the
            neighbours from the pivot, ``iterations``: K pivot updates; N per iteration).
        n: noises (best-of-N) or neighbours per iteration (zero-order).
        budget: most ``generate`` calls (noises) to spend; None: ``n`` for best-of-N,
            ``1 + iterations·n`` for zero-order.
        seed: base seed; noise i of best-of-N is the same whatever ``n`` is.
        heldout: a second reward, reported beside the first, never used to choose.
        max_batch: noises per ``generate`` call (None: as many as the algorithm has).
        progress, stop: as in :func:`dts_app.search`.
        device: where noises are drawn (default CPU; ``generate`` may move them).
        **knobs: ``lam``, ``iterations`` (zero-order).

    Returns:
        The :class:`~dts_app.search.SearchResult` over noises: ``.best`` (the best noise),
        ``.best_score``, ``.candidates``, ``.images`` (``generate`` of each candidate),
        ``.ledger`` (``decoder_calls`` = ``generate`` calls per noise = ``denoiser_nfe``).

    Example:
        >>> import torch, dts_app
        >>> gen = lambda z: torch.tanh(z)  # any noise -> output map
        >>> r = dts_app.search_noise(gen, lambda y: y.sum(1), shape=(3,), algorithm="zero-order",
        ...                          n=4, iterations=3, lam=0.5)
        >>> r.ledger.decoder_calls  # 1 pivot + 3 iterations × 4 neighbours
        13
    """
    if algorithm not in NOISE_ALGORITHMS:
        raise ValueError(
            f"search_noise: algorithm {algorithm!r} needs intermediate states; use one of {', '.join(NOISE_ALGORITHMS)}"
        )
    if reward is None:
        raise TypeError("search_noise needs a reward function reward(outputs) -> [B]")
    cfg = search_config(algorithm, knobs, n=n, steps=1, seed=seed, budget=budget)
    model = FlowModel(NoiseBackend(generate, shape, max_batch, device))
    problem = make_problem(model, cfg, reward, heldout)
    return run(problem, make_algorithm(algorithm, cfg), cfg.budget or None, stop, progress)
