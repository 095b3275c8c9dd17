"""``chainrule.onnx.export``: trace the model with concrete values, then write one ONNX node (or a few)
per recorded call.

The layers ONNX has an operator for (Linear, Conv2d, pooling, BatchNorm, activations, Softmax, ...)
are traced as single nodes (:data:`MODULES`); everything else in a forward is traced down to
chainrule's primitives, each converted by its entry in :data:`OPS` (keyed by the OpDef's name).

Sizes are tracked symbolically from the inputs' ``dynamic_axes``: a reshape whose target would
hard-code a dynamic size gets 0 (copy the input's dim) or -1 instead, or a shape computed at run time,
so an exported graph runs at any batch size. Values that do not depend on the model's inputs (parameter
transposes, masks, ...) are folded into initializers when ``do_constant_folding`` is on.
"""

import enum
import os
import warnings

import numpy as np

from ..errors import ChainruleError
from ..tensor import Tensor
from . import _trace

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis, ReduceSum's axes as an input, Split/Squeeze/Unsqueeze inputs
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
DYNAMIC = "?"  # a size that depends on a dynamic axis but has no name of its own


class OnnxExporterError(ChainruleError, RuntimeError):
    """The model cannot be written as ONNX (PyTorch's ``torch.onnx.errors.OnnxExporterError``)."""


class UnsupportedOperatorError(OnnxExporterError):
    """An op or module with no ONNX conversion; the message names it and where the model called it."""


class TrainingMode(enum.IntEnum):
    """PyTorch's ``torch.onnx.TrainingMode``: chainrule exports inference graphs (EVAL)."""

    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


def _import_onnx():
    try:
        import onnx
        import onnx.checker  # noqa: F401
        import onnx.helper  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
    except ImportError:
        raise ImportError("chainrule.onnx.export needs the 'onnx' package: pip install onnx "
                          "(or: pip install chainrule[onnx])") from None
    return onnx


def _is_dyn(d):
    return isinstance(d, str)


# --- the graph being built --------------------------------------------------------------------------
class _Builder:
    def __init__(self, onnx, recorder, opset, fold, export_params):
        self.onnx = onnx
        self.helper = onnx.helper
        self.recorder = recorder
        self.opset = opset
        self.fold = fold
        self.export_params = export_params
        self.nodes = []
        self.initializers = []
        self.extra_inputs = []  # parameters as graph inputs (export_params=False)
        self.names = {}  # Value.index -> ONNX name
        self.reserved = {}  # Value.index -> the graph output name it must be written under
        self.sym = {}  # Value.index -> tuple of sizes: int, or str for a dynamic size
        self.unique = _trace.UniqueNames()
        self._consts = {}

    # names ------------------------------------------------------------------------------------------
    @staticmethod
    def _prefix(scope):
        return "/" + scope.path.replace(".", "/") if scope is not None and scope.path else ""

    def dtype(self, np_dtype):
        return self.helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype))

    # emitting ---------------------------------------------------------------------------------------
    def emit(self, op_type, inputs, scope=None, outputs=None, n_out=1, **attrs):
        """Append a node; returns its output names (fresh ones unless ``outputs`` names them)."""
        prefix = self._prefix(scope)
        if outputs is None:
            outputs = [self.unique(f"{prefix}/{op_type}_output_{i}") for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        node = self.helper.make_node(op_type, list(inputs), list(outputs), name=self.unique(f"{prefix}/{op_type}"),
                                     **attrs)
        self.nodes.append(node)
        return list(outputs)

    def emit1(self, op_type, inputs, scope=None, **attrs):
        return self.emit(op_type, inputs, scope, **attrs)[0]

    def const(self, value, dtype=None, hint="Constant"):
        """An initializer holding ``value`` (small ones are shared)."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)
        key = None
        if array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            hit = self._consts.get(key)
            if hit is not None:
                return hit
        name = self.unique(f"onnx::{hint}")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.array(array, order="C"), name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values):
        return self.const(np.asarray(list(values), dtype=np.int64), hint="Shape")

    def result(self, value, scope, op_type, inputs, **attrs):
        """Emit a node computing ``value`` (its output is named for the graph output it may be)."""
        out = self.reserved.get(value.index)
        name = self.emit(op_type, inputs, scope, outputs=[out] if out else None, **attrs)[0]
        self.names[value.index] = name
        return name

    def alias(self, value, name, scope=None):
        """``value`` is the same as the tensor named ``name`` (an Identity only where a name is required)."""
        out = self.reserved.get(value.index)
        if out is not None:
            self.emit("Identity", [name], scope, outputs=[out])
            name = out
        self.names[value.index] = name
        return name

    # reading values -----------------------------------------------------------------------------------
    def name(self, v):
        """The ONNX name of a traced Value: created on first use for parameters and constants."""
        hit = self.names.get(v.index)
        if hit is not None:
            return hit
        array = np.asarray(v.tensor._data)
        if v.kind in ("param", "buffer"):
            name = self.unique(v.name)
            if self.export_params:
                self.initializers.append(self.onnx.numpy_helper.from_array(np.array(array, order="C"), name))
            else:
                self.extra_inputs.append(self.helper.make_tensor_value_info(name, self.dtype(array.dtype),
                                                                            list(array.shape)))
        elif v.kind == "input":  # inputs are named before conversion starts
            raise OnnxExporterError(f"internal error: unnamed input {v}")
        else:  # a constant, or a value folded because it does not depend on the inputs
            name = self.const(array, hint="Constant")
        self.names[v.index] = name
        return name

    def arg(self, node, i, dtype=None):
        """Input ``i`` of a node as an ONNX name; a plain number becomes a constant of the op's dtype."""
        a = node.inputs[i]
        if isinstance(a, _trace.Value):
            return self.name(a)
        if a is None:
            return ""
        return self.const(np.asarray(a, dtype=dtype or self.ref_dtype(node)), hint="Constant")

    @staticmethod
    def ref_dtype(node):
        """The dtype plain numbers in an op's arguments take: that of its first non-bool tensor input."""
        for v in node.values():
            if v.dtype != np.bool_:
                return v.dtype
        return node.outputs[0].dtype

    def sym_of(self, v):
        s = self.sym.get(v.index)
        return s if s is not None else v.shape

    def set_sym(self, value, dims):
        dims = tuple(dims)
        if len(dims) != len(value.shape):
            dims = value.shape
        self.sym[value.index] = dims

    def broadcast_sym(self, node, out):
        shape = out.shape
        n = len(shape)
        res = list(shape)
        for v in node.values():
            vs = self.sym_of(v)
            off = n - len(vs)
            if off < 0:
                continue
            for k, d in enumerate(vs):
                named = _is_dyn(res[off + k]) and res[off + k] != DYNAMIC
                if _is_dyn(d) and v.shape[k] == shape[off + k] and not named:
                    res[off + k] = d
        return tuple(res)

    # shapes -----------------------------------------------------------------------------------------
    def unsqueeze(self, name, axes, scope):
        return self.emit1("Unsqueeze", [name, self.ints(axes)], scope)

    def squeeze(self, name, axes, scope):
        return self.emit1("Squeeze", [name, self.ints(axes)], scope)

    def reduce(self, op_type, name, axes, keepdims, scope, out_value=None):
        """ReduceX over ``axes`` (None: all), with the axes as an attribute or an input by opset."""
        as_input = op_type == "ReduceSum" or self.opset >= 18
        inputs = [name]
        attrs = {"keepdims": int(bool(keepdims))}
        if axes is not None:
            if as_input:
                inputs.append(self.ints(axes))
            else:
                attrs["axes"] = list(axes)
        if out_value is not None:
            return self.result(out_value, scope, op_type, inputs, **attrs)
        return self.emit1(op_type, inputs, scope, **attrs)

    def reshape(self, node, x_value, target, out_value):
        """Reshape ``x_value`` to ``target`` (sizes, maybe one -1) without hard-coding dynamic sizes."""
        scope = node.scope
        x = self.name(x_value)
        in_shape = x_value.shape
        in_sym = self.sym_of(x_value)
        out_shape = out_value.shape
        if not any(_is_dyn(d) for d in in_sym):
            self.set_sym(out_value, out_shape)
            return self.result(out_value, scope, "Reshape", [x, self.ints(target)])
        groups = _match_dims(in_shape, out_shape)
        out_sym = list(out_shape)
        spec = [None] * len(out_shape)  # per output dim: int, ("copy", i) or ("dyn", [input dims])
        for ins, outs in groups:
            dyn = [i for i in ins if _is_dyn(in_sym[i])]
            if not dyn:
                for o in outs:
                    spec[o] = out_shape[o]
            elif len(ins) == 1 and len(outs) == 1:
                spec[outs[0]] = ("copy", ins[0])
                out_sym[outs[0]] = in_sym[ins[0]]
            else:
                # merged dims (or a dynamic dim split up): the first output dim of the group carries the
                # dynamic part, computed from the group's input sizes over the other output dims
                if len(outs) > 1:
                    warnings.warn(
                        f"ONNX export: a reshape in {node.scope.describe()} splits a dynamic size "
                        f"({[in_sym[i] for i in ins]} of input shape {list(in_shape)}) into sizes "
                        f"{[out_shape[o] for o in outs]}; the exported graph keeps {[out_shape[o] for o in outs[1:]]} "
                        "fixed and lets the first vary", stacklevel=2)
                rest = int(np.prod([out_shape[o] for o in outs[1:]], dtype=np.int64)) if len(outs) > 1 else 1
                spec[outs[0]] = ("dyn", ins, rest)
                out_sym[outs[0]] = DYNAMIC
                for o in outs[1:]:
                    spec[o] = out_shape[o]
        self.set_sym(out_value, out_sym)
        const = []
        free = [o for o, s in enumerate(spec) if isinstance(s, tuple) and not (s[0] == "copy" and s[1] == o)]
        for o, s in enumerate(spec):
            if not isinstance(s, tuple):
                const.append(int(s))
            elif s[0] == "copy" and s[1] == o:
                const.append(0)  # Reshape copies the input's size at the same position
            else:
                const.append(-1)
        if len(free) <= 1:
            if any(d == 0 for d in out_shape):  # a real 0 size would read as "copy": keep the sizes
                return self.result(out_value, scope, "Reshape", [x, self.ints(target)])
            return self.result(out_value, scope, "Reshape", [x, self.ints(const)])
        # several sizes depend on dynamic dims: compute the target shape at run time
        shape = self.emit1("Shape", [x], scope)
        parts = []
        for s in spec:
            if not isinstance(s, tuple):
                parts.append(self.ints([s]))
            elif s[0] == "copy":
                parts.append(self.emit1("Gather", [shape, self.ints([s[1]])], scope, axis=0))
            else:
                ins, rest = s[1], s[2]
                dims = self.emit1("Gather", [shape, self.ints(ins)], scope, axis=0)
                size = self.reduce("ReduceProd", dims, [0], True, scope)
                if rest != 1:
                    size = self.emit1("Div", [size, self.ints([rest])], scope)
                parts.append(size)
        target_shape = self.emit1("Concat", parts, scope, axis=0)
        return self.result(out_value, scope, "Reshape", [x, target_shape])


def _match_dims(a, b):
    """Split two shapes of equal element count into groups of dims with equal products, in order:
    [(input dims, output dims), ...]. Equal sizes pair up first (so a leading batch of 1 stays itself)."""
    groups = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            groups.append(([i], [j]))
            i += 1
            j += 1
            continue
        ins, outs = [i], [j]
        pa, pb = a[i], b[j]
        i += 1
        j += 1
        while pa != pb:
            if pa < pb and i < len(a):
                ins.append(i)
                pa *= a[i]
                i += 1
            elif pb < pa and j < len(b):
                outs.append(j)
                pb *= b[j]
                j += 1
            else:  # sizes that do not factor the same way: one group for all the rest
                ins += list(range(i, len(a)))
                outs += list(range(j, len(b)))
                i, j = len(a), len(b)
                break
        groups.append((ins, outs))
    if i < len(a) and groups:  # trailing size-1 input dims
        groups[-1][0].extend(range(i, len(a)))
    for k in range(j, len(b)):  # trailing size-1 output dims
        groups.append(([], [k]))
    return groups


# --- converting primitives ----------------------------------------------------------------------------
OPS = {}


def _op(*names):
    def register(fn):
        for n in names:
            OPS[n] = fn
        return fn

    return register


def _simple(op_type, **attrs):
    def convert(b, node):
        out = node.outputs[0]
        b.result(out, node.scope, op_type, [b.arg(node, i) for i in range(len(node.inputs))], **attrs)
        b.set_sym(out, b.broadcast_sym(node, out))

    return convert


for _name, _onnx_op in {
    "add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "neg": "Neg", "exp": "Exp", "log": "Log",
    "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos", "tan": "Tan", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu",
    "abs": "Abs", "maximum": "Max", "minimum": "Min", "where": "Where", "eq": "Equal", "lt": "Less",
    "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or",
    "logical_xor": "Xor", "logical_not": "Not", "sign": "Sign", "floor": "Floor", "ceil": "Ceil", "round": "Round",
    "isnan": "IsNaN", "isinf": "IsInf", "matmul": "MatMul",
}.items():
    OPS[_name] = _simple(_onnx_op)


def _chain(b, node, name, steps):
    """Apply unary ONNX ops in turn; the last one computes the node's output."""
    out = node.outputs[0]
    for k, (op_type, extra, attrs) in enumerate(steps):
        inputs = [name] + extra
        if k == len(steps) - 1:
            name = b.result(out, node.scope, op_type, inputs, **attrs)
        else:
            name = b.emit1(op_type, inputs, node.scope, **attrs)
    b.set_sym(out, b.broadcast_sym(node, out))
    return name


@_op("linear")
def _linear(b, node):
    """x @ w.T: MatMul against the transposed weight (batch dims of x pass through)."""
    out = node.outputs[0]
    weight_t = b.emit1("Transpose", [b.arg(node, 1)], node.scope, perm=[1, 0])
    b.result(out, node.scope, "MatMul", [b.arg(node, 0), weight_t])
    b.set_sym(out, b.broadcast_sym(node, out))


@_op("ne")
def _ne(b, node):
    eq = b.emit1("Equal", [b.arg(node, 0), b.arg(node, 1)], node.scope)
    _chain(b, node, eq, [("Not", [], {})])


@_op("isfinite")
def _isfinite(b, node):
    x = b.arg(node, 0)
    bad = b.emit1("Or", [b.emit1("IsNaN", [x], node.scope), b.emit1("IsInf", [x], node.scope)], node.scope)
    _chain(b, node, bad, [("Not", [], {})])


@_op("trunc")
def _trunc(b, node):
    x = b.arg(node, 0)
    neg = b.emit1("Less", [x, b.const(np.zeros((), node.outputs[0].dtype))], node.scope)
    out = node.outputs[0]
    b.result(out, node.scope, "Where", [neg, b.emit1("Ceil", [x], node.scope), b.emit1("Floor", [x], node.scope)])
    b.set_sym(out, b.broadcast_sym(node, out))


@_op("floor_divide")
def _floor_divide(b, node):
    out = node.outputs[0]
    x, y = b.arg(node, 0), b.arg(node, 1)
    if out.dtype.kind == "f":
        _chain(b, node, b.emit1("Div", [x, y], node.scope), [("Floor", [], {})])
        return
    to_float = b.dtype(np.float64)
    q = b.emit1("Div", [b.emit1("Cast", [x], node.scope, to=to_float), b.emit1("Cast", [y], node.scope, to=to_float)],
                node.scope)
    _chain(b, node, q, [("Floor", [], {}), ("Cast", [], {"to": b.dtype(out.dtype)})])


@_op("log_sigmoid")
def _log_sigmoid(b, node):
    _chain(b, node, b.arg(node, 0), [("Neg", [], {}), ("Softplus", [], {}), ("Neg", [], {})])


@_op("cast")
def _cast(b, node):
    out = node.outputs[0]
    b.result(out, node.scope, "Cast", [b.arg(node, 0)], to=b.dtype(node.params["dtype"]))
    b.set_sym(out, b.sym_of(node.inputs[0]))


@_op("clone", "alias")
def _identity(b, node):
    b.alias(node.outputs[0], b.arg(node, 0), node.scope)
    b.set_sym(node.outputs[0], b.sym_of(node.inputs[0]))


@_op("copy")
def _copy(b, node):
    out = node.outputs[0]
    x, src = node.inputs
    shape = b.emit1("Shape", [b.name(x)], node.scope)
    value = b.emit1("Expand", [b.arg(node, 1, dtype=out.dtype), shape], node.scope)
    b.result(out, node.scope, "Cast", [value], to=b.dtype(out.dtype))
    b.set_sym(out, b.sym_of(x))


@_op("clamp")
def _clamp(b, node):
    out = node.outputs[0]
    lo, hi = node.params["min"], node.params["max"]
    bound = [b.const(np.asarray(v, dtype=out.dtype)) if v is not None else "" for v in (lo, hi)]
    while bound and bound[-1] == "":
        bound.pop()
    b.result(out, node.scope, "Clip", [b.arg(node, 0)] + bound)
    b.set_sym(out, b.sym_of(node.inputs[0]))


def _reduced_sym(b, node, dims, keepdim):
    x = node.inputs[0]
    s = b.sym_of(x)
    dims = range(len(s)) if dims is None else dims
    return tuple(1 if k in dims else d for k, d in enumerate(s)) if keepdim else \
        tuple(d for k, d in enumerate(s) if k not in dims)


def _reduction(op_type):
    def convert(b, node):
        out = node.outputs[0]
        x = b.arg(node, 0)
        if node.inputs[0].dtype != out.dtype:  # sum of bools or small ints is int64, as in PyTorch
            x = b.emit1("Cast", [x], node.scope, to=b.dtype(out.dtype))
        dims, keepdim = node.params["dim"], node.params["keepdim"]
        b.reduce(op_type, x, dims, keepdim, node.scope, out_value=out)
        b.set_sym(out, _reduced_sym(b, node, dims, keepdim))

    return convert


OPS["sum"] = _reduction("ReduceSum")
OPS["mean"] = _reduction("ReduceMean")
OPS["amax"] = _reduction("ReduceMax")
OPS["amin"] = _reduction("ReduceMin")
OPS["logsumexp"] = _reduction("ReduceLogSumExp")


@_op("argmax", "argmin")
def _argmax(b, node):
    out = node.outputs[0]
    op_type = "ArgMax" if node.op.name == "argmax" else "ArgMin"
    x = b.arg(node, 0)
    dims, keepdim = node.params["dim"], node.params["keepdim"]
    if dims is None or node.inputs[0].tensor.ndim == 0:
        flat = b.emit1("Reshape", [x, b.ints([-1])], node.scope)
        idx = b.emit1(op_type, [flat], node.scope, axis=0, keepdims=0)
        b.result(out, node.scope, "Reshape", [idx, b.ints(out.shape)])
        b.set_sym(out, out.shape)
        return
    b.result(out, node.scope, op_type, [x], axis=int(dims[0]), keepdims=int(bool(keepdim)))
    b.set_sym(out, _reduced_sym(b, node, dims, keepdim))


@_op("std")
def _std(b, node):
    out = node.outputs[0]
    x = b.arg(node, 0)
    dims, keepdim, correction = node.params["dim"], node.params["keepdim"], node.params["correction"]
    shape = node.inputs[0].shape
    count = int(np.prod([shape[d] for d in (range(len(shape)) if dims is None else dims)], dtype=np.int64))
    mean = b.reduce("ReduceMean", x, dims, True, node.scope)
    centered = b.emit1("Sub", [x, mean], node.scope)
    squares = b.reduce("ReduceSumSquare", centered, dims, keepdim, node.scope)
    denom = b.const(np.asarray(max(count - correction, 0), dtype=out.dtype))
    _chain(b, node, b.emit1("Div", [squares, denom], node.scope), [("Sqrt", [], {})])
    b.set_sym(out, _reduced_sym(b, node, dims, keepdim))


@_op("reshape")
def _reshape(b, node):
    b.reshape(node, node.inputs[0], node.params["shape"], node.outputs[0])


@_op("permute")
def _permute(b, node):
    out = node.outputs[0]
    axes = [int(a) for a in node.params["axes"]]
    b.result(out, node.scope, "Transpose", [b.arg(node, 0)], perm=axes)
    s = b.sym_of(node.inputs[0])
    b.set_sym(out, [s[a] for a in axes])


@_op("expand")
def _expand(b, node):
    out = node.outputs[0]
    x = node.inputs[0]
    xs, xsym = x.shape, b.sym_of(x)
    shape = out.shape
    lead = len(shape) - len(xs)
    target, sym = list(shape), list(shape)
    for k in range(len(xs)):
        if xs[k] == shape[lead + k]:
            target[lead + k] = 1  # Expand broadcasts: 1 keeps the input's size, whatever it is at run time
            sym[lead + k] = xsym[k]
    b.result(out, node.scope, "Expand", [b.name(x), b.ints(target)])
    b.set_sym(out, sym)


@_op("cat")
def _cat(b, node):
    out = node.outputs[0]
    axis = int(node.params["dim"])
    b.result(out, node.scope, "Concat", [b.arg(node, i) for i in range(len(node.inputs))], axis=axis)
    sym = list(out.shape)
    for v in node.values():
        s = b.sym_of(v)
        for k, d in enumerate(s):
            if _is_dyn(d):
                sym[k] = DYNAMIC if k == axis else (d if not _is_dyn(sym[k]) or sym[k] == DYNAMIC else sym[k])
    b.set_sym(out, sym)


@_op("stack")
def _stack(b, node):
    out = node.outputs[0]
    axis = int(node.params["dim"])
    parts = [b.unsqueeze(b.arg(node, i), [axis], node.scope) for i in range(len(node.inputs))]
    b.result(out, node.scope, "Concat", parts, axis=axis)
    first = node.inputs[0]
    s = list(b.sym_of(first)) if isinstance(first, _trace.Value) else list(out.shape[:axis] + out.shape[axis + 1:])
    b.set_sym(out, s[:axis] + [len(node.inputs)] + s[axis:])


@_op("scatter", "scatter_add")
def _scatter(b, node):
    out = node.outputs[0]
    x, index, src = node.inputs
    if not isinstance(index, _trace.Value):
        raise _unsupported(node, "a non-tensor index")
    index_shape = index.shape
    if isinstance(src, _trace.Value):
        updates = b.name(src)
        if src.shape != index_shape:  # PyTorch reads the leading index-shaped block of src
            n = len(index_shape)
            updates = b.emit1("Slice", [updates, b.ints([0] * n), b.ints(index_shape), b.ints(range(n))], node.scope)
    else:
        updates = b.emit1("Expand", [b.const(np.asarray(src, dtype=out.dtype)), b.emit1("Shape", [b.name(index)],
                                                                                         node.scope)], node.scope)
    attrs = {"axis": int(node.params["dim"])}
    if node.op.name == "scatter_add":
        if b.opset < 16:
            raise _unsupported(node, "opset < 16 (ScatterElements gained reduction='add' in opset 16)")
        attrs["reduction"] = "add"
    b.result(out, node.scope, "ScatterElements", [b.name(x), b.name(index), updates], **attrs)
    b.set_sym(out, b.sym_of(x))


@_op("pad")
def _pad(b, node):
    out = node.outputs[0]
    widths = node.params["widths"]
    pads = [int(w[0]) for w in widths] + [int(w[1]) for w in widths]
    value = b.const(np.asarray(node.params["value"], dtype=out.dtype))
    b.result(out, node.scope, "Pad", [b.arg(node, 0), b.ints(pads), value], mode="constant")
    s = b.sym_of(node.inputs[0])
    b.set_sym(out, [(DYNAMIC if _is_dyn(d) else out.shape[k]) if (w[0] or w[1]) else d
                    for k, (d, w) in enumerate(zip(s, widths))])


@_op("getitem")
def _getitem(b, node):
    out = node.outputs[0]
    x = node.inputs[0]
    name = b.name(x)
    index = node.params["index"]
    ndim = len(x.shape)
    consumed = sum(1 for k in index if k is not None and k is not Ellipsis
                   and not (isinstance(k, np.ndarray) and k.dtype == np.bool_))
    if any(isinstance(k, np.ndarray) and k.dtype == np.bool_ for k in index):
        raise _unsupported(node, "indexing with a boolean mask (its output size depends on the data)")
    full = []
    for k in index:
        if k is Ellipsis:
            full += [slice(None)] * (ndim - consumed)
        else:
            full.append(k)
    full += [slice(None)] * (ndim - sum(1 for k in full if k is not None))
    arrays = [k for k in full if isinstance(k, np.ndarray)]
    if len(arrays) > 1 or (arrays and any(isinstance(k, (int, np.integer)) for k in full)):
        raise _unsupported(node, "indexing with more than one integer array")
    xsym = b.sym_of(x)
    starts, ends, axes, steps = [], [], [], []
    gathers, news = [], []
    sym = []
    axis = 0  # input axis
    for k in full:
        if k is None:
            news.append(len(sym))
            sym.append(1)
            continue
        if isinstance(k, slice):
            step = 1 if k.step is None else int(k.step)
            if (k.start, k.stop, step) != (None, None, 1):
                start = (0 if step > 0 else INT64_MAX) if k.start is None else int(k.start)
                stop = (INT64_MAX if step > 0 else INT64_MIN) if k.stop is None else int(k.stop)
                starts.append(start)
                ends.append(stop)
                axes.append(axis)
                steps.append(step)
                sym.append(None)  # filled from the output shape below
            else:
                sym.append(xsym[axis])
        elif isinstance(k, np.ndarray):
            gathers.append((axis, k))
            sym.extend([None] * k.ndim)
        else:
            gathers.append((axis, int(k)))
        axis += 1
    if starts:
        name = b.emit1("Slice", [name, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)], node.scope)
    # integer indices (and one integer array) from the last axis backwards, so earlier axes keep their numbers
    for ax, k in sorted(gathers, key=lambda g: -g[0]):
        idx = b.const(np.asarray(k, dtype=np.int64), hint="Index")
        name = b.emit1("Gather", [name, idx], node.scope, axis=ax)
    if news:
        name = b.unsqueeze(name, news, node.scope)
    b.alias(out, name, node.scope)
    b.set_sym(out, [out.shape[i] if d is None else d for i, d in enumerate(sym)] if len(sym) == len(out.shape)
              else out.shape)


@_op("gather")
def _gather(b, node):
    out = node.outputs[0]
    b.result(out, node.scope, "GatherElements", [b.arg(node, 0), b.arg(node, 1)], axis=int(node.params["dim"]))
    b.set_sym(out, b.sym_of(node.inputs[1]) if isinstance(node.inputs[1], _trace.Value) else out.shape)


def _pads(padding):
    (h0, h1), (w0, w1) = padding
    return [int(h0), int(w0), int(h1), int(w1)]


def _pool_sym(b, x, out):
    s = b.sym_of(x)
    return [s[0], s[1]] + [DYNAMIC if _is_dyn(d) else o for d, o in zip(s[2:], out.shape[2:])]


@_op("max_pool2d")
def _max_pool_op(b, node):
    out = node.outputs[0]
    p = node.params
    b.result(out, node.scope, "MaxPool", [b.arg(node, 0)], kernel_shape=list(p["kernel"]), strides=list(p["stride"]),
             pads=_pads(p["padding"]), dilations=list(p["dilation"]))
    b.set_sym(out, _pool_sym(b, node.inputs[0], out))


@_op("pool_sum")
def _pool_sum(b, node):
    out = node.outputs[0]
    p = node.params
    if tuple(p["dilation"]) != (1, 1):
        raise _unsupported(node, "a dilated window sum")
    mean = b.emit1("AveragePool", [b.arg(node, 0)], node.scope, kernel_shape=list(p["kernel"]),
                   strides=list(p["stride"]), pads=_pads(p["padding"]), count_include_pad=1)
    area = b.const(np.asarray(p["kernel"][0] * p["kernel"][1], dtype=out.dtype))
    b.result(out, node.scope, "Mul", [mean, area])
    b.set_sym(out, _pool_sym(b, node.inputs[0], out))


# --- converting modules ----------------------------------------------------------------------------
MODULES = []  # (class, converter): the first class a module is an instance of (forward not overridden)


def _module(*classes):
    def register(fn):
        for cls in classes:
            MODULES.append((cls, fn))
        return fn

    return register


def _x(node):
    x = node.inputs[0] if node.inputs else None
    if not isinstance(x, _trace.Value):
        raise _unsupported(node, "a call whose first argument is not a tensor")
    return x


def _same_shape(b, node, op_type, **attrs):
    x = _x(node)
    out = node.outputs[0]
    b.result(out, node.scope, op_type, [b.name(x)], **attrs)
    b.set_sym(out, b.sym_of(x))


def _batched4(b, node):
    """A (C, H, W) input is run as a batch of one: returns (input name, whether to squeeze back)."""
    x = _x(node)
    if len(x.shape) == 3:
        return b.unsqueeze(b.name(x), [0], node.scope), True
    if len(x.shape) != 4:
        raise _unsupported(node, f"an input of shape {list(x.shape)} (expected 3-D or 4-D)")
    return b.name(x), False


def _finish4(b, node, name, squeeze, op_type, inputs, **attrs):
    out = node.outputs[0]
    if squeeze:
        b.alias(out, b.squeeze(b.emit1(op_type, inputs, node.scope, **attrs), [0], node.scope), node.scope)
        b.set_sym(out, out.shape)
        return
    b.result(out, node.scope, op_type, inputs, **attrs)
    b.set_sym(out, _pool_sym(b, _x(node), out))


def _weight_name(b, tensor):
    v = b.recorder.lookup(tensor)
    return v.name or "weight"


def _param(b, node, tensor):
    return b.name(b.recorder.lookup(tensor))


def _modules():
    from .. import nn
    from ..nn import functional as F
    from ..ops import conv as _conv

    @_module(nn.Linear)
    def linear(b, node):
        m = node.module
        x = _x(node)
        out = node.outputs[0]
        bias = _param(b, node, m.bias) if m.bias is not None else None
        if len(x.shape) == 2:
            inputs = [b.name(x), _param(b, node, m.weight)] + ([bias] if bias else [])
            b.result(out, node.scope, "Gemm", inputs, transB=1)
        else:
            if b.fold and b.export_params:  # the transposed weight, folded
                wt = b.const(np.ascontiguousarray(m.weight._data.T), hint=f"{_weight_name(b, m.weight)}.T")
            else:
                wt = b.emit1("Transpose", [_param(b, node, m.weight)], node.scope, perm=[1, 0])
            if bias:
                b.result(out, node.scope, "Add", [b.emit1("MatMul", [b.name(x), wt], node.scope), bias])
            else:
                b.result(out, node.scope, "MatMul", [b.name(x), wt])
        b.set_sym(out, tuple(b.sym_of(x)[:-1]) + (m.out_features,))

    @_module(nn.Conv2d)
    def conv2d(b, node):
        m = node.module
        name, squeeze = _batched4(b, node)
        pads = _conv._conv_padding(m.padding, m.kernel_size, m.stride, m.dilation)
        if m.padding_mode != "zeros":
            mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[m.padding_mode]
            if mode == "wrap" and b.opset < 19:
                raise _unsupported(node, "padding_mode='circular' below opset 19")
            (h0, h1), (w0, w1) = pads
            name = b.emit1("Pad", [name, b.ints([0, 0, h0, w0, 0, 0, h1, w1])], node.scope, mode=mode)
            pads = ((0, 0), (0, 0))
        inputs = [name, _param(b, node, m.weight)]
        if m.bias is not None:
            inputs.append(_param(b, node, m.bias))
        _finish4(b, node, name, squeeze, "Conv", inputs, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                 pads=_pads(pads), dilations=list(m.dilation), group=int(m.groups))
        out = node.outputs[0]
        if not squeeze:
            s = list(b.sym_of(out))
            s[1] = m.out_channels
            b.set_sym(out, s)

    @_module(nn.MaxPool2d)
    def max_pool2d(b, node):
        m = node.module
        if m.return_indices:
            raise _unsupported(node, "MaxPool2d(return_indices=True)")
        name, squeeze = _batched4(b, node)
        kernel = _conv._pair(m.kernel_size)
        stride = kernel if m.stride is None else _conv._pair(m.stride)
        ph, pw = _conv._pair(m.padding)
        _finish4(b, node, name, squeeze, "MaxPool", [name], kernel_shape=list(kernel), strides=list(stride),
                 pads=[ph, pw, ph, pw], dilations=list(_conv._pair(m.dilation)), ceil_mode=int(bool(m.ceil_mode)))

    @_module(nn.AvgPool2d)
    def avg_pool2d(b, node):
        m = node.module
        if m.divisor_override:
            raise _unsupported(node, "AvgPool2d(divisor_override=...)")
        name, squeeze = _batched4(b, node)
        kernel = _conv._pair(m.kernel_size)
        stride = kernel if m.stride is None else _conv._pair(m.stride)
        ph, pw = _conv._pair(m.padding)
        _finish4(b, node, name, squeeze, "AveragePool", [name], kernel_shape=list(kernel), strides=list(stride),
                 pads=[ph, pw, ph, pw], ceil_mode=int(bool(m.ceil_mode)),
                 count_include_pad=int(bool(m.count_include_pad)))

    @_module(nn.AdaptiveAvgPool2d)
    def adaptive_avg_pool2d(b, node):
        m = node.module
        x = _x(node)
        name, squeeze = _batched4(b, node)
        h, w = x.shape[-2:]
        out_hw = node.outputs[0].shape[-2:]
        if tuple(out_hw) == (1, 1):
            _finish4(b, node, name, squeeze, "GlobalAveragePool", [name])
            return
        if any(_is_dyn(d) for d in b.sym_of(x)[-2:]):
            raise _unsupported(node, f"AdaptiveAvgPool2d({m.output_size}) on dynamic spatial sizes")
        kernel = [h // out_hw[0], w // out_hw[1]]
        _finish4(b, node, name, squeeze, "AveragePool", [name], kernel_shape=kernel, strides=kernel)

    @_module(nn.BatchNorm1d, nn.BatchNorm2d)
    def batch_norm(b, node):
        m = node.module
        x = _x(node)
        if m.training or m.running_mean is None or m.running_var is None:
            raise _unsupported(node, f"{type(m).__name__} using batch statistics (export in eval mode, with "
                                     "track_running_stats=True)")
        c = m.num_features
        dtype = x.dtype
        if m.affine:
            scale, bias = _param(b, node, m.weight), _param(b, node, m.bias)
        else:
            scale, bias = b.const(np.ones(c, dtype), hint="Ones"), b.const(np.zeros(c, dtype), hint="Zeros")
        mean, var = _param(b, node, m.running_mean), _param(b, node, m.running_var)
        if m.running_mean.dtype != x.tensor.dtype:
            mean = b.emit1("Cast", [mean], node.scope, to=b.dtype(dtype))
            var = b.emit1("Cast", [var], node.scope, to=b.dtype(dtype))
        name = b.name(x)
        out = node.outputs[0]
        b.result(out, node.scope, "BatchNormalization", [name, scale, bias, mean, var], epsilon=float(m.eps),
                 momentum=None)
        b.set_sym(out, b.sym_of(x))

    @_module(nn.Dropout, nn.Dropout2d, nn.Identity)
    def identity(b, node):
        if node.module.training and not isinstance(node.module, nn.Identity):
            raise _unsupported(node, f"{type(node.module).__name__} in training mode")
        x = _x(node)
        b.alias(node.outputs[0], b.name(x), node.scope)
        b.set_sym(node.outputs[0], b.sym_of(x))

    @_module(nn.Flatten)
    def flatten(b, node):
        m = node.module
        x = _x(node)
        ndim = len(x.shape)
        start, end = m.start_dim % max(ndim, 1), m.end_dim % max(ndim, 1)
        out = node.outputs[0]
        if ndim >= 2 and start == 1 and end == ndim - 1:
            b.result(out, node.scope, "Flatten", [b.name(x)], axis=1)
            s = b.sym_of(x)
            b.set_sym(out, (s[0], DYNAMIC if any(_is_dyn(d) for d in s[1:]) else out.shape[1]))
            return
        b.reshape(node, x, out.shape, out)

    @_module(nn.Unflatten)
    def unflatten(b, node):
        b.reshape(node, _x(node), node.outputs[0].shape, node.outputs[0])

    @_module(nn.ReLU)
    def relu(b, node):
        _same_shape(b, node, "Relu")

    @_module(nn.Sigmoid)
    def sigmoid(b, node):
        _same_shape(b, node, "Sigmoid")

    @_module(nn.Tanh)
    def tanh(b, node):
        _same_shape(b, node, "Tanh")

    @_module(nn.LeakyReLU)
    def leaky_relu(b, node):
        _same_shape(b, node, "LeakyRelu", alpha=float(node.module.negative_slope))

    @_module(nn.ELU)
    def elu(b, node):
        _same_shape(b, node, "Elu", alpha=float(node.module.alpha))

    @_module(nn.Hardtanh, nn.ReLU6)
    def hardtanh(b, node):
        m = node.module
        x = _x(node)
        lo, hi = (0.0, 6.0) if isinstance(m, nn.ReLU6) else (m.min_val, m.max_val)
        out = node.outputs[0]
        bounds = [b.const(np.asarray(lo, x.dtype)), b.const(np.asarray(hi, x.dtype))]
        b.result(out, node.scope, "Clip", [b.name(x)] + bounds)
        b.set_sym(out, b.sym_of(x))

    @_module(nn.SiLU)
    def silu(b, node):
        x = _x(node)
        out = node.outputs[0]
        b.result(out, node.scope, "Mul", [b.name(x), b.emit1("Sigmoid", [b.name(x)], node.scope)])
        b.set_sym(out, b.sym_of(x))

    @_module(nn.LogSigmoid)
    def log_sigmoid(b, node):
        x = _x(node)
        out = node.outputs[0]
        soft = b.emit1("Softplus", [b.emit1("Neg", [b.name(x)], node.scope)], node.scope)
        b.result(out, node.scope, "Neg", [soft])
        b.set_sym(out, b.sym_of(x))

    @_module(nn.PReLU)
    def prelu(b, node):
        m = node.module
        x = _x(node)
        out = node.outputs[0]
        slope = _param(b, node, m.weight)
        if m.num_parameters > 1 and len(x.shape) > 2:
            slope = b.emit1("Reshape", [slope, b.ints([m.num_parameters] + [1] * (len(x.shape) - 2))], node.scope)
        b.result(out, node.scope, "PRelu", [b.name(x), slope])
        b.set_sym(out, b.sym_of(x))

    def softmax_like(op_type, negate=False):
        def convert(b, node):
            m = node.module
            x = _x(node)
            ndim = len(x.shape)
            dim = m.dim if m.dim is not None else (0 if ndim in (0, 1, 3) else 1)
            name = b.name(x)
            if negate:
                name = b.emit1("Neg", [name], node.scope)
            out = node.outputs[0]
            b.result(out, node.scope, op_type, [name], axis=int(dim))
            b.set_sym(out, b.sym_of(x))

        return convert

    _module(nn.Softmax)(softmax_like("Softmax"))
    _module(nn.Softmin)(softmax_like("Softmax", negate=True))
    _module(nn.LogSoftmax)(softmax_like("LogSoftmax"))

    @_module(nn.Embedding)
    def embedding(b, node):
        m = node.module
        x = _x(node)
        if m.max_norm is not None:
            raise _unsupported(node, "Embedding(max_norm=...)")
        out = node.outputs[0]
        b.result(out, node.scope, "Gather", [_param(b, node, m.weight), b.name(x)], axis=0)
        b.set_sym(out, tuple(b.sym_of(x)) + (m.embedding_dim,))

    del F


_MODULES_READY = []


def _module_converter(module):
    if not _MODULES_READY:
        _modules()
        _MODULES_READY.append(True)
    for cls, fn in MODULES:
        if isinstance(module, cls) and type(module).forward is cls.forward:
            return fn
    return None


# --- errors -----------------------------------------------------------------------------------------
def _unsupported(node, what=None):
    shapes = ", ".join(str(list(v.shape)) if isinstance(v, _trace.Value) else repr(v) for v in node.inputs)
    where = node.scope.describe() if node.scope is not None else "the model"
    if node.kind == "op":
        head = f"ONNX export: the op '{node.op.name}' is not supported"
        if what:
            head = f"ONNX export: the op '{node.op.name}' is not supported for {what}"
    elif node.kind == "module":
        head = f"ONNX export: {what or type(node.module).__name__} is not supported"
    else:
        head = f"ONNX export: the custom autograd Function '{node.function.__name__}' cannot be exported"
    hint = _HINTS.get(node.op.name if node.kind == "op" else None,
                      "Use layers and ops that ONNX can express, or compute this part outside the exported model.")
    return UnsupportedOperatorError(f"{head} (called in {where}; inputs: {shapes}). {hint}")


_HINTS = {
    "im2col": "F.conv2d called directly is traced down to im2col; use an nn.Conv2d layer, which exports as Conv.",
    "max_pool2d_argmax": "Pooling indices have no ONNX form here; use MaxPool2d without return_indices.",
}


# --- the entry point ---------------------------------------------------------------------------------
def _split_args(args, kwargs):
    if isinstance(args, Tensor):
        args = (args,)
    elif isinstance(args, list):
        args = tuple(args)
    elif not isinstance(args, tuple):
        raise TypeError(f"export: args must be a tensor or a tuple of arguments, got {type(args).__name__}")
    kwargs = dict(kwargs or {})
    if args and isinstance(args[-1], dict):  # PyTorch: a trailing dict holds keyword arguments
        kwargs.update(args[-1])
        args = args[:-1]
    return args, kwargs


def _dynamic_axes(dynamic_axes, input_names, output_names):
    out = {}
    known = set(input_names) | set(output_names)
    for key, axes in (dynamic_axes or {}).items():
        if key not in known:
            warnings.warn(f"Provided key {key} for dynamic axes is not a valid input/output name", stacklevel=3)
            continue
        if isinstance(axes, dict):
            out[key] = {int(a): str(n) for a, n in axes.items()}
        else:
            out[key] = {int(a): f"{key}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
    return out


def _value_info(b, name, value, dims):
    shape = [None if d == DYNAMIC else d for d in dims]
    return b.helper.make_tensor_value_info(name, b.dtype(value.dtype), shape)


def _is_leaf(module):
    return _module_converter(module) is not None


def export(model, args=(), f=None, *, kwargs=None, export_params=True, verbose=False, training=TrainingMode.EVAL,
           input_names=None, output_names=None, opset_version=None, do_constant_folding=True, dynamic_axes=None,
           keep_initializers_as_inputs=False):
    """Export ``model`` run on ``args`` as an ONNX model written to ``f`` (a path or a binary file object).

    PyTorch's ``torch.onnx.export``: the model is run once (in eval mode, without gradients) on the
    example ``args`` (a tensor, or a tuple of arguments whose last item may be a dict of keyword
    arguments) and what it computed is recorded. ``input_names``/``output_names`` name the graph's inputs
    and outputs; ``dynamic_axes`` maps those names to the axes whose size may vary
    (``{"input": {0: "batch"}}`` or ``{"input": [0]}``). Layers with an ONNX operator (Linear, Conv2d,
    MaxPool2d, AvgPool2d, BatchNorm1d/2d, Dropout, Flatten, activations, Softmax/LogSoftmax, Embedding)
    become one node; other code is converted op by op. An op with no ONNX form raises
    :class:`UnsupportedOperatorError` naming the op and the module that called it.

    Needs the ``onnx`` package. With ``f=None`` the ``onnx.ModelProto`` is returned instead of written.
    """
    onnx = _import_onnx()
    from .. import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"export: expected an nn.Module, got {type(model).__name__}")
    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export: opset_version {opset} is not supported; chainrule exports opsets {MIN_OPSET} "
                         f"to {newest} (the installed onnx package's newest)")
    if training == TrainingMode.TRAINING or training is True:
        raise OnnxExporterError("export: chainrule exports inference graphs only (training=TrainingMode.EVAL)")
    args, kwargs = _split_args(args, kwargs)
    was_training = model.training
    if training != TrainingMode.PRESERVE:
        model.eval()
    try:  # converted before the mode is given back: the converters read it (BatchNorm, Dropout)
        recorder = _trace.trace(model, args, kwargs, leaf=_is_leaf)
        proto = _build(onnx, recorder, opset, export_params, do_constant_folding, input_names, output_names,
                       dynamic_axes, keep_initializers_as_inputs)
    finally:
        model.train(was_training)
    onnx.checker.check_model(proto)
    if verbose:
        print(onnx.helper.printable_graph(proto.graph))
    if f is None:
        return proto
    if isinstance(f, (str, os.PathLike)):
        onnx.save_model(proto, os.fspath(f))
    else:
        f.write(proto.SerializeToString())
    return None


def _build(onnx, recorder, opset, export_params, fold, input_names, output_names, dynamic_axes, keep_inits):
    b = _Builder(onnx, recorder, opset, fold, export_params)
    inputs = recorder.inputs
    outputs = recorder.outputs
    if not outputs:
        raise OnnxExporterError("export: the model returned no tensor")
    in_names = list(input_names or [])
    if len(in_names) > len(inputs):
        raise ValueError(f"export: {len(in_names)} input_names given for a model with {len(inputs)} tensor inputs")
    in_names += [v.name for v in inputs[len(in_names):]]
    out_names = list(output_names or [])
    if len(out_names) > len(outputs):
        raise ValueError(f"export: {len(out_names)} output_names given for a model with {len(outputs)} outputs")
    out_names += [("output" if len(outputs) == 1 else f"output_{i}") for i in range(len(out_names), len(outputs))]
    if len(set(in_names) | set(out_names)) != len(in_names) + len(out_names):
        raise ValueError(f"export: input and output names must be unique, got {in_names} and {out_names}")
    axes = _dynamic_axes(dynamic_axes, in_names, out_names)

    graph_inputs = []
    for v, name in zip(inputs, in_names):
        b.unique.taken.add(name)
        b.names[v.index] = name
        dims = list(v.shape)
        for a, sym_name in axes.get(name, {}).items():
            if not -len(dims) <= a < len(dims):
                raise ValueError(f"export: dynamic axis {a} of input {name!r} is out of range for shape "
                                 f"{list(v.shape)}")
            dims[a] = sym_name
        b.sym[v.index] = tuple(dims)
        graph_inputs.append(_value_info(b, name, v, dims))
    pending = []  # outputs that need an Identity (an input, a constant, a value output twice)
    for v, name in zip(outputs, out_names):
        b.unique.taken.add(name)
        if v.kind == "node" and (v.live or not fold) and v.index not in b.reserved:
            b.reserved[v.index] = name
        else:
            pending.append((v, name))

    for node in recorder.needed():
        if fold and not any(o.live for o in node.outputs):
            continue  # its outputs become initializers when used
        if node.kind == "function":
            raise _unsupported(node)
        if node.kind == "module":
            convert = _module_converter(node.module)
        else:
            convert = OPS.get(node.op.name)
        if convert is None:
            raise _unsupported(node)
        convert(b, node)
        if any(o.index not in b.names for o in node.outputs):
            raise _unsupported(node, f"{node.name} returning {len(node.outputs)} tensors")
    for v, name in pending:
        b.emit("Identity", [b.name(v)], outputs=[name])

    graph_outputs = []
    for v, name in zip(outputs, out_names):
        dims = list(b.sym_of(v))
        for a, sym_name in axes.get(name, {}).items():
            if not -len(dims) <= a < len(dims):
                raise ValueError(f"export: dynamic axis {a} of output {name!r} is out of range for shape "
                                 f"{list(v.shape)}")
            dims[a] = sym_name
        graph_outputs.append(_value_info(b, name, v, dims))

    extra = list(b.extra_inputs)
    if keep_inits:
        extra += [b.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in b.initializers]
    graph = b.helper.make_graph(b.nodes, type(recorder.model).__name__, graph_inputs + extra, graph_outputs,
                                initializer=b.initializers)
    opsets = [b.helper.make_opsetid("", opset)]
    from .. import __version__

    proto = b.helper.make_model(graph, opset_imports=opsets, producer_name="chainrule", producer_version=__version__)
    proto.ir_version = b.helper.find_min_ir_version_for(opsets)
    return proto

