"""``chainrule.accelerator``: PyTorch's device-agnostic accelerator queries (CUDA is the only accelerator)."""

from . import _device


def is_available():
    return _device.cuda_backend() is not None


def current_accelerator(check_available=False):
    """``device(type='cuda')`` when a GPU is usable, else None."""
    return _device.device("cuda") if is_available() else None


def device_count():
    return _device.cuda_device_count()
