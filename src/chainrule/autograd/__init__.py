"""Reverse-mode autodiff on the dynamic graph (``backward``, ``grad``), plus custom Functions,
forward mode, anomaly detection and gradient checking."""

import numpy as np

from ..errors import GraphError, ShapeError
from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine import run_backward
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled


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
    for out, g in zip(outputs, grads):
        if g is None:
            if out._data.size != 1:
                raise GraphError(
                    f"grad can be implicitly created only for scalar outputs (got shape {list(out.shape)}); "
                    "pass gradient=... (a tensor of the output's shape), or reduce the output first, e.g. .sum()"
                )
            result.append(_wrap(np.ones(out._data.shape, out._data.dtype)))
        else:
            g = g if isinstance(g, Tensor) else _wrap(np.asarray(g, out._data.dtype))
            if g._data.shape != out._data.shape:
                raise ShapeError(f"Mismatch in shape: grad_output has a shape of {list(g.shape)} and output "
                                 f"has a shape of {list(out.shape)}")
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
            g = g if create_graph else g.detach()
            t.grad = g if t.grad is None else t.grad + g


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
                results[k] = _wrap(np.zeros(inputs[k]._data.shape, inputs[k]._data.dtype))
            elif not allow_unused:
                raise GraphError(
                    f"One of the differentiated Tensors (input {k}) appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
        elif not create_graph:
            results[k] = g.detach()
    return tuple(results)


from ..tensor import Tensor, _wrap  # noqa: E402
from . import forward_ad, functional  # noqa: E402
from .function import Function, FunctionCtx  # noqa: E402
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402

__all__ = [
    "Function", "FunctionCtx", "GradcheckError", "backward", "detect_anomaly", "enable_grad", "forward_ad",
    "functional", "grad", "gradcheck", "gradgradcheck", "is_anomaly_enabled", "is_grad_enabled", "no_grad",
    "set_detect_anomaly", "set_grad_enabled",
]
