"""Reverse-mode autograd semantics against PyTorch: accumulation, retain_graph, errors, autograd.grad,
higher order, graph structure, leaves, hooks, grad modes, custom Functions, gradcheck, anomaly mode."""

import re
import warnings

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close, to_numpy

ERRORS = (ValueError, TypeError, RuntimeError)


def both(scenario):
    """Run scenario(lib) for torch and chainrule; return (torch_result, chainrule_result)."""
    return scenario(torch), scenario(cr)


def assert_same_arrays(c, t, rtol=1e-6, atol=1e-7):
    if isinstance(t, (list, tuple)):
        assert len(c) == len(t)
        for ci, ti in zip(c, t):
            assert_same_arrays(ci, ti, rtol, atol)
        return
    if t is None:
        assert c is None, f"expected None (as torch), got {c!r}"
        return
    assert c is not None, "got None where torch gives a value"
    np.testing.assert_allclose(to_numpy(c), to_numpy(t), rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------
# accumulation, retain_graph, backward errors
# ----------------------------------------------------------------------------------------------
def test_grad_accumulates_across_backward_calls():
    def sc(lib):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        (x * x).sum().backward()
        g1 = to_numpy(x.grad)
        (x.exp()).sum().backward()
        return g1, to_numpy(x.grad)

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_grad_accumulates_snapshot_is_not_aliased():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    first = to_numpy(x.grad)
    (x * 3).sum().backward()
    np.testing.assert_allclose(first, [3.0, 3.0])
    np.testing.assert_allclose(to_numpy(x.grad), [6.0, 6.0])


def test_grad_shared_input_used_twice_and_diamond():
    def sc(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        a = x * 2
        b = a.sin()
        c = a.cos()
        (b * c + a).sum().backward()
        return x.grad

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_retain_graph_allows_second_backward():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).exp().sum()
        y.backward(retain_graph=True)
        y.backward()
        return x.grad

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_backward_twice_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError) as info:
        y.backward()
    msg = str(info.value)
    assert re.search(r"second time|retain_graph", msg), msg


def test_backward_twice_through_shared_subgraph_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match=r"second time|retain_graph"):
        (h * 2).sum().backward()


def test_backward_nonscalar_without_gradient_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        (x * 2).backward()
    assert "scalar" in str(info.value)


def test_backward_with_gradient_argument():
    def sc(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        y = x * x
        y.backward(gradient=lib.tensor([[1.0, 0.5], [-1.0, 2.0]]))
        return x.grad

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_backward_gradient_wrong_shape_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ERRORS):
        (x * 2).backward(cr.tensor([1.0, 2.0, 3.0]))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        cr.tensor([1.0, 2.0]).sum().backward()


def test_scalar_backward_of_0d_and_1elem():
    x = cr.tensor(3.0, requires_grad=True)
    (x * x).backward()
    assert x.grad.item() == 6.0
    assert x.grad.shape == ()


def test_autograd_backward_multiple_roots():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y1 = x * 3
        y2 = (x * x).sum()
        lib.autograd.backward([y1, y2], grad_tensors=[lib.tensor([1.0, -1.0]), lib.tensor(2.0)])
        return x.grad

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_autograd_backward_single_scalar():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    cr.autograd.backward((x * 5).sum())
    np.testing.assert_allclose(to_numpy(x.grad), [5.0, 5.0])


def test_grad_dtype_and_shape_match_leaf_under_broadcasting():
    def sc(lib):
        x = lib.tensor([[1.0], [2.0]], requires_grad=True)  # (2, 1)
        b = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)  # (3,)
        (x * b).sum().backward()
        return x.grad, b.grad

    (tx, tb), (cx, cb) = both(sc)
    assert_close(cx, tx)
    assert_close(cb, tb)


# ----------------------------------------------------------------------------------------------
# autograd.grad
# ----------------------------------------------------------------------------------------------
def test_autograd_grad_basic_and_no_accumulation():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, -1.0], requires_grad=True)
        y = (x * w).sin().sum()
        gx, gw = lib.autograd.grad(y, [x, w])
        assert x.grad is None and w.grad is None
        return gx, gw

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_autograd_grad_returns_tuple_for_single_input():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    res = cr.autograd.grad((x * x).sum(), x)
    assert isinstance(res, tuple) and len(res) == 1
    np.testing.assert_allclose(to_numpy(res[0]), [2.0, 4.0])


def test_autograd_grad_with_grad_outputs():
    def sc(lib):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        y = x.exp() * 2
        (g,) = lib.autograd.grad(y, x, grad_outputs=lib.tensor([[1.0, 0.0], [0.5, -2.0]]))
        return g

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_autograd_grad_multiple_outputs_and_grad_outputs():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y1 = x * x
        y2 = x.sin()
        return lib.autograd.grad([y1, y2], [x], grad_outputs=[lib.tensor([1.0, 2.0]), lib.tensor([3.0, 4.0])])

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_autograd_grad_unused_input():
    x = cr.tensor([1.0], requires_grad=True)
    z = cr.tensor([2.0], requires_grad=True)
    y = (x * 3).sum()
    with pytest.raises(RuntimeError) as info:
        cr.autograd.grad(y, [x, z], retain_graph=True)
    assert re.search(r"allow_unused|not have been used|unused", str(info.value)), str(info.value)
    gx, gz = cr.autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None
    np.testing.assert_allclose(to_numpy(gx), [3.0])


def test_autograd_grad_of_nonscalar_without_grad_outputs_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        cr.autograd.grad(x * 2, x)


def test_autograd_grad_retain_graph():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    (g1,) = cr.autograd.grad(y, x, retain_graph=True)
    (g2,) = cr.autograd.grad(y, x)
    np.testing.assert_allclose(to_numpy(g1), to_numpy(g2))
    with pytest.raises(RuntimeError, match=r"second time|retain_graph"):
        cr.autograd.grad(y, x)


def test_autograd_grad_wrt_intermediate():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        h = x * 3
        y = (h * h).sum()
        return lib.autograd.grad(y, [h, x])

    t, c = both(sc)
    assert_same_arrays(c, t)


# ----------------------------------------------------------------------------------------------
# higher order
# ----------------------------------------------------------------------------------------------
def test_create_graph_second_and_third_derivative():
    def sc(lib):
        x = lib.tensor([0.3, -1.2, 2.0], requires_grad=True)
        y = (x.sin() * x * x).sum()
        (g1,) = lib.autograd.grad(y, x, create_graph=True)
        assert g1.requires_grad
        (g2,) = lib.autograd.grad(g1.sum(), x, create_graph=True)
        (g3,) = lib.autograd.grad(g2.sum(), x)
        return g1, g2, g3

    t, c = both(sc)
    assert_same_arrays(c, t, rtol=1e-5, atol=1e-6)


def test_backward_create_graph_then_grad_of_grad():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([0.5, -0.5], dtype=lib.float64, requires_grad=True)
        y = ((x * w).tanh() * x).sum()
        (gx,) = lib.autograd.grad(y, x, create_graph=True)
        penalty = (gx * gx).sum()
        penalty.backward()
        return x.grad, w.grad

    t, c = both(sc)
    assert_same_arrays(c, t, rtol=1e-10, atol=1e-12)


def test_without_create_graph_grads_do_not_require_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (g,) = cr.autograd.grad((x * x).sum(), x)
    assert not g.requires_grad and g.grad_fn is None
    (x * x).sum().backward()
    assert not x.grad.requires_grad


def test_mixed_partial_derivative():
    def sc(lib):
        x = lib.tensor(1.5, dtype=lib.float64, requires_grad=True)
        y = lib.tensor(-0.5, dtype=lib.float64, requires_grad=True)
        f = x * x * y.exp() + (x * y).sin()
        (fx,) = lib.autograd.grad(f, x, create_graph=True)
        (fxy,) = lib.autograd.grad(fx, y)
        return fx, fxy

    t, c = both(sc)
    assert_same_arrays(c, t, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# graph structure, leaves, requires_grad
# ----------------------------------------------------------------------------------------------
def test_grad_fn_name_and_next_functions():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor([3.0, 4.0])
    a = x * c
    assert callable(a.grad_fn.name)
    assert isinstance(a.grad_fn.name(), str) and "mul" in a.grad_fn.name().lower()
    nf = a.grad_fn.next_functions
    assert isinstance(nf, tuple) and len(nf) == 2
    node, idx = nf[0]
    assert idx == 0 and node is not None
    assert node.variable is x  # the AccumulateGrad node of leaf x
    assert nf[1][0] is None  # c does not require grad

    b = a.exp()
    assert "exp" in b.grad_fn.name().lower()
    assert b.grad_fn.next_functions[0][0] is a.grad_fn
    s = (b + a).sum()
    assert "sum" in s.grad_fn.name().lower()
    add_node = s.grad_fn.next_functions[0][0]
    assert "add" in add_node.name().lower()
    assert {id(n) for n, _ in add_node.next_functions} == {id(b.grad_fn), id(a.grad_fn)}


def test_grad_fn_names_for_common_ops():
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    cases = {
        "add": x + 1,
        "sub": x - x,
        "div": x / 2,
        "matmul|mm": x @ x,
        "log": x.log(),
        "sqrt": x.sqrt(),
        "tanh": x.tanh(),
        "sigmoid": x.sigmoid(),
        "mean": x.mean(),
        "view|reshape": x.reshape(4),
        "transpose|permute": x.transpose(0, 1),
        "pow": x**3,
        "index|select|slice|getitem": x[0],
        "cat": cr.cat([x, x]),
        "stack|cat": cr.stack([x, x]),
    }
    for pattern, t in cases.items():
        assert re.search(pattern, t.grad_fn.name().lower()), f"{pattern}: {t.grad_fn.name()}"


def test_is_leaf_rules():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor([1.0, 2.0])
    assert x.is_leaf and c.is_leaf
    y = x * 2
    assert not y.is_leaf and y.requires_grad and y.grad_fn is not None
    z = c * 2  # no input requires grad: a leaf, like in torch
    assert z.is_leaf and not z.requires_grad and z.grad_fn is None
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    with cr.no_grad():
        n = x * 2
    assert n.is_leaf and not n.requires_grad and n.grad_fn is None


def test_requires_grad_propagation():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor([3.0, 4.0])
    assert (x + c).requires_grad and (c * x).requires_grad and (c - x).requires_grad
    assert not (c * c).requires_grad
    assert (x.sum() + 1).requires_grad
    assert not x.argmax().requires_grad
    assert not (x > 1).requires_grad
    assert not x.detach().requires_grad
    assert cr.cat([c, x]).requires_grad
    assert cr.where(c > 3, c, x).requires_grad


def test_requires_grad_underscore():
    c = cr.tensor([1.0, 2.0])
    out = c.requires_grad_()
    assert out is c and c.requires_grad and c.is_leaf
    (c * c).sum().backward()
    np.testing.assert_allclose(to_numpy(c.grad), [2.0, 4.0])
    c.requires_grad_(False)
    assert not c.requires_grad


def test_requires_grad_on_nonleaf_can_only_be_set_false_for_leaves():
    x = cr.tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError):
        y.requires_grad_(False)


def test_detach_shares_data_and_blocks_gradient():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        d = y.detach()
        out = (y * d).sum()
        out.backward()
        return x.grad, d

    (tg, td), (cg, cd) = both(sc)
    assert_same_arrays(cg, tg)
    assert_same_arrays(cd, td)
    x = cr.tensor([1.0, 2.0])
    d = x.detach()
    d[0] = 10.0
    assert x[0].item() == 10.0  # detach shares storage, as in torch


def test_retain_grad():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        h = x * 3
        h.retain_grad()
        k = h.exp()
        (k * 2).sum().backward()
        assert k.grad is None  # non-leaf without retain_grad
        return h.grad, x.grad

    t, c = both(sc)
    assert_same_arrays(c, t, rtol=1e-6)


def test_nonleaf_grad_is_none_without_retain_grad():
    x = cr.tensor([1.0], requires_grad=True)
    y = x * 2
    y.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert y.grad is None


def test_retain_grad_accumulates_like_torch():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        h = x * 3
        h.retain_grad()
        out = (h * h).sum()
        out.backward(retain_graph=True)
        out.backward()
        return h.grad

    t, c = both(sc)
    assert_same_arrays(c, t)


# ----------------------------------------------------------------------------------------------
# hooks
# ----------------------------------------------------------------------------------------------
def test_hook_on_leaf_sees_and_replaces_grad():
    def sc(lib):
        seen = []
        x = lib.tensor([1.0, -1.0, 2.0], requires_grad=True)

        def hook(g):
            seen.append(to_numpy(g))
            return g * 10

        h = x.register_hook(hook)
        (x * x).sum().backward()
        return seen, x.grad, h

    (ts, tg, _), (cs, cg, ch) = both(sc)
    assert len(cs) == 1
    assert_same_arrays(cs[0], ts[0])
    assert_same_arrays(cg, tg)
    assert hasattr(ch, "remove")


def test_hook_returning_none_keeps_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    x.register_hook(lambda g: calls.append(1))
    (x * 4).sum().backward()
    assert calls == [1]
    np.testing.assert_allclose(to_numpy(x.grad), [4.0, 4.0])


def test_hook_handle_remove():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda g: g * 0)
    (x * 2).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [0.0, 0.0])
    handle.remove()
    (x * 2).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [2.0, 2.0])
    handle.remove()  # removing twice is harmless, as in torch


def test_hook_on_nonleaf_changes_upstream_gradient():
    def sc(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = x * x
        seen = []
        h.register_hook(lambda g: seen.append(to_numpy(g)) or g * 2)
        (h * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        return seen, x.grad

    (ts, tg), (cs, cg) = both(sc)
    assert_same_arrays(cs, ts)
    assert_same_arrays(cg, tg)


def test_multiple_hooks_run_in_registration_order():
    def sc(lib):
        order = []
        x = lib.tensor([1.0], requires_grad=True)
        y = x * 3
        y.register_hook(lambda g: order.append(("a", g.item())) or g + 1)
        y.register_hook(lambda g: order.append(("b", g.item())) or g * 10)
        y.sum().backward()
        return order, x.grad

    (to, tg), (co, cg) = both(sc)
    assert co == to
    assert_same_arrays(cg, tg)


def test_hook_with_retain_grad_sees_hooked_value_like_torch():
    def sc(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g: g * 3)
        (y * y).sum().backward()
        return y.grad, x.grad

    t, c = both(sc)
    assert_same_arrays(c, t)


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        cr.tensor([1.0]).register_hook(lambda g: g)


def test_hook_on_leaf_runs_once_per_backward_with_total_grad():
    def sc(lib):
        seen = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(lambda g: seen.append(to_numpy(g)))
        (x * 2 + x * x).sum().backward()
        return seen

    t, c = both(sc)
    assert len(c) == len(t) == 1
    assert_same_arrays(c, t)


# ----------------------------------------------------------------------------------------------
# grad modes
# ----------------------------------------------------------------------------------------------
def test_no_grad_context():
    x = cr.tensor([1.0], requires_grad=True)
    assert cr.is_grad_enabled()
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = x * 2
    assert cr.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_restores_on_exception():
    with pytest.raises(KeyError):
        with cr.no_grad():
            raise KeyError("x")
    assert cr.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = cr.tensor([1.0], requires_grad=True)
    with cr.no_grad():
        with cr.enable_grad():
            assert cr.is_grad_enabled()
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad


def test_no_grad_and_enable_grad_as_decorators():
    x = cr.tensor([1.0], requires_grad=True)

    @cr.no_grad()
    def f(t):
        return t * 2

    @cr.enable_grad()
    def g(t):
        return t * 2

    assert not f(x).requires_grad
    with cr.no_grad():
        assert g(x).requires_grad
    assert f.__name__ == "f"


def test_set_grad_enabled_context_function_and_decorator():
    x = cr.tensor([1.0], requires_grad=True)
    with cr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert cr.is_grad_enabled()
    with cr.set_grad_enabled(True):
        assert (x * 2).requires_grad
    cr.set_grad_enabled(False)
    try:
        assert not cr.is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        cr.set_grad_enabled(True)
    assert cr.is_grad_enabled()

    @cr.set_grad_enabled(False)
    def h(t):
        return t * 2

    assert not h(x).requires_grad
    assert cr.is_grad_enabled()


def test_no_grad_inplace_update_of_leaf_is_allowed():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with cr.no_grad():
        w -= 0.1 * w.grad
        w.sub_(0.0)
    np.testing.assert_allclose(to_numpy(w), [0.8, 1.6], rtol=1e-6)
    assert w.is_leaf and w.requires_grad and w.grad_fn is None


# ----------------------------------------------------------------------------------------------
# custom autograd.Function
# ----------------------------------------------------------------------------------------------
def _make_exp_function(lib, record):
    class MyExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            record["grad_enabled_in_forward"] = lib.is_grad_enabled()
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            record["needs_input_grad"] = tuple(ctx.needs_input_grad)
            (y,) = ctx.saved_tensors
            return g * y

    return MyExp


def test_custom_function_basic():
    def sc(lib):
        rec = {}
        MyExp = _make_exp_function(lib, rec)
        x = lib.tensor([0.5, -1.0], requires_grad=True)
        y = MyExp.apply(x)
        assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
        (y * 3).sum().backward()
        return rec, y, x.grad

    (tr, ty, tg), (cr_, cy, cg) = both(sc)
    assert cr_ == tr  # forward runs without grad; needs_input_grad == (True,)
    assert_same_arrays(cy, ty)
    assert_same_arrays(cg, tg)


def test_custom_function_double_backward():
    def sc(lib):
        MyExp = _make_exp_function(lib, {})
        x = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        y = MyExp.apply(x * x).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        return g, h

    t, c = both(sc)
    assert_same_arrays(c, t, rtol=1e-12)


def _make_scale_function(lib, record):
    class ScaleAdd(lib.autograd.Function):
        """out = x * k + y; k is a python float, y may not require grad."""

        @staticmethod
        def forward(ctx, x, k, y):
            ctx.k = k
            record["needs"] = tuple(ctx.needs_input_grad)
            return x * k + y

        @staticmethod
        def backward(ctx, g):
            record["needs_bw"] = tuple(ctx.needs_input_grad)
            gx = g * ctx.k if ctx.needs_input_grad[0] else None
            gy = g if ctx.needs_input_grad[2] else None
            return gx, None, gy

    return ScaleAdd


def test_custom_function_needs_input_grad_and_none_grads():
    def sc(lib):
        rec = {}
        F = _make_scale_function(lib, rec)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = lib.tensor([3.0, 4.0])
        out = F.apply(x, 2.5, y)
        out.sum().backward()
        return rec, x.grad, y.grad

    (trec, tgx, tgy), (crec, cgx, cgy) = both(sc)
    assert crec["needs_bw"] == trec["needs_bw"] == (True, False, False)
    assert_same_arrays(cgx, tgx)
    assert cgy is None and tgy is None


def test_custom_function_multiple_outputs_and_mark_non_differentiable():
    def make(lib):
        class SortLike(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                values = x * 2
                idx = x.argmax(dim=-1)
                s = x.sin()
                ctx.mark_non_differentiable(idx)
                ctx.save_for_backward(x)
                return values, idx, s

            @staticmethod
            def backward(ctx, g_values, g_idx, g_s):
                (x,) = ctx.saved_tensors
                return g_values * 2 + g_s * x.cos()

        return SortLike

    def sc(lib):
        F = make(lib)
        x = lib.tensor([[0.1, 0.7, -0.2], [1.0, 0.3, 0.0]], requires_grad=True)
        v, i, s = F.apply(x)
        assert v.requires_grad and s.requires_grad and not i.requires_grad
        (v.sum() + (s * s).sum()).backward()
        return v, i, s, x.grad

    t, c = both(sc)
    assert_same_arrays(c, t, rtol=1e-6)


def test_custom_function_unused_output_gets_zero_grad():
    def make(lib, seen):
        class Two(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2, x * 3

            @staticmethod
            def backward(ctx, ga, gb):
                seen.append((None if ga is None else to_numpy(ga), None if gb is None else to_numpy(gb)))
                return ga * 2 + gb * 3

        return Two

    def sc(lib):
        seen = []
        a, b = make(lib, seen).apply(lib.tensor([1.0, 2.0], requires_grad=True))
        a.sum().backward()  # b unused: torch materializes its grad as zeros
        return seen

    t, c = both(sc)
    assert len(c) == 1
    assert_same_arrays(c[0][0], t[0][0])
    assert_same_arrays(c[0][1], t[0][1])


def test_custom_function_wrong_number_of_grads_raises():
    class Bad(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g  # two inputs, one grad

    x = cr.tensor([1.0], requires_grad=True)
    y = cr.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        Bad.apply(x, y).sum().backward()


def test_custom_function_wrong_grad_shape_raises():
    class Bad(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return cr.ones(5)

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ERRORS):
        Bad.apply(x).sum().backward()


def test_custom_function_under_no_grad_output_has_no_grad():
    MyExp = _make_exp_function(cr, {})
    x = cr.tensor([1.0], requires_grad=True)
    with cr.no_grad():
        y = MyExp.apply(x)
    assert not y.requires_grad


# ----------------------------------------------------------------------------------------------
# gradcheck
# ----------------------------------------------------------------------------------------------
def _make_wrong_exp(lib, bad_index):
    class WrongExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            scale = np.ones(tuple(y.shape))
            scale[bad_index] = 3.0
            return g * y * lib.tensor(scale, dtype=y.dtype)

    return WrongExp


def test_gradcheck_passes_for_correct_functions():
    x = cr.tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    w = cr.tensor(np.random.default_rng(1).standard_normal((2, 4)), requires_grad=True)
    assert x.dtype == cr.float64
    assert cr.autograd.gradcheck(lambda a, b: (a @ b).tanh(), (x, w)) is True
    MyExp = _make_exp_function(cr, {})
    assert cr.autograd.gradcheck(MyExp.apply, (x,)) is True
    assert cr.autograd.gradcheck(lambda a: (a.sin(), a * a), (x,)) is True  # tuple outputs


def test_gradcheck_detects_wrong_backward():
    x = cr.tensor([0.1, 0.2, 0.3, 0.4, 0.5], dtype=cr.float64, requires_grad=True)
    Wrong = _make_wrong_exp(cr, 3)
    with pytest.raises(RuntimeError) as info:
        cr.autograd.gradcheck(Wrong.apply, (x,))
    msg = str(info.value)
    assert re.search(r"numerical", msg, re.I) and re.search(r"analytical", msg, re.I), msg
    assert cr.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False


@pytest.mark.beyond_torch
def test_gradcheck_report_names_worst_element():
    x = cr.tensor([0.1, 0.2, 0.3, 0.4, 0.5], dtype=cr.float64, requires_grad=True)
    Wrong = _make_wrong_exp(cr, 3)
    with pytest.raises(RuntimeError) as info:
        cr.autograd.gradcheck(Wrong.apply, (x,))
    msg = str(info.value)
    # the worst Jacobian entry is output 3 / input 3: numerical exp(0.4)=1.4918, analytical 4.4755
    assert re.search(r"[\[(]\s*3\s*(,\s*3\s*)?[\])]|index\s*3|element\s*3", msg), msg
    assert "1.49" in msg and "4.47" in msg, msg


def test_gradcheck_detects_wrong_backward_with_two_inputs():
    class WrongMul(cr.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * b, g * b  # second should be g * a

    a = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([3.0, -1.0], dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradcheck(WrongMul.apply, (a, b), raise_exception=False) is False


# ----------------------------------------------------------------------------------------------
# anomaly mode
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,forward",
    [
        ("sqrt", lambda x: x.sqrt() * 0.0),
        ("log", lambda x: x.log() * 0.0),
    ],
)
def test_detect_anomaly_names_forward_op(name, forward):
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError) as info:
            with cr.autograd.detect_anomaly():
                y = forward(x)
                y.sum().backward()
    msg = str(info.value)
    assert name in msg.lower(), msg
    assert "nan" in msg.lower(), msg


def test_without_anomaly_mode_nan_propagates_silently():
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (x.sqrt() * 0.0).sum().backward()
    g = to_numpy(x.grad)
    assert np.isnan(g[0]) and g[1] == 0.0


def test_detect_anomaly_no_false_positive_and_restores():
    x = cr.tensor([1.0, 4.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with cr.autograd.detect_anomaly():
            x.sqrt().sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [0.5, 0.25])
    x.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (x.sqrt() * float("nan")).sum().backward()  # anomaly mode is off again: no error
    assert np.isnan(to_numpy(x.grad)).all()


def test_grad_setter_and_zeroing():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [3.0, 3.0])
    x.grad.zero_()
    (x * 1).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [1.0, 1.0])


# --- .grad accumulates in place, as in PyTorch ----------------------------------------------------------------
def _grad_accumulation_story(lib):
    """Two backwards into one leaf, a reference to .grad held in between, then a create_graph backward."""
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    held = x.grad
    (3 * x).sum().backward()
    same_object = x.grad is held
    after_two = held.detach().clone().numpy().tolist()
    (x * x).sum().backward(create_graph=True)
    differentiable = x.grad.requires_grad
    return same_object, after_two, held.detach().numpy().tolist(), differentiable, x.grad.detach().numpy().tolist()


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph")
def test_grad_accumulates_in_place_like_torch():
    ours, theirs = _grad_accumulation_story(cr), _grad_accumulation_story(torch)
    assert ours == theirs
    assert ours[0] is True and ours[1] == [5.0, 7.0, 9.0] and ours[3] is True


def test_held_grad_reference_sees_later_accumulation_through_parameters():
    def run(lib):
        lib.manual_seed(0)
        layer = lib.nn.Linear(3, 2)
        with lib.no_grad():
            layer.weight.copy_(lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]))
            layer.bias.copy_(lib.tensor([0.1, -0.2]))
        x = lib.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
        layer(x).pow(2).sum().backward()
        held = layer.weight.grad
        layer(x * 2).sum().backward()
        return held.detach().numpy().copy(), layer.weight.grad is held

    (ours, same), (theirs, torch_same) = run(cr), run(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert same and torch_same


def test_backward_inputs_accumulate_in_place():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.tensor([3.0, 4.0], requires_grad=True)
    (x * y).sum().backward(inputs=[x])
    held = x.grad
    (x * y).sum().backward(inputs=[x])
    assert x.grad is held and held.tolist() == [6.0, 8.0] and y.grad is None


def test_read_only_grad_is_replaced_by_the_sum():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    x.grad = cr.tensor(1.0).expand(2)  # a broadcast, read-only .grad the user assigned
    (x * 2).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
