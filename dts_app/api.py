"""The public Python API: sample from, or search with, your own model and reward.

Time convention (DESIGN §3): the linear interpolant ``x_t = (1 − t)·x0 + t·ε``, t = 0
data, t = 1 noise, velocity ``v(x_t, t) = E[ε − x0 | x_t]``; sampling integrates
``dx/dt = v`` from t = 1 down to t = 0 on a grid of ``steps`` steps.

- :func:`sample`: plain sampling (no reward), optionally around obstacles;
- :func:`search`: one inference-time search (best-of-N, zero-order, search over paths, tree
  search, SMC) with an exact compute ledger, a budget, and per-path random streams (same
  seed, same result, whatever the batch);
- :func:`dts_app.search_noise` (:mod:`dts_app.api_noise`): black-box search over the
  initial noise of any ``generate(noise) -> image``.

``velocity`` is a function ``v(x, t)`` (``x`` ``[B, *shape]``, ``t`` a tensor ``[B]``) or a
:class:`~dts_app.adapters.FlowModel` from an adapter (:func:`dts_app.from_diffusers`,
:func:`dts_app.from_eps`, :func:`dts_app.from_x0`). ``reward(x) -> [B]`` (higher is
better) sees decoded images ``[B, C, H, W]`` in [0, 1] when the model has a decoder, else
the clean samples ``[B, *shape]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from .adapters import as_model
from .api_problem import make_problem, search_config
from .ledger import Ledger
from .search import Runner, RunRequest, make_algorithm, sample_paths, sampling_metrics
from .search.types import SearchResult, Snapshot
from .trace import Trace

__all__ = ["SampleResult", "sample", "search", "stop_check"]


@dataclass
class SampleResult:
    """What :func:`sample` returns.

    Attributes:
        samples: clean samples ``[n, *shape]`` (fewer when ``avoid="prune"`` dropped paths).
        ledger: the compute ledger (``denoiser_nfe``: Euler ``n·steps``, Heun
            ``n·(2·steps − 1)``; reverts and obstacle checks counted separately).
        metrics: ``n_final`` and ``denoiser_nfe``; with obstacles also ``collision_rate``,
            ``min_D``, ``final_min_D``, ``reverts``, ``exhausted``, ``pruned``.
        images: decoded samples ``[n, C, H, W]`` in [0, 1] when the model has a decoder.
        obstacles: the resolved obstacles as dicts.
        trace: every state's node (parents, t, D); clean predictions kept with obstacles.
    """

    samples: Tensor
    ledger: Ledger
    metrics: dict = field(default_factory=dict)
    images: Tensor | None = None
    obstacles: list[dict] = field(default_factory=list)
    trace: Trace | None = None


def stop_check(stop: Any) -> Callable[[], bool] | None:
    """``stop`` as a function: a ``threading.Event`` (or anything with ``is_set``), a
    function returning True to stop, or None."""
    if stop is None or callable(getattr(stop, "is_set", None)):
        return None if stop is None else stop.is_set
    if not callable(stop):
        raise TypeError(f"stop must be a threading.Event or a function returning bool, got {type(stop).__name__}")
    return stop


def sample(
    velocity: Any,
    *,
    shape: tuple[int, ...] | None = None,
    n: int = 16,
    steps: int = 32,
    seed: int = 0,
    solver: str = "euler",
    shift: float = 1.0,
    sde_gamma: float = 0.5,
    obstacles: Any = None,
    avoid: str = "none",
    q_star: float = 0.5,
    eta: float = 1.0,
    measure: str = "x0",
    max_reverts: int = 4,
) -> SampleResult:
    """Draw ``n`` samples from t = 1 to t = 0 (no reward, no search).

    Path i starts from the noise of its own stream ``(seed, i)`` and uses it for every
    stochastic step, so sample i is the same whatever ``n`` is.

    Args:
        velocity: ``v(x, t)`` with ``x`` ``[B, *shape]`` and ``t`` ``[B]``, returning ``[B,
            *shape]``; or a model from an adapter.
        shape: the state shape without the batch dimension (required for a function).
        n: number of samples. steps: grid steps from t = 1 to t = 0.
        seed: base seed. solver: ``euler``, ``heun`` or ``sde`` (``g(t)² = 2·sde_gamma·t``).
        shift: time-grid shift (> 1 spends more steps at high noise).
        obstacles: the CLI's text syntax (``"point:1.6,0.4@q=0.5"``, ``"ball:0,0,1"``; one
            string or a list) or functions ``distance(x0 [B, *shape]) -> [B]``.
        avoid: ``none`` (only measured), ``repulsion``, ``revert``, ``prune`` or ``smc``.
        q_star, eta: the default influence radius Q* and strength η of every obstacle.
        measure: ``x0`` (D of the clean prediction) or ``xt`` (of the noisy state).
        max_reverts: revert-and-resample tries per step.

    Returns:
        :class:`SampleResult` with ``.samples`` ``[n, *shape]``, ``.ledger``, ``.metrics``.

    Raises:
        ConfigError: a bad value (the CLI's one-line message).
        NonFiniteError: the velocity returned NaN or inf.

    Example:
        >>> import torch, dts_app
        >>> out = dts_app.sample(lambda x, t: -torch.ones_like(x), shape=(2,), n=4, steps=8)
        >>> out.samples.shape, out.ledger.denoiser_nfe  # x0 = ε + 1: one NFE per step and path
        (torch.Size([4, 2]), 32)
    """
    cfg = search_config(
        "best-of-n", {}, n=n, steps=steps, seed=seed, solver=solver, shift=shift, sde_gamma=sde_gamma,
        avoid=avoid, eta=eta, q_star=q_star, measure=measure, max_reverts=max_reverts,
    )  # fmt: skip
    model = as_model(velocity, shape)
    problem = make_problem(model, cfg, obstacles=obstacles)
    eng, beam = sample_paths(problem, cfg.n, store_x0=problem.avoidance is not None)
    x0 = eng.clean(beam)
    images = eng.decode(x0) if model.has_decoder and len(x0) else None
    metrics = {"n_final": len(beam), "denoiser_nfe": eng.ledger.denoiser_nfe, **sampling_metrics(eng, beam)}
    av = problem.avoidance
    return SampleResult(x0, eng.ledger, metrics, images, av.describe() if av is not None else [], eng.trace)


def search(
    velocity: Any,
    reward: Callable[[Tensor], Any],
    *,
    shape: tuple[int, ...] | None = None,
    algorithm: str = "best-of-n",
    n: int = 8,
    steps: int = 32,
    seed: int = 0,
    budget: int | None = None,
    heldout: Callable[[Tensor], Any] | None = None,
    obstacles: Any = None,
    avoid: str = "none",
    progress: Callable[[Snapshot], None] | None = None,
    stop: Any = None,
    solver: str = "euler",
    shift: float = 1.0,
    sde_gamma: float = 0.5,
    eta: float = 1.0,
    q_star: float = 0.5,
    measure: str = "x0",
    max_reverts: int = 4,
    trace_scores: bool = False,
    **knobs: Any,
) -> SearchResult:
    """Run one inference-time search and return its :class:`~dts_app.search.SearchResult`.

    Every denoiser call is charged to ``result.ledger`` before it runs (``denoiser_nfe``:
    image-forwards, 2 per image with classifier-free guidance); ``budget`` caps it and a
    search that reaches it ends cleanly with what it found (``result.message``). The
    reward is called only when the algorithm scores (``ledger.verifier_calls`` rows), and
    the held-out reward beside it (``heldout_calls``); ``trace_scores=True`` also scores
    every trace node for the views (``diagnostic_calls``). A NaN or inf in a velocity,
    state or score ends the run with ``result.error`` (and a ``RuntimeWarning``), keeping
    the candidates finished before.

    Args:
        velocity: ``v(x, t)`` (``x`` ``[B, *shape]``, ``t`` ``[B]``) or an adapter's model.
        reward: ``reward(x) -> [B]``, higher is better (decoded images ``[B, C, H, W]`` in
            [0, 1] when the model has a decoder, else clean samples ``[B, *shape]``).
        shape: the state shape without the batch dimension (required for a function).
        algorithm: ``best-of-n``, ``zero-order``, ``paths``, ``tree`` or ``smc``.
        n: candidates, kept paths, root children or particles (the algorithm's N).
        steps: grid steps from t = 1 to t = 0. seed: base seed of every random stream.
        budget: most denoiser NFEs to spend (None: the algorithm's natural course).
        heldout: a second reward, reported beside the search reward, never used to choose.
        obstacles, avoid, eta, q_star, measure, max_reverts: as in :func:`sample`.
        progress: called with a :class:`~dts_app.search.Snapshot` after every step.
        stop: a ``threading.Event`` or a function; checked between steps, a set stop ends
            the search with what it found (``result.message == "stopped"``).
        solver, shift: the deterministic solver (``euler``/``heun``/``sde``) and grid shift.
        sde_gamma: γ of every stochastic step, ``g(t)² = 2γt`` (SMC particles, tree
            children, ``solver="sde"``, reverts).
        trace_scores: also score every trace node (for drawing the tree; off by default).
        **knobs: the algorithm's own settings, as in the CLI: ``zero-order``: ``lam``,
            ``iterations``; ``paths``: ``m``, ``sigma``, ``delta_f``, ``delta_b``; ``tree``:
            ``m``, ``temperature``, ``c_uct``, ``backup``, ``draws``, ``batch``; ``smc``:
            ``temperature``, ``potential``, ``ess_threshold``, ``resample_every``,
            ``resample_from``, ``resample_until``.

    Returns:
        The :class:`~dts_app.search.SearchResult`: ``.best`` ``[*shape]``, ``.best_score``,
        ``.candidates[i].x0`` / ``.score``, ``.ledger``, ``.tree``, ``.curve``, ``.images``
        (decoded candidates ``[K, C, H, W]`` for image models), ``.message``, ``.error``.

    Raises:
        ValueError: an unknown knob (naming the valid ones) or algorithm.
        ConfigError: a bad value (a ``ValueError`` with the CLI's one-line message).

    Example:
        >>> import torch, dts_app
        >>> from dts_app.backends.mixture import make_preset
        >>> mix = make_preset("trap")  # an exact 2-D Gaussian mixture
        >>> prize = lambda x: -((x - torch.tensor([2.6, 1.6])) ** 2).sum(1)
        >>> r = dts_app.search(mix.velocity, prize, shape=(2,), algorithm="smc", n=64, steps=16,
        ...                    sde_gamma=1.0, temperature=1.0)
        >>> r.ledger.denoiser_nfe, r.best.shape  # N·S NFEs
        (1024, torch.Size([2]))
    """
    if reward is None:
        raise TypeError("search needs a reward function reward(x) -> [B]")
    cfg = search_config(
        algorithm, knobs, n=n, steps=steps, seed=seed, budget=budget, solver=solver, shift=shift, sde_gamma=sde_gamma,
        avoid=avoid, eta=eta, q_star=q_star, measure=measure, max_reverts=max_reverts,
    )  # fmt: skip
    problem = make_problem(as_model(velocity, shape), cfg, reward, heldout, obstacles, trace_scores)
    return run(problem, make_algorithm(algorithm, cfg), cfg.budget or None, stop, progress)


def run(problem, algorithm, budget: int | None, stop: Any = None, progress: Callable | None = None) -> SearchResult:
    """Drive ``algorithm`` on ``problem`` to the end through the one
    :class:`~dts_app.search.Runner` (see :func:`search`)."""
    request = RunRequest(problem, algorithm, budget or None)
    result = Runner(request, stop_check(stop), [progress] if progress else ()).run()
    if result.error:
        warnings.warn(result.error, RuntimeWarning, stacklevel=3)
    return result
