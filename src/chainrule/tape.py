"""Nodes of the backward graph (what ``tensor.grad_fn`` points to).

A node stands for one recorded op. ``next_functions`` holds, per input, the edge
``(node, output_nr)`` its gradient flows into, or ``(None, 0)`` for inputs that need none.
Leaves that require grad end in an :class:`AccumulateGrad` node that adds into ``.grad``.
Saved tensors are released by the engine after a backward without ``retain_graph``.
"""

import os
import traceback
import weakref

from ._hooks import RemovableHandle
from ._mode import state
from .errors import GraphError
from .tensor import Meta, Tensor, _wrap

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


_new_meta = tuple.__new__  # Meta's own __new__ without its Python frame: one per unsaved input
_SHOWN = weakref.WeakKeyDictionary()  # node -> (name, edges) of the user-level function whose result it made


def show_as(node, name, edges):
    """Present ``node`` as the one node of a user-level function, as PyTorch shows it: ``name()`` and
    ``next_functions`` report ``name`` and ``edges`` (the function's inputs). Only what users read
    changes: the engine still runs ``node`` and the primitive nodes behind it."""
    _SHOWN[node] = (name, edges)


class Node:
    """Base class: edges, tensor hooks on its outputs, and the bookkeeping the engine needs."""

    __slots__ = ("edges", "needs", "_tensor_hooks", "_retained", "_post_hooks", "_stack", "__weakref__")
    num_outputs = 1

    def _init_node(self, edges):
        self.edges = edges
        self.needs = [e is not None for e in edges]  # which inputs get a gradient
        self._tensor_hooks = None  # {output_nr: [hook, ...]} registered through Tensor.register_hook
        self._retained = None  # {output_nr: weakref to the tensor that called retain_grad()}
        self._post_hooks = None
        self._stack = _user_stack() if state.anomaly else None

    @property
    def next_functions(self):
        shown = _SHOWN.get(self)
        edges = self.edges if shown is None else shown[1]
        return tuple(e if e is not None else (None, 0) for e in edges)

    def name(self):
        raise NotImplementedError

    def register_hook(self, fn):
        """A hook ``fn(grad_inputs, grad_outputs)`` run after this node computed its input gradients."""
        if self._post_hooks is None:
            self._post_hooks = []
        self._post_hooks.append(fn)
        return RemovableHandle(self._post_hooks, fn)

    def _add_tensor_hook(self, output_nr, fn):
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
        hooks = self._tensor_hooks.setdefault(output_nr, [])
        hooks.append(fn)
        return RemovableHandle(hooks, fn)

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"


class OpNode(Node):
    """The backward of one primitive op: runs the op's vjp rules on the saved inputs and output."""

    __slots__ = ("op", "params", "inputs", "versions", "out_data", "out_version", "out_tangent", "saved_any")

    def __init__(self, op, args, params, result, edges, needs):
        """``edges``/``needs``: per input, where its gradient goes and whether it wants one (the tape
        mode computes both in the pass that decides to record). Unsaved tensor inputs are kept as
        their shape and dtype only."""
        saves = op.saves
        if type(saves) is dict:
            saves = _saved_inputs(saves, needs)
        inputs = list(args)
        versions = [None] * len(args)
        saved_any = op.saves_output
        i = 0
        for a in args:
            if isinstance(a, Tensor):
                if saves is None or i in saves:
                    versions[i] = a._version[0]
                    saved_any = True
                else:
                    data = a._data
                    inputs[i] = _new_meta(Meta, (data.shape, data.dtype))
            i += 1
        self.edges = edges
        self.needs = needs
        self._tensor_hooks = self._retained = self._post_hooks = None
        self._stack = _user_stack() if state.anomaly else None
        self.op = op
        self.params = params
        self.inputs = inputs
        self.versions = versions
        self.saved_any = saved_any
        if op.saves_output:
            self.out_data = result._data
            self.out_version = (result._version, result._version[0])
            self.out_tangent = result._fw  # forward-over-reverse needs the saved output's tangent
        else:
            self.out_data = self.out_version = self.out_tangent = None

    def name(self):
        shown = _SHOWN.get(self)
        return self.op.grad_name if shown is None else shown[0]

    @property
    def next_functions(self):
        listed = self.op.listed_inputs
        if listed is None or self in _SHOWN:
            return Node.next_functions.fget(self)
        return tuple(self.edges[i] or (None, 0) for i in listed)

    def input_metadata(self, i):
        a = self.inputs[i]
        return (a._data.shape, a._data.dtype) if isinstance(a, Tensor) else a  # a Meta is (shape, dtype)

    def unpack(self):
        """The saved inputs and output, after checking that nothing modified them in place."""
        if self.inputs is None:
            raise GraphError(
                f"Trying to backward through the graph a second time (through {self.name()}), or to "
                "read saved tensors after they were freed. Saved tensors are freed by backward() "
                "unless you pass retain_graph=True to the first backward (or autograd.grad) call."
            )
        for a, v in zip(self.inputs, self.versions):
            if v is not None and a._version[0] != v:
                raise _modified_error(self, a._data.shape, a._data.dtype, a._version[0], v, "an input")
        out = None
        if self.out_data is not None:
            box, v = self.out_version
            if box[0] != v:
                raise _modified_error(self, self.out_data.shape, self.out_data.dtype, box[0], v, "output 0")
            out = _wrap(self.out_data)
            out.grad_fn = self
            out._requires_grad = True
            out._fw = self.out_tangent
        return out, self.inputs

    def apply(self, grads, needed):
        out, inputs = self.unpack()
        g = grads[0]
        vjp = self.op.vjp
        if type(vjp) is tuple:
            if len(vjp) == 1:  # unary ops: no list comprehension
                return [vjp[0](g, out, *inputs, **self.params) if needed[0] else None]
            return [
                rule(g, out, *inputs, **self.params) if need and rule is not None else None
                for rule, need in zip(vjp, needed)  # a None rule: that input gets no gradient
            ]
        return vjp(g, out, *inputs, **self.params)

    def release(self):
        if self.saved_any:  # a node that saved no tensor can run again, as in PyTorch
            self.inputs = None
            self.out_data = self.out_tangent = None


class AccumulateGrad(Node):
    """Sink for a leaf tensor's gradient: runs the leaf's hooks, then adds into ``leaf.grad``.

    Hooks registered on the node itself (``register_hook``) run after the gradient was added, with
    ``grad_outputs = (incoming gradient,)``, as in PyTorch: DistributedDataParallel starts reducing a
    parameter's gradient from there."""

    __slots__ = ("variable",)

    def __init__(self, variable):  # made once per leaf per graph: kept short
        self.edges = ()
        self.needs = []
        self._tensor_hooks = self._retained = self._post_hooks = None
        self._stack = _user_stack() if state.anomaly else None
        self.variable = variable

    def name(self):
        return "AccumulateGrad"

    def accumulate(self, grad, create_graph, sole_owner=False):
        """Add ``grad`` into ``.grad`` with PyTorch's semantics: into the existing ``.grad`` in place (a
        reference held to it sees the sum), or out of place with ``create_graph`` (the sum is then
        differentiable). A first gradient nothing else refers to (``sole_owner``) is adopted as it
        is; any other is copied, so ``.grad`` never aliases another tensor's memory."""
        accumulate_into(self.variable, grad, create_graph, sole_owner)


def accumulate_into(var, grad, create_graph, sole_owner=False):
    """``var.grad += grad`` as PyTorch does it (see ``AccumulateGrad.accumulate``)."""
    old = var.grad
    if old is None:
        var.grad = grad if create_graph or sole_owner else _wrap(grad._data.copy())
    elif create_graph:
        var.grad = old + grad
    elif old._data.shape == grad._data.shape and getattr(old._data.flags, "writeable", True):  # (CuPy: no flag)
        data = old._data
        data += grad._data
        old._version[0] += 1
    else:  # a read-only or broadcast .grad the user assigned: replaced by the sum
        var.grad = _wrap(old._data + grad._data)


def _saved_inputs(saves, needs):
    """Which inputs a node keeps when ``saves`` maps each input to the inputs its gradient rule
    reads: only what the rules of the inputs that need a gradient read."""
    if len(needs) == 2:  # binary ops (mul, matmul, linear): no set needed
        return saves[0] if not needs[1] else saves[1] if not needs[0] else saves[0] + saves[1]
    kept = set()
    for i, need in enumerate(needs):
        if need:
            kept.update(saves[i])
    return kept


def _user_stack():
    """The creation traceback without chainrule's own frames, so it ends at the user's line."""
    frames = traceback.extract_stack()[:-2]
    return traceback.format_list([f for f in frames if not f.filename.startswith(_PACKAGE_DIR)])


def _modified_error(node, shape, dtype, now, expected, role):
    return GraphError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{dtype} {list(shape)}], which is {role} of {node.name()}, "
        f"is at version {now}; expected version {expected} instead. Hint: clone() the tensor before "
        "modifying it in place, or use the out-of-place op."
    )

