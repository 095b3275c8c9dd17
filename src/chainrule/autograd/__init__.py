"""Reverse-mode autodiff on the dynamic graph (``backward``, ``grad``), plus custom Functions,
forward mode, anomaly detection and gradient checking."""

from ..tensor import Tensor
from . import forward_ad, functional
from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine import backward, grad
from .function import Function, FunctionCtx
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck


def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's ``Tensor.backward``)."""
    backward(self, gradient, retain_graph, create_graph, inputs=inputs)


def Variable(data, requires_grad=False, volatile=False):  # noqa: N802 - PyTorch's old class name
    """PyTorch's pre-0.4 ``Variable``: today a tensor (this one, with ``requires_grad`` set as asked)."""
    if requires_grad:
        data.requires_grad_(True)
    return data


_tensor_backward.__name__ = "backward"
Tensor.backward = _tensor_backward  # the tensor layer sits below autograd, which gives it backward()

__all__ = [
    "Function", "FunctionCtx", "Variable", "GradcheckError", "backward", "detect_anomaly", "enable_grad", "forward_ad",
    "functional", "grad", "gradcheck", "gradgradcheck", "is_anomaly_enabled", "is_grad_enabled", "no_grad",
    "set_detect_anomaly", "set_grad_enabled",
]
