"""PyTorch's legacy typed constructors: ``FloatTensor(data)``, ``LongTensor(2, 3)``, ``isinstance(t, BoolTensor)``.

Each name stands for one dtype. Calling it builds an ordinary :class:`~chainrule.tensor.Tensor` of that
dtype: from data (a list, an array, a tensor of the same dtype), from sizes (uninitialized, as in
PyTorch), or empty. ``isinstance`` checks the dtype, and ``Tensor.type(LongTensor)`` casts to it.
"""

import numbers

import numpy as np

from . import _dtype
from .ops.creation import empty, tensor
from .tensor import Size, Tensor


class _LegacyType(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj._data.dtype == cls.legacy_dtype.numpy

    def __repr__(cls):
        return f"<class 'chainrule.{cls.__name__}'>"


class _LegacyTensor(metaclass=_LegacyType):
    legacy_dtype = None

    def __new__(cls, *args, device=None):
        dtype = cls.legacy_dtype
        if not args:
            return empty(0, dtype=dtype)
        if all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in args) or (
                len(args) == 1 and isinstance(args[0], Size)):
            return empty(*args, dtype=dtype)
        if len(args) > 1:
            raise TypeError(f"{cls.__name__}(): expected sizes (ints) or one sequence of data, got {len(args)} "
                            f"arguments of types {[type(a).__name__ for a in args]}")
        data = args[0]
        if isinstance(data, Tensor) and data._data.dtype != dtype.numpy:
            raise TypeError(f"expected {dtype.name} (got {data.dtype.name}): {cls.__name__}(tensor) keeps the "
                            f"tensor's data; use tensor.to({dtype!r}) to convert")
        return tensor(np.asarray(data._data) if isinstance(data, Tensor) else data, dtype=dtype)


def _legacy(name, dtype):
    cls = _LegacyType(name, (_LegacyTensor,), {"legacy_dtype": dtype, "__doc__": f"A {dtype.name} tensor "
                                                "(PyTorch's legacy constructor)."})
    cls.__module__ = "chainrule"
    return cls


FloatTensor = _legacy("FloatTensor", _dtype.float32)
DoubleTensor = _legacy("DoubleTensor", _dtype.float64)
HalfTensor = _legacy("HalfTensor", _dtype.float16)
LongTensor = _legacy("LongTensor", _dtype.int64)
IntTensor = _legacy("IntTensor", _dtype.int32)
ShortTensor = _legacy("ShortTensor", _dtype.int16)
CharTensor = _legacy("CharTensor", _dtype.int8)
ByteTensor = _legacy("ByteTensor", _dtype.uint8)
BoolTensor = _legacy("BoolTensor", _dtype.bool_)
