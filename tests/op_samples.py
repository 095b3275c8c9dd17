"""Sample inputs for every primitive op, keyed by op name: the table tests/test_op_harness.py walks.

Each entry is an :class:`OpInfo` (in the spirit of PyTorch's OpInfo):

* ``makes``: functions ``(rng, dtype) -> (args, params)`` giving the op's arguments as ``bind`` takes
  them; numpy arrays are tensor inputs (data inputs in ``dtype``, index inputs int64), anything else a
  constant. Values keep away from kinks, ties and domain edges, so finite differences are meaningful.
  The first sample is the op's typical use; ``also`` adds variants (other params, scalar operands).
* ``dtypes``: the dtypes the primitive computes in (its ``infer`` must agree with its ``forward``);
  ``refuses``: the dtypes its ``infer`` rule must reject, as PyTorch rejects them.
* ``torch``: ``(lib, *tensors) -> result``, the public function built on the op, called with
  ``lib`` = chainrule and ``lib`` = torch on every dtype: both refuse, or both give the same dtype
  and values.

Adding an op means adding its entry here; an op without one fails the harness.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chainrule import device as cr_device
from chainrule.ops.conv import max_pool_op

F32, F64, I64, BOOL = (np.dtype(t) for t in ("float32", "float64", "int64", "bool"))
FLOATS = (F32, F64)
NUMBERS = FLOATS + (I64,)
ALL = NUMBERS + (BOOL,)


@dataclass
class OpInfo:
    makes: list
    dtypes: tuple = FLOATS
    refuses: tuple = ()
    torch: Callable = None


SAMPLES = {}


def sample(name, make, dtypes=FLOATS, refuses=(), torch=None):
    SAMPLES[name] = OpInfo([make], tuple(dtypes), tuple(refuses), torch)


def also(name, *makes):
    SAMPLES[name].makes.extend(makes)


def data(rng, shape, dtype, low=-2.0, high=2.0):
    """Random values of ``dtype`` in [low, high] (ints: whole numbers in that range; bools: coin flips)."""
    if dtype == BOOL:
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        return rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1, shape).astype(dtype)
    return rng.uniform(low, high, shape).astype(dtype)


def distinct(rng, shape, dtype):
    """Values at least 0.5 apart (no ties for max-like ops): a shuffled range, centred on 0."""
    n = int(np.prod(shape))
    values = (rng.permutation(n) - n // 2).reshape(shape)
    return (values * 0.5 + 0.1).astype(dtype) if dtype.kind == "f" else values.astype(dtype)


def scalar(dtype, value):
    """A Python number of ``dtype``'s kind: what a public function passes on as a constant operand."""
    return {"b": bool, "i": int}.get(dtype.kind, float)(value)


def index(rng, shape, high):
    return rng.integers(0, high, shape).astype(np.int64)


def unary(low=-2.0, high=2.0, shape=(2, 3)):
    return lambda rng, dt: ((data(rng, shape, dt, low, high),), {})


def binary(low=-2.0, high=2.0, other_low=None, other_high=None):
    """Two operands that broadcast: (2, 3) and (3,)."""
    other_low = low if other_low is None else other_low
    other_high = high if other_high is None else other_high
    return lambda rng, dt: ((data(rng, (2, 3), dt, low, high), data(rng, (3,), dt, other_low, other_high)), {})


def fn(name):
    """The public function ``lib.name`` (chainrule or torch)."""
    return lambda lib, *xs: getattr(lib, name)(*xs)


# --- elementwise ------------------------------------------------------------------------------------
for _name, _low, _high in [("exp", -2, 2), ("log", 0.5, 3), ("sqrt", 0.5, 3), ("sin", -2, 2), ("cos", -2, 2),
                           ("tan", -1, 1), ("tanh", -2, 2), ("sigmoid", -2, 2), ("log1p", 0.5, 3), ("expm1", -2, 2)]:
    sample(_name, unary(_low, _high), torch=fn(_name))
sample("log_sigmoid", unary(), refuses=(I64, BOOL), torch=lambda lib, x: lib.nn.functional.logsigmoid(x))
sample("cumsum", lambda rng, dt: ((data(rng, (3, 4), dt),), {"dim": 1}), ALL, torch=lambda lib, x: lib.cumsum(x, 1))
also("cumsum", lambda rng, dt: ((data(rng, (2, 3, 2), dt),), {"dim": 0}))
sample("binary_cross_entropy", lambda rng, dt: ((data(rng, (3, 4), dt, *((0.05, 0.95) if dt.kind == "f" else (0, 1))),
                                                 data(rng, (3, 4), dt, 0, 1)), {}), refuses=(I64, BOOL),
       torch=lambda lib, x, t: lib.nn.functional.binary_cross_entropy(x, t, reduction="none"))
for _name in ("neg", "relu", "abs"):
    sample(_name, unary(), NUMBERS, refuses=(BOOL,), torch=fn(_name))
for _name in ("floor", "ceil", "round", "trunc"):
    sample(_name, unary(-3, 3), NUMBERS, refuses=(BOOL,), torch=fn(_name))
also("exp", unary(shape=()))
sample("sign", unary(), ALL, torch=fn("sign"))
for _name in ("isnan", "isinf", "isfinite", "logical_not"):
    sample(_name, unary(), ALL, torch=fn(_name))
sample("clone", unary(), ALL, torch=fn("clone"))
sample("alias", unary(), ALL)
sample("to_copy", lambda rng, dt: ((data(rng, (2, 3), dt),), {"device": cr_device("cpu"), "source": cr_device("cpu")}),
       ALL, torch=lambda lib, x: x.to("cpu", copy=True))  # across devices: tests/test_device.py
sample("cast", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dtype": F64}), ALL,
       torch=lambda lib, x: x.to(lib.float64))
sample("copy", lambda rng, dt: ((data(rng, (2, 3), dt), data(rng, (3,), dt)), {}), ALL,
       torch=lambda lib, x, src: x.clone().copy_(src))
sample("relu_mask", lambda rng, dt: ((data(rng, (2, 3), dt), data(rng, (3,), dt)), {}))
sample("clamp", lambda rng, dt: ((data(rng, (2, 3), dt, -3, 3),), {"min": -1, "max": 1}), ALL,
       torch=lambda lib, x: lib.clamp(x, -1, 1))
also("clamp", lambda rng, dt: ((data(rng, (2, 3), dt, -3, 3),), {"min": None, "max": scalar(dt, 0.5)}))

for _name in ("add", "mul", "maximum", "minimum"):
    sample(_name, binary(), ALL, torch=fn(_name))
also("add", lambda rng, dt: ((data(rng, (2, 3), dt), scalar(dt, 1.5)), {}))
also("mul", lambda rng, dt: ((scalar(dt, 2.5), data(rng, (2, 3), dt)), {}))
sample("sub", binary(), NUMBERS, refuses=(BOOL,), torch=fn("sub"))
also("sub", lambda rng, dt: ((scalar(dt, 1.5), data(rng, (2, 3), dt)), {}))
sample("div", binary(-2, 2, 0.5, 2), torch=fn("div"))
also("div", lambda rng, dt: ((data(rng, (2, 3), dt), 4.0), {}),
     lambda rng, dt: ((1.0, data(rng, (3,), dt, 0.5, 2)), {}))
sample("pow", binary(0.5, 2, 0, 2), NUMBERS, refuses=(BOOL,), torch=fn("pow"))
also("pow", lambda rng, dt: ((data(rng, (2, 3), dt, 0.5, 2), scalar(dt, 3)), {}),
     lambda rng, dt: ((scalar(dt, 2), data(rng, (2, 3), dt, 0, 2)), {}))
sample("floor_divide", binary(-3, 3, 1, 3), NUMBERS, refuses=(BOOL,), torch=fn("floor_divide"))
for _name in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
    sample(_name, binary(), ALL, torch=fn(_name))
sample("where", lambda rng, dt: ((data(rng, (2, 3), BOOL), data(rng, (2, 3), dt), data(rng, (3,), dt)), {}), ALL,
       torch=fn("where"))
also("where", lambda rng, dt: ((data(rng, (2, 3), BOOL), data(rng, (2, 1), dt), scalar(dt, 0)), {}))

# --- reductions --------------------------------------------------------------------------------------
sample("sum", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": (1,), "keepdim": False}), ALL,
       torch=lambda lib, x: lib.sum(x, 1))
also("sum", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": None, "keepdim": False}),
     lambda rng, dt: ((data(rng, (2, 3, 2), dt),), {"dim": (0, 2), "keepdim": True}))
sample("mean", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": (0,), "keepdim": True}), refuses=(I64, BOOL),
       torch=lambda lib, x: lib.mean(x, 0, keepdim=True))
also("mean", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": None, "keepdim": False}))
for _name in ("amax", "amin"):
    sample(_name, lambda rng, dt: ((distinct(rng, (2, 3), dt),), {"dim": (1,), "keepdim": False}), ALL,
           torch=lambda lib, x, _name=_name: getattr(lib, _name)(x, 1))
    also(_name, lambda rng, dt: ((distinct(rng, (2, 3), dt),), {"dim": None, "keepdim": True}))
for _name in ("argmax", "argmin"):
    sample(_name, lambda rng, dt: ((distinct(rng, (2, 3), dt),), {"dim": (1,), "keepdim": False}), NUMBERS,
           refuses=(BOOL,), torch=lambda lib, x, _name=_name: getattr(lib, _name)(x, 1))
    also(_name, lambda rng, dt: ((distinct(rng, (2, 3), dt),), {"dim": None, "keepdim": False}))
sample("std", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": (1,), "keepdim": False, "correction": 1}),
       refuses=(I64, BOOL), torch=lambda lib, x: lib.std(x, 1))
also("std", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": None, "keepdim": True, "correction": 0}))
sample("logsumexp", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": (1,), "keepdim": True}),
       torch=lambda lib, x: lib.logsumexp(x, 1, keepdim=True))
also("logsumexp", lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": (0, 1), "keepdim": False}))
for _name in ("softmax", "log_softmax"):
    sample(_name, lambda rng, dt: ((data(rng, (2, 3), dt),), {"dim": 1}), refuses=(I64, BOOL),
           torch=lambda lib, x, _name=_name: getattr(lib, _name)(x, 1))
    also(_name, lambda rng, dt: ((data(rng, (3, 2, 2), dt),), {"dim": 0}),
         lambda rng, dt: ((np.asarray(data(rng, (), dt)),), {"dim": None}))
sample("softmax_backward", lambda rng, dt: ((data(rng, (2, 3), dt), data(rng, (2, 3), dt, 0.1, 0.5)), {"dim": 1}))
sample("log_softmax_backward", lambda rng, dt: ((data(rng, (2, 3), dt), data(rng, (2, 3), dt, -2.0, -0.5)),
                                                {"dim": 1}))
also("log_softmax_backward", lambda rng, dt: ((data(rng, (3, 2, 2), dt), data(rng, (3, 2, 2), dt, -2.0, -0.5)),
                                              {"dim": 0}))
for _reduction in ("mean", "sum", "none"):
    _make = (lambda rng, dt, r=_reduction: ((data(rng, (4, 3), dt), np.array([2, 0, -100, 1]), None),
                                            {"ignore_index": -100, "reduction": r}))
    _grad = (lambda rng, dt, r=_reduction: ((np.asarray(data(rng, (4,) if r == "none" else (), dt)),
                                             np.array([2, 0, 5, 1]), None),
                                            {"shape": (4, 3), "ignore_index": 5, "reduction": r}))
    if _reduction == "mean":
        sample("nll_loss", _make, refuses=(I64, BOOL), torch=lambda lib, x, t: lib.nn.functional.nll_loss(x, t))
        sample("nll_loss_backward", _grad)
    else:
        also("nll_loss", _make)
        also("nll_loss_backward", _grad)
also("nll_loss", lambda rng, dt: ((data(rng, (2, 3, 2), dt), np.array([[2, 0], [1, 1]]), None),
                                  {"ignore_index": -100, "reduction": "mean"}),
     lambda rng, dt: ((data(rng, (3,), dt), np.array(1), None), {"ignore_index": -100, "reduction": "sum"}))

# --- shapes --------------------------------------------------------------------------------------
sample("reshape", lambda rng, dt: ((data(rng, (2, 3), dt),), {"shape": (3, 2)}), ALL,
       torch=lambda lib, x: lib.reshape(x, (3, 2)))
also("reshape", lambda rng, dt: ((data(rng, (2, 3), dt),), {"shape": (-1,)}))
sample("permute", lambda rng, dt: ((data(rng, (2, 3, 4), dt),), {"axes": (2, 0, 1)}), ALL,
       torch=lambda lib, x: lib.permute(x, (2, 0, 1)))
sample("expand", lambda rng, dt: ((data(rng, (3, 1), dt),), {"shape": (2, 3, 4)}), ALL,
       torch=lambda lib, x: x.expand(2, 3, 4))
sample("cat", lambda rng, dt: ((data(rng, (2, 3), dt), data(rng, (1, 3), dt)), {"dim": 0}), ALL,
       torch=lambda lib, *xs: lib.cat(xs, 0))
also("cat", lambda rng, dt: ((data(rng, (2, 1), dt), data(rng, (2, 3), dt), data(rng, (2, 2), dt)), {"dim": 1}))
sample("stack", lambda rng, dt: ((data(rng, (2, 3), dt), data(rng, (2, 3), dt)), {"dim": 1}), ALL,
       torch=lambda lib, *xs: lib.stack(xs, 1))
sample("pad", lambda rng, dt: ((data(rng, (2, 3), dt),), {"widths": ((0, 0), (1, 2)), "value": 0}), ALL,
       torch=lambda lib, x: lib.nn.functional.pad(x, (1, 2)))
also("pad", lambda rng, dt: ((data(rng, (2, 3), dt),), {"widths": ((1, 0), (0, 2)), "value": scalar(dt, 1)}))

# --- indexing ------------------------------------------------------------------------------------
sample("getitem", lambda rng, dt: ((data(rng, (3, 4), dt),), {"index": (slice(0, 2), slice(None, None, 2))}), ALL,
       torch=lambda lib, x: x[0:2, ::2])
also("getitem", lambda rng, dt: ((data(rng, (3, 4), dt),), {"index": (np.array([2, 0, 2]),)}),  # repeats: grads add
     lambda rng, dt: ((data(rng, (3, 4), dt),), {"index": (1, 2)}),
     lambda rng, dt: ((data(rng, (3, 4), dt),), {"index": (np.array([True, False, True]), slice(1, 3))}))
sample("index_add_zeros", lambda rng, dt: ((data(rng, (2, 3), dt),),
                                           {"shape": (4, 3), "index": (np.array([0, 2]),)}), NUMBERS)
sample("index_put", lambda rng, dt: ((data(rng, (4, 3), dt), data(rng, (2, 3), dt)),
                                     {"index": (np.array([3, 1]),)}), ALL,
       torch=lambda lib, x, v: lib.index_put(x, (lib.tensor([3, 1]),), v))
also("index_put", lambda rng, dt: ((data(rng, (4, 3), dt), scalar(dt, 1)), {"index": (slice(1, 3), 0)}))
sample("gather", lambda rng, dt: ((data(rng, (3, 4), dt), index(rng, (2, 4), 3)), {"dim": 0}), ALL,
       torch=lambda lib, x, i: lib.gather(x, 0, i))
also("gather", lambda rng, dt: ((data(rng, (3, 4), dt), index(rng, (3, 2), 4)), {"dim": 1}))
sample("gather_backward", lambda rng, dt: ((data(rng, (2, 4), dt), index(rng, (2, 4), 3)),
                                           {"dim": 0, "shape": (3, 4)}), NUMBERS)
for _name in ("scatter", "scatter_add"):
    sample(_name, lambda rng, dt: ((data(rng, (3, 4), dt), np.array([[0, 1, 2, 0], [2, 0, 1, 1]]),
                                    data(rng, (2, 4), dt)), {"dim": 0}), ALL,
           torch=lambda lib, x, i, src, _name=_name: getattr(lib, _name)(x, 0, i, src))

# --- linear algebra ------------------------------------------------------------------------------
sample("matmul", lambda rng, dt: ((data(rng, (2, 3, 4), dt), data(rng, (4, 2), dt)), {}), NUMBERS, refuses=(BOOL,),
       torch=fn("matmul"))
also("matmul", lambda rng, dt: ((data(rng, (2, 1, 3, 4), dt), data(rng, (3, 4, 2), dt)), {}))
sample("linear", lambda rng, dt: ((data(rng, (2, 3), dt), data(rng, (4, 3), dt)), {}), NUMBERS, refuses=(BOOL,),
       torch=lambda lib, x, w: lib.nn.functional.linear(x, w))
also("linear", lambda rng, dt: ((data(rng, (2, 2, 3), dt), data(rng, (4, 3), dt)), {}))
sample("weight_grad", lambda rng, dt: ((data(rng, (5, 2), dt), data(rng, (5, 3), dt)), {}), NUMBERS, refuses=(BOOL,))
sample("addmm", lambda rng, dt: ((data(rng, (4,), dt), data(rng, (2, 3), dt), data(rng, (4, 3), dt)), {}),
       torch=lambda lib, b, x, w: lib.nn.functional.linear(x, w, b))
also("addmm", lambda rng, dt: ((data(rng, (2, 4), dt), data(rng, (2, 3), dt), data(rng, (4, 3), dt)), {}))

# --- convolution and pooling (internal primitives: no public function of their own) -------------------
GEO = {"kernel": (2, 2), "stride": (1, 2), "padding": ((1, 0), (1, 1)), "dilation": (1, 1)}  # 3x3 input -> 3x2
DILATED = {"kernel": (2, 2), "stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (2, 1)}  # 4x3 -> 2x2
sample("im2col", lambda rng, dt: ((data(rng, (2, 2, 3, 3), dt),), dict(GEO, groups=2)))
also("im2col", lambda rng, dt: ((data(rng, (1, 2, 4, 3), dt),), dict(DILATED, groups=1)),
     lambda rng, dt: ((data(rng, (2, 2, 3, 3), dt),), dict(GEO, groups=2, batch_last=True)))
sample("col2im", lambda rng, dt: ((data(rng, (2, 4, 2, 3, 2), dt),), dict(GEO, size=(3, 3), groups=2)))
sample("max_pool2d", lambda rng, dt: ((distinct(rng, (1, 2, 3, 3), dt),), GEO))
also("max_pool2d", lambda rng, dt: ((distinct(rng, (1, 1, 4, 3), dt),), DILATED))
sample("pool_sum", lambda rng, dt: ((data(rng, (1, 2, 3, 3), dt),), GEO))
sample("pool_sum_t", lambda rng, dt: ((data(rng, (1, 2, 3, 2), dt),), dict(GEO, size=(3, 3))))
GROUPED = {"stride": (1, 2), "padding": ((1, 1), (1, 1)), "dilation": (1, 1), "groups": 2}  # 5x4, k 3x2 -> 5x3
SHIFTED = {"stride": (1, 1), "padding": ((1, 0), (0, 1)), "dilation": (2, 1), "groups": 1}  # 5x4, k 2x2 -> 4x4
WIDE_PAD = {"stride": (1, 1), "padding": ((2, 2), (1, 1)), "dilation": (1, 1), "groups": 1}  # 3x3, k 1x1 -> 7x5
sample("conv2d", lambda rng, dt: ((data(rng, (2, 4, 5, 4), dt), data(rng, (6, 2, 3, 2), dt)), GROUPED))
also("conv2d", lambda rng, dt: ((data(rng, (1, 2, 5, 4), dt), data(rng, (3, 2, 2, 2), dt)), SHIFTED))
sample("conv2d_input_grad", lambda rng, dt: ((data(rng, (2, 6, 5, 3), dt), data(rng, (6, 2, 3, 2), dt)),
                                             dict(GROUPED, size=(5, 4))))
also("conv2d_input_grad",  # stride 1: the flipped-kernel convolution, then one the padding keeps on col2im
     lambda rng, dt: ((data(rng, (1, 3, 4, 4), dt), data(rng, (3, 2, 2, 2), dt)), dict(SHIFTED, size=(5, 4))),
     lambda rng, dt: ((data(rng, (1, 2, 7, 5), dt), data(rng, (2, 3, 1, 1), dt)), dict(WIDE_PAD, size=(3, 3))))
sample("conv2d_weight_grad", lambda rng, dt: ((data(rng, (2, 4, 5, 4), dt), data(rng, (2, 6, 5, 3), dt)),
                                              dict(GROUPED, kernel=(3, 2))))
also("conv2d_weight_grad",
     lambda rng, dt: ((data(rng, (1, 2, 5, 4), dt), data(rng, (1, 3, 4, 4), dt)), dict(SHIFTED, kernel=(2, 2))))
WINNERS = np.array([[[[0, 3], [1, 2], [2, 0]], [[3, 3], [0, 1], [2, 2]]]], np.int8)  # a kernel offset per window


def _pool_and_out(x):
    """max_pool2d_argmax reads the pooled input and the pool's output."""
    return (x, max_pool_op.forward(x, **GEO)), dict(GEO, flat=False)


sample("max_pool2d_argmax", lambda rng, dt: _pool_and_out(distinct(rng, (1, 2, 3, 3), dt)))
sample("pool_scatter", lambda rng, dt: ((data(rng, (1, 2, 3, 2), dt), WINNERS), dict(GEO, size=(3, 3))))
sample("pool_gather", lambda rng, dt: ((data(rng, (1, 2, 3, 3), dt), WINNERS), GEO))


# --- ops defined elsewhere ----------------------------------------------------------------------
sample("dropout_mask", lambda rng, dt: ((data(rng, (2, 3, 2, 2), dt),), {"p": 0.5, "per_channel": True}))
sample("fill", lambda rng, dt: ((), {"shape": (2, 3), "value": 1, "dtype": dt}), ALL)

# --- transformer and language-model primitives (ops/special.py) ------------------------------------
sample("erf", unary(-3, 3), torch=fn("erf"))
also("erf", unary(-8, 8, shape=(4, 5)))
for _name in ("tril", "triu"):
    sample(_name, lambda rng, dt: ((data(rng, (3, 4), dt),), {"diagonal": 0}), ALL, torch=fn(_name))
    also(_name, lambda rng, dt: ((data(rng, (2, 3, 3), dt),), {"diagonal": -1}),
         lambda rng, dt: ((data(rng, (3, 4), dt),), {"diagonal": 2}))
sample("topk_indices", lambda rng, dt: ((distinct(rng, (3, 4), dt),), {"k": 2, "dim": 1, "largest": True}), NUMBERS,
       refuses=(BOOL,), torch=lambda lib, x: lib.topk(x, 2).indices)
also("topk_indices", lambda rng, dt: ((distinct(rng, (3, 4), dt),), {"k": 3, "dim": 0, "largest": False}))
sample("multinomial", lambda rng, dt: ((data(rng, (2, 5), dt, 0.1, 1.0),),
                                       {"num_samples": 3, "replacement": True, "generator": None}))
