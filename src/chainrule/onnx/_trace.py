"""Recording a model call into chainrule's static IR, with the module calls that made each node.

:func:`trace` builds a :class:`chainrule.static.Graph`: every tensor argument of the model becomes a
placeholder (``None`` for the axes named dynamic), the parameters and buffers its forward reads become
``variable`` nodes, and each op an IR node, exactly as ``cr.static`` records any function. While it
runs, a :class:`Recorder` stands in front of the graph as the tracer: it defers every op to the graph
and notes the module :class:`Scope` each new node was made in. Calls of modules that ``leaf(module)``
picks are kept as :class:`Call` records (the module, its input and output tensors), so the exporter can
write such a layer as one ONNX node instead of its ops.

The ONNX exporter and TensorBoard's ``add_graph`` both read this one record. Nothing here imports
the ``onnx`` package.
"""

import inspect
import warnings

from .._mode import Interpreter, no_grad
from ..errors import GraphError
from ..static import Graph, SymbolicTensor, placeholder
from ..tensor import Tensor


class Scope:
    """A module call: its dotted path in the model ("" for the model), the module, and its parent."""

    __slots__ = ("path", "module", "parent", "label")

    def __init__(self, path, module, parent):
        self.path = path
        self.module = module
        self.parent = parent
        name = path.rsplit(".", 1)[-1]
        self.label = f"{type(module).__name__}[{name}]" if path else type(module).__name__  # as PyTorch's graph

    def labels(self):
        return (self.parent.labels() if self.parent else []) + [self.label]

    def describe(self):
        name = type(self.module).__name__
        return f"module '{self.path}' ({name})" if self.path else f"the model's own forward ({name})"


class Call:
    """One call of a leaf module: its scope, its (first) tensor input and its output, tensors of the graph."""

    __slots__ = ("scope", "input", "output")

    def __init__(self, scope, input, output):
        self.scope = scope
        self.input = input
        self.output = output

    @property
    def module(self):
        return self.scope.module


class Recorder(Interpreter):
    """The tracer while the model runs: a mode just above the static graph that defers each op to it
    and notes the scope of the nodes it made."""

    rank = 1  # entered after the graph, so it sits directly above it

    def __init__(self, graph, leaf):
        self.graph = graph
        self.leaf = leaf
        self.scope = None
        self.scope_of = {}  # IR node id -> the Scope it was recorded in
        self.scopes = {}  # module path -> Scope of its first call
        self.calls = []  # Calls of leaf modules
        self.functions = []  # (custom autograd Function, Scope) in call order

    def process(self, op, args, params):
        start = len(self.graph.nodes)
        result = self.below.process(op, args, params)
        for node in self.graph.nodes[start:]:
            self.scope_of[node.id] = self.scope
        return result

    def apply_function(self, call):
        self.functions.append((call.cls, self.scope))
        return self.below.apply_function(call)

    def inplace(self, t, fn, args):
        try:
            return self.graph.inplace(t, fn, args)
        except GraphError:  # a symbolic tensor that shares memory with another (the graph refuses)
            where = self.scope.describe() if self.scope else "the model"
            warnings.warn(f"tracing: {fn.__name__}_ changed a tensor in place (in {where}) that shares memory with "
                          "another one; the traced graph gives that other tensor the value from before the change "
                          "(clone() the tensor before changing it in place)", stacklevel=3)
            t._data = fn(t, *args).to(t.dtype)._data
            return t

    def wrap(self, path, module):
        """A forward for ``module`` that runs the original inside the module's scope."""
        original = module.forward

        def forward(*args, **kwargs):
            parent = self.scope
            self.scope = self.scopes.setdefault(path, Scope(path, module, parent))
            try:
                out = original(*args, **kwargs)
            finally:
                self.scope = parent
            x = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, SymbolicTensor)), None)
            if self.leaf(module) and x is not None and isinstance(out, SymbolicTensor):
                # detached: new tensors on the same IR values, which a later in-place op does not rebind
                self.calls.append(Call(self.scopes[path], x.detach(), out.detach()))
            return out

        return forward


class UniqueNames:
    """Hands out names never given before: ``base``, then ``base_1``, ``base_2``, ..."""

    def __init__(self):
        self.taken = set()

    def __call__(self, base):
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


def split_args(args, kwargs=None, what="export"):
    """PyTorch's example arguments: a tensor, or a tuple whose last item may be a dict of keyword arguments."""
    if isinstance(args, Tensor):
        args = (args,)
    elif isinstance(args, list):
        args = tuple(args)
    elif not isinstance(args, tuple):
        raise TypeError(f"{what}: args must be a tensor or a tuple of arguments, got {type(args).__name__}")
    kwargs = dict(kwargs or {})
    if args and isinstance(args[-1], dict):
        kwargs.update(args[-1])
        args = args[:-1]
    return args, kwargs


def argument_names(model, args, kwargs):
    """Names for the model's tensor arguments: its forward's parameter names where they can be read."""
    try:
        params = [p.name for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [params[i] if i < len(params) else f"input_{i}" for i in range(len(args))] + list(kwargs)
    return [n for n, a in zip(names, list(args) + list(kwargs.values())) if isinstance(a, Tensor)]


def owners(model):
    """id(parameter or buffer) -> (state_dict key, owning module path, attribute)."""
    out = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for table in (module._parameters, module._buffers):
            for attr, t in table.items():
                if t is not None:
                    out.setdefault(id(t), (f"{path}.{attr}" if path else attr, path, attr))
    return out


def trace(model, args, kwargs, names, dynamic=None, leaf=None):
    """Record ``model(*args, **kwargs)`` (no grad) into a static graph; returns (recorder, placeholders, outputs).

    ``names`` name the tensor arguments' placeholders; ``dynamic`` maps a name to the axes whose size is
    left unknown (``None``); ``leaf(module) -> bool`` picks the modules kept as :class:`Call` records.
    """
    dynamic = dynamic or {}
    graph = Graph(type(model).__name__)
    recorder = Recorder(graph, leaf or (lambda module: False))
    tensors = iter(names)
    with graph:
        feeds = [_placeholder(a, next(tensors), dynamic) if isinstance(a, Tensor) else a
                 for a in list(args) + list(kwargs.values())]
    args, kwargs = feeds[:len(args)], dict(zip(kwargs, feeds[len(args):]))
    paths = {id(m): path for path, m in reversed(list(model.named_modules(remove_duplicate=False)))}
    patched = [(m, m.__dict__.get("forward")) for m in {id(m): m for m in model.modules()}.values()]
    for module, _ in patched:
        object.__setattr__(module, "forward", recorder.wrap(paths[id(module)], module))
    try:
        with no_grad(), graph, recorder:
            out = model(*args, **kwargs)
    finally:
        for module, own_forward in patched:  # give back a forward set on the instance, else the class's
            if own_forward is None:
                object.__delattr__(module, "forward")
            else:
                object.__setattr__(module, "forward", own_forward)
    return recorder, [f for f in feeds if isinstance(f, SymbolicTensor)], _flat_tensors(out)


def _placeholder(t, name, dynamic):
    shape = list(t.shape)
    for axis in dynamic.get(name, ()):
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"dynamic axis {axis} of input {name!r} is out of range for shape {shape}")
        shape[axis] = None
    return placeholder(tuple(shape), t.dtype, name=name, requires_grad=False)


def _flat_tensors(out):
    """The tensors of a (nested) tuple/list/dict output, in order."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat_tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _flat_tensors(o)]
    return []
