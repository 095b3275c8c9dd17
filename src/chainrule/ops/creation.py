"""Functions that create tensors, with PyTorch's dtype defaults (float32 for floats, int64 for ints)."""

import numpy as np

from .. import _device, _dtype
from .. import random as _random
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor, _wrap, as_array
from . import infer
from .op import bind, defop


def _make(array, requires_grad=False, device=None):
    """A new leaf around a freshly made host array, placed on ``device`` (None: the default device)."""
    if device is not None or _device.DEFAULT[0] is not _device.CPU:
        array = _device.placed(array, device)
    return _make_here(array, requires_grad)


def _make_here(array, requires_grad):
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
    return _make(array, requires_grad, device)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory with a numpy array or tensor of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or data._data.dtype == _dtype.to_numpy_dtype(dtype)):
        return data if device is None else data.to(device)
    return _make(as_array(data, dtype), device=device)


def from_numpy(array):
    """A tensor sharing memory with ``array`` (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    _dtype.from_numpy_dtype(array.dtype)
    return _wrap(array)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(_size(size, "zeros"), _float_dtype(dtype)), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(_size(size, "ones"), _float_dtype(dtype)), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.empty(_size(size, "empty"), _float_dtype(dtype)), requires_grad, device)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if not isinstance(size, (tuple, list)):  # PyTorch takes full((2, 3), v), never full(2, v)
        raise TypeError(f"full(): argument 'size' must be a tuple of ints, not {type(size).__name__}")
    if not isinstance(fill_value, (int, float, np.generic)) and (
            not isinstance(fill_value, Tensor) or fill_value.numel() != 1):
        raise DTypeError(f"full(): argument 'fill_value' must be a number, not {type(fill_value).__name__}")
    if dtype is None:
        dtype = as_array(fill_value).dtype
    return _make(np.full(_size((size,), "full"), fill_value, _dtype.to_numpy_dtype(dtype)), requires_grad, device)


fill_op = defop(
    "fill",
    lambda shape, value, dtype, device=None: _device.placed(np.full(shape, value, dtype), device or _device.CPU),
    lambda shape, value, dtype, device=None: (tuple(shape), np.dtype(dtype)),
    doc="np.full(shape, value, dtype) as an op, so the shape may be symbolic: gradient seeds and zero "
        "tangents in static graphs, where no array exists to copy a shape from.",
    lower=lambda args, params, dtype: f"np.full({params['shape']}, {params['value']}, {dtype})",
)


def filled_like(input, value):
    """A tensor of ``input``'s shape, dtype and device filled with ``value``, in every mode (a static graph too)."""
    where = {"device": input.device} if _device.is_device_array(input._data) else {}  # CPU: the static graph's op
    return bind(fill_op, shape=tuple(input._data.shape), value=value, dtype=input._data.dtype, **where)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    n, m = infer.check_int("eye", "n", n), m if m is None else infer.check_int("eye", "m", m)
    _size((n,) if m is None else (n, m), "eye")
    return _make(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad, device)


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
    return _make(np.arange(start, end, step, dtype=_dtype.to_numpy_dtype(dtype)), requires_grad, device)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    if steps < 0:
        raise ShapeError(f"linspace: number of steps must be non-negative, got {steps}")
    return _make(np.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad, device)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    values = _random.rng(generator).random(_size(size, "rand"), dtype=np.float64)
    return _make(values.astype(_float_dtype(dtype)), requires_grad, device)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    values = _random.rng(generator).standard_normal(_size(size, "randn"))
    return _make(values.astype(_float_dtype(dtype)), requires_grad, device)


def randint(low=0, high=None, size=None, generator=None, dtype=None, device=None):
    if high is None or (size is None and isinstance(high, (tuple, list))):  # randint(high, size)
        low, high, size = 0, low, high if size is None else size
    if size is None:
        raise DTypeError("randint: missing the 'size' argument")
    if low >= high:
        raise ShapeError(f"randint: expects 'from' ({low}) to be less than 'to' ({high})")
    values = _random.rng(generator).integers(low, high, _size((size,), "randint"))
    return _make(values.astype(_dtype.to_numpy_dtype(dtype) if dtype else np.int64), device=device)


def randperm(n, generator=None, dtype=None, device=None):
    values = _random.rng(generator).permutation(n)
    return _make(values.astype(_dtype.to_numpy_dtype(dtype) if dtype else np.int64), device=device)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """PyTorch's overloads: tensor mean and/or std (the result has their broadcast shape and dtype;
    ``std`` defaults to 1), or float mean and std with a ``size``."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if tensors and size is not None:
        raise TypeError("normal(): size is only accepted with float mean and std (a tensor mean or std gives "
                        "the shape)")
    if not tensors and size is None:
        raise TypeError("normal(): with float mean and std, pass size, e.g. normal(0.0, 1.0, size=(2, 3))")
    std_values = _device.to_host(std._data) if isinstance(std, Tensor) else np.asarray(std)
    if (std_values < 0).any():
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std_values.min()}")
    if tensors:
        shape = np.broadcast_shapes(*(t._data.shape for t in tensors))
        dtype = dtype or _dtype.from_numpy_dtype(np.result_type(*(t._data.dtype for t in tensors)))
    else:
        shape = _size((size,), "normal")
    mean_values = _device.to_host(mean._data) if isinstance(mean, Tensor) else np.asarray(mean)
    values = _random.rng(generator).normal(mean_values, std_values, shape)
    device = tensors[0].device if tensors and device is None else device  # a tensor's device, as in PyTorch
    return _make(values.astype(_float_dtype(dtype)), requires_grad, device)


def _like_dtype(input, dtype):
    return _dtype.to_numpy_dtype(dtype) if dtype is not None else input._data.dtype


def _like(input, make, dtype, device, requires_grad, *fill):
    """``xp.<make>(input's shape, *fill, dtype)`` on ``input``'s device (or ``device``), with its dtype unless told."""
    shape, dtype = input._data.shape, _like_dtype(input, dtype)
    if device is None:
        return _make_here(getattr(_device.array_module(input._data), make)(shape, *fill, dtype), requires_grad)
    return _make(getattr(np, make)(shape, *fill, dtype), requires_grad, device)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    return _like(input, "zeros", dtype, device, requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    return _like(input, "ones", dtype, device, requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False):
    return _like(input, "empty", dtype, device, requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return _like(input, "full", dtype, device, requires_grad, fill_value)


def rand_like(input, dtype=None, generator=None, device=None, requires_grad=False):
    return rand(input._data.shape, generator=generator, dtype=dtype or input.dtype, requires_grad=requires_grad,
                device=input.device if device is None else device)


def randn_like(input, dtype=None, generator=None, device=None, requires_grad=False):
    return randn(input._data.shape, generator=generator, dtype=dtype or input.dtype, requires_grad=requires_grad,
                 device=input.device if device is None else device)
