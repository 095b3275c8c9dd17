"""``chainrule.cuda``: PyTorch's CUDA queries, answered by the CuPy backend (see ``chainrule._device``).

Without CuPy or without a usable GPU, ``is_available()`` is False and ``device_count()`` 0, and
asking for a CUDA tensor raises the error that says which of the two is missing.
"""

from . import _device


def is_available():
    return _device.cuda_backend() is not None


def device_count():
    return _device.cuda_device_count()


def current_device():
    _device.backend_for("cuda")
    return 0


def get_device_name(device=None):
    backend = _device.backend_for("cuda" if device is None else device)
    if backend is _device.SIMULATED:
        return "chainrule simulated GPU"
    index = _device.device(device or "cuda").index or 0
    return backend.xp.cuda.runtime.getDeviceProperties(index)["name"].decode()


def synchronize(device=None):
    """Wait until the GPU has finished all queued work (timings need it: kernels run asynchronously)."""
    backend = _device.backend_for("cuda" if device is None else device)
    if backend is not _device.SIMULATED:
        backend.xp.cuda.Device(_device.device(device or "cuda").index or 0).synchronize()


def memory_allocated(device=None):
    """Bytes of GPU memory held by tensors (CuPy's memory pool); 0 on the simulated GPU."""
    backend = _device.backend_for("cuda" if device is None else device)
    return 0 if backend is _device.SIMULATED else backend.xp.get_default_memory_pool().used_bytes()


def empty_cache():
    """Give the GPU memory cached by CuPy's pool and no longer used back to the driver."""
    backend = _device.cuda_backend()
    if backend is not None and backend is not _device.SIMULATED:
        backend.xp.get_default_memory_pool().free_all_blocks()


def manual_seed(seed):
    """Accepted for PyTorch programs: device tensors draw from chainrule's one generator (``chainrule.manual_seed``),
    so random values are the same on every device and this call has nothing to seed."""
    int(seed)


manual_seed_all = manual_seed
