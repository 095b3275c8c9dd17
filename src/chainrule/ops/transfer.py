"""Moving a tensor between devices: an op like any other, so ``x.cuda()`` is not a leaf and its
gradient moves back to ``x``'s device (PyTorch's ``ToCopyBackward0``)."""

from .. import _device
from . import infer
from .op import LINEAR, bind, defop


def _copy_to(x, device, source):
    moved = _device.move(x, device)
    return moved.copy() if moved is x else moved  # always fresh memory, as the op declares


to_copy_op = defop(
    "to_copy",
    _copy_to,
    lambda x, device, source: (infer.shape_of(x), infer.dtype_of(x)),
    vjp=(lambda g, out, x, device, source: bind(to_copy_op, g, device=source, source=device),),
    jvp=LINEAR,
    saves=(),
    doc="Copy to another device (``device``; ``source`` is where the input lives, where the gradient goes back).",
    explain=("d/d{0} = 1, moved back to {0}'s device",),
)


def to_device(x, device):
    """``x`` on ``device``: ``x`` itself when it is there already, else a differentiable copy."""
    target = _device.indexed(device)
    _device.backend_for(target)  # PyTorch's error for an unusable device, before anything runs
    source = x.device
    if source == target:
        return x
    return bind(to_copy_op, x, device=target, source=source)
