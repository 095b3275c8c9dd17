"""Primitives of neural-network functions (``chainrule.nn.functional`` builds on them)."""

import numpy as np

from .. import _device
from .. import random as _random
from . import infer
from .elementwise import sigmoid
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
