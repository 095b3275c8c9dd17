"""RMSprop, Adadelta and Adagrad: per-coordinate step sizes from running averages of squared gradients.

Each update is PyTorch's single-tensor one, operation for operation (so results agree to float32
rounding); ``step`` is a float32 scalar tensor in the state, as in PyTorch. With ``g`` the gradient
(negated for ``maximize``, plus ``weight_decay * p`` when that is set)::

    RMSprop   v = alpha * v + (1 - alpha) * g * g
              avg = sqrt(v - m * m) + eps, m = lerp(m, g, 1 - alpha)   (centered)
              avg = sqrt(v) + eps                                     (otherwise)
              buf = momentum * buf + g / avg; p = p - lr * buf        (momentum > 0)
              p = p - lr * g / avg                                    (otherwise)
    Adadelta  v = rho * v + (1 - rho) * g * g
              delta = sqrt(u + eps) / sqrt(v + eps) * g
              u = rho * u + (1 - rho) * delta * delta; p = p - lr * delta
    Adagrad   s = s + g * g; p = p - lr / (1 + (step - 1) * lr_decay) * g / (sqrt(s) + eps)

Like SGD and Adam, the steps are in-place tensor ops with hyperparameters from ``_hyper``, so a
``chainrule.compile``-d training step reads them at run time.
"""

import numpy as np

from ..ops.creation import full_like, zeros_like
from ..tensor import _wrap
from .optimizer import Optimizer, _check_number, _nonzero, _refuse_unsupported, _scalar, step_count, with_grads

__all__ = ["RMSprop", "Adadelta", "Adagrad"]


def _check_ranges(group, checks):
    """Raise PyTorch's ValueError for the first ``(key, message, upper bound or None)`` out of range."""
    for key, message, upper in checks:
        value = _scalar(group[key], key)
        if not 0.0 <= value or (upper is not None and value > upper):
            raise ValueError(f"{message}: {group[key]}")


def _direction(p, weight_decay, has_weight_decay, maximize):
    """The gradient as the updates use it: negated to maximize, plus ``weight_decay * p``."""
    g = -p.grad if maximize else p.grad
    return (p * weight_decay).add_(g) if has_weight_decay else g


def _new_step():
    return _wrap(np.zeros((), dtype=np.float32))


class _Adaptive(Optimizer):
    """What the three share: validation, the step loop (the state's step count, then ``_update``), flags
    PyTorch has and we refuse. ``_branches`` starts with (weight decay, maximize) in each."""

    _RANGES = ()  # (key, PyTorch's message, upper bound or None): every key must be >= 0
    _HYPER = ()  # the group's hyperparameters ``_update`` takes, in order

    def __init__(self, params, defaults, **unsupported):
        for key, _, _ in self._RANGES:
            _check_number(defaults[key], key)
        _refuse_unsupported(**unsupported)
        super().__init__(params, {**defaults, **unsupported})

    def _check_group(self, group):
        _check_ranges(group, self._RANGES)

    def _after_load(self):
        for group in self.param_groups:
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)

    def _branches(self, group):
        """(weight decay, maximize): each on or off."""
        return _nonzero(group, "weight_decay"), bool(group["maximize"])

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for index, group in enumerate(self.param_groups):
            branches = self._branches(group)
            hyper = self._hyper(index, *self._HYPER)
            for p in with_grads(group["params"]):
                state = self._state_of(p, group, branches)
                state["step"].add_(1)
                self._update(p, state, branches, *hyper)
        return loss


class RMSprop(_Adaptive):
    """RMSprop (``torch.optim.RMSprop``), optionally centered and with momentum."""

    _RANGES = (("lr", "Invalid learning rate", None), ("eps", "Invalid epsilon value", None),
               ("momentum", "Invalid momentum value", None), ("weight_decay", "Invalid weight_decay value", None),
               ("alpha", "Invalid alpha value", None))
    _HYPER = ("lr", "alpha", "eps", "weight_decay", "momentum")
    _PARAM_SHAPED_STATE = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                    "centered": centered, "maximize": maximize, "foreach": foreach}
        super().__init__(params, defaults, capturable=capturable, differentiable=differentiable)

    def _branches(self, group):
        """(weight decay, maximize, momentum, centered, lerp's formula for weights >= 0.5): each on or off."""
        return (*super()._branches(group), _nonzero(group, "momentum"), bool(group["centered"]),
                1 - _scalar(group["alpha"], "alpha") >= 0.5)

    def _state_of(self, p, group, branches):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _new_step()
            state["square_avg"] = zeros_like(p)
        if branches[2] and "momentum_buffer" not in state:
            state["momentum_buffer"] = zeros_like(p)
        if branches[3] and "grad_avg" not in state:
            state["grad_avg"] = zeros_like(p)
        return state

    def _update(self, p, state, branches, lr, alpha, eps, weight_decay, momentum):
        g = _direction(p, weight_decay, *branches[:2])
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).add_((g * (1 - alpha)).mul_(g))  # addcmul_(g, g, value=1 - alpha)
        if branches[3]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, g, alpha, branches[4])
            avg = (square_avg - grad_avg * grad_avg).sqrt().add_(eps)
        else:
            avg = square_avg.sqrt().add_(eps)
        if branches[2]:
            buf = state["momentum_buffer"]
            buf.mul_(momentum).add_(g / avg)
            p.sub_(buf * lr)
        else:
            p.sub_((g * lr).div_(avg))  # addcdiv_(g, avg, value=-lr)

    def _after_load(self):
        super()._after_load()
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)


def _lerp_(avg, g, keep, large_weight):
    """``avg.lerp_(g, 1 - keep)`` by PyTorch's two formulas (the more accurate one for each weight)."""
    if large_weight:
        avg.copy_((g - avg).mul_(-keep).add_(g))
    else:
        avg.add_((g - avg).mul_(1 - keep))


class Adadelta(_Adaptive):
    """Adadelta (``torch.optim.Adadelta``)."""

    _RANGES = (("lr", "Invalid learning rate", None), ("rho", "Invalid rho value", 1.0),
               ("eps", "Invalid epsilon value", None), ("weight_decay", "Invalid weight_decay value", None))
    _HYPER = ("lr", "rho", "eps", "weight_decay")
    _PARAM_SHAPED_STATE = ("square_avg", "acc_delta")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach}
        super().__init__(params, defaults, capturable=capturable, differentiable=differentiable)

    def _state_of(self, p, group, branches):
        state = self.state[p]
        if len(state) == 0:
            state.update(step=_new_step(), square_avg=zeros_like(p), acc_delta=zeros_like(p))
        return state

    def _update(self, p, state, branches, lr, rho, eps, weight_decay):
        g = _direction(p, weight_decay, *branches)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(rho).add_((g * (1 - rho)).mul_(g))
        std = (square_avg + eps).sqrt()
        delta = (acc_delta + eps).sqrt().div_(std).mul_(g)
        acc_delta.mul_(rho).add_((delta * (1 - rho)).mul_(delta))
        p.sub_(delta * lr)


class Adagrad(_Adaptive):
    """Adagrad (``torch.optim.Adagrad``); its state exists from construction, as in PyTorch."""

    _RANGES = (("lr", "Invalid learning rate", None), ("lr_decay", "Invalid lr_decay value", None),
               ("weight_decay", "Invalid weight_decay value", None),
               ("initial_accumulator_value", "Invalid initial_accumulator_value value", None),
               ("eps", "Invalid epsilon value", None))
    _HYPER = ("lr", "lr_decay", "eps", "weight_decay")
    _PARAM_SHAPED_STATE = ("sum",)

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "maximize": maximize, "foreach": foreach}
        super().__init__(params, defaults, differentiable=differentiable, fused=fused)
        for group in self.param_groups:
            for p in group["params"]:
                self._state_of(p, group, None)

    def _state_of(self, p, group, branches):
        state = self.state[p]
        if len(state) == 0:
            state.update(step=_new_step(), sum=full_like(p, _scalar(group["initial_accumulator_value"], "value")))
        return state

    def _update(self, p, state, branches, lr, lr_decay, eps, weight_decay):
        clr = lr / ((step_count(state["step"]) - 1) * lr_decay + 1)
        g = _direction(p, weight_decay, *branches)
        state["sum"].add_(g * g)
        p.sub_((g * clr).div_(state["sum"].sqrt().add_(eps)))
