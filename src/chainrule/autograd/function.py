"""User-defined differentiable functions: ``autograd.Function`` with PyTorch's API.

``forward(ctx, *args)`` runs without recording; the outputs get one backward node whose ``apply``
calls ``backward(ctx, *grad_outputs)``. The engine treats it like any primitive node (shape
checks, un-broadcasting, hooks), and ``jvp(ctx, *tangents)`` serves forward mode.
"""

import weakref

from .._mode import no_grad, state
from ..errors import GraphError
from ..ops.creation import filled_like
from ..ops.op import grad_edge
from ..tape import Node
from ..tensor import Tensor, _wrap


class FunctionCtx:
    """The ``ctx`` passed to forward and backward: saved tensors and flags."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._to_save = ()
        self._saved = None
        self._non_differentiable = ()
        self._dirty = ()
        self._node = None

    def save_for_backward(self, *tensors):
        self._to_save = tensors

    def save_for_forward(self, *tensors):
        self._to_save_forward = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable = tensors

    def mark_dirty(self, *tensors):
        self._dirty = tensors

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self):
        """The tensors given to save_for_backward, checked against in-place changes since."""
        if self._saved is None:
            raise GraphError(
                "Trying to backward through the graph a second time, or to access saved tensors after "
                "they have already been freed. Specify retain_graph=True on the first backward call."
            )
        node = self._node() if self._node is not None else None
        out = []
        for entry in self._saved:
            if entry is None:
                out.append(None)
                continue
            tensor, box, version, output_nr = entry
            if box[0] != version:
                data = tensor if output_nr is not None else tensor._data
                raise GraphError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{data.dtype} {list(data.shape)}], saved by "
                    f"{node.name() if node else 'a custom Function'}, is at version {box[0]}; expected "
                    f"version {version} instead."
                )
            if output_nr is not None:  # saved outputs are rebuilt, so the node does not own its output
                tensor = _wrap(tensor)
                tensor.grad_fn, tensor._out_nr, tensor._requires_grad = node, output_nr, True
            out.append(tensor)
        return tuple(out)


class FunctionNode(Node):
    """Backward node of one ``Function.apply`` call."""

    __slots__ = ("function", "ctx", "input_meta", "output_meta", "num_outputs")

    def __init__(self, function, ctx, args, outputs):
        self._init_node(tuple(grad_edge(a) if isinstance(a, Tensor) and a._requires_grad else None for a in args))
        self.function = function
        self.ctx = ctx
        self.input_meta = [(a._data.shape, a._data.dtype) if isinstance(a, Tensor) else None for a in args]
        self.output_meta = [(o._data.shape, o._data.dtype) if isinstance(o, Tensor) else None for o in outputs]
        self.num_outputs = len(outputs)

    def name(self):
        return f"{self.function.__name__}Backward"

    def input_metadata(self, i):
        return self.input_meta[i]

    def output_metadata(self, nr):
        return self.output_meta[nr]

    def apply(self, grads, needed):
        result = self.function.backward(self.ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        n = len(self.edges)
        if len(result) < n or any(g is not None for g in result[n:]):
            raise GraphError(f"function {self.name()} returned an incorrect number of gradients "
                             f"(expected {n}, got {len(result)})")
        return list(result[:n])

    def release(self):
        if self.ctx._to_save:  # like PyTorch, a node that saved nothing can run again
            self.ctx._saved = None


class Function:
    """Subclass with ``@staticmethod forward(ctx, *args)`` and ``backward(ctx, *grads)``; call ``apply``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must implement forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must implement backward(ctx, *grad_outputs)")

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` through the modes: evaluated or traced, then taped and given tangents."""
        outputs, is_tuple = state.top.apply_function(FunctionCall(cls, args, kwargs))
        return tuple(outputs) if is_tuple else outputs[0]


class FunctionCall:
    """One ``Function.apply`` as it passes through the interpreter stack: the bottom mode runs
    ``forward`` (:meth:`run_forward`), the tape mode records the backward node (:meth:`record`),
    forward mode calls the user's ``jvp`` (:meth:`propagate_tangents`)."""

    __slots__ = ("cls", "args", "kwargs", "ctx", "differentiable")

    def __init__(self, cls, args, kwargs):
        self.cls = cls
        self.args = args
        self.kwargs = kwargs
        self.ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a._requires_grad for a in args))

    def run_forward(self):
        """``(outputs, is_tuple)``: forward run without recording; an output that is an input
        becomes a new tensor over the same memory (as PyTorch's view)."""
        with no_grad():
            raw = self.cls.forward(self.ctx, *self.args, **self.kwargs)
        is_tuple = isinstance(raw, tuple)
        raw = raw if is_tuple else (raw,)
        non_diff = {id(t) for t in self.ctx._non_differentiable}
        self.differentiable = [id(o) not in non_diff for o in raw]  # judged before inputs are re-wrapped
        self.ctx._saved = [_saved_entry(t, ()) for t in self.ctx._to_save]  # what a jvp reads
        return [_fresh(o, self.args) for o in raw], is_tuple

    def record(self, result, grad_enabled):
        """Give the float, differentiable outputs one backward node; keep what ctx saved."""
        outputs, _ = result
        ctx = self.ctx
        if grad_enabled and any(ctx.needs_input_grad):
            node = FunctionNode(self.cls, ctx, self.args, outputs)
            for nr, o in enumerate(outputs):
                if isinstance(o, Tensor) and o._data.dtype.kind == "f" and self.differentiable[nr]:
                    o.grad_fn, o._out_nr, o._requires_grad = node, nr, True
            ctx._node = weakref.ref(node)
            ctx._saved = [_saved_entry(t, outputs) for t in ctx._to_save]  # saved outputs get the node

    def propagate_tangents(self, result, tangents):
        """Forward mode: the outputs' tangents from the user's ``jvp(ctx, *input_tangents)``."""
        if all(t is None for t in tangents):
            return
        cls = self.cls
        if cls.jvp is Function.jvp:
            raise GraphError(f"Function {cls.__name__} has no jvp staticmethod, which forward-mode AD needs")
        filled = [t if t is not None or not isinstance(a, Tensor) else filled_like(a, 0)
                  for a, t in zip(self.args, tangents)]
        out_tangents = cls.jvp(self.ctx, *filled)
        if not isinstance(out_tangents, tuple):
            out_tangents = (out_tangents,)
        for o, t in zip(result[0], out_tangents):
            if isinstance(o, Tensor) and t is not None:
                o._fw = (state.fw_epoch, t)


def _fresh(output, args):
    """An output that is one of the inputs becomes a new tensor over the same memory (as PyTorch's view)."""
    if isinstance(output, Tensor) and any(output is a for a in args):
        t = _wrap(output._data)
        t._version = output._version
        return t
    return output


def _saved_entry(tensor, outputs):
    if tensor is None:
        return None
    for nr, o in enumerate(outputs):
        if tensor is o:
            return (tensor._data, tensor._version, tensor._version[0], nr)
    return (tensor, tensor._version, tensor._version[0], None)
