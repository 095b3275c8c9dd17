"""Data types: thin named wrappers over numpy dtypes, with PyTorch's promotion rules.

numpy and PyTorch disagree on promotion (numpy: int64 + float32 -> float64; PyTorch: float32), and
PyTorch is our contract, so promotion is decided here, not left to numpy.
"""

import numpy as np


class DType:
    """A chainrule dtype such as ``chainrule.float32``; ``.numpy`` is the numpy dtype behind it."""

    __slots__ = ("name", "numpy", "is_floating_point", "is_signed", "itemsize", "_category")

    def __init__(self, name, numpy_dtype, category):
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.is_floating_point = category == 2
        self.is_signed = self.numpy.kind in "if"
        self.itemsize = self.numpy.itemsize
        self._category = category  # 0 bool, 1 integer, 2 floating: the order promotion climbs

    def __repr__(self):
        return f"chainrule.{self.name}"

    def __reduce__(self):  # pickled by name, so worker processes share the singletons
        return (_by_name, (self.name,))


bool_ = DType("bool", np.bool_, 0)
uint8 = DType("uint8", np.uint8, 1)
int8 = DType("int8", np.int8, 1)
int16 = DType("int16", np.int16, 1)
int32 = DType("int32", np.int32, 1)
int64 = DType("int64", np.int64, 1)
float16 = DType("float16", np.float16, 2)
float32 = DType("float32", np.float32, 2)
float64 = DType("float64", np.float64, 2)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
# PyTorch's legacy tensor type names ("torch.FloatTensor"), which Tensor.type() returns and accepts
TYPE_NAMES = {bool_: "BoolTensor", uint8: "ByteTensor", int8: "CharTensor", int16: "ShortTensor",
              int32: "IntTensor", int64: "LongTensor", float16: "HalfTensor", float32: "FloatTensor",
              float64: "DoubleTensor"}
_BY_TYPE_NAME = {name: d for d, name in TYPE_NAMES.items()}
_FROM_NUMPY = {d.numpy: d for d in ALL}
_NAMES = {d.name: d for d in ALL}
default_float = float32


def _by_name(name):
    return _NAMES[name]


def from_numpy_dtype(numpy_dtype):
    """The chainrule dtype for a numpy dtype; unsupported ones (complex, strings, objects) are refused."""
    try:
        return _FROM_NUMPY[np.dtype(numpy_dtype)]
    except (KeyError, TypeError):
        raise TypeError(
            f"chainrule has no dtype for numpy dtype {numpy_dtype!r}; supported: "
            + ", ".join(d.name for d in ALL)
        ) from None


def to_numpy_dtype(dtype):
    """Accept a chainrule dtype, a numpy dtype, a Python type or a name; return the numpy dtype."""
    if isinstance(dtype, DType):
        return dtype.numpy
    if dtype is float:
        return default_float.numpy
    if dtype is int:
        return int64.numpy
    if dtype is bool:
        return bool_.numpy
    if isinstance(dtype, str) and dtype in _NAMES:
        return _NAMES[dtype].numpy
    return from_numpy_dtype(dtype).numpy


def from_type_name(name):
    """The dtype of a legacy type name: 'chainrule.FloatTensor' or PyTorch's 'torch.FloatTensor'."""
    package, _, short = name.rpartition(".")
    if package not in ("torch", "chainrule") or short not in _BY_TYPE_NAME:
        raise ValueError(f"invalid type: {name!r}; expected one of "
                         + ", ".join(f"'chainrule.{n}'" for n in _BY_TYPE_NAME))
    return _BY_TYPE_NAME[short]


def result_type(a, b, a_is_0d=False, b_is_0d=False):
    """PyTorch's promotion of two numpy dtypes: the higher category wins, then the wider type.

    As in PyTorch, a 0-d tensor of the same category as a dimensioned one does not widen it
    (``float32 vector * float64 scalar tensor`` stays float32).
    """
    if a == b:
        return a
    da, db = _FROM_NUMPY[a], _FROM_NUMPY[b]
    if da._category != db._category:
        return a if da._category > db._category else b
    if a_is_0d != b_is_0d:
        return b if a_is_0d else a
    if da._category == 1 and (da is uint8) != (db is uint8):  # uint8 with a signed int: signed wins
        signed = b if da is uint8 else a
        return np.dtype(np.int16) if signed == np.dtype(np.int8) else signed
    return a if da.itemsize >= db.itemsize else b


def scalar_result_type(array_dtype, scalar):
    """The dtype of ``tensor op python_scalar``: the tensor's, unless the scalar is of a higher category."""
    kind = array_dtype.kind
    if isinstance(scalar, bool):
        return array_dtype
    if isinstance(scalar, int):
        return int64.numpy if kind == "b" else array_dtype
    if isinstance(scalar, float):
        return array_dtype if kind == "f" else default_float.numpy
    return array_dtype
