"""Fetchers turn what the sampler yields into a collated batch; the same code runs in the main
process (``num_workers=0``) and in workers, which is why both give identical batches."""

import itertools

from .dataset import IterableDataset


def make_fetcher(dataset, auto_collation, collate_fn, drop_last):
    if isinstance(dataset, IterableDataset):
        return IterableFetcher(dataset, auto_collation, collate_fn, drop_last)
    return MapFetcher(dataset, auto_collation, collate_fn)


class MapFetcher:
    """Reads a map-style dataset by index (a list of indices when batching)."""

    def __init__(self, dataset, auto_collation, collate_fn):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        getitems = getattr(self.dataset, "__getitems__", None)
        samples = getitems(index) if getitems is not None else [self.dataset[i] for i in index]
        return self.collate_fn(samples)


class IterableFetcher:
    """Reads the next samples of an IterableDataset; raises StopIteration once it is used up."""

    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self._iterator = None
        self._ended = False

    def fetch(self, index):
        if self._ended:
            raise StopIteration
        if self._iterator is None:  # created here so that errors in __iter__ reach the caller like any other
            self._iterator = iter(self.dataset)
        if not self.auto_collation:
            try:
                return self.collate_fn(next(self._iterator))
            except StopIteration:
                self._ended = True
                raise
        samples = list(itertools.islice(self._iterator, len(index)))
        self._ended = len(samples) < len(index)
        if not samples or (self._ended and self.drop_last):
            raise StopIteration
        return self.collate_fn(samples)
