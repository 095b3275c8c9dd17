"""The op conformance harness: every op registered in ``OPS`` is checked against its own record.

For each op (samples in tests/op_samples.py) and each dtype it accepts: the shape rule agrees with
the forward, dtypes follow PyTorch's public function (refusals included), the vjp rules match
finite differences through the real tape (so the declared ``saves`` suffice, also when only some
inputs require grad) and are twice differentiable, jvp is the transpose of vjp, the ``view`` flag
matches real memory sharing, the ``broadcasts`` flag means numpy broadcasting, and eager, compiled
and forward-mode results agree.
"""

import zlib

import numpy as np
import pytest
import torch

import chainrule as cr  # registers every op: the library, nn's and the static graph's
from chainrule.autograd import forward_ad, gradcheck, gradgradcheck
from chainrule.errors import DTypeError
from chainrule.ops.op import OPS, Meta, bind
from helpers import assert_close
from op_samples import ALL, SAMPLES

NAMES = sorted(OPS)
DIFFERENTIABLE = [n for n in NAMES if OPS[n].vjp is not None]
TIGHT = dict(atol=1e-8, rtol=1e-6)  # central differences in float64 are good to ~1e-10 on these samples


def info(name):
    if name not in SAMPLES:
        pytest.fail(f"op {name!r} has no samples: add an entry to tests/op_samples.py")
    return SAMPLES[name]


def samples(name, dtype):
    """The op's samples ``(args, params)`` in ``dtype``, the same on every call."""
    seed = zlib.crc32(name.encode())
    return [make(np.random.default_rng(seed + k), np.dtype(dtype)) for k, make in enumerate(info(name).makes)]


def per_dtype(names, field):
    return [pytest.param(n, dt, id=f"{n}-{dt}") for n in names if n in SAMPLES for dt in getattr(SAMPLES[n], field)]


def to_tensor(a, requires_grad=False):
    return cr.tensor(a, requires_grad=requires_grad) if isinstance(a, np.ndarray) else a


def grad_inputs(op, args):
    """Positions of the float tensor inputs that the op's vjp differentiates."""
    rules = op.vjp if isinstance(op.vjp, tuple) else [True] * len(args)
    return [i for i, (a, rule) in enumerate(zip(args, rules))
            if rule is not None and isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def binder(op, args, params, positions):
    """``f(*tensors at positions)`` = the op applied with the other arguments held fixed."""
    def f(*xs):
        full = [to_tensor(a) for a in args]
        for i, x in zip(positions, xs):
            full[i] = x
        return bind(op, *full, **params)

    return f


def float64_cases(name):
    """``(op, args, params, positions of the inputs to differentiate)`` for each float64 sample."""
    op = OPS[name]
    for args, params in samples(name, np.float64):
        positions = grad_inputs(op, args)
        assert positions, f"{name}: a sample has no float input to differentiate ({params})"
        yield op, args, params, positions


def metas(args):
    return [Meta(a.shape, a.dtype) if isinstance(a, np.ndarray) else a for a in args]


# --- 1. samples exist -------------------------------------------------------------------------------
def test_every_registered_op_has_samples():
    assert [n for n in NAMES if n not in SAMPLES] == []


def test_every_sample_names_a_registered_op():
    assert [n for n in SAMPLES if n not in OPS] == []


# --- 2. infer agrees with forward; dtypes follow PyTorch ----------------------------------------------
@pytest.mark.parametrize("name, dtype", per_dtype(NAMES, "dtypes"))
def test_infer_matches_forward(name, dtype):
    op = OPS[name]
    for args, params in samples(name, dtype):
        out = np.asarray(op.forward(*args, **params))
        shape, out_dtype = op.infer(*metas(args), **params)
        assert (tuple(shape), np.dtype(out_dtype)) == (out.shape, out.dtype), params


@pytest.mark.parametrize("name, dtype", per_dtype(NAMES, "refuses"))
def test_infer_refuses_dtype(name, dtype):
    for args, params in samples(name, dtype):
        with pytest.raises(DTypeError, match=name):
            OPS[name].infer(*metas(args), **params)


def _call(lib, name, args):
    tensors = [lib.tensor(a) for a in args if isinstance(a, np.ndarray)]
    try:
        return SAMPLES[name].torch(lib, *tensors)
    except (RuntimeError, TypeError) as exc:  # torch's dtype refusals are RuntimeErrors (NotImplementedError too)
        return exc


@pytest.mark.parametrize("name, dtype", [pytest.param(n, dt, id=f"{n}-{dt}") for n in NAMES
                                         if n in SAMPLES and SAMPLES[n].torch for dt in ALL])
def test_public_function_dtypes_follow_torch(name, dtype):
    args, _ = samples(name, dtype)[0]
    expected, actual = _call(torch, name, args), _call(cr, name, args)
    if isinstance(expected, Exception):
        assert isinstance(actual, RuntimeError), f"torch refuses {dtype} ({expected}); chainrule gave {actual!r}"
        return
    assert not isinstance(actual, Exception), f"torch accepts {dtype}; chainrule raised {actual!r}"
    assert_close(actual, expected)


# --- 3 and 5. vjp against finite differences, through the tape (saves suffice) --------------------------
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_vjp_matches_finite_differences(name):
    for op, args, params, positions in float64_cases(name):
        subsets = [positions] + ([[i] for i in positions] if len(positions) > 1 else [])
        for wrt in subsets:  # also one input alone: the tape then keeps only what that input's rule reads
            inputs = [cr.tensor(args[i], requires_grad=True) for i in wrt]
            assert gradcheck(binder(op, args, params, wrt), inputs, **TIGHT)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_vjp_is_twice_differentiable(name):
    for op, args, params, positions in float64_cases(name):
        inputs = [cr.tensor(args[i], requires_grad=True) for i in positions]
        assert gradgradcheck(binder(op, args, params, positions), inputs, **TIGHT)


# --- 4. jvp is the transpose of vjp ----------------------------------------------------------------------
def _check_transpose(op, args, params, positions):
    """<jvp(t), g> == <t, vjp(g)>: forward mode gives jvp(t), the tape gives vjp(g)."""
    rng = np.random.default_rng(1)
    tangents = [rng.standard_normal(args[i].shape) for i in positions]
    f = binder(op, args, params, positions)
    with forward_ad.dual_level():
        out = f(*[forward_ad.make_dual(cr.tensor(args[i]), cr.tensor(t)) for i, t in zip(positions, tangents)])
        jvp = forward_ad.unpack_dual(out).tangent
    inputs = [cr.tensor(args[i], requires_grad=True) for i in positions]
    out = f(*inputs)
    g = rng.standard_normal(tuple(out.shape))
    vjps = cr.autograd.grad(out, inputs, cr.tensor(g), allow_unused=True)
    lhs = float(np.sum(jvp.numpy() * g))
    rhs = sum(float(np.sum(t * v.numpy())) for t, v in zip(tangents, vjps) if v is not None)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-12), params


@pytest.mark.parametrize("name", [n for n in DIFFERENTIABLE if OPS[n].jvp is not None])
def test_jvp_is_transpose_of_vjp(name):
    for op, args, params, positions in float64_cases(name):
        _check_transpose(op, args, params, positions)


# --- 6. the view flag matches memory sharing --------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_view_flag_matches_memory_sharing(name):
    """A view op shares memory on its first sample (others may copy: advanced indexing); other ops never."""
    op = OPS[name]
    for k, (args, params) in enumerate(samples(name, info(name).dtypes[0])):
        out = op.forward(*args, **params)
        shares = any(np.shares_memory(out, a) for a in args if isinstance(a, np.ndarray))
        if op.view and k == 0:
            assert shares, f"{name} is declared a view but its output owns its memory"
        assert not (op.fresh and shares), f"{name} is declared fresh but its output shares an input's memory {params}"


@pytest.mark.parametrize("name", [n for n in NAMES if OPS[n].broadcasts])
def test_broadcasts_flag_means_numpy_broadcasting(name):
    """An op declared ``broadcasts`` outputs input 0 broadcast by numpy's rules, which is what lets a
    compiler feed input 0 to an elementwise consumer instead (static/passes.py)."""
    op = OPS[name]
    for args, params in samples(name, info(name).dtypes[0]):
        out = op.forward(*args, **params)
        np.testing.assert_array_equal(out, np.broadcast_to(args[0], out.shape))


# --- 7. eager, compiled and forward mode agree ------------------------------------------------------------
def _compiled(op, args, params):
    with cr.static.Graph():
        holders = {i: cr.static.placeholder(a.shape, a.dtype) for i, a in enumerate(args) if isinstance(a, np.ndarray)}
        out = bind(op, *[holders.get(i, a) for i, a in enumerate(args)], **params)
    return cr.static.compile(out).run({holders[i]: args[i] for i in holders})


def _forward_mode(op, args, params):
    rng = np.random.default_rng(2)
    with forward_ad.dual_level():
        tensors = [forward_ad.make_dual(cr.tensor(a), cr.tensor(rng.standard_normal(a.shape)))
                   if isinstance(a, np.ndarray) and a.dtype.kind == "f" else to_tensor(a) for a in args]
        return forward_ad.unpack_dual(bind(op, *tensors, **params)).primal


@pytest.mark.parametrize("name, dtype", per_dtype(NAMES, "dtypes"))
def test_eager_compiled_and_forward_mode_agree(name, dtype):
    op = OPS[name]
    for args, params in samples(name, dtype):
        eager = bind(op, *[to_tensor(a) for a in args], **params)
        results = {"compiled": _compiled(op, args, params), "forward mode": _forward_mode(op, args, params)}
        for mode, result in results.items():
            assert (tuple(result.shape), result.dtype) == (tuple(eager.shape), eager.dtype), (mode, params)
            if op.pure:
                np.testing.assert_array_equal(result.numpy(), eager.numpy(), err_msg=f"{mode} {params}")
