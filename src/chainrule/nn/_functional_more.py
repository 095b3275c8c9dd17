"""More of ``torch.nn.functional`` (re-exported by :mod:`chainrule.nn.functional`): activations and
distances composed of primitives, and 1-d pooling as 2-d pooling over a unit height."""

from .. import ops as _ops
from ..linalg import vector_norm
from ..ops import conv as _conv
from ..ops.elementwise import as_tensor_arg, floating, minimum_of, where
from ..ops.nn import log_sigmoid_op
from ..ops.op import bind

__all__ = ["avg_pool1d", "cosine_embedding_loss", "cosine_similarity", "glu", "group_norm", "hardsigmoid", "hardswish",
           "margin_ranking_loss", "max_pool1d", "mish", "multilabel_soft_margin_loss", "pairwise_distance", "selu",
           "soft_margin_loss", "softsign", "tanhshrink", "threshold", "triplet_margin_loss"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _hard_unit(x):
    """relu6(x + 3) / 6, with zero gradient outside (-3, 3) as in PyTorch."""
    return where(x <= -3.0, 0.0, where(x >= 3.0, 1.0, x / 6.0 + 0.5))


def selu(input, inplace=False):
    x = floating(input)
    return where(x > 0, x, (_ops.exp(minimum_of(x, 0.0)) - 1) * _SELU_ALPHA) * _SELU_SCALE


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


def glu(input, dim=-1):
    """a * sigmoid(b), a and b the two halves of ``input`` along ``dim``."""
    a, b = _ops.chunk(floating(input), 2, dim)
    return a * _ops.sigmoid(b)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each group of ``C // num_groups`` channels over them and the spatial dims, then scale and
    shift per channel."""
    x = floating(input)
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise RuntimeError(f"group_norm: Expected number of channels in input to be divisible by num_groups, but got "
                           f"input of shape {list(x.shape)} and num_groups={num_groups}")
    grouped = _ops.reshape(x, (n, num_groups, -1))
    centered = grouped - _ops.mean(grouped, 2, keepdim=True)
    out = _ops.reshape(centered * _ops.rsqrt(_ops.mean(centered * centered, 2, keepdim=True) + eps), tuple(x.shape))
    shape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * _ops.reshape(weight, shape)
    return out if bias is None else out + _ops.reshape(bias, shape)


def _reduced(loss, reduction):
    if reduction == "mean":
        return _ops.mean(loss)
    if reduction == "sum":
        return _ops.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    return _reduced(_ops.relu(-target * (floating(input1) - input2) + margin), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return _reduced(_ops.softplus(-floating(target) * input), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    x, t = floating(input), floating(target)
    loss = -(t * bind(log_sigmoid_op, x) + (1 - t) * bind(log_sigmoid_op, -x))
    if weight is not None:
        loss = loss * weight
    return _reduced(_ops.mean(loss, -1), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos for targets 1, max(0, cos - margin) for targets -1; cos as PyTorch computes it (eps 1e-12)."""
    x1, x2 = floating(input1), floating(input2)
    dot = _ops.sum(x1 * x2, -1)
    cos = dot / _ops.sqrt((_ops.sum(x1 * x1, -1) + 1e-12) * (_ops.sum(x2 * x2, -1) + 1e-12))
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, _ops.relu(cos - margin), 0.0)
    return _reduced(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _ops.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduced(_ops.relu(d_pos - d_neg + margin), reduction)
