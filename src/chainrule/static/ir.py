"""Building a static graph: placeholders, symbolic tensors, the tracer that records IR nodes.

Inside ``with Graph() as g:`` the graph is the mode that computes values in the interpreter stack
behind ``bind``: :meth:`Graph.process` runs only the op's ``infer`` rule (shapes and dtypes, no data)
and records an IR node. The tape mode above it still records backward nodes for inputs that
require grad, so the unchanged reverse-mode engine can later differentiate the graph: run while the
graph is active, the vjp rules call ``bind`` again and so emit the backward graph as more IR nodes
(``gradients``). Forward mode, likewise, traces tangents into the graph.

A :class:`SymbolicTensor` is a :class:`~chainrule.Tensor` whose ``_data`` is an
:class:`AbstractArray` (shape, dtype, no data), so the ops' Python wrappers run unchanged on it.
Unknown sizes are :class:`Dim` objects: "the size of IR value v along axis a at run time".
"""

import functools
import linecache
import operator
import os
import sys

import numpy as np

from .. import _dtype
from .._mode import Interpreter, no_grad, pop, push, state
from ..autograd.engine import grad as autograd_grad
from ..errors import ChainruleError, GraphError, ShapeError
from ..ops import infer as _infer
from ..ops.creation import fill_op
from ..ops.op import Meta, bind
from ..tensor import Size, Tensor, _init
from .node import Dim, Node, TracingError, _size_error, shape_text, site_text, type_text
from .printing import format_nodes

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _refusal(what):
    """A method that raises ``_value_error(what)``: what needs a value a symbolic tensor does not have."""
    def refuse(self, *args, **kwargs):
        raise _value_error(what)

    return refuse


def _value_error(what):
    return TracingError(
        f"{what} needs the value of a symbolic tensor, but values are unknown while a static graph is "
        "being built or a function is being traced by chainrule.compile (only shapes and dtypes are known). "
        "Data-dependent Python control flow cannot be recorded: use chainrule.where(cond, a, b) for a "
        "data-dependent choice, or move the branch (and .item()/float()/.numpy()) outside the traced function "
        "and call it on the tensors that program.run / the compiled function returns."
    )


# --- the abstract array and the symbolic tensor --------------------------------------------------------
class _NeedsValue:
    """What a symbolic value refuses, being without data: conversions to Python and numpy values."""

    __slots__ = ()
    __array__ = _refusal("converting a tensor to a numpy array")
    __bool__ = _refusal("bool(tensor) (an `if`/`while` on a tensor)")
    __float__ = _refusal("float(tensor)")
    __int__ = _refusal("int(tensor)")
    item = _refusal(".item()")
    tolist = _refusal(".tolist()")


class AbstractArray(_NeedsValue):
    """What a symbolic tensor holds instead of an ndarray: shape, dtype and the IR node, no data."""

    __slots__ = ("node", "shape", "dtype")
    base = None
    __array_ufunc__ = None  # numpy defers to us (and we refuse): no silent object arrays

    def __init__(self, node):
        self.node = node
        self.shape = node.shape
        self.dtype = node.dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return functools.reduce(operator.mul, self.shape, 1)

    @property
    def itemsize(self):
        return self.dtype.itemsize

    def __chainrule_tensor__(self):
        return SymbolicTensor._make(self)

    def copy(self):  # IR values are immutable: a copy is the same value
        return self

    def view(self, *args):
        return self

    __getitem__ = _refusal("reading array elements")
    __setitem__ = _refusal("writing into a tensor's array (fill_/zero_/uniform_ on a symbolic tensor)")

    def __repr__(self):
        return f"AbstractArray({self.node.label()}: {type_text(self.shape, self.dtype)})"


class SymbolicTensor(_NeedsValue, Tensor):
    """A tensor of a static graph: shape and dtype known, value computed only by ``program.run``."""

    __slots__ = ()

    @classmethod
    def _make(cls, array):
        t = object.__new__(cls)
        _init(t, array)
        return t

    @property
    def value(self):
        """The IR node this tensor stands for."""
        return self._data.node

    @property
    def name(self):
        return self._data.node.name

    @property
    def shape(self):
        return SymbolicSize(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return SymbolicSize(self._data.shape)
        return self._data.shape[dim]

    def numel(self):
        return self._data.size

    numpy = _refusal(".numpy()")
    __index__ = _refusal("using a tensor as an index")

    def __len__(self):
        if not self._data.shape:
            raise TypeError("len() of a 0-d tensor")
        n = self._data.shape[0]
        if not _infer.known(n):
            raise _size_error(n)
        return int(n)

    def __repr__(self):
        node = self._data.node
        grad = f", grad_fn=<{self.grad_fn.name()}>" if self.grad_fn is not None else ""
        return f"SymbolicTensor({node.label()}, shape={shape_text(self._data.shape)}, dtype={self.dtype}{grad})"

    __str__ = __repr__


class SymbolicSize(Size):
    """The shape of a symbolic tensor: unknown sizes print (and compare) as None."""

    __slots__ = ()

    def __repr__(self):
        return "chainrule.Size([" + ", ".join(str(s) if _infer.known(s) else "None" for s in self) + "])"

    def numel(self):
        return functools.reduce(operator.mul, self, 1)


# --- the graph ----------------------------------------------------------------------------------------
def user_site():
    """(file, line, code) of the first stack frame outside the chainrule package, or None."""
    f = sys._getframe(1)
    while f is not None:
        filename = f.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<frozen"):
            return (filename, f.f_lineno, linecache.getline(filename, f.f_lineno).strip())
        f = f.f_back
    return None


class Graph(Interpreter):
    """Records the ops applied to placeholders (and to the tensors they meet) as IR nodes.

    ``with Graph() as g:`` puts it in the interpreter stack as the mode that computes values: ops
    run only their shape rules and return symbolic tensors, while the modes above it (the tape,
    forward mode) work on those as on any tensor. Compiling and running may happen outside.
    """

    rank = 1

    def __init__(self, name=None):
        self.name = name
        self.nodes = []
        self.placeholders = []
        self.updates = {}  # concrete tensor -> SymbolicTensor of its new value (in-place ops while building)
        self.tag = "forward"
        self._vars = {}  # id(tensor) -> (node, tensor)
        self._consts = {}
        self._rebound = {}  # id(concrete tensor) -> (tensor, its own state, its state in this graph)
        self._saved_grads = {}  # id(tensor) -> (tensor, .grad before building); see chainrule.compile
        self._active = False

    # context ------------------------------------------------------------------------------------
    def __enter__(self):
        if self._active:
            raise GraphError("this Graph is already active")
        push(self)
        self._active = True
        for t, _, inside in self._rebound.values():
            _set_state(t, inside)
        return self

    def __exit__(self, *exc):
        for t, own, _ in self._rebound.values():
            _set_state(t, own)
        pop(self)
        self._active = False
        return False

    def activate(self):
        """Context manager making this graph the tracer again (a no-op if it already is)."""
        return _Reactivate(self)

    # nodes -----------------------------------------------------------------------------------------
    def _symbolic(self, node, requires_grad=False):
        t = SymbolicTensor._make(AbstractArray(node))
        t._requires_grad = requires_grad
        return t

    def placeholder(self, shape, dtype=None, name=None, requires_grad=None):
        np_dtype = _dtype.to_numpy_dtype(dtype) if dtype is not None else np.dtype(np.float32)
        if name is None:
            name = f"input{len(self.placeholders)}"
        if any(p.name == name for p in self.placeholders):
            raise ValueError(f"placeholder: a placeholder named {name!r} already exists in this graph")
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        node = Node(self, "placeholder", None, (), {}, (), np_dtype, user_site(), "input", name=name)
        dims = []
        for axis, s in enumerate(shape):
            if s is None or (isinstance(s, (int, np.integer)) and s < 0):
                dims.append(Dim(node, axis))
            elif isinstance(s, (int, np.integer)):
                dims.append(int(s))
            else:
                raise TypeError(f"placeholder: sizes must be ints or None, got {s!r}")
        node.shape = tuple(dims)
        self.placeholders.append(node)
        if requires_grad is None:
            requires_grad = np_dtype.kind == "f"
        return self._symbolic(node, bool(requires_grad) and np_dtype.kind == "f")

    def _variable(self, t):
        entry = self._vars.get(id(t))
        if entry is not None:
            return entry[0]
        node = Node(self, "variable", None, (), {}, tuple(t._data.shape), t._data.dtype, user_site(), "input", data=t)
        self._vars[id(t)] = (node, t)
        if t._requires_grad and id(t) not in self._saved_grads:
            self._saved_grads[id(t)] = (t, t.grad)
        return node

    def _constant(self, value):
        try:
            key = (type(value), value)
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in self._consts:
            return self._consts[key]
        if isinstance(value, (bool, int, float, complex, np.generic)):
            shape, dtype = (), _infer.dtype_of(value)
        elif isinstance(value, np.ndarray):
            shape, dtype = value.shape, value.dtype
        else:
            shape, dtype = (), np.dtype(object)
        node = Node(self, "constant", None, (), {}, tuple(shape), dtype, None, "const", data=value)
        if key is not None:
            self._consts[key] = node
        return node

    def _node_of(self, a):
        """The IR node for one argument: its symbolic value, a variable for a concrete tensor, or a constant."""
        if isinstance(a, Tensor):
            if type(a._data) is AbstractArray:
                node = a._data.node
                if node.graph is not self:
                    raise GraphError(f"a symbolic tensor of another static graph ({node.label()}) was used in this one")
                return node
            return self._variable(a)
        return self._constant(a)

    def process(self, op, args, params):
        """Record ``op(*args, **params)``: check shapes with its infer rule and add an IR node."""
        site = user_site()
        inputs = tuple(self._node_of(a) for a in args)
        metas = [Meta(a._data.shape, a._data.dtype) if isinstance(a, Tensor) else a for a in args]
        try:
            shape, dtype = op.infer(*metas, **params)
        except (ChainruleError, ValueError, IndexError, TypeError) as exc:
            raise _with_site(exc, site) from None
        node = Node(self, "op", op, inputs, params, (), dtype, site, self.tag)
        node.shape = tuple(Dim(node, axis) if not _infer.known(s) and not isinstance(s, Dim) else s
                           for axis, s in enumerate(shape))
        return self._symbolic(node)

    def apply_function(self, call):
        """``Function.apply`` while tracing: forward is traced (it must use chainrule ops); the tape
        mode above records the node whose ``backward`` runs symbolically under ``gradients``."""
        return call.run_forward()

    # in-place ops ------------------------------------------------------------------------------------
    def inplace(self, t, fn, args):
        """An in-place op while building. The tensor is rebound to the new symbolic value, so later
        uses in this graph see it; on a concrete tensor (a parameter, a buffer) it is also recorded as
        an *update*, which every ``program.run`` writes into the tensor's array. The tensor gets its
        own data back when the graph block exits."""
        concrete = id(t) in self._rebound or type(t._data) is not AbstractArray
        if isinstance(t, SymbolicTensor):
            self._refuse_inplace_through_views(t, fn)
        elif state.grad_enabled and t._requires_grad and t.grad_fn is None:
            raise GraphError(
                f"a leaf Variable that requires grad is being used in an in-place operation ({fn.__name__}_). "
                "Wrap it in `with chainrule.no_grad():` if this is a parameter update."
            )
        result = fn(t, *args)
        if not isinstance(result, Tensor):
            raise GraphError(f"{fn.__name__}_: expected a tensor result")
        if tuple(result._data.shape) != tuple(t._data.shape):
            raise _with_site(ShapeError(
                f"{fn.__name__}_: output with shape {shape_text(t._data.shape)} doesn't match the broadcast "
                f"shape {shape_text(result._data.shape)}"), user_site())
        if result._data.dtype != t._data.dtype:
            with no_grad() if not result._requires_grad else _null():
                result = result.to(_dtype.from_numpy_dtype(t._data.dtype))
        if concrete:
            own = self._rebound[id(t)][1] if id(t) in self._rebound else _state_of(t)
            inside = (result._data, result.grad_fn, result._out_nr, result._requires_grad or t._requires_grad)
            self._rebound[id(t)] = (t, own, inside)
            self.updates[t] = result
        _set_state(t, (result._data, result.grad_fn, result._out_nr, result._requires_grad or t._requires_grad))
        return t

    def _refuse_inplace_through_views(self, t, fn):
        """Rebinding a symbolic tensor cannot reach the tensors that share its memory in eager mode (the
        one it views, or views of it); refuse rather than compute something eager mode would not."""
        node = t._data.node
        viewed_by = [n for n in self.nodes if n.kind == "op" and n.op.view and node in n.inputs]
        if (node.kind == "op" and node.op.view) or viewed_by:
            raise _with_site(GraphError(
                f"{fn.__name__}_ inside a static graph on a tensor that is {'a view' if not viewed_by else 'viewed'} "
                f"({(node.op if not viewed_by else viewed_by[0].op).name}): the change would not reach the tensors "
                "sharing its memory. Use the out-of-place op (y = y * 2) or index_put/masked_fill instead."),
                user_site())

    # reading -----------------------------------------------------------------------------------------
    def ir(self):
        return format_nodes(self.nodes)

    def __repr__(self):
        return f"<static Graph: {len(self.nodes)} nodes, {len(self.placeholders)} placeholders>"


def _state_of(t):
    return (t._data, t.grad_fn, t._out_nr, t._requires_grad)


def _set_state(t, values):
    t._data, t.grad_fn, t._out_nr, t._requires_grad = values


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Reactivate:
    def __init__(self, graph):
        self.graph = graph
        self.entered = False

    def __enter__(self):
        if not self.graph._active:
            self.graph.__enter__()
            self.entered = True
        return self.graph

    def __exit__(self, *exc):
        if self.entered:
            self.graph.__exit__()
        return False


def _with_site(exc, site):
    """The same exception class, its message followed by the user's line."""
    if site is None:
        return exc
    message = f"{exc.args[0] if exc.args else exc} [at {site_text(site)}]"
    try:
        new = type(exc)(message)
    except Exception:  # noqa: BLE001 - exotic constructor: keep the original
        return exc
    return new


# --- public building functions -----------------------------------------------------------------------
def current_graph(what):
    graph = state.tracer
    if not isinstance(graph, Graph):
        raise GraphError(f"{what} must be called inside `with chainrule.static.Graph():`")
    return graph


def placeholder(shape, dtype=None, name=None, requires_grad=None):
    """A graph input of the given shape (``None`` = a size known only at run time) and dtype.

    Float placeholders require grad by default, so ``gradients`` can differentiate with respect to
    them; pass ``requires_grad=False`` to skip recording their tape.
    """
    return current_graph("placeholder()").placeholder(shape, dtype, name, requires_grad)


def full(shape, value, dtype):
    """A symbolic tensor filled with ``value`` (shape may hold Dims)."""
    return bind(fill_op, shape=tuple(shape), value=value, dtype=np.dtype(dtype))


def gradients(loss, wrt):
    """Symbolic gradients of ``loss`` with respect to each tensor in ``wrt`` (a tensor or a sequence).

    Runs the ordinary reverse-mode engine while the graph is the tracer, so the op library's vjp
    rules emit the backward graph as IR nodes (tagged ``backward``); the result can be
    differentiated again. Inputs that ``loss`` does not depend on get zeros. Returns a list (or one
    tensor when ``wrt`` is one tensor).
    """
    if not isinstance(loss, SymbolicTensor):
        raise TypeError(f"gradients: loss must be a symbolic tensor of a static graph, got {type(loss).__name__}")
    graph = loss._data.node.graph
    single = isinstance(wrt, Tensor)
    wrt = [wrt] if single else list(wrt)
    with graph.activate():
        previous_tag = graph.tag
        graph.tag = "backward"
        try:
            seed = full(loss._data.shape, 1.0, loss._data.dtype)
            wanted = [w for w in wrt if isinstance(w, Tensor) and w._requires_grad]
            grads = {}
            if wanted and loss._requires_grad:
                found = autograd_grad([loss], wanted, grad_outputs=[seed], create_graph=True, allow_unused=True)
                grads = {id(w): g for w, g in zip(wanted, found)}
            out = []
            for w in wrt:
                g = grads.get(id(w))
                if g is None:
                    if not isinstance(w, Tensor):
                        raise TypeError(f"gradients: wrt entries must be tensors, got {type(w).__name__}")
                    g = full(w._data.shape, 0.0, w._data.dtype)
                elif not isinstance(g, SymbolicTensor):  # a gradient that is a concrete tensor: make it a node
                    g = g + full(w._data.shape, 0.0, w._data.dtype)
                out.append(g)
        finally:
            graph.tag = previous_tag
    return out[0] if single else out
