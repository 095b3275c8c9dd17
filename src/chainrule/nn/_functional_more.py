"""More of ``torch.nn.functional`` (re-exported by :mod:`chainrule.nn.functional`): activations and
distances composed of primitives, and 1-d pooling as 2-d pooling over a unit height."""

from .. import ops as _ops
from ..linalg import vector_norm
from ..ops import conv as _conv
from ..ops.elementwise import as_tensor_arg, floating, where

__all__ = ["avg_pool1d", "cosine_similarity", "hardsigmoid", "hardswish", "max_pool1d", "mish", "pairwise_distance",
           "selu", "softsign", "tanhshrink", "threshold"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _hard_unit(x):
    """relu6(x + 3) / 6, with zero gradient outside (-3, 3) as in PyTorch."""
    return where(x <= -3.0, 0.0, where(x >= 3.0, 1.0, x / 6.0 + 0.5))


def selu(input, inplace=False):
    x = floating(input)
    return where(x > 0, x, (_ops.exp(_ops.minimum(x, 0.0)) - 1) * _SELU_ALPHA) * _SELU_SCALE


def mish(input, inplace=False):
    x = floating(input)
    return x * _ops.tanh(_ops.softplus(x))


def hardsigmoid(input, inplace=False):
    return _hard_unit(floating(input))


def hardswish(input, inplace=False):
    x = floating(input)
    return x * _hard_unit(x)


def softsign(input):
    x = floating(input)
    return x / (_ops.abs(x) + 1)


def tanhshrink(input):
    x = floating(input)
    return x - _ops.tanh(x)


def threshold(input, threshold, value, inplace=False):
    x = as_tensor_arg(input)
    return where(x > threshold, x, value)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """Cosine of the angle between x1 and x2 along ``dim``; each norm is clamped at ``eps``."""
    x1, x2 = floating(x1), floating(x2)
    n1 = _ops.clamp(vector_norm(x1, 2, (dim,), True), min=eps)
    n2 = _ops.clamp(vector_norm(x2, 2, (dim,), True), min=eps)
    return _ops.sum((x1 / n1) * (x2 / n2), dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """The p-norm of ``x1 - x2 + eps`` over the last dim."""
    diff = floating(x1) - x2 + eps
    return vector_norm(diff, p, (-1,), keepdim)


def _pool1d(pool, input, kernel_size, stride, padding, **options):
    x = as_tensor_arg(input)
    single = lambda v: v[0] if isinstance(v, (tuple, list)) else v  # noqa: E731
    stride = kernel_size if stride is None else stride
    out = pool(_ops.unsqueeze(x, -2), (1, single(kernel_size)), (1, single(stride)), (0, single(padding)), **options)
    return _ops.squeeze(out, -2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if return_indices or dilation != 1:
        raise NotImplementedError("max_pool1d: return_indices and dilation are not supported by chainrule")
    return _pool1d(_conv.max_pool2d, input, kernel_size, stride, padding, ceil_mode=ceil_mode)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    return _pool1d(_conv.avg_pool2d, input, kernel_size, stride, padding, ceil_mode=ceil_mode,
                   count_include_pad=count_include_pad)
