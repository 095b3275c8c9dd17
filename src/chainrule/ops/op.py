"""The op record and the one dispatch point every op goes through.

A primitive op is one :class:`OpDef`: a pure ``forward`` on numpy arrays, an ``infer`` rule
(output shape and dtype from input shapes and dtypes, no data), per-input ``vjp`` rules written in
chainrule tensor ops (so backward can itself be recorded: double backward), a ``jvp`` rule for
forward mode, and a declaration of what the vjp rules need saved. Eager execution, forward mode
and the static graph compiler all read this one record; none of them has op-specific code.

``bind(op, *args, **params)`` is the dispatch point. ``args`` are tensors or plain constants
(Python numbers, index tuples); ``params`` are static attributes (``dim``, ``shape``, ...), which
are keyword arguments of every rule. Rules are called as::

    forward(*arrays, **params) -> ndarray
    infer(*metas, **params) -> (shape, numpy dtype)      # metas: objects with .shape and .dtype
    vjp[i](g, out, *inputs, **params) -> gradient for input i (before un-broadcasting)
    jvp(tangents, out, *inputs, **params) -> output tangent (tangents[i] is None when zero)

An input that the op does not declare saved reaches a vjp rule as a :class:`Meta` (shape and
dtype only), so the tape never keeps an array alive that backward does not read.
"""

import weakref

import numpy as np

from .._mode import Interpreter, enable_grad, push, state
from ..errors import ChainruleError, DTypeError, IndexOutOfRangeError, ShapeError
from ..tape import AccumulateGrad, OpNode
from ..tensor import Meta, Tensor, _wrap

ELEMENTWISE = "elementwise"  # diagonal Jacobian per input: jvp = sum_i vjp_i(tangent_i)
LINEAR = "linear"  # linear in its float tensor inputs: jvp = forward(tangents)


def bilinear_jvp(fn):
    """The jvp of an op linear in each of its two tensor inputs (matmul, conv2d, ...): ``fn(dx, y) +
    fn(x, dy)``, a term for each input that has a tangent (None when neither has); ``fn(x, y, **params)``
    applies the op."""
    def jvp(tangents, out, x, y, **params):
        dx, dy = tangents
        terms = [fn(a, b, **params) for a, b, t in ((dx, y, dx), (x, dy, dy)) if t is not None]
        return terms[0] + terms[1] if len(terms) == 2 else terms[0] if terms else None

    return jvp


class OpDef:
    """One primitive op: see the module docstring for the rules; the declarations below tell every
    mode what it needs to know about the op, so no module outside ``ops/`` looks at an op's name.

    Declarations (all optional):

    ``view`` / ``view_inverse``
        the output may share memory with input 0 (and so shares its version counter);
        ``view_inverse(base, value, **params)`` is ``base`` with the viewed region replaced by
        ``value``, in chainrule ops: how an in-place write through the view reaches its root.
    ``takes_out``
        ``forward`` accepts ``out=``, which may be one of its inputs (true for every numpy ufunc): a
        compiler may let it write into a reused buffer.
    ``elementwise``
        output element i reads only element i of each (broadcast) input: with ``takes_out``, a compiler
        may fuse it into a kernel of elementwise steps.
    ``broadcasts``
        the output is input 0 broadcast to a shape by numpy's rules (``expand``): an elementwise op
        reading it may read input 0 instead wherever broadcasting gives the same result shape.
    ``fresh``
        the output is newly allocated memory (never an input's), so a memory planner may reuse it;
        defaults to ``not view``.
    ``lower``
        ``lower(args, params, dtype) -> str``: a Python expression computing the op from the source
        expressions ``args``, ``params`` (a dict) and ``dtype`` (the result's), for readable generated
        code (None: the code calls ``forward``).
    ``cuda``
        the op as a C expression for a generated GPU kernel: a template (``"{0} + {1}"``; operands by
        position, parameters by name, both as C source) or a function ``cuda(*operands, **params) -> str``;
        a compiler fuses a chain of elementwise steps into one kernel of these (see ``static/cuda.py``).
    ``identity`` / ``simplify``
        ``{input index: value}`` for which the op returns its other input unchanged (``x + 0``);
        ``simplify(node, uses)`` -> an equivalent simpler IR value, or None (algebraic rewrites; ``uses(n)``
        counts the nodes reading ``n``).
    ``explain`` / ``infix``
        one text per input describing its vjp (``{0}``, ``{1}`` name the inputs; a dict
        ``{"*": ...}`` serves every input of a variadic op), and the operator that prints the op.
    ``export``
        its ONNX converter (see ``chainrule.onnx``).
    ``pure``
        same inputs, same output; False for random ops, which a compiler must not fold or merge.
    ``listed_inputs``
        the inputs (indices) its backward node lists in ``next_functions``, where PyTorch lists fewer
        than all (the non-differentiable target and class weights of ``nll_loss``); None: all.
    ``grad_name``
        the name of its backward node (``grad_fn.name()``) where PyTorch's differs from the one derived
        from ``name`` (a reshape shows as PyTorch's ``ViewBackward0``).
    """

    __slots__ = ("name", "forward", "infer", "vjp", "jvp", "saves", "saves_output", "view", "pure", "grad_name",
                 "doc", "view_inverse", "takes_out", "fresh", "lower", "identity", "simplify",
                 "explain", "infix", "export", "elementwise", "broadcasts", "listed_inputs", "cuda")

    def __init__(self, name, forward, infer, vjp=None, jvp=None, saves=None, saves_output=False, view=False,
                 pure=True, doc="", *, view_inverse=None, takes_out=None, fresh=None,
                 lower=None, identity=None, simplify=None, explain=None, infix=None, export=None,
                 elementwise=False, broadcasts=False, grad_name=None, listed_inputs=None, cuda=None):
        self.name = name
        self.forward = forward
        self.infer = infer
        self.vjp = vjp  # tuple of per-input rules, one joint rule (variadic ops), or None: not differentiable
        self.jvp = jvp
        self.saves = saves  # indices of the inputs the vjp reads; None means all of them
        self.saves_output = saves_output
        self.view = view
        self.pure = pure
        self.grad_name = grad_name or "".join(part.title() for part in name.split("_")) + "Backward0"
        self.doc = doc
        self.view_inverse = view_inverse
        self.takes_out = isinstance(forward, np.ufunc) if takes_out is None else takes_out
        self.fresh = (not view) if fresh is None else fresh
        self.lower = lower
        self.identity = identity
        self.simplify = simplify
        self.explain = explain
        self.infix = infix
        self.export = export
        self.elementwise = elementwise
        self.broadcasts = broadcasts
        self.listed_inputs = listed_inputs
        self.cuda = cuda

    def __repr__(self):
        return f"<op {self.name}>"

    def error(self, args, params, cause):
        """Turn a failure inside ``forward`` into an error that names the op and the shapes.

        The op's shape rule usually explains it precisely; if the rule finds nothing wrong the
        numpy message is passed on, prefixed with the op and its input shapes.
        """
        if isinstance(cause, ChainruleError):
            return cause
        devices = list(dict.fromkeys(a.device for a in args if isinstance(a, Tensor)))
        if len(devices) > 1:  # checked only once the forward failed: free on the hot path
            return RuntimeError(f"{self.name}: Expected all tensors to be on the same device, but found at least "
                                f"two devices, {devices[0]} and {devices[1]}!")
        metas = [_meta_of(a) for a in args]
        shapes = ", ".join(str(tuple(m.shape)) if isinstance(m, Meta) else repr(m) for m in metas)
        try:
            self.infer(*metas, **params)
        except ChainruleError as exc:  # the rule's own explanation
            return exc
        except (IndexError, TypeError, ValueError) as exc:  # a plain error from the rule: name the op
            cause = exc
        except Exception:  # noqa: BLE001 - the shape rule itself choked: report the original cause
            pass
        if isinstance(cause, IndexError):
            kind = IndexOutOfRangeError
        elif isinstance(cause, TypeError):
            kind = DTypeError
        else:
            kind = ShapeError
        message = str(cause) if str(cause).startswith(self.name) else f"{self.name}: {cause}"
        return kind(f"{message} (inputs: {shapes})")


OPS = {}


def defop(name, forward, infer, vjp=None, jvp=None, saves=None, saves_output=False, view=False, pure=True, doc="",
          **declarations):
    """Define and register a primitive op; returns its :class:`OpDef` (``declarations``: see OpDef)."""
    if name in OPS:
        raise ValueError(f"op {name!r} is already defined")
    op = OpDef(name, forward, infer, vjp, jvp, saves, saves_output, view, pure, doc, **declarations)
    OPS[name] = op
    return op


def _meta_of(value):
    if isinstance(value, Tensor):
        return Meta(value._data.shape, value._data.dtype)
    return value


def _mark_view(result, source, op, params):
    """Record that ``result`` shares memory with ``source``: one version counter, and the chain of
    view ops from the root tensor (what an in-place op on the view replays to update the root)."""
    result._version = source._version
    root, chain = (source, ()) if source._base is None else source._base[:2]
    result._base = (root, chain + ((op, params),), root.grad_fn)


def grad_edge(t):
    """Where ``t``'s gradient flows: ``(its grad_fn, output number)``, or its leaf's AccumulateGrad.

    A view whose root was changed in place since the view was taken first re-derives its history
    from the root's new one, so its gradient flows through the change (as PyTorch does).
    """
    if t._base is None:  # not a view: the common case, first
        fn = t.grad_fn
        return (fn, t._out_nr) if fn is not None else (_accumulator(t), 0)
    root, chain, root_fn = t._base
    if root.grad_fn is not root_fn and root._requires_grad:
        with enable_grad():
            fresh = root
            for view_op, params in chain:
                fresh = bind(view_op, fresh, **params)
        t.grad_fn, t._out_nr, t._requires_grad = fresh.grad_fn, fresh._out_nr, True
        t._base = (root, chain, root.grad_fn)
    fn = t.grad_fn
    return (fn, t._out_nr) if fn is not None else (_accumulator(t), 0)


def _accumulator(t):
    """A leaf's AccumulateGrad node; kept weakly, so it lives exactly as long as a graph uses it."""
    ref = t._accum
    node = ref() if ref is not None else None
    if node is None:
        node = AccumulateGrad(t)
        t._accum = weakref.ref(node)
    return node


def bind(op, *args, **params):
    """Apply ``op`` under the current modes: the interpreter on top of the stack handles it."""
    return state.top.process(op, args, params)


class Evaluate(Interpreter):
    """The bottom of the stack: run the op's forward on arrays (eager mode)."""

    rank = 0

    def process(self, op, args, params):
        try:
            if len(args) == 2:  # most ops: spelled out, it is the hot path
                a, b = args
                out = op.forward(a._data if isinstance(a, Tensor) else a, b._data if isinstance(b, Tensor) else b,
                                 **params)
            elif len(args) == 1:
                a = args[0]
                out = op.forward(a._data if isinstance(a, Tensor) else a, **params)
            else:
                out = op.forward(*[a._data if isinstance(a, Tensor) else a for a in args], **params)
        except Exception as exc:
            raise op.error(args, params, exc) from None
        result = _wrap(out)
        if op.view and result._data.base is not None and (result._data.base is args[0]._data  # (cheap check first)
                                                          or np.may_share_memory(result._data, args[0]._data)):
            _mark_view(result, args[0], op, params)
        return result

    def apply_function(self, call):
        return call.run_forward()


class RecordTape(Interpreter):
    """The top of the stack: give results of differentiable ops a backward node while grad mode is
    on. It records after the modes below ran, so the node can save the output's tangent too."""

    rank = 3

    def process(self, op, args, params):
        result = self.below.process(op, args, params)
        if state.grad_enabled and op.vjp is not None and result._data.dtype.kind == "f":  # never int/bool
            if len(args) == 1:  # unary ops: no lists to build
                a = args[0]
                if isinstance(a, Tensor) and a._requires_grad:
                    result.grad_fn = OpNode(op, args, params, result, (grad_edge(a),), [True])
                    result._requires_grad = True
                return result
            if len(args) == 2:  # binary ops: spelled out, no lists to grow
                a, b = args
                need_a = isinstance(a, Tensor) and a._requires_grad
                need_b = isinstance(b, Tensor) and b._requires_grad
                if need_a or need_b:
                    edges = (grad_edge(a) if need_a else None, grad_edge(b) if need_b else None)
                    result.grad_fn = OpNode(op, args, params, result, edges, [need_a, need_b])
                    result._requires_grad = True
                return result
            needs = [isinstance(a, Tensor) and a._requires_grad for a in args]
            if True in needs:
                edges = tuple(grad_edge(a) if need else None for a, need in zip(args, needs))
                result.grad_fn = OpNode(op, args, params, result, edges, needs)
                result._requires_grad = True
        return result

    def apply_function(self, call):
        outputs = self.below.apply_function(call)
        call.record(outputs, state.grad_enabled)
        return outputs


push(Evaluate())
push(RecordTape())
