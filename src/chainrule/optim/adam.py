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

from ..tensor import Tensor, _wrap
from .optimizer import Optimizer, _check_number, _refuse_unsupported, _scalar

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
        for group in self.param_groups:
            beta1 = _scalar(group["betas"][0], "betas[0]")
            beta2 = _scalar(group["betas"][1], "betas[1]")
            lr = _scalar(group["lr"], "lr")
            eps = float(group["eps"])
            weight_decay = _scalar(group["weight_decay"], "weight_decay")
            amsgrad = bool(group["amsgrad"])
            maximize = bool(group["maximize"])
            decoupled = bool(group.get("decoupled_weight_decay", False))
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state[p]
                param = p._data
                if len(state) == 0:
                    state["step"] = _wrap(np.zeros((), dtype=np.float32))
                    state["exp_avg"] = _wrap(np.zeros_like(param))
                    state["exp_avg_sq"] = _wrap(np.zeros_like(param))
                    if amsgrad:
                        state["max_exp_avg_sq"] = _wrap(np.zeros_like(param))
                elif amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on later
                    state["max_exp_avg_sq"] = _wrap(np.zeros_like(param))
                step_t = state["step"]
                step_t._data += 1
                step = float(step_t._data)
                _adam_update(
                    param, grad._data, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                    state["max_exp_avg_sq"]._data if amsgrad else None, step,
                    beta1, beta2, lr, eps, weight_decay, maximize, decoupled,
                )
                p._version[0] += 1
        return loss


def _adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, beta1, beta2, lr, eps, weight_decay,
                 maximize, decoupled):
    """One parameter's Adam update on its arrays, in place. ``grad`` is never written to."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            t = np.multiply(param, weight_decay)
            np.add(g, t, out=t)
            g = t
    # exp_avg.lerp_(g, 1 - beta1), with PyTorch's two formulas (the one for weights >= 0.5 is
    # the more accurate there)
    weight = param.dtype.type(1 - beta1)
    diff = np.subtract(g, exp_avg)
    if abs(weight) < 0.5:
        diff *= weight
        exp_avg += diff
    else:
        diff *= weight - param.dtype.type(1)
        np.add(g, diff, out=exp_avg)
    # exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    exp_avg_sq *= beta2
    t = np.multiply(g, 1 - beta2)
    t *= g
    exp_avg_sq += t

    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = np.sqrt(max_exp_avg_sq, out=t)
    else:
        denom = np.sqrt(exp_avg_sq, out=t)
    denom /= bias_correction2_sqrt
    denom += eps
    # param.addcdiv_(exp_avg, denom, value=-step_size)
    update = np.multiply(exp_avg, -step_size, out=diff)
    update /= denom
    param += update


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
