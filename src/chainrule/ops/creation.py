"""Functions that create tensors, with PyTorch's dtype defaults (float32 for floats, int64 for ints)."""

import numpy as np

from .. import _dtype
from .. import random as _random
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor, _wrap, as_array
from . import infer
from .op import bind, defop


def _make(array, requires_grad=False):
    t = _wrap(array)
    if requires_grad:
        t.requires_grad = True
    return t


def _size(size, op):
    """A shape from ``f(2, 3)`` or ``f((2, 3))``, refusing negative or non-integer sizes."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(infer.as_index(s) for s in size)
    if None in shape:
        bad = size[shape.index(None)]
        raise DTypeError(f"{op}(): argument 'size' must be tuple of ints, but found element of type "
                         f"{type(bad).__name__} (sizes: {size!r})")
    if any(s < 0 for s in shape):
        raise ShapeError(f"{op}: negative dimension in size {list(shape)}; sizes must be >= 0")
    return shape


def _float_dtype(dtype):
    return _dtype.to_numpy_dtype(dtype) if dtype is not None else _dtype.default_float.numpy


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, numpy arrays or tensors)."""
    array = as_array(data, dtype)
    if isinstance(data, (np.ndarray, Tensor)) and (array is data or (isinstance(data, Tensor) and array is data._data)):
        array = array.copy()
    return _make(array, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory with a numpy array or tensor of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or data._data.dtype == _dtype.to_numpy_dtype(dtype)):
        return data
    return _make(as_array(data, dtype))


def from_numpy(array):
    """A tensor sharing memory with ``array`` (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    _dtype.from_numpy_dtype(array.dtype)
    return _wrap(array)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(_size(size, "zeros"), _float_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(_size(size, "ones"), _float_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.empty(_size(size, "empty"), _float_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if not isinstance(fill_value, (int, float, np.generic)) and (
            not isinstance(fill_value, Tensor) or fill_value.numel() != 1):
        raise DTypeError(f"full(): argument 'fill_value' must be a number, not {type(fill_value).__name__}")
    if dtype is None:
        dtype = as_array(fill_value).dtype
    return _make(np.full(_size((size,), "full"), fill_value, _dtype.to_numpy_dtype(dtype)), requires_grad)


fill_op = defop(
    "fill",
    lambda shape, value, dtype: np.full(shape, value, dtype),
    lambda shape, value, dtype: (tuple(shape), np.dtype(dtype)),
    doc="np.full(shape, value, dtype) as an op, so the shape may be symbolic: gradient seeds and zero "
        "tangents in static graphs, where no array exists to copy a shape from.",
    lower=lambda args, params, dtype: f"np.full({params['shape']}, {params['value']}, {dtype})",
)


def filled_like(input, value):
    """A tensor of ``input``'s shape and dtype filled with ``value``, in every mode (a static graph too)."""
    return bind(fill_op, shape=tuple(input._data.shape), value=value, dtype=input._data.dtype)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    n, m = infer.check_int("eye", "n", n), m if m is None else infer.check_int("eye", "m", m)
    _size((n,) if m is None else (n, m), "eye")
    return _make(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def _number(op, arg, value):
    """A Python or numpy number, or a one-element tensor's value (PyTorch takes those as numbers)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise DTypeError(f"{op}(): argument '{arg}' must be a number, not {type(value).__name__}")
    return value


_END_NOT_GIVEN = object()  # arange(5) has no end; arange(5, None) is refused, as in PyTorch


def arange(start, end=_END_NOT_GIVEN, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` to ``end`` (exclusive); int64 for integer arguments, else float32."""
    if end is _END_NOT_GIVEN:
        start, end = 0, start
    start, end, step = (_number("arange", arg, v) for arg, v in (("start", start), ("end", end), ("step", step)))
    if step == 0:
        raise ShapeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ShapeError(f"arange: upper bound and larger bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")
    if dtype is None:
        integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if integral else _dtype.default_float.numpy
    return _make(np.arange(start, end, step, dtype=_dtype.to_numpy_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    if steps < 0:
        raise ShapeError(f"linspace: number of steps must be non-negative, got {steps}")
    return _make(np.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    values = _random.rng(generator).random(_size(size, "rand"), dtype=np.float64)
    return _make(values.astype(_float_dtype(dtype)), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    values = _random.rng(generator).standard_normal(_size(size, "randn"))
    return _make(values.astype(_float_dtype(dtype)), requires_grad)


def randint(low=0, high=None, size=None, generator=None, dtype=None, device=None):
    if high is None or (size is None and isinstance(high, (tuple, list))):  # randint(high, size)
        low, high, size = 0, low, high if size is None else size
    if size is None:
        raise DTypeError("randint: missing the 'size' argument")
    if low >= high:
        raise ShapeError(f"randint: expects 'from' ({low}) to be less than 'to' ({high})")
    values = _random.rng(generator).integers(low, high, _size((size,), "randint"))
    return _make(values.astype(_dtype.to_numpy_dtype(dtype) if dtype else np.int64))


def randperm(n, generator=None, dtype=None, device=None):
    values = _random.rng(generator).permutation(n)
    return _make(values.astype(_dtype.to_numpy_dtype(dtype) if dtype else np.int64))


def normal(mean, std, size=None, generator=None):
    shape = _size((size,), "normal") if size is not None else np.broadcast_shapes(np.shape(mean), np.shape(std))
    values = _random.rng(generator).normal(np.asarray(mean), np.asarray(std), shape)
    return _make(values.astype(_dtype.default_float.numpy))


def _like_dtype(input, dtype):
    return _dtype.to_numpy_dtype(dtype) if dtype is not None else input._data.dtype


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(input._data.shape, _like_dtype(input, dtype)), requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(input._data.shape, _like_dtype(input, dtype)), requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False):
    return _make(np.empty(input._data.shape, _like_dtype(input, dtype)), requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return _make(np.full(input._data.shape, fill_value, _like_dtype(input, dtype)), requires_grad)


def rand_like(input, dtype=None, generator=None, device=None, requires_grad=False):
    return rand(input._data.shape, generator=generator, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randn_like(input, dtype=None, generator=None, device=None, requires_grad=False):
    return randn(input._data.shape, generator=generator, dtype=dtype or input.dtype, requires_grad=requires_grad)
