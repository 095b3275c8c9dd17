"""Composite functions: a user-level function built from primitives that shows as one backward node.

PyTorch users read and walk ``grad_fn`` (``loss.grad_fn`` is ``MseLossBackward0``, its
``next_functions`` lead to the layer's ``AddmmBackward0``). A chainrule function such as
``F.mse_loss`` is a composition of primitives, each recording its own node; ``@composite("MseLoss")``
groups them: the function runs on aliases of its tensor inputs (new leaves sharing their data,
version counters and tangents), so its nodes form a closed subgraph, and the result gets one
:class:`CompositeNode` whose edges are the real inputs'. Its backward runs the engine over that
subgraph, so every primitive keeps its one definition, ``create_graph`` records as usual (double
backward: a :class:`Boundary` links the inner nodes to the real inputs), and forward mode sees the
primitives themselves. Static graphs record the primitives without grouping (their tensors are
graph values, not nodes a user walks).
"""

import functools

import numpy as np

from .._mode import state
from ..errors import GraphError
from ..ops.op import grad_edge
from ..tape import Node, _user_stack
from ..tensor import Tensor, _wrap
from .engine import run_backward

__all__ = ["composite", "CompositeNode", "Boundary"]


class CompositeNode(Node):
    """The backward of a composite function: the engine run over its inner subgraph, from ``root`` down
    to the ``boundaries`` (one per input; None where no gradient is needed)."""

    __slots__ = ("label", "root", "boundaries")
    num_outputs = 1

    def __init__(self, label, root, boundaries):
        self._init_node(tuple(b.outer if b is not None else None for b in boundaries))
        self.label = label
        self.root = root  # a data-less tensor carrying the inner output's grad_fn
        self.boundaries = boundaries

    def name(self):
        return self.label

    def input_metadata(self, i):
        return self.boundaries[i].metadata

    def apply(self, grads, needed):
        if self.root is None:
            raise GraphError(
                f"Trying to backward through the graph a second time (through {self.label}), or to read saved "
                "tensors after they were freed. Pass retain_graph=True to the first backward (or autograd.grad) call."
            )
        cut = [b for b in self.boundaries if b is not None]
        for b, need in zip(self.boundaries, needed):  # the engine stops at the boundaries, which keep what arrives
            if b is not None:
                b.edges, b.needs, b.captured = (None,), [need], None
        try:
            run_backward([self.root], [grads[0]], True, state.grad_enabled)
            return [b.captured if need else None for b, need in zip(self.boundaries, needed)]
        finally:
            for b in cut:
                b.edges, b.needs, b.captured = (b.outer,), [True], None

    def release(self):
        self.root = self.boundaries = None


class Boundary(Node):
    """Where a composite's inner subgraph meets its real input: passes the gradient on to ``outer``.

    While the composite's own backward runs, its edge is cut (that run stays inside) and it keeps the
    gradient that arrives (``captured``); for any other pass, such as a double backward through a
    gradient the inner nodes recorded, the edge is in place."""

    __slots__ = ("outer", "metadata", "captured")

    def __init__(self, t):  # one per input of each call: kept short
        self.outer = grad_edge(t)
        self.edges = (self.outer,)
        self.needs = [True]
        self._tensor_hooks = self._retained = self._post_hooks = self.captured = None
        self._stack = _user_stack() if state.anomaly else None
        self.metadata = (t._data.shape, t._data.dtype)

    def name(self):
        return "CompositeInput"

    def input_metadata(self, i):
        return self.metadata

    def apply(self, grads, needed):
        self.captured = grads[0]
        return grads

    def release(self):  # it saves nothing
        pass


_NO_DATA = np.empty(0)


def _at(node):
    """A data-less tensor whose place in the graph is output 0 of ``node``."""
    t = _wrap(_NO_DATA)
    t.grad_fn, t._requires_grad = node, True
    return t


def _alias(t):
    """``t`` behind a :class:`Boundary`: its data, version counter and tangent, its own place in the graph."""
    a = _wrap(t._data)
    a.grad_fn, a._requires_grad = Boundary(t), True
    a._version = t._version
    a._fw = t._fw
    return a


def composite(label, inputs=None):
    """Decorate a function of tensors so that its result shows one backward node named ``label``.

    ``inputs(*args, **kwargs)`` picks the tensors whose gradients the node sends, in the order of its
    ``next_functions`` (default: the float tensor arguments), as PyTorch orders them; a None it returns is an
    optional input left out, shown as ``(None, 0)``; integer tensors get no edge.
    """
    grad_name = label + "Backward0"

    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            if not state.grad_enabled or state.tracer is not None:  # a static graph records the primitives
                return fn(*args, **kwargs)
            chosen = inputs(*args, **kwargs) if inputs is not None else args + tuple(kwargs.values())
            aliases, boundaries = {}, []
            for t in chosen:
                if not isinstance(t, Tensor):
                    if t is None and inputs is not None:  # an optional input left out keeps its place: (None, 0)
                        boundaries.append(None)
                elif t._data.dtype.kind == "f":  # integer tensors (targets) get no edge
                    # an input passed twice gets its gradient once, at its first place
                    fresh = t._requires_grad and id(t) not in aliases
                    if fresh:
                        aliases[id(t)] = _alias(t)
                    boundaries.append(aliases[id(t)].grad_fn if fresh else None)
            if not aliases:
                return fn(*args, **kwargs)
            swap = lambda v: aliases.get(id(v), v) if isinstance(v, Tensor) else v  # noqa: E731
            out = fn(*map(swap, args), **{k: swap(v) for k, v in kwargs.items()})
            if not isinstance(out, Tensor) or isinstance(out.grad_fn, Boundary):  # a tuple, or an input returned
                return next((t for t in chosen if aliases.get(id(t)) is out), out)
            if out.grad_fn is None:
                return out
            node = CompositeNode(grad_name, _at(out.grad_fn), boundaries)
            node.root._out_nr = out._out_nr
            # a view of an inner value (conv2d's final permute) stops being one: its history is the node now
            out.grad_fn, out._out_nr, out._base = node, 0, None
            return out

        return run

    return decorate
