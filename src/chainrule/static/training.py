"""Optimizer updates as graph nodes, so one ``program.run`` is a whole training step."""

from ..optim.sgd import SGD
from ..tensor import Tensor
from .ir import SymbolicTensor


def sgd_updates(params, grads, lr, momentum=0.0, weight_decay=0.0, buffers=None):
    """``{tensor: new value}`` for ``compile(..., updates=...)``: what one step of
    ``chainrule.optim.SGD(params, lr, momentum, weight_decay=weight_decay)`` records with ``grads`` as
    the gradients (the optimizer's own update, traced). With ``momentum`` each parameter gets a momentum
    buffer (made here, or taken from ``buffers[i]``), a variable updated alongside it. Calling
    ``opt.step()`` inside the graph does the same for any optimizer, with all its options.
    """
    params, grads = list(params), list(grads)
    if len(params) != len(grads):
        raise ValueError(f"sgd_updates: {len(params)} params but {len(grads)} gradients")
    graph = next((g._data.node.graph for g in grads if isinstance(g, SymbolicTensor)), None)
    if graph is None:
        raise TypeError("sgd_updates: gradients must be symbolic tensors (from chainrule.static.gradients)")
    if any(not isinstance(p, Tensor) or isinstance(p, SymbolicTensor) for p in params):
        raise TypeError("sgd_updates: params must be concrete tensors")
    optimizer = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    for p, buf in zip(params, buffers or ()):
        optimizer.state[p]["momentum_buffer"] = buf
    before, saved_grads, previous_tag = dict(graph.updates), [p.grad for p in params], graph.tag
    graph.tag = "update"
    try:
        for p, g in zip(params, grads):
            p.grad = g
        with graph.activate():
            optimizer.step()
    finally:
        graph.tag = previous_tag
        for p, g in zip(params, saved_grads):
            p.grad = g
    return {t: v for t, v in graph.updates.items() if before.get(t) is not v}
