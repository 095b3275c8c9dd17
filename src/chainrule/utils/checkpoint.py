"""Activation checkpointing: ``checkpoint(fn, *args)`` with PyTorch's name and semantics.

The forward pass runs ``fn`` without recording the tape, so none of the segment's activations
are kept; only its inputs are saved. Backward reruns ``fn`` on the saved inputs with grad
enabled and backpropagates through that recomputed segment (gradients reach ``fn``'s parameters
and inputs as without checkpointing). The default random generator's state is saved before the
forward and restored around the recomputation, so dropout draws the same mask both times.

Like PyTorch's reentrant variant, gradients reach the parameters through ``backward()``; use
``backward()`` rather than ``autograd.grad`` over a checkpointed segment. Inside a static graph
(``chainrule.static``, ``chainrule.compile``) ``checkpoint`` simply calls ``fn``: the compiler
plans memory for the whole graph.
"""

from .. import random as _random
from ..autograd import backward as _backward
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, no_grad, state
from ..errors import GraphError
from ..tensor import Tensor, _wrap, as_array

__all__ = ["checkpoint", "checkpoint_sequential"]


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        if preserve_rng_state:
            ctx.rng_state = _random.default_generator.get_state()
        ctx.tensor_indices = [k for k, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.inputs = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*[a for a in args if isinstance(a, Tensor)])
        with no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        saved = ctx.saved_tensors
        inputs = list(ctx.inputs)
        detached = []
        for k, t in zip(ctx.tensor_indices, saved):
            d = t.detach()
            d._requires_grad = t._requires_grad
            inputs[k] = d
            detached.append(d)
        current = None
        if ctx.preserve_rng_state:
            current = _random.default_generator.get_state()
            _random.default_generator.set_state(ctx.rng_state)
        try:
            with enable_grad():
                outputs = ctx.run_function(*inputs)
        finally:
            if current is not None:
                _random.default_generator.set_state(current)
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        roots, grads = [], []
        for out, g in zip(outputs, grad_outputs):
            if isinstance(out, Tensor) and out._requires_grad and g is not None:
                roots.append(out)
                grads.append(g)
        if not roots:
            raise GraphError("checkpoint: none of the outputs of the checkpointed function requires grad, so "
                             "there is nothing to backpropagate through it")
        _backward(roots, grads)
        input_grads = [None, None] + [None] * len(ctx.inputs)
        for k, d in zip(ctx.tensor_indices, detached):
            input_grads[2 + k] = d.grad if d._requires_grad else None
        return tuple(input_grads)


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    """Run ``function(*args)`` without storing its activations; recompute them in backward.

    Returns what ``function`` returns (a tensor or a tuple of tensors). ``use_reentrant`` is accepted
    for PyTorch compatibility; both settings use the same recomputation. Keyword arguments are passed
    to ``function``.
    """
    if kwargs:
        fn = function

        def function(*a):
            return fn(*a, **kwargs)

    if state.tracer is not None or not state.grad_enabled:
        return function(*args)
    if not any(isinstance(a, Tensor) and a._requires_grad for a in args):
        # No input requires grad (the first segment of a network): the segment's parameters still
        # need their gradients, so a dummy input that requires grad makes the backward node exist.
        real = function

        def function(*a):
            return real(*a[:-1])

        args = args + (_dummy(),)
    return _Checkpoint.apply(function, preserve_rng_state, *args)


def _dummy():
    t = _wrap(as_array(0.0))
    t._requires_grad = True
    return t


def checkpoint_sequential(functions, segments, input, use_reentrant=None, preserve_rng_state=True):
    """Split a sequence of modules/functions into ``segments`` checkpointed runs (PyTorch's helper)."""
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)
    size = max(1, -(-len(functions) // segments))

    def run(lo, hi):
        def segment(x):
            for f in functions[lo:hi]:
                x = f(x)
            return x

        return segment

    for lo in range(0, len(functions), size):
        input = checkpoint(run(lo, min(lo + size, len(functions))), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve_rng_state)
    return input
