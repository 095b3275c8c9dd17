"""Shape primitives (reshape, permute, expand, cat, pad) and the views composed from them.

All are linear, so their jvp is the op applied to the tangent, and each vjp is another shape op:
reshape back, the inverse permutation, a sum over expanded dims (done by the engine), slices.
"""

import functools
import operator

import numpy as np

from .. import _dtype
from ..errors import ShapeError
from ..tensor import Tensor
from . import infer
from .creation import fill_op
from .elementwise import as_tensor_arg, cast
from .op import LINEAR, bind, defop


def _sizes(args, op):
    """Accept both ``f(x, 2, 3)`` and ``f(x, (2, 3))``, as PyTorch does. A static graph's symbolic size
    (``x.view(x.size(0), -1)`` over a dynamic batch) is kept as it is."""
    if not args:
        raise TypeError(f"{op}() missing 1 required positional argument: the sizes (ints or one tuple)")
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if any(isinstance(a, float) or (isinstance(a, Tensor) and a._data.dtype.kind not in "iu") for a in args):
        raise TypeError(f"{op}(): sizes must be a tuple of ints, got {args!r}")
    try:
        return tuple(a if infer.symbolic(a) else int(a) for a in args)
    except TypeError:
        raise TypeError(f"{op}: sizes must be ints, got {args!r}") from None


def _numel(shape):
    """Product of sizes; with a symbolic size in the shape the product stays symbolic."""
    return functools.reduce(operator.mul, shape, 1)


def resolve_shape(op, source, shape):
    """The target shape of a reshape with any -1 filled in, or a ShapeError naming ``op``."""
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred (-1), got shape {list(shape)}")
    if not all(infer.known(s) for s in source):
        return tuple(_inferred_size(source, shape) if s == -1 else s for s in shape)
    total = _numel(source)
    if -1 in shape:
        known = _numel([s for s in shape if s != -1])
        if known == 0 or total % known:
            raise ShapeError(f"{op}: shape '{list(shape)}' is invalid for input of size {total} "
                             f"(input shape {list(source)})")
        return tuple(total // known if s == -1 else s for s in shape)
    if _numel(shape) != total or any(s < 0 for s in shape):
        raise ShapeError(f"{op}: shape '{list(shape)}' is invalid for input of size {total} "
                         f"(input shape {list(source)})")
    return shape


def _inferred_size(source, shape):
    """The -1 of a reshape over symbolic sizes: symbolic too when the division is exact (``flatten``,
    ``reshape(-1, n)`` of a batch), else None (unknown until run time)."""
    try:
        return _numel(source) // _numel([s for s in shape if s != -1])
    except TypeError:
        return None


def _reshape_infer(x, shape):
    return resolve_shape("reshape", infer.shape_of(x), shape), infer.dtype_of(x)


def _simplify_reshape(node, uses):
    """A reshape of a reshape is one reshape (or none, back to the source's shape); a reshape that drops
    the kept dims of a reduction read only here is that reduction without ``keepdim``."""
    x = node.inputs[0]
    source = x.inputs[0] if x.op is reshape_op else x
    if infer.same_shape(source.shape, node.shape):
        return source
    dims = source.params.get("dim")
    if source.params.get("keepdim") and isinstance(dims, tuple) and uses(source) == 1 \
            and infer.same_shape(tuple(s for k, s in enumerate(source.shape) if k not in dims), node.shape):
        return node.derive(op=source.op, inputs=source.inputs, params={**source.params, "keepdim": False})
    return node.derive(inputs=[source]) if source is not x else None


reshape_op = defop(
    "reshape",
    np.reshape,
    _reshape_infer,
    vjp=(lambda g, out, x, shape: reshape(g, x.shape),),
    jvp=LINEAR,
    saves=(),
    view=True, explain=("received reshaped back to {0}'s shape",),
    view_inverse=lambda base, value, shape: reshape(value, tuple(base.shape)),
    lower=lambda args, params, dtype: f"{args[0]}.reshape({params['shape']})",
    simplify=_simplify_reshape,
    grad_name="ViewBackward0",  # what PyTorch shows for view, flatten and reshape of contiguous tensors
)


def reshape(input, shape):
    """``input`` with the given shape (one size may be -1); the method ``t.reshape(2, 3)`` also
    takes the sizes one by one (``reshape_method``), the function takes a tuple, as in PyTorch."""
    input = as_tensor_arg(input, "reshape")
    if type(shape) is not tuple:
        if not isinstance(shape, (tuple, list)):
            raise TypeError(f"reshape(): argument 'shape' must be tuple of ints, not {type(shape).__name__}")
        shape = _sizes((shape,), "reshape")
    if shape == input._data.shape:
        return input
    return bind(reshape_op, input, shape=shape)


def reshape_method(self, *shape):
    return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)


def view(input, *shape):
    """``reshape`` under PyTorch's other name (numpy arrays can always be viewed this way)."""
    shape = shape[0] if len(shape) == 1 and type(shape[0]) is tuple else _sizes(shape, "view")
    resolve_shape("view", input._data.shape, shape)
    return reshape(input, shape)


def _permute_infer(x, axes):
    shape = infer.shape_of(x)
    if sorted(axes) != list(range(len(shape))):
        raise ShapeError(f"permute: dims {list(axes)} are not a permutation of the {len(shape)} dims of "
                         f"a tensor of shape {list(shape)}")
    return tuple(shape[d] for d in axes), infer.dtype_of(x)


def _simplify_permute(node, uses):
    """A permute of a permute is one permute, or none when they cancel."""
    x = node.inputs[0]
    if x.op is not permute_op:
        return None
    axes = tuple(x.params["axes"][j] for j in node.params["axes"])
    if axes == tuple(range(len(axes))):
        return x.inputs[0]
    return node.derive(inputs=[x.inputs[0]], params={"axes": axes})


permute_op = defop(
    "permute",
    lambda x, axes: np.transpose(x, axes),
    _permute_infer,
    vjp=(lambda g, out, x, axes: permute(g, tuple(np.argsort(axes))),),
    jvp=LINEAR,
    saves=(),
    view=True, explain=("received permuted back",),
    view_inverse=lambda base, value, axes: permute(value, tuple(np.argsort(axes))),
    lower=lambda args, params, dtype: f"{args[0]}.transpose({params['axes']})",
    simplify=_simplify_permute,
)


def permute(input, *dims):
    input = as_tensor_arg(input, "permute")
    dims = _sizes(dims, "permute")
    ndim = input.ndim
    if len(dims) != ndim:
        raise ShapeError(f"permute: number of dims don't match: got {len(dims)} dims {list(dims)} for a "
                         f"tensor of shape {list(input.shape)}")
    axes = tuple(infer.normalize_dims("permute", d, ndim)[0] for d in dims)
    if axes == tuple(range(ndim)):
        return input
    return bind(permute_op, input, axes=axes)


_SWAP_LAST = {}


def swap_last_two(x):
    """``x.mT`` without argument checking: the matmul gradient's hot path."""
    ndim = x._data.ndim
    axes = _SWAP_LAST.get(ndim)
    if axes is None:
        axes = _SWAP_LAST[ndim] = tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
    return bind(permute_op, x, axes=axes)


def transpose(input, dim0, dim1):
    input = as_tensor_arg(input, "transpose")
    ndim = input.ndim
    if ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    axes = list(range(ndim))
    a = infer.normalize_dims("transpose", dim0, ndim)[0]
    b = infer.normalize_dims("transpose", dim1, ndim)[0]
    axes[a], axes[b] = axes[b], axes[a]
    return permute(input, axes)


swapaxes = transpose


def t(input):
    input = as_tensor_arg(input, "t")
    if input.ndim > 2:
        raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def _expand_infer(x, shape):
    source = infer.shape_of(x)
    lead = len(shape) - len(source)
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes provided ({len(shape)}) must be greater or equal to "
                         f"the number of dimensions in the tensor ({len(source)}); shape {list(source)}")
    for i, s in enumerate(source):
        target = shape[lead + i]
        if s != 1 and infer.known(s) and infer.known(target) and target != s:
            raise ShapeError(
                f"expand: the expanded size of the tensor ({target}) must match the existing size ({s}) at "
                f"non-singleton dimension {lead + i}. Target sizes: {list(shape)}. Tensor sizes: {list(source)}"
            )
    return tuple(shape), infer.dtype_of(x)


def _expand_forward(x, shape):
    """``np.broadcast_to``'s read-only view, built directly when ``x`` is contiguous: a zero stride
    for every broadcast dim. Several times cheaper for small arrays (it is the backward of every sum)."""
    lead = len(shape) - x.ndim
    if lead < 0 or type(x) is not np.ndarray or not x.flags.c_contiguous:  # (device arrays: their own module)
        return np.broadcast_to(x, shape)
    strides = [0] * lead
    for size, stride, target in zip(x.shape, x.strides, shape[lead:]):
        if size == target:
            strides.append(stride)
        elif size == 1:
            strides.append(0)
        else:
            return np.broadcast_to(x, shape)  # raises numpy's error, which bind turns into ours
    out = np.ndarray(shape, x.dtype, x, 0, strides)
    out.flags.writeable = False
    return out


expand_op = defop(
    "expand",
    _expand_forward,
    _expand_infer,
    vjp=(lambda g, out, x, shape: g,),  # the engine sums the gradient back to x's shape
    jvp=LINEAR,
    saves=(),
    view=True, broadcasts=True, explain=("received summed over the expanded dims",),
    lower=lambda args, params, dtype: f"np.broadcast_to({args[0]}, {params['shape']})",
    simplify=lambda node, uses: _simplify_expand(node),
)


def _simplify_expand(node):
    """An expand to the same shape is its input; an expand of a 0-d constant (a gradient seed) is a
    fill: one np.full instead of np.broadcast_to's several microseconds of Python."""
    x = node.inputs[0]
    if infer.same_shape(x.shape, node.shape):
        return x
    if x.kind == "constant" and not x.shape and isinstance(x.data, (int, float, np.number, np.ndarray)):
        value = np.asarray(x.data).item()
        return node.derive(op=fill_op, inputs=[], params={"shape": node.params["shape"], "value": value,
                                                           "dtype": node.dtype})
    return None


def expand(input, *sizes):
    """Broadcast to a larger shape without copying (-1 keeps a size); the result is read-only."""
    input = as_tensor_arg(input, "expand")
    sizes = sizes[0] if len(sizes) == 1 and type(sizes[0]) is tuple else _sizes(sizes, "expand")
    source = input._data.shape
    lead = len(sizes) - len(source)
    shape = tuple(source[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    if shape == source:
        return input
    return bind(expand_op, input, shape=shape)


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, shape):
    return expand(input, shape)


def view_as(input, other):
    return reshape(input, other.shape)


reshape_as = view_as


def squeeze(input, dim=None):
    """Remove dims of size 1 (all of them, or those in ``dim``; others in ``dim`` are left alone)."""
    input = as_tensor_arg(input, "squeeze")
    shape = input._data.shape
    dims = infer.normalize_dims("squeeze", dim, len(shape))
    if dims is None:
        dims = range(len(shape))
    return reshape(input, tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1)))


def unsqueeze(input, dim):
    input = as_tensor_arg(input, "unsqueeze")
    shape = input._data.shape
    rank = len(shape) + 1
    if not -rank <= infer.check_int("unsqueeze", "dim", dim) < rank:
        raise IndexError(f"unsqueeze: Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], "
                         f"but got {dim})")
    dim %= rank
    return reshape(input, shape[:dim] + (1,) + shape[dim:])


def flatten(input, start_dim=0, end_dim=-1):
    input = as_tensor_arg(input, "flatten")
    shape = input._data.shape
    start = infer.normalize_dims("flatten", infer.check_int("flatten", "start_dim", start_dim), len(shape))
    end = infer.normalize_dims("flatten", infer.check_int("flatten", "end_dim", end_dim), len(shape))
    if not shape:
        return reshape(input, (1,))
    start, end = start[0], end[0]
    if start > end:
        raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    return reshape(input, shape[:start] + (_numel(shape[start:end + 1]),) + shape[end + 1:])


def unflatten(input, dim, sizes):
    input = as_tensor_arg(input, "unflatten")
    shape = input._data.shape
    dim = infer.normalize_dims("unflatten", dim, len(shape))[0]
    return reshape(input, shape[:dim] + tuple(sizes) + shape[dim + 1:])


# --- concatenation ----------------------------------------------------------------------------
def _cat_infer(*xs, dim):
    shapes = [infer.shape_of(x) for x in xs]
    first = shapes[0]
    for k, s in enumerate(shapes[1:], 1):
        if len(s) != len(first) or any(a != b and infer.known(a) and infer.known(b)
                                       for i, (a, b) in enumerate(zip(s, first)) if i != dim):
            raise ShapeError(
                f"cat: sizes of tensors must match except in dimension {dim}; tensor 0 has shape {list(first)} "
                f"but tensor {k} has shape {list(s)}"
            )
    sizes = [s[dim] for s in shapes]
    total = int(np.sum(sizes)) if all(infer.known(s) for s in sizes) else None
    return first[:dim] + (total,) + first[dim + 1:], infer.first_dtype(xs)


def _cat_vjp(g, out, *xs, dim):
    grads = []
    start = 0
    for x in xs:
        size = x.shape[dim]
        index = (slice(None),) * dim + (slice(start, start + size),)
        grads.append(g[index])
        start += size
    return grads


cat_op = defop(
    "cat",
    lambda *xs, dim: np.concatenate(xs, axis=dim),
    _cat_infer,
    vjp=_cat_vjp,
    jvp=LINEAR,
    saves=(), explain={"*": "the slice of received where {i} was placed"},
)


def _tensor_list(op, tensors):
    if not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{op}(): argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}")
    return [as_tensor_arg(t, op, "tensors") for t in tensors]


def cat(tensors, dim=0):
    tensors = _tensor_list("cat", tensors)
    infer.check_int("cat", "dim", dim)
    if not tensors:
        raise ShapeError("cat: expected a non-empty list of tensors")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ShapeError("cat: zero-dimensional tensor (at position 0) cannot be concatenated")
    axis = infer.normalize_dims("cat", dim, ndim)[0]
    target = tensors[0]._data.dtype
    for t in tensors[1:]:
        target = _dtype.result_type(target, t._data.dtype)
    tensors = [cast(t, target) for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    return bind(cat_op, *tensors, dim=axis)


concat = concatenate = cat


def _stack_infer(*xs, dim):
    shapes = [infer.shape_of(x) for x in xs]
    for k, s in enumerate(shapes[1:], 1):
        if len(s) != len(shapes[0]) or any(a != b and infer.known(a) and infer.known(b) for a, b in zip(s, shapes[0])):
            raise ShapeError(f"stack: expects each tensor to be equal size, but got {list(shapes[0])} at entry 0 "
                             f"and {list(s)} at entry {k}")
    return shapes[0][:dim] + (len(xs),) + shapes[0][dim:], infer.first_dtype(xs)


stack_op = defop(
    "stack",
    lambda *xs, dim: np.stack(xs, axis=dim),
    _stack_infer,
    vjp=lambda g, out, *xs, dim: [g[(slice(None),) * dim + (i,)] for i in range(len(xs))],
    jvp=LINEAR,
    saves=(),
    explain={"*": "the slice of received at {i}'s position along dim"},
)


def stack(tensors, dim=0):
    """Join equal-shaped tensors along a new dimension ``dim``."""
    tensors = _tensor_list("stack", tensors)
    infer.check_int("stack", "dim", dim)
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of tensors")
    rank = tensors[0].ndim + 1
    if not -rank <= dim < rank:
        raise IndexError(f"stack: Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], "
                         f"but got {dim})")
    target = tensors[0]._data.dtype
    for t in tensors[1:]:
        target = _dtype.result_type(target, t._data.dtype)
    return bind(stack_op, *[cast(t, target) for t in tensors], dim=dim % rank)


# --- constant padding -------------------------------------------------------------------------
def _pad_widths(ndim, pad):
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return tuple(widths)


def _pad_infer(x, widths, value):
    shape = infer.shape_of(x)
    return tuple(s + a + b if infer.known(s) else None for s, (a, b) in zip(shape, widths)), infer.dtype_of(x)


def _unpad(g, out, x, widths, value):
    return g[tuple(slice(a, a + s) for s, (a, b) in zip(x.shape, widths))]


pad_op = defop(
    "pad",
    lambda x, widths, value: np.pad(x, widths, constant_values=value),
    _pad_infer,
    vjp=(_unpad,),
    jvp=lambda tangents, out, x, widths, value: bind(pad_op, tangents[0], widths=widths, value=0),  # affine in x
    saves=(), explain=("received with the padding cropped off",),
)


def pad(input, pad, mode="constant", value=0.0):
    """Constant padding with PyTorch's ``pad`` order: (left, right) of the last dim, then the one before."""
    input = as_tensor_arg(input, "pad")
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; only 'constant'")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most twice the number of "
                         f"dimensions ({input.ndim})")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {tuple(pad)} is not supported; slice the tensor instead")
    widths = _pad_widths(input.ndim, tuple(int(p) for p in pad))
    return bind(pad_op, input, widths=widths, value=value if value is not None else 0.0)
