"""Datasets: the map-style and iterable protocols, and the few wrappers every project needs."""

import math
import warnings
from bisect import bisect_right
from itertools import accumulate

import numpy as np

import chainrule as cr

from .collate import GatheredSamples


class Dataset:
    """A map-style dataset: ``dataset[i]`` is sample ``i``; define ``__len__`` for samplers to use.

    Subclasses may also define ``__getitems__(indices)`` returning a list of samples, which the
    DataLoader calls once per batch instead of ``__getitem__`` once per sample.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) to be a Dataset")


class IterableDataset(Dataset):
    """A dataset read as a stream: ``iter(dataset)`` yields samples.

    With ``num_workers > 0`` each worker iterates its own copy of the dataset; use
    ``get_worker_info()`` inside ``__iter__`` to give each worker a different shard, or every
    sample arrives ``num_workers`` times.
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__ to be an IterableDataset")


class TensorDataset(Dataset):
    """Samples are rows of tensors (or arrays) that share their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [t.shape[0] for t in tensors]
        if any(size != sizes[0] for size in sizes):
            raise ValueError(f"Size mismatch between tensors: first dimensions are {sizes}; they must be equal")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        """A batch's samples from one fancy-index read per tensor instead of one read per sample."""
        if any(getattr(t, "requires_grad", False) or getattr(t, "is_cuda", False) for t in self.tensors):
            return [self[i] for i in indices]  # keep each sample's graph, or its device
        return GatheredSamples([np.asarray(t)[list(indices)] for t in self.tensors])

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices):
        # Forward whole batches so that a wrapped dataset's own batched read is not lost.
        wanted = [self.indices[i] for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems is not None:
            return getitems(wanted)
        return [self.dataset[i] for i in wanted]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` are either sample counts that sum to ``len(dataset)``, or fractions that sum to 1;
    with fractions, ``floor(fraction * len)`` samples each and the remainder is dealt one at a time
    from the first subset on. Pass a seeded ``cr.Generator`` for a split that is the same on every
    run; without one the default generator (``cr.manual_seed``) is used.
    """
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        for i, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        counts = [math.floor(len(dataset) * fraction) for fraction in lengths]
        for i in range(len(dataset) - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
        lengths = counts
    if sum(lengths) != len(dataset):
        raise ValueError(f"Sum of input lengths ({sum(lengths)}) does not equal the length of the input "
                         f"dataset ({len(dataset)}); give counts that add up to it, or fractions that add up to 1")
    indices = cr.randperm(sum(lengths), generator=generator).tolist()
    return [Subset(dataset, indices[end - length:end]) for end, length in zip(accumulate(lengths), lengths)]


class ConcatDataset(Dataset):
    """The samples of several map-style datasets one after another (``a + b`` of two datasets)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index += len(self)
        which = bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


class ChainDataset(IterableDataset):
    """Several iterable datasets read one after another."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


class StackDataset(Dataset):
    """Samples that combine the samples of several datasets of one length: a tuple (``StackDataset(a, b)``) or
    a dict (``StackDataset(image=a, label=b)``)."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset takes datasets either positionally (tuple samples) or by keyword (dict "
                             "samples), not both")
        self.datasets = args or kwargs
        lengths = {len(d) for d in (args or kwargs.values())}
        if len(lengths) != 1:
            raise ValueError("Size mismatch between datasets")
        self._length = lengths.pop()

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self):
        return self._length


def _concat(self, other):
    return ConcatDataset([self, other])


Dataset.__add__ = _concat  # PyTorch's `train + extra`
