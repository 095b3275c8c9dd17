"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

The update is PyTorch's, operation for operation (so results agree to float32 rounding)::

    g = -grad if maximize else grad
    g = g + weight_decay * p                      (weight_decay != 0)
    buf = clone(g) on the first step,             (momentum != 0)
          momentum * buf + (1 - dampening) * g after that
    g = g + momentum * buf if nesterov else buf
    p = p - lr * g
"""

import numpy as np

from .. import _device
from ..autograd.grad_mode import state as mode
from ..ops.creation import zeros_like
from ..tensor import _wrap
from .optimizer import Optimizer, _check_number, _nonzero, _refuse_unsupported, required, with_grads

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum (``torch.optim.SGD``)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if lr is not required:
            _check_number(lr, "lr")
            if lr < 0.0:
                raise ValueError(f"Invalid learning rate: {lr}")
        _check_number(momentum, "momentum")
        _check_number(weight_decay, "weight_decay")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _refuse_unsupported(differentiable=differentiable, fused=fused)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr, momentum = group["lr"], group["momentum"]
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (momentum <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _after_load(self):
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    _PARAM_SHAPED_STATE = ("momentum_buffer",)

    def _branches(self, group):
        """(momentum, dampening, weight decay, nesterov, maximize): each on or off."""
        return (_nonzero(group, "momentum"), _nonzero(group, "dampening"), _nonzero(group, "weight_decay"),
                bool(group["nesterov"]), bool(group["maximize"]))

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for index, group in enumerate(self.param_groups):
            branches = self._branches(group)
            lr, *values = self._hyper(index, "lr", "momentum", "dampening", "weight_decay")
            for p in with_grads(group["params"]):
                state = self.state[p] if branches[0] else None  # no momentum, no state
                if _fused_update(p, state, branches, lr, *values):
                    continue
                if mode.tracer is None:
                    _update_arrays(p, state, branches, lr, *values)
                    continue
                g, owned = _direction(p, state, branches, *values)
                p.sub_(g.mul_(lr) if owned else g * lr)
        return loss


def _fused_update(p, state, branches, lr, momentum, dampening, weight_decay):
    """The whole update of a GPU parameter as one CUDA kernel (eager mode); False where there is none."""
    cuda = _device.kernels(p._data)
    if cuda is None or mode.tracer is not None:
        return False
    first = branches[0] and "momentum_buffer" not in state
    if first:
        state["momentum_buffer"] = zeros_like(p)
    buf = state["momentum_buffer"] if branches[0] else None
    cuda.sgd_update(p._data, p.grad._data, None if buf is None else buf._data, lr, momentum, dampening,
                    weight_decay, branches[3], branches[4], first)
    for changed in (p, buf) if buf is not None else (p,):
        changed._version[0] += 1
    return True


def _update_arrays(p, state, branches, lr, momentum, dampening, weight_decay):
    """The eager update: the operations of ``_direction`` and ``p.sub_(g * lr)`` (so the same rounding),
    done on the arrays in place with at most two temporaries, not as a dozen tensor ops per parameter.
    A static graph records the tensor ops instead (``_direction``), which its compiler fuses."""
    has_momentum, has_dampening, has_weight_decay, nesterov, maximize = branches
    x = p._data
    g = -p.grad._data if maximize else p.grad._data
    if has_weight_decay:
        g = x * weight_decay + g
    if has_momentum:
        buf = state.get("momentum_buffer")
        if buf is None:  # PyTorch's first step: the buffer starts as the gradient
            buf = state["momentum_buffer"] = _wrap(g.copy())
        else:
            b = buf._data
            b *= momentum
            b += g * (1 - dampening) if has_dampening else g
            buf._version[0] += 1
        g = buf._data * momentum + g if nesterov else buf._data
    x -= g * lr
    p._version[0] += 1


def _direction(p, state, branches, momentum, dampening, weight_decay):
    """The step direction ``g`` of the module docstring, and whether it is a temporary of ours (which
    the caller may scale in place) rather than ``p.grad`` or the momentum buffer."""
    has_momentum, has_dampening, has_weight_decay, nesterov, maximize = branches
    g, owned = (-p.grad, True) if maximize else (p.grad, False)
    if has_weight_decay:
        g, owned = (p * weight_decay).add_(g), True
    if not has_momentum:
        return g, owned
    buf = state.get("momentum_buffer")
    if buf is None and mode.tracer is None:  # PyTorch's first step: the buffer starts as the gradient
        buf = state["momentum_buffer"] = g if owned else g.clone()
    else:
        decay = momentum
        if buf is None:  # traced first step: from a zero buffer the formula gives g, without dampening
            buf = state["momentum_buffer"] = zeros_like(p)
            if has_dampening:  # with it, a run-time flag switches momentum and dampening off this once
                started = _wrap(np.zeros((), np.float64))
                decay, dampening = momentum * started, dampening * started
                started.copy_(1.0)
        buf.mul_(decay).add_(g * (1 - dampening) if has_dampening else g)
    return ((buf * momentum).add_(g), True) if nesterov else (buf, False)
