"""Solvers reproduce the exact mixture; the SDE has the same marginals; grids are right."""

import math

import pytest
import torch

from dts_app.backends.gmm import make_preset
from dts_app.solvers import euler_step, heun_step, make_g, sde_step, time_grid


def _solve(mix, n, steps, stepper, seed=0, gamma=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, mix.dim, generator=g, dtype=torch.float64)
    grid = time_grid(steps)
    gfun = make_g(gamma)
    field = mix.velocity
    for t, tn in zip(grid[:-1], grid[1:]):
        if stepper == "sde":
            x = sde_step(field, x, t, tn, gfun(t), torch.randn(x.shape, generator=g, dtype=torch.float64)).x
        else:
            x = (heun_step if stepper == "heun" else euler_step)(field, x, t, tn).x
    return x


def _mode_stats(mix, x):
    k = mix.responsibilities(x, 0.0).argmax(1)
    return k, torch.bincount(k, minlength=mix.n_components)


def test_heun_64_steps_reproduces_mixture():
    mix = make_preset("trap")
    n = 20_000
    x = _solve(mix, n, 64, "heun")
    k, counts = _mode_stats(mix, x)
    expected = mix.weights * n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 13.8  # χ²(2 dof) 99.9% quantile
    for c in range(mix.n_components):
        sel = x[k == c]
        se = (mix.variances[c] / sel.shape[0]).sqrt()
        assert ((sel.mean(0) - mix.means[c]).abs() < 5 * se + 1e-3).all(), c
        assert ((sel.var(0) / mix.variances[c] - 1).abs() < 0.1).all(), c


def test_euler_converges_to_heun():
    mix = make_preset("eight-gaussians")
    ref = _solve(mix, 500, 256, "heun")
    err = [float((_solve(mix, 500, s, "euler") - ref).norm(dim=1).mean()) for s in (16, 64)]
    assert err[1] < err[0] / 2.5  # first order: 4x steps → ~4x smaller error


def test_sde_has_the_same_marginals():
    mix = make_preset("eight-gaussians")
    n = 8000
    x = _solve(mix, n, 400, "sde", seed=1, gamma=1.0)
    k, counts = _mode_stats(mix, x)
    expected = mix.weights * n
    assert float(((counts - expected) ** 2 / expected).sum()) < 26.1  # χ²(7) 99.95%
    for c in range(8):
        sel = x[k == c]
        se = (mix.variances[c] / sel.shape[0]).sqrt()
        assert ((sel.mean(0) - mix.means[c]).abs() < 6 * se + 0.01).all()
        assert ((sel.var(0) / mix.variances[c] - 1).abs() < 0.2).all()


def test_sde_with_g0_is_euler():
    mix = make_preset("trap")
    x = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = sde_step(mix.velocity, x, 0.6, 0.5, 0.0, torch.randn_like(x)).x
    torch.testing.assert_close(a, euler_step(mix.velocity, x, 0.6, 0.5).x)


def test_heun_costs_two_evaluations_and_reports_x0():
    calls = []
    mix = make_preset("trap")

    def field(x, t):
        calls.append(t)
        return mix.velocity(x, t)

    x = torch.zeros(3, 2, dtype=torch.float64)
    st = heun_step(field, x, 0.5, 0.25)
    assert calls == [0.5, 0.25]
    torch.testing.assert_close(st.x0_hat, x - 0.5 * mix.velocity(x, 0.5))


def test_time_grid():
    g = time_grid(8)
    assert g[0] == 1.0 and g[-1] == 0.0 and len(g) == 9
    assert all(abs((a - b) - 0.125) < 1e-12 for a, b in zip(g[:-1], g[1:]))
    s = time_grid(8, shift=3.0)
    assert s[0] == 1.0 and s[-1] == 0.0 and all(a > b for a, b in zip(s[:-1], s[1:]))
    assert s[4] == pytest.approx(3 * 0.5 / (1 + 2 * 0.5))  # SD3 shift at the midpoint
    assert time_grid(4, t_max=0.5) == [0.5, 0.375, 0.25, 0.125, 0.0]
    with pytest.raises(ValueError):
        time_grid(0)
    assert make_g(0.5)(0.5) == pytest.approx(math.sqrt(0.5))
