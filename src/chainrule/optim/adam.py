"""Adam and AdamW, with AMSGrad, maximize and (coupled or decoupled) weight decay.

The update is PyTorch's single-tensor Adam, operation for operation, so results agree to float32
rounding. With ``t`` the step count (kept in the state as a float32 scalar tensor)::

    g = -grad if maximize else grad
    p = p * (1 - lr * weight_decay)                  AdamW (decoupled weight decay)
    g = g + weight_decay * p                         Adam with weight_decay != 0
    m = lerp(m, g, 1 - beta1)
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)                            amsgrad (then v_max replaces v below)
    denom = sqrt(v) / sqrt(1 - beta2**t) + eps
    p = p - (lr / (1 - beta1**t)) * m / denom
"""

import numpy as np

from .. import _device
from ..autograd.grad_mode import state as mode
from ..ops.creation import zeros_like
from ..ops.elementwise import maximum
from ..tensor import Tensor, _wrap
from .optimizer import (
    Optimizer,
    _check_number,
    _nonzero,
    _refuse_unsupported,
    _scalar,
    step_count,
    with_grads,
)

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``); ``decoupled_weight_decay=True`` makes it AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_number(lr, "lr")
        _check_number(eps, "eps")
        _check_number(weight_decay, "weight_decay")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_number(betas[0], "betas[0]")
        _check_number(betas[1], "betas[1]")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        _refuse_unsupported(capturable=capturable, differentiable=differentiable, fused=fused)
        betas = tuple(b.item() if isinstance(b, Tensor) else b for b in betas)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr, eps, betas, wd = group["lr"], group["eps"], group["betas"], group["weight_decay"]
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= wd:
            raise ValueError(f"Invalid weight_decay value: {wd}")

    _PARAM_SHAPED_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _branches(self, group):
        """(weight decay, decoupled, amsgrad, maximize, lerp's formula for weights >= 0.5): each on or off."""
        return (_nonzero(group, "weight_decay"), bool(group.get("decoupled_weight_decay", False)),
                bool(group["amsgrad"]), bool(group["maximize"]), 1 - _scalar(group["betas"][0], "betas[0]") >= 0.5)

    def _after_load(self):
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not isinstance(st["step"], Tensor):
                    st["step"] = _wrap(np.array(float(st["step"]), dtype=np.float32))

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._eval_closure(closure)
        for index, group in enumerate(self.param_groups):
            branches = self._branches(group)
            hyper = self._hyper(index, "lr", ("betas", 0), ("betas", 1), "eps", "weight_decay")
            update = _adam_update if mode.tracer is None else _adam_update_traced
            for p in with_grads(group["params"]):
                state = self._state_of(p, branches[2])
                if not _fused_update(p, state, branches, hyper):
                    update(p, state, branches, *hyper)
        return loss

    def _state_of(self, p, amsgrad):
        """``p``'s state, its zero buffers made on the first step (PyTorch's layout: ``step`` is a tensor)."""
        state = self.state[p]
        if len(state) == 0:
            state["step"] = _wrap(np.zeros((), dtype=np.float32))
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        if amsgrad and "max_exp_avg_sq" not in state:  # also when amsgrad is switched on later
            state["max_exp_avg_sq"] = zeros_like(p)
        return state


def _fused_update(p, state, branches, hyper):
    """The whole update of a GPU parameter as one CUDA kernel (eager mode); False where there is none."""
    cuda = _device.kernels(p._data)
    if cuda is None or mode.tracer is not None:
        return False
    _, decoupled, amsgrad, maximize, large_weight = branches
    state["step"].add_(1)
    changed = [p, state["exp_avg"], state["exp_avg_sq"]] + ([state["max_exp_avg_sq"]] if amsgrad else [])
    arrays = [t._data for t in changed] + [None]  # param, exp_avg, exp_avg_sq, max_exp_avg_sq (None: no amsgrad)
    cuda.adam_update(arrays[0], p.grad._data, arrays[1], arrays[2], arrays[3], hyper, step_count(state["step"]),
                     (decoupled, amsgrad, maximize, large_weight))
    for t in changed:
        t._version[0] += 1
    return True


def _adam_update(p, state, branches, lr, beta1, beta2, eps, weight_decay):
    """One parameter's eager Adam update: the operations of ``_adam_update_traced`` (so the same rounding)
    done on the arrays in place, with two temporaries, instead of a dozen tensor ops per parameter."""
    has_weight_decay, decoupled, amsgrad, maximize, large_weight = branches
    x = p._data
    g = -p.grad._data if maximize else p.grad._data
    if has_weight_decay and decoupled:
        x *= 1 - lr * weight_decay
    elif has_weight_decay:
        g = x * weight_decay + g
    m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
    scratch = g - m
    if large_weight:
        scratch *= -beta1
        scratch += g
        m[...] = scratch
    else:
        scratch *= 1 - beta1
        m += scratch
    np.multiply(g, 1 - beta2, out=scratch)
    scratch *= g
    v *= beta2
    v += scratch
    state["step"]._data += 1
    step = float(state["step"]._data)
    second = v
    if amsgrad:
        second = state["max_exp_avg_sq"]._data
        np.maximum(second, v, out=second)
    np.sqrt(second, out=scratch)
    scratch /= (1 - beta2**step) ** 0.5
    scratch += eps
    update = m * (lr / (1 - beta1**step))
    update /= scratch
    x -= update
    changed = (p, state["exp_avg"], state["exp_avg_sq"], state["step"])
    for t in changed + ((state["max_exp_avg_sq"],) if amsgrad else ()):
        t._version[0] += 1


def _adam_update_traced(p, state, branches, lr, beta1, beta2, eps, weight_decay):
    """One parameter's Adam update as tensor ops, in place (the module docstring's formulas): what a
    static graph records."""
    has_weight_decay, decoupled, amsgrad, maximize, large_weight = branches
    g = -p.grad if maximize else p.grad
    if has_weight_decay and decoupled:
        p.mul_(1 - lr * weight_decay)
    elif has_weight_decay:
        g = (p * weight_decay).add_(g)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    if large_weight:  # exp_avg.lerp_(g, 1 - beta1) by PyTorch's formula for weights >= 0.5 (the more accurate there)
        exp_avg.copy_((g - exp_avg).mul_(-beta1).add_(g))
    else:
        exp_avg.add_((g - exp_avg).mul_(1 - beta1))
    exp_avg_sq.mul_(beta2).add_((g * (1 - beta2)).mul_(g))  # addcmul_(g, g, value=1 - beta2)
    state["step"].add_(1)
    step = step_count(state["step"])
    second = exp_avg_sq
    if amsgrad:
        second = state["max_exp_avg_sq"]
        second._inplace(maximum, exp_avg_sq, ufunc=np.maximum)  # torch.maximum(.., out=max_exp_avg_sq)
    denom = second.sqrt().div_((1 - beta2**step) ** 0.5).add_(eps)
    p.sub_((exp_avg * (lr / (1 - beta1**step))).div_(denom))  # addcdiv_(exp_avg, denom, value=-step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``); weight_decay defaults to 1e-2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def _after_load(self):
        super()._after_load()
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
