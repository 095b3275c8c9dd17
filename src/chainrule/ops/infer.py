"""Shape and dtype rules shared by many ops (the ``infer`` field of an OpDef).

They work on :class:`~chainrule.ops.op.Meta` values, whose shapes may hold sizes unknown until run
time (a static graph's batch dimension): any entry that is not an int — ``None`` or a symbolic
size object — counts as unknown and is passed through where the rule can; a rule returns ``None``
for an unknown size it cannot name. A rule raises :class:`ShapeError` naming the op and the
shapes; eager mode calls it only after the forward failed, to explain why.
"""

import operator

import numpy as np

from ..errors import DTypeError, ShapeError
from ..tensor import Meta, Tensor


def shape_of(value):
    return value.shape if isinstance(value, Meta) else np.shape(value)


def dtype_of(value):
    if isinstance(value, Meta):
        return value.dtype
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, int):
        return np.dtype(np.int64)
    if isinstance(value, float):
        return np.dtype(np.float32)
    return value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype  # device arrays too


def first_dtype(values):
    """The dtype of an op whose tensor operands were already made to agree (constants adapt)."""
    for v in values:
        if isinstance(v, Meta):
            return v.dtype
    return dtype_of(values[0])


def known(size):
    """Whether a size is a concrete int (not ``None`` or a symbolic run-time size)."""
    return isinstance(size, (int, np.integer))


def symbolic(size):
    """Whether a size is a static graph's run-time size (a ``Dim``: it can be unified with another)."""
    return hasattr(size, "unify")


def same_size(a, b):
    """Two sizes an op requires to be equal. When both are symbolic (a static graph's run-time sizes),
    the graph learns that they are one size, so knowing either at run time resolves the other."""
    if symbolic(a):
        a.unify(b)


def same_shape(a, b):
    """Whether two shapes are provably equal (two unknown sizes only when known to be the same size)."""
    return len(a) == len(b) and all(x is not None and y is not None and x == y for x, y in zip(a, b))


def broadcast_shapes(op, *shapes):
    """numpy/PyTorch broadcasting of shapes that may contain unknown sizes."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dims = [s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0]
        known_sizes = {d for d in dims if known(d) and d != 1}
        if len(known_sizes) > 1:
            a, b = sorted(known_sizes)[:2]
            listed = " and ".join(str(list(s)) for s in shapes)
            raise ShapeError(
                f"{op}: shapes {listed} cannot be broadcast together: the size of tensor a ({a}) must "
                f"match the size of tensor b ({b}) at non-singleton dimension {i - ndim}"
            )
        unknown = [d for d in dims if not known(d)]
        if not known_sizes:
            for d in unknown[1:]:
                same_size(unknown[0], d)
        out.append(known_sizes.pop() if known_sizes else (unknown[0] if unknown else 1))
    return tuple(out)


def same(x, **params):
    return shape_of(x), dtype_of(x)


def floating(x, **params):
    """Unary math that always yields a float (``exp`` of an int tensor is float32, as in PyTorch)."""
    dtype = dtype_of(x)
    return shape_of(x), dtype if dtype.kind == "f" else np.dtype(np.float32)


def elementwise(*args, **params):
    return broadcast_shapes("elementwise", *(shape_of(a) for a in args)), first_dtype(args)


def named_elementwise(name, dtype=None):
    """An elementwise rule whose errors name ``name``; ``dtype`` fixes the result dtype (comparisons)."""

    def rule(*args, **params):
        shape = broadcast_shapes(name, *(shape_of(a) for a in args))
        return shape, np.dtype(dtype) if dtype is not None else first_dtype(args)

    return rule


def check_int(op, arg, value):
    """``value`` as an int (it may be a numpy integer or a one-element integer tensor, as in PyTorch);
    anything else is refused with PyTorch's TypeError naming the function and the argument."""
    index = as_index(value)
    if index is None:
        raise TypeError(f"{op}(): argument '{arg}' must be int, not {type(value).__name__}")
    return index


def as_index(value):
    """``value`` as an int if PyTorch takes it as one (not a bool, a float or a float tensor), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bool) or not hasattr(type(value), "__index__") or (
            isinstance(value, Tensor) and value._data.dtype == np.bool_):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def normalize_dims(op, dims, ndim):
    """Turn ``dim`` (None, int or sequence; negatives allowed) into a sorted tuple of axes or None."""
    if dims is None:
        return None
    if as_index(dims) is not None:
        dims = (as_index(dims),)
    elif not isinstance(dims, (tuple, list)) or any(as_index(d) is None for d in dims):
        raise TypeError(f"{op}(): argument 'dim' must be int or tuple of ints, not {_describe(dims)}")
    else:
        dims = tuple(as_index(d) for d in dims)
    rank = max(ndim, 1)
    out = []
    for d in dims:
        if not -rank <= d < rank:
            raise IndexError(
                f"{op}: Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got {d})"
            )
        out.append(int(d) % rank)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: dim {tuple(dims)} appears multiple times in the list of dims")
    return tuple(sorted(out)) if ndim else ()


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {', '.join(sorted({type(v).__name__ for v in value}))}"
    return type(value).__name__


def reduced_shape(shape, dims, keepdim):
    if dims is None:
        return tuple(1 for _ in shape) if keepdim else ()
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def refused(op, dtype):
    """The error for an input dtype that PyTorch refuses for ``op``."""
    return DTypeError(f"{op}: not implemented for {dtype} input (PyTorch refuses it too); convert the input "
                      "first, e.g. with .float() or .long()")


def check_dtype(op, dtype, kinds):
    """Refuse an input dtype of the ``kinds`` ("b": bool, "biu": bool and integers), as PyTorch does."""
    if dtype.kind in kinds:
        raise refused(op, dtype)


def refusing(op, kinds, rule):
    """The shape rule ``rule`` of an op that refuses inputs of the dtype ``kinds``."""
    if not kinds:
        return rule

    def checked(*args, **params):
        for a in args:
            if isinstance(a, Meta):
                check_dtype(op, a.dtype, kinds)
        return rule(*args, **params)

    return checked


def require_float(op, dtype):
    if dtype.kind != "f":
        raise DTypeError(f"{op}: expected a floating point tensor, got {dtype}")
