"""In-place ops against PyTorch: values, the version counter, leaf rules, gradients through in-place
updates of non-leaves, and x[idx] = v."""

import re

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close, to_numpy

DATA = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
OTHER = np.random.default_rng(1).uniform(0.5, 2.0, (4,)).astype(np.float32)

INPLACE = {
    "add_tensor": lambda lib, x, o: x.add_(o),
    "add_scalar": lambda lib, x, o: x.add_(1.5),
    "sub_tensor": lambda lib, x, o: x.sub_(o),
    "sub_scalar": lambda lib, x, o: x.sub_(0.25),
    "mul_tensor": lambda lib, x, o: x.mul_(o),
    "mul_scalar": lambda lib, x, o: x.mul_(-2.0),
    "div_tensor": lambda lib, x, o: x.div_(o),
    "div_scalar": lambda lib, x, o: x.div_(4.0),
    "zero_": lambda lib, x, o: x.zero_(),
    "fill_": lambda lib, x, o: x.fill_(3.25),
    "clamp_both": lambda lib, x, o: x.clamp_(-0.5, 0.5),
    "clamp_min": lambda lib, x, o: x.clamp_(min=0.0),
    "clamp_max": lambda lib, x, o: x.clamp_(max=0.1),
    "copy_bcast": lambda lib, x, o: x.copy_(o),
    "iadd": lambda lib, x, o: x.__iadd__(o),
    "isub": lambda lib, x, o: x.__isub__(2.0),
    "imul": lambda lib, x, o: x.__imul__(o),
    "itruediv": lambda lib, x, o: x.__itruediv__(o),
    "chain": lambda lib, x, o: x.mul_(2.0).add_(o).clamp_(max=1.0),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_values_and_identity(name):
    res = []
    for lib in (torch, cr):
        x = lib.tensor(DATA)
        o = lib.tensor(OTHER)
        out = INPLACE[name](lib, x, o)
        assert out is x, "in-place ops return self"
        res.append(x)
    assert_close(res[1], res[0])


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_on_nonleaf_gradients_match_torch(name):
    res = []
    for lib in (torch, cr):
        x = lib.tensor(DATA, requires_grad=True)
        o = lib.tensor(OTHER, requires_grad=True)
        h = x * 1.5  # non-leaf
        INPLACE[name](lib, h, o)
        out = (h * h).sum() + (h * lib.tensor(OTHER)).sum()
        out.backward()
        res.append((h, x.grad, o.grad))
    (th, tx, to), (ch, cx, co) = res
    assert_close(ch, th, what="value")
    assert_close(cx, tx, what="grad x")
    if to is None:
        assert co is None or np.all(to_numpy(co) == 0), "grad of an unused input"
    else:
        assert_close(co, to, what="grad other")


def test_inplace_on_nonleaf_updates_grad_fn():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    before = h.grad_fn
    h.mul_(3)
    assert h.grad_fn is not before
    assert h.requires_grad and not h.is_leaf
    h.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [6.0, 6.0])


def test_inplace_with_grad_on_tensor_without_grad():
    # a plain tensor modified in place with a tensor that requires grad becomes part of the graph
    def sc(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        buf = lib.zeros(2)
        buf.add_(w * w)
        assert buf.requires_grad and not buf.is_leaf
        buf.sum().backward()
        return w.grad

    t, c = sc(torch), sc(cr)
    assert_close(c, t)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.add_(1.0),
        lambda t: t.mul_(2.0),
        lambda t: t.zero_(),
        lambda t: t.fill_(1.0),
        lambda t: t.clamp_(0, 1),
        lambda t: t.copy_(t * 0),
        lambda t: t.__setitem__(0, 5.0),
    ],
    ids=["add_", "mul_", "zero_", "fill_", "clamp_", "copy_", "setitem"],
)
def test_inplace_on_leaf_requiring_grad_raises(mutate):
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        mutate(x)
    assert re.search(r"leaf", str(info.value)), str(info.value)
    np.testing.assert_array_equal(to_numpy(x), [1.0, 2.0])  # unchanged


def _assert_version_error(excinfo):
    msg = str(excinfo.value)
    assert re.search(r"in-?place", msg, re.I), msg
    assert re.search(r"version", msg, re.I), msg


@pytest.mark.parametrize(
    "build",
    [
        # (what saves the tensor, how it is modified)
        lambda x: ((x * 1).exp(), lambda y: y.add_(1.0)),  # exp saves its output
        lambda x: ((x * 1), None),
        lambda x: ((x * 1).sigmoid(), lambda y: y.mul_(2.0)),
        lambda x: ((x * 1).tanh(), lambda y: y.zero_()),
        lambda x: ((x * 1).sqrt(), lambda y: y.fill_(1.0)),
    ],
    ids=["exp_out", "mul_input", "sigmoid_out", "tanh_out", "sqrt_out"],
)
def test_modifying_saved_tensor_raises_on_backward(build):
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y, mutate = build(x)
    if mutate is None:  # a * a saves a; modify a afterwards
        a = y
        y = a * a
        a.add_(1.0)
    else:
        mutate(y)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    _assert_version_error(info)


def test_modifying_saved_input_via_setitem_raises():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x * 2
    b = a.log()  # log saves its input a
    a[0] = 1.0
    with pytest.raises(RuntimeError) as info:
        b.sum().backward()
    _assert_version_error(info)


def test_modifying_tensor_not_saved_is_fine():
    def sc(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        a = x * 2
        b = a + 1  # add saves nothing
        a.mul_(10)
        (b * 3).sum().backward()
        return x.grad

    assert_close(sc(cr), sc(torch))


def test_version_error_mentions_the_op():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 1).exp()
    y.add_(1.0)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert "exp" in str(info.value).lower(), str(info.value)


# ----------------------------------------------------------------------------------------------
# x[idx] = v
# ----------------------------------------------------------------------------------------------
SETITEM_CASES = {
    "int": lambda lib: (0, None),
    "slice_step": lambda lib: ((slice(None), slice(None, None, 2)), None),
    "neg_ellipsis": lambda lib: ((Ellipsis, -1), None),
    "int_array": lambda lib: (lib.tensor([2, 0]), None),
    "bool_mask": lambda lib: (lib.tensor(DATA > 0), None),
    "value_tensor_row": lambda lib: ((1,), "row"),
    "value_tensor_bcast": lambda lib: ((slice(0, 2),), "row"),
    "value_tensor_col": lambda lib: ((slice(None), 1), "col"),
}


@pytest.mark.parametrize("name", sorted(SETITEM_CASES))
def test_setitem_on_nonleaf_gradients_match_torch(name):
    res = []
    for lib in (torch, cr):
        x = lib.tensor(DATA, requires_grad=True)
        row = lib.tensor(OTHER, requires_grad=True)  # (4,)
        col = lib.tensor(OTHER[:3], requires_grad=True)  # (3,)
        idx, kind = SETITEM_CASES[name](lib)
        h = x * 2
        if kind is None:
            h[idx] = 0.5
        elif kind == "row":
            h[idx] = row * 3
        else:
            h[idx] = col.exp()
        out = (h * h).sum()
        out.backward()
        res.append((h, x.grad, row.grad, col.grad))
    (th, tx, tr, tc), (ch, cx, cr_, cc) = res
    assert_close(ch, th, what="value after setitem")
    assert_close(cx, tx, what="grad x")
    for c, t, what in ((cr_, tr, "grad row value"), (cc, tc, "grad col value")):
        if t is None:
            assert c is None, f"{what}: torch None"
        else:
            assert_close(c, t, what=what)


def test_setitem_makes_plain_tensor_require_grad():
    def sc(lib):
        v = lib.tensor([1.0, 2.0], requires_grad=True)
        buf = lib.zeros(3, 2)
        buf[1] = v * v
        assert buf.requires_grad
        (buf * lib.tensor([[1.0, 1.0], [2.0, 3.0], [1.0, 1.0]])).sum().backward()
        return v.grad

    assert_close(sc(cr), sc(torch))


# ----------------------------------------------------------------------------------------------
# in-place through views (torch semantics: the base sees the change, gradients follow)
# ----------------------------------------------------------------------------------------------
def test_inplace_on_view_of_nonleaf_gradients():
    def sc(lib):
        x = lib.tensor(DATA, requires_grad=True)
        h = x * 1.0
        v = h[1]  # a view of row 1
        v.mul_(3.0)
        (h * h).sum().backward()
        return h, x.grad

    (th, tg), (ch, cg) = sc(torch), sc(cr)
    assert_close(ch, th, what="base sees the in-place change")
    assert_close(cg, tg, what="grad")


def test_inplace_broadcast_to_larger_shape_raises():
    x = cr.zeros(3)
    with pytest.raises((ValueError, RuntimeError)):
        x.add_(cr.ones(2, 3))


def test_inplace_int_tensor_with_float_raises_like_torch():
    x = cr.tensor([1, 2])
    with pytest.raises((TypeError, RuntimeError)):
        x.mul_(1.5)
    y = cr.tensor([1, 2])
    y.add_(3)
    assert y.tolist() == [4, 5] and y.dtype == cr.int64
    z = cr.tensor([1.0, 2.0])
    z.add_(cr.tensor([1, 1]))  # int into float is fine
    assert z.dtype == cr.float32 and z.tolist() == [2.0, 3.0]


# ----------------------------------------------------------------------------------------------
# the version check fires only for tensors backward really needs (torch saves per needed input)
# ----------------------------------------------------------------------------------------------
NOT_NEEDED = {
    # h requires grad, the other operand does not: backward needs only the other operand
    "mul_scalar": lambda lib, h, c: h * 2,
    "rmul_scalar": lambda lib, h, c: 2 * h,
    "mul_const_tensor": lambda lib, h, c: h * c,
    "div_by_const": lambda lib, h, c: h / c,
    "div_by_scalar": lambda lib, h, c: h / 2,
    "matmul_const_weight": lambda lib, h, c: h @ lib.tensor([[1.0, 2.0], [3.0, 4.0]]),
    "view_then_mul_scalar": lambda lib, h, c: h.reshape(2, 1) * 3,
    "index_then_mul_scalar": lambda lib, h, c: h[0] * 3,
    "add_const": lambda lib, h, c: h + c,
    "sub_from_const": lambda lib, h, c: c - h,
    "neg": lambda lib, h, c: -h,
    "sum": lambda lib, h, c: h.sum(),
    "mean": lambda lib, h, c: h.mean(),
    "cat": lambda lib, h, c: lib.cat([h, c]),
    "masked_fill": lambda lib, h, c: h.masked_fill(c > 3, 0.0),
    "index_list": lambda lib, h, c: h[[1, 0, 1]],
}


@pytest.mark.parametrize("name", sorted(NOT_NEEDED))
def test_modifying_tensor_backward_does_not_need_is_fine(name):
    res = []
    for lib in (torch, cr):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        h = x * 1
        y = NOT_NEEDED[name](lib, h, lib.tensor([3.0, 4.0]))
        h.add_(1.0)
        y.sum().backward()
        res.append(x.grad)
    assert_close(res[1], res[0], what="grad")


def test_view_gradient_after_base_modified_in_place():
    # torch rebases the view's history onto the modified base: the gradient includes the in-place op
    res = []
    for lib in (torch, cr):
        x = lib.tensor(DATA, requires_grad=True)
        h = x * 1
        v = h[0]
        h.mul_(2.0)
        (v * v).sum().backward()
        res.append((v, x.grad))
    (tv, tg), (cv, cg) = res
    assert_close(cv, tv, what="the view sees the in-place change")
    assert_close(cg, tg, what="grad through the view")
