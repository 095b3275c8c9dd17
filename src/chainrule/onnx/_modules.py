"""Layers written as one ONNX operator: chainrule builds them from several ops (Conv2d from im2col
and a matmul, BatchNorm from arithmetic on its statistics), ONNX has one operator for each.

A converter is ``convert(b, module, x, out)``: the layer ``module`` computed IR node ``out`` from IR
node ``x``. Its parameters are read from the module itself (``b.tensor``).
"""

import numpy as np

from .. import nn
from ..ops import conv
from ._export import module_converter, unsupported
from ._ops import pads


@module_converter(nn.Linear)
def _linear(b, m, x, out):
    bias = [b.tensor(m.bias)] if m.bias is not None else []
    if len(x.shape) == 2:
        b.result(out, "Gemm", [b.name(x), b.tensor(m.weight)] + bias, transB=1)
        return
    if b.fold and b.export_params:
        weight_t = b.const(np.ascontiguousarray(m.weight._data.T), hint="Transposed")
    else:
        weight_t = b.emit("Transpose", [b.tensor(m.weight)], perm=[1, 0])
    product = [b.name(x), weight_t]
    if bias:
        product = [b.emit("MatMul", product)] + bias
    b.result(out, "Add" if bias else "MatMul", product)


@module_converter(nn.Conv2d)
def _conv2d(b, m, x, out):
    name = b.name(x)
    unbatched = len(x.shape) == 3
    if unbatched:
        name = b.emit("Unsqueeze", [name, b.ints([0])])
    padding = conv._conv_padding(m.padding, m.kernel_size, m.stride, m.dilation)
    if m.padding_mode != "zeros":
        mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[m.padding_mode]
        if mode == "wrap" and b.opset < 19:
            raise unsupported("Conv2d(padding_mode='circular') is not supported below opset 19", b.scope, [x])
        (h0, h1), (w0, w1) = padding
        name = b.emit("Pad", [name, b.ints([0, 0, h0, w0, 0, 0, h1, w1])], mode=mode)
        padding = ((0, 0), (0, 0))
    inputs = [name, b.tensor(m.weight)] + ([b.tensor(m.bias)] if m.bias is not None else [])
    attrs = dict(kernel_shape=list(m.kernel_size), strides=list(m.stride), pads=pads(padding),
                 dilations=list(m.dilation), group=int(m.groups))
    if unbatched:
        b.result(out, "Squeeze", [b.emit("Conv", inputs, **attrs), b.ints([0])])
    else:
        b.result(out, "Conv", inputs, **attrs)


@module_converter(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(b, m, x, out):
    if m.training or m.running_mean is None or m.running_var is None:
        raise unsupported(f"{type(m).__name__} using batch statistics is not supported (export in eval mode, with "
                          "track_running_stats=True)", b.scope, [x])
    if m.affine:
        scale, bias = b.tensor(m.weight), b.tensor(m.bias)
    else:
        scale, bias = b.const(np.ones(m.num_features, x.dtype)), b.const(np.zeros(m.num_features, x.dtype))
    stats = [b.tensor(m.running_mean), b.tensor(m.running_var)]
    if m.running_mean._data.dtype != x.dtype:
        stats = [b.emit("Cast", [s], to=b.dtype(x.dtype)) for s in stats]
    b.result(out, "BatchNormalization", [b.name(x), scale, bias] + stats, epsilon=float(m.eps))


def _softmax(op_type, negate=False):
    def convert(b, m, x, out):
        ndim = len(x.shape)
        dim = m.dim if m.dim is not None else (0 if ndim in (0, 1, 3) else 1)
        name = b.emit("Neg", [b.name(x)]) if negate else b.name(x)
        b.result(out, op_type, [name], axis=int(dim))

    return convert


module_converter(nn.Softmax)(_softmax("Softmax"))
module_converter(nn.Softmin)(_softmax("Softmax", negate=True))
module_converter(nn.LogSoftmax)(_softmax("LogSoftmax"))
