"""The chain rule step by step: what the engine does at each node of a real backward pass.

:func:`explain_backward` runs the engine itself (with ``retain_graph=True``, accumulating
nothing) and watches it: a post-hook on every node sees the gradient the node received and the
gradients it sent to its inputs; a hook on every ``AccumulateGrad`` sees what reaches each leaf.
No gradient is computed here and no derivative is implemented here: the "local derivative"
column only *describes* each op's rule, from the table below. (The "value" column shows forward
values the graph saved, or replays small ones with the op's own ``forward``.)

For ``y = ln(x1) + x1*x2 - sin(x2)`` at (2, 5) the steps are the reverse sweep of the classic
adjoint table (Griewank & Walther; Baydin et al., "Automatic differentiation in machine
learning: a survey"), in the order the engine runs them::

    x1 = cr.tensor(2.0, requires_grad=True); x2 = cr.tensor(5.0, requires_grad=True)
    print(cr.viz.explain_backward(cr.log(x1) + x1 * x2 - cr.sin(x2), names={"x1": x1, "x2": x2}))

    step  node            computes      value     received  local derivative     sends
    ----  --------------  ------------  --------  --------  -------------------  ---------------
       1  SubBackward0    v5 = v3 - v4  11.6521   1         d/dv3 = 1            v3 <- 1
                                                            d/dv4 = -1           v4 <- -1
       2  SinBackward0    v4 = sin(x2)  -0.958924 -1        d/dx2 = cos(x2)      x2 <- -0.283662
       ...
       7  AccumulateGrad  x1 (leaf)     2         5.5       x1.grad += received

    gradients: x1 = 5.5, x2 = 1.71634
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..autograd.engine import _conform, _make_grads, run_backward
from ..autograd.function import FunctionNode
from ..autograd.graph import AccumulateGrad, OpNode
from ..errors import GraphError
from ..ops.op import grad_edge
from ..tensor import Meta, Tensor
from .dynamic import format_params, op_title, recorded_outputs, walk
from .view import format_array, format_number, format_shape


def describe_rule(node, input_names):
    """The local derivative of one node, one text per input: the op's own ``explain`` declaration
    ({0}, {1}, ... name its inputs), the user's backward for a custom Function, or a generic text."""
    if isinstance(node, FunctionNode):
        return [f"{node.function.__name__}.backward(ctx, received)[{i}]" for i in range(len(input_names))]
    entry = node.op.explain if isinstance(node, OpNode) else None
    out = []
    for i, name in enumerate(input_names):
        if isinstance(entry, dict):
            template = entry["*"]
        elif entry is not None and i < len(entry):
            template = entry[i]
        else:
            template = f"vjp {i} of {op_title(node)}"
        out.append(template.format(*input_names, i=name))
    return out


# --- the records -------------------------------------------------------------------------------
@dataclass
class GradientSent:
    """A gradient one node sent along one input edge (after un-broadcasting, as the engine sends it)."""

    input: int
    to: str
    grad: np.ndarray


@dataclass
class BackwardStep:
    """One node the engine ran, in execution order.

    ``name`` is the value the node stands for (``v3`` for an op's output, a leaf's name);
    ``computes`` how the forward pass computed it; ``value`` its forward value (when the graph
    saved it); ``received`` the gradient of the loss with respect to it (the upstream gradient);
    ``rules`` the local derivative for each input (described by the op's ``explain`` declaration); ``sends`` the
    gradients passed on. A leaf's step (``node == "AccumulateGrad"``) sends nothing: what it
    received is what accumulates into its ``.grad``.
    """

    index: int
    node: str
    op: str | None
    name: str
    computes: str
    value: np.ndarray | None
    received: object
    rules: list = field(default_factory=list)
    sends: list = field(default_factory=list)
    source: object = field(default=None, repr=False, compare=False)

    @property
    def is_leaf(self):
        return self.node == "AccumulateGrad"


class BackwardExplanation(list):
    """The list of :class:`BackwardStep`; printing it prints an aligned table.

    ``grads`` maps each differentiated input's name to its gradient (what accumulates into its
    ``.grad`` in a real backward).
    """

    def __init__(self, steps=(), grads=None, precision=6, max_elements=6):
        super().__init__(steps)
        self.grads = grads or {}
        self.precision = precision
        self.max_elements = max_elements

    def table(self):
        return format_table(self, self.precision, self.max_elements)

    def __str__(self):
        return self.table()

    __repr__ = __str__


# --- naming the values of the graph -----------------------------------------------------------
class _Names:
    """Names for the values of a graph: given names, small scalar leaves by value, v1, v2, ..."""

    def __init__(self, order, given, precision):
        self.precision = precision
        self.given = {id(t): name for name, t in given.items()}
        self._keep = given
        self.leaf = {}
        self.node = {}
        count = 0
        by_value = {}
        leaves = [n.variable for n in order if isinstance(n, AccumulateGrad)]
        for t in leaves:
            if id(t) not in self.given and t._data.size == 1:
                by_value.setdefault(format_number(t._data.item(), precision), []).append(t)
        constants = set()  # a leaf is named by its value only if no constant reads the same
        for n in order:
            inputs = getattr(n, "inputs", None)
            if inputs is not None:
                constants.update(self.of_constant(a) for e, a in zip(n.edges, inputs) if e is None)
        for text, ts in by_value.items():
            if len(ts) == 1 and text not in given and text not in constants:
                self.leaf[id(ts[0])] = text
        unnamed = 0
        for t in leaves:
            if id(t) in self.given:
                self.leaf[id(t)] = self.given[id(t)]
            elif id(t) not in self.leaf:
                unnamed += 1
                self.leaf[id(t)] = f"leaf{unnamed}"
        for n in order:
            if not isinstance(n, AccumulateGrad):
                count += 1
                self.node[n] = f"v{count}"

    def of_edge(self, edge):
        node, nr = edge
        if isinstance(node, AccumulateGrad):
            return self.leaf[id(node.variable)]
        name = self.node.get(node, "?")
        return f"{name}[{nr}]" if node.num_outputs > 1 else name

    def of_constant(self, a):
        if isinstance(a, Tensor):
            if id(a) in self.given:
                return self.given[id(a)]
            if a._data.size == 1:
                return format_number(a._data.item(), self.precision)
            return f"const{format_shape(a._data.shape)}"
        if isinstance(a, Meta):
            return f"const{format_shape(a.shape)}"
        if isinstance(a, (int, float, complex)) and not isinstance(a, bool):
            return format_number(a, self.precision)
        return repr(a)

    def inputs_of(self, node):
        inputs = getattr(node, "inputs", None)
        names = []
        for i, edge in enumerate(node.edges):
            if edge is not None:
                names.append(self.of_edge(edge))
            elif inputs is not None and i < len(inputs):
                names.append(self.of_constant(inputs[i]))
            else:
                names.append(f"input{i}")
        return names


def _computes(node, name, inputs):
    title = op_title(node)
    params = getattr(node, "params", None) or {}
    infix = node.op.infix if isinstance(node, OpNode) and not format_params(params) else None
    if infix and len(inputs) == 2:
        return f"{name} = {inputs[0]} {infix} {inputs[1]}"
    if infix and len(inputs) == 1:
        return f"{name} = {infix}{inputs[0]}"
    text = format_params(params, limit=30)
    return f"{name} = {title}({', '.join(list(inputs) + ([text] if text else []))})"


# --- running the engine -----------------------------------------------------------------------
def explain_backward(loss, *, inputs=None, names=None, gradient=None, precision=6, max_elements=6):
    """Run backward from ``loss`` and return every step the engine took, in its order.

    ``inputs``: the tensors to differentiate with respect to (a list, or a dict naming them);
    by default every leaf that requires grad. ``names``: a dict ``{name: tensor}`` naming
    values in the table (``dict(model.named_parameters())`` works). ``gradient``: the gradient
    to start from when ``loss`` is not a scalar.

    The graph is not consumed (``retain_graph=True``) and no ``.grad`` changes: not the leaves'
    (nothing accumulates, as in ``autograd.grad``) nor those of tensors that called
    ``retain_grad()``. Hooks registered with ``Tensor.register_hook`` on intermediate tensors do
    run, as in any backward pass. The graph must still hold its saved tensors: call this
    before ``loss.backward()``, or after ``loss.backward(retain_graph=True)``.
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"explain_backward expects a tensor, got {type(loss).__name__}")
    if not loss.requires_grad:
        raise GraphError("explain_backward: the tensor does not require grad, so there is no backward pass "
                         "to explain (did you forget requires_grad=True, or run it under no_grad?)")
    root_grads = _make_grads([loss], None if gradient is None else [gradient])
    root_node = grad_edge(loss)[0]
    order = walk([root_node])  # evaluation order: v1, v2, ... are numbered along it
    _check_not_freed(order)

    given = dict(names or {})
    if inputs is None:
        targets = [n.variable for n in order if isinstance(n, AccumulateGrad)]
    elif isinstance(inputs, Mapping):
        given.update(inputs)
        targets = list(inputs.values())
    else:
        targets = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    naming = _Names(order, given, precision)
    outputs = recorded_outputs(order, [loss], max_elements)

    needed = _leading_to({grad_edge(t)[0] for t in targets
                          if t.requires_grad}, order)

    steps = []
    handles = []
    for node in order:
        if isinstance(node, AccumulateGrad):
            handles.append(node._add_tensor_hook(0, _leaf_observer(node, steps, naming)))
        else:
            handles.append(node.register_hook(_op_observer(node, steps, naming, needed, outputs)))
    retained = [(n, n._retained) for n in order if n._retained is not None]
    for n, _ in retained:
        n._retained = None  # retain_grad() tensors keep their .grad
    try:
        results = run_backward([loss], root_grads, True, False, targets)
    finally:
        for h in handles:
            h.remove()
        for n, r in retained:
            n._retained = r

    grads = {}
    for t, g in zip(targets, results):
        name = naming.given.get(id(t)) or naming.leaf.get(id(t)) or (
            naming.node.get(t.grad_fn) if t.grad_fn is not None else None) or f"input{len(grads)}"
        grads[name] = None if g is None else g._data.copy()
    return BackwardExplanation(steps, grads, precision, max_elements)


def _leading_to(targets, order):
    """The nodes of ``order`` from which a target is reachable: the ones whose gradients are used."""
    result = set()
    for node in order:  # producers come first, so each node's inputs are decided before it
        if node in targets or any(e is not None and e[0] in result for e in node.edges):
            result.add(node)
    return result


def _check_not_freed(order):
    for node in order:
        freed = (isinstance(node, OpNode) and node.inputs is None) or (
            isinstance(node, FunctionNode) and node.ctx._to_save and node.ctx._saved is None)
        if freed:
            raise GraphError(
                f"explain_backward: the saved tensors of {node.name()} were already freed by a backward pass. "
                "Call explain_backward before loss.backward(), or call loss.backward(retain_graph=True)."
            )


def _copy(g):
    return None if g is None else g._data.copy()


def _op_observer(node, steps, naming, needed, outputs):
    def observe(grad_inputs, grad_outputs):
        names = naming.inputs_of(node)
        sends = []
        for i, edge in enumerate(node.edges):
            if edge is None or edge[0] not in needed or i >= len(grad_inputs) or grad_inputs[i] is None:
                continue
            sends.append(GradientSent(i, naming.of_edge(edge), _conform(node, i, grad_inputs[i])._data.copy()))
        differentiable = [i for i, e in enumerate(node.edges) if e is not None]
        rules = describe_rule(node, names)
        name = naming.node[node]
        out = outputs.get(node, {}).get(0)
        received = _copy(grad_outputs[0]) if len(grad_outputs) == 1 else tuple(_copy(g) for g in grad_outputs)
        steps.append(BackwardStep(
            index=len(steps) + 1, node=node.name(), op=op_title(node), name=name,
            computes=_computes(node, name, names), value=None if out is None or out[2] is None else out[2].copy(),
            received=received, rules=[rules[i] for i in differentiable], sends=sends, source=node,
        ))

    return observe


def _leaf_observer(node, steps, naming):
    def observe(grad):
        name = naming.leaf[id(node.variable)]
        steps.append(BackwardStep(
            index=len(steps) + 1, node="AccumulateGrad", op=None, name=name, computes=f"{name} (leaf)",
            value=node.variable._data.copy(), received=_copy(grad), rules=[f"{name}.grad += received"],
            source=node,
        ))

    return observe


# --- the table ---------------------------------------------------------------------------------
def _cell(array, precision, max_elements):
    if array is None:
        return ""
    if isinstance(array, tuple):
        return "(" + ", ".join(_cell(a, precision, max_elements) for a in array) + ")"
    array = np.asarray(array)
    if array.size > max_elements:
        return f"<{format_shape(array.shape)} {array.dtype.name}>"
    return " ".join(line.strip() for line in format_array(array, precision).split("\n"))


def format_table(steps, precision=6, max_elements=6):
    """An aligned text table of the steps (one line per input of each step), then the gradients."""
    header = ["step", "node", "computes", "value", "received", "local derivative", "sends"]
    rows = []
    for s in steps:
        sends = [f"{g.to} <- {_cell(g.grad, precision, max_elements)}" for g in s.sends]
        extra = max(len(s.rules), len(sends), 1)
        for k in range(extra):
            first = k == 0
            rows.append([
                str(s.index) if first else "",
                s.node if first else "",
                s.computes if first else "",
                _cell(s.value, precision, max_elements) if first else "",
                _cell(s.received, precision, max_elements) if first else "",
                s.rules[k] if k < len(s.rules) else "",
                sends[k] if k < len(sends) else "",
            ])
    widths = [max([len(header[c])] + [len(r[c]) for r in rows]) for c in range(len(header))]
    right = {0}

    def line(cells):
        parts = [cells[c].rjust(widths[c]) if c in right else cells[c].ljust(widths[c]) for c in range(len(cells))]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(r) for r in rows)
    grads = getattr(steps, "grads", None)
    if grads:
        out.append("")
        out.append("gradients: " + ", ".join(f"{name} = {_cell(g, precision, max_elements)}"
                                             for name, g in grads.items()))
    return "\n".join(out)
