"""Check analytical gradients against finite differences (use float64 inputs).

The numerical Jacobian comes from central differences, column by column (one input element at a
time); the analytical one from backward passes, row by row (one output element at a time). On a
mismatch the report names the output, the input and the worst element.
"""

import warnings

import numpy as np

from .._dtype import float64
from ..errors import GraphError
from ..tensor import Tensor, _wrap
from .engine import grad


class GradcheckError(GraphError):
    """Raised by gradcheck when analytical and numerical gradients disagree."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    return [o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor)]


def _numerical(fn, inputs, i, eps):
    """d outputs / d inputs[i] by central differences: one column per input element."""
    x = inputs[i]._data
    outputs = _outputs(fn, inputs)
    columns = [np.zeros((o.numel(), x.size)) for o in outputs]
    flat = x.reshape(-1) if x.flags.c_contiguous else None
    if flat is None:
        raise GraphError("gradcheck needs contiguous inputs")
    for j in range(x.size):
        original = flat[j]
        flat[j] = original + eps  # evaluated with grad enabled: fn may itself differentiate (gradgradcheck)
        plus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
        flat[j] = original - eps
        minus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
        flat[j] = original
        for col, p, m in zip(columns, plus, minus):
            col[:, j] = (p - m) / (2 * eps)
    return columns


def _analytical(fn, inputs, wrt):
    """d outputs / d inputs by backward passes: one row per output element."""
    outputs = _outputs(fn, inputs)
    result = [[np.zeros((o.numel(), inputs[i].numel())) for i in wrt] for o in outputs]
    for k, out in enumerate(outputs):
        if not out.requires_grad:
            continue
        for r in range(out.numel()):
            seed = np.zeros(out._data.size, out._data.dtype)
            seed[r] = 1
            grads = grad([out], [inputs[i] for i in wrt], [_wrap(seed.reshape(out._data.shape))],
                         retain_graph=True, allow_unused=True)
            for c, g in enumerate(grads):
                if g is not None:
                    result[k][c][r] = g._data.reshape(-1)
    return result


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, **_ignored):
    """True when ``func``'s gradients match finite differences for every input that requires grad."""
    inputs = _as_tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor to require gradient")
    for i in wrt:
        if inputs[i].dtype != float64:
            warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype}, not float64; finite differences "
                          "will be too inaccurate to compare", stacklevel=2)
    analytical = _analytical(func, inputs, wrt)
    for c, i in enumerate(wrt):
        numerical = _numerical(func, inputs, i, eps)
        for k, (num, ana) in enumerate(zip(numerical, (rows[c] for rows in analytical))):
            error = np.abs(num - ana) - (atol + rtol * np.abs(num))
            if error.size and error.max() > 0:
                r, j = np.unravel_index(np.argmax(error), error.shape)
                message = (
                    f"Jacobian mismatch for output {k} with respect to input {i}: worst element "
                    f"d out[{r}] / d in[{j}]: numerical {num[r, j]:.6g}, analytical {ana[r, j]:.6g} "
                    f"(atol={atol}, rtol={rtol}).\nnumerical:\n{num}\nanalytical:\n{ana}"
                )
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
                  **_ignored):
    """gradcheck of the gradient itself: checks second derivatives (double backward)."""
    inputs = _as_tuple(inputs)
    outputs = _outputs(func, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [_wrap(rng.standard_normal(o._data.shape)).requires_grad_() for o in outputs]
    grad_outputs = list(_as_tuple(grad_outputs))
    n = len(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_derivative(*args):
        xs, vs = args[:n], args[n:]
        outs = _outputs(func, xs)
        grads = grad(outs, [xs[i] for i in wrt], list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivative, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
