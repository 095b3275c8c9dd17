"""Indexing primitives and their adjoint pairs.

``getitem`` (basic and advanced indexing) has as vjp ``index_add_zeros``, which scatters a gradient
into zeros at the indexed places; the vjp of that is ``getitem`` again, so indexing is
differentiable to any order. ``gather`` and ``scatter_add`` are each other's adjoints in the same way.
"""

import numpy as np

from .. import _device
from ..errors import IndexOutOfRangeError, ShapeError
from ..tensor import Tensor, _wrap, as_array
from . import infer
from .elementwise import as_tensor_arg, coerce, where
from .op import LINEAR, bind, defop
from .shape import pad, reshape, unsqueeze

_UNKNOWN = 1 << 20  # stands in for sizes unknown at build time when a rule indexes a dummy array


def normalize_index(index):
    """Index tuple with tensors and lists turned into numpy arrays (what numpy indexing accepts)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for k in index:
        if isinstance(k, Tensor):
            k = k._data
        elif isinstance(k, list):
            k = np.asarray(k)
            if k.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if _is_array(k) and k.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        out.append(k)
    return tuple(out)


def _is_array(k):
    return isinstance(k, np.ndarray) or _device.is_device_array(k)


def _has_integer_array(index):
    return any(_is_array(k) and k.dtype.kind in "iu" for k in index)


def _index_infer(x, index):
    """Let numpy index a zero-memory dummy array; unknown size k stands in as _UNKNOWN + k, so a
    size that passes through unchanged is recognised and keeps its symbol."""
    shape = infer.shape_of(x)
    unknown = [s for s in shape if not infer.known(s)]
    stand_in = {id(s): _UNKNOWN + k for k, s in enumerate(unknown)}
    dummy = np.broadcast_to(np.empty((), infer.dtype_of(x)),
                            tuple(s if infer.known(s) else stand_in[id(s)] for s in shape))
    try:
        out = dummy[index].shape
    except (IndexError, TypeError, ValueError):
        raise _index_error(dummy.shape, index if isinstance(index, tuple) else (index,)) from None
    back = {v: s for s, v in zip(unknown, stand_in.values())}
    return tuple(back.get(s, None) if s > _UNKNOWN // 2 else s for s in out), infer.dtype_of(x)


def _index_error(shape, index):
    """PyTorch's message for an index numpy refused: too many indices, an index out of bounds (with
    the dimension it indexes), or something that cannot index."""
    for k in index:
        if not (k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice, np.ndarray))):
            return IndexOutOfRangeError("getitem: only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                                        f"Variables are valid indices (got {type(k).__name__})")
    ndims = [0 if k is None or k is Ellipsis else k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else 1
             for k in index]
    if sum(ndims) > len(shape):
        return IndexOutOfRangeError(f"getitem: too many indices for tensor of dimension {len(shape)}")
    dim = 0
    for k, n in zip(index, ndims):
        if k is Ellipsis:
            dim = len(shape) - sum(ndims[index.index(Ellipsis) + 1:])
        elif isinstance(k, (int, np.integer, np.ndarray)) and n == 1 and np.size(k):
            size = shape[dim]
            bad = k if np.ndim(k) == 0 else (np.min(k) if np.min(k) < -size else np.max(k))
            if not -size <= bad < size:
                return IndexOutOfRangeError(
                    f"getitem: index {bad} is out of bounds for dimension {dim} with size {size}")
        dim += n
    return IndexOutOfRangeError(f"getitem: invalid index {index!r} for a tensor of shape {list(shape)}")


def _add_at(out, index, values):
    """``np.add.at`` on ``out``'s device: repeated indices add up (a GPU's scatter-add kernel where there is one)."""
    cuda, xp = _device.kernels(out), _device.array_module(out)
    if cuda is not None:
        cuda.scatter_add(out, index, values)
    else:
        xp.add.at(out, index, values)


def _index_add_zeros_forward(g, shape, index):
    xp = _device.array_module(g)
    out = xp.zeros(shape, g.dtype)
    index = _device.index_on(index, g)
    if _has_integer_array(index):
        _add_at(out, index, g)
    else:
        out[index] = g
    return out


getitem_op = defop(
    "getitem",
    lambda x, index: x[index] if type(x) is np.ndarray else x[_device.index_on(index, x)],
    _index_infer,
    vjp=(lambda g, out, x, index: index_add_zeros(g, x.shape, index),),
    jvp=LINEAR,
    saves=(),
    view=True, explain=("zeros of {0}'s shape with received placed at the index",),
    view_inverse=lambda base, value, index: bind(index_put_op, base, value, index=index),
)

index_add_zeros_op = defop(
    "index_add_zeros",
    _index_add_zeros_forward,
    lambda g, shape, index: (tuple(shape), infer.dtype_of(g)),
    vjp=(lambda g, out, grad, shape, index: g[index],),
    jvp=LINEAR,
    saves=(),
    doc="zeros(shape) with g added at x[index]: the adjoint of getitem.", explain=("received read at the index",),
)


def getitem(input, index):
    return bind(getitem_op, input, index=normalize_index(index))


def index_add_zeros(g, shape, index):
    return bind(index_add_zeros_op, g, shape=tuple(shape), index=index)


def _index_put_forward(x, value, index):
    out = x.copy()
    out[_device.index_on(index, x)] = value
    return out


index_put_op = defop(
    "index_put",
    _index_put_forward,
    lambda x, value, index: (infer.shape_of(x), infer.dtype_of(x)),
    vjp=(lambda g, out, x, value, index: index_put(g, index, 0.0), lambda g, out, x, value, index: g[index]),
    jvp=LINEAR,
    saves=(),
    doc="A copy of x with x[index] = value: the functional form of indexed assignment.",
    explain=("received with the assigned positions zeroed", "received read at the index"),
)


def index_put(input, index, value):
    if not isinstance(value, Tensor):
        value = value.item() if isinstance(value, np.generic) else value
        if not isinstance(value, (int, float, bool)):
            value = _wrap(as_array(value, input.dtype)).to(input.device)
    if isinstance(value, Tensor) and value._data.dtype != input._data.dtype:
        value = value.to(input.dtype)
    return bind(index_put_op, input, value, index=normalize_index(index))


# --- writing through views (in-place ops on a view update the tensor it views) ----------------------
def replay_view(chain, root):
    """Apply the recorded view ops ``chain`` to ``root``, as graph ops."""
    for op, params in chain:
        root = bind(op, root, **params)
    return root


def write_into_view(chain, root, value):
    """``root`` with the region that ``chain`` views replaced by ``value`` (differentiable in both):
    each view op's declared inverse, applied from the innermost view outwards."""
    op, params = chain[0]
    if len(chain) > 1:
        value = write_into_view(chain[1:], bind(op, root, **params), value)
    if op.view_inverse is None:
        raise ShapeError(f"cannot write in place through a {op.name} view (it is read-only); clone() it first")
    return op.view_inverse(root, value, **params)


# --- gather / scatter -----------------------------------------------------------------------------
def scatter_index(index, dim):
    """Full coordinates for numpy fancy indexing from a PyTorch-style ``index`` along ``dim``."""
    xp = _device.array_module(index)
    ndim = index.ndim
    coords = [xp.arange(n).reshape((1,) * d + (n,) + (1,) * (ndim - d - 1)) for d, n in enumerate(index.shape)]
    coords[dim] = index
    return tuple(coords)


def _leading(src, shape):
    return src[tuple(slice(0, n) for n in shape)] if np.ndim(src) else src


def _gather_forward(x, index, dim):
    return x[scatter_index(index, dim)]


def _check_gather(op, x, index, dim):
    xs, ins = infer.shape_of(x), infer.shape_of(index)
    if infer.dtype_of(index).kind not in "iu":
        raise IndexError(f"{op}(): Expected dtype int64 for index, got {infer.dtype_of(index)}")
    if len(xs) != len(ins):
        raise ValueError(f"{op}: index tensor must have the same number of dimensions as input tensor "
                         f"(input {list(xs)}, index {list(ins)})")
    for d, (a, b) in enumerate(zip(xs, ins)):
        if d != dim and infer.known(a) and infer.known(b) and b > a:
            raise ValueError(f"{op}: size of index {list(ins)} exceeds input {list(xs)} at dimension {d}")


def _gather_infer(x, index, dim):
    _check_gather("gather", x, index, dim)
    return infer.shape_of(index), infer.dtype_of(x)


def _fit_to(grad, shape):
    """Zero-pad a gradient shaped like ``index`` to ``src``'s larger shape."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    widths = []
    for have, want in zip(reversed(grad.shape), reversed(shape)):
        widths += [0, want - have]
    return pad(grad, widths)


gather_op = defop(
    "gather",
    _gather_forward,
    _gather_infer,
    vjp=(lambda g, out, x, index, dim: gather_backward(g, index, dim, x.shape), None),
    jvp=LINEAR,
    saves=(1,), explain=("zeros of {0}'s shape with received added at the index", "(index: no gradient)"),
)


def _gather_backward_forward(g, index, dim, shape):
    xp = _device.array_module(g)
    out = xp.zeros(shape, g.dtype)
    _add_at(out, scatter_index(index, dim), g)
    return out


gather_backward_op = defop(
    "gather_backward",
    _gather_backward_forward,
    lambda g, index, dim, shape: (tuple(shape), infer.dtype_of(g)),
    vjp=(lambda gg, out, g, index, dim, shape: gather(gg, dim, index), None),
    jvp=LINEAR,
    saves=(1,),
    doc="zeros(shape) with g added at the gathered places: gather's adjoint (its own adjoint is gather).",
    explain=("received gathered at the index", "(index: no gradient)"),
)


def gather_backward(g, index, dim, shape):
    return bind(gather_backward_op, g, index, dim=dim, shape=tuple(shape))


def _scatter_add_forward(x, index, src, dim):
    out = x.copy()
    _add_at(out, scatter_index(index, dim), _leading(src, index.shape))
    return out


def _scatter_forward(x, index, src, dim):
    out = x.copy()
    out[scatter_index(index, dim)] = _leading(src, index.shape)
    return out


def _scatter_infer(x, index, src, dim):
    _check_gather("scatter", x, index, dim)
    return infer.shape_of(x), infer.dtype_of(x)


def _src_grad(g, out, x, index, src, dim):
    return _fit_to(gather(g, dim, index), src.shape)


scatter_add_op = defop(
    "scatter_add",
    _scatter_add_forward,
    _scatter_infer,
    vjp=(lambda g, out, x, index, src, dim: g, None, _src_grad),
    jvp=LINEAR,
    saves=(1,), explain=("received", "(index: no gradient)", "received gathered at the index"),
)

scatter_op = defop(
    "scatter",
    _scatter_forward,
    _scatter_infer,
    vjp=(lambda g, out, x, index, src, dim: scatter(g, dim, index, 0.0), None, _src_grad),
    jvp=LINEAR,
    saves=(1,),
    explain=("received with the overwritten positions zeroed", "(index: no gradient)",
             "received gathered at the index"),
)


def _dim_of(input, dim, op):
    """``dim`` as an axis (0 for a 0-d tensor, where dims 0 and -1 are allowed, as in PyTorch)."""
    dims = infer.normalize_dims(op, infer.check_int(op, "dim", dim), as_tensor_arg(input, op).ndim)
    return dims[0] if dims else 0


def _sized_dim(input, dim, op, error=ShapeError):
    """``_dim_of`` for ops that need a dimension with a size: a 0-d tensor has none."""
    dim = _dim_of(input, dim, op)
    if input.ndim == 0:
        raise error(f"{op}() cannot be applied to a 0-dim tensor")
    return dim


def gather(input, dim, index):
    """out[i][j] = input[index[i][j]][j] for dim=0 (PyTorch's gather)."""
    return bind(gather_op, input, as_tensor_arg(index, "gather", "index"), dim=_dim_of(input, dim, "gather"))


def scatter_add(input, dim, index, src):
    input, src = coerce(input, src)
    index = as_tensor_arg(index, "scatter_add", "index")
    return bind(scatter_add_op, input, index, src, dim=_dim_of(input, dim, "scatter_add"))


def scatter(input, dim, index, src=None, value=None):
    """out[index[i][j]][j] = src[i][j] for dim=0; ``value`` scatters a scalar instead."""
    src = value if src is None else src
    input, src = coerce(input, src)
    return bind(scatter_op, input, as_tensor_arg(index, "scatter", "index"), src, dim=_dim_of(input, dim, "scatter"))


def masked_fill(input, mask, value):
    return where(as_tensor_arg(mask, "masked_fill", "mask"), value, input)


def index_select(input, dim, index):
    input = as_tensor_arg(input, "index_select")
    dim = _dim_of(input, dim, "index_select")
    return getitem(input, (slice(None),) * dim + (as_tensor_arg(index, "index_select", "index")._data,))


def narrow(input, dim, start, length):
    input = as_tensor_arg(input, "narrow")
    dim = _sized_dim(input, dim, "narrow")
    size = input.shape[dim]
    if not -size <= infer.check_int("narrow", "start", start) <= size:
        raise IndexError(f"narrow(): start {start} out of range for dimension {dim} of size {size}")
    start = start + size if start < 0 else start
    if not 0 <= infer.check_int("narrow", "length", length) <= size - start:
        raise RuntimeError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({size})")
    return getitem(input, (slice(None),) * dim + (slice(start, start + length),))


def select(input, dim, index):
    input = as_tensor_arg(input, "select")
    dim = _sized_dim(input, dim, "select", IndexOutOfRangeError)
    if not -input.shape[dim] <= infer.check_int("select", "index", index) < input.shape[dim]:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at dimension "
                         f"{dim}")
    return getitem(input, (slice(None),) * dim + (index,))


def split(tensor, split_size_or_sections, dim=0):
    tensor = as_tensor_arg(tensor, "split", "tensor")
    dim = _sized_dim(tensor, dim, "split")
    size = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step < 0 or step == 0 and size:
            raise RuntimeError(f"split(): split_size must be positive (0 only for an empty dimension), got {step}")
        sections = [min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sections = [infer.check_int("split", "split_size_or_sections", n) for n in _sequence(
            "split", "split_size_or_sections", split_size_or_sections)]
        if sum(sections) != size:
            raise ShapeError(f"split: sections {sections} do not add up to the size {size} of dimension {dim}")
    parts, start = [], 0
    for n in sections:
        parts.append(narrow(tensor, dim, start, n))
        start += n
    return tuple(parts)


def chunk(input, chunks, dim=0):
    input = as_tensor_arg(input, "chunk")
    size = input.shape[_sized_dim(input, dim, "chunk")]
    if infer.check_int("chunk", "chunks", chunks) <= 0:
        raise RuntimeError(f"chunk(): chunks must be greater than 0, got {chunks}")
    return split(input, max(-(-size // chunks), 1), dim)


def _sequence(op, arg, value):
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{op}(): argument '{arg}' must be int or a list of ints, not {type(value).__name__}")
    return value


def unbind(input, dim=0):
    input = as_tensor_arg(input, "unbind")
    dim = _dim_of(input, dim, "unbind")
    return tuple(select(input, dim, i) for i in range(input.shape[dim]))


def flip(input, dims):
    input = as_tensor_arg(input, "flip")
    dims = infer.normalize_dims("flip", dims, input.ndim)
    return getitem(input, tuple(slice(None, None, -1) if d in dims else slice(None) for d in range(input.ndim)))


def repeat(input, *sizes):
    """Tile the tensor ``sizes[i]`` times along dim i (an expand of an unsqueezed view, then a reshape)."""
    input = as_tensor_arg(input, "repeat")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the number of "
                         f"dimensions of the tensor ({input.ndim})")
    x = reshape(input, (1,) * (len(sizes) - input.ndim) + tuple(input.shape))
    for d in range(len(sizes)):
        x = unsqueeze(x, 2 * d)
    target = []
    for r, s in zip(sizes, x.shape[1::2]):
        target += [r, s]
    return reshape(x.expand(target), tuple(r * s for r, s in zip(sizes, target[1::2])))
