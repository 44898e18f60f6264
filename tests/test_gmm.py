"""Exact-answer tests of the Gaussian-mixture backend against autograd and closed forms."""

import math

import pytest
import torch

from dts_app.backends.gmm import PRESETS, GaussianMixture, GMMBackend, make_preset
from dts_app.interpolant import eps_from_velocity, score_from_velocity, x0_from_velocity


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("t", [0.02, 0.3, 0.7, 0.98])
def test_velocity_matches_autograd_score(preset, t):
    """v, x̂0 and ε̂ from the closed form agree with ∇log p_t from autograd (DESIGN §3)."""
    mix = make_preset(preset)
    g = torch.Generator().manual_seed(1)
    x0, _ = mix.sample(64, g)
    x = ((1 - t) * x0 + t * torch.randn(x0.shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    (grad,) = torch.autograd.grad(mix.log_prob(x, t).sum(), x)
    x = x.detach()
    v = mix.velocity(x, t)
    torch.testing.assert_close(score_from_velocity(x, v, t), grad, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(mix.score(x, t), grad, rtol=1e-7, atol=1e-7)
    # ε̂ = −t·score and x̂0 = (x − t·ε̂)/(1 − t): both views of one posterior
    x0_post, eps_post = mix.posterior_means(x, t)
    torch.testing.assert_close(eps_from_velocity(x, v, t), -t * grad, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(x0_from_velocity(x, v, t), x0_post, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close((1 - t) * x0_post + t * eps_post, x, rtol=1e-9, atol=1e-9)


def test_single_gaussian_posterior_closed_form():
    """One Gaussian N(μ, σ²I): E[x0 | x_t] = μ + (1−t)σ²/((1−t)²σ² + t²)·(x − (1−t)μ)."""
    mu, var = torch.tensor([[1.5, -2.0, 0.5]], dtype=torch.float64), 0.7
    mix = GaussianMixture(torch.ones(1, dtype=torch.float64), mu, torch.full((1, 3), var, dtype=torch.float64))
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in (0.1, 0.5, 0.9):
        s = (1 - t) ** 2 * var + t**2
        x0 = mu + (1 - t) * var / s * (x - (1 - t) * mu)
        eps = t / s * (x - (1 - t) * mu)
        torch.testing.assert_close(mix.velocity(x, t), eps - x0)
        # and the density is the exact Gaussian N((1−t)μ, s·I)
        ref = -0.5 * (((x - (1 - t) * mu) ** 2).sum(1) / s + 3 * math.log(2 * math.pi * s))
        torch.testing.assert_close(mix.log_prob(x, t), ref)


def test_restrict_renormalises_and_validates():
    mix = make_preset("trap")
    sub = mix.restrict([2, 1])
    assert sub.n_components == 2 and abs(float(sub.weights.sum()) - 1) < 1e-12
    torch.testing.assert_close(sub.weights, mix.weights[[1, 2]] / mix.weights[[1, 2]].sum())
    with pytest.raises(ValueError, match="components"):
        mix.restrict([3])


def test_backend_condition_restricts_velocity():
    b = GMMBackend("eight-gaussians")
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    cond = b.condition(3)
    ref = b.mixture.restrict([3]).velocity(x, 0.5)
    torch.testing.assert_close(b.velocity(x, 0.5, cond), ref)
    assert b.forwards_per_call(cond) == 1
    desc = b.describe()
    assert len(desc["weights"]) == 8 and len(desc["covariances"][0]) == 2


def test_presets_have_declared_structure():
    assert make_preset("hd-64").dim == 64 and make_preset("grid-25").n_components == 25
    hd = make_preset("hd-64")
    d = torch.cdist(hd.means, hd.means)
    assert float(d[~torch.eye(5, dtype=bool)].min()) > 5.0  # well separated
    with pytest.raises(ValueError, match="preset"):
        make_preset("nope")


def test_backend_contract_builtin_obstacles_and_reference_mixture():
    trap = GMMBackend("trap")
    assert trap.builtin_obstacles() == (("component", 1),)
    assert GMMBackend("eight-gaussians").builtin_obstacles() == ()
    assert trap.reference_mixture() is trap.mixture
    assert not trap.has_decoder and trap.verifier_model is None and trap.model_dtype == torch.float32
    assert not hasattr(trap, "avoid_components") and not hasattr(trap, "prior")


def test_model_cache_builds_each_key_once_under_concurrency():
    import threading
    import time

    from dts_app.backends.cache import ModelCache

    b = GMMBackend("hack")
    assert b.cache is b.cache and isinstance(b.cache, ModelCache)
    assert GMMBackend("hack").cache is not b.cache  # one per instance
    calls: list[int] = []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return object()

    out: list[object] = []
    threads = [threading.Thread(target=lambda: out.append(b.cache.get("k", slow))) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(calls) == 1 and len(out) == 8 and all(o is out[0] for o in out)
    assert "k" in b.cache and len(b.cache) == 1

    def boom():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        b.cache.get("bad", boom)
    assert "bad" not in b.cache and b.cache.get("bad", lambda: 3) == 3  # a failed build is retried
    b.cache.clear()
    assert len(b.cache) == 0 and "k" not in b.cache


def test_linear_classifier_fitted_once_per_backend():
    from dts_app.verifiers.gmm import fit_linear_classifier

    b = GMMBackend("hack")
    w, c = fit_linear_classifier(b)
    assert fit_linear_classifier(b)[0] is w and w.dtype == torch.float64 and w.shape == (2, 2)
    assert ("linear-classifier" in b.cache) and len(b.cache) == 1


def test_registries_keep_their_messages():
    from dts_app.backends.registry import BACKENDS, load_backend
    from dts_app.verifiers.registry import VERIFIERS, build_verifier, verifiers_for

    assert list(BACKENDS) == ["gmm", "digits", "shapes", "dit", "t2i"] and BACKENDS.spec("gmm").presets
    with pytest.raises(ValueError, match=r"^unknown backend 'x'; choose one of gmm, digits, shapes, dit, t2i$"):
        load_backend("x")
    assert isinstance(load_backend("gmm", preset="trap", model="ignored"), GMMBackend)
    assert verifiers_for("gmm") == ["oracle", "supervised", "self-supervised"] and "clip" in VERIFIERS
    b = GMMBackend("trap")
    with pytest.raises(ValueError, match=r"^unknown verifier 'x'; choose one of oracle, clip, "):
        build_verifier("x", b, 2)
    with pytest.raises(ValueError, match="not available for backend 'gmm'; choose one of oracle, supervised"):
        build_verifier("clip", b, 2)
    assert build_verifier("oracle", b, 2).score(b.mixture.means[2:3].float()).shape == (1,)
