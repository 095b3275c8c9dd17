"""Optimizer updates as graph nodes, so one ``program.run`` is a whole training step."""

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, _wrap
from .ir import SymbolicTensor


def sgd_updates(params, grads, lr, momentum=0.0, weight_decay=0.0, buffers=None):
    """``{tensor: new value}`` for ``compile(..., updates=...)``: PyTorch's SGD step (no dampening,
    no Nesterov). With ``momentum`` each parameter gets a momentum buffer (a zero tensor created
    here, or taken from ``buffers[i]``) that is a graph variable updated alongside it; the first
    step ``m*0 + g = g`` matches PyTorch's initialisation of the buffer with the first gradient.
    """
    params = list(params)
    grads = list(grads)
    if len(params) != len(grads):
        raise ValueError(f"sgd_updates: {len(params)} params but {len(grads)} gradients")
    graph = None
    for g in grads:
        if isinstance(g, SymbolicTensor):
            graph = g._data.node.graph
            break
    if graph is None:
        raise TypeError("sgd_updates: gradients must be symbolic tensors (from chainrule.static.gradients)")
    updates = {}
    previous_tag = graph.tag
    graph.tag = "update"
    with graph.activate(), no_grad():
        for k, (p, g) in enumerate(zip(params, grads)):
            if not isinstance(p, Tensor) or isinstance(p, SymbolicTensor):
                raise TypeError("sgd_updates: params must be concrete tensors")
            if weight_decay:
                g = g + p * weight_decay
            if momentum:
                buf = buffers[k] if buffers is not None else _wrap(np.zeros_like(p._data))
                new_buf = buf * momentum + g
                updates[buf] = new_buf
                g = new_buf
            updates[p] = p - g * lr
    graph.tag = previous_tag
    return updates
