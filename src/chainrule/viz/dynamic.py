"""Walk the dynamic graph behind tensors (their ``grad_fn`` chains) into a :class:`GraphView`.

The walk is iterative (graphs of 100k nodes are fine) and reads only what the graph records:

* an op node's output shape and value come from where they are saved: the root tensors, the
  saved inputs of the nodes that consume it (``OpNode.inputs``), its own saved output
  (``OpNode.out_data``), a custom Function's recorded metadata;
* a leaf's value and ``.grad`` from ``AccumulateGrad.variable``;
* an intermediate gradient from a tensor that called ``retain_grad()``, or from ``adjoints``
  (what :func:`chainrule.viz.explain_backward` observed each node receive).

After a ``backward()`` without ``retain_graph=True`` the saved tensors are freed, so the picture
then shows op names and leaves but no intermediate values (and fewer shapes).
"""

import numbers

import numpy as np

from ..autograd.function import FunctionNode
from ..autograd.graph import AccumulateGrad, OpNode
from ..tensor import Meta, Tensor
from .view import GraphView, ViewNode, format_number, small_array


def walk(root_nodes):
    """Every backward node reachable from ``root_nodes``, each once, producers before consumers.

    An iterative depth-first post-order that visits each node's inputs in order: the order in
    which a left-to-right interpreter would have evaluated the forward ops. No recursion, so
    graphs of any depth are fine.
    """
    order = []
    seen = set()
    for root in root_nodes:
        if root is None or root in seen:
            continue
        seen.add(root)
        stack = [(root, 0)]
        while stack:
            node, i = stack[-1]
            edges = node.edges
            n = len(edges)
            while i < n and (edges[i] is None or edges[i][0] in seen):
                i += 1
            if i < n:
                stack[-1] = (node, i + 1)
                child = edges[i][0]
                seen.add(child)
                stack.append((child, 0))
            else:
                stack.pop()
                order.append(node)
    return order


def op_title(node):
    """The forward op's name for a backward node: ``mul`` for MulBackward0, ``Square`` for SquareBackward."""
    if isinstance(node, OpNode):
        return node.op.name
    if isinstance(node, FunctionNode):
        return node.function.__name__
    name = node.name()
    for suffix in ("Backward0", "Backward"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def is_parameter(tensor):
    """A module parameter (``nn.Parameter`` or a subclass), told apart by its class name."""
    return any(cls.__name__ == "Parameter" for cls in type(tensor).__mro__)


def format_params(params, limit=40, write=repr):
    """An op's static attributes as label text: ``dim=(1,), keepdim=True`` (None/False left out, long
    values cut); ``write`` turns one value into text."""
    parts = []
    for key, value in params.items():
        if value is None or value is False:  # defaults such as dim=None, keepdim=False say nothing
            continue
        text = write(value)
        if len(text) > limit:
            text = text[: limit - 3] + "..."
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def recorded_outputs(order, roots=(), replay_limit=0):
    """``{node: {output_nr: (shape, dtype, array or None)}}`` for the nodes of ``order``.

    First from everywhere the graph records it (see the module docstring). Then, in ``order``
    (producers first), an op output still unknown is derived from its inputs with the op's own
    record: the shape by its ``infer`` rule, and, when it has at most ``replay_limit`` elements
    and every input value is known, the value by its ``forward``, from the leaves' current
    values. That recovers the intermediate values of a small expression whose ops saved nothing
    (``add`` needs no saved input), even after a backward freed the saved tensors.
    """
    outputs = {}

    def note(node, nr, shape, dtype, data=None):
        slot = outputs.setdefault(node, {})
        known = slot.get(nr)
        if known is None or (known[2] is None and data is not None):
            slot[nr] = (tuple(shape), dtype, data)

    for node in order:
        if isinstance(node, OpNode):
            if node.out_data is not None:
                note(node, 0, node.out_data.shape, node.out_data.dtype, node.out_data)
            inputs = node.inputs
            if inputs is None:
                continue
            for edge, a in zip(node.edges, inputs):
                if edge is None:
                    continue
                if isinstance(a, Tensor):
                    note(edge[0], edge[1], a._data.shape, a._data.dtype, a._data)
                elif isinstance(a, Meta):
                    note(edge[0], edge[1], a.shape, a.dtype)
        elif isinstance(node, FunctionNode):
            for nr, meta in enumerate(node.output_meta):
                if meta is not None:
                    note(node, nr, meta[0], meta[1])
            for edge, meta in zip(node.edges, node.input_meta):
                if edge is not None and meta is not None:
                    note(edge[0], edge[1], meta[0], meta[1])
    for t in roots:
        if t.grad_fn is not None:
            note(t.grad_fn, t._out_nr, t._data.shape, t._data.dtype, t._data)
    for node in order:
        if isinstance(node, OpNode):
            known = outputs.get(node, {}).get(0)
            if known is None or known[2] is None:
                _replay(node, outputs, note, replay_limit)
    return outputs


_UNKNOWN = object()


def _input_of(node, i, outputs):
    """Input ``i`` of an op node as (meta-or-constant, array-or-None), or _UNKNOWN."""
    edge = node.edges[i]
    if edge is not None:
        producer, nr = edge
        if isinstance(producer, AccumulateGrad):
            data = producer.variable._data
            return Meta(data.shape, data.dtype), data
        known = outputs.get(producer, {}).get(nr)
        if known is None:
            return _UNKNOWN
        return Meta(known[0], known[1]), known[2]
    if node.inputs is None:
        return _UNKNOWN  # freed: the constant inputs are gone
    a = node.inputs[i]
    if isinstance(a, Tensor):
        return Meta(a._data.shape, a._data.dtype), a._data
    if isinstance(a, Meta):
        return a, None
    return a, a  # a Python constant (a number, None, an index) is its own value


def _replay(node, outputs, note, limit):
    args = [_input_of(node, i, outputs) for i in range(len(node.edges))]
    if any(a is _UNKNOWN for a in args):
        return
    op, params = node.op, node.params or {}
    known = outputs.get(node, {}).get(0)
    if known is None:
        try:
            shape, dtype = op.infer(*[m for m, _ in args], **params)
        except Exception:  # noqa: BLE001 - a picture without this shape is still a picture
            return
        if shape is None or not all(isinstance(d, (int, np.integer)) for d in shape):
            return
        note(node, 0, shape, np.dtype(dtype))
        known = outputs[node][0]
    if limit <= 0 or int(np.prod(known[0], dtype=np.int64)) > limit or any(v is None for _, v in args):
        return
    try:
        with np.errstate(all="ignore"):
            value = np.asarray(op.forward(*[v for _, v in args], **params))
    except Exception:  # noqa: BLE001
        return
    if value.shape == tuple(known[0]):
        note(node, 0, value.shape, value.dtype, value.copy())


class _Walker:
    def __init__(self, params, show_values, show_grads, max_elements, show_accumulate, show_constants,
                 adjoints, precision):
        self.names = {}
        for name, t in (params or {}).items():
            if isinstance(t, Tensor):
                self.names.setdefault(id(t), name)
        self._keep = params  # the named tensors stay alive while ids are compared
        self.show_values = show_values
        self.show_grads = show_grads
        self.max_elements = max_elements
        self.show_accumulate = show_accumulate
        self.show_constants = show_constants
        self.adjoints = adjoints or {}
        self.precision = precision
        self.view = GraphView()
        self.node_ids = {}  # backward node -> id of the view node its consumers link from
        self.tensor_ids = {}  # id(tensor) -> view id consumers link from (leaves, constant tensors)
        self.leaf_ids = {}  # id(leaf tensor) -> id of its own view node
        self.count = 0

    def new_id(self):
        self.count += 1
        return f"n{self.count}"

    def small(self, data):
        return small_array(data, self.max_elements)

    # --- building the view --------------------------------------------------------------------
    def build(self, roots):
        order = walk([t.grad_fn for t in roots])  # producers before their consumers
        outputs = recorded_outputs(order, roots, self.max_elements if self.show_values else 0)
        pending_edges = []
        for node in order:
            if isinstance(node, AccumulateGrad):
                self.node_ids[node] = self.add_leaf(node.variable, node)
                continue
            vid = self.new_id()
            self.node_ids[node] = vid
            inputs = getattr(node, "inputs", None)
            for i, edge in enumerate(node.edges):
                if edge is not None:
                    label = f"out {edge[1]}" if edge[0].num_outputs > 1 else None
                    pending_edges.append((edge[0], vid, label))
                elif self.show_constants:
                    src = self.add_constant(node, i, inputs)
                    if src is not None:
                        self.view.add_edge(src, vid)
            self.add_op(node, vid, outputs.get(node, {}))
        for producer, dst, label in pending_edges:
            self.view.add_edge(self.node_ids[producer], dst, label)
        for t in roots:
            self.add_output(t)
        return self.view

    def add_op(self, node, vid, outs):
        shape = dtype = value = None
        details = []
        first = outs.get(0)
        if first is not None:
            shape, dtype = first[0], first[1]
            if self.show_values and first[2] is not None:
                value = self.small(first[2])
        for nr in sorted(outs):
            if nr > 0:
                details.append(f"out {nr}: {_shape_text(outs[nr][0])}")
        if isinstance(node, OpNode) and node.params:
            text = format_params(node.params)
            if text:
                details.insert(0, text)
        grad = None
        if self.show_grads:
            grad = self.intermediate_grad(node)
        self.view.add_node(ViewNode(
            id=vid, kind="op", title=op_title(node), shape=shape, dtype=_dtype_name(dtype), value=value,
            grad=grad, details=details, tooltip=node.name(), source=node,
        ))

    def intermediate_grad(self, node):
        adj = self.adjoints.get(node)
        if adj is not None:
            return self.small(adj)
        retained = node._retained
        if retained:
            ref = retained.get(0)
            t = ref() if ref is not None else None
            if t is not None and t.grad is not None:
                return self.small(t.grad._data)
        return None

    def add_leaf(self, variable, accumulate):
        known = self.tensor_ids.get(id(variable))
        if known is not None:
            return known
        vid = self.new_id()
        self.leaf_ids[id(variable)] = vid
        name = self.names.get(id(variable))
        kind = "parameter" if is_parameter(variable) else "leaf"
        grad = None
        if self.show_grads:
            if variable.grad is not None:
                grad = self.small(variable.grad._data)
            elif accumulate in self.adjoints:
                grad = self.small(self.adjoints[accumulate])
        self.view.add_node(ViewNode(
            id=vid, kind=kind, title=name if name is not None else kind,
            shape=tuple(variable._data.shape), dtype=_dtype_name(variable._data.dtype),
            value=self.small(variable._data) if self.show_values else None, grad=grad,
            tooltip=f"leaf tensor{'' if name is None else ' ' + name} (requires_grad=True)", source=variable,
        ))
        out = vid
        if self.show_accumulate and accumulate is not None:
            out = self.new_id()
            self.view.add_node(ViewNode(id=out, kind="accumulate", title="AccumulateGrad",
                                        tooltip="adds the incoming gradient into .grad", source=accumulate))
            self.view.add_edge(vid, out)
        self.tensor_ids[id(variable)] = out
        return out

    def add_constant(self, node, i, inputs):
        """A view node for input ``i`` of ``node`` that needs no gradient (None for non-values)."""
        if inputs is None and isinstance(node, FunctionNode):
            meta = node.input_meta[i]
            if meta is None:
                return None
            a = Meta(*meta)
        elif inputs is None:
            return None  # saved inputs were freed by a backward without retain_graph
        else:
            a = inputs[i]
        if isinstance(a, Tensor):
            known = self.tensor_ids.get(id(a))
            if known is not None:
                return known
            vid = self.new_id()
            self.tensor_ids[id(a)] = vid
            self.view.add_node(ViewNode(
                id=vid, kind="constant", title=self.names.get(id(a), "constant"), shape=tuple(a._data.shape),
                dtype=_dtype_name(a._data.dtype), value=self.small(a._data) if self.show_values else None,
                tooltip="input that needs no gradient", source=a,
            ))
            return vid
        if isinstance(a, Meta):
            vid = self.new_id()
            self.view.add_node(ViewNode(id=vid, kind="constant", title="constant", shape=tuple(a.shape),
                                        dtype=_dtype_name(a.dtype), tooltip="input that needs no gradient",
                                        source=a))
            return vid
        if isinstance(a, numbers.Number) and not isinstance(a, bool):
            vid = self.new_id()
            self.view.add_node(ViewNode(id=vid, kind="constant", title=format_number(a, self.precision),
                                        tooltip="Python number", source=None))
            return vid
        return None  # an index, None (an absent clamp bound), ...: shown in the op's parameters

    def add_output(self, t):
        name = self.names.get(id(t))
        vid = self.new_id()
        grad = None
        if self.show_grads:
            if t.grad is not None and (t.grad_fn is None or t.retains_grad):
                grad = self.small(t.grad._data)
            elif t.grad_fn is not None and ("root", id(t)) in self.adjoints:
                grad = self.small(self.adjoints[("root", id(t))])
        self.view.add_node(ViewNode(
            id=vid, kind="output", title=name if name is not None else "output", shape=tuple(t._data.shape),
            dtype=_dtype_name(t._data.dtype), value=self.small(t._data) if self.show_values else None,
            grad=grad, tooltip="the tensor passed to draw()", source=t,
        ))
        if t.grad_fn is not None:
            fn = t.grad_fn
            label = f"out {t._out_nr}" if fn.num_outputs > 1 else None
            self.view.add_edge(self.node_ids[fn], vid, label)
        elif id(t) in self.leaf_ids:
            self.view.add_edge(self.leaf_ids[id(t)], vid)


def _dtype_name(dtype):
    if dtype is None:
        return None
    return np.dtype(dtype).name


def _shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def view_of_tensors(roots, *, params=None, show_values=True, show_grads=True, max_elements=6,
                    show_accumulate=True, show_constants=True, adjoints=None, precision=4):
    """The :class:`GraphView` of the graph behind ``roots`` (a list of tensors)."""
    for t in roots:
        if not isinstance(t, Tensor):
            raise TypeError(f"draw() expects tensors (or a list of them); got {type(t).__name__}")
    walker = _Walker(params, show_values, show_grads, max_elements, show_accumulate, show_constants,
                     adjoints, precision)
    return walker.build(roots)
