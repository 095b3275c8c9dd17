"""chainrule: a deep-learning framework built on computational graphs.

    import chainrule as cr
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # tensor([2., 4.])
"""

# ruff: noqa: I001 - the order follows the layers: the core first, then what builds on it
import operator as _operator
import os as _os

import numpy as _np

from . import _blas, _dtype, _malloc, _missing
from ._version import __version__

from ._dtype import DType as dtype  # noqa: F401
from ._dtype import bool_ as bool  # noqa: A001
from ._dtype import float16, float32, float64, int8, int16, int32, int64, uint8
from .errors import ChainruleError, DTypeError, GraphError, IndexOutOfRangeError, ShapeError
from ._device import device, get_default_device, set_default_device
from .tensor import Size, Tensor
from ._printing import set_printoptions
from .autograd.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .ops import *  # noqa: F403 - the public op functions (chainrule.exp, chainrule.cat, ...)
from .ops import TENSOR_METHODS as _TENSOR_METHODS  # noqa: F401
from .random import Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from . import accelerator, autograd, backends, cuda
from ._legacy import (BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor,
                      LongTensor, ShortTensor)
from . import linalg  # noqa: F811 - the public module replaces the op library's module of that name
from .linalg import norm
from .nn.functional import cosine_similarity, pairwise_distance
from .io import load, save
from . import distributed, expr, nn, optim, static, utils
from .static import trace_compile as compile  # noqa: A001 - cr.compile, PyTorch's name
from . import onnx, viz  # the onnx and graphviz packages themselves load only when used
from .utils.summary import summary
from ._out import OUT_FUNCTIONS as _OUT_FUNCTIONS
from ._out import with_out as _with_out

# PyTorch returns nan/inf quietly (log(0), 0/0); numpy would warn on every such op.
_np.seterr(divide="ignore", invalid="ignore", over="ignore")
_malloc.tune()
_blas.warm_up()

half, float, double, long, int = float16, float32, float64, int64, int32  # noqa: A001
Tensor.norm = norm

for _name in _OUT_FUNCTIONS:  # PyTorch's out= keyword on the functions (the Tensor methods have none)
    globals()[_name] = _with_out(globals()[_name])


__getattr__ = _missing.module_getattr("chainrule", "torch")  # (Tensor gets none: it would slow every attribute read)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return input.is_floating_point()


def get_default_dtype():
    return _dtype.default_float


def set_default_dtype(d):
    """The dtype of floats created from Python numbers: float32 (default) or float64, as in PyTorch."""
    if d not in (float32, float64):
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type, "
                        f"got {d!r} (chainrule supports float32 and float64 here)")
    _dtype.default_float = d


def typename(obj):
    return obj.type() if isinstance(obj, Tensor) else type(obj).__qualname__


_threads = [_os.cpu_count() or 1]


def set_num_threads(n):
    """Recorded for get_num_threads (numpy's BLAS picks its threads when it loads)."""
    _threads[0] = _operator.index(n)  # (this module's int is chainrule.int)


def get_num_threads():
    return _threads[0]


def numel(input):
    return input.numel()
