"""The repulsive potential U_rep: zero and smooth at Q*, exact gradient, finite near 0."""

import pytest
import torch

from dts_app.obstacles.field import (
    FLOOR_FRACTION,
    du_rep_dd,
    nearest_distance,
    pairwise_distance,
    repulsion_gradient,
    u_rep,
)


def test_u_rep_formula_zero_outside_and_continuous_at_q_star():
    eta, q = 2.0, 0.5
    d = torch.tensor([0.1, 0.25, 0.5, 0.5000001, 0.8], dtype=torch.float64)
    u = u_rep(d, eta, q)
    assert u[0] == 0.5 * eta * (1 / 0.1 - 1 / q) ** 2
    assert u[1] == 0.5 * eta * (1 / 0.25 - 1 / q) ** 2
    assert u[2] == 0 and u[3] == 0 and u[4] == 0
    # continuity and zero slope at Q*
    near = u_rep(torch.tensor([q - 1e-6], dtype=torch.float64), eta, q)
    assert float(near) < 1e-9
    assert abs(float(du_rep_dd(torch.tensor([q - 1e-9], dtype=torch.float64), eta, q))) < 1e-6


def test_derivative_matches_finite_differences():
    eta, q = 1.5, 1.0
    d = torch.linspace(0.1, 0.99, 40, dtype=torch.float64)
    h = 1e-6
    fd = (u_rep(d + h, eta, q) - u_rep(d - h, eta, q)) / (2 * h)
    torch.testing.assert_close(du_rep_dd(d, eta, q), fd, rtol=1e-5, atol=1e-6)


def test_gradient_in_space_matches_autograd_and_fd():
    pts = torch.tensor([[0.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[0.3, -0.2], [2.5, 1.2], [5.0, 5.0]], dtype=torch.float64, requires_grad=True)
    d, _ = nearest_distance(y, pts)
    (g,) = torch.autograd.grad(u_rep(d, 1.0, 1.0).sum(), y)
    torch.testing.assert_close(repulsion_gradient(y.detach(), pts, 1.0, 1.0), g)
    assert torch.equal(g[2], torch.zeros(2, dtype=torch.float64))  # outside Q*
    # it points towards the obstacle, so descending U moves away from it
    assert float((g[0] * (y[0] - pts[0]).detach()).sum()) < 0


def test_grows_without_nan_towards_zero():
    eta, q = 1.0, 0.5
    d = torch.tensor([0.0, 1e-12, 1e-6, FLOOR_FRACTION * q, 0.1], dtype=torch.float64)
    u, g = u_rep(d, eta, q), du_rep_dd(d, eta, q)
    assert torch.isfinite(u).all() and torch.isfinite(g).all()
    assert (u[:-1] >= u[-1]).all() and float(u[0]) == 0.5 * eta * (1 / (FLOOR_FRACTION * q) - 1 / q) ** 2
    y = torch.zeros(1, 2, dtype=torch.float64)
    assert torch.isfinite(repulsion_gradient(y, torch.zeros(1, 2, dtype=torch.float64), eta, q)).all()


def test_ball_distance():
    d, _ = nearest_distance(torch.tensor([[3.0, 4.0], [0.5, 0.0]]), torch.zeros(1, 2), radius=1.0)
    torch.testing.assert_close(d, torch.tensor([4.0, 0.0]))


def test_pairwise_distance_does_not_depend_on_the_batch():
    """A row's distances are the same computed alone or among 300 rows: no matrix-product
    path (``torch.cdist`` takes one above 25 rows, whose last bits depend on the CPU's BLAS
    code, and fails this), so collisions and the fidelity figures in the CLI's JSON are
    byte-identical on every machine."""
    g = torch.Generator().manual_seed(0)
    for dim in (2, 64):
        a = torch.randn(300, dim, generator=g, dtype=torch.float64)
        b = torch.randn(40, dim, generator=g, dtype=torch.float64)
        rows = torch.cat([pairwise_distance(a[i : i + 1], b) for i in range(len(a))])
        assert torch.equal(pairwise_distance(a, b), rows)
        assert torch.allclose(rows, (a[:, None] - b[None]).norm(dim=-1), rtol=1e-12, atol=0)


def test_nearest_distance_over_a_set_of_local_features_is_the_nearest_member():
    """``y [B, K, F]`` (a feature map's cells per image): D is the smallest distance of any
    member to any point, by brute force; the nearest point is that pair's; a set of one is
    the plain ``[B, F]`` case, exactly; a push through it moves only the nearest member."""
    g = torch.Generator().manual_seed(3)
    y, pts = torch.randn(5, 7, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    d, near = nearest_distance(y, pts, radius=0.1)
    for b in range(5):
        pairs = [(float((y[b, k] - pts[p]).norm()), p) for k in range(7) for p in range(4)]
        best, p = min(pairs)
        assert float(d[b]) == pytest.approx(max(best - 0.1, 0.0), abs=1e-12)
        assert torch.equal(near[b], pts[p])
    flat = y[:, 0]
    assert torch.equal(nearest_distance(flat[:, None], pts)[0], nearest_distance(flat, pts)[0])
    yg = y.clone().requires_grad_(True)
    nearest_distance(yg, pts)[0].sum().backward()
    assert int((yg.grad.abs().sum(-1) > 0).sum()) == 5  # one member per image carries the gradient
