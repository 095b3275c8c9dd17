"""Modes compose: forward mode, the tape and static tracing are interpreters on one stack behind bind."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import _mode
from chainrule.autograd import forward_ad as fwad

X = np.array([0.5, 1.0, 2.0])


def _ones(shape):
    return cr.static.full(shape, 1.0, np.float64)


def _placeholder(name="x"):
    return cr.static.placeholder((3,), dtype=cr.float64, name=name)


def test_forward_mode_inside_a_static_graph_traces_tangents():
    with cr.static.Graph():
        x = _placeholder()
        with fwad.dual_level():
            primal, tangent = fwad.unpack_dual(cr.sin(fwad.make_dual(x, _ones((3,)))) * x)
    value, derivative = cr.static.compile([primal, tangent]).run({"x": X})
    np.testing.assert_allclose(value.numpy(), np.sin(X) * X)
    np.testing.assert_allclose(derivative.numpy(), np.cos(X) * X, rtol=1e-12)


def test_static_graph_inside_a_dual_level_traces_tangents_too():
    with fwad.dual_level(), cr.static.Graph():
        x = _placeholder()
        _, tangent = fwad.unpack_dual(cr.exp(fwad.make_dual(x, _ones((3,))) * 2))
    np.testing.assert_allclose(cr.static.compile(tangent).run({"x": X}).numpy(), 2 * np.exp(2 * X))


def test_hvp_and_jacobian_of_a_traced_function():
    with cr.static.Graph():
        x, v = _placeholder("x"), _placeholder("v")
        _, hv = cr.autograd.functional.hvp(lambda z: (z ** 3).sum(), x, v)
        jac = cr.autograd.functional.jacobian(lambda z: z * z, x)
    hv_value, jac_value = cr.static.compile([hv, jac]).run({"x": X, "v": np.ones(3)})
    np.testing.assert_allclose(hv_value.numpy(), 6 * X)
    np.testing.assert_allclose(jac_value.numpy(), np.diag(2 * X))


class Cube(cr.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g

    @staticmethod
    def jvp(ctx, t):
        (x,) = ctx.saved_tensors
        return 3 * x * x * t


@pytest.mark.parametrize("mode", ["eager", "static"])
def test_a_custom_function_is_differentiated_the_same_way_in_every_mode(mode):
    def run(x):
        (grad,) = cr.autograd.grad(Cube.apply(x).sum(), [x])
        with fwad.dual_level():
            _, tangent = fwad.unpack_dual(Cube.apply(fwad.make_dual(x, x * 0 + 1)))
        return grad, tangent

    if mode == "eager":
        grad, tangent = run(cr.tensor(X, requires_grad=True))
    else:
        with cr.static.Graph():
            grad, tangent = run(_placeholder())
        grad, tangent = cr.static.compile([grad, tangent]).run({"x": X})
    np.testing.assert_allclose(grad.numpy(), 3 * X * X)
    np.testing.assert_allclose(tangent.detach().numpy(), 3 * X * X)


def test_the_stack_keeps_rank_order_and_unwinds():
    bottom = list(_mode.state.stack)
    with cr.static.Graph() as graph, fwad.dual_level():
        ranks = [i.rank for i in _mode.state.stack]
        assert ranks == sorted(ranks) and graph in _mode.state.stack
        assert _mode.state.top.rank == max(ranks)
    assert _mode.state.stack == bottom


def test_an_error_inside_a_graph_unwinds_the_stack():
    bottom = list(_mode.state.stack)
    with pytest.raises(cr.ShapeError), cr.static.Graph():
        _placeholder() + cr.static.placeholder((4,), dtype=cr.float64, name="y")
    assert _mode.state.stack == bottom


def test_mean_over_an_unknown_size_has_the_right_gradient():
    with cr.static.Graph():
        x = cr.static.placeholder((None, 3), dtype=cr.float64, name="x")
        (grad,) = cr.static.gradients(x.mean(), [x])
    value = cr.static.compile(grad).run({"x": np.ones((4, 3))})
    np.testing.assert_allclose(value.numpy(), np.full((4, 3), 1 / 12))


def test_fill_inside_a_graph_is_recorded_not_done_while_tracing():
    buffer = cr.ones(3, dtype=cr.float64)
    with cr.static.Graph():
        x = _placeholder()
        buffer.zero_()
        out = x + buffer
    np.testing.assert_allclose(buffer.numpy(), np.ones(3))  # untouched until the program runs
    program = cr.static.compile(out)
    np.testing.assert_allclose(program.run({"x": X}).numpy(), X)
    np.testing.assert_allclose(buffer.numpy(), np.zeros(3))


def test_embedding_traces_over_unknown_sizes_with_pytorchs_gradient():
    weight = np.random.default_rng(1).standard_normal((10, 4))
    tokens = np.array([[1, 2, 1], [0, 9, 1]])
    with cr.static.Graph():
        index = cr.static.placeholder((None, None), dtype=cr.int64, name="index")
        w = cr.static.placeholder((10, 4), dtype=cr.float64, name="w")
        out = cr.nn.functional.embedding(index, w, padding_idx=0)
        (grad,) = cr.static.gradients((out * out).sum(), [w])
    value, grad_value = cr.static.compile([out, grad]).run({"index": tokens, "w": weight})
    tw = torch.tensor(weight, requires_grad=True)
    expected = torch.nn.functional.embedding(torch.tensor(tokens), tw, padding_idx=0)
    (expected * expected).sum().backward()
    np.testing.assert_allclose(value.numpy(), expected.detach().numpy())
    np.testing.assert_allclose(grad_value.numpy(), tw.grad.numpy())
