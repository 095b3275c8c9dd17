"""Forward mode (dual numbers) for every differentiable op, and autograd.functional, against PyTorch."""

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as tfwd

import chainrule as cr
from helpers import EDGE, GRAD_OPS, assert_close, make_tensor, op_params, to_numpy


def _jvp(lib, fwd, spec, arrays, tangents):
    with fwd.dual_level():
        duals = [fwd.make_dual(make_tensor(lib, a), make_tensor(lib, t)) for a, t in zip(arrays, tangents)]
        out = spec.fn(lib, *duals)
        unpacked = fwd.unpack_dual(out)
        primal, tangent = unpacked.primal, unpacked.tangent
        return to_numpy(primal), (None if tangent is None else to_numpy(tangent)), tuple(primal.shape)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", op_params(GRAD_OPS))
def test_forward_mode_matches_torch(spec, dtype):
    arrays = spec.arrays(dtype, salt="fwd")
    rng = np.random.default_rng(5)
    tangents = [rng.standard_normal(a.shape).astype(dtype) for a in arrays]
    tp, tt, tshape = _jvp(torch, tfwd, spec, arrays, tangents)
    cp, ct, cshape = _jvp(cr, cr.autograd.forward_ad, spec, arrays, tangents)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    assert cshape == tshape
    np.testing.assert_allclose(cp, tp, err_msg="primal", **tol)
    assert ct is not None, "tangent is None"
    if tt is None:
        tt = np.zeros_like(tp)
    assert ct.shape == tt.shape, f"tangent shape {ct.shape} != torch {tt.shape}"
    np.testing.assert_allclose(ct, tt, err_msg="tangent", **tol)


@pytest.mark.parametrize("spec", op_params(GRAD_OPS[::7]))
def test_forward_mode_equals_reverse_mode_jacobian_vector(spec):
    """<J t, v> from forward mode equals <t, J^T v> from reverse mode, inside chainrule alone."""
    arrays = spec.arrays("float64", salt="fr")
    rng = np.random.default_rng(6)
    tangents = [rng.standard_normal(a.shape) for a in arrays]
    _, jt, shape = _jvp(cr, cr.autograd.forward_ad, spec, arrays, tangents)
    v = rng.standard_normal(shape)
    inputs = [make_tensor(cr, a, requires_grad=True) for a in arrays]
    out = spec.fn(cr, *inputs)
    grads = cr.autograd.grad(out, inputs, grad_outputs=make_tensor(cr, v), allow_unused=True)
    lhs = float((jt * v).sum())
    rhs = sum(float((to_numpy(g) * t).sum()) for g, t in zip(grads, tangents) if g is not None)
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-11)


def test_unpack_dual_outside_level_and_plain_tensor():
    x = cr.tensor([1.0, 2.0])
    with cr.autograd.forward_ad.dual_level():
        p, t = cr.autograd.forward_ad.unpack_dual(x)  # a plain tensor has no tangent
        assert t is None
        np.testing.assert_array_equal(to_numpy(p), [1.0, 2.0])
        d = cr.autograd.forward_ad.make_dual(x, cr.tensor([1.0, 0.0]))
        y = d * 3
        c = y + cr.tensor([1.0, 1.0])
        assert cr.autograd.forward_ad.unpack_dual(c).tangent is not None
    # after the level exits, tangents are gone (torch semantics)
    assert cr.autograd.forward_ad.unpack_dual(y).tangent is None


def test_make_dual_shape_mismatch_raises():
    with cr.autograd.forward_ad.dual_level():
        with pytest.raises((ValueError, TypeError, RuntimeError)):
            cr.autograd.forward_ad.make_dual(cr.tensor([1.0, 2.0]), cr.tensor([1.0, 2.0, 3.0]))


def test_forward_mode_chain_and_constant_branches():
    def run(lib, fwd):
        with fwd.dual_level():
            x = fwd.make_dual(lib.tensor([0.3, 1.2], dtype=lib.float64), lib.tensor([1.0, -2.0], dtype=lib.float64))
            c = lib.tensor([2.0, 3.0], dtype=lib.float64)
            y = (x * c).sin() + (c * c).exp() * x - x.sum() / c
            p, t = fwd.unpack_dual(y)
            return to_numpy(p), to_numpy(t)

    tp, tt = run(torch, tfwd)
    cp, ct = run(cr, cr.autograd.forward_ad)
    np.testing.assert_allclose(cp, tp, rtol=1e-12)
    np.testing.assert_allclose(ct, tt, rtol=1e-12)


def test_reverse_mode_still_records_inside_dual_level():
    # ops on plain tensors requiring grad inside a dual level still record a reverse graph
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.autograd.forward_ad.dual_level():
        y = (x * x).sum()
    y.backward()
    np.testing.assert_allclose(to_numpy(x.grad), [2.0, 4.0])


# ----------------------------------------------------------------------------------------------
# autograd.functional
# ----------------------------------------------------------------------------------------------
def _f_single(lib):
    return lambda x: (x.sin() * x.sum()).exp()


def _f_pair(lib):
    return lambda x, w: (x @ w).tanh()


def _f_scalar(lib):
    return lambda x: (x.exp() * x).sum() + (x * x).sum() ** 2


def _f_scalar_pair(lib):
    return lambda x, y: (x * y.sin()).sum() * (x * x).sum()


def _arr(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _T(lib, a):
    return lib.tensor(a, dtype=lib.float64)


def _compare_nested(c, t, rtol=1e-10, atol=1e-12):
    if isinstance(t, (tuple, list)):
        assert isinstance(c, (tuple, list)) and len(c) == len(t), f"structure {type(c)} vs torch {type(t)}"
        for ci, ti in zip(c, t):
            _compare_nested(ci, ti, rtol, atol)
        return
    assert_close(c, t, rtol=rtol, atol=atol)


def test_jacobian_single_input():
    a = _arr(3)
    t = torch.autograd.functional.jacobian(_f_single(torch), _T(torch, a))
    c = cr.autograd.functional.jacobian(_f_single(cr), _T(cr, a))
    _compare_nested(c, t)


def test_jacobian_tuple_inputs():
    x, w = _arr(2, 3), _arr(3, 4, seed=1)
    t = torch.autograd.functional.jacobian(_f_pair(torch), (_T(torch, x), _T(torch, w)))
    c = cr.autograd.functional.jacobian(_f_pair(cr), (_T(cr, x), _T(cr, w)))
    _compare_nested(c, t)


def test_jacobian_create_graph():
    a = _arr(3)
    xt = _T(torch, a).requires_grad_()
    xc = _T(cr, a).requires_grad_()
    jt = torch.autograd.functional.jacobian(_f_single(torch), xt, create_graph=True)
    jc = cr.autograd.functional.jacobian(_f_single(cr), xc, create_graph=True)
    jt.sum().backward()
    jc.sum().backward()
    assert_close(xc.grad, xt.grad, rtol=1e-10, atol=1e-12)


def test_hessian_single_input():
    a = _arr(4)
    t = torch.autograd.functional.hessian(_f_scalar(torch), _T(torch, a))
    c = cr.autograd.functional.hessian(_f_scalar(cr), _T(cr, a))
    _compare_nested(c, t)


def test_hessian_tuple_inputs():
    x, y = _arr(2), _arr(3, seed=2)

    def ft(lib):
        return lambda x, y: (x.sum() * y.sin()).sum() + (x * x).sum() * (y * y).sum()

    t = torch.autograd.functional.hessian(ft(torch), (_T(torch, x), _T(torch, y)))
    c = cr.autograd.functional.hessian(ft(cr), (_T(cr, x), _T(cr, y)))
    _compare_nested(c, t)


def test_functional_jvp():
    x, w = _arr(2, 3), _arr(3, 4, seed=1)
    vx, vw = _arr(2, 3, seed=3), _arr(3, 4, seed=4)
    t = torch.autograd.functional.jvp(_f_pair(torch), (_T(torch, x), _T(torch, w)), (_T(torch, vx), _T(torch, vw)))
    c = cr.autograd.functional.jvp(_f_pair(cr), (_T(cr, x), _T(cr, w)), (_T(cr, vx), _T(cr, vw)))
    _compare_nested(c, t)


def test_functional_jvp_single():
    a, v = _arr(3), _arr(3, seed=7)
    t = torch.autograd.functional.jvp(_f_single(torch), _T(torch, a), _T(torch, v))
    c = cr.autograd.functional.jvp(_f_single(cr), _T(cr, a), _T(cr, v))
    _compare_nested(c, t)


def test_functional_vjp():
    x, w = _arr(2, 3), _arr(3, 4, seed=1)
    v = _arr(2, 4, seed=5)
    t = torch.autograd.functional.vjp(_f_pair(torch), (_T(torch, x), _T(torch, w)), _T(torch, v))
    c = cr.autograd.functional.vjp(_f_pair(cr), (_T(cr, x), _T(cr, w)), _T(cr, v))
    _compare_nested(c, t)


def test_functional_vjp_scalar_output_default_v():
    a = _arr(4)
    t = torch.autograd.functional.vjp(_f_scalar(torch), _T(torch, a))
    c = cr.autograd.functional.vjp(_f_scalar(cr), _T(cr, a))
    _compare_nested(c, t)


def test_functional_outputs_do_not_require_grad_by_default():
    x = _T(cr, _arr(3)).requires_grad_()
    j = cr.autograd.functional.jacobian(_f_single(cr), x)
    assert not j.requires_grad
    out, vjp = cr.autograd.functional.vjp(_f_scalar(cr), x)
    assert not out.requires_grad and not vjp.requires_grad
    assert x.grad is None


# the fixed-input edge cases of test_ops_vs_torch, in forward mode; x/0 is left out: its tangent is an
# inf - inf whose sign depends on how the formula is arranged, in torch as anywhere
FWD_EDGE = sorted(n for n in EDGE if n != "div_by_zero")


@pytest.mark.parametrize("name", FWD_EDGE)
def test_forward_mode_edge_cases_match_torch(name):
    fn, arrays = EDGE[name]
    res = []
    for lib, fwd in ((torch, tfwd), (cr, cr.autograd.forward_ad)):
        with fwd.dual_level():
            duals = [fwd.make_dual(lib.tensor(a), lib.tensor(np.ones_like(a))) for a in arrays]
            primal, tangent = fwd.unpack_dual(fn(lib, *duals))
            res.append((to_numpy(primal), None if tangent is None else to_numpy(tangent)))
    (tp, tt), (cp, ct) = res
    np.testing.assert_allclose(cp, tp, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg="primal")
    tt = np.zeros_like(tp) if tt is None else tt
    ct = np.zeros_like(cp) if ct is None else ct
    np.testing.assert_allclose(ct, tt, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg="tangent")
