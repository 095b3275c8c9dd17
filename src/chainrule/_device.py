"""Where tensor data lives: device objects, and the array module behind each device.

A tensor's device is read off its array, as in Chainer: a numpy array lives on the CPU, a CuPy
array on a GPU. Code that computes on tensor data asks the array for its module
(:func:`array_module`, Chainer's ``get_array_module``) and so runs unchanged on every backend;
numpy functions called on a CuPy array dispatch to CuPy through numpy's ``__array_function__`` and
``__array_ufunc__`` protocols. This is the one module that imports CuPy, lazily, so ``import
chainrule`` never needs it; why CUDA is unusable (no CuPy, no driver) is kept for the error.

For CPU-only CI, :func:`simulate_cuda` makes "cuda" a strict simulated GPU
(:mod:`chainrule._simulated`) whose arrays refuse to mix with numpy arrays, so every stray numpy
call on device data fails the device-parametrised tests.
"""

import contextlib

import numpy as np

from . import _cuda_kernels, _simulated

TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia", "xla",
         "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


class device:
    """A device: ``device("cuda:0")``, ``device("cuda", 0)``, ``device("cpu")``, ``device(other_device)``."""

    __slots__ = ("_type", "_index")

    def __init__(self, type, index=None):  # noqa: A002 - PyTorch's argument name
        if isinstance(type, device):
            type, index = type._type, type._index if index is None else index
        elif isinstance(type, int) and not isinstance(type, bool):  # device(0): the accelerator's device 0
            if cuda_backend() is None:
                raise RuntimeError("Cannot access accelerator device when none is available.")
            type, index = "cuda", type
        if not isinstance(type, str):
            raise TypeError(f"device(): argument 'type' must be str or device, not {type.__class__.__name__}")
        name, colon, number = type.partition(":")
        if colon:
            if index is not None:
                raise RuntimeError(f"device(): type (string) must not include an index because index was passed "
                                   f"explicitly: {type}")
            if not number.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(number)
        if name not in TYPES:
            raise RuntimeError(f"Expected one of {', '.join(TYPES)} device type at start of device string: {type}")
        if index is not None and index < 0:
            raise RuntimeError("Device index must not be negative")
        self._type, self._index = name, index

    type = property(lambda self: self._type)
    index = property(lambda self: self._index)

    def __eq__(self, other):
        if not isinstance(other, device):
            return NotImplemented
        return self._type == other._type and self._index == other._index

    def __hash__(self):
        return hash((self._type, self._index))

    def __str__(self):
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __repr__(self):
        index = "" if self._index is None else f", index={self._index}"
        return f"device(type='{self._type}'{index})"

    def __reduce__(self):
        return (device, (self._type, self._index))

    def __enter__(self):  # ``with cr.device("cuda"):`` makes it the default device inside the block
        _entered.append(DEFAULT[0])
        set_default_device(self)
        return self

    def __exit__(self, *exc):
        DEFAULT[0] = _entered.pop()


CPU = device("cpu")


class Backend:
    """One kind of array memory: its array module and how arrays cross to and from the host."""

    def __init__(self, xp, array_type, to_host, from_host, device_of, fused_kernel=None):
        self.xp = xp
        self.array_type = array_type
        self.to_host = to_host  # array -> numpy array (a copy, except for host arrays themselves)
        self.from_host = from_host  # (numpy array, device index) -> array on this backend
        self.device_of = device_of  # array -> device
        # a compiled program's fused elementwise chain (chainrule.static.cuda.FusedKernel) -> a callable
        # running it as one kernel (None on the host, whose programs run each step into one buffer)
        self.fused_kernel = fused_kernel


HOST = Backend(np, np.ndarray, lambda a: a, lambda a, index: a, lambda a: CPU)
SIMULATED = Backend(_simulated.xp, _simulated.SimArray, _simulated.SimArray.get,
                    lambda a, index: _simulated.xp.asarray(a), lambda a: device("cuda", 0),
                    lambda kernel: kernel.evaluate)  # no CUDA compiler: the chain step by step, on the device
_by_array_type = {}  # array type -> Backend, for the backends in use beside the host
_cuda = {"backend": None, "why_not": None, "simulated": False}


def _cupy_backend():
    """CuPy as a Backend, or the reason it cannot be one (kept for the error message)."""
    try:
        import cupy
    except ImportError as exc:
        return None, f"CuPy is not installed ({exc}); install it with pip install 'chainrule[cuda]'"
    try:
        usable = cupy.is_available()
    except Exception as exc:  # noqa: BLE001 - any driver failure means: no GPU
        usable, exc_text = False, f" ({exc})"
    else:
        exc_text = ""
    if not usable:
        return None, f"CuPy is installed but no usable NVIDIA GPU and driver were found{exc_text}"

    def from_host(array, index):
        with cupy.cuda.Device(index or 0):
            return cupy.asarray(array)

    return Backend(cupy, cupy.ndarray, cupy.asnumpy, from_host, lambda a: device("cuda", a.device.id),
                   lambda kernel: cupy.ElementwiseKernel(*kernel.source())), None


def cuda_backend():
    """The CUDA backend (CuPy, or the simulated GPU); None when there is none."""
    if _cuda["simulated"]:
        return SIMULATED
    if _cuda["backend"] is None and _cuda["why_not"] is None:
        _cuda["backend"], _cuda["why_not"] = _cupy_backend()
        if _cuda["backend"] is not None:
            _by_array_type[_cuda["backend"].array_type] = _cuda["backend"]
    return _cuda["backend"]


def cuda_device_count():
    backend = cuda_backend()
    if backend is None:
        return 0
    return 1 if backend is SIMULATED else backend.xp.cuda.runtime.getDeviceCount()


def _require_cuda():
    backend = cuda_backend()
    if backend is None:
        raise AssertionError(f"chainrule was asked for a CUDA device, but CUDA is not available: {_cuda['why_not']}. "
                             "Use device='cpu', or pick the device with chainrule.cuda.is_available().")
    return backend


@contextlib.contextmanager
def simulate_cuda():
    """Within this block "cuda" is the strict simulated GPU (for tests on machines without one)."""
    saved = _cuda["simulated"], DEFAULT[0]
    _cuda["simulated"] = True
    _by_array_type[_simulated.SimArray] = SIMULATED
    try:
        yield
    finally:
        _cuda["simulated"], DEFAULT[0] = saved
        del _by_array_type[_simulated.SimArray]


def backend_of(array):
    """The backend holding ``array`` (host for numpy arrays and anything that is not a device array)."""
    return HOST if type(array) is np.ndarray else _by_array_type.get(type(array), HOST)


def array_module(array):
    """numpy for host arrays, CuPy for CuPy arrays, the simulated module for simulated ones."""
    return np if type(array) is np.ndarray else _by_array_type.get(type(array), HOST).xp


def kernels(array):
    """The hand-written CUDA kernels (:mod:`chainrule._cuda_kernels`) when ``array`` is a CuPy array, else None:
    the op then composes array-module calls."""
    backend = _cuda["backend"]
    return _cuda_kernels if backend is not None and type(array) is backend.array_type else None


def is_device_array(array):
    return type(array) in _by_array_type


def device_of(array):
    return CPU if type(array) is np.ndarray else backend_of(array).device_of(array)


def backend_for(where):
    """The backend of a device (object, string or index); raises PyTorch's error for an unusable one."""
    where = where if isinstance(where, device) else device(where)
    if where._type == "cpu":
        return HOST
    if where._type == "cuda":
        backend = _require_cuda()
        if where._index is not None and where._index >= cuda_device_count():
            raise RuntimeError(f"CUDA error: invalid device ordinal (device {where} of {cuda_device_count()})")
        return backend
    raise RuntimeError(f"chainrule: device type '{where._type}' is not supported; use 'cpu' or 'cuda'")


def move(array, where):
    """``array`` on device ``where``: unchanged when already there, else copied across."""
    target = backend_for(where)
    source = backend_of(array)
    if source is target and (target is HOST or device_of(array) == indexed(where)):
        return array
    return target.from_host(source.to_host(array), indexed(where).index)


def indexed(where):
    """A device with its index: ``cuda`` is the current GPU, which is cuda:0 (chainrule never switches it)."""
    where = where if isinstance(where, device) else device(where)
    return device("cuda", 0) if where._type == "cuda" and where._index is None else where


def to_host(array):
    return array if type(array) is np.ndarray else backend_of(array).to_host(array)


def like(host_array, array):
    """``host_array`` moved onto the device of ``array`` (masks made on the host, constants)."""
    if type(array) is np.ndarray:
        return host_array
    backend = backend_of(array)
    return backend.from_host(host_array, backend.device_of(array).index)


def index_on(index, array):
    """An index tuple's arrays on ``array``'s device (PyTorch lets CPU index tensors address GPU tensors)."""
    if type(array) is np.ndarray:
        return index
    where = device_of(array)
    return tuple(move(k, where) if isinstance(k, np.ndarray) or is_device_array(k) else k for k in index)


DEFAULT = [CPU]  # the default device; exactly CPU (this object) while it is the CPU, a cheap check
_entered = []  # the defaults that ``with device(...)`` blocks replaced


def set_default_device(where):
    """Where creation functions put tensors when not told (``None``: the CPU)."""
    where = CPU if where is None else device(where)
    DEFAULT[0] = CPU if where == CPU else where


def get_default_device():
    return DEFAULT[0]


def placed(array, where):
    """A freshly made host array on the asked device (``None``: the default device)."""
    if where is None:
        where = DEFAULT[0]
    return move(array, where)
