"""Elementwise primitives: unary math, arithmetic with broadcasting, comparisons, where, casts.

Broadcasting needs no code here: a vjp rule returns the gradient in the output's shape and the
engine sums it back to each input's shape. Each op's jvp is declared ``ELEMENTWISE`` (derived from
its vjp rules, which multiply by a diagonal Jacobian) or ``LINEAR`` (the op applied to tangents).
"""

import math

import numpy as np

from .. import _device, _dtype
from ..errors import DTypeError
from ..tensor import Tensor, _wrap, as_array
from . import infer
from .op import ELEMENTWISE, LINEAR, bind, defop


# --- turning operands into tensors of agreeing dtypes -----------------------------------------
def as_tensor_arg(x, fn=None, arg="input"):
    """Tensors pass through. Given the public function's name ``fn``, anything else is refused as
    PyTorch refuses it; without, it becomes a constant tensor (lists, arrays, scalars)."""
    if isinstance(x, Tensor):
        return x
    if fn is not None:
        raise not_a_tensor(fn, arg, x)
    return constant(x)


def constant(x):
    """A new tensor of ``x`` with PyTorch's dtype inference (ints stay int64), unlike ``Tensor(x)``."""
    return _wrap(as_array(x))


def not_a_tensor(fn, arg, value, expected="Tensor"):
    """PyTorch's TypeError for an argument of the wrong type, naming the function and the argument."""
    return TypeError(f"{fn}(): argument '{arg}' must be {expected}, not {type(value).__name__}")


def _operand(x, fn, arg):
    """A non-number operand of a binary op: arrays convert; PyTorch refuses lists, None and the rest."""
    if fn is None or isinstance(x, np.ndarray):
        return constant(x)
    raise not_a_tensor(fn, arg, x, "Tensor or a number")


def _scalar(x):
    """Python and numpy scalars stay constants (numpy then keeps the tensor's dtype)."""
    if isinstance(x, np.generic):
        return x.item()
    return x


def coerce(a, b, fn=None):
    """Operands of a binary op, promoted the way PyTorch promotes (not the way numpy does).

    Python scalars stay scalars (they adopt the tensor's dtype unless of a higher kind: int tensor
    times 2.5 is float32); tensors of different dtypes are cast to the promoted dtype. Given the
    public function's name ``fn``, operands that are neither tensors, numbers nor arrays are refused.
    """
    if type(a) is Tensor and type(b) is Tensor and a._data.dtype is b._data.dtype:
        return (a, b) if type(a._data) is type(b._data) else _same_device(a, b)
    if (type(b) is float or type(b) is int) and isinstance(a, Tensor) and a._data.dtype.kind == "f":
        return a, b  # a float tensor with a Python number keeps its dtype
    a_is_tensor = isinstance(a, Tensor)
    b_is_tensor = isinstance(b, Tensor)
    if a_is_tensor and b_is_tensor:
        a, b = _same_device(a, b)
        da, db = a._data.dtype, b._data.dtype
        if da != db:
            target = _dtype.result_type(da, db, a._data.ndim == 0, b._data.ndim == 0)
            if da != target:
                a = cast(a, target)
            if db != target:
                b = cast(b, target)
        return a, b
    if a_is_tensor:
        b = _scalar(b)
        if isinstance(b, (int, float)):
            return _adopt(a, b), b
        return coerce(a, _operand(b, fn, "other"), fn)
    if b_is_tensor:
        a = _scalar(a)
        if isinstance(a, (int, float)):
            return a, _adopt(b, a)
        return coerce(_operand(a, fn, "input"), b, fn)
    return coerce(_operand(a, fn, "input"), b, fn)


def _same_device(a, b):
    """As in PyTorch, a 0-d CPU tensor may join an op on another device, like a number would: it is
    moved there (differentiably). Any other mix is left to fail in the op, which names both devices."""
    if type(a._data) is type(b._data):
        return a, b
    if a._data.ndim == 0 and a.device.type == "cpu":
        return a.to(b.device), b
    if b._data.ndim == 0 and b.device.type == "cpu":
        return a, b.to(a.device)
    return a, b


def _adopt(t, scalar):
    target = _dtype.scalar_result_type(t._data.dtype, scalar)
    return t if target == t._data.dtype else cast(t, target)


def floating(x, fn=None):
    """Math that is only defined on floats promotes integer tensors to float32, as PyTorch does."""
    x = as_tensor_arg(x, fn)
    return x if x._data.dtype.kind == "f" else cast(x, _dtype.float32.numpy)


# --- casts ----------------------------------------------------------------------------------
cast_op = defop(
    "cast",
    lambda x, dtype: x.astype(dtype),
    lambda x, dtype: (infer.shape_of(x), np.dtype(dtype)),
    vjp=(lambda g, out, x, dtype: g,),  # the engine casts the gradient back to x's dtype
    jvp=LINEAR,
    saves=(),
    doc="Change dtype; differentiable between float dtypes.", explain=("d/d{0} = 1 (cast back to {0}'s dtype)",),
    lower=lambda args, params, dtype: f"{args[0]}.astype({dtype})",
    simplify=lambda node, uses: node.inputs[0] if node.inputs[0].dtype == node.params["dtype"] else None,
)


def cast(x, dtype):
    dtype = np.dtype(dtype)
    if x._data.dtype == dtype:
        return x
    return bind(cast_op, x, dtype=dtype)


def _copy_forward(x, src):
    """``src`` broadcast to ``x``'s shape, dtype and device (``copy_`` may cross devices, as in PyTorch)."""
    xp = _device.array_module(x)
    if hasattr(src, "shape"):
        src = _device.move(src, _device.device_of(x))
    return xp.broadcast_to(xp.asarray(src), x.shape).astype(x.dtype)


copy_from_op = defop(
    "copy",
    _copy_forward,
    lambda x, src: (infer.shape_of(x), infer.dtype_of(x)),
    vjp=(lambda g, out, x, src: g * 0, lambda g, out, x, src: g),  # the old value of x no longer matters
    jvp=LINEAR,
    saves=(),
    doc="The value of src broadcast into x's shape and dtype: the functional form of copy_.",
    explain=("d/d{0} = 0 (overwritten)", "d/d{1} = 1 (broadcast back)"),
)


def copy_from(x, src):
    return bind(copy_from_op, x, src if isinstance(src, Tensor) else _scalar(src))


clone_op = defop("clone", np.copy, infer.same, vjp=(lambda g, out, x: g,), jvp=LINEAR, saves=(),
    explain=("d/d{0} = 1",))
alias_op = defop("alias", lambda x: x.view(), infer.same, vjp=(lambda g, out, x: g,), jvp=LINEAR, saves=(),
                 view=True, doc="A new tensor object over the same memory (what make_dual returns).",
                 explain=("d/d{0} = 1",), view_inverse=lambda base, value: value)


def clone(x):
    return bind(clone_op, x)


def alias(x):
    return bind(alias_op, x)


# --- unary math -----------------------------------------------------------------------------
def _unary(name, forward, derivative, saves="input", floats_only=True, jvp=ELEMENTWISE, doc="", refuses_bool=False,
           **declarations):
    """Define a unary op from its numpy forward and its vjp rule; return its public function.
    ``refuses_bool``: PyTorch refuses bool tensors for this op."""
    op = defop(
        name,
        forward,
        infer.refusing(name, "b" if refuses_bool else "", infer.floating if floats_only else infer.same),
        vjp=(derivative,),
        jvp=jvp,
        saves=(0,) if saves == "input" else (),
        saves_output=saves == "output",
        doc=doc,
        elementwise=True,
        **declarations,
    )

    if floats_only:
        def fn(input):
            return bind(op, floating(input, name))
    else:
        def fn(input):
            input = as_tensor_arg(input, name)
            if refuses_bool and input._data.dtype.kind == "b":
                raise infer.refused(name, input._data.dtype)
            return bind(op, input)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc or f"Elementwise {name}."
    fn.op = op
    return fn


def _sigmoid_forward(x, out=None):
    """1/(1 + e^-x) from e^-|x| (never overflows, so no warning, and exact down to the tiniest results);
    several times faster than the logaddexp form, which LSTMs (three sigmoids a step) feel. Fills
    ``out`` when given."""
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)  # 1 / (1 + e^-x) for x >= 0, and e^x / (1 + e^x) below:
    positive = x >= 0  # read before ``out`` is written: it may be x's own buffer (compiled programs)
    if out is None:
        return np.where(positive, r, e * r)
    np.multiply(e, r, out=out)
    np.copyto(out, r, where=positive)
    return out


def _relu_forward(x, out=None):
    return np.maximum(x, 0, out=out)


neg = _unary("neg", np.negative, lambda g, out, x: -g, saves=None, floats_only=False, jvp=LINEAR, refuses_bool=True,
    explain=("d/d{0} = -1",), infix="-", cuda="-{0}",
    simplify=lambda node, uses: node.inputs[0].inputs[0] if node.inputs[0].op is neg.op else None)
exp = _unary("exp", np.exp, lambda g, out, x: g * out, saves="output", explain=("d/d{0} = exp({0})",), cuda="exp({0})")
log = _unary("log", np.log, lambda g, out, x: g / x, explain=("d/d{0} = 1/{0}",), cuda="log({0})")
sqrt = _unary("sqrt", np.sqrt, lambda g, out, x: g / (2 * out), saves="output", explain=("d/d{0} = 1/(2*sqrt({0}))",),
              cuda="sqrt({0})")
sin = _unary("sin", np.sin, lambda g, out, x: g * cos(x), explain=("d/d{0} = cos({0})",), cuda="sin({0})")
cos = _unary("cos", np.cos, lambda g, out, x: -(g * sin(x)), explain=("d/d{0} = -sin({0})",), cuda="cos({0})")
tan = _unary("tan", np.tan, lambda g, out, x: g * (1 + out * out), saves="output", explain=("d/d{0} = 1 + tan({0})^2",),
            cuda="tan({0})")
tanh = _unary("tanh", np.tanh, lambda g, out, x: g * (1 - out * out), saves="output",
    explain=("d/d{0} = 1 - tanh({0})^2",), cuda="tanh({0})")
sigmoid = _unary("sigmoid", _sigmoid_forward, lambda g, out, x: g * (out * (1 - out)), saves="output",
    explain=("d/d{0} = sigmoid({0})*(1 - sigmoid({0}))",), takes_out=True, cuda="1 / (1 + exp(-{0}))")
relu = _unary("relu", _relu_forward, lambda g, out, x: relu_mask(g, out), saves="output",
              floats_only=False, refuses_bool=True, doc="max(x, 0); its gradient at 0 is 0, as in PyTorch.",
                  explain=("d/d{0} = 1 where {0} > 0, else 0",), takes_out=True,
              cuda="({0} < 0 ? 0 : {0})")  # NaN passes, as np.maximum's
abs = _unary("abs", np.abs, lambda g, out, x: g * sign(x), floats_only=False, refuses_bool=True,
             explain=("d/d{0} = sign({0})",), cuda="fabs({0})")


def rsqrt(input):
    return 1 / sqrt(as_tensor_arg(input, "rsqrt"))


log1p = _unary("log1p", np.log1p, lambda g, out, x: g / (1 + x), doc="log(1 + x), accurate for tiny x.",
              explain=("d/d{0} = 1/(1 + {0})",), cuda="log1p({0})")
expm1 = _unary("expm1", np.expm1, lambda g, out, x: g * (out + 1), saves="output", explain=("d/d{0} = exp({0})",),
               doc="exp(x) - 1, accurate for tiny x.", cuda="expm1({0})")

def _relu_mask_forward(g, y, out=None):
    """One pass (np.where is several times slower here); ``out``: a compiled program's buffer."""
    return np.multiply(g, y > 0, out=out)


relu_mask_op = defop(
    "relu_mask",
    _relu_mask_forward,
    lambda g, out: (infer.broadcast_shapes("relu_mask", infer.shape_of(g), infer.shape_of(out)), infer.dtype_of(g)),
    vjp=(lambda gg, _, g, out: relu_mask(gg, out), None),  # linear in g; the mask has no gradient
    jvp=lambda tangents, _, g, out: relu_mask(tangents[0] if tangents[0] is not None else g * 0, out),
    saves=(1,),
    doc="g where out > 0, else 0: relu's backward, itself differentiable in g (double backward).",
    elementwise=True, takes_out=True, cuda="{0} * ({1} > 0)",  # a NaN gradient stays NaN, as np.multiply's
    explain=("received where {1} > 0, else 0", "(mask: no gradient)"),
)


def relu_mask(g, out):
    return bind(relu_mask_op, g, out)


def square(input):
    input = as_tensor_arg(input, "square")
    return input * input


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta*x))/beta, linear above ``threshold`` like PyTorch's."""
    x = floating(input, "softplus") * beta
    return where(x > threshold, x, log(1 + exp(minimum_of(x, threshold)))) / beta


# --- binary arithmetic ------------------------------------------------------------------------
def _binary(name, forward, rules, jvp=ELEMENTWISE, saves=None, saves_output=False, refuses="", **declarations):
    rule = infer.refusing(name, refuses, infer.named_elementwise(name))
    return defop(name, forward, rule, vjp=rules, jvp=jvp, saves=saves, saves_output=saves_output,
                 elementwise=True, **declarations)


def _pow_base_grad(g, out, x, y):
    """y * x**(y-1), and 0 where y == 0 (x**0 is constant even at x = 0, where x**-1 is inf)."""
    if not isinstance(y, Tensor):
        return g * (y * x ** (y - 1)) if y != 0 else g * 0
    return g * where(y == 0, 0.0, y * x ** (y - 1))


def _pow_exponent_grad(g, out, x, y):
    if not isinstance(x, Tensor):  # a constant base: d(c**y)/dy = c**y * ln(c)
        return g * out * math.log(x) if x != 0 else g * 0
    safe_log = log(where(x == 0, 1.0, x))  # 0**y has gradient 0 in y (for y > 0), not nan
    return g * where(x == 0, 0.0, out * safe_log)


add_op = _binary("add", np.add, (lambda g, out, x, y: g, lambda g, out, x, y: g), jvp=LINEAR, saves=(),
    explain=("d/d{0} = 1", "d/d{1} = 1"), infix="+", identity={0: 0.0, 1: 0.0}, cuda="{0} + {1}")
sub_op = _binary("sub", np.subtract, (lambda g, out, x, y: g, lambda g, out, x, y: -g), jvp=LINEAR, saves=(),
                 refuses="b", explain=("d/d{0} = 1", "d/d{1} = -1"), infix="-", identity={1: 0.0}, cuda="{0} - {1}")
mul_op = _binary("mul", np.multiply, (lambda g, out, x, y: g * y, lambda g, out, x, y: g * x),
                 saves={0: (1,), 1: (0,)}, explain=("d/d{0} = {1}", "d/d{1} = {0}"), infix="*",
                 identity={0: 1.0, 1: 1.0}, cuda="{0} * {1}")
div_op = _binary("div", np.true_divide, (lambda g, out, x, y: g / y, lambda g, out, x, y: -g * out / y),
                 saves=(1,), saves_output=True, explain=("d/d{0} = 1/{1}", "d/d{1} = -{0}/{1}^2"), infix="/",
                 identity={1: 1.0}, cuda="{0} / {1}")
pow_op = _binary("pow", np.power, (_pow_base_grad, _pow_exponent_grad), saves_output=True, refuses="b",
    explain=("d/d{0} = {1}*{0}^({1}-1)", "d/d{1} = {0}^{1}*ln({0})"), infix="^", identity={1: 1.0},
    cuda="pow({0}, {1})")


def _tie_split(x, y, g, sign):
    """Gradient routing of maximum/minimum: to the winner, half each on ties (PyTorch's rule)."""
    wins = (x > y) if sign > 0 else (x < y)
    return g * (wins.to(g.dtype) + (x == y).to(g.dtype) * 0.5)


maximum_op = _binary("maximum", np.maximum, (lambda g, out, x, y: _tie_split(x, y, g, 1),
                                             lambda g, out, x, y: _tie_split(y, x, g, 1)),
                     explain=("d/d{0} = 1 where {0} > {1} (1/2 on ties)", "d/d{1} = 1 where {1} > {0} (1/2 on ties)"),
                     cuda="({0} > {1} || {0} != {0}) ? {0} : {1}")  # NaN wins, as in numpy
minimum_op = _binary("minimum", np.minimum, (lambda g, out, x, y: _tie_split(x, y, g, -1),
                                             lambda g, out, x, y: _tie_split(y, x, g, -1)),
                     explain=("d/d{0} = 1 where {0} < {1} (1/2 on ties)", "d/d{1} = 1 where {1} < {0} (1/2 on ties)"),
                     cuda="({0} < {1} || {0} != {0}) ? {0} : {1}")


def add(input, other, alpha=1):
    if alpha != 1:
        other = other * alpha
    return bind(add_op, *coerce(input, other, "add"))


def sub(input, other, alpha=1):
    if alpha != 1:
        other = other * alpha
    return bind(sub_op, *coerce(input, other, "sub"))


def mul(input, other):
    return bind(mul_op, *coerce(input, other, "mul"))


def div(input, other, rounding_mode=None):
    if rounding_mode == "floor":
        return floor_divide(input, other)
    a, b = coerce(input, other, "div")
    if isinstance(a, Tensor) and a._data.dtype.kind != "f":  # true division of integers is float32
        a = cast(a, np.float32)
        b = b if not isinstance(b, Tensor) else cast(b, np.float32)
    elif isinstance(b, Tensor) and b._data.dtype.kind != "f":
        b = cast(b, np.float32)
    return bind(div_op, a, b)


def pow(input, exponent):
    a, b = coerce(input, exponent, "pow")
    infer.check_dtype("pow", (a if isinstance(a, Tensor) else b)._data.dtype, "b")
    return bind(pow_op, a, b)


def maximum(input, other):
    return bind(maximum_op, *coerce(as_tensor_arg(input, "maximum"), as_tensor_arg(other, "maximum", "other")))


def minimum(input, other):
    return bind(minimum_op, *coerce(as_tensor_arg(input, "minimum"), as_tensor_arg(other, "minimum", "other")))


def minimum_of(input, other):
    """``minimum`` that also takes a Python number (PyTorch's ``minimum`` takes tensors only)."""
    return bind(minimum_op, *coerce(input, other))


subtract, multiply, divide, true_divide = sub, mul, div, div


# --- selection ------------------------------------------------------------------------------
def _where_infer(cond, x, y):
    return infer.broadcast_shapes("where", *(infer.shape_of(v) for v in (cond, x, y))), infer.first_dtype((x, y))


def _where_forward(condition, x, y, out=None):
    """np.where, or written into ``out``, which may be one of the inputs (its elements are in place)."""
    if out is None:
        return np.where(condition, x, y)
    if condition is out:
        condition = condition.copy()
    if x is out:
        if y is not out:
            np.copyto(out, y, where=np.logical_not(condition))
        return out
    if y is not out:
        np.copyto(out, y)
    np.copyto(out, x, where=condition)
    return out


where_op = defop(
    "where",
    _where_forward,
    _where_infer,
    vjp=(None, lambda g, out, c, x, y: where(c, g, 0.0), lambda g, out, c, x, y: where(c, 0.0, g)),
    jvp=LINEAR,
    saves=(0,),
    takes_out=True,
    elementwise=True,
    explain=("(condition: no gradient)", "d/d{1} = 1 where {0}, else 0", "d/d{2} = 0 where {0}, else 1"),
    cuda="{0} ? {1} : {2}",
)


def where(condition, input, other):
    """Elementwise ``input if condition else other`` (``condition`` is a bool tensor)."""
    condition = as_tensor_arg(condition, "where", "condition")
    if condition._data.dtype != np.bool_:
        raise DTypeError(f"where: expected condition to be a bool tensor, got {condition.dtype}")
    for arg, value in (("input", input), ("other", other)):
        if not isinstance(value, (Tensor, int, float, np.generic, np.ndarray)):
            raise not_a_tensor("where", arg, value, "Tensor or a number")
    a, b = coerce(input, other)
    return bind(where_op, condition, a, b)


def _clamp_mask(x, lo, hi):
    mask = None
    if lo is not None:
        mask = x >= lo
    if hi is not None:
        mask = (x <= hi) if mask is None else mask & (x <= hi)
    return mask


def _clamp_cuda(x, min, max):
    """np.clip as C: maximum with min, then minimum with max (a bound may be None; NaN passes)."""
    low = x if min is None else f"({x} < {min} ? {min} : {x})"
    return low if max is None else f"({low} > {max} ? {max} : {low})"


clamp_op = defop(
    "clamp",
    lambda x, min, max, out=None: np.clip(x, min, max, out=out),
    lambda x, min, max: (infer.shape_of(x),
                         np.result_type(infer.dtype_of(x), *(v for v in (min, max) if v is not None))),
    vjp=(lambda g, out, x, min, max: g * _clamp_mask(x, min, max),),
    jvp=ELEMENTWISE,
    saves=(0,),
    doc="Limit to [min, max]; the gradient passes where min <= x <= max (bounds included).",
    explain=("d/d{0} = 1 where min <= {0} <= max, else 0",),
    takes_out=True,
    elementwise=True,
    cuda=_clamp_cuda,
)


def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    input = as_tensor_arg(input, "clamp")
    for arg, bound in (("min", min), ("max", max)):
        if not (bound is None or isinstance(bound, (Tensor, int, float, np.generic))):
            raise not_a_tensor("clamp", arg, bound, "Tensor or a number")
    if isinstance(min, Tensor) or isinstance(max, Tensor):  # tensor bounds: compose from maximum/minimum
        infer.broadcast_shapes("clamp", *(infer.shape_of(v) for v in (input, min, max) if isinstance(v, Tensor)))
        out = input if min is None else maximum(input, min)
        return out if max is None else minimum(out, max)
    if input._data.dtype.kind != "f" and any(isinstance(v, float) for v in (min, max)):
        input = cast(input, np.float32)
    return bind(clamp_op, input, min=_scalar(min), max=_scalar(max))


clip = clamp


# --- ops without gradients (comparisons, rounding, logic) -----------------------------------------
def _no_grad_op(name, forward, dtype=None, arity=2, refuses="", scalar_input=True, **declarations):
    """``scalar_input``: the first operand may be a number (``remainder(2, t)``); comparisons and
    logic refuse that, as PyTorch does."""
    if arity == 2:
        rule = infer.named_elementwise(name, dtype)
    else:
        def rule(x):
            return infer.shape_of(x), np.dtype(dtype) if dtype else infer.dtype_of(x)
    op = defop(name, forward, infer.refusing(name, refuses, rule), elementwise=True,
               **declarations)
    if arity == 2:
        def fn(input, other):
            if not scalar_input and not isinstance(input, Tensor):
                raise not_a_tensor(name, "input", input)
            a, b = coerce(input, other, name)
            infer.check_dtype(name, (a if isinstance(a, Tensor) else b)._data.dtype, refuses)
            return bind(op, a, b)
    else:
        def fn(input):
            input = as_tensor_arg(input, name)
            infer.check_dtype(name, input._data.dtype, refuses)
            return bind(op, input)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name} (not differentiable)."
    fn.op = op
    return fn


eq = _no_grad_op("eq", np.equal, np.bool_, scalar_input=False, cuda="{0} == {1}")
ne = _no_grad_op("ne", np.not_equal, np.bool_, scalar_input=False, cuda="{0} != {1}")
lt = _no_grad_op("lt", np.less, np.bool_, scalar_input=False, cuda="{0} < {1}")
le = _no_grad_op("le", np.less_equal, np.bool_, scalar_input=False, cuda="{0} <= {1}")
gt = _no_grad_op("gt", np.greater, np.bool_, scalar_input=False, cuda="{0} > {1}")
ge = _no_grad_op("ge", np.greater_equal, np.bool_, scalar_input=False, cuda="{0} >= {1}")
logical_and = _no_grad_op("logical_and", np.logical_and, np.bool_, scalar_input=False, cuda="{0} && {1}")
logical_or = _no_grad_op("logical_or", np.logical_or, np.bool_, scalar_input=False, cuda="{0} || {1}")
logical_xor = _no_grad_op("logical_xor", np.logical_xor, np.bool_, scalar_input=False, cuda="!{0} != !{1}")
logical_not = _no_grad_op("logical_not", np.logical_not, np.bool_, arity=1, cuda="!{0}")
isnan = _no_grad_op("isnan", np.isnan, np.bool_, arity=1, cuda="isnan({0})")
isinf = _no_grad_op("isinf", np.isinf, np.bool_, arity=1, cuda="isinf({0})")
isfinite = _no_grad_op("isfinite", np.isfinite, np.bool_, arity=1, cuda="isfinite({0})")


def _sign_forward(x):
    """np.sign, keeping bools as they are (numpy has no bool loop for sign; PyTorch returns x)."""
    return x.copy() if x.dtype == np.bool_ else np.sign(x)


sign = _no_grad_op("sign", _sign_forward, arity=1)
floor = _no_grad_op("floor", np.floor, arity=1, refuses="b", cuda="floor({0})")
ceil = _no_grad_op("ceil", np.ceil, arity=1, refuses="b", cuda="ceil({0})")
round = _no_grad_op("round", np.round, arity=1, refuses="b")
trunc = _no_grad_op("trunc", np.trunc, arity=1, refuses="b", cuda="trunc({0})")
floor_divide = _no_grad_op("floor_divide", np.floor_divide, refuses="b", cuda="floor({0} / {1})")
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def remainder(input, other):
    """Python's ``%`` (sign of the divisor); its gradient is 1 in input, -floor(input/other) in other."""
    input, other = coerce(input, other, "remainder")
    return input - floor_divide(input, other) * other


def equal(input, other):
    """True when both tensors have the same shape and elements."""
    return tuple(input.shape) == tuple(other.shape) and bool(np.array_equal(input._data, other._data))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(np.allclose(input._data, as_tensor_arg(other, "allclose", "other")._data, rtol, atol, equal_nan))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _wrap(np.isclose(input._data, as_tensor_arg(other, "isclose", "other")._data, rtol, atol, equal_nan))
