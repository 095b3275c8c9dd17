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

from ..tensor import _wrap
from .optimizer import Optimizer, _check_number, _refuse_unsupported, _scalar, required

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

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr = _scalar(group["lr"], "lr")
            momentum = float(group["momentum"])
            dampening = float(group["dampening"])
            weight_decay = _scalar(group["weight_decay"], "weight_decay")
            nesterov = bool(group["nesterov"])
            maximize = bool(group["maximize"])
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state[p] if momentum != 0 else None
                _sgd_update(p._data, grad._data, state, lr, momentum, dampening, weight_decay, nesterov, maximize)
                p._version[0] += 1
        return loss


def _sgd_update(param, grad, state, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One parameter's update on its arrays, in place. ``grad`` is never written to."""
    g = grad
    owned = False  # whether g is a temporary of ours (may be overwritten / adopted)
    if maximize:
        g = np.negative(g)
        owned = True
    if weight_decay != 0:
        t = np.multiply(param, weight_decay)
        np.add(g, t, out=t)
        g, owned = t, True
    if momentum != 0:
        buf_t = state.get("momentum_buffer")
        if buf_t is None:
            buf = g if owned else g.copy()
            state["momentum_buffer"] = _wrap(buf)
            owned = False  # g is the buffer now
        else:
            buf = buf_t._data
            buf *= momentum
            if dampening == 0:
                buf += g
            else:
                buf += np.multiply(g, 1 - dampening)
        if nesterov:
            t = np.multiply(buf, momentum)
            np.add(g, t, out=t)
            g, owned = t, True
        else:
            g, owned = buf, False
    if owned:
        g *= -lr
        param += g
    else:
        param += np.multiply(g, -lr)
