"""More of ``torch.nn``'s parameter-free layers: each is one call of a functional."""

from .. import ops as _ops
from ..tensor import Tensor
from . import functional as F
from .module import Module
from .parameter import Parameter


def _layer(name, fn, doc, shown=None, **defaults):
    """A Module class ``name`` whose forward is ``fn(*inputs, **its settings)`` (settings default to ``defaults``);
    its repr shows the settings named in ``shown`` (default: all), as PyTorch's does."""
    keys = list(defaults)
    shown = keys if shown is None else shown

    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        settings = dict(defaults, **dict(zip(keys, args)), **kwargs)
        for key, value in settings.items():
            setattr(self, key, value)

    def forward(self, *inputs):
        return fn(*inputs, **{key: getattr(self, key) for key in keys})

    def extra_repr(self):  # as PyTorch's: the flags only when set
        return ", ".join(f"{key}={getattr(self, key)}" for key in shown
                         if key not in ("inplace", "return_indices") or getattr(self, key))

    return type(name, (Module,), {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                                   "__doc__": doc, "__module__": __name__})


SELU = _layer("SELU", F.selu, "Scaled ELU.", inplace=False)
Mish = _layer("Mish", F.mish, "x * tanh(softplus(x)).", inplace=False)
Hardswish = _layer("Hardswish", F.hardswish, "x * relu6(x + 3) / 6.", inplace=False)
Hardsigmoid = _layer("Hardsigmoid", F.hardsigmoid, "relu6(x + 3) / 6.", inplace=False)
Softsign = _layer("Softsign", F.softsign, "x / (1 + |x|).")
Tanhshrink = _layer("Tanhshrink", F.tanhshrink, "x - tanh(x).")
Threshold = _layer("Threshold", F.threshold, "x where x > threshold, else value.", threshold=0.0, value=0.0,
                   inplace=False)
CosineSimilarity = _layer("CosineSimilarity", F.cosine_similarity, "Cosine similarity along dim.", dim=1, eps=1e-8)
PairwiseDistance = _layer("PairwiseDistance", F.pairwise_distance, "p-norm of x1 - x2 + eps over the last dim.",
                          p=2.0, eps=1e-6, keepdim=False)
MaxPool1d = _layer("MaxPool1d", F.max_pool1d, "1-d max pooling.", kernel_size=1, stride=None, padding=0, dilation=1,
                   return_indices=False, ceil_mode=False)


class AvgPool1d(Module):
    """1-d average pooling (sizes kept as 1-tuples, as PyTorch prints them)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        single = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,)  # noqa: E731
        self.kernel_size, self.padding = single(kernel_size), single(padding)
        self.stride = single(stride if stride is not None else kernel_size)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


MarginRankingLoss = _layer("MarginRankingLoss", F.margin_ranking_loss, "max(0, -y (x1 - x2) + margin).", (),
                           margin=0.0, reduction="mean")
SoftMarginLoss = _layer("SoftMarginLoss", F.soft_margin_loss, "log(1 + exp(-y x)).", (), reduction="mean")
MultiLabelSoftMarginLoss = _layer("MultiLabelSoftMarginLoss", F.multilabel_soft_margin_loss,
                                  "Per-class logistic loss, averaged over the classes.", (), weight=None,
                                  reduction="mean")
CosineEmbeddingLoss = _layer("CosineEmbeddingLoss", F.cosine_embedding_loss, "1 - cos, or max(0, cos - margin).", (),
                             margin=0.0, reduction="mean")
TripletMarginLoss = _layer("TripletMarginLoss", F.triplet_margin_loss, "max(0, d(a, p) - d(a, n) + margin).", (),
                           margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean")
GLU = _layer("GLU", F.glu, "a * sigmoid(b) of the two halves along dim.", dim=-1)


class GroupNorm(Module):
    """Group normalization with a learned per-channel scale and shift (``affine``)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.weight = Parameter(_ops.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Parameter(_ops.zeros(num_channels, dtype=dtype)) if affine and bias else None

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _Pad2d(Module):
    mode = "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = _pad4(padding)

    def forward(self, input):
        return F.pad(input, self.padding, mode=self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad2d(_Pad2d):
    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    mode = "replicate"


def _pad4(padding):
    return (padding,) * 4 if isinstance(padding, int) else tuple(padding)


class ConstantPad2d(Module):
    """Pad the last two dims with ``value`` (``padding``: an int or (left, right, top, bottom))."""

    def __init__(self, padding, value):
        super().__init__()
        self.padding, self.value = _pad4(padding), value

    def forward(self, input):
        return F.pad(input, self.padding, value=self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ParameterDict(Module):
    """A dict of parameters, registered under their keys (tensors are wrapped as Parameters)."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys = []
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        if isinstance(value, Tensor) and not isinstance(value, Parameter):
            value = Parameter(value)
        if key not in self._keys:
            self._keys.append(key)
        setattr(self, key, value)

    def __delitem__(self, key):
        self._keys.remove(key)
        delattr(self, key)

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(list(self._keys))

    def __contains__(self, key):
        return key in self._keys

    def keys(self):
        return list(self._keys)

    def values(self):
        return [self[k] for k in self._keys]

    def items(self):
        return [(k, self[k]) for k in self._keys]

    def update(self, parameters):
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for key, value in items:
            self[key] = value
