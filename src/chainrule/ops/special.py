"""Primitives that transformers and language models need: ``erf`` (exact GELU), the triangular
masks ``tril``/``triu`` (causal attention), ``topk`` and ``multinomial`` (sampling).

``topk`` is one index primitive (which positions win) and a ``gather`` of the values, so its values
are differentiable through gather's rules; ``multinomial`` draws indices and has no gradient.
"""

import math

import numpy as np
from numpy.polynomial import chebyshev

from .. import _device
from .. import random as _random
from ..errors import ShapeError
from . import infer
from .elementwise import as_tensor_arg, exp, floating
from .indexing import gather
from .op import ELEMENTWISE, LINEAR, bind, defop
from .reduce import values_indices


# --- erf -------------------------------------------------------------------------------------
def _erf_table(width=0.25, degree=9, top=6.0):
    """Chebyshev coefficients of erf on [k * width, (k + 1) * width) for every k below ``top``
    (erf(6) is 1 to 17 digits). Computed once from ``math.erf``; numpy has no erf of its own."""
    starts = np.arange(0.0, top, width)
    coef = [chebyshev.chebinterpolate(lambda t, lo=lo: np.vectorize(math.erf)(lo + (t + 1) * width / 2), degree)
            for lo in starts]
    return width, top, np.ascontiguousarray(np.array(coef).T)


_ERF_WIDTH, _ERF_TOP, _ERF_COEF = _erf_table()


def _erf_forward(x):
    """erf to about 4e-15 (absolute): the piece of |x|, then Clenshaw's recurrence on it."""
    xp = _device.array_module(x)
    coef = _device.like(_ERF_COEF, x)  # the table on x's device
    a = xp.minimum(xp.abs(x).astype(np.float64), _ERF_TOP - 1e-9)
    piece = (a * (1 / _ERF_WIDTH)).astype(np.intp)
    t = (a - piece * _ERF_WIDTH) * (2 / _ERF_WIDTH) - 1
    t2 = 2 * t
    b1, b2 = coef[-1].take(piece), xp.zeros_like(t)
    for row in coef[-2:0:-1]:
        b1, b2 = t2 * b1 - b2 + row.take(piece), b1
    y = t * b1 - b2 + coef[0].take(piece)
    return xp.copysign(y, x).astype(x.dtype, copy=False)


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
erf_op = defop(
    "erf",
    _erf_forward,
    infer.floating,
    vjp=(lambda g, out, x: g * (exp(-(x * x)) * _TWO_OVER_SQRT_PI),),
    jvp=ELEMENTWISE,
    saves=(0,),
    doc="The error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to x (exact GELU is built on it).",
    explain=("d/d{0} = 2/sqrt(pi) * exp(-{0}^2)",),
    elementwise=True,
)


def erf(input):
    return bind(erf_op, floating(input))


# --- triangular masks ----------------------------------------------------------------------------
def _triangle_infer(name):
    def rule(x, diagonal):
        shape = infer.shape_of(x)
        if len(shape) < 2:
            raise ShapeError(f"{name}: input tensor must have at least 2 dimensions, got shape {list(shape)}")
        return shape, infer.dtype_of(x)

    return rule


def _triangle(name, forward, doc):
    """A linear op that zeroes one side of the last two dims: its vjp is itself."""
    op = defop(name, lambda x, diagonal: forward(x, diagonal), _triangle_infer(name),
               vjp=(lambda g, out, x, diagonal: bind(op, g, diagonal=diagonal),), jvp=LINEAR, saves=(), doc=doc,
               explain=(f"d/d{{0}} = {name}(received)",))
    return op


tril_op = _triangle("tril", np.tril, "The lower triangle (j <= i + diagonal) of the last two dims; zeros above.")
triu_op = _triangle("triu", np.triu, "The upper triangle (j >= i + diagonal) of the last two dims; zeros below.")


def tril(input, diagonal=0):
    return bind(tril_op, as_tensor_arg(input), diagonal=int(diagonal))


def triu(input, diagonal=0):
    return bind(triu_op, as_tensor_arg(input), diagonal=int(diagonal))


# --- top-k ---------------------------------------------------------------------------------------
def _topk_forward(x, k, dim, largest):
    xp = _device.array_module(x)
    keys = -x if largest else x
    order = xp.argsort(keys, axis=dim, kind="stable")  # ties: the first position first
    return xp.take(order, xp.arange(k), axis=dim).astype(np.int64)


def _topk_infer(x, k, dim, largest):
    shape = list(infer.shape_of(x))
    size = shape[dim] if shape else 1
    if infer.known(size) and not 0 <= k <= size:
        raise ShapeError(f"topk: selected index k ({k}) is out of range for dimension {dim} of size {size}; "
                         f"expected 0 <= k <= {size}")
    if shape:
        shape[dim] = k
    return tuple(shape), np.dtype(np.int64)


topk_indices_op = defop("topk_indices", _topk_forward, infer.refusing("topk_indices", "b", _topk_infer),
                        doc="Positions of the k largest (or smallest) entries along dim, best first.")


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (``largest=False``: smallest) entries along ``dim``, in order, and their
    indices; the values are differentiable (a gather at the indices)."""
    input = as_tensor_arg(input)
    infer.check_dtype("topk", input._data.dtype, "b")
    dim = infer.normalize_dims("topk", dim, input.ndim)[0] if input.ndim else 0
    if input.ndim == 0:
        _topk_infer(input._data, int(k), 0, largest)
        return values_indices(input.clone(), as_tensor_arg(np.array(0)))
    indices = bind(topk_indices_op, input, k=int(k), dim=dim, largest=bool(largest))
    return values_indices(gather(input, dim, indices), indices)


# --- sampling ------------------------------------------------------------------------------------
def _multinomial_forward(probs, num_samples, replacement, generator):
    """Drawn on the host from the generator's stream (so every device draws the same samples)."""
    device_probs, probs = probs, _device.to_host(probs)
    rng = _random.rng(generator)
    rows = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    out = np.empty((len(rows), num_samples), np.int64)
    for r, p in enumerate(rows):
        p = p / p.sum()
        if replacement:
            out[r] = np.searchsorted(np.cumsum(p), rng.random(num_samples) * (1 - 1e-12), side="right")
        else:
            out[r] = rng.choice(len(p), num_samples, replace=False, p=p)
    return _device.like(out.reshape(probs.shape[:-1] + (num_samples,)), device_probs)


def _multinomial_infer(probs, num_samples, replacement, generator):
    shape = infer.shape_of(probs)
    if len(shape) not in (1, 2):
        raise ShapeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {list(shape)}")
    return tuple(shape[:-1]) + (num_samples,), np.dtype(np.int64)


multinomial_op = defop("multinomial", _multinomial_forward, _multinomial_infer, pure=False,
                       doc="Indices drawn with the given (unnormalised) row weights, from a generator.")


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Draw ``num_samples`` category indices per row with probability proportional to ``input``."""
    input = as_tensor_arg(input)
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {input.dtype}")
    _multinomial_infer(input._data, num_samples, replacement, generator)
    data = input._data
    if data.size and ((data < 0).any() or not np.isfinite(data).all()):
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    if data.size and (data.reshape(-1, data.shape[-1]).sum(-1) <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    categories = data.shape[-1]
    if not replacement and num_samples > categories:
        raise RuntimeError(f"multinomial: cannot sample n_sample ({num_samples}) > prob_dist.size(-1) "
                           f"({categories}) samples without replacement")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples, got {num_samples}")
    return bind(multinomial_op, input, num_samples=int(num_samples), replacement=bool(replacement),
                generator=generator)

