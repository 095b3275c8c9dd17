"""The op library: primitives (one :class:`~chainrule.ops.op.OpDef` each, registered in ``OPS``)
and the public functions built on them. ``Tensor`` methods are these functions (``TENSOR_METHODS``).
"""

from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                       normal, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm, tensor,
                       zeros, zeros_like)
from .elementwise import (abs, add, allclose, cast, ceil, clamp, clip, clone, copy_from, cos, div, divide,
                          eq, equal, exp, expm1, floor, floor_divide, ge, greater, greater_equal, gt, isclose,
                          isfinite, isinf, isnan, le, less, less_equal, log, log1p, logical_and, logical_not,
                          logical_or, logical_xor, lt, maximum, minimum, mul, multiply, ne, neg, not_equal,
                          pow, relu, remainder, round, rsqrt, sigmoid, sign, sin, softplus, sqrt, square, sub,
                          subtract, tan, tanh, true_divide, trunc, where)
from .indexing import (chunk, flip, gather, getitem, index_add_zeros, index_put, index_select, masked_fill,
                       narrow, repeat, scatter, scatter_add, select, split, unbind)
from .linalg import bmm, dot, matmul, mm, mv, outer
from .op import ELEMENTWISE, LINEAR, OPS, Meta, OpDef, bind, defop
from .reduce import (all, amax, amin, any, argmax, argmin, log_softmax, logsumexp, max, mean, min, softmax,
                     std, sum, var)
from .shape import (broadcast_to, cat, concat, concatenate, expand, expand_as, flatten, pad, permute,
                    reshape, reshape_as, squeeze, stack, swapaxes, t, transpose, unflatten, unsqueeze, view,
                    view_as)

negative = neg


def _where_method(self, condition, other):
    return where(condition, self, other)


TENSOR_METHODS = (
    "abs", "add", "all", "allclose", "amax", "amin", "any", "argmax", "argmin", "bmm", "ceil", "chunk",
    "clamp", "clip", "clone", "cos", "div", "divide", "dot", "eq", "equal", "exp", "expand", "expand_as",
    "expm1", "flatten", "flip", "floor", "floor_divide", "gather", "ge", "gt", "index_select", "isclose",
    "isfinite", "isinf", "isnan", "le", "log", "log1p", "log_softmax", "logical_and", "logical_not",
    "logical_or", "logical_xor", "logsumexp", "lt", "masked_fill", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mm", "mul", "multiply", "mv", "narrow", "ne", "neg", "negative", "permute", "pow",
    "relu", "remainder", "repeat", "reshape", "reshape_as", "round", "rsqrt", "scatter", "scatter_add",
    "select", "sigmoid", "sign", "sin", "softmax", "split", "sqrt", "square", "squeeze", "std", "sub",
    "subtract", "sum", "swapaxes", "t", "tan", "tanh", "transpose", "true_divide", "trunc", "unbind",
    "unflatten", "unsqueeze", "var", "view", "view_as",
)
