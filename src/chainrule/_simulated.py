"""A strict simulated GPU for CPU-only CI: arrays that refuse to mix with numpy arrays.

CI machines have no GPU, yet device code has one typical bug a CPU run never shows: a stray numpy
call (``np.zeros(shape)`` where the input lives on the GPU) that silently produces a host array.
:class:`SimArray` behaves like a CuPy array (numpy functions and ufuncs dispatch to it through
``__array_function__``/``__array_ufunc__``, reductions give 0-d arrays, ``.get()`` copies to the
host, ``np.asarray`` of it raises) and raises ``TypeError`` on any operation that mixes it with a
plain numpy array, as CuPy does. :data:`xp` is its array module: numpy's names, making SimArrays.
``chainrule._device.simulate_cuda()`` makes it the "cuda" device.
"""

import types

import numpy as np

MIXED = ("simulated cuda: an operation mixes a device array with a host numpy array; move it with "
         "xp.asarray(host) (a stray numpy call on device data?)")


def _raw(value):
    """The host arrays behind ``value`` (SimArrays unwrapped, in lists and tuples too); refuses numpy arrays."""
    if isinstance(value, SimArray):
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError(MIXED)
    if type(value) in (list, tuple):
        return type(value)(_raw(v) for v in value)
    return value


def _raw_kwargs(kwargs):
    return {k: _raw(v) for k, v in kwargs.items()}


def _wrap(value):
    """Results back on the device: arrays and numpy scalars become SimArrays (CuPy returns 0-d arrays)."""
    if isinstance(value, np.ndarray):
        return SimArray(value)
    if isinstance(value, np.generic):
        return SimArray(np.asarray(value))
    if type(value) in (list, tuple):
        return type(value)(_wrap(v) for v in value)
    return value


class SimArray:
    """A device array of the simulated GPU: a private numpy array that never meets a host one."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, array):
        self._a = array

    def get(self):
        """A host copy (CuPy's spelling)."""
        return self._a.copy()

    def __array__(self, dtype=None, copy=None):
        raise TypeError("simulated cuda: implicit conversion to a NumPy array is not allowed; use .get()")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":  # as pessimistic as CuPy may be: ufunc methods are the array module's
            raise TypeError(f"simulated cuda: numpy's {ufunc.__name__}.{method} does not reach device arrays; "
                            f"call xp.{ufunc.__name__}.{method} of the array module")
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_raw(inputs), **_raw_kwargs(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        return _wrap(func(*_raw(args), **_raw_kwargs(kwargs)))

    def __getattr__(self, name):
        if name.startswith("__"):  # numpy's buffer protocols (__array_interface__, ...) would hand out host memory
            raise AttributeError(name)
        value = getattr(self._a, name)
        if callable(value):
            return lambda *args, **kwargs: _wrap(value(*_raw(args), **_raw_kwargs(kwargs)))
        return _wrap(value) if isinstance(value, np.ndarray) else value

    def __getitem__(self, index):
        return _wrap(self._a[_raw(index)])

    def __setitem__(self, index, value):
        self._a[_raw(index)] = _raw(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __reduce__(self):
        return (SimArray, (self._a,))

    def __repr__(self):
        return "sim_" + repr(self._a)

    __hash__ = None


def _operator(name):
    method = getattr(np.ndarray, name)

    def apply(self, *args):
        result = method(self._a, *_raw(args))
        if result is NotImplemented:
            return result
        return self if result is self._a else _wrap(result)

    apply.__name__ = name
    return apply


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
              "rshift"):
    for _form in ("__{}__", "__r{}__", "__i{}__"):
        setattr(SimArray, _form.format(_name), _operator(_form.format(_name)))
for _name in ("lt", "le", "eq", "ne", "gt", "ge", "neg", "pos", "abs", "invert"):
    setattr(SimArray, f"__{_name}__", _operator(f"__{_name}__"))


class _Module:
    """The simulated device's array module: numpy's names, computing on SimArrays.

    Dtypes, constants, submodules and ufuncs pass through (ufuncs dispatch to SimArray inputs by
    themselves); functions run on the raw arrays and return SimArrays. ``asarray``/``array`` also
    accept host data: the explicit transfer to the device.
    """

    def __init__(self, namespace):
        self._namespace = namespace

    def __getattr__(self, name):
        value = getattr(self._namespace, name)
        if isinstance(value, types.ModuleType):  # xp.lib.stride_tricks, xp.linalg: the same rules inside
            return _Module(value)
        if isinstance(value, np.ufunc):
            return _Ufunc(value)
        if isinstance(value, type) or not callable(value):
            return value
        if name in ("asarray", "array", "ascontiguousarray"):
            return lambda data, *args, **kwargs: _transfer(data, name == "array", *args, **kwargs)
        return lambda *args, **kwargs: _wrap(value(*_raw(args), **_raw_kwargs(kwargs)))


class _Ufunc:
    """A ufunc of the simulated module: called, it dispatches like numpy's; its methods (``at``, ``reduce``)
    run on the raw arrays."""

    def __init__(self, ufunc):
        self._ufunc = ufunc

    def __call__(self, *args, **kwargs):
        return self._ufunc(*args, **kwargs)

    def __getattr__(self, name):
        method = getattr(self._ufunc, name)
        if not callable(method):
            return method
        return lambda *args, **kwargs: _wrap(method(*_raw(args), **_raw_kwargs(kwargs)))


def _transfer(data, copies, *args, copy=None, **kwargs):
    """``data`` on the device: host data is copied over; a SimArray is copied by ``array`` or when asked."""
    if isinstance(data, SimArray):
        return SimArray(np.array(data._a, *args, copy=copies or copy or None, **kwargs))
    return SimArray(np.array(_raw_host(data), *args, copy=True, **kwargs))


def _raw_host(data):
    if type(data) in (list, tuple):
        return type(data)(_raw_host(v) for v in data)
    return data._a if isinstance(data, SimArray) else data


xp = _Module(np)
