"""``add_graph``: the model's traced graph as a TensorBoard ``GraphDef``.

The model runs once on the example input under chainrule's recording tracer (eval mode, no grad);
every primitive op becomes a ``NodeDef`` whose name is prefixed with the module scopes it ran in
(``LeNet5/Sequential[features]/Conv2d[0]/matmul``), so TensorBoard's graph view folds each module
into a box that opens onto its ops. Inputs and outputs are ``IO Node``s under ``input/`` and
``output/``; parameters, buffers and constants are nodes of their own; each node carries its output
shapes (``_output_shapes``, which the graph view draws on the edges), dtype and op parameters.
"""

import numpy as np
from tensorboard.compat.proto import types_pb2 as _types
from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.versions_pb2 import VersionDef

from ...onnx import _trace
from ...tensor import Tensor

_TYPES = {np.dtype(name): getattr(_types, "DT_" + tag) for name, tag in (
    ("float32", "FLOAT"), ("float64", "DOUBLE"), ("float16", "HALF"), ("int64", "INT64"), ("int32", "INT32"),
    ("int16", "INT16"), ("int8", "INT8"), ("uint8", "UINT8"), ("bool", "BOOL"))}
_DEVICE = "/device:CPU:0"


def _shape_attr(shapes):
    return AttrValue(list=AttrValue.ListValue(
        shape=[TensorShapeProto(dim=[TensorShapeProto.Dim(size=int(s)) for s in shape]) for shape in shapes]))


def _text(value, limit=120):
    if isinstance(value, np.ndarray):
        text = f"array(shape={list(value.shape)}, dtype={value.dtype})" if value.size > 8 else repr(value.tolist())
    elif isinstance(value, tuple):
        text = "(" + ", ".join(_text(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    elif isinstance(value, np.dtype):
        text = str(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _GraphBuilder:
    def __init__(self, recorder):
        self.recorder = recorder
        self.nodes = []
        self.names = {}  # Value.index -> node name
        self.unique = _trace.UniqueNames()

    def add(self, name, op, inputs=(), shapes=(), dtype=None, attrs=None, device=None):
        node = NodeDef(name=name, op=op, input=list(inputs))
        if device:
            node.device = device
        if shapes:
            node.attr["_output_shapes"].CopyFrom(_shape_attr(shapes))
        if dtype is not None and np.dtype(dtype) in _TYPES:
            node.attr["dtype"].CopyFrom(AttrValue(type=_TYPES[np.dtype(dtype)]))
        if attrs:
            body = ", ".join(f"{k} : {_text(v)}" for k, v in attrs.items())
            node.attr["attr"].CopyFrom(AttrValue(s=("{ " + body + " }").encode()))
        self.nodes.append(node)
        return node

    def scope_name(self, scope):
        return "/".join(scope.labels()) if scope is not None else type(self.recorder.model).__name__

    def name_of(self, v, user_scope):
        hit = self.names.get(v.index)
        if hit is not None:
            return hit
        if v.kind in ("param", "buffer"):
            owner = self.recorder.owner(v)
            scope = self.recorder.scopes.get(owner[0]) if owner else None
            base = f"{self.scope_name(scope or user_scope)}/{owner[1] if owner else v.name}"
            op = "Parameter" if v.kind == "param" else "Buffer"
        else:  # a constant made inside forward, or a tensor the trace did not see being made
            base = f"{self.scope_name(user_scope)}/constant"
            op = "Constant"
        name = self.unique(base)
        attrs = {"value": v.tensor._data} if v.kind == "const" and v.tensor._data.size <= 8 else None
        self.add(name, op, shapes=[v.shape], dtype=v.dtype, attrs=attrs)
        self.names[v.index] = name
        return name


def graph(model, args, verbose=False):
    """Trace ``model(*args)`` and return a TensorBoard ``GraphDef`` of what it computed."""
    from ... import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"add_graph: expected an nn.Module, got {type(model).__name__}")
    kwargs = {}
    if args and isinstance(args[-1], dict):
        kwargs, args = args[-1], args[:-1]
    was_training = model.training
    model.eval()
    try:
        recorder = _trace.trace(model, args, kwargs)
    finally:
        model.train(was_training)
    b = _GraphBuilder(recorder)
    for v in recorder.inputs:
        name = b.unique(f"input/{v.name}")
        b.names[v.index] = name
        b.add(name, "IO Node", shapes=[v.shape], dtype=v.dtype)
    for node in recorder.nodes:
        scope_name = b.scope_name(node.scope)
        inputs = [b.name_of(v, node.scope) for v in node.values()]
        attrs = dict(node.params)
        for k, a in enumerate(node.inputs):
            if not isinstance(a, _trace.Value) and not isinstance(a, Tensor):
                attrs[f"arg{k}"] = a
        name = b.unique(f"{scope_name}/{node.name}")
        b.add(name, node.name, inputs, shapes=[o.shape for o in node.outputs],
              dtype=node.outputs[0].dtype if node.outputs else None, attrs=attrs, device=_DEVICE)
        for k, o in enumerate(node.outputs):
            b.names[o.index] = name if k == 0 else f"{name}:{k}"
    for i, v in enumerate(recorder.outputs):
        source = b.name_of(v, None)
        b.add(b.unique(f"output/output.{i}"), "IO Node", [source], shapes=[v.shape], dtype=v.dtype)
    if verbose:
        for n in b.nodes:
            print(f"{n.name} = {n.op}({', '.join(n.input)})")
    return GraphDef(node=b.nodes, versions=VersionDef(producer=22))
