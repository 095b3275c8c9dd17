"""Datasets, samplers and the DataLoader, with PyTorch's names and behaviour
(``torch.utils.data``)."""

from ..._missing import module_getattr
from ._worker import WorkerInfo, get_worker_info
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .distributed import DistributedSampler
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler", "StackDataset", "ChainDataset", "ConcatDataset", "DataLoader", "DistributedSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "Dataset", "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler",
    "Subset", "TensorDataset", "WorkerInfo", "default_collate", "default_convert", "get_worker_info",
    "random_split",
]

__getattr__ = module_getattr("chainrule.utils.data", "torch.utils.data")
