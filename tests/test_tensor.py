"""Tensor basics against PyTorch: creation, dtypes and promotion, inspection, numpy interop, repr,
and errors that name the op and the shapes."""

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close, assert_error_names, dtype_name, is_chainrule_exception, to_numpy

ERRORS = (ValueError, TypeError, RuntimeError)


def same(c, t, exact=True):
    """chainrule result c equals torch result t: shape, dtype, values."""
    assert tuple(c.shape) == tuple(t.shape), f"shape {tuple(c.shape)} != torch {tuple(t.shape)}"
    assert dtype_name(c.dtype) == dtype_name(t.dtype), f"dtype {c.dtype} != torch {t.dtype}"
    if exact:
        np.testing.assert_array_equal(to_numpy(c), to_numpy(t))
    else:
        assert_close(c, t)


# ----------------------------------------------------------------------------------------------
# creation
# ----------------------------------------------------------------------------------------------
CREATION = {
    "tensor_float_list": lambda lib: lib.tensor([[1.0, 2.0], [3.0, 4.5]]),
    "tensor_int_list": lambda lib: lib.tensor([[1, 2], [3, 4]]),
    "tensor_mixed_list": lambda lib: lib.tensor([1, 2.5]),
    "tensor_bool_list": lambda lib: lib.tensor([True, False]),
    "tensor_scalar_float": lambda lib: lib.tensor(3.5),
    "tensor_scalar_int": lambda lib: lib.tensor(7),
    "tensor_np_float64": lambda lib: lib.tensor(np.array([1.0, 2.0])),
    "tensor_np_float32": lambda lib: lib.tensor(np.array([1.0, 2.0], dtype=np.float32)),
    "tensor_np_int64": lambda lib: lib.tensor(np.array([1, 2], dtype=np.int64)),
    "tensor_np_bool": lambda lib: lib.tensor(np.array([True, False])),
    "tensor_dtype_kw": lambda lib: lib.tensor([1, 2], dtype=lib.float64),
    "tensor_dtype_to_int": lambda lib: lib.tensor([1.0, 2.0], dtype=lib.int64),
    "tensor_empty_list": lambda lib: lib.tensor([]),
    "zeros_varargs": lambda lib: lib.zeros(2, 3),
    "zeros_tuple": lambda lib: lib.zeros((2, 3)),
    "zeros_list": lambda lib: lib.zeros([4]),
    "zeros_dtype": lambda lib: lib.zeros(2, dtype=lib.float64),
    "zeros_int": lambda lib: lib.zeros(3, dtype=lib.int64),
    "zeros_scalar_shape": lambda lib: lib.zeros(()),
    "ones": lambda lib: lib.ones(3, 2),
    "ones_tuple_dtype": lambda lib: lib.ones((2,), dtype=lib.int64),
    "ones_bool": lambda lib: lib.ones(2, dtype=lib.bool),
    "full_float": lambda lib: lib.full((2, 3), 7.5),
    "full_int_value": lambda lib: lib.full((2,), 7),
    "full_bool_value": lambda lib: lib.full((2,), True),
    "full_dtype": lambda lib: lib.full((2, 2), 3, dtype=lib.float64),
    "eye": lambda lib: lib.eye(3),
    "eye_rect": lambda lib: lib.eye(2, 4),
    "eye_dtype": lambda lib: lib.eye(2, dtype=lib.int64),
    "arange_int": lambda lib: lib.arange(5),
    "arange_start_stop": lambda lib: lib.arange(2, 7),
    "arange_step": lambda lib: lib.arange(1, 10, 3),
    "arange_neg_step": lambda lib: lib.arange(5, 0, -2),
    "arange_float": lambda lib: lib.arange(0, 1, 0.25),
    "arange_float_end": lambda lib: lib.arange(5.0),
    "arange_dtype": lambda lib: lib.arange(4, dtype=lib.float64),
    "linspace": lambda lib: lib.linspace(0, 1, 5),
    "linspace_neg": lambda lib: lib.linspace(-2.0, 3.0, 11),
    "linspace_one": lambda lib: lib.linspace(3, 4, 1),
    "linspace_dtype": lambda lib: lib.linspace(0, 1, 3, dtype=lib.float64),
}


@pytest.mark.parametrize("name", sorted(CREATION))
def test_creation_matches_torch(name):
    fn = CREATION[name]
    exact = not name.startswith("linspace") and "arange_float" not in name
    same(fn(cr), fn(torch), exact=exact)


def test_creation_requires_grad_kwarg():
    for make in (
        lambda: cr.zeros(2, 3, requires_grad=True),
        lambda: cr.ones(2, requires_grad=True),
        lambda: cr.tensor([1.0, 2.0], requires_grad=True),
        lambda: cr.full((2,), 1.5, requires_grad=True),
        lambda: cr.randn(3, requires_grad=True),
        lambda: cr.rand(3, requires_grad=True),
    ):
        t = make()
        assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None


def test_empty_shape_and_dtype():
    e = cr.empty(2, 3)
    assert tuple(e.shape) == (2, 3) and e.dtype == cr.float32
    e = cr.empty((4,), dtype=cr.int64)
    assert tuple(e.shape) == (4,) and e.dtype == cr.int64


@pytest.mark.parametrize("shape_args", [(3, 4), ((3, 4),), ((2, 1, 5),)])
def test_rand_randn_shapes_and_dtype(shape_args):
    expected = shape_args[0] if isinstance(shape_args[0], tuple) else shape_args
    r = cr.rand(*shape_args)
    n = cr.randn(*shape_args)
    for t in (r, n):
        assert tuple(t.shape) == tuple(expected)
        assert t.dtype == cr.float32
    a = to_numpy(r)
    assert a.min() >= 0.0 and a.max() < 1.0


def test_rand_randn_distribution():
    cr.manual_seed(0)
    r = to_numpy(cr.rand(20000))
    n = to_numpy(cr.randn(20000))
    assert abs(r.mean() - 0.5) < 0.02 and abs(r.std() - (1 / 12) ** 0.5) < 0.02
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    assert cr.randn(3, dtype=cr.float64).dtype == cr.float64


def test_randint():
    t = cr.randint(0, 10, (3, 4))
    assert tuple(t.shape) == (3, 4) and t.dtype == cr.int64
    a = to_numpy(t)
    assert a.min() >= 0 and a.max() < 10
    t = cr.randint(5, (1000,))  # torch's randint(high, size)
    a = to_numpy(t)
    assert t.dtype == cr.int64 and a.min() >= 0 and a.max() <= 4 and len(np.unique(a)) == 5
    t = cr.randint(-3, 3, (2000,))
    assert set(np.unique(to_numpy(t)).tolist()) == {-3, -2, -1, 0, 1, 2}


def test_manual_seed_reproducible():
    cr.manual_seed(123)
    a = [to_numpy(cr.randn(4)), to_numpy(cr.rand(2, 2)), to_numpy(cr.randint(0, 100, (5,)))]
    cr.manual_seed(123)
    b = [to_numpy(cr.randn(4)), to_numpy(cr.rand(2, 2)), to_numpy(cr.randint(0, 100, (5,)))]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    cr.manual_seed(124)
    assert not np.array_equal(to_numpy(cr.randn(4)), a[0])


@pytest.mark.parametrize("src_dtype", ["float32", "float64", "int64"])
def test_like_functions(src_dtype):
    x = cr.tensor(np.arange(6).reshape(2, 3).astype(src_dtype))
    z = cr.zeros_like(x)
    o = cr.ones_like(x)
    assert tuple(z.shape) == (2, 3) and dtype_name(z.dtype) == src_dtype
    assert tuple(o.shape) == (2, 3) and dtype_name(o.dtype) == src_dtype
    np.testing.assert_array_equal(to_numpy(z), np.zeros((2, 3)))
    np.testing.assert_array_equal(to_numpy(o), np.ones((2, 3)))
    if src_dtype != "int64":
        r = cr.randn_like(x)
        assert tuple(r.shape) == (2, 3) and dtype_name(r.dtype) == src_dtype
    z2 = cr.zeros_like(x, dtype=cr.float64)
    assert z2.dtype == cr.float64
    g = cr.ones_like(cr.ones(2, requires_grad=True))
    assert not g.requires_grad


# ----------------------------------------------------------------------------------------------
# dtypes, conversion, promotion
# ----------------------------------------------------------------------------------------------
def test_dtype_objects():
    assert cr.tensor([1.0]).dtype == cr.float32
    assert cr.tensor([1.0], dtype=cr.float64).dtype == cr.float64
    assert cr.tensor([1]).dtype == cr.int64
    assert cr.tensor([True]).dtype == cr.bool
    assert cr.float32 != cr.float64
    assert dtype_name(cr.float32) == "float32" and dtype_name(cr.int64) == "int64"


CONVERSIONS = {
    "to_float64": lambda lib, x: x.to(lib.float64),
    "to_int64": lambda lib, x: x.to(lib.int64),
    "to_bool": lambda lib, x: x.to(lib.bool),
    "to_dtype_kw": lambda lib, x: x.to(dtype=lib.float64),
    "float": lambda lib, x: x.double().float(),
    "double": lambda lib, x: x.double(),
    "long": lambda lib, x: x.long(),
    "long_of_bool": lambda lib, x: (x > 0).long(),
    "float_of_int": lambda lib, x: x.long().float(),
    "bool_to_float": lambda lib, x: (x > 0).float(),
}


@pytest.mark.parametrize("name", sorted(CONVERSIONS))
def test_conversions(name):
    data = [[-1.5, -0.5, 0.0], [0.4, 1.6, 2.5]]
    same(CONVERSIONS[name](cr, cr.tensor(data)), CONVERSIONS[name](torch, torch.tensor(data)))


def test_to_same_dtype_is_noop_and_conversion_copies():
    x = cr.tensor([1.0, 2.0])
    assert x.to(cr.float32) is x
    y = x.double()
    y[0] = 5.0
    assert x[0].item() == 1.0


PROMOTION = {
    "int_times_float_scalar": lambda lib: lib.tensor([1, 2]) * 2.5,
    "int_plus_int_scalar": lambda lib: lib.tensor([1, 2]) + 3,
    "int_plus_float32": lambda lib: lib.tensor([1, 2]) + lib.tensor([0.5, 1.5]),
    "float32_plus_int": lambda lib: lib.tensor([0.5, 1.5]) + lib.tensor([1, 2]),
    "int_div_int": lambda lib: lib.tensor([1, 2, 3]) / lib.tensor([2, 2, 2]),
    "int_div_scalar": lambda lib: lib.tensor([1, 2, 3]) / 2,
    "scalar_div_int": lambda lib: 3 / lib.tensor([1, 2, 4]),
    "float32_plus_float64": lambda lib: lib.tensor([1.0, 2.0]) + lib.tensor([1.0, 2.0], dtype=lib.float64),
    "float64_times_float32": lambda lib: lib.tensor([1.0], dtype=lib.float64) * lib.tensor([3.0]),
    "float32_times_pyfloat": lambda lib: lib.tensor([1.0, 2.0]) * 1e-3,
    "float64_times_pyfloat": lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64) * 0.1,
    "float32_plus_0d_float64": lambda lib: lib.tensor([1.0, 2.0]) + lib.tensor(0.5, dtype=lib.float64),
    "int_plus_0d_float64": lambda lib: lib.tensor([1, 2]) + lib.tensor(0.5, dtype=lib.float64),
    "bool_plus_int_scalar": lambda lib: lib.tensor([True, False]) + 1,
    "bool_times_float_scalar": lambda lib: lib.tensor([True, False]) * 1.5,
    "bool_times_float_tensor": lambda lib: lib.tensor([True, False]) * lib.tensor([2.0, 3.0]),
    "bool_times_int_tensor": lambda lib: lib.tensor([True, False]) * lib.tensor([2, 3]),
    "bool_sum": lambda lib: lib.tensor([True, False, True]).sum(),
    "int_sum": lambda lib: lib.tensor([1, 2, 3]).sum(),
    "int_mean_float": lambda lib: lib.tensor([1, 2, 3]).float().mean(),
    "int_pow_int": lambda lib: lib.tensor([1, 2, 3]) ** 2,
    "int_pow_float": lambda lib: lib.tensor([1, 2, 3]) ** 0.5,
    "int_neg": lambda lib: -lib.tensor([1, 2]),
    "int_max": lambda lib: lib.tensor([[1, 5], [3, 2]]).max(),
    "int_abs": lambda lib: lib.tensor([-1, 2]).abs(),
    "int_exp_float": lambda lib: lib.tensor([0, 1]).exp(),
    "int_sqrt": lambda lib: lib.tensor([1, 4]).sqrt(),
    "int_matmul": lambda lib: lib.tensor([[1, 2], [3, 4]]) @ lib.tensor([1, 1]),
    "where_mixed": lambda lib: lib.where(lib.tensor([True, False]), lib.tensor([1, 2]), lib.tensor([0.5, 0.5])),
    "cat_same": lambda lib: lib.cat([lib.tensor([1, 2]), lib.tensor([3])]),
    "float_floor_by_long": lambda lib: lib.tensor([3.5]).long() * 2,
}


@pytest.mark.parametrize("name", sorted(PROMOTION))
def test_dtype_promotion(name):
    same(PROMOTION[name](cr), PROMOTION[name](torch), exact=False)


# ----------------------------------------------------------------------------------------------
# inspection
# ----------------------------------------------------------------------------------------------
def test_shape_size_dim_numel():
    x = cr.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4)
    assert tuple(x.shape) == (2, 3, 4)
    assert x.size() == (2, 3, 4)
    assert x.size(0) == 2 and x.size(-1) == 4 and x.size(dim=1) == 3
    assert x.shape[1] == 3
    assert x.dim() == 3 and x.numel() == 24
    s = cr.tensor(3.0)
    assert s.shape == () and s.dim() == 0 and s.numel() == 1
    assert cr.zeros(0, 3).numel() == 0


def test_item():
    v = cr.tensor([[2.5]]).item()
    assert type(v) is float and v == 2.5
    v = cr.tensor(7).item()
    assert type(v) is int and v == 7
    v = cr.tensor(True).item()
    assert type(v) is bool and v is True
    x = cr.tensor([1.5], requires_grad=True)
    assert (x * 2).item() == 3.0
    with pytest.raises(ERRORS):
        cr.tensor([1.0, 2.0]).item()


def test_tolist():
    assert cr.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    lst = cr.tensor([[1.5, 2.0]]).tolist()
    assert lst == [[1.5, 2.0]] and type(lst[0][0]) is float
    assert type(cr.tensor([1, 2]).tolist()[0]) is int
    assert cr.tensor(2.5).tolist() == 2.5
    assert cr.tensor([True, False]).tolist() == [True, False]
    assert cr.tensor([1.0], requires_grad=True).tolist() == [1.0]


def test_repr_like_torch():
    r = repr(cr.tensor([1.0, 2.0]))
    assert r.startswith("tensor(") and "1." in r and "2." in r
    assert "requires_grad" not in r and "grad_fn" not in r
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    y = x * 2
    ry = repr(y)
    assert ry.startswith("tensor(") and "grad_fn=<" in ry and "mul" in ry.lower()
    assert "requires_grad" not in ry  # torch shows grad_fn instead of requires_grad for non-leaves
    rd = repr(cr.tensor([1.0], dtype=cr.float64))
    assert "dtype=" in rd and "float64" in rd
    assert "dtype" not in repr(cr.tensor([1, 2]))  # int64 is not shown, like torch
    assert "float32" not in repr(cr.tensor([1.0]))
    assert "grad_fn" not in repr(y.detach())
    assert str(cr.tensor([1.0])).startswith("tensor(")


# ----------------------------------------------------------------------------------------------
# numpy interop
# ----------------------------------------------------------------------------------------------
def test_from_numpy_shares_memory_and_keeps_dtype():
    for dt in (np.float32, np.float64, np.int64):
        a = np.arange(6, dtype=dt).reshape(2, 3)
        t = cr.from_numpy(a)
        assert dtype_name(t.dtype) == np.dtype(dt).name and tuple(t.shape) == (2, 3)
        a[0, 1] = 42
        assert t[0, 1].item() == 42
        assert t.tolist()[0][1] == 42


def test_numpy_shares_memory():
    t = cr.zeros(3)
    a = t.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    a[1] = 5.0
    assert t.tolist() == [0.0, 5.0, 0.0]
    t.add_(1.0)
    np.testing.assert_array_equal(a, [1.0, 6.0, 1.0])


def test_numpy_of_tensor_requiring_grad_raises_like_torch():
    x = cr.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        x.numpy()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0])


def test_array_protocol():
    t = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.shape == (2, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(np.asarray(cr.tensor([1, 2])), np.array([1, 2], dtype=np.int64))
    assert np.asarray(cr.tensor([1, 2])).dtype == np.int64
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_tensor_from_tensor_and_numpy_scalar():
    a = cr.tensor(np.float64(2.5))
    assert a.dtype == cr.float64 and a.item() == 2.5
    b = cr.tensor(np.array(3, dtype=np.int64))
    assert b.dtype == cr.int64 and b.shape == ()


# ----------------------------------------------------------------------------------------------
# setitem (values; gradients are in test_inplace.py)
# ----------------------------------------------------------------------------------------------
SETITEM = {
    "int_row": lambda lib, x: x.__setitem__(1, 5.0),
    "slice_step": lambda lib, x: x.__setitem__((slice(None), slice(None, None, 2)), -1.0),
    "tensor_value_bcast": lambda lib, x: x.__setitem__((slice(0, 2),), lib.tensor([1.0, 2.0, 3.0, 4.0])),
    "bool_mask": lambda lib, x: x.__setitem__(x > 0, 0.0),
    "int_array": lambda lib, x: x.__setitem__(lib.tensor([0, 2]), 9.0),
    "ellipsis_none": lambda lib, x: x.__setitem__((Ellipsis, 0), 3.0),
    "negative": lambda lib, x: x.__setitem__((-1, -1), 7.0),
}


@pytest.mark.parametrize("name", sorted(SETITEM))
def test_setitem_values(name):
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    out = []
    for lib in (torch, cr):
        x = lib.tensor(data)
        SETITEM[name](lib, x)
        out.append(x)
    same(out[1], out[0])


def test_view_shares_storage_like_torch():
    base = cr.zeros(6)
    v = base.view(2, 3)
    v[1, 2] = 4.0
    assert base[5].item() == 4.0
    base.add_(1.0)
    assert v[0, 0].item() == 1.0
    s = base[2:4]
    s.fill_(-1.0)
    assert base.tolist() == [1.0, 1.0, -1.0, -1.0, 1.0, 5.0]


# ----------------------------------------------------------------------------------------------
# errors: chainrule exceptions naming the op and the shapes
# ----------------------------------------------------------------------------------------------
def _shape_error(fn):
    with pytest.raises(ERRORS) as info:
        fn()
    return info.value


@pytest.mark.parametrize(
    "name,fn,op_names,shapes",
    [
        ("add", lambda: cr.ones(2, 3) + cr.ones(4, 3), ["add", "+"], [(2, 3), (4, 3)]),
        ("mul", lambda: cr.ones(2, 3) * cr.ones(2, 4), ["mul", "*"], [(2, 3), (2, 4)]),
        ("sub", lambda: cr.ones(5) - cr.ones(3), ["sub", "-"], [(5,), (3,)]),
        ("div", lambda: cr.ones(3, 1, 2) / cr.ones(4, 3), ["div", "/"], [(3, 1, 2), (4, 3)]),
        ("maximum", lambda: cr.maximum(cr.ones(2, 3), cr.ones(3, 2)), ["maximum"], [(2, 3), (3, 2)]),
        ("where", lambda: cr.where(cr.ones(2, 3) > 0, cr.ones(2, 3), cr.ones(4)), ["where"], [(2, 3), (4,)]),
        ("matmul_2d", lambda: cr.ones(2, 3) @ cr.ones(4, 5), ["matmul", "@", "mm"], [(2, 3), (4, 5)]),
        ("matmul_1d", lambda: cr.matmul(cr.ones(3), cr.ones(4)), ["matmul", "dot", "@"], [(3,), (4,)]),
        (
            "matmul_batch",
            lambda: cr.ones(2, 2, 3) @ cr.ones(3, 3, 4),
            ["matmul", "@"],
            [(2, 2, 3), (3, 3, 4)],
        ),
        ("mm", lambda: cr.mm(cr.ones(2, 3), cr.ones(2, 3)), ["mm"], [(2, 3), (2, 3)]),
        ("bmm", lambda: cr.bmm(cr.ones(2, 2, 3), cr.ones(2, 4, 3)), ["bmm"], [(2, 2, 3), (2, 4, 3)]),
        ("cat", lambda: cr.cat([cr.ones(2, 3), cr.ones(2, 4)], dim=0), ["cat"], [(2, 3), (2, 4)]),
        ("stack", lambda: cr.stack([cr.ones(2, 3), cr.ones(3, 2)]), ["stack"], [(2, 3), (3, 2)]),
        ("view", lambda: cr.ones(2, 3).view(4, 2), ["view"], [(4, 2), (2, 3)]),
        ("reshape", lambda: cr.ones(2, 3).reshape(5, -1), ["reshape", "view"], [(5, -1), (2, 3)]),
        ("expand", lambda: cr.ones(2, 3).expand(4, 3), ["expand"], [(2, 3), (4, 3)]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.beyond_torch  # torch's messages do not always name the op and both shapes
def test_shape_errors_name_op_and_shapes(name, fn, op_names, shapes):
    err = _shape_error(fn)
    assert_error_names(err, op_names, shapes)


@pytest.mark.beyond_torch
@pytest.mark.parametrize(
    "fn",
    [
        lambda: cr.ones(2, 3) + cr.ones(4, 3),
        lambda: cr.ones(2, 3) @ cr.ones(4, 5),
        lambda: cr.cat([cr.ones(2, 3), cr.ones(2, 4)], dim=0),
        lambda: cr.ones(2, 3).view(4, 2),
        lambda: cr.ones(2, 3).expand(4, 3),
    ],
    ids=["broadcast", "matmul", "cat", "view", "expand"],
)
def test_shape_errors_are_chainrule_exceptions(fn):
    err = _shape_error(fn)
    assert is_chainrule_exception(err), f"{type(err).__module__}.{type(err).__name__}: {err}"
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename
    assert "chainrule" in where and "numpy" not in where, f"raised from {where}, not by chainrule itself"


def test_shape_errors_match_torch_conditions():
    # each of these is an error in torch; same in chainrule
    cases = [
        lambda lib: lib.ones(2, 3) + lib.ones(3, 2),
        lambda lib: lib.ones(3) @ lib.ones(2, 3),
        lambda lib: lib.cat([lib.ones(2, 3), lib.ones(3)]),
        lambda lib: lib.ones(6).view(-1, -1),
        lambda lib: lib.ones(2, 3).expand(2),
        lambda lib: lib.ones(2, 3).permute(0, 0),
        lambda lib: lib.ones(2, 3).sum(dim=2),
        lambda lib: lib.ones(2, 3).transpose(0, 2),
        lambda lib: lib.ones(2, 3)[2],
        lambda lib: lib.ones(2, 3)[0, 0, 0],
        lambda lib: lib.ones(2, 3).gather(1, lib.tensor([[0, 1, 2, 0], [0, 0, 0, 0], [1, 1, 1, 1]])),
        lambda lib: lib.ones(2, 3).masked_fill(lib.tensor([True, False]), 0.0),
    ]
    for i, case in enumerate(cases):
        with pytest.raises((RuntimeError, IndexError, ValueError, TypeError)):
            case(torch)
        with pytest.raises((ValueError, TypeError, RuntimeError, IndexError)) as info:
            case(cr)
        assert "could not be broadcast together" not in str(info.value), f"case {i}: {info.value}"


def test_requires_grad_on_int_tensor_raises():
    with pytest.raises(ERRORS):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(ERRORS):
        cr.tensor([1, 2]).requires_grad_()
    with pytest.raises(ERRORS):
        cr.zeros(2, dtype=cr.int64, requires_grad=True)
    # turning it off on an int tensor is fine, as in torch
    t = cr.tensor([1, 2])
    t.requires_grad_(False)
    assert not t.requires_grad


@pytest.mark.beyond_torch
@pytest.mark.parametrize(
    "name,fn",
    [
        ("randint", lambda: cr.randint(5, 2, (3,))),
        ("linspace", lambda: cr.linspace(0, 1, -1)),
        ("eye", lambda: cr.eye(-1)),
        ("zeros", lambda: cr.zeros(-1)),
        ("arange", lambda: cr.arange(0, 5, 0)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_creation_argument_errors_are_chainrule_errors(name, fn):
    with pytest.raises(ERRORS) as info:
        fn()
    err = info.value
    assert is_chainrule_exception(err), f"{type(err).__module__}.{type(err).__name__}: {err}"
    assert name in str(err), f"message does not name {name}: {err}"
