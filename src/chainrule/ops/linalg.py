"""Matrix multiplication. The primitive takes operands of rank >= 2 (batch dims broadcast); the 1-D
cases of ``matmul`` are reshapes around it, as PyTorch defines them. Its gradients are matmuls with
the other operand transposed; broadcast batch dims are summed back by the engine.
"""

import numpy as np

from ..errors import ShapeError
from . import infer
from .elementwise import as_tensor_arg, coerce
from .op import bilinear_jvp, bind, defop
from .reduce import sum_op
from .shape import reshape, swap_last_two


def _matmul_infer(x, y):
    xs, ys = infer.shape_of(x), infer.shape_of(y)
    if len(xs) < 2 or len(ys) < 2:
        raise ShapeError(f"matmul: both operands need at least 2 dims here, got {list(xs)} and {list(ys)}")
    if infer.known(xs[-1]) and infer.known(ys[-2]) and xs[-1] != ys[-2]:
        raise ShapeError(
            f"matmul: mat1 and mat2 shapes cannot be multiplied ({_mat(xs)} and {_mat(ys)}): the inner sizes "
            f"{xs[-1]} and {ys[-2]} differ (operand shapes {list(xs)} and {list(ys)})"
        )
    infer.same_size(xs[-1], ys[-2])
    try:
        batch = infer.broadcast_shapes("matmul", xs[:-2], ys[:-2])
    except ShapeError:
        raise ShapeError(f"matmul: the batch dimensions of shapes {list(xs)} and {list(ys)} cannot be "
                         f"broadcast together ({list(xs[:-2])} vs {list(ys[:-2])})") from None
    return batch + (xs[-2], ys[-1]), infer.first_dtype((x, y))


def _mat(shape):
    return f"{shape[-2]}x{shape[-1]}"


def _matmul_forward(x, y):
    return np.dot(x, y) if x.ndim == 2 == y.ndim else np.matmul(x, y)  # np.dot: less dispatch for small matrices


matmul_op = defop(
    "matmul",
    _matmul_forward,
    infer.refusing("matmul", "b", _matmul_infer),
    # The rules bind directly: operands are tensors of one dtype with >= 2 dims (no argument checks).
    vjp=(lambda g, out, x, y: bind(linear_op, g, y) if y.ndim == 2 else bind(matmul_op, g, swap_last_two(y)),
         lambda g, out, x, y: bind(weight_grad_op, x, g) if x.ndim == 2 == g.ndim
         else bind(matmul_op, swap_last_two(x), g)),
    jvp=bilinear_jvp(lambda x, y: matmul(x, y)),
    saves={0: (1,), 1: (0,)}, explain=("received @ {1}^T", "{0}^T @ received"), infix="@",
    lower=lambda args, params, dtype: f"np.matmul({args[0]}, {args[1]})",
)


def _linear_infer(x, w):
    xs, ws = infer.shape_of(x), infer.shape_of(w)
    if len(ws) != 2 or not xs:
        raise ShapeError(f"linear: expected a 2-D weight and an input with at least 1 dim, "
                         f"got {list(xs)} and {list(ws)}")
    if infer.known(xs[-1]) and infer.known(ws[1]) and xs[-1] != ws[1]:
        raise ShapeError(f"linear: input features {xs[-1]} do not match the weight's in_features {ws[1]} "
                         f"(input {list(xs)}, weight {list(ws)} = (out_features, in_features))")
    return tuple(xs[:-1]) + (ws[0],), infer.first_dtype((x, w))


def _linear_weight_grad(g, out, x, w):
    """g^T x summed over every leading dim: one GEMM producing a fresh, contiguous (out, in) array."""
    rows_g = reshape(g, (-1, g.shape[-1])) if g.ndim != 2 else g
    rows_x = reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
    return bind(weight_grad_op, rows_g, rows_x)


def _weight_grad_infer(a, b):
    sa, sb = infer.shape_of(a), infer.shape_of(b)
    if len(sa) != 2 or len(sb) != 2:
        raise ShapeError(f"weight_grad: expected two matrices, got shapes {list(sa)} and {list(sb)}")
    if infer.known(sa[0]) and infer.known(sb[0]) and sa[0] != sb[0]:
        raise ShapeError(f"weight_grad: a^T @ b needs the same number of rows, got {list(sa)} and {list(sb)}")
    return (sa[1], sb[1]), infer.first_dtype((a, b))


weight_grad_op = defop(
    "weight_grad",
    lambda a, b: np.dot(a.T, b),
    infer.refusing("weight_grad", "b", _weight_grad_infer),
    vjp=(lambda h, out, a, b: bind(linear_op, b, h), lambda h, out, a, b: bind(matmul_op, a, h)),
    jvp=bilinear_jvp(lambda a, b: bind(weight_grad_op, a, b)),
    saves={0: (1,), 1: (0,)},
    doc="a^T @ b for matrices, the weight gradient of linear and matmul: one GEMM reading a transposed "
        "(no transposing copy and no separate transpose op).",
    explain=("{1} @ received^T", "{0} @ received"),
)


linear_op = defop(
    "linear",
    lambda x, w: np.dot(x, w.T) if x.ndim == 2 else np.matmul(x, w.T),
    infer.refusing("linear", "b", _linear_infer),
    vjp=(lambda g, out, x, w: bind(matmul_op, g, w), _linear_weight_grad),
    jvp=bilinear_jvp(lambda x, w: linear(x, w)),
    saves={0: (1,), 1: (0,)},
    doc="x @ w.T with w stored (out_features, in_features), as nn.Linear keeps it: its weight "
        "gradient comes out as one contiguous GEMM result, not a transposed view.",
    explain=("received @ {1}", "received^T @ {0}"),
)


def _addmm_infer(bias, x, w):
    shape, dtype = _linear_infer(x, w)
    if len(shape) != 2:
        raise ShapeError(f"addmm: expected a matrix input, got shape {list(infer.shape_of(x))}")
    if infer.broadcast_shapes("addmm", infer.shape_of(bias), shape) != tuple(shape):
        raise ShapeError(f"addmm: bias of shape {list(infer.shape_of(bias))} does not broadcast to the output "
                         f"{list(shape)}")
    return shape, infer.first_dtype((bias, x, w))


def _addmm_forward(bias, x, w):
    out = np.dot(x, w.T)
    out += bias  # in place: the product is a fresh array
    return out


def _bias_grad(g, out, bias, x, w):
    return bind(sum_op, g, dim=(0,), keepdim=False) if bias.ndim == 1 else g  # (other shapes: un-broadcast)


addmm_op = defop(
    "addmm",
    _addmm_forward,
    infer.refusing("addmm", "b", _addmm_infer),
    vjp=(_bias_grad, lambda g, out, bias, x, w: bind(matmul_op, g, w),
         lambda g, out, bias, x, w: bind(weight_grad_op, g, x)),
    jvp=lambda tangents, out, bias, x, w: _sum_terms(tangents[0], linear_op.jvp(tangents[1:], out, x, w)),
    saves={0: (), 1: (2,), 2: (1,)},
    doc="bias + x @ w.T for a matrix x, w stored (out_features, in_features): nn.Linear's forward as one "
        "op and one backward node (PyTorch's AddmmBackward0, its edges in PyTorch's order: bias, input, weight).",
    explain=("received summed over the rows", "received @ {2}", "received^T @ {1}"),
)


def _sum_terms(a, b):
    return a if b is None else b if a is None else a + b


def linear(input, weight):
    a, b = coerce(as_tensor_arg(input, "linear"), as_tensor_arg(weight, "linear", "weight"))
    if a._data.dtype.kind == "b":  # numpy multiplies bool matrices; PyTorch refuses
        raise infer.refused("linear", a._data.dtype)
    return bind(linear_op, a, b)


def matmul(input, other):
    """Matrix product with PyTorch's rules: 1-D operands are promoted to matrices and squeezed back."""
    a, b = coerce(as_tensor_arg(input, "matmul"), as_tensor_arg(other, "matmul", "other"))
    if a._data.dtype.kind == "b":  # numpy multiplies bool matrices; PyTorch refuses
        raise infer.refused("matmul", a._data.dtype)
    if a._data.ndim >= 2 and b._data.ndim >= 2:
        return bind(matmul_op, a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes {list(a.shape)} "
                         f"and {list(b.shape)}")
    a2 = reshape(a, (1,) + tuple(a.shape)) if a.ndim == 1 else a
    b2 = reshape(b, tuple(b.shape) + (1,)) if b.ndim == 1 else b
    try:
        out = bind(matmul_op, a2, b2)
    except ShapeError:
        raise ShapeError(f"matmul: shapes {list(a.shape)} and {list(b.shape)} cannot be multiplied: "
                         f"size {a.shape[-1]} of the first's last dim differs from size "
                         f"{b.shape[0] if b.ndim == 1 else b.shape[-2]} of the second's") from None
    shape = tuple(out.shape)
    if a.ndim == 1:
        shape = shape[:-2] + shape[-1:]
    if b.ndim == 1:
        shape = shape[:-1]
    return reshape(out, shape)


def _check_inner(op, a, b):
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"{op}: mat1 and mat2 shapes cannot be multiplied ({_mat(a.shape)} and {_mat(b.shape)}; "
                         f"operand shapes {list(a.shape)} and {list(b.shape)})")


def mm(input, mat2):
    input, mat2 = as_tensor_arg(input, "mm"), as_tensor_arg(mat2, "mm", "mat2")
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expected 2-D matrices, got shapes {list(input.shape)} and {list(mat2.shape)}")
    _check_inner("mm", input, mat2)
    return matmul(input, mat2)


def bmm(input, mat2):
    input, mat2 = as_tensor_arg(input, "bmm"), as_tensor_arg(mat2, "bmm", "mat2")
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(f"bmm: expected 3-D tensors, got shapes {list(input.shape)} and {list(mat2.shape)}")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: batch sizes differ: {list(input.shape)} and {list(mat2.shape)}")
    _check_inner("bmm", input, mat2)
    return matmul(input, mat2)


def dot(input, other):
    input, other = as_tensor_arg(input, "dot"), as_tensor_arg(other, "dot", "other")
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"dot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


def mv(input, vec):
    input, vec = as_tensor_arg(input, "mv"), as_tensor_arg(vec, "mv", "vec")
    if input.ndim != 2 or vec.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D matrix and a 1-D vector, got shapes {list(input.shape)} and "
                         f"{list(vec.shape)}")
    if input.shape[1] != vec.shape[0]:
        raise ShapeError(f"mv: size mismatch, got input ({input.shape[0]}x{input.shape[1]}), vec ({vec.shape[0]})")
    return matmul(input, vec)


def outer(input, vec2):
    input, vec2 = as_tensor_arg(input, "outer"), as_tensor_arg(vec2, "outer", "vec2")
    if input.ndim != 1 or vec2.ndim != 1:
        raise ShapeError(f"outer: 1D tensors expected, but got {input.ndim}D and {vec2.ndim}D tensors")
    return reshape(input, (-1, 1)) * reshape(vec2, (1, -1))
