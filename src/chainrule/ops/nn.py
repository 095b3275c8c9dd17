"""Primitives of neural-network functions (``chainrule.nn.functional`` builds on them)."""

import numpy as np

from .. import _device
from .. import random as _random
from . import infer
from .elementwise import clamp, log, log1p, ne, sigmoid, where
from .indexing import gather, gather_backward, scatter_index
from .op import ELEMENTWISE, bind, defop
from .shape import reshape, unsqueeze


def _log_sigmoid_forward(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


log_sigmoid_op = defop(
    "log_sigmoid",
    _log_sigmoid_forward,
    infer.refusing("log_sigmoid", "biu", infer.floating),
    vjp=(lambda g, out, x: g * sigmoid(-x),),
    jvp=ELEMENTWISE,
    saves=(0,),
    doc="log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): finite for logits of any magnitude.",
    explain=("d/d{0} = 1 - sigmoid({0})",),
)


def _dropout_mask_forward(x, p, per_channel):
    shape = x.shape[:-2] + (1, 1) if per_channel else x.shape
    keep = _random.rng(None).random(shape, dtype=np.float32) >= p
    return _device.like(keep.astype(x.dtype) / x.dtype.type(1.0 - p), x)


dropout_mask_op = defop(
    "dropout_mask",
    _dropout_mask_forward,
    lambda x, p, per_channel: (tuple(x.shape[:-2]) + (1, 1) if per_channel else tuple(x.shape), x.dtype),
    pure=False,  # a fresh draw on every call, also every run of a compiled program
    doc="Keep-mask scaled by 1/(1-p), shaped like x (or one value per channel), from the default generator.",
)


def _bce_forward(x, t):
    return (t - 1) * np.maximum(np.log1p(-x), -100) - t * np.maximum(np.log(x), -100)


def _bce_input_grad(g, out, x, t):
    """(x - t) / (x (1 - x)), the denominator at least 1e-12: finite where a sigmoid saturated to 0 or 1."""
    return g * (x - t) / clamp((1 - x) * x, min=1e-12)


def _bce_target_grad(g, out, x, t):
    return g * (clamp(log1p(-x), min=-100.0) - clamp(log(x), min=-100.0))


binary_cross_entropy_op = defop(
    "binary_cross_entropy",
    _bce_forward,
    infer.refusing("binary_cross_entropy", "biu", infer.named_elementwise("binary_cross_entropy")),
    vjp=(_bce_input_grad, _bce_target_grad),
    jvp=ELEMENTWISE,
    saves={0: (0, 1), 1: (0,)},
    elementwise=True,
    doc="-(t log x + (1 - t) log(1 - x)) per element, each log clamped at -100, with PyTorch's gradients.",
    explain=("d/d{0} = ({0} - {1}) / max({0}(1 - {0}), 1e-12)", "d/d{1} = log(1 - {0}) - log({0})"),
)


# --- negative log-likelihood: a primitive and its adjoint, each the other's vjp ----------------------------
def _class_dim(logp):
    return 1 if logp.ndim >= 2 else 0


def _target_weights(target, weight, ignore_index, dtype):
    """Each target's class weight (1 without ``weight``), 0 where the target is ``ignore_index``; and
    the targets with ignored ones replaced by class 0, safe to index with."""
    xp = _device.array_module(target)
    valid = target != ignore_index
    safe = xp.where(valid, target, 0)
    w = valid.astype(dtype) if weight is None else weight.astype(dtype, copy=False)[safe] * valid
    return safe, w


def _nll_scale(w, reduction):
    """What each -logp[target] term is multiplied by: its weight, over the total weight for ``mean``."""
    return w / w.sum() if reduction == "mean" else w


def _at_targets(safe, dim):
    """Fancy index of each sample's target entry along the class ``dim`` of the input."""
    return scatter_index(safe.reshape(safe.shape[:dim] + (1,) + safe.shape[dim:]), dim)


def _nll_forward(logp, target, weight, ignore_index, reduction):
    safe, w = _target_weights(target, weight, ignore_index, logp.dtype)
    picked = logp[_at_targets(safe, _class_dim(logp))].reshape(safe.shape)
    if reduction == "none":
        return -(picked * w)
    total = -(picked * w).sum()
    return total / w.sum() if reduction == "mean" else total


def _nll_backward_forward(g, target, weight, shape, ignore_index, reduction):
    xp = _device.array_module(g)
    dim = 1 if len(shape) >= 2 else 0
    safe, w = _target_weights(target, weight, ignore_index, g.dtype)
    grad = xp.zeros(shape, g.dtype)
    values = -g * _nll_scale(w, reduction)
    grad[_at_targets(safe, dim)] = values.reshape(values.shape[:dim] + (1,) + values.shape[dim:])
    return grad


def _nll_infer(logp, target, weight, ignore_index, reduction):
    infer.check_dtype("nll_loss", infer.dtype_of(logp), "biu")  # (the target is an integer tensor)
    return (infer.shape_of(target) if reduction == "none" else ()), infer.dtype_of(logp)


def _weight_grad(g, out, logp, target, weight, ignore_index, reduction):
    """d loss / d weight[c]: each kept sample's -logp[target] (less the mean, for ``mean``) added at its
    class, scaled by the received gradient (over the total weight, for ``mean``). PyTorch does not
    implement this derivative; here it is plain chainrule ops, so it is differentiable again."""
    dim = 1 if len(logp.shape) >= 2 else 0
    valid = ne(target, ignore_index)
    safe = where(valid, target, 0)
    picked = reshape(gather(logp, dim, unsqueeze(safe, dim)), tuple(safe.shape))
    mask = valid.to(logp.dtype)
    terms = -picked * mask
    if reduction == "mean":
        total = (gather(weight.to(logp.dtype), 0, reshape(safe, (-1,))) * reshape(mask, (-1,))).sum()
        terms = (terms - out * mask) / total
    return gather_backward(reshape(g * terms, (-1,)), reshape(safe, (-1,)), 0, tuple(weight.shape))


nll_loss_op = defop(
    "nll_loss",
    _nll_forward,
    _nll_infer,
    vjp=(lambda g, out, logp, target, weight, **p: nll_loss_backward(g, target, weight, tuple(logp.shape), **p),
         None, _weight_grad),
    jvp=lambda tangents, out, logp, target, weight, **p: (  # weight: no tangent, as in PyTorch
        out * 0.0 if tangents[0] is None else nll_loss(tangents[0], target, weight, **p)),
    saves={0: (1, 2), 2: (0, 1, 2)},
    saves_output=True,
    listed_inputs=(0,),
    doc="-weight[t] * logp[t] per target (0 where ignored), summed, averaged over the total weight, or kept.",
    explain=("-(received * weight[target]) at each target class (/ total weight for mean), 0 elsewhere",
             "(target: no gradient)", "received * -logp[target] (less the loss, / total weight, for mean) per class"),
)

def _backward_weight_grad(gg, out, g, target, weight, shape, ignore_index, reduction):
    """nll_loss_backward is g times the gradient of nll_loss at any input; read against ``gg`` it is g times
    nll_loss(gg)'s weight gradient (``mean`` needs that loss itself)."""
    loss = nll_loss(gg, target, weight, ignore_index, reduction) if reduction == "mean" else None
    return _weight_grad(g, loss, gg, target, weight, ignore_index, reduction)


nll_loss_backward_op = defop(
    "nll_loss_backward",
    _nll_backward_forward,
    lambda g, target, weight, shape, ignore_index, reduction: (tuple(shape), infer.dtype_of(g)),
    vjp=(lambda gg, out, g, target, weight, shape, **p: nll_loss(gg, target, weight, **p), None, _backward_weight_grad),
    jvp=lambda tangents, out, g, target, weight, **p: nll_loss_backward(tangents[0], target, weight, **p),
    saves=None,
    doc="nll_loss's adjoint: zeros of the input's shape with -g * weight[t] (/ total weight) at the targets.",
    explain=("nll_loss(received): the target entries read back", "(target: no gradient)", "(weight: no gradient)"),
)


def nll_loss(logp, target, weight, ignore_index, reduction):
    """Primitive: see ``chainrule.nn.functional.nll_loss`` (which checks the arguments)."""
    return bind(nll_loss_op, logp, target, weight, ignore_index=int(ignore_index), reduction=reduction)


def nll_loss_backward(g, target, weight, shape, ignore_index, reduction):
    return bind(nll_loss_backward_op, g, target, weight, shape=tuple(shape), ignore_index=ignore_index,
                reduction=reduction)
