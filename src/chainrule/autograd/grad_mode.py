"""PyTorch's ``torch.autograd.grad_mode``: the grad-mode switches (defined in :mod:`chainrule._mode`)."""

from .._mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled, state

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled", "state"]
