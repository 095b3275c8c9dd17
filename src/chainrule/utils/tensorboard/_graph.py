"""``add_graph``: the model's traced graph as a TensorBoard ``GraphDef``.

The model is traced once on the example input into chainrule's static graph (eval mode, no grad, by
the recorder the ONNX exporter uses); every op becomes a ``NodeDef`` whose name is prefixed with the
module scopes it ran in (``LeNet5/Sequential[features]/Conv2d[0]/matmul``), so TensorBoard's graph
view folds each module into a box that opens onto its ops. Inputs and outputs are ``IO Node``s under ``input/`` and
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

from ... import nn
from ...onnx._trace import UniqueNames, argument_names, owners, split_args, trace
from ...static import SymbolicTensor

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
    def __init__(self, recorder, owned, model_name):
        self.recorder = recorder
        self.owned = owned  # id(parameter or buffer) -> (state_dict key, module path, attribute)
        self.model_name = model_name
        self.nodes = []
        self.names = {}  # IR node id -> node name
        self.unique = UniqueNames()

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
        return "/".join(scope.labels()) if scope is not None else self.model_name

    def name_of(self, node, user_scope):
        """The name of an input node: a parameter or buffer in the scope of the module owning it, or a constant
        in the scope that first used it (made on first use)."""
        if node.id in self.names:
            return self.names[node.id]
        owner = self.owned.get(id(node.data)) if node.kind == "variable" else None
        if owner is not None:
            scope = self.recorder.scopes.get(owner[1], user_scope)
            base = f"{self.scope_name(scope)}/{owner[2]}"
            op = "Parameter" if isinstance(node.data, nn.Parameter) else "Buffer"
        else:  # a constant, or a tensor made inside forward
            base, op = f"{self.scope_name(user_scope)}/constant", "Constant"
        value = node.data._data if node.kind == "variable" else np.asarray(node.data)
        name = self.unique(base)
        self.add(name, op, shapes=[node.shape], dtype=node.dtype,
                 attrs={"value": value} if owner is None and value.size <= 8 else None)
        self.names[node.id] = name
        return name

    def op(self, node):
        scope = self.recorder.scope_of.get(node.id)
        inputs, attrs = [], dict(node.params)
        for k, x in enumerate(node.inputs):
            if x.kind == "constant" and not isinstance(x.data, np.ndarray):  # a Python number: an attribute
                attrs[f"arg{k}"] = x.data
            else:
                inputs.append(self.name_of(x, scope))
        name = self.unique(f"{self.scope_name(scope)}/{node.op.name}")
        self.add(name, node.op.name, inputs, shapes=[node.shape], dtype=node.dtype, attrs=attrs, device=_DEVICE)
        self.names[node.id] = name


def graph(model, args, verbose=False):
    """Trace ``model(*args)`` into a static graph and return a TensorBoard ``GraphDef`` of its ops."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"add_graph: expected an nn.Module, got {type(model).__name__}")
    args, kwargs = split_args(args, what="add_graph")
    was_training = model.training
    model.eval()
    try:
        recorder, inputs, outputs = trace(model, args, kwargs, argument_names(model, args, kwargs))
    finally:
        model.train(was_training)
    b = _GraphBuilder(recorder, owners(model), type(model).__name__)
    for t in inputs:
        node = t._data.node
        b.names[node.id] = b.unique(f"input/{node.name}")
        b.add(b.names[node.id], "IO Node", shapes=[node.shape], dtype=node.dtype)
    for node in recorder.graph.nodes:
        if node.kind == "op":
            b.op(node)
    for i, t in enumerate(o for o in outputs if isinstance(o, SymbolicTensor)):
        node = t._data.node
        b.add(b.unique(f"output/output.{i}"), "IO Node", [b.name_of(node, None)], shapes=[node.shape],
              dtype=node.dtype)
    if verbose:
        for n in b.nodes:
            print(f"{n.name} = {n.op}({', '.join(n.input)})")
    return GraphDef(node=b.nodes, versions=VersionDef(producer=22))
