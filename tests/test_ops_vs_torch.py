"""Every core op against PyTorch: values, gradients, gradcheck, double backward, random op chains.

The ops themselves are listed once, in helpers.OPS.
"""

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule as cr
from helpers import EDGE, GRAD_OPS, OPS, assert_close, dtype_name, make_tensor, op_params, to_numpy


def _run(lib, spec, arrays, requires_grad):
    inputs = [make_tensor(lib, a, requires_grad=requires_grad) for a in arrays]
    return inputs, spec.fn(lib, *inputs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", op_params(OPS))
def test_values_and_grads(spec, dtype):
    arrays = spec.arrays(dtype)
    t_in, t_out = _run(torch, spec, arrays, True)
    c_in, c_out = _run(cr, spec, arrays, True)
    assert_close(c_out, t_out, what=f"{spec.name} output")
    assert bool(c_out.requires_grad) == bool(t_out.requires_grad), "requires_grad of the output"
    if not spec.grad:
        return
    rng = np.random.default_rng(1)
    v = rng.standard_normal(tuple(t_out.shape)).astype(dtype_name(t_out.dtype))
    t_out.backward(torch.tensor(v))
    c_out.backward(make_tensor(cr, v))
    for i, (c, t) in enumerate(zip(c_in, t_in)):
        assert_close(c.grad, t.grad, what=f"{spec.name} grad of input {i}")


@pytest.mark.parametrize("spec", op_params([o for o in GRAD_OPS if o.gradcheck]))
def test_gradcheck(spec):
    arrays = spec.arrays("float64", salt="gc")
    inputs = tuple(make_tensor(cr, a, requires_grad=True) for a in arrays)
    assert cr.autograd.gradcheck(lambda *xs: spec.fn(cr, *xs), inputs) is True


def _second_derivatives(lib, spec, arrays, v, w):
    """d/dx of sum_i <grad_i(<out, v>), w_i> — the Hessian-vector products, via create_graph."""
    inputs = [make_tensor(lib, a, requires_grad=True) for a in arrays]
    out = spec.fn(lib, *inputs)
    grads = lib.autograd.grad(out, inputs, grad_outputs=make_tensor(lib, v), create_graph=True)
    assert len(grads) == len(inputs)
    terms = [(g * make_tensor(lib, wi)).sum() for g, wi in zip(grads, w) if g is not None and g.requires_grad]
    first = [to_numpy(g) for g in grads]
    if not terms:
        return first, [np.zeros_like(a) for a in arrays]
    s = terms[0]
    for t in terms[1:]:
        s = s + t
    second = lib.autograd.grad(s, inputs, allow_unused=True)
    second = [np.zeros_like(a) if g is None else to_numpy(g) for g, a in zip(second, arrays)]
    return first, second


@pytest.mark.parametrize("spec", op_params(GRAD_OPS))
def test_double_backward(spec):
    arrays = spec.arrays("float64", salt="dd")
    with torch.no_grad():
        out_shape = tuple(spec.fn(torch, *[torch.tensor(a) for a in arrays]).shape)
    rng = np.random.default_rng(2)
    v = rng.standard_normal(out_shape)
    w = [rng.standard_normal(a.shape) for a in arrays]
    t_first, t_second = _second_derivatives(torch, spec, arrays, v, w)
    c_first, c_second = _second_derivatives(cr, spec, arrays, v, w)
    for i in range(len(arrays)):
        np.testing.assert_allclose(c_first[i], t_first[i], rtol=1e-10, atol=1e-12, err_msg=f"first grad {i}")
        np.testing.assert_allclose(
            c_second[i], t_second[i], rtol=1e-9, atol=1e-11, err_msg=f"second derivative wrt input {i}"
        )


# ----------------------------------------------------------------------------------------------
# comparisons (no grad), in-graph use of comparison results
# ----------------------------------------------------------------------------------------------
CMP = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


@pytest.mark.parametrize("name", sorted(CMP))
@pytest.mark.parametrize("other", ["tensor_bcast", "scalar", "int_tensor"])
def test_comparisons(name, other):
    rng = np.random.default_rng(3)
    a = np.round(rng.standard_normal((3, 4)), 1).astype(np.float32)
    b = np.round(rng.standard_normal((4,)), 1).astype(np.float32)
    b[0] = a[0, 0]  # some equal elements
    results = []
    for lib in (torch, cr):
        x = lib.tensor(a, requires_grad=True)
        if other == "tensor_bcast":
            y = lib.tensor(b)
        elif other == "scalar":
            y = float(a[1, 1])
        else:
            y = lib.tensor([0, 1, -1, 0])
        r = CMP[name](x, y)
        results.append(r)
    t, c = results
    assert dtype_name(c.dtype) == "bool"
    assert not c.requires_grad
    assert c.grad_fn is None
    np.testing.assert_array_equal(to_numpy(c), to_numpy(t))


def test_reflected_comparison_with_scalar():
    x = cr.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(to_numpy(2.0 < x), [False, False, True])
    np.testing.assert_array_equal(to_numpy(2.0 >= x), [True, True, False])


# ----------------------------------------------------------------------------------------------
# hypothesis: random broadcastable shapes and random chains of ops
# ----------------------------------------------------------------------------------------------
UNARY = {
    "sin": lambda lib, x: x.sin(),
    "cos": lambda lib, x: x.cos(),
    "tanh": lambda lib, x: x.tanh(),
    "sigmoid": lambda lib, x: x.sigmoid(),
    "neg": lambda lib, x: -x,
    "square": lambda lib, x: x * x,
    "softplus": lambda lib, x: (x.tanh().exp() + 1.0).log(),
    "sqrt1p": lambda lib, x: (x * x + 1.0).sqrt(),
    "scale": lambda lib, x: 0.5 * x - 0.25,
}
BINARY = {
    "add": lambda lib, x, y: x + y,
    "sub": lambda lib, x, y: y - x,
    "mul": lambda lib, x, y: x * y,
    "div": lambda lib, x, y: x / (y * y + 1.0),
    "rdiv": lambda lib, x, y: y / (x * x + 1.0),
    "where": lambda lib, x, y: lib.where(x > y, x, y * 2.0),
}


@st.composite
def broadcastable_pair(draw):
    rank = draw(st.integers(0, 4))
    base = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    a, b = [], []
    for d in base:
        choice = draw(st.sampled_from(["same", "a1", "b1"]))
        a.append(1 if choice == "a1" else d)
        b.append(1 if choice == "b1" else d)
    drop_a = draw(st.integers(0, len(a)))
    drop_b = draw(st.integers(0, len(b)))
    if draw(st.booleans()):
        a = a[drop_a:]
    else:
        b = b[drop_b:]
    return tuple(a), tuple(b)


@st.composite
def op_chain(draw):
    n = draw(st.integers(1, 6))
    steps = []
    for _ in range(n):
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(sorted(UNARY)))))
        else:
            steps.append(("b", draw(st.sampled_from(sorted(BINARY)))))
    return steps


def _apply_chain(lib, steps, x, y, reduce_dim):
    h = x
    for kind, name in steps:
        h = UNARY[name](lib, h) if kind == "u" else BINARY[name](lib, h, y)
    h = h + y * 0.5  # y always reaches the output (same broadcast shape in both libs)
    if reduce_dim is not None and h.dim() > 0:
        return h.sum(dim=reduce_dim % h.dim())
    return h


# CHAINRULE_HYPOTHESIS_EXAMPLES=2000 for a longer search than the default quick run
@settings(
    max_examples=int(os.environ.get("CHAINRULE_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    shapes=broadcastable_pair(),
    steps=op_chain(),
    seed=st.integers(0, 2**31 - 1),
    reduce_dim=st.one_of(st.none(), st.integers(-4, 3)),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_random_op_chains_match_torch(shapes, steps, seed, reduce_dim, dtype):
    rng = np.random.default_rng(seed)
    xa = rng.standard_normal(shapes[0]).astype(dtype)
    ya = rng.standard_normal(shapes[1]).astype(dtype)
    outs, grads = [], []
    for lib in (torch, cr):
        x = make_tensor(lib, xa, requires_grad=True)
        y = make_tensor(lib, ya, requires_grad=True)
        out = _apply_chain(lib, steps, x, y, reduce_dim)
        v = np.random.default_rng(seed + 1).standard_normal(tuple(out.shape)).astype(dtype)
        out.backward(make_tensor(lib, v))
        outs.append(out)
        grads.append((x.grad, y.grad))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    assert_close(outs[1], outs[0], what=f"chain {steps} on {shapes}", **tol)
    assert_close(grads[1][0], grads[0][0], what="grad x", **tol)
    assert_close(grads[1][1], grads[0][1], what="grad y", **tol)


# ----------------------------------------------------------------------------------------------
# edge cases with fixed inputs: torch's conventions at kinks and ties, zero-size and 0-d tensors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EDGE))
def test_edge_cases_match_torch(name):
    fn, arrays = EDGE[name]
    res = []
    for lib in (torch, cr):
        inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = fn(lib, *inputs)
        out.backward(lib.ones(tuple(out.shape)))
        res.append((out, [x.grad for x in inputs]))
    (t_out, t_grads), (c_out, c_grads) = res
    assert_close(c_out, t_out, what=f"{name} output")
    for i, (c, t) in enumerate(zip(c_grads, t_grads)):
        assert_close(c, t, what=f"{name} grad of input {i}")
