"""All parameters as one flat vector and back (``torch.nn.utils.parameters_to_vector``)."""

from ...ops import cat
from ...tensor import Tensor


def _as_list(parameters):
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def parameters_to_vector(parameters):
    """One 1-D tensor of every parameter's values, in order (differentiable, like PyTorch's)."""
    return cat([p.reshape(-1) for p in _as_list(parameters)])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (their ``.data``)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    offset = 0
    for p in _as_list(parameters):
        n = p.numel()
        p.data = vec[offset:offset + n].reshape(p.shape).data
        offset += n
