"""Forward-mode automatic differentiation with dual numbers (PyTorch's ``forward_ad`` API).

Inside ``dual_level()`` a tensor made with ``make_dual(primal, tangent)`` carries its tangent, and
every op that sees a tangent among its inputs computes the output's tangent from the op's jvp rule
(the same op record the tape uses). Tangents are tagged with the level's epoch, so once the level
exits they read as absent without visiting every tensor.
"""

from collections import namedtuple

from .._mode import Interpreter, state, suspended
from ..errors import GraphError, ShapeError
from ..ops.creation import filled_like
from ..ops.elementwise import alias
from ..ops.op import ELEMENTWISE, LINEAR, bind
from ..tensor import Tensor

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


class PropagateTangents(Interpreter):
    """Forward mode: after the modes below computed an op's primal, compute its tangent from the
    op's jvp rule. The rule's own ops run with this interpreter suspended (no tangents of tangents)
    but through every other mode, so they are taped (reverse over forward) or traced."""

    rank = 2

    def process(self, op, args, params):
        result = self.below.process(op, args, params)
        if op.jvp is not None and result._data.dtype.kind == "f":
            tangents = [tangent_of(a) if isinstance(a, Tensor) else None for a in args]
            if any(t is not None for t in tangents):
                with suspended(self):
                    tangent = _jvp(op, args, params, tangents, result)
                result._fw = (state.fw_epoch, tangent)
        return result

    def apply_function(self, call):
        with suspended(self):
            outputs = self.below.apply_function(call)
            call.propagate_tangents(outputs, [tangent_of(a) if isinstance(a, Tensor) else None for a in call.args])
        return outputs


class dual_level:
    """Context manager for a forward-AD level: tangents made inside are dropped when it exits."""

    def __enter__(self):
        if state.fw_level:
            raise GraphError("Nested forward mode AD is not supported: a dual_level is already active")
        state.fw_level = 1
        self.interpreter = PropagateTangents()
        self.interpreter.__enter__()
        return 0

    def __exit__(self, *exc):
        self.interpreter.__exit__()
        state.fw_level = 0
        state.fw_epoch += 1
        return False


def enter_dual_level():
    return dual_level().__enter__()


def exit_dual_level():
    dual_level().__exit__()


def make_dual(tensor, tangent, *, level=None):
    """A view of ``tensor`` carrying ``tangent`` as its directional derivative."""
    if not state.fw_level:
        raise GraphError("make_dual must be called inside a `with forward_ad.dual_level():` block")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise ShapeError(f"make_dual: the tangent's shape {list(tangent.shape)} must match the primal's "
                         f"{list(tensor.shape)}")
    if not tensor.is_floating_point():
        raise GraphError(f"make_dual: expected a floating point primal, got {tensor.dtype}")
    dual = alias(tensor)
    dual._fw = (state.fw_epoch, tangent.to(tensor.dtype))
    return dual


def unpack_dual(tensor, *, level=None):
    """``(primal, tangent)``: the tangent is None outside a level or for a tensor without one."""
    tangent = tangent_of(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    primal = alias(tensor)
    primal._fw = None
    return UnpackedDualTensor(primal, tangent)


def tangent_of(tensor):
    fw = tensor._fw
    return fw[1] if fw is not None and state.fw_level and fw[0] == state.fw_epoch else None


def _jvp(op, args, params, tangents, result):
    """The output tangent of ``op`` from its jvp declaration, with the output's shape and dtype."""
    if op.jvp is ELEMENTWISE:
        tangent = None
        for rule, t in zip(op.vjp, tangents):
            if t is not None:
                term = rule(t, result, *args, **params)
                tangent = term if tangent is None else tangent + term
    elif op.jvp is LINEAR:
        tangent = bind(op, *_linear_args(args, tangents), **params)
    else:
        tangent = op.jvp(tangents, result, *args, **params)
    if tuple(tangent.shape) != tuple(result._data.shape):
        tangent = tangent.expand(result._data.shape)
    if tangent._data.dtype != result._data.dtype:
        tangent = tangent.to(result.dtype)
    return tangent


def _linear_args(args, tangents):
    """For an op linear in its float inputs: tangents, zeros for float inputs without one (Python
    numbers included: a constant term has no derivative), integer and bool tensors as they are."""
    out = []
    for a, t in zip(args, tangents):
        if t is not None:
            out.append(t)
        elif isinstance(a, Tensor):
            out.append(filled_like(a, 0) if a._data.dtype.kind == "f" else a)
        else:
            out.append(0 * a if isinstance(a, (int, float)) and not isinstance(a, bool) else a)
    return out
