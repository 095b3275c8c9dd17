"""Tracing a model with concrete values: a recording mode of ``bind``.

While a :class:`Recorder` is ``state.tracer``, every primitive op still computes its value with
``op.forward`` (so Python control flow, ``.shape`` and ``.item()`` in a forward work as in eager
mode), and the call is also appended to ``recorder.nodes``. Module calls are scopes: every module
of the model gets a temporary instance ``forward`` that pushes its path, so each recorded node knows
which module it ran in. A module that ``leaf(module)`` accepts is recorded as one node of kind
``"module"``: its forward runs with the tracer switched off, so its inner primitives are not seen.

The ONNX exporter (leaves: the layers it maps to one ONNX node) and TensorBoard's ``add_graph``
(no leaves: every primitive) both read this one record. Nothing here imports the ``onnx`` package.

A tensor the trace did not produce (a parameter, a buffer, a constant made inside ``forward``) is
a :class:`Value` of kind ``"param"``, ``"buffer"`` or ``"const"`` when it is first used. A new
tensor object over the same array as a traced value (``detach()``, ``.data``) is that value.
"""

import inspect
import warnings

import numpy as np

from .._mode import Interpreter, no_grad, pop, push, suspended
from ..ops.op import bind as _bind
from ..tensor import Tensor, _write_result


class Value:
    """One value of the trace: an input, a parameter/buffer/constant, or a node's output."""

    __slots__ = ("index", "kind", "tensor", "name", "producer", "live")

    def __init__(self, index, kind, tensor, name=None, producer=None, live=False):
        self.index = index
        self.kind = kind  # "input", "param", "buffer", "const" or "node"
        self.tensor = tensor  # the concrete value seen while tracing
        self.name = name  # inputs: the argument name; params/buffers: the state_dict key
        self.producer = producer  # the Node that computed it (kind "node")
        self.live = live  # depends on a model input (else constant folding may replace it)

    @property
    def shape(self):
        return tuple(self.tensor._data.shape)

    @property
    def dtype(self):
        return self.tensor._data.dtype

    def __repr__(self):
        return f"<Value %{self.index} {self.kind} {self.name or ''} {self.shape}>"


class Scope:
    """A module call: its dotted path in the model ("" for the model), the module, and its parent."""

    __slots__ = ("path", "module", "parent", "label")

    def __init__(self, path, module, parent, label):
        self.path = path
        self.module = module
        self.parent = parent
        self.label = label  # "Conv2d[0]": the class and the attribute name, as PyTorch's graph shows it

    def labels(self):
        out, s = [], self
        while s is not None:
            out.append(s.label)
            s = s.parent
        return out[::-1]

    def describe(self):
        name = type(self.module).__name__
        return f"module '{self.path}' ({name})" if self.path else f"the model's own forward ({name})"


class Node:
    """One recorded call: a primitive op, a leaf module, or a custom autograd Function."""

    __slots__ = ("kind", "op", "module", "function", "inputs", "args", "kwargs", "params", "outputs", "scope")

    def __init__(self, kind, scope, inputs, outputs, op=None, module=None, function=None, args=(), kwargs=None,
                 params=None):
        self.kind = kind  # "op", "module" or "function"
        self.scope = scope
        self.inputs = inputs  # op: one entry per argument, a Value or the plain constant itself
        self.outputs = outputs  # list of Values
        self.op = op
        self.module = module
        self.function = function
        self.args = args  # module / function: the positional arguments as given (tensors untouched)
        self.kwargs = kwargs or {}
        self.params = params or {}

    @property
    def name(self):
        if self.kind == "op":
            return self.op.name
        if self.kind == "module":
            return type(self.module).__name__
        return self.function.__name__

    def values(self):
        """The Values among the inputs."""
        return [v for v in self.inputs if isinstance(v, Value)]

    def __repr__(self):
        ins = ", ".join(f"%{v.index}" if isinstance(v, Value) else repr(v) for v in self.inputs)
        outs = ", ".join(f"%{v.index}" for v in self.outputs)
        return f"{outs} = {self.name}({ins}) in {self.scope.path!r}"


class Recorder(Interpreter):
    """The tracer: see the module docstring. Use :func:`trace` rather than this class directly."""

    def __init__(self, model, leaf=None):
        self.model = model
        self.leaf = leaf or (lambda module: False)
        self.nodes = []
        self.values = []
        self.inputs = []
        self.outputs = []
        self._by_id = {}  # id(tensor) -> (tensor, Value): the tensor is kept so its id stays unique
        self._by_array = {}  # id(array) -> (array, Value)
        self._owned = {}  # id(parameter or buffer) -> (kind, state_dict key, owning module path, attribute)
        self._scope = None
        self._stale = {}  # id(Value) -> description: values whose memory an in-place op changed afterwards
        self.scopes = {}  # module path -> Scope of its first call
        if model is not None:
            for path, module in model.named_modules(remove_duplicate=False):
                for attr, p in module._parameters.items():
                    if p is not None:
                        self._owned.setdefault(id(p), ("param", _join(path, attr), path, attr))
                for attr, b in module._buffers.items():
                    if b is not None:
                        self._owned.setdefault(id(b), ("buffer", _join(path, attr), path, attr))

    # --- values -----------------------------------------------------------------------------------
    def _new_value(self, kind, tensor, name=None, producer=None, live=False):
        v = Value(len(self.values), kind, tensor, name, producer, live)
        self.values.append(v)
        self._remember(tensor, v)
        return v

    def _remember(self, tensor, value):
        self._by_id[id(tensor)] = (tensor, value)
        self._by_array[id(tensor._data)] = (tensor._data, value)

    def add_input(self, tensor, name):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"model inputs must be tensors, got {type(tensor).__name__} for input {name!r}")
        known = self.lookup(tensor, create=False)
        if known is not None:
            return known
        v = self._new_value("input", tensor, name=name, live=True)
        self.inputs.append(v)
        return v

    def lookup(self, tensor, create=True):
        """The Value of a tensor argument; a tensor not seen before becomes a param/buffer/const."""
        hit = self._by_id.get(id(tensor))
        if hit is not None and hit[0] is tensor:
            if id(hit[1]) in self._stale:
                warnings.warn(f"tracing: {self._stale.pop(id(hit[1]))}; the traced graph uses the value from "
                              "before that change (clone() the tensor before changing it in place)", stacklevel=4)
            return hit[1]
        hit = self._by_array.get(id(tensor._data))
        if hit is not None and hit[0] is tensor._data:  # detach(), .data: the same array, a new tensor
            self._by_id[id(tensor)] = (tensor, hit[1])
            return hit[1]
        if not create:
            return None
        owned = self._owned.get(id(tensor))
        if owned is not None:
            return self._new_value(owned[0], tensor, name=owned[1])
        return self._new_value("const", tensor)

    def owner(self, value):
        """(module path, attribute) of a parameter or buffer Value; None for anything else."""
        owned = self._owned.get(id(value.tensor))
        return None if owned is None else (owned[2], owned[3])

    def _arg(self, a):
        return self.lookup(a) if isinstance(a, Tensor) else a

    def _record(self, kind, inputs, results, **fields):
        live = any(v.live for v in inputs if isinstance(v, Value))
        node = Node(kind, self._scope, inputs, [], **fields)
        for r in results:
            node.outputs.append(self._new_value("node", r, producer=node, live=live))
        self.nodes.append(node)
        return node

    # --- the tracer protocol (what bind, Function.apply and in-place ops call) ---------------------
    rank = 1

    def process(self, op, args, params):
        with self.paused():  # compute exactly as eager mode does, then record
            result = _bind(op, *args, **params)
        self._record("op", [self._arg(a) for a in args], [result], op=op, params=dict(params))
        return result

    def apply_function(self, call):
        with self.paused():
            result = self.below.apply_function(call)
        self._record("function", [self._arg(a) for a in call.args], [o for o in result[0] if isinstance(o, Tensor)],
                     function=call.cls, args=call.args, kwargs=call.kwargs)
        return result

    def inplace(self, t, fn, args):
        result = fn(t, *args)  # recorded like any out-of-place computation
        if result._data.dtype != t._data.dtype:
            result = result.to(t.dtype)
        _write_result(t, fn, result)
        new = self.lookup(result)
        self._mark_stale(t._data, new, f"{fn.__name__}_ changed a tensor in place")
        self._remember(t, new)  # later uses of t read the new value
        return t

    def _mark_stale(self, array, new, what):
        """Other traced values over ``array``'s memory (views) silently changed with it: the graph cannot
        follow that, so a later use of one of them warns."""
        for other, value in list(self._by_array.values()):
            if value is not new and np.may_share_memory(other, array):
                scope = self._scope.describe() if self._scope is not None else "the model"
                self._stale[id(value)] = f"{what} (in {scope}) that shares memory with this one"

    # --- modules --------------------------------------------------------------------------------
    def paused(self):
        return suspended(self)

    def _wrap_forward(self, path, module, original):
        recorder = self

        def forward(*args, **kwargs):
            parent = recorder._scope
            name = path.rsplit(".", 1)[-1] if path else ""
            label = f"{type(module).__name__}[{name}]" if path else type(module).__name__
            scope = Scope(path, module, parent, label)
            recorder.scopes.setdefault(path, scope)
            recorder._scope = scope
            try:
                if not recorder.leaf(module):
                    return original(*args, **kwargs)
                with recorder.paused():
                    out = original(*args, **kwargs)
                inputs = [recorder._arg(a) for a in args]
                inputs += [recorder._arg(v) for v in kwargs.values()]
                results = _flat_tensors(out)
                node = recorder._record("module", inputs, results, module=module, args=args, kwargs=kwargs)
                for r, v in zip(results, node.outputs):
                    if getattr(module, "inplace", False) and any(r is a for a in args):  # ReLU(inplace=True)
                        recorder._mark_stale(r._data, v, f"{type(module).__name__}(inplace=True) changed a tensor")
                return out
            finally:
                recorder._scope = parent

        forward.__wrapped__ = original
        return forward

    def run(self, args, kwargs=None):
        """Call the model on ``args`` under the tracer (no_grad); returns its output."""
        kwargs = kwargs or {}
        names = _argument_names(self.model, len(args), kwargs)
        for a, name in zip(list(args) + list(kwargs.values()), names):
            if isinstance(a, Tensor):
                self.add_input(a, name)
        patched = []
        seen = set()
        for path, module in self.model.named_modules(remove_duplicate=False):
            if id(module) in seen:
                continue
            seen.add(id(module))
            had = "forward" in module.__dict__
            previous = module.__dict__.get("forward")
            object.__setattr__(module, "forward", self._wrap_forward(path, module, module.forward))
            patched.append((module, had, previous))
        push(self)
        try:
            with no_grad():
                out = self.model(*args, **kwargs)
        finally:
            pop(self)
            for module, had, previous in patched:
                if had:
                    object.__setattr__(module, "forward", previous)
                else:
                    object.__delattr__(module, "forward")
        self.outputs = [self.lookup(t) for t in _flat_tensors(out)]
        return out

    def needed(self):
        """The nodes the outputs depend on, in recording order."""
        keep = set()
        stack = [v for v in self.outputs]
        seen = set()
        while stack:
            v = stack.pop()
            if v.index in seen:
                continue
            seen.add(v.index)
            if v.producer is not None:
                keep.add(id(v.producer))
                stack.extend(v.producer.values())
        return [n for n in self.nodes if id(n) in keep]


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


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _flat_tensors(out):
    """The tensors of a (nested) tuple/list/dict output, in order."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat_tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _flat_tensors(o)]
    return []


def _argument_names(model, n_args, kwargs):
    """Names for the model's inputs: its forward's parameter names where they can be read."""
    try:
        params = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [params[i].name if i < len(params) else f"input_{i}" for i in range(n_args)]
    return names + list(kwargs)


def trace(model, args, kwargs=None, leaf=None):
    """Run ``model(*args, **kwargs)`` once, recording every primitive op; returns the Recorder.

    ``leaf(module) -> bool`` picks modules recorded as one node each (their insides unrecorded).
    """
    recorder = Recorder(model, leaf)
    recorder.run(tuple(args), kwargs)
    return recorder
