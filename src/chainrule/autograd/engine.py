"""The reverse-mode engine: walks the backward graph from the outputs, applying vjp rules.

One iterative pass counts, for every reachable node, how many edges lead into it; a node runs
once all its gradient contributions have arrived (so no recursion, and each node runs exactly
once). Work shared by every op is done here, once: un-broadcasting a rule's result to its input's
shape, casting it to the input's dtype, checking the shape, tensor hooks, NaN checks in anomaly
mode, and freeing saved tensors unless ``retain_graph``.
"""

import sys

import numpy as np

from .. import _device
from .._mode import state
from ..errors import GraphError, ShapeError
from ..ops.op import bind, grad_edge
from ..ops.reduce import sum_op
from ..ops.shape import reshape_op
from ..tape import AccumulateGrad, accumulate_into
from ..tensor import Tensor, _wrap


def _tensors(x):
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _make_grads(outputs, grads):
    """The gradients to start from: given ones checked for shape, ones for scalar outputs."""
    if grads is None:
        grads = (None,) * len(outputs)
    else:
        grads = _tensors(grads) if not isinstance(grads, (tuple, list)) else tuple(grads)
    if len(grads) != len(outputs):
        raise ValueError(f"got {len(grads)} gradients for {len(outputs)} outputs")
    result = []
    for k, (out, g) in enumerate(zip(outputs, grads)):
        if g is None:
            if out._data.size != 1:
                raise GraphError(
                    f"grad can be implicitly created only for scalar outputs (got shape {list(out.shape)}); "
                    "pass gradient=... (a tensor of the output's shape), or reduce the output first, e.g. .sum()"
                )
            data = out._data  # a 0-d array of ones is cheaper to build from a scalar (the usual loss)
            xp = _device.array_module(data)
            result.append(_wrap(xp.array(1, data.dtype) if data.ndim == 0 else xp.ones(data.shape, data.dtype)))
        else:
            g = g if isinstance(g, Tensor) else _wrap(_device.like(np.asarray(g, out._data.dtype), out._data))
            if g._data.shape != out._data.shape:
                raise ShapeError(f"Mismatch in shape: grad_output has a shape of {list(g.shape)} and output "
                                 f"has a shape of {list(out.shape)}")
            if type(g._data) is not type(out._data) and g.device != out.device:
                raise RuntimeError(f"invalid gradient at index {k} - expected device {out.device} but got {g.device}")
            result.append(g)
    return result


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves (or only ``inputs``)."""
    tensors = _tensors(tensors)
    grads = _make_grads(tensors, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is None:
        run_backward(tensors, grads, retain_graph, create_graph)
        return
    inputs = _tensors(inputs)
    for t, g in zip(inputs, run_backward(tensors, grads, retain_graph, create_graph, inputs)):
        if g is not None:
            accumulate_into(t, g, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` is not touched)."""
    outputs = _tensors(outputs)
    inputs = _tensors(inputs)
    grads = _make_grads(outputs, grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    results = run_backward(outputs, grads, retain_graph, create_graph, inputs)
    for k, g in enumerate(results):
        if g is None:
            if materialize_grads:
                results[k] = _wrap(_device.array_module(inputs[k]._data).zeros(inputs[k]._data.shape,
                                                                               inputs[k]._data.dtype))
            elif not allow_unused:
                raise GraphError(
                    f"One of the differentiated Tensors (input {k}) appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
        elif not create_graph:
            results[k] = g.detach()
    return tuple(results)


def run_backward(roots, root_grads, retain_graph, create_graph, inputs=None):
    """Propagate ``root_grads`` from ``roots`` through the graph.

    Without ``inputs`` gradients accumulate into the ``.grad`` of the leaves. With ``inputs`` (the
    ``autograd.grad`` case) nothing accumulates: only the nodes on a path to an input run, and the
    list of the inputs' gradients (``None`` where unreachable) is returned.
    """
    root_edges = []
    for i, t in enumerate(roots):
        if not t.requires_grad:
            raise GraphError(
                f"element {i} of tensors does not require grad and does not have a grad_fn: "
                "nothing to differentiate (did you forget requires_grad=True, or run it under no_grad?)"
            )
        root_edges.append(grad_edge(t))

    capture = None
    if inputs is not None:
        capture = {}
        for k, t in enumerate(inputs):
            if not t.requires_grad:
                raise GraphError(f"One of the differentiated Tensors (input {k}) does not require grad")
            capture.setdefault(grad_edge(t), []).append(k)

    dependencies, reachable = _count_dependencies({edge[0] for edge in root_edges})
    needed = None if capture is None else _nodes_leading_to({edge[0] for edge in capture}, reachable)

    buffers = {}
    for edge, g in zip(root_edges, root_grads):
        _add_to_buffer(buffers, edge, g)
    ready = [node for node in buffers if dependencies.get(node, 0) == 0]
    results = None if capture is None else [None] * len(inputs)

    check_nan = state.anomaly and state.anomaly_check_nan
    previous_mode = state.grad_enabled
    state.grad_enabled = create_graph
    try:
        while ready:
            node = ready.pop()
            grads = buffers.pop(node, None) or [None] * node.num_outputs
            if node._tensor_hooks is not None or node._retained is not None:
                _run_tensor_hooks(node, grads, create_graph)
            if capture is not None:
                for nr, g in enumerate(grads):
                    for k in capture.get((node, nr), ()):
                        results[k] = g
            if isinstance(node, AccumulateGrad):
                if capture is None and grads[0] is not None:
                    leaf = node.variable
                    g = _call_hooks(leaf._hooks, grads[0]) if leaf._hooks else grads[0]
                    grads = None
                    # Only this frame refers to g and only g to its array: the leaf may keep it uncopied.
                    sole = sys.getrefcount(g) == 2 and sys.getrefcount(g._data) == 2 and g._data.base is None
                    accumulate_into(leaf, g, create_graph, sole)
                    if node._post_hooks is not None:
                        grads = (g,)
                    g = None
                if capture is None and node._post_hooks is not None:  # after accumulation, as in PyTorch
                    _run_post_hooks(node, (), grads)
                continue
            edges = node.edges
            wanted = node.needs if needed is None else [e is not None and e[0] in needed for e in edges]
            has_grad = grads[0] is not None if len(grads) == 1 else any(g is not None for g in grads)
            if has_grad and True in wanted:
                if node.num_outputs != 1:
                    grads = _materialize(node, grads)
                input_grads = node.apply(grads, wanted)
                if check_nan:
                    _check_finite(node, input_grads)
                if node._post_hooks is not None:
                    input_grads = _run_post_hooks(node, input_grads, grads)
            else:
                input_grads = None
            for i, edge in enumerate(edges):
                if edge is None:
                    continue
                nxt = edge[0]
                if input_grads is not None and wanted[i]:
                    g = input_grads[i]
                    if g is not None:
                        if type(g) is not Tensor or (g._data.shape, g._data.dtype) != node.input_metadata(i):
                            g = _conform(node, i, g)
                        buf = buffers.get(nxt)
                        if buf is None:
                            buffers[nxt] = buf = [None] * nxt.num_outputs
                        nr = edge[1]
                        buf[nr] = g if buf[nr] is None else buf[nr] + g
                left = dependencies[nxt] - 1
                dependencies[nxt] = left
                if left == 0:
                    ready.append(nxt)
            grads = input_grads = buf = g = None  # hold no gradient past its node (memory; leaves adopt theirs)
            if not retain_graph:
                node.release()
    finally:
        state.grad_enabled = previous_mode
    return results


def _count_dependencies(roots):
    """For each node reachable from ``roots``: how many edges point into it."""
    dependencies = {}
    stack = list(roots)
    while stack:
        node = stack.pop()
        for edge in node.edges:
            if edge is not None:
                nxt = edge[0]
                if nxt in dependencies:
                    dependencies[nxt] += 1
                else:  # first seen: its own edges are walked once, from here (roots: from the start)
                    dependencies[nxt] = 1
                    if nxt not in roots:
                        stack.append(nxt)
    return dependencies, dependencies.keys() | roots


def _nodes_leading_to(targets, reachable):
    """The nodes from which some target is reachable: only they need to run for autograd.grad."""
    parents = {}
    for node in reachable:
        for edge in node.edges:
            if edge is not None:
                parents.setdefault(edge[0], []).append(node)
    needed = set()
    frontier = [t for t in targets if t in reachable]
    while frontier:
        node = frontier.pop()
        if node not in needed:
            needed.add(node)
            frontier.extend(parents.get(node, ()))
    return needed


def _add_to_buffer(buffers, edge, g):
    node, nr = edge
    buf = buffers.get(node)
    if buf is None:
        buf = buffers[node] = [None] * node.num_outputs
    buf[nr] = g if buf[nr] is None else buf[nr] + g


def _materialize(node, grads):
    """Multi-output nodes receive zeros for outputs that got no gradient, as in PyTorch (on the device of
    the gradients that came)."""
    xp = _device.array_module(next(g for g in grads if g is not None)._data)
    return [g if g is not None else _wrap(xp.zeros(*node.output_metadata(nr))) for nr, g in enumerate(grads)]


def _conform(node, i, g):
    """Bring a rule's gradient to the input's shape (summing broadcast dims) and dtype, or fail loudly."""
    if not isinstance(g, Tensor):
        raise GraphError(f"{node.name()} returned a {type(g).__name__} as gradient {i}; expected a Tensor")
    shape, dtype = node.input_metadata(i)
    if g._data.shape != shape:
        g = _unbroadcast(node, i, g, shape)
    if g._data.dtype is not dtype and g._data.dtype != dtype:
        g = g.to(dtype)
    return g


def _unbroadcast(node, i, g, shape):
    gshape = g._data.shape
    lead = len(gshape) - len(shape)
    if lead < 0 or any(s != 1 and s != gs for s, gs in zip(shape, gshape[lead:])):
        raise ShapeError(
            f"Function {node.name()} returned an invalid gradient at index {i} - got {list(gshape)} "
            f"but expected shape compatible with {list(shape)}"
        )
    kept = tuple(lead + k for k, s in enumerate(shape) if s == 1 and gshape[lead + k] != 1)
    if not kept:  # only leading dims to drop: one sum
        return bind(sum_op, g, dim=tuple(range(lead)), keepdim=False)
    g = bind(sum_op, g, dim=tuple(range(lead)) + kept, keepdim=True)
    return bind(reshape_op, g, shape=tuple(shape)) if lead else g


def _run_tensor_hooks(node, grads, create_graph):
    if node._tensor_hooks is not None:
        for nr, hooks in node._tensor_hooks.items():
            if grads[nr] is not None:
                grads[nr] = _call_hooks(hooks, grads[nr])
    if node._retained is not None:
        for nr, ref in node._retained.items():
            t = ref()
            if t is not None and grads[nr] is not None:
                _accumulate_into(t, grads[nr], create_graph)


def _call_hooks(hooks, grad):
    for hook in list(hooks):
        replaced = hook(grad)
        if replaced is not None:
            if not isinstance(replaced, Tensor) or replaced._data.shape != grad._data.shape:
                got = list(replaced.shape) if isinstance(replaced, Tensor) else type(replaced).__name__
                raise GraphError(f"hook {hook!r} returned {got}; a hook must return None or a "
                                 f"Tensor of the gradient's shape {list(grad.shape)}")
            grad = replaced
    return grad


def _accumulate_into(t, g, create_graph):
    g = g if create_graph else g.detach()
    t.grad = g if t.grad is None else t.grad + g


def _run_post_hooks(node, input_grads, grads):
    for hook in list(node._post_hooks):
        replaced = hook(tuple(input_grads), tuple(grads))
        if replaced is not None:
            input_grads = list(replaced)
    return input_grads


def _check_finite(node, input_grads):
    for i, g in enumerate(input_grads):
        if g is not None and g._data.dtype.kind == "f" and not np.isfinite(g._data).all():
            kind = "nan" if np.isnan(g._data).any() else "inf"
            where = "".join(node._stack) if node._stack else "(unknown: the node was created outside detect_anomaly)\n"
            raise GraphError(
                f"Function '{node.name()}' returned {kind} values in its {i}th output.\n"
                f"The forward op that created it was called here:\n{where}"
            )
