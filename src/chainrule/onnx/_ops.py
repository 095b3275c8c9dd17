"""The ONNX converters of chainrule's ops, each registered on its OpDef (``op.export``).

A converter is ``convert(b, node)``: ``node`` is an IR op node of the compiled program (``inputs``,
``params``, ``shape`` with symbolic sizes, ``dtype``) and ``b`` the :class:`~._export.Builder`, whose
``result(node, op_type, inputs, **attributes)`` writes the ONNX node computing it. Registering
imports nothing from the ``onnx`` package: converters reach it through ``b`` when they run.
"""

import math

import numpy as np

from ..ops import conv, indexing, linalg, reduce, shape
from ..ops import elementwise as el
from ..ops.creation import fill_op
from ..ops.nn import log_sigmoid_op
from ..static import Dim
from ._export import converter, refuse, unsupported

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def _same_size(a, b):
    """Sizes known to be equal: the same int, or the same symbolic size."""
    return (a == b) if isinstance(a, Dim) == isinstance(b, Dim) else False


def _one_to_one(op_type):
    """The op is one ONNX operator on the same inputs."""
    def convert(b, node):
        b.result(node, op_type, [b.arg(node, i) for i in range(len(node.inputs))])

    return convert


def _steps(b, node, name, *op_types):
    """Unary ONNX operators applied in turn; the last computes the node."""
    for op_type in op_types[:-1]:
        name = b.emit(op_type, [name])
    return b.result(node, op_types[-1], [name])


for _op, _type in [
    (el.add_op, "Add"), (el.sub_op, "Sub"), (el.mul_op, "Mul"), (el.div_op, "Div"), (el.pow_op, "Pow"),
    (el.maximum_op, "Max"), (el.minimum_op, "Min"), (el.where_op, "Where"), (linalg.matmul_op, "MatMul"),
    (el.neg.op, "Neg"), (el.exp.op, "Exp"), (el.log.op, "Log"), (el.sqrt.op, "Sqrt"), (el.sin.op, "Sin"),
    (el.cos.op, "Cos"), (el.tan.op, "Tan"), (el.tanh.op, "Tanh"), (el.sigmoid.op, "Sigmoid"),
    (el.relu.op, "Relu"), (el.abs.op, "Abs"), (el.eq.op, "Equal"), (el.lt.op, "Less"), (el.le.op, "LessOrEqual"),
    (el.gt.op, "Greater"), (el.ge.op, "GreaterOrEqual"), (el.logical_and.op, "And"), (el.logical_or.op, "Or"),
    (el.logical_xor.op, "Xor"), (el.logical_not.op, "Not"), (el.sign.op, "Sign"), (el.floor.op, "Floor"),
    (el.ceil.op, "Ceil"), (el.round.op, "Round"), (el.isnan.op, "IsNaN"), (el.isinf.op, "IsInf"),
]:
    converter(_op)(_one_to_one(_type))


@converter(el.ne.op)
def _ne(b, node):
    _steps(b, node, b.emit("Equal", [b.arg(node, 0), b.arg(node, 1)]), "Not")


@converter(el.isfinite.op)
def _isfinite(b, node):
    x = b.arg(node, 0)
    _steps(b, node, b.emit("Or", [b.emit("IsNaN", [x]), b.emit("IsInf", [x])]), "Not")


@converter(el.trunc.op)
def _trunc(b, node):
    x = b.arg(node, 0)
    negative = b.emit("Less", [x, b.const(np.zeros((), node.dtype))])
    b.result(node, "Where", [negative, b.emit("Ceil", [x]), b.emit("Floor", [x])])


@converter(el.expm1.op)
def _expm1(b, node):
    b.result(node, "Sub", [b.emit("Exp", [b.arg(node, 0)]), b.const(np.ones((), node.dtype))])


@converter(el.log1p.op)
def _log1p(b, node):
    b.result(node, "Log", [b.emit("Add", [b.arg(node, 0), b.const(np.ones((), node.dtype))])])


@converter(el.floor_divide.op)
def _floor_divide(b, node):
    x, y = b.arg(node, 0), b.arg(node, 1)
    if node.dtype.kind == "f":
        _steps(b, node, b.emit("Div", [x, y]), "Floor")
        return
    as_float = b.dtype(np.float64)
    quotient = b.emit("Div", [b.emit("Cast", [x], to=as_float), b.emit("Cast", [y], to=as_float)])
    b.result(node, "Cast", [b.emit("Floor", [quotient])], to=b.dtype(node.dtype))


@converter(log_sigmoid_op)
def _log_sigmoid(b, node):
    _steps(b, node, b.arg(node, 0), "Neg", "Softplus", "Neg")


@converter(el.cast_op)
def _cast(b, node):
    b.result(node, "Cast", [b.arg(node, 0)], to=b.dtype(node.params["dtype"]))


@converter(el.clone_op, el.alias_op)
def _identity(b, node):
    b.alias(node, b.arg(node, 0))


@converter(el.copy_from_op)
def _copy(b, node):
    value = b.emit("Expand", [b.arg(node, 1, dtype=node.dtype), b.emit("Shape", [b.arg(node, 0)])])
    b.result(node, "Cast", [value], to=b.dtype(node.dtype))


@converter(el.clamp_op)
def _clamp(b, node):
    bounds = [b.const(np.asarray(v, node.dtype)) if v is not None else "" for v in
              (node.params["min"], node.params["max"])]
    b.result(node, "Clip", [b.arg(node, 0)] + (bounds if bounds[1] else bounds[:1]))


@converter(linalg.addmm_op)
def _addmm(b, node):
    b.result(node, "Gemm", [b.arg(node, 1), b.arg(node, 2), b.arg(node, 0)], transB=1)


@converter(linalg.weight_grad_op)
def _weight_grad(b, node):
    b.result(node, "Gemm", [b.arg(node, 0), b.arg(node, 1)], transA=1)


@converter(linalg.linear_op)
def _linear(b, node):
    """x @ w.T: a Gemm for a matrix, else MatMul against the transposed weight."""
    x, w = b.arg(node, 0), b.arg(node, 1)
    if len(node.inputs[0].shape) == 2:
        b.result(node, "Gemm", [x, w], transB=1)
    else:
        b.result(node, "MatMul", [x, b.emit("Transpose", [w], perm=[1, 0])])


# --- reductions ----------------------------------------------------------------------------------------
def _reduction(op_type):
    def convert(b, node):
        x = b.arg(node, 0)
        if node.inputs[0].dtype != node.dtype:  # sum of bools or small ints is int64, as in PyTorch
            x = b.emit("Cast", [x], to=b.dtype(node.dtype))
        b.reduce(op_type, x, node.params["dim"], node.params["keepdim"], node)

    return convert


for _op, _type in [(reduce.sum_op, "ReduceSum"), (reduce.mean_op, "ReduceMean"), (reduce.amax_op, "ReduceMax"),
                   (reduce.amin_op, "ReduceMin"), (reduce.logsumexp_op, "ReduceLogSumExp")]:
    converter(_op)(_reduction(_type))


def _softmax(op_type):
    """Softmax / LogSoftmax over the op's one axis (a 0-d input: over its single element)."""
    def convert(b, node):
        x, dim = b.arg(node, 0), node.params["dim"]
        if dim is not None:
            return b.result(node, op_type, [x], axis=int(dim))
        flat = b.emit(op_type, [b.emit("Reshape", [x, b.ints([1])])], axis=0)
        return b.result(node, "Reshape", [flat, b.ints([])])

    return convert


converter(reduce.softmax_op)(_softmax("Softmax"))
converter(reduce.log_softmax_op)(_softmax("LogSoftmax"))


def _arg_reduce(op_type):
    def convert(b, node):
        x = b.arg(node, 0)
        dims, keepdim = node.params["dim"], node.params["keepdim"]
        if dims is None or not node.inputs[0].shape:  # over every element: of the flattened input
            index = b.emit(op_type, [b.emit("Reshape", [x, b.ints([-1])])], axis=0, keepdims=0)
            b.result(node, "Reshape", [index, b.ints(node.shape)])
        else:
            b.result(node, op_type, [x], axis=int(dims[0]), keepdims=int(bool(keepdim)))

    return convert


converter(reduce.argmax_op)(_arg_reduce("ArgMax"))
converter(reduce.argmin_op)(_arg_reduce("ArgMin"))


@converter(reduce.std_op)
def _std(b, node):
    x = b.arg(node, 0)
    dims, keepdim, correction = node.params["dim"], node.params["keepdim"], node.params["correction"]
    sizes = node.inputs[0].shape
    count = math.prod(sizes[d] for d in (range(len(sizes)) if dims is None else dims))
    if isinstance(count, Dim):  # a count known at run time
        count = b.emit("Reshape", [b.size(count), b.ints([])])
        count = b.emit("Sub", [count, b.const(np.asarray(correction, np.int64))])
        denominator = b.emit("Cast", [count], to=b.dtype(node.dtype))
    else:
        denominator = b.const(np.asarray(max(count - correction, 0), node.dtype))
    centered = b.emit("Sub", [x, b.reduce("ReduceMean", x, dims, True)])
    squares = b.reduce("ReduceSumSquare", centered, dims, keepdim)
    _steps(b, node, b.emit("Div", [squares, denominator]), "Sqrt")


# --- shapes ----------------------------------------------------------------------------------------------
@converter(shape.reshape_op)
def _reshape(b, node):
    """A Flatten where the first size is kept and the rest merged; else a Reshape whose target copies (0) or
    infers (-1) symbolic sizes, or reads them at run time when several are left."""
    sizes, out = node.inputs[0].shape, node.shape
    x = b.arg(node, 0)
    if len(out) == 2 and len(sizes) > 2 and _same_size(out[0], sizes[0]):
        b.result(node, "Flatten", [x], axis=1)
        return
    target = [0 if k < len(sizes) and isinstance(d, Dim) and _same_size(d, sizes[k]) else d for k, d in enumerate(out)]
    symbolic = [k for k, d in enumerate(target) if isinstance(d, Dim)]
    if len(symbolic) == 1:
        target[symbolic[0]] = -1
    b.result(node, "Reshape", [x, b.shape(target)])


@converter(shape.permute_op)
def _permute(b, node):
    b.result(node, "Transpose", [b.arg(node, 0)], perm=[int(a) for a in node.params["axes"]])


@converter(shape.expand_op)
def _expand(b, node):
    sizes, out = node.inputs[0].shape, node.shape
    lead = len(out) - len(sizes)  # a size the input already has is 1: Expand keeps it, whatever it is at run time
    target = [1 if k >= lead and _same_size(d, sizes[k - lead]) else d for k, d in enumerate(out)]
    b.result(node, "Expand", [b.arg(node, 0), b.shape(target)])


@converter(shape.cat_op)
def _cat(b, node):
    b.result(node, "Concat", [b.arg(node, i) for i in range(len(node.inputs))], axis=int(node.params["dim"]))


@converter(shape.stack_op)
def _stack(b, node):
    axis = int(node.params["dim"])
    parts = [b.emit("Unsqueeze", [b.arg(node, i), b.ints([axis])]) for i in range(len(node.inputs))]
    b.result(node, "Concat", parts, axis=axis)


@converter(shape.pad_op)
def _pad(b, node):
    widths = node.params["widths"]
    pads = [int(w[0]) for w in widths] + [int(w[1]) for w in widths]
    value = b.const(np.asarray(node.params["value"], node.dtype))
    b.result(node, "Pad", [b.arg(node, 0), b.ints(pads), value], mode="constant")


@converter(fill_op)
def _full(b, node):
    value = node.params["value"]
    if isinstance(value, Dim):  # a count known at run time (mean over a dynamic size)
        value = b.emit("Cast", [b.emit("Reshape", [b.size(value), b.ints([])])], to=b.dtype(node.dtype))
    else:
        value = b.const(np.asarray(value, node.dtype))
    b.result(node, "Expand", [value, b.shape(node.params["shape"])])


# --- indexing --------------------------------------------------------------------------------------------
def _full_index(index, ndim):
    """The index with its Ellipsis expanded and a full slice for every axis it leaves out."""
    consumed = sum(1 for k in index if k is not None and k is not Ellipsis)
    full = []
    for k in index:
        full += [slice(None)] * (ndim - consumed) if k is Ellipsis else [k]
    return full + [slice(None)] * (ndim - sum(1 for k in full if k is not None))


@converter(indexing.getitem_op)
def _getitem(b, node):
    """Slices become one Slice, integers and one integer array Gathers (last axis first), None an Unsqueeze."""
    index = node.params["index"]
    if any(isinstance(k, np.ndarray) and k.dtype == np.bool_ for k in index):
        raise unsupported("the op 'getitem' is not supported for indexing with a boolean mask (its output size "
                          "depends on the data)", b.scope, node.inputs)
    full = _full_index(index, len(node.inputs[0].shape))
    arrays = [k for k in full if isinstance(k, np.ndarray)]
    if len(arrays) > 1 or (arrays and any(isinstance(k, (int, np.integer)) for k in full)):
        raise unsupported("the op 'getitem' is not supported for indexing with more than one integer array",
                          b.scope, node.inputs)
    slices, gathers, news = [], [], []
    axis = out_axis = 0
    for k in full:
        if k is None:
            news.append(out_axis)
            out_axis += 1
            continue
        step = 1 if not isinstance(k, slice) or k.step is None else int(k.step)
        if isinstance(k, slice) and (k.start, k.stop, step) != (None, None, 1):
            start = (0 if step > 0 else INT64_MAX) if k.start is None else int(k.start)
            stop = (INT64_MAX if step > 0 else INT64_MIN) if k.stop is None else int(k.stop)
            slices.append((start, stop, axis, step))
        elif not isinstance(k, slice):
            gathers.append((axis, k))
        out_axis += 1 if isinstance(k, slice) else np.ndim(k)
        axis += 1
    name = b.arg(node, 0)
    if slices:
        name = b.emit("Slice", [name] + [b.ints(column) for column in zip(*slices)])
    for ax, k in sorted(gathers, key=lambda g: -g[0]):  # later axes first, so earlier ones keep their numbers
        name = b.emit("Gather", [name, b.const(np.asarray(k, np.int64), hint="Index")], axis=ax)
    if news:
        name = b.emit("Unsqueeze", [name, b.ints(news)])
    b.alias(node, name)


@converter(indexing.gather_op)
def _gather(b, node):
    b.result(node, "GatherElements", [b.arg(node, 0), b.arg(node, 1)], axis=int(node.params["dim"]))


def _scatter(reduction=None):
    def convert(b, node):
        x, index, src = node.inputs
        if reduction and b.opset < 16:
            raise unsupported("the op 'scatter_add' is not supported below opset 16 (ScatterElements gained "
                              "reduction='add' in opset 16)", b.scope, node.inputs)
        updates = b.arg(node, 2)
        if src.kind == "constant" and not isinstance(src.data, np.ndarray):  # a number: one per index
            updates = b.emit("Expand", [updates, b.emit("Shape", [b.name(index)])])
        elif not all(_same_size(s, i) for s, i in zip(src.shape, index.shape)):  # the leading index-shaped block
            n = len(index.shape)
            updates = b.emit("Slice", [updates, b.ints([0] * n), b.shape(index.shape), b.ints(range(n))])
        b.result(node, "ScatterElements", [b.name(x), b.name(index), updates], axis=int(node.params["dim"]),
                 reduction=reduction)

    return convert


converter(indexing.scatter_op)(_scatter())
converter(indexing.scatter_add_op)(_scatter("add"))


# --- pooling ---------------------------------------------------------------------------------------------
def pads(padding):
    """ONNX pads (begins, then ends) from chainrule's ((top, bottom), (left, right)). A negative end (the
    rows no window reaches, cut off) is 0: ONNX leaves those rows out by itself."""
    (h0, h1), (w0, w1) = padding
    return [int(h0), int(w0), max(int(h1), 0), max(int(w1), 0)]


@converter(conv.max_pool_op)
def _max_pool(b, node):
    p = node.params
    b.result(node, "MaxPool", [b.arg(node, 0)], kernel_shape=list(p["kernel"]), strides=list(p["stride"]),
             pads=pads(p["padding"]), dilations=list(p["dilation"]))


@converter(conv.pool_sum_op)
def _pool_sum(b, node):
    """Window sums: the mean over windows counting the padding (AveragePool), times the window's area."""
    p = node.params
    if tuple(p["dilation"]) != (1, 1):
        raise unsupported("the op 'pool_sum' is not supported for a dilated window", b.scope, node.inputs)
    mean = b.emit("AveragePool", [b.arg(node, 0)], kernel_shape=list(p["kernel"]), strides=list(p["stride"]),
                  pads=pads(p["padding"]), count_include_pad=1)
    b.result(node, "Mul", [mean, b.const(np.asarray(p["kernel"][0] * p["kernel"][1], node.dtype))])


for _op in (conv.im2col_op, conv.conv_op):
    converter(_op)(refuse(f"F.conv2d called directly is traced down to {_op.name}; use an nn.Conv2d layer, which "
                          "exports as Conv."))
converter(conv.argmax_op)(refuse("Use MaxPool2d without return_indices.",
                                 what="return_indices=True (pooling indices have no ONNX form here)"))
