"""``chainrule.linalg``: norms with PyTorch's names and semantics (``vector_norm``, ``norm``) and the
matrix products; ``Tensor.norm`` and ``chainrule.norm`` are the older spelling of the same norms.

A norm is a composition of primitives that shows as one ``LinalgVectorNormBackward0`` node. Its
gradient at a zero vector is zero, as in PyTorch (the square root is differentiated only where its
argument is positive), so a norm penalty on a tensor that may be all zeros never gives nan.
"""

import math
import numbers

from .autograd.composite import composite
from .ops import abs, amax, amin, as_tensor, matmul, sqrt, sum, where
from .ops.linalg import bmm, dot, mm, mv, outer

__all__ = ["vector_norm", "norm", "matmul", "mm", "bmm", "mv", "dot", "outer"]


@composite("LinalgVectorNorm")
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ``ord``-norm of ``x`` over ``dim`` (all elements by default): inf/-inf (max/min magnitude),
    0 (the count of nonzeros), any other number p: (sum |x|^p)^(1/p)."""
    x = as_tensor(x)
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {x.dtype.name}")
    if not isinstance(ord, numbers.Real):
        raise ValueError(f"linalg.vector_norm: ord must be a number, got {ord!r} (matrix norms: linalg.norm)")
    if ord == math.inf:
        return amax(abs(x), dim, keepdim)
    if ord == -math.inf:
        return amin(abs(x), dim, keepdim)
    if ord == 0:
        return sum((x != 0).to(x.dtype), dim, keepdim)
    if ord == 1:
        return sum(abs(x), dim, keepdim)
    if ord == 2:
        total = sum(x * x, dim, keepdim)
        positive = total > 0
        return where(positive, sqrt(where(positive, total, 1.0)), 0.0)
    total = sum(abs(x) ** ord, dim, keepdim)
    positive = total > 0
    return where(positive, where(positive, total, 1.0) ** (1.0 / ord), 0.0)


def norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    """``Tensor.norm`` / ``chainrule.norm``: 'fro' (and None) is the 2-norm over ``dim`` (all elements by
    default), a number p the vector p-norm; the nuclear norm ('nuc') is not supported."""
    if out is not None:
        raise NotImplementedError("norm: out= is not supported here; assign the result instead")
    if p is None or p == "fro":
        p = 2
    elif isinstance(p, str):
        raise NotImplementedError(f"norm: p={p!r} is not supported by chainrule (supported: 'fro' and numbers)")
    if isinstance(dim, int):
        dim = (dim,)
    return vector_norm(input, p, dim, keepdim, dtype=dtype)
