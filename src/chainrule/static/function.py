"""``chainrule.compile``: trace a Python function of tensors (and modules) into a static graph on its
first call per input signature, compile it, cache the program, and run compiled afterwards.

What the traced function may do: any chainrule ops and ``nn.Module`` calls on its tensor
arguments and on captured tensors (parameters are graph variables, read at run time, so an
optimizer's in-place update is seen by the next call); ``loss.backward()`` (the parameters'
gradients become program outputs, accumulated into ``.grad`` after each call as eager backward
would, or replacing it when the function called ``opt.zero_grad()``); in-place updates of captured
tensors under ``no_grad`` (written back after each call); a whole training step::

    @chainrule.compile
    def step(x, y):
        opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step(); return loss

with any chainrule optimizer: ``opt.step()`` records the updates of the parameters and of the
optimizer's state tensors, and reads the hyperparameters (``lr`` set by a scheduler, ...) when the
program runs. Not replayed by a compiled call: the optimizer's step hooks (they ran once, while
tracing); after ``opt.load_state_dict`` (new state tensors) create the compiled function again.
What it may not do: Python control flow on tensor *values* (``if x.sum() > 0``, ``.item()``,
``float(x)``, ``.numpy()``) — those raise :class:`~chainrule.static.TracingError` while tracing;
use ``chainrule.where`` or move the branch outside. Python control flow on shapes and on
non-tensor arguments is fine (it is baked in; a new shape or argument value retraces).
"""

import functools

import numpy as np

from .. import _dtype
from ..autograd.grad_mode import state
from ..optim.optimizer import recording_grad_resets
from ..tensor import Tensor, _wrap
from .cuda import common_device
from .ir import AbstractArray, Graph, SymbolicTensor
from .program import Program


def _is_module(obj):
    return hasattr(obj, "parameters") and hasattr(obj, "forward") and callable(obj.parameters)


def _signature(value):
    if isinstance(value, Tensor):
        return ("T", tuple(value._data.shape), value._data.dtype.str, value._requires_grad, type(value._data))
    if _is_module(value):
        return ("M", id(value), tuple(id(p) for p in value.parameters()), bool(getattr(value, "training", False)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(_signature(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple((k, _signature(v)) for k, v in sorted(value.items(), key=lambda kv: repr(kv[0])))
    try:
        hash(value)
        return ("C", type(value).__name__, value)
    except TypeError:
        return ("O", id(value))


class CompiledFunction:
    """The callable ``chainrule.compile(fn)`` returns; ``trace_count`` counts traces (one per signature)."""

    def __init__(self, fn, optimize=True, threads=None):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.optimize = optimize
        self.threads = threads
        self.cache = {}
        self.trace_count = 0

    def __call__(self, *args, **kwargs):
        if state.tracer is not None:  # called while building another graph: just inline it
            return self.fn(*args, **kwargs)
        key = (_signature(args), _signature(kwargs), state.grad_enabled)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._trace(args, kwargs)
        return entry.call(args, kwargs)

    def program(self, *args, **kwargs):
        """The compiled program for this call signature (tracing it if needed)."""
        key = (_signature(args), _signature(kwargs), state.grad_enabled)
        if key not in self.cache:
            self.cache[key] = self._trace(args, kwargs)
        return self.cache[key].program

    def _trace(self, args, kwargs):
        self.trace_count += 1
        graph = Graph(name=getattr(self.fn, "__name__", "compiled"))
        counter = [0]
        feeds = []  # positions of the tensor arguments, in placeholder order
        arrays = []  # their arrays: the program runs on their device

        def to_symbolic(value, path):
            if isinstance(value, Tensor) and not isinstance(value, SymbolicTensor):
                arrays.append(value._data)
                name = f"arg{counter[0]}"
                counter[0] += 1
                ph = graph.placeholder(tuple(value._data.shape), _dtype_of(value), name=name,
                                       requires_grad=value._requires_grad)
                feeds.append(path)
                return ph
            if isinstance(value, (list, tuple)) and not _is_module(value):
                out = [to_symbolic(v, path + (k,)) for k, v in enumerate(value)]
                return type(value)(out) if not hasattr(value, "_fields") else type(value)(*out)
            if isinstance(value, dict):
                return {k: to_symbolic(v, path + (k,)) for k, v in value.items()}
            return value

        with graph, recording_grad_resets() as resets:
            sym_args = to_symbolic(args, ("args",))
            sym_kwargs = to_symbolic(kwargs, ("kwargs",))
            result = self.fn(*sym_args, **sym_kwargs)
        # parameters whose .grad backward() set while tracing: program outputs, their .grad restored now.
        # Each call adds the output to .grad as a backward would, or, where zero_grad() ran inside the
        # function, replaces .grad (overwrites it in place for set_to_none=False)
        grad_targets = []
        for t, old in list(graph._saved_grads.values()) + [(t, old) for t, old, _ in resets.values()]:
            if isinstance(t.grad, SymbolicTensor):
                how = "add" if id(t) not in resets else "replace" if resets[id(t)][2] else "overwrite"
                grad_targets.append((t, t.grad, how))
            t.grad = old
        leaves = []
        structure = _flatten(result, leaves)
        outputs = [v for v in leaves if isinstance(v, Tensor)]
        outputs += [g for _, g, _ in grad_targets]
        if not outputs and not graph.updates:
            program = None
        else:
            program = Program(outputs, inputs=_placeholders(graph), optimize=self.optimize, threads=self.threads,
                              updates=dict(graph.updates), device=common_device(arrays))
        return _Entry(program, feeds, structure, leaves, [(t, how) for t, _, how in grad_targets], graph)


def _dtype_of(t):
    return _dtype.from_numpy_dtype(t._data.dtype)


def _placeholders(graph):
    return [SymbolicTensor._make(AbstractArray(p)) for p in graph.placeholders]


def _flatten(value, leaves):
    """A template of ``value`` with tensors replaced by their index in ``leaves``."""
    if isinstance(value, Tensor):
        leaves.append(value)
        return ("leaf", len(leaves) - 1)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return ("namedtuple", type(value), [_flatten(v, leaves) for v in value])
    if isinstance(value, (list, tuple)):
        return (type(value), [_flatten(v, leaves) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: _flatten(v, leaves) for k, v in value.items()})
    return ("const", value)


def _unflatten(template, values):
    kind = template[0]
    if kind == "leaf":
        return values[template[1]]
    if kind == "const":
        return template[1]
    if kind == "dict":
        return {k: _unflatten(v, values) for k, v in template[1].items()}
    if kind == "namedtuple":
        return template[1](*[_unflatten(v, values) for v in template[2]])
    return kind(_unflatten(v, values) for v in template[1])


def _get(args, kwargs, path):
    value = {"args": args, "kwargs": kwargs}[path[0]]
    for k in path[1:]:
        value = value[k]
    return value


class _Entry:
    def __init__(self, program, feeds, structure, leaves, grad_targets, graph):
        self.program = program
        self.feeds = feeds
        self.structure = structure
        self.grad_targets = grad_targets
        self.graph = graph
        # outputs that are program outputs vs concrete tensors returned as they are
        self.kinds = []
        k = 0
        for v in leaves:
            if isinstance(v, Tensor):
                self.kinds.append(("out", k))
                k += 1
        self.leaves = leaves
        self.n_leaf_outputs = k

    def call(self, args, kwargs):
        if self.program is None:
            return _unflatten(self.structure, self.leaves)
        arrays = [_get(args, kwargs, path)._data for path in self.feeds]
        program = self.program
        with program._lock:
            if program.threads > 1:
                raw = program._run_nodes(arrays, False)
            else:
                raw = program._fn(*arrays)
        values = [_wrap(a) for a in raw]
        for (t, how), g in zip(self.grad_targets, values[self.n_leaf_outputs:]):
            if t.grad is None or how == "replace":
                t.grad = g
            elif how == "overwrite":
                np.copyto(t.grad._data, g._data)
                t.grad._version[0] += 1
            else:
                np.add(t.grad._data, g._data, out=t.grad._data)
        return _unflatten(self.structure, values[:self.n_leaf_outputs])


def trace_compile(fn=None, *, optimize=True, threads=None):
    """``@chainrule.compile``: trace-and-cache compilation (see the module docstring)."""
    if fn is None:
        return lambda f: CompiledFunction(f, optimize=optimize, threads=threads)
    return CompiledFunction(fn, optimize=optimize, threads=threads)
