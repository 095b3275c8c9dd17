"""``chainrule.distributed``: multi-process training over MPI, with ``torch.distributed``'s names.

Start N processes with ``chainrule run -n N script.py``; in the script, ``init_process_group()``, then
collectives on tensors (in place) and ``chainrule.nn.parallel.DistributedDataParallel``.
"""

from .c10d import (
    ReduceOp,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
)

__all__ = ["ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce",
           "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "get_backend", "get_rank",
           "get_world_size", "init_process_group", "is_available", "is_initialized", "is_mpi_available", "reduce",
           "reduce_scatter", "reduce_scatter_tensor"]
