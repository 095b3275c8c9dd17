"""Convolution and pooling (im2col / col2im and the pooling primitives) against PyTorch.

Values and gradients in float32 with weights copied over, float64 gradcheck, double backward and
forward mode, the issue's seed examples, PyTorch's max-pool tie rule, and (beyond PyTorch) the
primitives' own contracts: im2col and col2im are adjoint, col2im never calls np.add.at, shape rules
accept an unknown batch size.
"""

import importlib

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.ops import conv as conv_ops
from helpers import assert_close

F = importlib.import_module(cr.__name__ + ".nn.functional")
TF = torch.nn.functional
RNG = np.random.default_rng(1234)


def second_order_check(fn, inputs):
    """gradcheck of the first derivatives (taken with create_graph=True) of ``fn`` at ``inputs``."""
    with cr.no_grad():
        shape = tuple(fn(*inputs).shape)
    v = cr.tensor(np.random.default_rng(7).standard_normal(shape))

    def first_derivatives(*xs):
        with cr.enable_grad():
            return cr.autograd.grad(fn(*xs), xs, v, create_graph=True, allow_unused=True)

    return cr.autograd.gradcheck(first_derivatives, inputs)


def _pair(lib, *arrays, grad=True, dtype=None):
    return [lib.tensor(a if dtype is None else a.astype(dtype), requires_grad=grad) for a in arrays]


def _randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


# --- conv2d against torch -------------------------------------------------------------------------
@pytest.fixture(params=["im2col", "chunked"])
def conv_path(request, monkeypatch):
    """Both host algorithms: one im2col of the whole batch (small convolutions), and the conv2d primitive
    that builds the columns chunk by chunk (convolutions whose columns outgrow the cache)."""
    if request.param == "chunked":
        monkeypatch.setattr(conv_ops, "_CACHE_BYTES", -1)  # every batch, the empty one too
    return request.param


CONV_CASES = [
    # (input shape, weight shape, kwargs)
    ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(stride=2, padding=1)),
    ((2, 4, 9, 8), (6, 2, 3, 3), dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)),
    ((2, 4, 9, 8), (4, 1, 3, 3), dict(groups=4, padding="same")),
    ((2, 4, 9, 8), (4, 4, 4, 2), dict(padding="same", dilation=2)),
    ((2, 4, 9, 8), (5, 4, 3, 3), dict(padding="valid")),
    ((1, 1, 5, 5), (2, 1, 5, 5), {}),  # kernel as large as the input
    ((3, 9, 8), (4, 3, 2, 2), {}),  # unbatched
    ((2, 8, 6, 5), (40, 8, 3, 3), dict(padding=1)),  # more output channels than input rows of the GEMM
    ((2, 8, 6, 5), (40, 8, 3, 2), dict(stride=2, dilation=(1, 2))),
    ((2, 6, 11, 7), (33, 2, 3, 3), dict(groups=3, stride=(1, 2))),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xshape,wshape,kw", CONV_CASES)
def test_conv2d_matches_torch(xshape, wshape, kw, bias, conv_path):
    x, w, b = _randn(*xshape), _randn(*wshape), _randn(wshape[0])
    tx, tw, tb = _pair(torch, x, w, b)
    cx, cw, cb = _pair(cr, x, w, b)
    expected = TF.conv2d(tx, tw, tb if bias else None, **kw)
    out = F.conv2d(cx, cw, cb if bias else None, **kw)
    assert_close(out, expected, rtol=1e-4, atol=1e-5, what="conv2d output")
    g = _randn(*expected.shape)
    expected.backward(torch.tensor(g))
    out.backward(cr.tensor(g))
    assert_close(cx.grad, tx.grad, rtol=1e-4, atol=1e-5, what="input grad")
    assert_close(cw.grad, tw.grad, rtol=1e-4, atol=1e-4, what="weight grad")
    if bias:
        assert_close(cb.grad, tb.grad, rtol=1e-4, atol=1e-4, what="bias grad")


@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, padding=1)])
def test_conv2d_on_an_empty_batch(conv_path, kw):
    x, w = _pair(cr, np.zeros((0, 3, 5, 5), np.float32), _randn(4, 3, 3, 3))
    out = F.conv2d(x, w, **kw)
    assert tuple(out.shape) == tuple(TF.conv2d(torch.zeros(0, 3, 5, 5), torch.tensor(w.detach().numpy()), **kw).shape)
    out.sum().backward()
    assert tuple(x.grad.shape) == (0, 3, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((4, 3, 3, 3), np.float32))


def test_conv2d_float64_exact():
    x, w = _randn(2, 3, 6, 6, dtype=np.float64), _randn(5, 3, 3, 3, dtype=np.float64)
    out = F.conv2d(cr.tensor(x), cr.tensor(w), padding=1)
    expected = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1)
    assert_close(out, expected)


GRADCHECK_CASES = [
    ((1, 2, 4, 4), (3, 2, 2, 2), dict(stride=1, padding=1)),
    ((2, 2, 5, 4), (2, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))),
    ((1, 4, 4, 4), (4, 2, 2, 2), dict(groups=2, padding="same")),
    ((1, 2, 3, 3), (33, 2, 2, 2), dict(padding=1)),  # the channels-last GEMM
]


@pytest.mark.parametrize("xshape,wshape,kw", GRADCHECK_CASES)
def test_conv2d_gradcheck(xshape, wshape, kw, conv_path):
    x, w, b = _pair(cr, _randn(*xshape, dtype=np.float64), _randn(*wshape, dtype=np.float64),
                    _randn(wshape[0], dtype=np.float64))
    assert cr.autograd.gradcheck(lambda a, k, c: F.conv2d(a, k, c, **kw), (x, w, b))


@pytest.mark.parametrize("xshape,wshape,kw", GRADCHECK_CASES[:2] + GRADCHECK_CASES[3:])
def test_conv2d_second_order_gradcheck(xshape, wshape, kw, conv_path):
    x, w = _pair(cr, _randn(*xshape, dtype=np.float64), _randn(*wshape, dtype=np.float64))
    assert second_order_check(lambda a, k: F.conv2d(a * a, k, **kw), (x, w))


@pytest.mark.parametrize("wshape,kw", [((3, 2, 3, 3), dict(padding=1, stride=2)), ((34, 2, 2, 3), dict(dilation=2))])
def test_conv2d_double_backward_matches_torch(wshape, kw, conv_path):
    x, w = _randn(2, 2, 7, 6, dtype=np.float64), _randn(*wshape, dtype=np.float64)
    b = _randn(wshape[0], dtype=np.float64)
    results = []
    for lib in (torch, cr):
        tx, tw, tb = _pair(lib, x, w, b)
        out = (F if lib is cr else TF).conv2d(tx, tw, tb, **kw)
        v = lib.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)))
        gx, gw = (cr if lib is cr else torch).autograd.grad(out, (tx, tw), v, create_graph=True)
        ((gx * gx).sum() + (gw.sin() * gx.mean()).sum()).backward()
        results.append((tx.grad, tw.grad, tb.grad))
    for name, got, want in zip(("x", "w", "b"), results[1], results[0]):
        if want is None:
            assert got is None or np.allclose(got.numpy(), 0)
        else:
            assert_close(got, want, rtol=1e-9, atol=1e-10, what=f"second-order grad of {name}")


@pytest.mark.parametrize("wshape,kw,chunk_bytes", [
    ((6, 4, 3, 3), dict(padding=1), 2 * 36 * 64 * 8),  # stride 1: the input grad is a flipped-kernel convolution
    ((6, 2, 3, 2), dict(stride=2, padding=(1, 0), groups=2), 2 * 24 * 16 * 8),  # input grad: col2im per chunk
    ((4, 4, 1, 1), dict(padding=2), 2 * 4 * 144 * 8),  # padding wider than the kernel: col2im too
    # kernel rows as offsets into the column copy, dh rows apart, with a horizontal stride and groups
    ((4, 2, 3, 3), dict(padding=2, dilation=(2, 1), stride=(1, 2), groups=2), 2 * 4 * 3 * 12 * 6 * 8)])
@pytest.mark.parametrize("short_row", [0, 100])  # rows at their width, or at the padded width
def test_conv2d_in_several_chunks_matches_torch(monkeypatch, wshape, kw, chunk_bytes, short_row):
    """Host convolutions work a few images at a time: with chunks of about 2 images (5 = 2 + 2 + 1) the
    values and both gradients still match PyTorch."""
    monkeypatch.setattr(conv_ops, "_COLS_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_ops, "_SHORT_ROW", short_row)
    monkeypatch.setattr(conv_ops, "_CACHE_BYTES", 0)
    x, w, b = _randn(5, 4, 8, 8, dtype=np.float64), _randn(*wshape, dtype=np.float64), _randn(wshape[0])
    results = []
    for lib in (torch, cr):
        tx, tw, tb = _pair(lib, x, w, b.astype(np.float64))
        out = (F if lib is cr else TF).conv2d(tx, tw, tb, **kw)
        (out * lib.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)))).sum().backward()
        results.append((out, tx.grad, tw.grad, tb.grad))
    for name, got, want in zip(("output", "x grad", "w grad", "b grad"), results[1], results[0]):
        assert_close(got, want, rtol=1e-9, atol=1e-10, what=name)


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")
def test_conv2d_forward_mode_matches_torch(conv_path):
    x, w, tx_, tw_ = (_randn(2, 3, 5, 5, dtype=np.float64), _randn(4, 3, 3, 3, dtype=np.float64),
                      _randn(2, 3, 5, 5, dtype=np.float64), _randn(4, 3, 3, 3, dtype=np.float64))
    fwad = cr.autograd.forward_ad
    with fwad.dual_level():
        out = F.conv2d(fwad.make_dual(cr.tensor(x), cr.tensor(tx_)), fwad.make_dual(cr.tensor(w), cr.tensor(tw_)),
                       padding=1, stride=2)
        tangent = fwad.unpack_dual(out).tangent
    with torch.autograd.forward_ad.dual_level():
        tfw = torch.autograd.forward_ad
        t_out = TF.conv2d(tfw.make_dual(torch.tensor(x), torch.tensor(tx_)),
                          tfw.make_dual(torch.tensor(w), torch.tensor(tw_)), padding=1, stride=2)
        expected = tfw.unpack_dual(t_out).tangent
    assert_close(tangent, expected)


def test_seed_example_conv_weight_grad():
    """1-channel 3x3 conv without bias on arange(1, 17) as a 4x4 image; output.mean().backward()."""
    x = cr.arange(1, 17, dtype=cr.float32).reshape(1, 1, 4, 4)
    weight = cr.ones(1, 1, 3, 3, requires_grad=True)
    F.conv2d(x, weight).mean().backward()
    expected = [[3.5, 4.5, 5.5], [7.5, 8.5, 9.5], [11.5, 12.5, 13.5]]
    np.testing.assert_allclose(weight.grad.numpy()[0, 0], expected)
    conv = importlib.import_module(cr.__name__ + ".nn").Conv2d(1, 1, 3, bias=False)
    conv(x).mean().backward()
    np.testing.assert_allclose(conv.weight.grad.numpy()[0, 0], expected)


def test_conv2d_errors_name_op_and_shapes():
    x, w = cr.randn(2, 4, 8, 8), cr.randn(6, 3, 3, 3)
    with pytest.raises(RuntimeError, match=r"(?s)3.*channels.*4|expected.*3 channels"):
        F.conv2d(x, w)
    with pytest.raises(RuntimeError, match=r"(?i)kernel size can't be greater|larger"):
        F.conv2d(cr.randn(1, 3, 2, 2), w)
    with pytest.raises(RuntimeError, match="same"):
        F.conv2d(cr.randn(1, 3, 5, 5), w, stride=2, padding="same")


def test_unfold_fold_match_torch():
    x = _randn(2, 3, 9, 8, dtype=np.float64)
    got = F.unfold(cr.tensor(x), (2, 3), dilation=(1, 2), padding=1, stride=2)
    want = TF.unfold(torch.tensor(x), (2, 3), dilation=(1, 2), padding=1, stride=2)
    assert_close(got, want)
    cols = _randn(2, 3 * 6, int(want.shape[-1]), dtype=np.float64)
    got = F.fold(cr.tensor(cols), (9, 8), (2, 3), dilation=(1, 2), padding=1, stride=2)
    want = TF.fold(torch.tensor(cols), (9, 8), (2, 3), dilation=(1, 2), padding=1, stride=2)
    assert_close(got, want)


# --- pooling ---------------------------------------------------------------------------------------
def test_seed_example_max_pool_gradient():
    """max_pool2d k=3 s=1 on the 4x4 arange image: the mean's gradient is 0.25 on the bottom-right 2x2."""
    x = cr.arange(1, 17, dtype=cr.float32).reshape(1, 1, 4, 4).requires_grad_()
    F.max_pool2d(x, kernel_size=3, stride=1).mean().backward()
    expected = np.zeros((4, 4))
    expected[2:, 2:] = 0.25
    np.testing.assert_allclose(x.grad.numpy()[0, 0], expected)


MAXPOOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=3, stride=1, dilation=2),
    dict(kernel_size=2, stride=1, dilation=(2, 1), padding=1),
]


@pytest.mark.parametrize("kw", MAXPOOL_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool2d_matches_torch(kw, ties):
    """Values, gradient routing (PyTorch's tie rule: the first maximum in the window) and indices."""
    shape = (2, 3, 9, 8)
    x = RNG.integers(0, 3, shape).astype(np.float32) if ties else _randn(*shape)
    (tx,), (cx,) = _pair(torch, x), _pair(cr, x)
    t_out, t_idx = TF.max_pool2d(tx, return_indices=True, **kw)
    c_out, c_idx = F.max_pool2d(cx, return_indices=True, **kw)
    assert_close(c_out, t_out, what="max_pool2d values")
    np.testing.assert_array_equal(c_idx.numpy(), t_idx.numpy())
    assert str(c_idx.dtype).endswith("int64")
    g = _randn(*t_out.shape)
    t_out.backward(torch.tensor(g))
    c_out.backward(cr.tensor(g))
    assert_close(cx.grad, tx.grad, what="max_pool2d input grad")


def test_max_pool2d_all_equal_window_routes_to_first():
    x = cr.zeros(1, 1, 4, 4, requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


@pytest.mark.parametrize("size", [6, 7])  # 2x2 windows tile 6x6 exactly; 7x7 leaves a last row and column
def test_max_pool2d_gradient_in_another_layout_matches_torch(size):
    """The pooled input channel-major in memory (as a convolution leaves it), the incoming gradient plain
    NCHW (as a flatten's backward gives it): pool_scatter copies it into one layout first."""
    x = _randn(3, 2, size, size)
    g = _randn(2, 3, size // 2, size // 2)
    tx = torch.tensor(x.transpose(1, 0, 2, 3), requires_grad=True)
    cx = cr.tensor(x, requires_grad=True)
    TF.max_pool2d(tx, 2).backward(torch.tensor(g))
    F.max_pool2d(cx.permute(1, 0, 2, 3), 2).backward(cr.tensor(g))
    assert_close(cx.grad.permute(1, 0, 2, 3), tx.grad, what="max_pool2d input grad")


AVGPOOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=(3, 2), stride=1, divisor_override=3),
]


@pytest.mark.parametrize("kw", AVGPOOL_CASES)
def test_avg_pool2d_matches_torch(kw):
    x = _randn(2, 3, 10, 7)
    (tx,), (cx,) = _pair(torch, x), _pair(cr, x)
    t_out, c_out = TF.avg_pool2d(tx, **kw), F.avg_pool2d(cx, **kw)
    assert_close(c_out, t_out, what="avg_pool2d values")
    g = _randn(*t_out.shape)
    t_out.backward(torch.tensor(g))
    c_out.backward(cr.tensor(g))
    assert_close(cx.grad, tx.grad, what="avg_pool2d input grad")


def test_pools_unbatched():
    x = _randn(3, 6, 6)
    assert_close(F.max_pool2d(cr.tensor(x), 2), TF.max_pool2d(torch.tensor(x), 2))
    assert_close(F.avg_pool2d(cr.tensor(x), 3, 1, 1), TF.avg_pool2d(torch.tensor(x), 3, 1, 1))


def _distinct(shape):
    n = int(np.prod(shape))
    return (RNG.permutation(n).astype(np.float64) / n).reshape(shape)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=2, stride=1, dilation=2)])
def test_max_pool2d_gradcheck_and_gradgradcheck(kw):
    (x,) = _pair(cr, _distinct((1, 2, 5, 5)))
    assert cr.autograd.gradcheck(lambda a: F.max_pool2d(a, **kw), (x,))
    assert second_order_check(lambda a: F.max_pool2d(a * a, **kw), (x,))


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                            count_include_pad=False)])
def test_avg_pool2d_gradcheck_and_gradgradcheck(kw):
    (x,) = _pair(cr, _randn(1, 2, 5, 5, dtype=np.float64))
    assert cr.autograd.gradcheck(lambda a: F.avg_pool2d(a, **kw), (x,))
    assert second_order_check(lambda a: F.avg_pool2d(a * a, **kw), (x,))


def test_pool_double_backward_matches_torch():
    x = _distinct((2, 2, 6, 5))
    results = []
    for lib, fn in ((torch, TF), (cr, F)):
        (t,) = _pair(lib, x)
        out = fn.max_pool2d(t * t, 3, 2, 1) + fn.avg_pool2d(t.sin(), 2, 1)[..., :3, :3]
        (g,) = lib.autograd.grad(out.sum(), t, create_graph=True)
        (g * g).sum().backward()
        results.append(t.grad)
    assert_close(results[1], results[0], rtol=1e-9, atol=1e-12)


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")
def test_pools_forward_mode_match_torch():
    x, tangent = _distinct((2, 2, 6, 5)), _randn(2, 2, 6, 5, dtype=np.float64)
    results = []
    for lib, fn in ((torch, TF), (cr, F)):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            dual = fwad.make_dual(lib.tensor(x), lib.tensor(tangent))
            out = fn.max_pool2d(dual, 3, 2, 1, ceil_mode=True) * 2 + fn.avg_pool2d(dual, 3, 2, 1, ceil_mode=True)
            results.append(fwad.unpack_dual(out).tangent)
    assert_close(results[1], results[0])


def test_pool_argument_errors():
    x = cr.randn(1, 1, 4, 4)
    with pytest.raises(RuntimeError if cr.__name__ == "torch" else ValueError, match="half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError if cr.__name__ == "torch" else ValueError, match="half"):
        F.avg_pool2d(x, 2, padding=2)


# --- the primitives' own contracts (chainrule only) --------------------------------------------------
@pytest.mark.beyond_torch
@pytest.mark.parametrize("geometry", [
    dict(kernel=(3, 3), stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1),
    dict(kernel=(2, 3), stride=(2, 1), padding=((0, 1), (2, 2)), dilation=(2, 1), groups=2),
])
def test_im2col_col2im_are_adjoint(geometry):
    from chainrule.ops import conv

    x = _randn(2, 4, 7, 6, dtype=np.float64)
    cols = conv.im2col(cr.tensor(x), **geometry)
    y = _randn(*cols.shape, dtype=np.float64)
    back = conv.col2im(cr.tensor(y), (7, 6), **geometry)
    assert tuple(back.shape) == x.shape
    np.testing.assert_allclose((cols.numpy() * y).sum(), (x * back.numpy()).sum(), rtol=1e-12)
    # the pixel-major storage of columns (what a channels-last GEMM's gradient produces) gives the same
    y_t = np.ascontiguousarray(np.moveaxis(y, 1, -1))
    back_t = conv.col2im(cr.tensor(np.moveaxis(y_t, -1, 1)), (7, 6), **geometry)
    np.testing.assert_allclose(back_t.numpy(), back.numpy(), rtol=1e-12)


class _AddWithoutAt:
    """np.add, except that np.add.at fails the test."""

    def __call__(self, *args, **kwargs):
        return np.add(*args, **kwargs)

    def __getattr__(self, name):
        if name == "at":
            raise AssertionError("np.add.at used on the conv/pool hot path")
        return getattr(np.add, name)


class _NumpyWithoutAddAt:
    add = _AddWithoutAt()

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.mark.beyond_torch
def test_col2im_and_pool_backward_avoid_add_at(monkeypatch):
    import chainrule.ops.conv as conv_module

    monkeypatch.setattr(conv_module, "np", _NumpyWithoutAddAt())
    x = cr.randn(2, 3, 8, 8, requires_grad=True)
    w = cr.randn(4, 3, 3, 3, requires_grad=True)
    w_wide = cr.randn(40, 4, 3, 3, requires_grad=True)
    h = F.conv2d(x, w, padding=1)
    out = F.conv2d(h, w_wide, stride=2)
    (F.max_pool2d(out, 3, 1, 1).sum() + F.avg_pool2d(h, 3, 1, 1).sum()).backward()
    assert x.grad is not None and w.grad is not None and w_wide.grad is not None


@pytest.mark.beyond_torch
def test_shape_rules_accept_unknown_batch():
    from chainrule.ops import conv
    from chainrule.ops.op import Meta

    meta = Meta((None, 4, 9, 8), np.dtype(np.float32))
    geo = dict(kernel=(3, 3), stride=(2, 1), padding=((1, 1), (0, 0)), dilation=(1, 1), groups=2)
    shape, dtype = conv.im2col_op.infer(meta, **geo)
    assert shape == (2, 18, None, 5, 6) and dtype == np.float32
    shape, _ = conv.col2im_op.infer(Meta(shape, dtype), size=(9, 8), **geo)
    assert shape == (None, 4, 9, 8)
    pool = dict(kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1))
    assert conv.max_pool_op.infer(meta, **pool)[0] == (None, 4, 4, 4)
    assert conv.pool_sum_op.infer(meta, **pool)[0] == (None, 4, 4, 4)
    with pytest.raises(cr.ShapeError, match="im2col"):
        conv.im2col_op.infer(Meta((None, 4, 2, 2), np.dtype(np.float32)), **dict(geo, padding=((0, 0), (0, 0))))


@pytest.mark.parametrize("xshape,wshape,kw", [
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(padding=(3, 4))),  # kernel columns that read only padding
    ((2, 3, 9, 11), (4, 3, 3, 2), dict(stride=(1, 3), dilation=(2, 2), padding=5)),
    ((3, 2, 5, 5), (2, 2, 2, 4), dict(stride=(1, 2), padding=(0, 6))),
    ((1, 2, 4, 20), (3, 2, 3, 3), dict(stride=(1, 4), padding=(1, 0)))])
def test_conv2d_windows_copied_straight_from_the_images_match_torch(monkeypatch, xshape, wshape, kw):
    """The chunked path copies stride-1-vertical windows straight from the images into a buffer whose
    padding stays zero: each kernel column's rectangle of valid output columns must be exact, also where
    padding is wider than the kernel reaches and with horizontal strides and dilation."""
    monkeypatch.setattr(conv_ops, "_CACHE_BYTES", -1)
    x, w = _randn(*xshape, dtype=np.float64), _randn(*wshape, dtype=np.float64)
    results = []
    for lib in (torch, cr):
        tx, tw = _pair(lib, x, w)
        out = (F if lib is cr else TF).conv2d(tx, tw, **kw)
        (out * lib.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)))).sum().backward()
        results.append((out, tx.grad, tw.grad))
    for name, got, want in zip(("output", "x grad", "w grad"), results[1], results[0]):
        assert_close(got, want, rtol=1e-9, atol=1e-10, what=name)


@pytest.mark.beyond_torch
def test_conv_output_layout_does_not_change_values():
    """Channel-major and channels-last inputs (what earlier convs produce) give the same result."""
    x = _randn(2, 5, 6, 6)
    w = cr.tensor(_randn(7, 5, 3, 3))
    nchw = cr.tensor(x)
    channels_last = cr.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).permute(0, 3, 1, 2)
    channel_major = cr.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2, 3))).permute(1, 0, 2, 3)
    ref = F.conv2d(nchw, w, padding=1).numpy()
    for t in (channels_last, channel_major):
        np.testing.assert_allclose(F.conv2d(t, w, padding=1).numpy(), ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(F.max_pool2d(t, 2).numpy(), F.max_pool2d(nchw, 2).numpy())
