"""More of PyTorch's tensor functions, built on the primitives (plus one, ``cumsum``): the surface that
tutorials use beyond the core table (sorting, cumulative sums, fused multiply-adds, stacking helpers,
``new_*`` constructors, in-place variants of unary ops)."""

import builtins
from collections import namedtuple

import numpy as np

from .. import _dtype
from .. import random as _random
from ..tensor import Tensor, _normalize_dim, _wrap
from . import infer
from .creation import empty, full, ones, tensor, zeros
from .elementwise import abs as _abs
from .elementwise import (
    as_tensor_arg,
    clamp,
    exp,
    floor,
    log,
    neg,
    relu,
    round,
    sigmoid,
    sign,
    sqrt,
    square,
    tanh,
    where,
)
from .indexing import flip, gather, getitem, repeat, scatter, scatter_add
from .linalg import matmul, outer
from .op import LINEAR, bind, defop
from .reduce import mean, std, sum, var
from .shape import cat, permute, reshape, unsqueeze

_sort_result = namedtuple("sort", ["values", "indices"])


def _cumsum_infer(x, dim):
    dtype = infer.dtype_of(x)
    return infer.shape_of(x), np.dtype(np.int64) if dtype.kind in "biu" else dtype


cumsum_op = defop(
    "cumsum",
    lambda x, dim: np.cumsum(x, axis=dim, dtype=np.int64 if x.dtype.kind in "biu" else x.dtype),
    _cumsum_infer,
    vjp=(lambda g, out, x, dim: flip(cumsum(flip(g, dim), dim), dim),),
    jvp=LINEAR,
    saves=(),
    doc="Running sums along dim; its gradient is the running sum of the gradient taken from the other end.",
    explain=("d/d{0}: reversed running sum of received",),
)


def cumsum(input, dim, dtype=None):
    input = as_tensor_arg(input) if dtype is None else as_tensor_arg(input).to(dtype)
    return bind(cumsum_op, input, dim=_normalize_dim(dim, input.ndim, "cumsum"))


def argsort(input, dim=-1, descending=False, stable=False):
    """Indices that sort ``input`` along ``dim`` (ties keep their order)."""
    data = as_tensor_arg(input)._data
    dim = _normalize_dim(dim, data.ndim, "argsort")
    order = np.argsort(-data if descending and data.dtype.kind != "b" else data, axis=dim, kind="stable")
    return _wrap(order.astype(np.int64))


def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``input`` sorted along ``dim``; the values are a gather (differentiable)."""
    input = as_tensor_arg(input)
    indices = argsort(input, dim, descending)
    values = gather(input, dim, indices) if input.ndim else input.clone()
    return _sort_result(values, indices)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    return _scaled(input, beta) + _scaled(matmul(mat1, mat2), alpha)


def addcmul(input, tensor1, tensor2, *, value=1):
    return input + _scaled(tensor1 * tensor2, value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    return input + _scaled(tensor1 / tensor2, value)


def _scaled(t, factor):
    return t if factor == 1 else t * factor


def lerp(input, end, weight):
    return input + (end - input) * weight


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def reciprocal(input):
    return 1.0 / as_tensor_arg(input)


def log2(input):
    return log(input) * (1 / np.log(2))


def log10(input):
    return log(input) * (1 / np.log(10))


def exp2(input):
    return exp(as_tensor_arg(input) * np.log(2))


def sinh(input):
    e = exp(input)
    return (e - 1 / e) * 0.5


def cosh(input):
    e = exp(input)
    return (e + 1 / e) * 0.5


def tile(input, dims):
    input = as_tensor_arg(input)
    dims = tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def movedim(input, source, destination):
    input = as_tensor_arg(input)
    source = [_normalize_dim(d, input.ndim, "movedim") for d in np.atleast_1d(source).tolist()]
    destination = [_normalize_dim(d, input.ndim, "movedim") for d in np.atleast_1d(destination).tolist()]
    rest = iter(d for d in range(input.ndim) if d not in source)
    placed = dict(zip(destination, source))
    return permute(input, tuple(placed[i] if i in placed else next(rest) for i in range(input.ndim)))


def roll(input, shifts, dims=None):
    input = as_tensor_arg(input)
    if dims is None:
        return reshape(roll(reshape(input, (-1,)), shifts, 0), tuple(input.shape))
    for shift, dim in zip(np.atleast_1d(shifts).tolist(), np.atleast_1d(dims).tolist()):
        size = input.shape[dim]
        shift %= builtins.max(size, 1)
        if shift:
            head = tuple(slice(None) if d != dim % input.ndim else slice(size - shift, None) for d in range(input.ndim))
            tail = tuple(slice(None) if d != dim % input.ndim else slice(0, size - shift) for d in range(input.ndim))
            input = cat([getitem(input, head), getitem(input, tail)], dim)
    return input


def hstack(tensors):
    tensors = [as_tensor_arg(t) for t in tensors]
    return cat(tensors, 0 if all(t.ndim == 1 for t in tensors) else 1)


def vstack(tensors):
    return cat([reshape(t, (1, -1)) if as_tensor_arg(t).ndim < 2 else t for t in tensors], 0)


def diag(input, diagonal=0):
    """A 1-D input becomes a diagonal matrix; a 2-D input gives its diagonal (the main one only)."""
    input = as_tensor_arg(input)
    if diagonal != 0:
        raise NotImplementedError("diag: only diagonal=0 is supported by chainrule")
    if input.ndim == 1:
        n = input.shape[0]
        return unsqueeze(input, 1) * tensor(np.eye(n, dtype=input._data.dtype))
    n = builtins.min(input.shape)
    index = np.arange(n)
    return getitem(input, (index, index))


def trace(input):
    return sum(diag(input))


def masked_select(input, mask):
    input = as_tensor_arg(input)
    mask = as_tensor_arg(mask)
    return getitem(input.expand(np.broadcast_shapes(input.shape, mask.shape)), mask._data)


def nonzero(input, *, as_tuple=False):
    where = np.nonzero(as_tensor_arg(input)._data)
    if as_tuple:
        return tuple(_wrap(w.astype(np.int64)) for w in where)
    return _wrap(np.stack(where, axis=1).astype(np.int64))


def count_nonzero(input, dim=None):
    return sum(as_tensor_arg(input) != 0, dim)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction), mean(input, dim, keepdim)


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    tensors = [as_tensor_arg(t) for t in tensors]
    if indexing == "xy" and len(tensors) >= 2:
        tensors[0], tensors[1] = tensors[1], tensors[0]
    shape = tuple(t.numel() for t in tensors)
    grids = [reshape(t, tuple(-1 if i == k else 1 for i in range(len(shape)))).expand(shape)
             for k, t in enumerate(tensors)]
    if indexing == "xy" and len(grids) >= 2:  # the first two swapped back: shapes (len(y), len(x), ...)
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def dist(input, other, p=2):
    diff = _abs(as_tensor_arg(input) - other)
    return sum(diff ** p) ** (1.0 / p) if p != float("inf") else diff.max()


def repeat_interleave(input, repeats, dim=None):
    """Each element (or slice along ``dim``) repeated ``repeats`` times in place (an int, or one count each)."""
    input = as_tensor_arg(input)
    if dim is None:
        input, dim = reshape(input, (-1,)), 0
    dim = _normalize_dim(dim, input.ndim, "repeat_interleave")
    counts = repeats._data if isinstance(repeats, Tensor) else repeats
    index = np.repeat(np.arange(input.shape[dim]), counts)
    return getitem(input, (slice(None),) * dim + (index,))


def fmod(input, other):
    """The remainder with the sign of the dividend (C's fmod), as opposed to ``remainder``."""
    input = as_tensor_arg(input)
    quotient = input / other
    return input - _trunc(quotient) * other


def _trunc(x):
    return where(x < 0, -floor(-x), floor(x)).detach() if x.is_floating_point() else x


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    input = as_tensor_arg(input)
    info = np.finfo(input._data.dtype) if input.is_floating_point() else None
    if info is None:
        return input.clone()
    out = where(input != input, nan, input)
    out = where(out == np.inf, info.max if posinf is None else posinf, out)
    return where(out == -np.inf, info.min if neginf is None else neginf, out)


def bernoulli(input, p=None, *, generator=None):
    """0/1 draws with probability ``input`` (or ``p``), in ``input``'s dtype; no gradient."""
    probs = as_tensor_arg(input)._data if p is None else np.broadcast_to(p, as_tensor_arg(input)._data.shape)
    draws = _random.rng(generator).random(np.shape(probs)) < probs
    return _wrap(draws.astype(as_tensor_arg(input)._data.dtype))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values (sorted), optionally with each element's index into them and their counts."""
    data = as_tensor_arg(input)._data
    values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True, axis=dim)
    out = (_wrap(values),)
    if return_inverse:
        out += (_wrap(inverse.reshape(data.shape if dim is None else (data.shape[dim],)).astype(np.int64)),)
    if return_counts:
        out += (_wrap(counts.astype(np.int64)),)
    return out[0] if len(out) == 1 else out


_values_indices = namedtuple("values_indices", ["values", "indices"])


def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest value along ``dim`` (1-based) and its index; the value is a gather (differentiable)."""
    input = as_tensor_arg(input)
    dim = _normalize_dim(dim, input.ndim, "kthvalue")
    if not 1 <= k <= (input.shape[dim] if input.ndim else 1):
        raise IndexError(f"kthvalue(): selected number k out of range for dimension {dim}")
    index = getitem(argsort(input, dim), (slice(None),) * dim + (slice(k - 1, k),)) if input.ndim else None
    if index is None:
        return _values_indices(input.clone(), _wrap(np.array(0)))
    values = gather(input, dim, index)
    if not keepdim:
        values, index = values.squeeze(dim), index.squeeze(dim)
    return _values_indices(values, index)


def median(input, dim=None, keepdim=False):
    """The lower median (of all elements, or ``(values, indices)`` along ``dim``), as PyTorch defines it."""
    input = as_tensor_arg(input)
    if dim is None:
        flat = reshape(input, (-1,))
        return kthvalue(flat, (flat.shape[0] + 1) // 2, 0).values
    dim = _normalize_dim(dim, input.ndim, "median")
    return kthvalue(input, (input.shape[dim] + 1) // 2 if input.ndim else 1, dim, keepdim)


def column_stack(tensors):
    return cat([reshape(t, (-1, 1)) if as_tensor_arg(t).ndim < 2 else t for t in tensors], 1)


def diff(input, n=1, dim=-1):
    """Differences of neighbours along ``dim``, ``n`` times."""
    input = as_tensor_arg(input)
    dim = _normalize_dim(dim, input.ndim, "diff")
    for _ in range(n):
        size = input.shape[dim]
        head = (slice(None),) * dim
        input = getitem(input, head + (slice(1, size),)) - getitem(input, head + (slice(0, size - 1),))
    return input


def nansum(input, dim=None, keepdim=False):
    input = as_tensor_arg(input)
    return sum(where(input != input, 0.0, input), dim, keepdim)


def nanmean(input, dim=None, keepdim=False):
    input = as_tensor_arg(input)
    return nansum(input, dim, keepdim) / sum((input == input).to(input.dtype), dim, keepdim)


def tensordot(a, b, dims=2):
    """Sum over the last ``dims`` dims of ``a`` and the first of ``b`` (or the two lists of dims given)."""
    a, b = as_tensor_arg(a), as_tensor_arg(b)
    if isinstance(dims, int):
        dims = (list(range(a.ndim - dims, a.ndim)), list(range(dims)))
    da = [d % a.ndim for d in np.atleast_1d(dims[0]).tolist()]
    db = [d % b.ndim for d in np.atleast_1d(dims[1]).tolist()]
    keep_a = [d for d in range(a.ndim) if d not in da]
    keep_b = [d for d in range(b.ndim) if d not in db]
    left = reshape(permute(a, tuple(keep_a + da)), (int(np.prod([a.shape[d] for d in keep_a])), -1))
    right = reshape(permute(b, tuple(db + keep_b)), (left.shape[1], -1))
    return reshape(matmul(left, right), tuple(a.shape[d] for d in keep_a) + tuple(b.shape[d] for d in keep_b))


def is_nonzero(input):
    input = as_tensor_arg(input)
    if input.numel() != 1:
        raise RuntimeError(f"Boolean value of Tensor with {'no values' if not input.numel() else 'more than one value'}"
                           " is ambiguous")
    return bool(input.item())


def _new(factory):
    def method(self, *size, dtype=None, device=None, requires_grad=False, **kwargs):
        dtype = dtype if dtype is not None else _dtype.from_numpy_dtype(self._data.dtype)
        device = device if device is not None else self.device  # PyTorch: the new tensor on self's device
        return factory(*size, dtype=dtype, device=device, requires_grad=requires_grad, **kwargs)
    return method


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    dtype = dtype if dtype is not None else _dtype.from_numpy_dtype(self._data.dtype)
    device = device if device is not None else self.device
    return full(size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    dtype = dtype if dtype is not None else _dtype.from_numpy_dtype(self._data.dtype)
    return tensor(data.detach() if isinstance(data, Tensor) else data, dtype=dtype, requires_grad=requires_grad)


def _in_place(fn):
    """``x.exp_()`` and the like: the function's result written into ``x`` (through ``Tensor._inplace``)."""
    def method(self, *args, **kwargs):
        def apply(x, *a):
            return fn(x, *a, **kwargs)
        apply.__name__ = fn.__name__
        return self._inplace(apply, *args)
    method.__name__ = fn.__name__ + "_"
    return method


def _sort_method(self, dim=-1, descending=False, stable=False):
    return sort(self, dim, descending)


def _scatter_(self, dim, index, src=None, value=None, *, reduce=None):
    if reduce is not None:
        raise NotImplementedError("scatter_: reduce= is not supported by chainrule; use scatter_add_ for sums")
    return self._inplace(scatter, dim, index, src, value)


def _scatter_add_(self, dim, index, src):
    return self._inplace(scatter_add, dim, index, src)


def _index_add_(self, dim, index, source, *, alpha=1):
    """Add the slices of ``source`` into the rows ``index`` of ``self`` along ``dim`` (repeats add up)."""
    dim = _normalize_dim(dim, self.ndim, "index_add_")
    source = as_tensor_arg(source) * alpha if alpha != 1 else as_tensor_arg(source)
    shape = [1] * source.ndim
    shape[dim] = -1
    expanded = _wrap(np.broadcast_to(as_tensor_arg(index)._data.reshape(shape), source._data.shape).copy())
    return self._inplace(scatter_add, dim, expanded, source)


def _index_copy_(self, dim, index, source):
    dim = _normalize_dim(dim, self.ndim, "index_copy_")
    self[(slice(None),) * dim + (as_tensor_arg(index)._data,)] = source
    return self


def _index_fill_(self, dim, index, value):
    dim = _normalize_dim(dim, self.ndim, "index_fill_")
    self[(slice(None),) * dim + (as_tensor_arg(index)._data,)] = value
    return self


def _stride(self, dim=None):
    strides = tuple(s // self._data.itemsize for s in self._data.strides)
    return strides if dim is None else strides[_normalize_dim(dim, self.ndim, "stride")]


def _random_(self, from_=0, to=None, *, generator=None):
    low, high = (0, from_) if to is None and from_ else (from_, to)
    if high is None:  # PyTorch's default range: every integer the dtype holds exactly
        dtype = self._data.dtype
        high = 2 ** (np.finfo(dtype).nmant + 1) if dtype.kind == "f" else np.iinfo(dtype).max
    return self._fill_random(_random.rng(generator).integers(low, high, self._data.shape))


def _exponential_(self, lambd=1.0, *, generator=None):
    return self._fill_random(_random.rng(generator).exponential(1.0 / lambd, self._data.shape))


def _apply_(self, callable):
    """Call a Python function on every element, in place (CPU tensors; slow, as in PyTorch)."""
    self._data[...] = np.vectorize(callable, otypes=[self._data.dtype])(self._data)
    self._version[0] += 1
    return self


FUNCTIONS = ("addcdiv", "addcmul", "addmm", "argsort", "clamp_max", "clamp_min", "cosh", "count_nonzero", "cumsum",
             "diag", "dist", "exp2", "hstack", "lerp", "log10", "log2", "masked_select", "meshgrid", "movedim",
             "nonzero", "reciprocal", "roll", "sinh", "sort", "std_mean", "tile", "trace", "var_mean", "vstack")

TENSOR_METHODS = {
    **{name: globals()[name] for name in ("addcdiv", "addcmul", "addmm", "argsort", "clamp_max", "clamp_min",
                                          "cosh", "count_nonzero", "cumsum", "diag", "dist", "exp2", "lerp",
                                          "log10", "log2", "masked_select", "movedim", "nonzero", "reciprocal",
                                          "roll", "sinh", "tile", "trace")},
    "sort": _sort_method,
    "new_zeros": _new(zeros), "new_ones": _new(ones), "new_empty": _new(empty), "new_full": _new_full,
    "new_tensor": _new_tensor,
    **{f"{fn.__name__}_": _in_place(fn) for fn in (exp, log, sqrt, relu, sigmoid, tanh, neg, _abs, floor, round,
                                                   sign, reciprocal, clamp_min, clamp_max, lerp, addcmul, addcdiv,
                                                   cumsum)},
    "scatter_": _scatter_, "scatter_add_": _scatter_add_, "index_fill_": _index_fill_, "stride": _stride,
    "index_add_": _index_add_, "index_copy_": _index_copy_, "kthvalue": kthvalue, "median": median,
    "random_": _random_, "exponential_": _exponential_, "apply_": _apply_,
    "repeat_interleave": repeat_interleave, "fmod": fmod, "nan_to_num": nan_to_num, "bernoulli": bernoulli,
    "data_ptr": lambda self: self._data.ctypes.data,
    "unique": unique, "diff": diff, "nansum": nansum, "nanmean": nanmean, "is_nonzero": is_nonzero,
    "square_": _in_place(square),
    "nelement": lambda self: self._data.size,
    "ndimension": lambda self: self._data.ndim,
    "is_contiguous": lambda self, memory_format=None: True,
    "outer": outer,
}
