"""PyTorch's ``torch.nn.functional``: the layers and losses as functions.

Everything here is a composition of chainrule ops (convolution and pooling come from
:mod:`chainrule.ops.conv`), so gradients, double backward and forward mode come for free. The one
primitive defined here is ``log_sigmoid`` (numerically stable for logits of any magnitude), which
``binary_cross_entropy_with_logits`` is built on.
"""

import warnings

import numpy as np

from .. import _device, _dtype
from .. import ops as _ops
from .._missing import module_getattr
from ..autograd.composite import composite
from ..autograd.grad_mode import no_grad
from ..errors import DTypeError, ShapeError
from ..ops import conv as _conv
from ..ops import infer as _infer
from ..ops.elementwise import as_tensor_arg, floating, minimum_of, where
from ..ops.linalg import addmm_op
from ..ops.nn import binary_cross_entropy_op, dropout_mask_op, log_sigmoid_op
from ..ops.nn import nll_loss as nll_primitive
from ..ops.op import bind
from ..tensor import _wrap
from ._functional_more import *  # noqa: F403 - more of torch.nn.functional, same namespace
from ._functional_more import __all__ as _more

__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv1d", "conv2d", "conv_transpose2d", "cross_entropy", "dropout", "dropout2d", "elu", "embedding", "flatten",
    "fold", "gelu", "hardtanh", "huber_loss", "interpolate", "l1_loss", "layer_norm", "leaky_relu", "linear",
    "log_softmax", "logsigmoid", "max_pool2d", "max_pool2d_with_indices", "mse_loss", "nll_loss", "normalize",
    "one_hot", "pad", "prelu", "relu", "relu6", "scaled_dot_product_attention", "sigmoid", "silu", "smooth_l1_loss",
    "softmax", "softmin", "softplus", "tanh", "unfold", "upsample", *_more,
]


def _same_sizes(a, b):
    """Shapes that agree, sizes unknown while building a static graph matching anything."""
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(x == y for x, y in zip(a, b) if _infer.known(x) and _infer.known(y))


def _values(t):
    """The numpy array behind an eager tensor, or None for a static graph's symbolic tensor."""
    data = getattr(t, "_data", None)
    return data if isinstance(data, np.ndarray) else None


# --- layers ---------------------------------------------------------------------------------------
# Compositions of primitives that PyTorch shows as one backward node show as that node here too.
conv2d = composite("Convolution", inputs=lambda input, weight, bias=None, *a, **k: (input, weight, bias))(_conv.conv2d)
max_pool2d = composite("MaxPool2DWithIndices")(_conv.max_pool2d)
avg_pool2d = composite("AvgPool2D")(_conv.avg_pool2d)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return _conv.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size (input sizes must be multiples of the output size)."""
    input = as_tensor_arg(input, "adaptive_avg_pool2d")
    h, w = input.shape[-2:]
    oh, ow = _conv._pair(output_size) if not isinstance(output_size, (tuple, list)) else (
        h if output_size[0] is None else output_size[0], w if output_size[1] is None else output_size[1])
    if h % oh or w % ow:  # uneven (overlapping) bins: one averaging matrix per spatial dim
        rows, cols = (_adaptive_bins(n, m).to(input.device, input.dtype) for n, m in ((h, oh), (w, ow)))
        return _ops.matmul(_ops.matmul(rows, input), _ops.transpose(cols, 0, 1))
    return _conv.avg_pool2d(input, (h // oh, w // ow))


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (weight: (out_features, in_features))."""
    input, weight = as_tensor_arg(input, "linear"), as_tensor_arg(weight, "linear", "weight")
    if bias is not None:
        bias = as_tensor_arg(bias, "linear", "bias")
        if weight.ndim == 2 and input.ndim == 2:
            if input.dtype == weight.dtype == bias.dtype and input.dtype.is_floating_point:
                return bind(addmm_op, bias, input, weight)  # one op, one AddmmBackward0 node
            return _addmm(input, weight, bias)
    out = _ops.linear(input, weight) if weight.ndim == 2 else _ops.matmul(input, weight)
    return out if bias is None else out + bias


@composite("Addmm", inputs=lambda input, weight, bias: (bias, input, weight))  # PyTorch's order of the edges
def _addmm(input, weight, bias):
    return _ops.linear(input, weight) + bias


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's ``F.unfold``: (N, C, H, W) -> (N, C * kh * kw, L), built on the im2col primitive."""
    kernel, dilation, stride = _conv._pair(kernel_size), _conv._pair(dilation), _conv._pair(stride)
    p = _conv._pair(padding)
    x = as_tensor_arg(input, "unfold")
    if x.ndim == 3:
        return _ops.squeeze(unfold(_ops.unsqueeze(x, 0), kernel, dilation, padding, stride), 0)
    cols = _conv.im2col(x, kernel, stride, ((p[0], p[0]), (p[1], p[1])), dilation)  # (1, kh*kw*C, N, Ho, Wo)
    _, kkc, _, ho, wo = cols.shape
    cols = _ops.reshape(cols, (kernel[0] * kernel[1], kkc // (kernel[0] * kernel[1]), -1, ho * wo))
    return _ops.reshape(_ops.permute(cols, (2, 1, 0, 3)), (-1, kkc, ho * wo))  # PyTorch's (C, kh*kw) order


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's ``F.fold`` (the adjoint of unfold): (N, C * kh * kw, L) -> (N, C, H, W)."""
    kernel, dilation, stride = _conv._pair(kernel_size), _conv._pair(dilation), _conv._pair(stride)
    p = _conv._pair(padding)
    size = _conv._pair(output_size)
    pads = ((p[0], p[0]), (p[1], p[1]))
    x = as_tensor_arg(input, "fold")
    if x.ndim == 2:
        return _ops.squeeze(fold(_ops.unsqueeze(x, 0), output_size, kernel, dilation, padding, stride), 0)
    ho, wo = _conv._out_hw(size[0], size[1], kernel, stride, pads, dilation)
    ckk = x.shape[1]
    kk = kernel[0] * kernel[1]
    cols = _ops.permute(_ops.reshape(x, (-1, ckk // kk, kk, ho * wo)), (2, 1, 0, 3))  # (kh*kw, C, N, L)
    cols = _ops.reshape(cols, (1, ckk, -1, ho, wo))
    return _conv.col2im(cols, size, kernel, stride, pads, dilation)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm is not supported")
    index = as_tensor_arg(input, "embedding")
    if index._data.dtype.kind not in "iu":
        raise DTypeError(f"embedding: expected an integer index tensor (Long or Int), got {index.dtype}")
    if as_tensor_arg(weight, "embedding", "weight").ndim != 2:
        raise ShapeError(f"embedding: 'weight' must be 2-D, got shape {list(weight.shape)}")
    values = _values(index)  # None while tracing: the check runs when there are values
    if values is not None and values.size and not 0 <= values.min() <= values.max() < weight.shape[0]:
        raise IndexError(f"embedding: index out of range in self (indices must be in [0, {weight.shape[0]}))")
    dim = weight.shape[1]
    rows = _ops.gather(weight, 0, index.reshape(-1, 1).expand(-1, dim))  # a gather: traceable, exportable
    out = rows.reshape(tuple(index.shape) + (dim,))
    if padding_idx is not None:  # no gradient reaches the padding row
        mask = _ops.unsqueeze(as_tensor_arg(input, "embedding") == padding_idx, -1)
        out = where(mask, out.detach(), out)
    return out


# --- activations --------------------------------------------------------------------------------
def _inplace(input, fn, *args):
    input._inplace(fn, *args)
    return input


def relu(input, inplace=False):
    return _inplace(input, _ops.relu) if inplace else _ops.relu(input)


def relu_(input):
    return relu(input, inplace=True)


@composite("LeakyRelu")
def _leaky(x, negative_slope):
    return where(x > 0, x, x * negative_slope)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x if x > 0 else negative_slope * x (the gradient at 0 is negative_slope, as in PyTorch)."""
    input = floating(input, "leaky_relu")
    return _inplace(input, _leaky, negative_slope) if inplace else _leaky(input, negative_slope)


def prelu(input, weight):
    """leaky_relu with a learned slope per channel (dim 1), or one slope for all."""
    input = as_tensor_arg(input, "prelu")
    if weight.ndim != 1:
        raise ShapeError(f"prelu: weight must be 1-D, got shape {list(weight.shape)}")
    n = weight.shape[0]
    if n != 1:
        channels = input.shape[1] if input.ndim >= 2 else input.shape[0]
        if channels != n:
            raise ShapeError(f"prelu: mismatch of parameter numbers and input channel size: {n} weights for "
                             f"input of shape {list(input.shape)}")
        if input.ndim >= 2:
            weight = _ops.reshape(weight, (n,) + (1,) * (input.ndim - 2))
    elif input.ndim == 0:
        weight = _ops.reshape(weight, ())
    return where(input > 0, input, input * weight)


@composite("Hardtanh")
def _hardtanh(x, min_val, max_val):
    return where(x <= min_val, min_val, where(x >= max_val, max_val, x))  # no gradient at the bounds


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """clamp(x, min_val, max_val), with PyTorch's gradient: zero at the bounds themselves."""
    input = floating(input, "hardtanh")
    return _inplace(input, _hardtanh, min_val, max_val) if inplace else _hardtanh(input, min_val, max_val)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


@composite("Elu")
def elu(input, alpha=1.0, inplace=False):
    input = floating(input, "elu")
    return where(input > 0, input, (_ops.exp(minimum_of(input, 0.0)) - 1) * alpha)


@composite("Silu")
def silu(input, inplace=False):
    return input * _ops.sigmoid(input)


@composite("Softplus")
def softplus(input, beta=1.0, threshold=20.0):
    input = floating(input, "softplus")
    scaled = input * beta
    return where(scaled > threshold, input, (-logsigmoid(-scaled)) / beta)


def sigmoid(input):
    return _ops.sigmoid(input)


def tanh(input):
    return _ops.tanh(input)


def logsigmoid(input):
    input = as_tensor_arg(input, "logsigmoid")
    _infer.check_dtype("logsigmoid", input._data.dtype, "biu")
    return bind(log_sigmoid_op, input)


def _softmax_dim(name, ndim):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    input = as_tensor_arg(input, "softmax")
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return _softmax(input, dim, dtype=dtype)


_softmax = _ops.softmax  # primitives: their nodes are PyTorch's SoftmaxBackward0 / LogSoftmaxBackward0
_log_softmax = _ops.log_softmax


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    input = as_tensor_arg(input, "softmin")
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return _ops.softmax(-input, dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    input = as_tensor_arg(input, "log_softmax")
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return _log_softmax(input, dim, dtype=dtype)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    input = floating(input, "normalize")
    if p == 2:
        norm = _ops.sqrt(_ops.sum(input * input, dim, keepdim=True))
    else:
        norm = _ops.sum(_ops.abs(input) ** p, dim, keepdim=True) ** (1.0 / p)
    return input / _ops.clamp(norm, min=eps)


# --- dropout -------------------------------------------------------------------------------------
def _check_p(p, name):
    if not isinstance(p, (int, float)):
        raise TypeError(f"{name}(): argument 'p' must be float, not {type(p).__name__}")
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(input, p, per_channel=False):
    return bind(dropout_mask_op, input, p=p, per_channel=per_channel)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (chainrule's default generator)."""
    _check_p(p, "dropout")
    input = as_tensor_arg(input, "dropout")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _inplace(input, _ops.mul, 0.0) if inplace else input * 0.0
    mask = _dropout_mask(input, p)
    return _inplace(input, _ops.mul, mask) if inplace else input * mask


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: one draw per (sample, channel) of a (N, C, H, W) or (C, H, W) input."""
    _check_p(p, "dropout2d")
    input = as_tensor_arg(input, "dropout2d")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    mask = _dropout_mask(input, p, per_channel=True)
    return _inplace(input, _ops.mul, mask) if inplace else input * mask


# --- normalisation ------------------------------------------------------------------------------
@composite("NativeBatchNorm", inputs=lambda input, running_mean, running_var, weight=None, bias=None, *a, **k: (
    input, weight, bias))
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise over every dim but the channel dim (1). In training, batch statistics are used and the
    running ones updated in place: mean with momentum, variance with the unbiased batch variance."""
    input = as_tensor_arg(input, "batch_norm")
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input with at least 2 dims (N, C, ...), got {list(input.shape)}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ShapeError(f"batch_norm: {name} should contain {c} elements not {t.numel()} "
                             f"(input shape {list(input.shape)})")
    dims = (0,) + tuple(range(2, input.ndim))
    bshape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        count = 1
        for d in dims:
            count *= input.shape[d]
        if _infer.known(count) and count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{list(input.shape)}")
        mean = _ops.mean(input, dims, keepdim=True)
        centered = input - mean
        var = _ops.mean(centered * centered, dims, keepdim=True)
        out = centered * _ops.rsqrt(var + eps)
        if running_mean is not None or running_var is not None:
            with no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(_ops.reshape(mean.detach(), (c,)).to(running_mean.dtype)
                                                         * momentum)
                if running_var is not None:
                    if _infer.known(count):
                        correction = count / (count - 1)
                    else:  # a static graph's batch size: the count is a value of the graph
                        n = _ops.sum(input.detach() * 0 + 1, dims)
                        correction = n / (n - 1)
                    unbiased = _ops.reshape(var.detach(), (c,)) * correction
                    running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype) * momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are required when training=False")
        mean = _ops.reshape(running_mean.to(input.dtype), bshape)
        var = _ops.reshape(running_var.to(input.dtype), bshape)
        out = (input - mean) * _ops.rsqrt(var + eps)
    if weight is not None:
        out = out * _ops.reshape(weight, bshape)
    if bias is not None:
        out = out + _ops.reshape(bias, bshape)
    return out


# --- shape helpers --------------------------------------------------------------------------------
def flatten(input, start_dim=0, end_dim=-1):
    return _ops.flatten(input, start_dim, end_dim)


def one_hot(tensor, num_classes=-1):
    """Integer class indices -> int64 one-hot vectors along a new last dim."""
    tensor = as_tensor_arg(tensor, "one_hot", "tensor")
    data = tensor._data
    if data.dtype.kind not in "iu":
        raise DTypeError(f"one_hot is only applicable to index tensor of integer dtype, got {tensor.dtype}")
    if data.size and data.min() < 0:
        raise ValueError("one_hot: Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
        if not data.size:
            raise ValueError("one_hot: Can not infer total number of classes from empty tensor.")
    elif data.size and data.max() >= num_classes:
        raise ValueError("one_hot: Class values must be smaller than num_classes.")
    return _wrap((data[..., None] == _device.array_module(data).arange(num_classes)).astype(np.int64))


def _pad_index(size, lo, hi, mode):
    pos = np.arange(-lo, size + hi)
    if mode == "reflect":
        if lo >= size or hi >= size:
            raise ValueError(f"pad: padding size should be less than the corresponding input dimension, but got "
                             f"padding ({lo}, {hi}) for a dimension of size {size}")
        period = 2 * (size - 1)
        pos = np.abs(pos) % period if period else np.zeros_like(pos)
        return np.where(pos >= size, period - pos, pos)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1)
    if mode == "circular":
        if lo > size or hi > size:
            raise ValueError("pad: padding value causes wrapping around more than once")
        return pos % size
    raise NotImplementedError(f"pad: mode {mode!r} is not supported; use 'constant', 'reflect', 'replicate' or "
                              "'circular'")


def pad(input, pad, mode="constant", value=None):
    """PyTorch's ``F.pad``: (left, right) of the last dim first. Non-constant modes gather by index."""
    input = as_tensor_arg(input, "pad")
    if mode == "constant":
        if any(p < 0 for p in pad):  # negative padding crops
            index = [slice(None)] * input.ndim
            positive = []
            for i in range(len(pad) // 2):
                lo, hi = pad[2 * i], pad[2 * i + 1]
                d = input.ndim - 1 - i
                index[d] = slice(max(-lo, 0), input.shape[d] - max(-hi, 0))
                positive += [max(lo, 0), max(hi, 0)]
            input = input[tuple(index)]
            pad = positive
        return _ops.pad(input, pad, value=0.0 if value is None else value)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most twice the number of dims")
    out = input
    for i in range(len(pad) // 2):
        lo, hi = pad[2 * i], pad[2 * i + 1]
        if lo == 0 and hi == 0:
            continue
        d = input.ndim - 1 - i
        index = (slice(None),) * d + (_pad_index(input.shape[d], lo, hi, mode),)
        out = out[index]
    return out


# --- losses --------------------------------------------------------------------------------------
def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='...' instead.",
                  stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return _ops.mean(loss)
    if reduction == "sum":
        return _ops.sum(loss)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _same_size(name, input, target, stacklevel=3):
    if not _same_sizes(input.shape, target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have "
                      "the same size.", stacklevel=stacklevel)


@composite("MseLoss")
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    input, target = as_tensor_arg(input, "mse_loss"), as_tensor_arg(target, "mse_loss", "target")
    _same_size("mse_loss", input, target, stacklevel=4)  # (a composite: one frame more)
    diff = input - target
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    input, target = as_tensor_arg(input, "l1_loss"), as_tensor_arg(target, "l1_loss", "target")
    _same_size("l1_loss", input, target)
    loss = _ops.abs(input - target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@composite("HuberLoss")
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    _check_reduction(reduction)
    input, target = as_tensor_arg(input, "huber_loss"), as_tensor_arg(target, "huber_loss", "target")
    diff = _ops.abs(input - target)
    loss = where(diff < delta, 0.5 * diff * diff, delta * (diff - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@composite("SmoothL1Loss")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    input, target = as_tensor_arg(input, "smooth_l1_loss"), as_tensor_arg(target, "smooth_l1_loss", "target")
    diff = _ops.abs(input - target)
    if beta == 0:
        return _reduce(diff, reduction)
    loss = where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    return _reduce(loss, reduction)


def _class_targets(name, input, target):
    """Check integer class targets against an (N, C, d...) or (C,) input; return the class count."""
    if target.dtype.is_floating_point or target.dtype == _dtype.bool_:
        raise DTypeError(f"{name}: expected scalar type Long for class index targets but found {target.dtype}")
    batched = input.ndim >= 2
    expect = (input.shape[0],) + tuple(input.shape[2:]) if batched else ()
    if not _same_sizes(target.shape, expect):
        if batched and input.ndim == 2:
            raise ValueError(f"{name}: Expected input batch_size ({input.shape[0]}) to match target batch_size "
                             f"({target.shape[0] if target.ndim else 0}); input shape {list(input.shape)}, "
                             f"target shape {list(target.shape)}")
        raise ShapeError(f"{name}: expected target of shape {list(expect)} for input of shape {list(input.shape)}, "
                         f"got {list(target.shape)}")
    return input.shape[1] if batched else input.shape[0]


def _check_class_range(name, target, n_classes, ignore_index):
    data = _values(target)
    if data is None or not data.size:
        return
    if np.minimum.reduce(data, None) >= 0 and np.maximum.reduce(data, None) < n_classes:
        return  # every target a class: the usual case, in two reductions
    bad = (data != ignore_index) & ((data < 0) | (data >= n_classes))
    if bad.any():
        raise IndexError(f"{name}: Target {int(data[bad].flat[0])} is out of bounds (classes 0..{n_classes - 1}).")


def _nll(logp, target, weight, ignore_index, n_classes, class_dim):
    """Per-element -weight[t] * logp[t] and the per-element weights (0 where ignored)."""
    valid = target != ignore_index
    flags = _values(valid)
    any_ignored = True if flags is None else not bool(flags.all())
    safe = where(valid, target, 0) if any_ignored else target
    picked = _ops.squeeze(_ops.gather(logp, class_dim, _ops.unsqueeze(safe, class_dim)), class_dim)
    if weight is None:
        w = valid.to(logp.dtype) if any_ignored else None
    else:
        w = weight.to(logp.dtype)[safe]
        if any_ignored:
            w = w * valid.to(logp.dtype)
    loss = -picked if w is None else -(picked * w)
    return loss, w


def _nll_reduce(loss, w, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _ops.sum(loss)
    if reduction == "mean":
        return _ops.mean(loss) if w is None else _ops.sum(loss) / _ops.sum(w)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of class indices; ``mean`` divides by the total weight of kept targets."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    input, target = as_tensor_arg(input, "nll_loss"), as_tensor_arg(target, "nll_loss", "target")
    _infer.check_dtype("nll_loss", input._data.dtype, "biu")  # log-probabilities: floats, as PyTorch insists
    if input.ndim < 1:
        raise ShapeError(f"nll_loss: input must have at least 1 dim, got shape {list(input.shape)}")
    n_classes = _class_targets("nll_loss", input, target)
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise ShapeError(f"nll_loss: weight tensor should be defined either for all {n_classes} classes or no "
                         f"classes but got weight tensor of shape: {list(weight.shape)}")
    _check_class_range("nll_loss", target, n_classes, ignore_index)
    return _nll_loss(input, target, weight, ignore_index, reduction, n_classes, 1 if input.ndim >= 2 else 0)


def _nll_loss(logp, target, weight, ignore_index, reduction, n_classes, class_dim):
    """The primitive (one NllLossBackward0 node, as in PyTorch), for arguments already checked."""
    return nll_primitive(logp, target, weight, ignore_index, reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """log_softmax over dim 1 (dim 0 for an unbatched input) followed by the negative log-likelihood.

    ``target`` holds class indices (int64; ``ignore_index`` entries contribute nothing, ``mean`` divides
    by the total weight of the others) or class probabilities (a float tensor of the input's shape;
    ``mean`` divides by the number of samples). ``label_smoothing`` mixes the target with the uniform
    distribution, exactly as PyTorch does (including its normalisation with class weights).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    input, target = floating(input, "cross_entropy"), as_tensor_arg(target, "cross_entropy", "target")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if input.ndim < 1:
        raise ShapeError(f"cross_entropy: input must have at least 1 dim, got shape {list(input.shape)}")
    class_dim = 1 if input.ndim >= 2 else 0
    n_classes = input.shape[class_dim]
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise ShapeError(f"cross_entropy: weight tensor should be defined either for all {n_classes} classes or no "
                         f"classes but got weight tensor of shape: {list(weight.shape)}")
    logp = _log_softmax(input, class_dim)
    wshape = (1,) * class_dim + (n_classes,) + (1,) * (input.ndim - class_dim - 1)
    if target.dtype.is_floating_point:
        if not _same_sizes(target.shape, input.shape):
            raise ShapeError(f"cross_entropy: class-probability targets must have the input's shape "
                             f"{list(input.shape)}, got {list(target.shape)}")
        target = target.to(logp.dtype)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        terms = logp * target
        if weight is not None:
            terms = terms * _ops.reshape(weight.to(logp.dtype), wshape)
        loss = -_ops.sum(terms, class_dim)
        return _reduce(loss, reduction)  # mean: over the samples (every dim but the class dim)
    _class_targets("cross_entropy", input, target)
    _check_class_range("cross_entropy", target, n_classes, ignore_index)
    if label_smoothing <= 0:
        return _nll_loss(logp, target, weight, ignore_index, reduction, n_classes, class_dim)
    loss, w = _nll(logp, target, weight, ignore_index, n_classes, class_dim)
    nll = _nll_reduce(loss, w, reduction)
    terms = logp if weight is None else logp * _ops.reshape(weight.to(logp.dtype), wshape)
    smooth = -_ops.sum(terms, class_dim)
    valid = target != ignore_index
    smooth = where(valid, smooth, 0.0)
    if reduction == "mean":
        kept = valid.to(smooth.dtype) if weight is None else w  # w: weight[target], 0 where ignored
        smooth = _ops.sum(smooth) / _ops.sum(kept)
    elif reduction == "sum":
        smooth = _ops.sum(smooth)
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


@composite("BinaryCrossEntropy")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as in PyTorch (and with its finite
    gradient where x is exactly 0 or 1, as a saturated float32 sigmoid gives)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    name = "binary_cross_entropy"
    input, target = as_tensor_arg(input, name), as_tensor_arg(target, name, "target")
    if not _same_sizes(target.shape, input.shape):
        raise ValueError(f"{name}: Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if input.dtype != target.dtype:
        raise DTypeError(f"{name}: Found dtype {target.dtype} for target but expected {input.dtype} (the input's)")
    data = _values(input)
    if data is not None and data.size and not ((data >= 0) & (data <= 1)).all():
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    _infer.check_dtype("binary_cross_entropy", input._data.dtype, "biu")
    loss = bind(binary_cross_entropy_op, input, target.to(input.dtype))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@composite("BinaryCrossEntropyWithLogits")
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """sigmoid + binary cross-entropy in one stable formula: (1 - t) x - w_pos(t) log_sigmoid(x).

    ``log_sigmoid`` never exponentiates a large positive number, so logits of magnitude 1e4 give finite
    losses and gradients. ``pos_weight`` weighs positive examples (broadcast over the last dim).
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    name = "binary_cross_entropy_with_logits"
    input, target = floating(input, name), as_tensor_arg(target, name, "target")
    if not _same_sizes(target.shape, input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    target = target.to(input.dtype)
    log_sig = logsigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = as_tensor_arg(input, "kl_div"), as_tensor_arg(target, "kl_div", "target")
    if log_target:
        loss = _ops.exp(target) * (target - input)
    else:
        safe = where(target > 0, target, 1.0)
        loss = where(target > 0, target * (_ops.log(safe) - input), 0.0)
    if reduction == "batchmean":
        return _ops.sum(loss) / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


# --- transformers, sequence models, resampling (compositions of chainrule ops) ------------------------
def gelu(input, approximate="none"):
    """x * Phi(x): exact with ``erf`` (``approximate='none'``) or GPT-2's tanh formula (``'tanh'``)."""
    input = floating(input)
    if approximate == "none":
        return input * (_ops.erf(input * _SQRT_HALF) + 1) * 0.5
    if approximate == "tanh":
        return input * (_ops.tanh((input + input * input * input * 0.044715) * _SQRT_2_OVER_PI) + 1) * 0.5
    raise RuntimeError(f"gelu: approximate argument must be either 'none' or 'tanh', got {approximate!r}")


_SQRT_HALF = 0.5 ** 0.5
_SQRT_2_OVER_PI = (2 / np.pi) ** 0.5


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` dims (biased variance), then scale and shift."""
    input = floating(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not _same_sizes(tuple(input.shape[input.ndim - len(shape):]), shape) or input.ndim < len(shape):
        raise ShapeError(f"layer_norm: Given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}")
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    mean = _ops.mean(input, dims, keepdim=True)
    centered = input - mean
    out = centered * _ops.rsqrt(_ops.mean(centered * centered, dims, keepdim=True) + eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(q k^T * scale + mask) v over the last two dims. A bool ``attn_mask`` says which
    positions may be attended to (True: attend), a float one is added to the scores; ``is_causal``
    lets position i see positions <= i (on top of ``attn_mask``). A row with nothing to attend to gives zeros."""
    query, key, value = floating(query), floating(key), floating(value)
    if enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention: enable_gqa=True is not supported")
    scale = 1 / float(query.shape[-1]) ** 0.5 if scale is None else scale
    scores = _ops.matmul(query, _ops.transpose(key, -2, -1)) * scale
    if is_causal:  # with an attn_mask too, both apply (as in PyTorch)
        allowed = _ops.tril(_ops.ones((query.shape[-2], key.shape[-2]), dtype=_dtype.bool_, device=query.device))
        scores = where(allowed, scores, -np.inf)
    if attn_mask is not None:
        attn_mask = as_tensor_arg(attn_mask)
        if attn_mask.dtype == _dtype.bool_:
            scores = where(attn_mask, scores, -np.inf)
        else:
            scores = scores + attn_mask
    weights = _safe_softmax(scores)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return _ops.matmul(weights, value)


def _safe_softmax(scores):
    """softmax over the last dim, with zeros (not NaN) for a row whose scores are all -inf."""
    top = _ops.amax(scores, -1, keepdim=True).detach()
    finite = top > -np.inf
    shifted = _ops.exp(scores - where(finite, top, 0.0))
    total = _ops.sum(shifted, -1, keepdim=True)
    return shifted / where(finite, total, 1.0)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation over (N, C, L) or (C, L): conv2d on a height-1 image."""
    input, weight = as_tensor_arg(input), as_tensor_arg(weight)
    if weight.ndim != 3:
        raise ShapeError(f"conv1d: expected a 3-D weight (out_channels, in_channels/groups, kW), got shape "
                         f"{list(weight.shape)}")
    if input.ndim not in (2, 3):
        raise ShapeError(f"conv1d: expected a 2-D (unbatched) or 3-D (batched) input, got shape {list(input.shape)}")
    one = (lambda v: v) if isinstance(padding, str) else (lambda v: (0, _single(v)))
    out = _conv.conv2d(_ops.unsqueeze(input, -2), _ops.unsqueeze(weight, -2), bias, (1, _single(stride)),
                       one(padding), (1, _single(dilation)), groups)
    return _ops.squeeze(out, -2)


def _single(value):
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The adjoint of conv2d (weight (C_in, C_out/groups, kh, kw)): every input pixel times the kernel,
    added into the output at its window (a matmul, then col2im: conv2d's own backward machinery)."""
    input, weight = as_tensor_arg(input), as_tensor_arg(weight)
    if input.ndim == 3:
        return _ops.squeeze(conv_transpose2d(_ops.unsqueeze(input, 0), weight, bias, stride, padding, output_padding,
                                             groups, dilation), 0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv_transpose2d: expected a 3-D or 4-D input and a 4-D weight, got shapes "
                         f"{list(input.shape)} and {list(weight.shape)}")
    cin, cg, kh, kw = (int(s) for s in weight.shape)
    n, c, h, w = input.shape
    if c != cin or cin % groups:
        raise ShapeError(f"conv_transpose2d: Given transposed=1, weight of size {list(weight.shape)}, expected input"
                         f"{list(input.shape)} to have {cin} channels, but got {c} channels instead")
    stride, pads, dilation = _conv._pair(stride), _conv._pair(padding), _conv._pair(dilation)
    extra = _conv._pair(output_padding)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"conv_transpose2d: output padding {extra} must be smaller than either stride {stride} "
                         f"or dilation {dilation}")
    size = tuple((i - 1) * s - 2 * p + d * (k - 1) + e + 1
                 for i, s, p, d, k, e in zip((h, w), stride, pads, dilation, (kh, kw), extra))
    kernel = _ops.permute(weight, (0, 2, 3, 1)).reshape(groups, cin // groups, kh * kw * cg)
    pixels = _ops.permute(input, (1, 0, 2, 3)).reshape(groups, cin // groups, -1)
    cols = _ops.matmul(_ops.transpose(kernel, 1, 2), pixels).reshape(groups, kh * kw * cg, n, h, w)
    geometry = tuple((p, p - e) for p, e in zip(pads, extra))
    out = _conv.col2im(cols, size, (kh, kw), stride, geometry, dilation, groups)
    return out if bias is None else out + _ops.reshape(bias, (-1, 1, 1))


def _source_index(out_size, in_size, mode, align_corners, scale):
    """Where each output position reads the input: (lower index, upper index, weight of the upper)."""
    pos = np.arange(out_size, dtype=np.float64)
    ratio = in_size / out_size if scale is None else 1 / scale
    if mode == "nearest":
        lower = np.minimum(np.floor(pos * ratio).astype(np.int64), in_size - 1)
        return lower, lower, np.zeros(out_size)
    if align_corners:
        src = pos * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    else:
        src = np.maximum((pos + 0.5) * ratio - 0.5, 0.0)
    lower = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    return lower, np.minimum(lower + 1, in_size - 1), src - lower


_INTERP_MODES = {"nearest": (3, 4, 5), "linear": (3,), "bilinear": (4,)}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """Resize the spatial dims of (N, C, L) or (N, C, H, W): ``nearest``, ``linear``, ``bilinear``.
    Each spatial dim is an index gather (and for linear modes a weighted pair of them)."""
    input = floating(input)
    if mode not in _INTERP_MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (nearest, linear, bilinear are)")
    if input.ndim not in _INTERP_MODES[mode]:
        raise NotImplementedError(f"interpolate: got a {input.ndim}-D input for mode {mode!r}, which needs "
                                  f"{' or '.join(map(str, _INTERP_MODES[mode]))}-D")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                         "bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    spatial = input.ndim - 2
    sizes = tuple(input.shape[2:])
    if size is not None:
        targets = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        scales = (None,) * spatial
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * spatial
        targets = tuple(int(np.floor(s * f)) for s, f in zip(sizes, scales))
        if recompute_scale_factor:
            scales = (None,) * spatial
    out = input
    for axis, (n_in, n_out, scale) in enumerate(zip(sizes, targets, scales), start=2):
        lower, upper, frac = _source_index(n_out, n_in, mode, bool(align_corners), scale)
        lead = (slice(None),) * axis
        out_lower = out[lead + (lower,)]
        if mode != "nearest":
            shape = (n_out,) + (1,) * (input.ndim - axis - 1)
            weight = _wrap(frac.reshape(shape)).to(input.device, input.dtype)
            out_lower = out_lower + (out[lead + (upper,)] - out_lower) * weight
        out = out_lower
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def _adaptive_bins(in_size, out_size):
    """PyTorch's adaptive pooling bins as an averaging matrix (out_size, in_size): bin i covers
    [floor(i * in / out), ceil((i + 1) * in / out))."""
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        start, end = (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1 / (end - start)
    return _wrap(matrix)


__getattr__ = module_getattr("chainrule.nn.functional", "torch.nn.functional")
