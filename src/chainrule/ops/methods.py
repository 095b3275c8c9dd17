"""Tensor methods built on the op library: conversions, in-place ops and Python's operators.

:class:`~chainrule.tensor.Tensor` holds an array and its autograd state and imports nothing above
it; the op library sits above it and installs these methods (and the functions listed in
``TENSOR_METHODS``) on the class, so dependencies point one way: tensor <- ops.

An in-place op is its out-of-place op plus a write: ``x.add_(y)`` computes ``add(x, y)`` and writes
the result into ``x``'s memory (taking over its ``grad_fn`` when the tape records), or, with nothing
to record, lets numpy's in-place ufunc do the work with no copy. Inside a static graph the graph
records the update instead.
"""

import numpy as np

from .. import _device, _dtype
from .._mode import no_grad, state
from ..errors import GraphError
from ..tensor import Tensor, _inplace_error, _snapshot, _write_result
from .elementwise import (
    abs,
    add,
    cast,
    clamp,
    clone,
    copy_from,
    div,
    eq,
    floor_divide,
    ge,
    gt,
    le,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    mul,
    ne,
    neg,
    pow,
    remainder,
    sub,
)
from .indexing import getitem, index_put, masked_fill, replay_view, write_into_view
from .linalg import matmul
from .shape import permute, transpose
from .transfer import to_device


def parse_to(args, dtype=None, device=None):
    """The ``(device, dtype)`` a ``to(...)`` call asks for (None: unchanged), read as PyTorch reads them."""
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, _device.device) or (isinstance(a, str) and a not in _dtype._NAMES) or (
                isinstance(a, int) and not isinstance(a, bool)):
            device = a
        elif a is not None and not isinstance(a, bool):  # a bool is the old positional non_blocking
            dtype = a
    return device, dtype


def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False, memory_format=None):
    """PyTorch's conversions: ``to(dtype)``, ``to(device[, dtype])``, ``to(other)`` and the keywords. A move
    between devices is an op (its gradient moves back); with nothing to change, the tensor itself."""
    if len(args) == 1 and isinstance(args[0], _dtype.DType) and dtype is None and device is None and not copy:
        return cast(self, args[0].numpy)  # to(dtype), the common call: no parsing
    device, dtype = parse_to(args, dtype, device)
    result = self if device is None else to_device(self, device)
    if dtype is not None:
        result = cast(result, _dtype.to_numpy_dtype(dtype))
    return clone(result) if copy and result is self else result


def cpu(self, memory_format=None):
    return to_device(self, "cpu")


def cuda(self, device=None, non_blocking=False, memory_format=None):
    return to_device(self, "cuda" if device is None else device)


def _inplace(self, fn, *args, ufunc=None):
    """Apply out-of-place ``fn(self, *args)`` and write the result into this tensor's memory.

    When the tape is recording, the op runs on a snapshot of the old value (so its saved
    inputs stay valid) and this tensor takes over the result's ``grad_fn``. Without
    recording, numpy's in-place ufunc does the work with no copy.
    """
    if state.tracer is not None:  # a static graph records the update instead of doing it
        return state.tracer.inplace(self, fn, args)
    recording = state.grad_enabled and (
        self._requires_grad or any(isinstance(a, Tensor) and a._requires_grad for a in args)
    )
    if recording:
        if self.grad_fn is None and self._requires_grad:
            raise GraphError(
                f"a leaf Variable that requires grad is being used in an in-place operation "
                f"({fn.__name__}_). Wrap it in `with chainrule.no_grad():` if this is a parameter update."
            )
        if self._base is not None and (self._base[0]._requires_grad or self._requires_grad):
            return self._inplace_on_view(fn, args)
        result = fn(_snapshot(self), *args)
    elif ufunc is not None and not state.fw_level:
        other = args[0]._data if isinstance(args[0], Tensor) else args[0]
        try:
            ufunc(self._data, other, out=self._data, casting="same_kind")
        except (TypeError, ValueError) as exc:
            raise _inplace_error(self, fn, other, exc) from None
        self._version[0] += 1
        return self
    else:
        with no_grad():
            result = fn(self, *args)
    _write_result(self, fn, result)
    if recording:
        self.grad_fn = result.grad_fn
        self._out_nr = result._out_nr
        self._requires_grad = result._requires_grad
    if state.fw_level and result._fw is not None:
        self._fw = result._fw
    return self


def _inplace_on_view(self, fn, args):
    """In-place op on a view: the root tensor becomes "root with the view's region replaced", and
    the view is re-derived from it, so gradients flow through both (PyTorch's CopySlices)."""
    root, chain, _ = self._base
    if root.grad_fn is None and root._requires_grad:
        raise GraphError(f"a view of a leaf Variable that requires grad is being used in an in-place "
                         f"operation ({fn.__name__}_); clone() the leaf first")
    old_root = _snapshot(root)
    new_view = fn(replay_view(chain, old_root), *args)
    new_root = write_into_view(chain, old_root, new_view)
    _write_result(root, fn, new_root)
    root.grad_fn, root._out_nr, root._requires_grad = new_root.grad_fn, new_root._out_nr, True
    view = replay_view(chain, root)
    self.grad_fn, self._out_nr, self._requires_grad = view.grad_fn, view._out_nr, True
    self._base = (root, chain, root.grad_fn)
    return self


def add_(self, other, alpha=1):
    if alpha != 1:
        return self._inplace(add, other * alpha)
    return self._inplace(add, other, ufunc=np.add)


def sub_(self, other, alpha=1):
    if alpha != 1:
        return self._inplace(sub, other * alpha)
    return self._inplace(sub, other, ufunc=np.subtract)


def mul_(self, other):
    return self._inplace(mul, other, ufunc=np.multiply)


def div_(self, other):
    return self._inplace(div, other, ufunc=np.true_divide)


def pow_(self, exponent):
    return self._inplace(pow, exponent)


def clamp_(self, min=None, max=None):
    return self._inplace(clamp, min, max)


def copy_(self, src):
    return self._inplace(copy_from, src)


def masked_fill_(self, mask, value):
    return self._inplace(masked_fill, mask, value)


def zero_(self):
    return self.fill_(0)


def fill_(self, value):
    if isinstance(value, Tensor) and value._requires_grad:
        return self._inplace(copy_from, value)
    if not (state.grad_enabled and self._requires_grad) and not state.fw_level and state.tracer is None:
        self._data[...] = value._data if isinstance(value, Tensor) else value
        self._version[0] += 1
        return self
    return self._inplace(copy_from, value)


def __setitem__(self, index, value):
    self._inplace(index_put, index, value)


def _transposed(self):
    return permute(self, tuple(range(self._data.ndim - 1, -1, -1)))


def _matrix_transposed(self):
    return transpose(self, -2, -1)


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _equality(fn):
    """``t == None`` or ``t != 'a'`` is a plain False or True, as in PyTorch, not an error."""
    def compare(self, other):
        if other is None or isinstance(other, (str, bytes)):
            return NotImplemented
        return fn(self, other)
    compare.__name__ = fn.__name__
    return compare


ARITHMETIC = {"add": add, "sub": sub, "mul": mul, "truediv": div, "floordiv": floor_divide, "mod": remainder,
              "pow": pow, "matmul": matmul}
LOGIC = {"and": logical_and, "or": logical_or, "xor": logical_xor}
COMPARISONS = {"eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge}
IN_PLACE = {"iadd": add_, "isub": sub_, "imul": mul_, "itruediv": div_}
METHODS = (to, cpu, cuda, _inplace, _inplace_on_view, add_, sub_, mul_, div_, pow_, clamp_, copy_, masked_fill_,
           zero_, fill_, __setitem__)


def install(functions):
    """Give :class:`Tensor` its op-backed methods: ``functions`` (name -> public op function, called
    with the tensor first), the methods above, and Python's operators."""
    for name, fn in functions.items():
        setattr(Tensor, name, fn)
    for fn in METHODS:
        setattr(Tensor, fn.__name__, fn)
    Tensor.clip_ = clamp_
    for name, fn in {**ARITHMETIC, **LOGIC, **COMPARISONS}.items():
        setattr(Tensor, f"__{name}__", fn)  # each takes (input, other): the method is the function itself
    Tensor.__eq__, Tensor.__ne__ = _equality(eq), _equality(ne)
    for name, fn in ARITHMETIC.items():
        setattr(Tensor, f"__r{name}__", _reflected(fn))
    for name, fn in IN_PLACE.items():
        setattr(Tensor, f"__{name}__", fn)
    Tensor.__neg__ = neg
    Tensor.__abs__ = abs
    Tensor.__invert__ = logical_not
    Tensor.__getitem__ = getitem
    Tensor.T = property(_transposed)
    Tensor.mT = property(_matrix_transposed)
