"""``chainrule.onnx.export``: record the model into the static IR, compile it (constant folding, common
subexpressions, dead code), then write each IR op with its OpDef's converter (``op.export``, see
:mod:`._ops`).

The layers ONNX has one operator for and chainrule builds from several ops (Linear, Conv2d,
BatchNorm, Softmax, see :mod:`._modules`) are written as that operator; the ops inside them are then
not needed. Sizes named in ``dynamic_axes`` are ``None`` in the placeholders, so the IR's shapes carry
them as symbolic sizes: a converter that needs a size at run time (a reshape target, an expand) reads
it from the graph's ``Shape``. Nodes that depend on no model input (parameter transposes, masks, ...)
are computed at export and written as initializers when ``do_constant_folding`` is on.
"""

import enum
import os
import warnings

import numpy as np

from .. import nn
from .._version import __version__
from ..errors import ChainruleError
from ..static import Dim, compile
from ._trace import UniqueNames, argument_names, owners, split_args, trace

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis, ReduceSum's axes as an input, Split/Squeeze/Unsqueeze inputs


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


def _bases(d):
    """The (IR node id, axis) sizes whose product (times ``d.coef``) is the symbolic size ``d``."""
    return [(b.find().node.id, b.find().axis) for b in d.bases]


def _has_dim(v):
    return isinstance(v, Dim) or (isinstance(v, (tuple, list)) and any(_has_dim(x) for x in v))


# --- the graph being built --------------------------------------------------------------------------
class Builder:
    """The ONNX graph being written; converters call it with the IR node they convert."""

    def __init__(self, onnx, opset, fold, export_params, owned, live):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.fold = fold
        self.export_params = export_params
        self.owned = owned  # id(parameter or buffer) -> (state_dict key, module path, attribute)
        self.live = live  # ids of the IR nodes that depend on the model's inputs
        self.nodes = []
        self.initializers = []
        self.extra_inputs = []  # parameters as graph inputs (export_params=False)
        self.names = {}  # IR node id -> ONNX name
        self.reserved = {}  # IR node id -> the graph output name it must be written under
        self.scope = None  # the module call the node being converted was made in (prefixes node names)
        self.unique = UniqueNames()
        self._consts = {}
        self._tensors = {}  # id(tensor) -> ONNX name
        self._values = {}  # IR node id -> value computed at export
        self._shapes = {}  # IR node id -> the name of its Shape

    # emitting ---------------------------------------------------------------------------------------
    def emit(self, op_type, inputs, outputs=None, **attrs):
        """Append a node; returns its output name (a fresh one unless ``outputs`` names it)."""
        prefix = "/" + self.scope.path.replace(".", "/") if self.scope is not None and self.scope.path else ""
        outputs = outputs or [self.unique(f"{prefix}/{op_type}_output_0")]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outputs,
                                                name=self.unique(f"{prefix}/{op_type}"), **attrs))
        return outputs[0]

    def result(self, node, op_type, inputs, **attrs):
        """Emit the ONNX node computing IR ``node`` (named for the graph output it may be)."""
        out = self.reserved.get(node.id)
        self.names[node.id] = self.emit(op_type, inputs, [out] if out else None, **attrs)
        return self.names[node.id]

    def alias(self, node, name):
        """IR ``node`` is the tensor named ``name`` (an Identity only where a graph output needs its name)."""
        if node.id in self.reserved:
            name = self.emit("Identity", [name], [self.reserved[node.id]])
        self.names[node.id] = name

    def dtype(self, np_dtype):
        return self.helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype))

    def const(self, array, hint="Constant"):
        """An initializer holding ``array`` (small ones are shared)."""
        array = np.asarray(array, order="C")
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if key not in self._consts:
            name = self.unique(f"onnx::{hint}")
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
            if key is None:
                return name
            self._consts[key] = name
        return self._consts[key]

    def ints(self, values):
        return self.const(np.asarray(list(values), dtype=np.int64), hint="Shape")

    # reading IR nodes ---------------------------------------------------------------------------------
    def name(self, node):
        """The ONNX name of an IR node: parameters, constants and folded values are written on first use."""
        if node.id not in self.names:
            if node.kind == "variable":
                self.names[node.id] = self.tensor(node.data)
            elif node.kind == "op" and node.id in self.live:
                raise OnnxExporterError(f"internal error: {node} is used before it is converted")
            else:
                self.names[node.id] = self.const(np.asarray(self.value(node), node.dtype))
        return self.names[node.id]

    def tensor(self, t):
        """The ONNX name of a concrete tensor: a parameter or buffer under its state_dict key, else a constant."""
        if id(t) not in self._tensors:
            owner = self.owned.get(id(t))
            array = np.asarray(t._data, order="C")
            if owner is None:
                name = self.const(array)
            elif self.export_params:
                name = self.unique(owner[0])
                self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
            else:
                name = self.unique(owner[0])
                self.extra_inputs.append(self.helper.make_tensor_value_info(name, self.dtype(array.dtype),
                                                                            list(array.shape)))
            self._tensors[id(t)] = name
        return self._tensors[id(t)]

    def arg(self, node, i, dtype=None):
        """Input ``i`` of ``node``; a Python number becomes a constant of the op's dtype (ONNX does not promote)."""
        x = node.inputs[i]
        if x.kind == "constant" and not isinstance(x.data, np.ndarray):
            return self.const(np.asarray(x.data, dtype or _number_dtype(node)))
        return self.name(x)

    def value(self, node):
        """The value of a node that depends on no model input, computed with the ops' own forwards."""
        if node.id not in self._values:
            if node.kind == "variable":
                value = node.data._data
            elif node.kind == "constant":
                value = node.data
            else:
                value = np.asarray(node.op.forward(*[self.value(i) for i in node.inputs], **node.params))
            self._values[node.id] = value
        return self._values[node.id]

    # sizes -----------------------------------------------------------------------------------------------
    def size(self, d):
        """A one-element int64 tensor holding size ``d`` (an int, or a symbolic size read at run time)."""
        if not isinstance(d, Dim):
            return self.ints([d])
        out = self.ints([d.coef]) if d.coef != 1 else None
        for node_id, axis in _bases(d):
            if node_id not in self.names:
                raise OnnxExporterError(f"export: the size {d} is read from a value the exported graph does not have")
            if node_id not in self._shapes:
                self._shapes[node_id] = self.emit("Shape", [self.names[node_id]])
            part = self.emit("Gather", [self._shapes[node_id], self.ints([axis])], axis=0)
            out = part if out is None else self.emit("Mul", [out, part])
        return out

    def shape(self, sizes):
        """An int64 shape tensor: a constant, or built at run time where sizes are symbolic."""
        if not any(isinstance(s, Dim) for s in sizes):
            return self.ints(sizes)
        return self.emit("Concat", [self.size(s) for s in sizes], axis=0)

    def reduce(self, op_type, name, axes, keepdims, node=None):
        """ReduceX over ``axes`` (None: all), with the axes as an attribute or an input by opset."""
        inputs, attrs = [name], {"keepdims": int(bool(keepdims))}
        if axes is not None and (op_type == "ReduceSum" or self.opset >= 18):
            inputs.append(self.ints(axes))
        elif axes is not None:
            attrs["axes"] = list(axes)
        if node is not None:
            return self.result(node, op_type, inputs, **attrs)
        return self.emit(op_type, inputs, **attrs)


def _number_dtype(node):
    """The dtype a Python number among an op's inputs takes: that of its first non-bool tensor input."""
    for x in node.inputs:
        if not (x.kind == "constant" and not isinstance(x.data, np.ndarray)) and x.dtype != np.bool_:
            return x.dtype
    return node.dtype


# --- registering converters ------------------------------------------------------------------------
def converter(*ops):
    """Register the decorated ``convert(b, node)`` as the ONNX converter of each OpDef in ``ops`` (``op.export``)."""
    def register(fn):
        for op in ops:
            op.export = fn
        return fn

    return register


MODULES = []  # (layer class, converter): layers written as one ONNX node instead of their ops


def module_converter(*classes):
    """Register the decorated ``convert(b, module, x, out)`` for these layers: IR node ``out`` is ``module(x)``."""
    def register(fn):
        MODULES.extend((cls, fn) for cls in classes)
        return fn

    return register


def module_export(module):
    """The converter of a layer (None for other modules, and for subclasses with their own forward)."""
    for cls, fn in MODULES:
        if isinstance(module, cls) and type(module).forward is cls.forward:
            return fn
    return None


# --- errors -----------------------------------------------------------------------------------------
def unsupported(what, scope, inputs=(), hint=None):
    """The error for something with no ONNX form: what, where the model called it, on which inputs."""
    where = scope.describe() if scope is not None else "the model"
    shapes = ", ".join(str(list(x.shape)) for x in inputs)
    hint = hint or "Use layers and ops that ONNX can express, or compute this part outside the exported model."
    return UnsupportedOperatorError(f"ONNX export: {what} (called in {where}; inputs: {shapes}). {hint}")


def refuse(hint, what=None):
    """A converter for an op with no ONNX form: it raises with ``hint`` (``what`` qualifies the op)."""
    def convert(b, node):
        detail = f" for {what}" if what else ""
        raise unsupported(f"the op '{node.op.name}' is not supported{detail}", b.scope, node.inputs, hint)

    return convert


# --- the entry point ---------------------------------------------------------------------------------
def _dynamic_axes(dynamic_axes):
    """{name: {axis: size name}} from PyTorch's {name: {axis: size name}} or {name: [axes]}."""
    out = {}
    for key, axes in (dynamic_axes or {}).items():
        if isinstance(axes, dict):
            out[key] = {int(a): str(n) for a, n in axes.items()}
        else:
            out[key] = {int(a): f"{key}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
    return out


def export(model, args=(), f=None, *, kwargs=None, export_params=True, verbose=False, training=TrainingMode.EVAL,
           input_names=None, output_names=None, opset_version=None, do_constant_folding=True, dynamic_axes=None,
           keep_initializers_as_inputs=False):
    """Export ``model`` run on ``args`` as an ONNX model written to ``f`` (a path or a binary file object).

    PyTorch's ``torch.onnx.export``: the model is traced once (in eval mode, without gradients) into
    chainrule's static graph, with placeholders shaped like the example ``args`` (a tensor, or a tuple of
    arguments whose last item may be a dict of keyword arguments). ``input_names``/``output_names`` name
    the graph's inputs and outputs; ``dynamic_axes`` maps those names to the axes whose size may vary
    (``{"input": {0: "batch"}}`` or ``{"input": [0]}``). Linear, Conv2d, BatchNorm1d/2d and
    Softmax/Softmin/LogSoftmax become one node each; other code is converted op by op. An op with no
    ONNX form raises :class:`UnsupportedOperatorError` naming the op and the module that called it.

    Needs the ``onnx`` package. With ``f=None`` the ``onnx.ModelProto`` is returned instead of written.
    """
    onnx = _import_onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"export: expected an nn.Module, got {type(model).__name__}")
    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export: opset_version {opset} is not supported; chainrule exports opsets {MIN_OPSET} "
                         f"to {newest} (the installed onnx package's newest)")
    if training == TrainingMode.TRAINING or training is True:
        raise OnnxExporterError("export: chainrule exports inference graphs only (training=TrainingMode.EVAL)")
    args, kwargs = split_args(args, kwargs)
    names = argument_names(model, args, kwargs)
    in_names = list(input_names or [])
    if len(in_names) > len(names):
        raise ValueError(f"export: {len(in_names)} input_names given for a model with {len(names)} tensor inputs")
    in_names += names[len(in_names):]
    was_training = model.training
    if training != TrainingMode.PRESERVE:
        model.eval()
    try:  # converted before the mode is given back: the layer converters read it (BatchNorm)
        proto = _build(onnx, model, args, kwargs, in_names, output_names, _dynamic_axes(dynamic_axes), opset,
                       export_params, do_constant_folding, keep_initializers_as_inputs)
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


def _output_names(recorder, outputs, in_names, output_names, axes):
    if recorder.functions:
        cls, scope = recorder.functions[0]
        raise unsupported(f"the custom autograd Function '{cls.__name__}' cannot be exported", scope)
    if not outputs:
        raise OnnxExporterError("export: the model returned no tensor")
    out_names = list(output_names or [])
    if len(out_names) > len(outputs):
        raise ValueError(f"export: {len(out_names)} output_names given for a model with {len(outputs)} outputs")
    out_names += [("output" if len(outputs) == 1 else f"output_{i}") for i in range(len(out_names), len(outputs))]
    if len(set(in_names) | set(out_names)) != len(in_names) + len(out_names):
        raise ValueError(f"export: input and output names must be unique, got {in_names} and {out_names}")
    for key in axes:
        if key not in in_names and key not in out_names:
            warnings.warn(f"Provided key {key} for dynamic axes is not a valid input/output name", stacklevel=4)
    return out_names


def _compile(recorder, inputs, outputs, fold):
    """The program of the outputs and of every leaf call's input and output, after the passes that keep
    values where they are: folding, CSE, DCE. (Algebraic simplification is left out: it rewrites across a
    layer's boundary, e.g. a permute after a Conv2d merged with the permute inside it, so the layer's
    inner ops, which have no ONNX form, would be needed.)

    Returns (program, output nodes, {IR node id: (converter, scope, input node, output node)}): the
    nodes a leaf layer computes, each with the converter that writes the layer as one ONNX node.
    """
    extra = [t for call in recorder.calls for t in (call.input, call.output)]
    passes = {"cse", "dce"} | ({"fold"} if fold else set())
    program = compile(list(outputs) + extra, inputs=inputs, optimize=passes)
    nodes = program.outputs[:len(outputs)]
    layers = {}
    rest = iter(program.outputs[len(outputs):])
    for call in recorder.calls:
        x, out = next(rest), next(rest)
        if out.kind == "op" and out is not x:
            layers.setdefault(out.id, (module_export(call.module), call.scope, x, out))
    return program, nodes, layers


def _live(program, export_params, owned):
    """Ids of the nodes that depend on the model's inputs (or on parameters given as inputs)."""
    live = set()
    for n in program.nodes:
        if (n.kind == "placeholder" or (n.kind == "variable" and not export_params and id(n.data) in owned)
                or (n.kind == "op" and (not n.op.pure or _has_dim(n.shape) or _has_dim(list(n.params.values()))
                                        or any(i.id in live for i in n.inputs)))):
            live.add(n.id)
    return live


def _needed(nodes, layers):
    """Ids of the nodes the outputs need, reading a leaf layer's output from its input only."""
    needed, stack = set(), list(nodes)
    while stack:
        n = stack.pop()
        if n.id not in needed:
            needed.add(n.id)
            stack.extend([layers[n.id][2]] if n.id in layers else n.inputs)
    return needed


def _value_info(b, name, node, axis_names, named=None):
    """The type of a graph input or output: its sizes are ints, the names of dynamic axes (``named``
    overriding), or unnamed for a symbolic size that no dynamic input axis alone gives."""
    dims = []
    for d in node.shape:
        if isinstance(d, Dim):
            bases = _bases(d)
            d = axis_names.get(bases[0]) if d.coef == 1 and len(bases) == 1 else None
        dims.append(d)
    for a, size_name in (named or {}).items():
        if not -len(dims) <= a < len(dims):
            raise ValueError(f"export: dynamic axis {a} of {name!r} is out of range for shape {list(node.shape)}")
        dims[a] = size_name
    return b.helper.make_tensor_value_info(name, b.dtype(node.dtype), dims)


def _convert(b, program, recorder, out_nodes, layers):
    """Write every node the outputs need, in program order: a leaf layer's output with the layer's
    converter, any other op with its OpDef's; values that depend on no input wait to be used."""
    needed = _needed(out_nodes, layers)
    for n in program.nodes:
        if n.kind != "op" or n.id not in needed or (b.fold and n.id not in b.live):
            continue
        if n.id in layers:
            convert, b.scope, x, out = layers[n.id]
            convert(b, b.scope.module, x, out)
        elif n.op.export is None:
            raise unsupported(f"the op '{n.op.name}' is not supported", recorder.scope_of.get(n.id), n.inputs)
        else:
            b.scope = recorder.scope_of.get(n.id)
            n.op.export(b, n)
    b.scope = None


def _build(onnx, model, args, kwargs, in_names, output_names, axes, opset, export_params, fold, keep_inits):
    recorder, inputs, outputs = trace(model, args, kwargs, in_names, axes, leaf=module_export)
    out_names = _output_names(recorder, outputs, in_names, output_names, axes)
    owned = owners(model)
    program, out_nodes, layers = _compile(recorder, inputs, outputs, fold)
    b = Builder(onnx, opset, fold, export_params, owned, _live(program, export_params, owned))
    axis_names = {(node.id, a % len(node.shape)): size_name for node, name in zip(program.placeholders, in_names)
                  for a, size_name in axes.get(name, {}).items()}
    for node, name in zip(program.placeholders, in_names):
        b.names[node.id] = name
    b.unique.taken.update(in_names + out_names)
    pending = []  # outputs that need an Identity (an input, a constant, a value output twice)
    for node, name in zip(out_nodes, out_names):
        if node.kind == "op" and node.id in b.live and node.id not in b.reserved:
            b.reserved[node.id] = name
        else:
            pending.append((node, name))
    _convert(b, program, recorder, out_nodes, layers)
    for node, name in pending:
        b.emit("Identity", [b.name(node)], [name])
    graph_inputs = [_value_info(b, name, node, axis_names) for node, name in zip(program.placeholders, in_names)]
    graph_outputs = [_value_info(b, name, node, axis_names, axes.get(name)) for node, name in zip(out_nodes,
                                                                                                  out_names)]
    extra = list(b.extra_inputs)
    if keep_inits:
        extra += [b.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in b.initializers]
    graph = b.helper.make_graph(b.nodes, type(model).__name__, graph_inputs + extra, graph_outputs,
                                initializer=b.initializers)
    opsets = [b.helper.make_opsetid("", opset)]
    proto = b.helper.make_model(graph, opset_imports=opsets, producer_name="chainrule", producer_version=__version__)
    proto.ir_version = b.helper.find_min_ir_version_for(opsets)
    return proto
