"""Primitives of neural-network functions (``chainrule.nn.functional`` builds on them)."""

import numpy as np

from .. import _device
from .. import random as _random
from . import infer
from .elementwise import clamp, log, log1p, sigmoid
from .op import ELEMENTWISE, defop


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
