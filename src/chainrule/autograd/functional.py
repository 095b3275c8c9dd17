"""Higher-level derivatives (PyTorch's ``autograd.functional``): jacobian, hessian, jvp, vjp, hvp.

``jvp`` uses true forward mode (dual numbers); ``jacobian`` builds rows by reverse mode (or columns
by forward mode with ``strategy="forward-mode"``); ``hessian`` is forward-over-reverse: the tangent
of the gradient along each basis direction is a column of the Hessian.
"""

import numpy as np

from .. import ops as _ops
from . import forward_ad as fwAD
from .engine import grad


def _tuple(x):
    return (tuple(x), True) if isinstance(x, (tuple, list)) else ((x,), False)


def _leaves(inputs, create_graph=False):
    """Inputs to differentiate at: cut from their history, unless create_graph must reach it."""
    return tuple(x.view_as(x) if create_graph and x.requires_grad
                 else x.detach().requires_grad_() if x.is_floating_point() else x.detach() for x in inputs)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): one backward pass."""
    inputs, was_tuple = _tuple(inputs)
    xs = _leaves(inputs, create_graph)
    outputs, out_tuple = _tuple(func(*xs))
    if v is None:
        if len(outputs) != 1 or outputs[0].numel() != 1:
            raise ValueError("vjp: v can only be omitted when func returns a single-element tensor")
        v = (_ops.ones_like(outputs[0]),)
    else:
        v, _ = _tuple(v)
    grads = grad(outputs, xs, v, create_graph=create_graph, allow_unused=True)
    grads = tuple(g if g is not None else _ops.zeros_like(x) for g, x in zip(grads, xs))
    outputs = tuple(o if create_graph else o.detach() for o in outputs)
    return (outputs if out_tuple else outputs[0]), (grads if was_tuple else grads[0])


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v) by forward mode: one evaluation with dual numbers."""
    inputs, was_tuple = _tuple(inputs)
    if v is None:
        if len(inputs) != 1 or inputs[0].numel() != 1:
            raise ValueError("jvp: v can only be omitted when the input is a single-element tensor")
        v = (_ops.ones_like(inputs[0]),)
    else:
        v, _ = _tuple(v)
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x.detach() if not create_graph else x, t) for x, t in zip(inputs, v)]
        outputs, out_tuple = _tuple(func(*duals))
        unpacked = [fwAD.unpack_dual(o) for o in outputs]
    primals = tuple(u.primal if create_graph else u.primal.detach() for u in unpacked)
    tangents = tuple(u.tangent if u.tangent is not None else _ops.zeros_like(u.primal) for u in unpacked)
    return (primals if out_tuple else primals[0]), (tangents if out_tuple else tangents[0])


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """J[i][j] = d outputs[i] / d inputs[j], shaped output.shape + input.shape (nested like PyTorch)."""
    inputs, in_tuple = _tuple(inputs)
    if strategy == "forward-mode":
        blocks = _jacobian_columns(func, inputs)
        outputs_tuple = blocks[1]
        blocks = blocks[0]
    else:
        blocks, outputs_tuple = _jacobian_rows(func, inputs, create_graph)
    if not outputs_tuple:
        return blocks[0] if in_tuple else blocks[0][0]
    return tuple(row if in_tuple else row[0] for row in blocks)


def _jacobian_rows(func, inputs, create_graph):
    xs = _leaves(inputs, create_graph)
    outputs, out_tuple = _tuple(func(*xs))
    blocks = []
    for out in outputs:
        rows = [[] for _ in xs]
        flat = out.reshape(-1)
        for r in range(flat.numel()):
            grads = grad([flat[r]], xs, retain_graph=True, create_graph=create_graph, allow_unused=True) \
                if out.requires_grad else [None] * len(xs)
            for c, (g, x) in enumerate(zip(grads, xs)):
                rows[c].append(g if g is not None else _ops.zeros_like(x))
        blocks.append(tuple(
            _ops.stack(rows[c], 0).reshape(tuple(out.shape) + tuple(x.shape)) if rows[c]
            else _ops.zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype)
            for c, x in enumerate(xs)))
    return blocks, out_tuple


def _jacobian_columns(func, inputs):
    columns = None
    out_tuple = False
    for c, x in enumerate(inputs):
        per_output = None
        for j in range(x.numel()):
            direction = [_ops.zeros_like(y) for y in inputs]
            basis = np.zeros(x.numel(), x._data.dtype)
            basis[j] = 1
            direction[c] = _ops.tensor(basis.reshape(tuple(x.shape)))
            outputs, tangents = jvp(func, tuple(inputs), tuple(direction))
            outputs, out_tuple = _tuple(outputs) if isinstance(outputs, tuple) else ((outputs,), False)
            tangents = tangents if isinstance(tangents, tuple) else (tangents,)
            if per_output is None:
                per_output = [[] for _ in tangents]
            for k, t in enumerate(tangents):
                per_output[k].append(t.reshape(-1))
        if columns is None:
            columns = [[None] * len(inputs) for _ in per_output]
        for k, cols in enumerate(per_output):
            shape = tuple(outputs[k].shape) + tuple(x.shape)
            columns[k][c] = _ops.stack(cols, 1).reshape(shape)
    return [tuple(row) for row in columns], out_tuple


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """Second derivatives of a scalar function, by forward-over-reverse (one pass per input element)."""
    inputs, in_tuple = _tuple(inputs)
    blocks = [[None] * len(inputs) for _ in inputs]
    for c, x in enumerate(inputs):
        columns = [[] for _ in inputs]
        for j in range(x.numel()):
            basis = np.zeros(x.numel(), x._data.dtype)
            basis[j] = 1
            with fwAD.dual_level():
                xs = list(_leaves(inputs))
                duals = [fwAD.make_dual(y, _ops.tensor(basis.reshape(tuple(x.shape))) if k == c else _ops.zeros_like(y))
                         for k, y in enumerate(xs)]
                out = func(*duals)
                if out.numel() != 1:
                    raise ValueError(f"hessian: func must return a single-element tensor, got shape {list(out.shape)}")
                grads = grad([out], duals, create_graph=True, allow_unused=True)
                for k, g in enumerate(grads):
                    t = fwAD.unpack_dual(g).tangent if g is not None else None
                    columns[k].append((t if t is not None else _ops.zeros_like(xs[k])).detach().reshape(-1))
        for k, y in enumerate(inputs):
            blocks[k][c] = _ops.stack(columns[k], 1).reshape(tuple(y.shape) + tuple(x.shape))
    result = tuple(tuple(row) for row in blocks)
    return result if in_tuple else result[0][0]


def hvp(func, inputs, v, create_graph=False, strict=False):
    """(func(inputs), H v) by forward-over-reverse in a single pass."""
    inputs, was_tuple = _tuple(inputs)
    v, _ = _tuple(v)
    with fwAD.dual_level():
        xs = _leaves(inputs)
        duals = [fwAD.make_dual(x, t) for x, t in zip(xs, v)]
        out = func(*duals)
        grads = grad([out], duals, create_graph=True, allow_unused=True)
        products = tuple(
            (fwAD.unpack_dual(g).tangent if g is not None else None) for g in grads
        )
        value = fwAD.unpack_dual(out).primal.detach()
    products = tuple(p.detach() if p is not None else _ops.zeros_like(x) for p, x in zip(products, xs))
    return value, (products if was_tuple else products[0])


vhp = hvp  # the Hessian is symmetric
