"""``out=`` for the public functions that take it in PyTorch (``chainrule.matmul(a, b, out=c)``).

The result is computed as usual and written into ``out`` with PyTorch's rules: an ``out`` of another
shape is resized (with PyTorch's warning when it held elements), the result must cast to ``out``'s
dtype under same-kind casting, and ``out=`` refuses to take part in autograd (an input requiring grad
while grad mode is on, or an ``out`` that requires grad, is a RuntimeError). ``out`` is returned.
"""

import functools
import warnings

import numpy as np

from . import _dtype
from ._mode import no_grad, state
from .errors import DTypeError, GraphError
from .tensor import Tensor

# the functions of the chainrule namespace that accept out= in PyTorch
OUT_FUNCTIONS = (
    "abs", "add", "amax", "amin", "arange", "argmax", "argmin", "bmm", "cat", "ceil", "clamp", "clip", "concat",
    "concatenate", "cos", "div", "divide", "dot", "empty", "eq", "exp", "expm1", "eye", "floor", "floor_divide",
    "full", "gather", "ge", "gt", "index_select", "le", "linspace", "log", "log1p", "logical_and", "logical_not",
    "logical_or", "logical_xor", "logsumexp", "lt", "matmul", "maximum", "mean", "minimum", "mm", "mul",
    "multiply", "mv", "ne", "neg", "negative", "normal", "ones", "pow", "rand", "randint", "randn", "randperm",
    "remainder", "round", "rsqrt", "sigmoid", "sign", "sin", "sqrt", "square", "stack", "std", "sub",
    "subtract", "sum", "tan", "tanh", "true_divide", "trunc", "var", "where", "zeros",
)


def with_out(fn):
    """``fn`` with PyTorch's ``out=`` keyword (see the module docstring)."""

    @functools.wraps(fn)
    def call(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        name = fn.__name__
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
        if state.grad_enabled and (out._requires_grad or any(_requires_grad(a) for a in (*args, *kwargs.values()))):
            raise GraphError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                             "but one of the arguments requires grad.")
        with no_grad():
            result = fn(*args, **kwargs)
        _write(name, out, result._data)
        return out

    return call


def _requires_grad(value):
    if isinstance(value, (list, tuple)):
        return any(_requires_grad(v) for v in value)
    return isinstance(value, Tensor) and value._requires_grad


def _write(name, out, array):
    if not np.can_cast(array.dtype, out._data.dtype, "same_kind"):
        raise DTypeError(f"{name}(): result type {_dtype.from_numpy_dtype(array.dtype).name} can't be cast to the "
                         f"desired output type {_dtype.from_numpy_dtype(out._data.dtype).name}")
    if out._data.shape != array.shape:
        if out._data.size:
            warnings.warn(f"An output with one or more elements was resized since it had shape "
                          f"{list(out._data.shape)}, which does not match the required output shape "
                          f"{list(array.shape)}. This behavior is deprecated, and in a future PyTorch release "
                          "outputs will not be resized unless they have zero elements. You can explicitly reuse "
                          "an out tensor t by resizing it, inplace, to zero elements with t.resize_(0).",
                          UserWarning, stacklevel=3)
        out._data = np.empty(array.shape, out._data.dtype)
    np.copyto(out._data, array, casting="same_kind")
    out._version[0] += 1
