"""Composite functions: a user-level function built from primitives that shows as one backward node.

PyTorch users read and walk ``grad_fn``: ``loss.grad_fn`` is ``MseLossBackward0`` and its
``next_functions`` lead to the layer's ``AddmmBackward0``. In chainrule ``F.mse_loss`` is a
composition of primitives, each recording its own node. ``@composite("MseLoss")`` names the node of
the function's result after the function and points that node's ``next_functions`` at the function's
inputs, in PyTorch's order. Only what the user reads changes: the primitive nodes stay in the graph
and the engine runs them as they are, so grouping costs nothing in backward, double backward and
forward mode are untouched, and ``explain_backward`` still shows every primitive rule.
"""

import functools

from .._mode import state
from ..ops.op import grad_edge
from ..tape import show_as
from ..tensor import Tensor

__all__ = ["composite"]


def composite(label, inputs=None):
    """Decorate a function of tensors so that its result's ``grad_fn`` shows as ``<label>Backward0``.

    ``inputs(*args, **kwargs)`` picks the tensors the node's ``next_functions`` lead to, in PyTorch's
    order (default: the tensor arguments); a None it returns is an optional input left out, shown as
    ``(None, 0)``; integer tensors get no entry, and a tensor passed twice gets its edge at its first
    place only.
    """
    grad_name = label + "Backward0"

    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            out = fn(*args, **kwargs)
            if not state.grad_enabled or not isinstance(out, Tensor) or out.grad_fn is None:
                return out
            if inputs is None:
                chosen = [t for t in args + tuple(kwargs.values()) if isinstance(t, Tensor)]
            else:  # an optional input left out (None) keeps its place
                chosen = [t for t in inputs(*args, **kwargs) if t is None or isinstance(t, Tensor)]
            chosen = [t for t in chosen if t is None or t._data.dtype.kind == "f"]
            if any(t is not None and out.grad_fn is t.grad_fn for t in chosen):  # it returned an input
                return out
            edges, seen = [], set()
            for t in chosen:
                edges.append(grad_edge(t) if t is not None and t._requires_grad and id(t) not in seen else None)
                seen.add(id(t))
            show_as(out.grad_fn, grad_name, tuple(edges))
            return out

        return run

    return decorate
