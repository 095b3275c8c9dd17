"""``Conv1d``, ``Conv2d`` (im2col + one matmul, see :mod:`chainrule.ops.conv`) and ``ConvTranspose2d``
(a matmul + col2im, conv2d's own backward)."""


from .. import ops as _ops
from ..ops import conv as _conv
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


class Conv2d(Module):
    """2-D convolution (cross-correlation) with PyTorch's arguments and default initialisation.

    ``padding`` is an int, a pair, ``'valid'`` or ``'same'`` (stride 1 only); ``padding_mode`` other
    than ``'zeros'`` pads the input explicitly first, as PyTorch does.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        kernel_size, stride, dilation = _conv._pair(kernel_size), _conv._pair(stride), _conv._pair(dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = _conv._pair(padding)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {sorted(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = False
        self.output_padding = (0, 0)
        self.groups = groups
        self.padding_mode = padding_mode
        pads = _conv._conv_padding(padding, kernel_size, stride, dilation)
        self._reversed_padding_repeated_twice = [pads[1][0], pads[1][1], pads[0][0], pads[0][1]]
        kw = {"dtype": dtype, "device": device}
        self.weight = Parameter(_ops.empty((out_channels, in_channels // groups) + kernel_size, **kw))
        if bias:
            self.bias = Parameter(_ops.empty(out_channels, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(Conv2d):
    """1-D convolution over (N, C, L): a Conv2d on height-1 images, with a (O, C/groups, k) weight."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        one = (lambda v: v) if isinstance(padding, str) else (lambda v: (0, F._single(v)))
        super().__init__(in_channels, out_channels, (1, F._single(kernel_size)), (1, F._single(stride)), one(padding),
                         (1, F._single(dilation)), groups, bias, padding_mode, device, dtype)
        self.kernel_size, self.stride, self.dilation = self.kernel_size[1:], self.stride[1:], self.dilation[1:]
        self.padding = self.padding if isinstance(self.padding, str) else self.padding[1:]
        self.output_padding = (0,)
        self.weight = Parameter(_ops.squeeze(self.weight.detach(), 2))
        self._reversed_padding_repeated_twice = self._reversed_padding_repeated_twice[:2]

    def forward(self, input):
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv1d(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(Module):
    """The transpose (adjoint) of Conv2d: weight (in_channels, out_channels/groups, kh, kw), PyTorch's init."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose2d, got {padding_mode!r}')
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _conv._pair(kernel_size), _conv._pair(stride)
        self.padding, self.dilation = _conv._pair(padding), _conv._pair(dilation)
        self.output_padding = _conv._pair(output_padding)
        self.transposed, self.padding_mode = True, padding_mode
        kw = {} if dtype is None else {"dtype": dtype}
        self.weight = Parameter(_ops.empty((in_channels, out_channels // groups) + self.kernel_size, **kw))
        self.register_parameter("bias", Parameter(_ops.empty(out_channels, **kw)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:  # the output_padding that gives this size
            h, w = input.shape[-2:]
            base = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in
                    zip((h, w), self.stride, self.padding, self.dilation, self.kernel_size)]
            output_padding = tuple(int(o) - b for o, b in zip(tuple(output_size)[-2:], base))
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")
