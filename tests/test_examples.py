"""The named worked examples, checked against analytic derivatives and against PyTorch."""

import math

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import to_numpy


def _f(lib, x1, x2):
    return x1.log() + x1 * x2 - x2.sin()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ln_x1_plus_x1x2_minus_sin_x2_reverse(dtype):
    dt = getattr(cr, dtype)
    x1 = cr.tensor(2.0, dtype=dt, requires_grad=True)
    x2 = cr.tensor(5.0, dtype=dt, requires_grad=True)
    f = _f(cr, x1, x2)
    f.backward()
    tol = 1e-6 if dtype == "float32" else 1e-12
    assert f.item() == pytest.approx(math.log(2.0) + 10.0 - math.sin(5.0), rel=tol)  # 11.652071...
    assert x1.grad.item() == pytest.approx(1 / 2.0 + 5.0, rel=tol)  # 5.5
    assert x2.grad.item() == pytest.approx(2.0 - math.cos(5.0), rel=tol)  # 1.716338...
    t1 = torch.tensor(2.0, dtype=getattr(torch, dtype), requires_grad=True)
    t2 = torch.tensor(5.0, dtype=getattr(torch, dtype), requires_grad=True)
    _f(torch, t1, t2).backward()
    assert x1.grad.item() == pytest.approx(t1.grad.item(), rel=tol)
    assert x2.grad.item() == pytest.approx(t2.grad.item(), rel=tol)


@pytest.mark.parametrize("direction,expected", [((1.0, 0.0), 5.5), ((0.0, 1.0), 2.0 - math.cos(5.0))])
def test_ln_x1_plus_x1x2_minus_sin_x2_forward(direction, expected):
    fwd = cr.autograd.forward_ad
    with fwd.dual_level():
        x1 = fwd.make_dual(cr.tensor(2.0, dtype=cr.float64), cr.tensor(direction[0], dtype=cr.float64))
        x2 = fwd.make_dual(cr.tensor(5.0, dtype=cr.float64), cr.tensor(direction[1], dtype=cr.float64))
        primal, tangent = fwd.unpack_dual(_f(cr, x1, x2))
        assert primal.item() == pytest.approx(math.log(2.0) + 10.0 - math.sin(5.0), rel=1e-12)
        assert tangent.item() == pytest.approx(expected, rel=1e-12)


def test_x_equals_3_two_branches_loss():
    # y1 = x + 1 = 4, y2 = 2x = 6, loss = (y1 - y2)^2 = 4, dloss/dx = 2 (y1 - y2)(1 - 2) = 4
    x = cr.tensor(3.0, requires_grad=True)
    y1 = x + 1
    y2 = 2 * x
    loss = (y1 - y2) ** 2
    loss.backward()
    assert loss.item() == 4.0
    assert x.grad.item() == 4.0


def test_hook_doubles_gradient_of_square_sum():
    data = [[1.0, -1.0], [1.0, 1.0]]
    seen = []

    def hook(g):
        seen.append(to_numpy(g))
        return g * 2

    x = cr.tensor(data, requires_grad=True)
    x.register_hook(hook)
    x.pow(2).sum().backward()

    xt = torch.tensor(data, requires_grad=True)
    xt.register_hook(lambda g: g * 2)
    xt.pow(2).sum().backward()

    np.testing.assert_array_equal(seen[0], [[2.0, -2.0], [2.0, 2.0]])  # the hook receives 2x
    np.testing.assert_array_equal(to_numpy(x.grad), [[4.0, -4.0], [4.0, 4.0]])
    np.testing.assert_array_equal(to_numpy(x.grad), to_numpy(xt.grad))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_650_times_1_1(dtype):
    dt = getattr(cr, dtype)
    a = cr.tensor(650.0, dtype=dt, requires_grad=True)
    b = cr.tensor(1.1, dtype=dt, requires_grad=True)
    c = a * b
    c.backward()
    assert c.item() == pytest.approx(715.0, rel=1e-6)
    assert a.grad.item() == pytest.approx(1.1, rel=1e-6)
    assert b.grad.item() == pytest.approx(650.0, rel=1e-6)
    assert "mul" in c.grad_fn.name().lower()
    nodes = [n for n, _ in c.grad_fn.next_functions]
    assert [id(n.variable) for n in nodes] == [id(a), id(b)]  # leaves' AccumulateGrad nodes


@pytest.mark.parametrize("x0", [-2.0, 0.5, 3.0])
def test_second_derivative_of_cube(x0):
    x = cr.tensor(x0, dtype=cr.float64, requires_grad=True)
    y = x**3
    (dy,) = cr.autograd.grad(y, x, create_graph=True)
    assert dy.item() == pytest.approx(3 * x0**2, rel=1e-12)
    (d2y,) = cr.autograd.grad(dy, x, create_graph=True)
    assert d2y.item() == pytest.approx(6 * x0, rel=1e-12)
    (d3y,) = cr.autograd.grad(d2y, x)
    assert d3y.item() == pytest.approx(6.0, rel=1e-12)


def test_second_derivative_of_cube_via_backward():
    x = cr.tensor([1.0, 2.0, -1.0], dtype=cr.float64, requires_grad=True)
    (dy,) = cr.autograd.grad((x**3).sum(), x, create_graph=True)
    dy.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [6.0, 12.0, -6.0])
