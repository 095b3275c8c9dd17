"""Reductions: sum, mean, std, logsumexp, amax/amin and arg-reductions are primitives; var and max/min
with a ``dim`` are compositions of them. softmax and log_softmax are primitives too, each with a
primitive backward (``softmax_backward``, ``log_softmax_backward``) whose own vjps are written in
chainrule ops: a classifier's loss then records two nodes instead of a dozen, and stays differentiable
to any order.
"""

import builtins
import functools
import operator
from collections import namedtuple

import numpy as np

from .. import _device, _dtype
from ..tensor import Tensor, _wrap
from . import infer
from .creation import fill_op
from .elementwise import as_tensor_arg, eq, exp, floating, gt, maximum, minimum, ne, where
from .op import LINEAR, bind, defop
from .shape import expand, reshape


def _reduce_infer(name, dtype=None):
    def rule(x, dim, keepdim):
        shape = infer.shape_of(x)
        infer.normalize_dims(name, dim, len(shape))
        out_dtype = infer.dtype_of(x) if dtype is None else np.dtype(dtype)
        return infer.reduced_shape(shape, dim, keepdim), out_dtype

    return rule


def _grad_to_input_shape(g, x, dim, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input, then expand it."""
    return expand(_kept(g, x, dim, keepdim), tuple(x.shape))


def _sum_forward(x, dim, keepdim):
    dtype = None if x.dtype.kind == "f" else np.int64  # PyTorch sums bools and ints as int64
    if type(x) is np.ndarray:  # np.add.reduce: np.sum's own kernel without its Python dispatch
        return np.add.reduce(x, axis=dim, keepdims=keepdim, dtype=dtype)
    return _device.array_module(x).sum(x, axis=dim, keepdims=keepdim, dtype=dtype)  # GPU: its module's sum


sum_op = defop(
    "sum",
    _sum_forward,
    lambda x, dim, keepdim: (infer.reduced_shape(infer.shape_of(x), dim, keepdim),
                             infer.dtype_of(x) if infer.dtype_of(x).kind == "f" else np.dtype(np.int64)),
    vjp=(lambda g, out, x, dim, keepdim: _grad_to_input_shape(g, x, dim, keepdim),),
    jvp=LINEAR,
    saves=(), explain=("d/d{0} = 1 (received broadcast back to {0}'s shape)",),
    lower=lambda args, params, dtype: (f"np.add.reduce({args[0]}, axis={params['dim']}, dtype={dtype}, "
                                       f"keepdims={params['keepdim']})"),
)


def _extremum_grad(g, out, x, dim, keepdim):
    """Gradient of amax/amin: shared evenly among the elements that attain the extremum."""
    hits = (x == _kept(out, x, dim, keepdim)).to(g.dtype)
    return _kept(g, x, dim, keepdim) * hits / hits.sum(dim=dim, keepdim=True)


def _extremum_jvp(tangents, out, x, dim, keepdim):
    hits = (x == _kept(out, x, dim, keepdim)).to(out.dtype)
    return (tangents[0] * hits).sum(dim=dim, keepdim=keepdim) / hits.sum(dim=dim, keepdim=keepdim)


def _extremum_op(name, forward, **declarations):
    return defop(name, lambda x, dim, keepdim: forward(x, axis=dim, keepdims=keepdim), _reduce_infer(name),
                 vjp=(_extremum_grad,), jvp=_extremum_jvp, saves_output=True, **declarations)


amax_op = _extremum_op("amax", np.max, explain=("d/d{0} = 1 at the maximum (split among ties), else 0",))
amin_op = _extremum_op("amin", np.min, explain=("d/d{0} = 1 at the minimum (split among ties), else 0",))


def _arg_forward(fn):
    def forward(x, dim, keepdim):
        if dim is None or x.ndim == 0:
            index = fn(x.reshape(-1))
            return index.astype(np.int64).reshape((1,) * x.ndim if keepdim else ())
        return fn(x, axis=dim[0], keepdims=keepdim).astype(np.int64)

    return forward


argmax_op = defop("argmax", _arg_forward(np.argmax), infer.refusing("argmax", "b", _reduce_infer("argmax", np.int64)))
argmin_op = defop("argmin", _arg_forward(np.argmin), infer.refusing("argmin", "b", _reduce_infer("argmin", np.int64)))


def _reduction(op, input, dim, keepdim):
    input = as_tensor_arg(input)
    axes = infer.normalize_dims(op.name, dim, input.ndim)
    if input._data.size == 0 and op.name in ("amax", "amin", "argmax", "argmin"):
        raise ValueError(f"{op.name}: cannot reduce an empty tensor of shape {list(input.shape)}: "
                         "the operation has no identity")
    return bind(op, input, dim=axes, keepdim=bool(keepdim))


def sum(input, dim=None, keepdim=False, dtype=None):
    input = as_tensor_arg(input, "sum")
    if dim is None and dtype is None:  # the loss's full sum: no dims to check (the hot path)
        return bind(sum_op, input, dim=None, keepdim=bool(keepdim))
    if dtype is not None:
        input = input.to(dtype)
    return _reduction(sum_op, input, dim, keepdim)


def amax(input, dim=None, keepdim=False):
    return _reduction(amax_op, input, dim, keepdim)


def amin(input, dim=None, keepdim=False):
    return _reduction(amin_op, input, dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    if isinstance(dim, (tuple, list)):
        raise TypeError("argmax: dim must be a single int")
    infer.check_dtype("argmax", as_tensor_arg(input, "argmax")._data.dtype, "b")
    return _reduction(argmax_op, input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    if isinstance(dim, (tuple, list)):
        raise TypeError("argmin: dim must be a single int")
    infer.check_dtype("argmin", as_tensor_arg(input, "argmin")._data.dtype, "b")
    return _reduction(argmin_op, input, dim, keepdim)


def _reduced_count(x, dim):
    """How many elements each reduction over ``dim`` (normalised axes) combines: an int, or in a
    static graph whose sizes are unknown until run time, a 0-d tensor filled with the product of those
    sizes (a symbolic size, which the compiled program reads from its inputs' shapes)."""
    shape = tuple(x._data.shape)
    count = functools.reduce(operator.mul, [shape[a] for a in dim] if dim is not None else shape, 1)
    if infer.known(count):
        return int(count)
    return bind(fill_op, shape=(), value=count, dtype=x._data.dtype)


def _kept(g, x, dim, keepdim):
    """A reduced value reshaped to broadcast against the input (no-op when it already does: keepdim
    was used, or everything was reduced to a 0-d value)."""
    if keepdim or dim is None or dim == () or g._data.ndim == len(x.shape):
        return g
    return reshape(g, infer.reduced_shape(x.shape, dim, True))


def _mean_forward(x, dim, keepdim):
    if type(x) is not np.ndarray or x.dtype.itemsize < 4:  # device arrays; float16 (np.mean sums it in float32)
        return np.mean(x, axis=dim, keepdims=keepdim)
    total = np.add.reduce(x, axis=dim, keepdims=keepdim)  # np.mean's own steps without its Python wrapper
    return total / (x.size // total.size if total.size else 1)


mean_op = defop(
    "mean",
    _mean_forward,
    infer.refusing("mean", "biu", _reduce_infer("mean")),
    vjp=(lambda g, out, x, dim, keepdim: _spread_mean(expand(_kept(g, x, dim, keepdim), tuple(x.shape)), dim),),
    jvp=LINEAR,
    saves=(), explain=("d/d{0} = 1/n (received broadcast back; n = elements averaged)",),
)


def _spread_mean(g, dim):
    """A gradient broadcast back over the averaged elements, divided by their count (a run-time
    tensor when the sizes are symbolic: ``g`` has the input's shape, so it can count them)."""
    return g / _reduced_count(g, dim)


def mean(input, dim=None, keepdim=False, dtype=None):
    """Average; like PyTorch's it refuses integer and bool tensors unless given a float ``dtype``."""
    input = as_tensor_arg(input, "mean") if dtype is None else as_tensor_arg(input, "mean").to(dtype)
    infer.check_dtype("mean", input._data.dtype, "biu")
    return _reduction(mean_op, input, dim, keepdim)


def _correction(unbiased, correction):
    if correction is None:
        return 1 if unbiased is None or unbiased else 0
    return correction


def var(input, dim=None, unbiased=None, keepdim=False, correction=None):
    """Variance; ``correction`` (default 1, Bessel's) is subtracted from the count, as in PyTorch."""
    input = as_tensor_arg(input, "var")
    infer.check_dtype("var", input._data.dtype, "biu")
    axes = infer.normalize_dims("var", dim, input.ndim)
    centered = input - mean(input, dim, keepdim=True)
    count = _reduced_count(input, axes) - _correction(unbiased, correction)
    if isinstance(count, int):
        count = builtins.max(count, 0)
    return sum(centered * centered, dim, keepdim) / count


def _std_grad(g, out, x, dim, keepdim, correction):
    """d std / dx = (x - mean) / ((n - correction) * std), and 0 where std is 0 (PyTorch's choice)."""
    std_kept = _kept(out, x, dim, keepdim)
    count = _reduced_count(x, dim) - correction
    scale = where(std_kept == 0, 0.0, _kept(g, x, dim, keepdim) / (std_kept * count))
    return scale * (x - mean(x, dim, keepdim=True))


std_op = defop(
    "std",
    lambda x, dim, keepdim, correction: np.std(x, axis=dim, keepdims=keepdim, ddof=correction),
    infer.refusing("std", "biu", lambda x, dim, keepdim, correction: _reduce_infer("std")(x, dim, keepdim)),
    vjp=(_std_grad,),
    jvp=lambda tangents, out, x, dim, keepdim, correction: where(
        out == 0, 0.0, sum((x - mean(x, dim, keepdim=True)) * tangents[0], dim, keepdim)
        / (out * (_reduced_count(x, dim) - correction))),
    saves_output=True, explain=("d/d{0} = ({0} - mean({0})) / ((n - correction)*std({0}))",),
)


def std(input, dim=None, unbiased=None, keepdim=False, correction=None):
    """Standard deviation (a primitive, so that a constant input has gradient 0 rather than nan)."""
    input = as_tensor_arg(input, "std")
    infer.check_dtype("std", input._data.dtype, "biu")
    return bind(std_op, input, dim=infer.normalize_dims("std", dim, input.ndim), keepdim=bool(keepdim),
                correction=_correction(unbiased, correction))


def _logsumexp_forward(x, dim, keepdim):
    """Stable: subtract the max first (infinite maxima are replaced so inf - inf cannot give nan).
    Host arrays take the ufuncs' own reductions, in place where the temporary is ours (no np.max/np.sum
    Python wrappers: logsumexp runs in every cross-entropy, on small arrays)."""
    if type(x) is not np.ndarray or not x.ndim:  # (a 0-d array's ufunc results are scalars, not arrays)
        peak = np.max(x, axis=dim, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0)
        out = np.log(np.sum(np.exp(x - peak), axis=dim, keepdims=True)) + peak
        return out if keepdim else np.squeeze(out, axis=dim)
    peak = np.maximum.reduce(x, axis=dim, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    shifted = np.subtract(x, peak)
    out = np.add.reduce(np.exp(shifted, out=shifted), axis=dim, keepdims=True)
    out = np.add(np.log(out, out=out), peak, out=out)
    return out if keepdim else out.squeeze(axis=dim)


logsumexp_op = defop(
    "logsumexp",
    _logsumexp_forward,
    _reduce_infer("logsumexp"),
    vjp=(lambda g, out, x, dim, keepdim: _kept(g, x, dim, keepdim) * exp(x - _kept(out, x, dim, keepdim)),),
    jvp=lambda tangents, out, x, dim, keepdim: sum(tangents[0] * _softmax(x, dim), dim, keepdim),
    saves_output=True, explain=("d/d{0} = softmax({0})",),
)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) along ``dim``, computed stably; its gradient is softmax(x)."""
    return _reduction(logsumexp_op, floating(input, "logsumexp"), dim, keepdim)


def _same_shape(name):
    def rule(x, dim):
        infer.normalize_dims(name, dim, len(infer.shape_of(x)))
        return infer.shape_of(x), infer.dtype_of(x)

    return infer.refusing(name, "biu", rule)  # as PyTorch: no integer softmax


def _softmax_forward(x, dim):
    """exp(x - max) / sum: the max (not replaced where infinite, as PyTorch) keeps exp from overflowing."""
    out = np.exp(x - np.max(x, axis=dim, keepdims=True))
    out /= np.sum(out, axis=dim, keepdims=True)
    return out


def _softmax_backward_forward(g, out, dim):
    return out * (g - np.sum(g * out, axis=dim, keepdims=True))


def _softmax_backward_jvp(tangents, res, g, out, dim):
    tg, tout = tangents
    tg = 0.0 if tg is None else tg
    tout = 0.0 if tout is None else tout
    return tout * (g - sum(g * out, dim, keepdim=True)) + out * (tg - sum(tg * out + g * tout, dim, keepdim=True))


softmax_op = defop(
    "softmax",
    _softmax_forward,
    _same_shape("softmax"),
    vjp=(lambda g, out, x, dim: softmax_backward(g, out, dim),),
    jvp=lambda tangents, out, x, dim: softmax_backward(tangents[0], out, dim),  # the Jacobian is symmetric
    saves=(), saves_output=True,
    doc="exp(x) / sum(exp(x)) along one dim (a primitive: one node instead of five, as in PyTorch).",
    explain=("d/d{0} = softmax * (received - sum(received * softmax))",),
)

softmax_backward_op = defop(
    "softmax_backward",
    _softmax_backward_forward,
    lambda g, out, dim: (infer.shape_of(g), infer.dtype_of(g)),
    vjp=(lambda gg, res, g, out, dim: softmax_backward(gg, out, dim),  # self-adjoint in g
         lambda gg, res, g, out, dim: (gg * (g - sum(g * out, dim, keepdim=True))
                                       - g * sum(gg * out, dim, keepdim=True))),
    jvp=_softmax_backward_jvp,
    grad_name="SoftmaxBackwardDataBackward0",
    doc="softmax's vjp, out * (g - sum(g * out)): a primitive so that backward is one op; twice differentiable.",
    explain=("d/d{0} = softmax_backward(received)",
             "d/d{1} = received * ({0} - sum({0} * {1})) - {0} * sum(received * {1})"),
)


def softmax_backward(g, out, dim):
    return bind(softmax_backward_op, g, out, dim=dim)


def _log_softmax_forward(x, dim):
    """(x - max) - log(sum(exp(x - max))), as PyTorch computes it (an infinite max gives nan, as there)."""
    if type(x) is not np.ndarray or dim is None:  # device arrays; a 0-d input (ufuncs give scalars there)
        shifted = x - np.max(x, axis=dim, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
    out = np.subtract(x, np.maximum.reduce(x, axis=dim, keepdims=True))  # host: the ufuncs' own reductions
    total = np.add.reduce(np.exp(out), axis=dim, keepdims=True)
    out -= np.log(total, out=total)
    return out


def _log_softmax_backward_forward(g, out, dim):
    if type(g) is not np.ndarray or dim is None:  # device arrays; a 0-d input (ufuncs give scalars there)
        return g - np.exp(out) * np.sum(g, axis=dim, keepdims=True)
    total = np.add.reduce(g, axis=dim, keepdims=True)
    grad = np.exp(out)
    grad *= total
    return np.subtract(g, grad, out=grad)


def _log_softmax_backward_jvp(tangents, res, g, out, dim):
    tg, tout = tangents
    probs = exp(out)
    total = 0.0 if tg is None else tg - probs * sum(tg, dim, keepdim=True)
    return total if tout is None else total - probs * tout * sum(g, dim, keepdim=True)


log_softmax_op = defop(
    "log_softmax",
    _log_softmax_forward,
    _same_shape("log_softmax"),
    vjp=(lambda g, out, x, dim: log_softmax_backward(g, out, dim),),
    jvp=lambda tangents, out, x, dim: tangents[0] - sum(exp(out) * tangents[0], dim, keepdim=True),
    saves=(), saves_output=True,
    doc="x - logsumexp(x) along one dim, computed stably (a primitive: one node, as in PyTorch).",
    explain=("d/d{0} = received - softmax({0}) * sum(received)",),
)

log_softmax_backward_op = defop(
    "log_softmax_backward",
    _log_softmax_backward_forward,
    lambda g, out, dim: (infer.shape_of(g), infer.dtype_of(g)),
    vjp=(lambda gg, res, g, out, dim: gg - sum(gg * exp(out), dim, keepdim=True),
         lambda gg, res, g, out, dim: -(gg * exp(out)) * sum(g, dim, keepdim=True)),
    jvp=_log_softmax_backward_jvp,
    grad_name="LogSoftmaxBackwardDataBackward0",
    doc="log_softmax's vjp, g - exp(out) * sum(g): a primitive so that backward is one op; twice differentiable.",
    explain=("d/d{0} = received - sum(received * exp({1}))", "d/d{1} = -received * exp({1}) * sum({0})"),
)


def log_softmax_backward(g, out, dim):
    return bind(log_softmax_backward_op, g, out, dim=dim)


def _softmax_dim(name, input, dim):
    """The one axis normalised (None for a 0-d input: a reduction over everything)."""
    axes = infer.normalize_dims(name, infer.check_int(name, "dim", dim), input.ndim)
    return axes[0] if axes else None


def _softmax_input(name, input, dtype):
    input = as_tensor_arg(input, name)
    if dtype is not None:
        return input.to(dtype)
    infer.check_dtype(name, input._data.dtype, "biu")
    return input


def softmax(input, dim, dtype=None):
    input = _softmax_input("softmax", input, dtype)
    return bind(softmax_op, input, dim=_softmax_dim("softmax", input, dim))


def _softmax(input, dim):
    """softmax along ``dim`` (an int or a tuple of dims: the gradient of logsumexp)."""
    shifted = exp(input - amax(input, dim, keepdim=True).detach())
    return shifted / sum(shifted, dim, keepdim=True)


def log_softmax(input, dim, dtype=None):
    input = _softmax_input("log_softmax", input, dtype)
    return bind(log_softmax_op, input, dim=_softmax_dim("log_softmax", input, dim))



values_indices = namedtuple("values_indices", ["values", "indices"])


def _extremum(input, dim, keepdim, other, full, arg, name):
    if isinstance(dim, Tensor):  # max(a, b): the elementwise form
        other, dim = dim, None
    if other is not None:
        return (maximum if name == "max" else minimum)(input, other)
    if dim is None:
        return full(input)
    if input.ndim == 0:  # dim 0 or -1 of a scalar: the scalar itself, at index 0
        infer.normalize_dims(name, dim, 0)  # accepts 0 and -1, as PyTorch does for a scalar
        return values_indices(input.clone(), _wrap(np.array(0)).to(input.device))
    indices = arg(input, dim, keepdim=True)
    values = input.gather(dim, indices)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return values_indices(values, indices)


def max(input, dim=None, keepdim=False, other=None):
    """``max(x)``: the largest element; ``max(x, dim)``: (values, indices); ``max(x, y)``: elementwise."""
    return _extremum(input, dim, keepdim, other, amax, argmax, "max")


def min(input, dim=None, keepdim=False, other=None):
    """``min(x)``: the smallest element; ``min(x, dim)``: (values, indices); ``min(x, y)``: elementwise."""
    return _extremum(input, dim, keepdim, other, amin, argmin, "min")


def all(input, dim=None, keepdim=False):
    """Whether every element (over ``dim``) is nonzero: bool, or uint8 for a uint8 input (PyTorch's rule).
    A composition (no element is zero), so it traces into static graphs like any op."""
    input = as_tensor_arg(input, "all")
    return _count_test(eq(input, 0), dim, keepdim, eq, input.dtype)


def any(input, dim=None, keepdim=False):
    """Whether some element (over ``dim``) is nonzero; dtype as in :func:`all`."""
    input = as_tensor_arg(input, "any")
    return _count_test(ne(input, 0), dim, keepdim, gt, input.dtype)


def _count_test(hits, dim, keepdim, test, dtype):
    """``test(number of hits over dim, 0)`` as bool, or as uint8 for a uint8 input."""
    result = test(sum(hits, dim, keepdim), 0)
    return result.to(dtype) if dtype is _dtype.uint8 else result
