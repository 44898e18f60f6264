"""The one time convention: conversions, re-noising kernel, VP mapping."""

import pytest
import torch

from dts_app.backends.gmm import make_preset
from dts_app.interpolant import (
    eps_from_velocity,
    interpolate,
    linear_to_vp,
    renoise,
    renoise_std,
    score_from_velocity,
    velocity_from_eps,
    velocity_from_score,
    velocity_from_x0,
    vp_to_linear,
    x0_from_velocity,
)


def test_conversions_round_trip():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    t = torch.rand(8, generator=g) * 0.9 + 0.05
    x = interpolate(x0, eps, t)
    v = eps - x0  # the velocity when the posterior is a point mass
    torch.testing.assert_close(x0_from_velocity(x, v, t), x0)
    torch.testing.assert_close(eps_from_velocity(x, v, t), eps)
    torch.testing.assert_close(velocity_from_x0(x, x0, t), v)
    torch.testing.assert_close(velocity_from_eps(x, eps, t), v)
    torch.testing.assert_close(velocity_from_score(x, score_from_velocity(x, v, t), t), v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t,s", [(0.2, 0.5), (0.5, 0.9), (0.0, 0.3), (0.6, 0.6)])
def test_renoise_maps_pt_to_ps(t, s):
    """Exact samples of p_t, pushed through the kernel, have the moments of p_s."""
    mix = make_preset("trap")
    g = torch.Generator().manual_seed(3)
    n = 200_000
    x0, k = mix.sample(n, g)
    x_t = (1 - t) * x0 + t * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    x_s = renoise(x_t, t, s, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    for c in range(mix.n_components):
        sel = x_s[k == c]
        mean_ref = (1 - s) * mix.means[c]
        var_ref = (1 - s) ** 2 * mix.variances[c] + s**2
        se = (var_ref / sel.shape[0]).sqrt()
        assert ((sel.mean(0) - mean_ref).abs() < 5 * se).all()
        assert ((sel.var(0) / var_ref - 1).abs() < 0.03).all()
    # and the kernel's noise variance tops up exactly to s²
    std = renoise_std(t, s)
    carried = (1 - s) * t / (1 - t)
    assert abs(std**2 + carried**2 - s**2) < 1e-12


def test_renoise_rejects_backward():
    with pytest.raises(ValueError):
        renoise_std(0.5, 0.4)


def test_vp_mapping_inverse_and_state():
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    ab = linear_to_vp(t)
    torch.testing.assert_close(vp_to_linear(ab), t)
    a, b = ab.sqrt(), (1 - ab).sqrt()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(50, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(50, 4, generator=g, dtype=torch.float64)
    x_vp = a[:, None] * x0 + b[:, None] * eps
    torch.testing.assert_close(x_vp / (a + b)[:, None], interpolate(x0, eps, t))
