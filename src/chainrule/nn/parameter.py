"""``nn.Parameter``: a tensor that a Module registers as one of its parameters."""

import numpy as np

from ..tensor import Tensor, _init, as_array


class Parameter(Tensor):
    """A leaf tensor that requires grad by default; assigning one to a Module attribute registers it.

    ``Parameter(t)`` shares ``t``'s memory (it does not copy), as in PyTorch.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            array = np.empty((0,), np.float32)
        elif isinstance(data, Tensor):
            array = data._data
        else:
            array = as_array(data)
        _init(self, array)
        if requires_grad:
            self.requires_grad = True

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self.detach(), self._requires_grad))


def _rebuild_parameter(data, requires_grad):
    return Parameter(data, requires_grad)


class Buffer(Tensor):
    """PyTorch's ``nn.Buffer``: assigning one to a Module attribute registers it as a buffer."""

    def __init__(self, data=None, *, persistent=True):
        array = data._data if isinstance(data, Tensor) else Tensor(data if data is not None else [])._data
        _init(self, array)
        self.persistent = persistent
