"""PyTorch's ``torch.nn.functional``: the layers and losses as functions.

Everything here is a composition of chainrule ops (convolution and pooling come from
:mod:`chainrule.ops.conv`), so gradients, double backward and forward mode come for free. The one
primitive defined here is ``log_sigmoid`` (numerically stable for logits of any magnitude), which
``binary_cross_entropy_with_logits`` is built on.
"""

import warnings

import numpy as np

from .. import _dtype
from .. import ops as _ops
from ..autograd.grad_mode import no_grad
from ..errors import DTypeError, ShapeError
from ..ops import conv as _conv
from ..ops import infer as _infer
from ..ops.elementwise import as_tensor_arg, floating, minimum_of, where
from ..ops.nn import dropout_mask_op, log_sigmoid_op
from ..ops.op import bind
from ..tensor import Tensor

__all__ = [
    "adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv2d", "cross_entropy", "dropout", "dropout2d", "elu", "embedding", "flatten", "fold", "hardtanh", "huber_loss",
    "l1_loss", "leaky_relu", "linear", "log_softmax", "logsigmoid", "max_pool2d", "max_pool2d_with_indices",
    "mse_loss", "nll_loss", "normalize", "one_hot", "pad", "prelu", "relu", "relu6", "sigmoid", "silu",
    "smooth_l1_loss", "softmax", "softmin", "softplus", "tanh", "unfold",
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
conv2d = _conv.conv2d
max_pool2d = _conv.max_pool2d
avg_pool2d = _conv.avg_pool2d


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return _conv.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size (input sizes must be multiples of the output size)."""
    input = as_tensor_arg(input, "adaptive_avg_pool2d")
    h, w = input.shape[-2:]
    oh, ow = _conv._pair(output_size) if not isinstance(output_size, (tuple, list)) else (
        h if output_size[0] is None else output_size[0], w if output_size[1] is None else output_size[1])
    if h % oh or w % ow:
        raise NotImplementedError(f"adaptive_avg_pool2d: input size {h}x{w} must be a multiple of the output size "
                                  f"{oh}x{ow} here")
    return _conv.avg_pool2d(input, (h // oh, w // ow))


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (weight: (out_features, in_features))."""
    input, weight = as_tensor_arg(input, "linear"), as_tensor_arg(weight, "linear", "weight")
    if bias is not None:
        as_tensor_arg(bias, "linear", "bias")
    out = _ops.linear(input, weight) if weight.ndim == 2 else _ops.matmul(input, weight)
    return out if bias is None else out + bias


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


def _hardtanh(x, min_val, max_val):
    return where(x <= min_val, min_val, where(x >= max_val, max_val, x))  # no gradient at the bounds


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """clamp(x, min_val, max_val), with PyTorch's gradient: zero at the bounds themselves."""
    input = floating(input, "hardtanh")
    return _inplace(input, _hardtanh, min_val, max_val) if inplace else _hardtanh(input, min_val, max_val)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def elu(input, alpha=1.0, inplace=False):
    input = floating(input, "elu")
    return where(input > 0, input, (_ops.exp(minimum_of(input, 0.0)) - 1) * alpha)


def silu(input, inplace=False):
    return input * _ops.sigmoid(input)


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
    return _ops.softmax(input, dim, dtype=dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    input = as_tensor_arg(input, "softmin")
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return _ops.softmax(-input, dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    input = as_tensor_arg(input, "log_softmax")
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return _ops.log_softmax(input, dim, dtype=dtype)


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
    return Tensor((data[..., None] == np.arange(num_classes)).astype(np.int64))


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


def _same_size(name, input, target):
    if not _same_sizes(input.shape, target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. Please ensure they have "
                      "the same size.", stacklevel=3)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    input, target = as_tensor_arg(input, "mse_loss"), as_tensor_arg(target, "mse_loss", "target")
    _same_size("mse_loss", input, target)
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


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    _check_reduction(reduction)
    input, target = as_tensor_arg(input, "huber_loss"), as_tensor_arg(target, "huber_loss", "target")
    diff = _ops.abs(input - target)
    loss = where(diff < delta, 0.5 * diff * diff, delta * (diff - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


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
    if input.ndim < 1:
        raise ShapeError(f"nll_loss: input must have at least 1 dim, got shape {list(input.shape)}")
    n_classes = _class_targets("nll_loss", input, target)
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise ShapeError(f"nll_loss: weight tensor should be defined either for all {n_classes} classes or no "
                         f"classes but got weight tensor of shape: {list(weight.shape)}")
    _check_class_range("nll_loss", target, n_classes, ignore_index)
    class_dim = 1 if input.ndim >= 2 else 0
    loss, w = _nll(input, target, weight, ignore_index, n_classes, class_dim)
    return _nll_reduce(loss, w, reduction)


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
    logp = _ops.log_softmax(input, class_dim)
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
    loss, w = _nll(logp, target, weight, ignore_index, n_classes, class_dim)
    nll = _nll_reduce(loss, w, reduction)
    if label_smoothing <= 0:
        return nll
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


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as in PyTorch."""
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
    target = target.to(input.dtype)
    log_x = _ops.clamp(_ops.log(input), min=-100.0)
    log_1mx = _ops.clamp(_ops.log(1 - input), min=-100.0)
    loss = -(target * log_x + (1 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


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
