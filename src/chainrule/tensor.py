"""The Tensor: a numpy array plus what autograd needs to know about it.

A tensor is a leaf (``grad_fn is None``) or the output of a recorded op (``grad_fn`` is that op's
backward node). ``_version`` counts in-place modifications (shared with views) so the engine can
refuse to use a saved tensor that changed. ``__slots__`` keeps the per-op cost of creating one low.
Most methods are the functions of :mod:`chainrule.ops` attached at the bottom of this file.
"""

import numbers
import operator
import weakref

import numpy as np

from . import _device, _dtype
from . import random as _random
from ._hooks import RemovableHandle
from ._mode import state
from ._printing import format_tensor
from .errors import DTypeError, GraphError, ShapeError

_new = object.__new__


class Tensor:
    """An n-dimensional array that can take part in automatic differentiation."""

    __slots__ = ("_data", "_requires_grad", "grad", "grad_fn", "_out_nr", "_version", "_base",
                 "_hooks", "_fw", "_accum", "__weakref__")
    __array_priority__ = 1000  # numpy defers to our reflected operators: ndarray + Tensor -> Tensor

    def __init__(self, *args, requires_grad=False, dtype=None):
        """PyTorch's legacy constructor: ``Tensor([1, 2])`` (floats, whatever the Python data), ``Tensor(2, 3)``
        (uninitialized, of those sizes), ``Tensor()`` (empty), ``Tensor(t)`` (sharing ``t``); a numpy array
        keeps its dtype. ``chainrule.tensor(data)`` infers the dtype."""
        _init(self, _legacy_array(args, _dtype.to_numpy_dtype(dtype) if dtype is not None else None))
        if requires_grad:
            self.requires_grad = True

    # --- autograd state --------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        flag = bool(flag)
        if self.grad_fn is not None and not flag:
            raise GraphError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if flag and self._data.dtype.kind not in "fc":
            raise DTypeError(
                f"only Tensors of floating point dtype can require gradients (got {self.dtype}); "
                "convert it first, e.g. t.float()"
            )
        self._requires_grad = flag

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def output_nr(self):
        return self._out_nr

    @property
    def data(self):
        """A tensor sharing this one's memory but not its history: changes to it are not tracked."""
        return _wrap(self._data)

    @data.setter
    def data(self, value):
        array = value._data if isinstance(value, Tensor) else as_array(value)
        self._data = array

    def detach(self):
        """A new leaf sharing this tensor's data (and version counter), cut from the graph."""
        t = _wrap(self._data)
        t._version = self._version
        return t

    def detach_(self):
        if self._base is not None and self._base[0]._requires_grad:
            raise GraphError("detach_() cannot be called on a view of a tensor that requires grad; use detach()")
        self.grad_fn = None
        self._requires_grad = False
        return self

    def register_hook(self, hook):
        """Call ``hook(grad)`` whenever this tensor's gradient is computed; it may return a replacement."""
        if not self._requires_grad:
            raise GraphError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            return self.grad_fn._add_tensor_hook(self._out_nr, hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` (leaves always keep theirs)."""
        if not self._requires_grad:
            raise GraphError("can't retain_grad on Tensor that has requires_grad=False")
        fn = self.grad_fn
        if fn is not None:
            if fn._retained is None:
                fn._retained = {}
            fn._retained[self._out_nr] = weakref.ref(self)

    @property
    def retains_grad(self):
        fn = self.grad_fn
        return fn is not None and fn._retained is not None and self._out_nr in fn._retained

    # --- inspection ------------------------------------------------------------------------
    @property
    def shape(self):
        return Size(self._data.shape)

    @property
    def dtype(self):
        return _dtype.from_numpy_dtype(self._data.dtype)

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def device(self):
        return _device.device_of(self._data)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    def get_device(self):
        """The GPU index, -1 on the CPU (PyTorch's answer)."""
        where = self.device
        return -1 if where.type == "cpu" else where.index

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_normalize_dim(dim, self._data.ndim, "size")]

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    def element_size(self):
        return self._data.itemsize

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def numpy(self):
        """The numpy array behind this tensor (shared memory); refused while it requires grad."""
        if self._requires_grad:
            raise GraphError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        _refuse_device_to_numpy(self)
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ShapeError(f"a Tensor with {self._data.size} elements cannot be converted to a Python scalar")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self):
        if self._data.size != 1:
            raise ShapeError(
                f"Boolean value of Tensor with {self._data.size} values is ambiguous; use .any() or .all()"
            )
        return bool(self._data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.item())

    def __array__(self, dtype=None, copy=None):
        _refuse_device_to_numpy(self)
        array = self._data
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def __pos__(self):
        return self

    def __hash__(self):
        return id(self)

    def __reduce__(self):  # pickle data only: a graph is never serialized
        return (_rebuild, (self._data, self._requires_grad))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise GraphError("Only Tensors created explicitly by the user (graph leaves) support deepcopy")
        t = self.__class__.__new__(self.__class__)
        _init(t, self._data.copy())
        t._requires_grad = self._requires_grad
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = t
        return t

    def __repr__(self):
        return _format(self)

    def __format__(self, format_spec):
        """As in PyTorch: a 0-d tensor formats as its value (``f"{loss:.4f}"``), any other as its repr."""
        if self._data.ndim == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def float(self):
        return self.to(_dtype.float32)

    def double(self):
        return self.to(_dtype.float64)

    def half(self):
        return self.to(_dtype.float16)

    def long(self):
        return self.to(_dtype.int64)

    def int(self):
        return self.to(_dtype.int32)

    def bool(self):
        return self.to(_dtype.bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    def type(self, dtype=None, non_blocking=False, **kwargs):
        """With no argument, the legacy type name ('chainrule.FloatTensor'); else a cast to ``dtype``: a
        dtype, a legacy type (``chainrule.LongTensor``) or its name (PyTorch's 'torch.LongTensor' too)."""
        if dtype is None:
            return "chainrule." + _dtype.TYPE_NAMES[self.dtype]
        if isinstance(dtype, str) and "Tensor" in dtype:
            dtype = _dtype.from_type_name(dtype)
        return self.to(getattr(dtype, "legacy_dtype", dtype))

    def contiguous(self):
        return self

    def pin_memory(self, device=None):
        """Host memory is already what a copy to the GPU reads: the tensor itself (PyTorch compatibility)."""
        return self

    def is_pinned(self, device=None):
        return False

    def uniform_(self, a=0.0, b=1.0, generator=None):
        return self._fill_random(_random.rng(generator).uniform(a, b, self._data.shape))

    def normal_(self, mean=0.0, std=1.0, generator=None):
        return self._fill_random(_random.rng(generator).normal(mean, std, self._data.shape))

    def bernoulli_(self, p=0.5, generator=None):
        return self._fill_random(_random.rng(generator).random(self._data.shape) < p)

    def _fill_random(self, values):
        if state.grad_enabled and self._requires_grad and self.grad_fn is None:
            raise GraphError("a leaf Variable that requires grad is being used in an in-place operation; "
                             "initialize it under chainrule.no_grad()")
        self._data[...] = _device.like(values, self._data)
        self._version[0] += 1
        return self


class Size(tuple):
    """A shape, printed the way PyTorch prints one."""

    __slots__ = ()

    def __repr__(self):
        return f"chainrule.Size({list(self)})"

    def numel(self):
        return int(np.prod(self))


class Meta(tuple):
    """Shape and dtype of a tensor whose data is not needed: unsaved inputs, static-graph values."""

    __slots__ = ()

    def __new__(cls, shape, dtype):  # a (shape, dtype) tuple: the tape makes one per unsaved input
        return tuple.__new__(cls, (shape, dtype))

    shape = property(operator.itemgetter(0))
    dtype = property(operator.itemgetter(1))

    @property
    def ndim(self):
        return len(self[0])

    def __repr__(self):
        return f"Meta(shape={self.shape}, dtype={self.dtype})"


def _legacy_array(args, dtype):
    """The array of ``Tensor(*args)``: sizes or Python data give the default float dtype (or ``dtype``); a
    tensor is shared and a numpy array keeps its dtype (unlike PyTorch, which casts it to float)."""
    if len(args) == 1 and isinstance(args[0], (Tensor, np.ndarray)):
        data = args[0]
        return data._data if isinstance(data, Tensor) else as_array(data, dtype)
    dtype = dtype if dtype is not None else _dtype.default_float.numpy
    if not args:
        return np.empty((0,), dtype)
    if all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in args) or (
            len(args) == 1 and isinstance(args[0], Size)):
        return np.empty(tuple(args[0]) if isinstance(args[0], Size) else args, dtype)
    if len(args) > 1:
        raise TypeError(f"Tensor(): expected sizes (ints) or one sequence of data, got {len(args)} arguments")
    return as_array(args[0], dtype)


def _init(t, array):
    t._data = array
    t._requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._out_nr = 0
    t._version = [0]
    t._base = None
    t._hooks = None
    t._fw = None
    t._accum = None


def _wrap(array):
    """A new leaf tensor around an array, without copying or validating: the hot path.

    A static graph's abstract arrays (no data) answer ``__chainrule_tensor__`` with a new symbolic
    tensor for the same graph value, so code that rewraps ``t._data`` (detach, saved outputs)
    works unchanged on symbolic tensors.
    """
    if type(array) is not np.ndarray:
        if isinstance(array, np.generic):  # a full reduction's numpy scalar
            return _wrap(np.asarray(array))
        rebuild = getattr(array, "__chainrule_tensor__", None)
        if rebuild is not None:
            return rebuild()
        if not _device.is_device_array(array):
            array = np.asarray(array)
    t = _new(Tensor)  # _init's fields written here, not by calling it: every op's result comes through here
    t._data = array
    t._requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._out_nr = 0
    t._version = [0]
    t._base = None
    t._hooks = None
    t._fw = None
    t._accum = None
    return t


def _snapshot(t):
    """A copy of ``t``'s value that keeps its place in the graph: the input of an in-place op."""
    s = _wrap(t._data.copy())
    s._requires_grad, s.grad_fn, s._out_nr, s._fw = t._requires_grad, t.grad_fn, t._out_nr, t._fw
    return s


def _rebuild(array, requires_grad):
    t = _wrap(array)
    t._requires_grad = requires_grad
    return t


def as_array(data, dtype=None):
    """Convert user data to a numpy array with PyTorch's dtype defaults (Python floats -> float32)."""
    if isinstance(data, Tensor):
        array = data._data
    elif isinstance(data, np.ndarray) or _device.is_device_array(data):
        array = data
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flatten_first(data)):
            data = _tensors_to_arrays(data)
        try:
            array = np.asarray(data)
        except ValueError as exc:  # ragged nested lists
            raise ShapeError(f"tensor: cannot build a tensor from this data: nested sequences must have equal "
                             f"lengths at every level ({exc})") from None
        if dtype is None and not isinstance(data, np.generic):  # numpy scalars keep their dtype
            if array.dtype.kind == "f":
                array = array.astype(_dtype.default_float.numpy)
            elif array.dtype.kind in "iu":
                array = array.astype(np.int64)
            elif array.dtype.kind not in "b":
                _dtype.from_numpy_dtype(array.dtype)  # raises the clear error
    if dtype is not None:
        target = _dtype.to_numpy_dtype(dtype)
        if array.dtype != target:
            array = array.astype(target)
    else:
        _dtype.from_numpy_dtype(array.dtype)
    return array


def _flatten_first(data):
    while isinstance(data, (list, tuple)) and data:
        if any(isinstance(d, Tensor) for d in data):
            return data
        data = data[0]
    return ()


def _tensors_to_arrays(data):
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)):
        return [_tensors_to_arrays(d) for d in data]
    return data


def _normalize_dim(dim, ndim, op):
    if not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    lo = -max(ndim, 1)
    hi = max(ndim, 1) - 1
    if dim < lo or dim > hi:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim % max(ndim, 1)


def _refuse_device_to_numpy(t):
    where = _device.device_of(t._data)
    if where.type != "cpu":
        raise TypeError(f"can't convert {where} device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                        "to host memory first.")


def _write_result(self, fn, result):
    array = result._data
    if array.shape != self._data.shape:
        raise ShapeError(
            f"{fn.__name__}_: output with shape {list(self._data.shape)} doesn't match the broadcast "
            f"shape {list(array.shape)}"
        )
    if not np.can_cast(array.dtype, self._data.dtype, "same_kind"):
        raise DTypeError(
            f"{fn.__name__}_: result type {_dtype.from_numpy_dtype(array.dtype).name} can't be cast to "
            f"the desired output type {_dtype.from_numpy_dtype(self._data.dtype).name}"
        )
    try:
        np.copyto(self._data, array, casting="same_kind")
    except ValueError as exc:
        raise ShapeError(f"{fn.__name__}_: cannot write into this tensor ({exc}); clone() it first") from None
    self._version[0] += 1


def _inplace_error(self, fn, other, exc):
    if isinstance(exc, TypeError):
        return DTypeError(f"{fn.__name__}_: {exc} (tensor dtype {self.dtype.name})")
    shape = list(np.shape(other))
    return ShapeError(
        f"{fn.__name__}_: output with shape {list(self._data.shape)} doesn't match the broadcast shape "
        f"of the operands (other has shape {shape}) or is not writable: {exc}"
    )


def _format(t):
    dtype = repr(_dtype.from_numpy_dtype(t._data.dtype))
    device = str(t.device) if _device.is_device_array(t._data) else None
    return format_tensor(_device.to_host(t._data), dtype, t.grad_fn.name() if t.grad_fn is not None else None,
                         t._requires_grad, device)
