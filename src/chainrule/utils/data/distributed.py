"""DistributedSampler: each rank's disjoint shard of a dataset (``torch.utils.data.DistributedSampler``)."""

import math

import chainrule as cr
from chainrule import distributed as dist

from .sampler import Sampler


class DistributedSampler(Sampler):
    """Indices for rank ``rank`` of ``num_replicas``: every ``num_replicas``-th index of one (shuffled) order.

    As in PyTorch: the order is a permutation seeded with ``seed + epoch`` (the same on every rank; call
    ``set_epoch`` at the start of each epoch for a new one); without ``drop_last`` the order is padded
    with its own first indices to a multiple of ``num_replicas``, so every rank gets the same number of
    samples (a few repeated); with ``drop_last`` the tail is dropped instead. ``num_replicas`` and
    ``rank`` default to the process group's.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: num_replicas and rank default to the process group's; call "
                                   "chainrule.distributed.init_process_group() first, or pass both")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if drop_last and len(dataset) % num_replicas != 0:
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        if self.shuffle:
            generator = cr.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = cr.randperm(len(self.dataset), generator=generator).tolist()
        else:
            indices = list(range(len(self.dataset)))
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            padding = self.total_size - len(indices)
            indices += (indices * math.ceil(padding / len(indices)))[:padding] if padding else []
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Shuffle differently in each epoch (the same way on every rank)."""
        self.epoch = epoch
