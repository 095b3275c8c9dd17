"""Regressions found while building on the core: each test pins one fixed bug."""

import numpy as np
import torch

import chainrule as cr


def test_gradgradcheck_checks_second_derivatives():
    x = cr.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    assert cr.autograd.gradgradcheck(lambda a: (a * a * a).sum(1), (x,))


def test_mark_non_differentiable_applies_to_an_input_returned_as_output():
    class PassThrough(cr.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.mark_non_differentiable(b)
            return a * 2, b

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2, None

    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    y, z = PassThrough.apply(a, b)
    assert y.requires_grad and not z.requires_grad


def test_log1p_and_expm1_are_accurate_for_tiny_inputs():
    x = cr.tensor([1e-8, 1e-12], dtype=cr.float64, requires_grad=True)
    t = torch.tensor([1e-8, 1e-12], dtype=torch.float64)
    np.testing.assert_allclose(cr.log1p(x).detach().numpy(), torch.log1p(t).numpy(), rtol=1e-12)
    np.testing.assert_allclose(cr.expm1(x).detach().numpy(), torch.expm1(t).numpy(), rtol=1e-12)
    assert cr.autograd.gradcheck(lambda v: cr.log1p(v).sum() + cr.expm1(v).sum(), (x,))


def test_gather_gradient_in_a_static_graph_with_unknown_batch():
    with cr.static.Graph():
        x = cr.static.placeholder((None, 10), name="x")
        index = cr.static.placeholder((None, 1), dtype=cr.int64, name="index")
        (grad,) = cr.static.gradients(x.gather(1, index).sum(), [x])
    program = cr.static.compile(grad)
    xs = np.random.default_rng(1).standard_normal((4, 10)).astype(np.float32)
    idx = np.array([[0], [3], [3], [9]])
    expected = np.zeros((4, 10), np.float32)
    expected[np.arange(4), idx[:, 0]] = 1
    np.testing.assert_array_equal(program.run({"x": xs, "index": idx}).numpy(), expected)


def test_bad_input_errors_name_the_op_and_keep_python_types():
    import pytest

    with pytest.raises(IndexError, match="getitem: index 5 is out of bounds"):
        cr.ones(3)[5]
    with pytest.raises(cr.ShapeError, match="tensor: cannot build a tensor .* equal lengths"):
        cr.tensor([[1, 2], [3]])
    with pytest.raises(IndexError, match="Expected dtype int64 for index"):
        cr.ones(2, 3).gather(1, cr.ones(2, 1))
