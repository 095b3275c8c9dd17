"""PyTorch's ``torch.autograd.grad_mode``: the grad-mode switches (defined in :mod:`chainrule._mode`)."""

from .._mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled, state

__all__ = ["enable_grad", "inference_mode", "is_grad_enabled", "no_grad", "set_grad_enabled", "state"]


def inference_mode(mode=True):
    """PyTorch's ``inference_mode``: here ``no_grad`` (chainrule has no separate inference tensors); usable
    as ``with inference_mode():``, ``@inference_mode()`` and ``@inference_mode``."""
    if callable(mode):
        return no_grad()(mode)
    return no_grad() if mode else set_grad_enabled(is_grad_enabled())
