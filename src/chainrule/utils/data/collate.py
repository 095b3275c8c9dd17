"""Turning a list of samples into a batch (``default_collate``) and a sample into tensors
(``default_convert``), with PyTorch's rules for which types become what."""

import collections.abc

import numpy as np

import chainrule as cr

from ...tensor import _wrap

_UNSUPPORTED = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                "found {}. Convert it in the dataset, or pass a collate_fn that handles it.")


def _is_namedtuple(obj):
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _check_same_shape(shapes):
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise RuntimeError(f"default_collate: stack expects each sample to be equal size, but got "
                               f"{list(shapes[0])} at entry 0 and {list(shape)} at entry {i}; pad or crop "
                               f"the samples, or pass a collate_fn that batches them your way")


class GatheredSamples(list):
    """A list of samples that were read as whole columns (one fancy-index read per tensor of a
    ``TensorDataset``): each sample's tensors are views of those columns. ``default_collate`` hands
    the columns out as the batch, as long as the list still holds the very samples that were read,
    instead of stacking the samples back into a copy of the same arrays."""

    __slots__ = ("columns", "samples")

    def __init__(self, columns):
        self.columns = columns
        self.samples = tuple(tuple(_wrap(np.asarray(c[k])) for c in columns) for k in range(len(columns[0])))
        super().__init__(self.samples)

    def unchanged(self):
        return len(self) == len(self.samples) and all(a is b for a, b in zip(self, self.samples))


def default_collate(batch):
    """Stack a list of samples into a batch, recursing into dicts, tuples and lists.

    Tensors are stacked with ``cr.stack`` and numpy arrays with ``np.stack`` into a tensor (a new
    leading batch dimension); Python floats become a float64 tensor, ints int64, bools bool;
    numpy scalars keep their dtype; strings and bytes stay a list. A sample that is a dict gives a
    dict of batches, a namedtuple a namedtuple, any other sequence a list of batches (one per
    position), so ``[(image, label), ...]`` becomes ``[images, labels]``.
    """
    if type(batch) is GatheredSamples and batch.unchanged():
        return [cr.from_numpy(column) for column in batch.columns]
    elem = batch[0]
    if isinstance(elem, cr.Tensor):
        _check_same_shape([tuple(t.shape) for t in batch])
        return cr.stack(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, (np.ndarray, np.generic)):
        if elem.dtype.kind in "OSUV":
            raise TypeError(_UNSUPPORTED.format(elem.dtype))
        if isinstance(elem, np.ndarray):
            _check_same_shape([a.shape for a in batch])
            return cr.from_numpy(np.stack(batch))
        return cr.from_numpy(np.array(batch))
    if isinstance(elem, bool):
        return cr.from_numpy(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return cr.from_numpy(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return cr.from_numpy(np.array(batch, dtype=np.float64))
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([sample[key] for sample in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:  # a mapping type that cannot be built from a dict
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        collated = [default_collate(list(field)) for field in zip(*batch)]
        if isinstance(elem, tuple):
            return collated
        try:
            return type(elem)(collated)
        except TypeError:  # a sequence type that cannot be built from a list
            return collated
    raise TypeError(_UNSUPPORTED.format(type(elem)))


def default_convert(data):
    """Turn numpy arrays and scalars in a sample into tensors, recursing into containers.

    This is the DataLoader's collate function when ``batch_size=None``: samples are used as they
    come, without a batch dimension. Python numbers and other objects are left alone.
    """
    if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind not in "OSUV":
        return cr.from_numpy(np.asarray(data))
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(value) for key, value in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        converted = [default_convert(d) for d in data]
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    return data
