"""DistributedDataParallel: every rank trains the same model on its own shard of each batch, and the
gradients are averaged across ranks during backward, so each optimizer step sees the gradient of the
whole batch (``torch.nn.parallel.DistributedDataParallel``).

How the averaging overlaps with backward (the design of PyTorch's reducer, after Horovod and ChainerMN):

- Gradients are packed in **buckets** of about ``bucket_cap_mb`` (the first, holding the last layers,
  at most 1 MiB), in reverse order of ``parameters()``, roughly the order backward produces them.
- Each parameter's ``AccumulateGrad`` node gets a post hook: once backward has added into ``p.grad``,
  the hook copies ``p.grad`` into its bucket slot. When a bucket is full it is reduced with a
  non-blocking allreduce (MPI ``Iallreduce``) while backward goes on with the earlier layers. Buckets
  start strictly in order, so every rank issues the same collectives in the same order.
- The hook of the last parameter waits for all buckets and writes the averages back into each
  ``p.grad`` in place (the same tensor object: a reference held to it sees the average).

``no_sync()`` skips all of this: gradients accumulate locally, and the next synchronised backward
averages the accumulated sums. With ``find_unused_parameters=True`` the forward output's graph is
walked to find parameters that will get no gradient; they are counted as ready at once (their slot holds
``p.grad`` or zeros), so a parameter unused on some rank never leaves the others waiting.
"""

import contextlib

import numpy as np

from ... import distributed as dist
from ...autograd.grad_mode import is_grad_enabled
from ...ops.creation import from_numpy
from ...ops.op import grad_edge
from ...tensor import Tensor
from ..module import Module

__all__ = ["DistributedDataParallel"]

MIB = 1024 * 1024
FIRST_BUCKET_BYTES = 1 * MIB  # PyTorch's: a small first bucket starts communicating early in backward


class _Bucket:
    """Gradients of a few parameters (one dtype) packed in one flat array, reduced by one allreduce."""

    __slots__ = ("indices", "flat", "tensor", "views", "pending", "work")

    def __init__(self, indices, params):
        self.indices = indices
        sizes = [params[i].numel() for i in indices]
        self.flat = np.zeros(sum(sizes), params[indices[0]]._data.dtype)
        self.tensor = from_numpy(self.flat)
        offsets = np.cumsum([0] + sizes)
        self.views = [self.flat[offsets[k]:offsets[k + 1]].reshape(params[i]._data.shape)
                      for k, i in enumerate(indices)]
        self.pending = len(indices)
        self.work = None


class DistributedDataParallel(Module):
    """Wraps ``module`` so that ``backward`` averages its parameters' gradients across all ranks.

    At construction every rank must hold the same parameters and buffers (names, shapes, dtypes; the
    first difference is an error on every rank); rank 0's values are then broadcast to all.
    ``broadcast_buffers`` re-broadcasts rank 0's buffers (BatchNorm statistics) before each forward.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True, init_sync=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False):
        super().__init__()
        if device_ids not in (None, [], ["cpu"]) or output_device not in (None, "cpu"):
            raise ValueError("DistributedDataParallel: device_ids and output_device are for GPU modules; "
                             "chainrule.distributed reduces CPU tensors: leave them unset")
        if dim != 0:
            raise ValueError(f"DistributedDataParallel: dim={dim} is not supported; each rank feeds its own batch")
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        if init_sync:
            _verify_same_model(module, process_group)
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t, 0, group=process_group)
        self._names = [name for name, _ in named]
        self._params = [p for _, p in named]
        cap = (25 if bucket_cap_mb is None else bucket_cap_mb) * MIB
        self._buckets = [_Bucket(indices, self._params) for indices in _assign_buckets(self._params, cap)]
        self._slots = [None] * len(self._params)  # parameter index -> (its bucket, its view in the bucket)
        for bucket in self._buckets:
            for i, view in zip(bucket.indices, bucket.views):
                self._slots[i] = (bucket, view)
        self._used = np.zeros(len(self._params), np.int32)
        self._used_tensor = from_numpy(self._used)
        self._ready = [False] * len(self._params)
        self._left = 0  # parameters still to become ready in this backward
        self._next_bucket = 0  # buckets start in order: the same collectives in the same order on every rank
        self._armed = False  # the forward prepared a backward that reduces
        self._started = False  # some gradient of that backward arrived
        # The AccumulateGrad nodes are kept alive (the leaves hold them weakly) so the hooks stay on them.
        self._accumulators = [grad_edge(p)[0] for p in self._params]
        for i, node in enumerate(self._accumulators):
            node.register_hook(lambda grad_inputs, grad_outputs, i=i: self._gradient_ready(i))

    # --- forward ------------------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        self._check_prior_reduction_finished()
        if self.broadcast_buffers:
            for b in self.module.buffers():
                dist.broadcast(b, 0, group=self.process_group)
        output = self.module(*inputs, **kwargs)
        if is_grad_enabled() and self.require_backward_grad_sync:
            self._prepare_for_backward(output)
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside accumulate gradients locally; the first synchronised one averages the sums."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _prepare_for_backward(self, output):
        self._armed, self._started = True, False
        self._ready = [False] * len(self._params)
        self._left = len(self._params)
        self._next_bucket = 0
        for bucket in self._buckets:
            bucket.pending, bucket.work = len(bucket.indices), None
        if self.find_unused_parameters:
            reached = _nodes_reached(output)
            for i, node in enumerate(self._accumulators):
                if node not in reached:
                    self._mark_ready(i)

    def _check_prior_reduction_finished(self):
        if self._armed and self._started:
            missing = [name for name, ready in zip(self._names, self._ready) if not ready]
            raise RuntimeError(
                "DistributedDataParallel: expected to have finished reduction in the prior iteration before "
                f"starting a new one, but these parameters received no gradient on rank "
                f"{dist.get_rank(self.process_group)}: {', '.join(missing)}. Pass find_unused_parameters=True if "
                "some parameters do not take part in computing the loss, or make every output of forward part "
                "of the loss.")
        self._armed = False

    # --- backward: the AccumulateGrad post hooks ----------------------------------------------------
    def _gradient_ready(self, i):
        if not self._armed:  # no_sync, no_grad forward, or a second backward of the same forward
            return
        if self._ready[i]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {self._names[i]} was marked ready twice in one iteration: "
                "it got a gradient although the forward output does not depend on it (used outside forward, "
                "with find_unused_parameters=True), or backward ran twice after one forward")
        self._started = True
        self._mark_ready(i)
        self._start_full_buckets()
        if self._left == 0:
            self._finish()
        else:
            for bucket in self._buckets[:self._next_bucket]:
                bucket.work.is_completed()  # MPI progresses a non-blocking collective only inside MPI calls

    def _mark_ready(self, i):
        """The parameter's gradient (the accumulated ``p.grad``, or zeros) goes into its bucket slot."""
        bucket, view = self._slots[i]
        grad = self._params[i].grad
        if grad is None:
            view[...] = 0
        else:
            np.copyto(view, grad._data)
        self._used[i] = grad is not None
        self._ready[i] = True
        self._left -= 1
        bucket.pending -= 1

    def _start_full_buckets(self):
        while self._next_bucket < len(self._buckets) and self._buckets[self._next_bucket].pending == 0:
            bucket = self._buckets[self._next_bucket]
            bucket.work = dist.all_reduce(bucket.tensor, dist.ReduceOp.AVG, group=self.process_group, async_op=True)
            self._next_bucket += 1

    def _finish(self):
        """Wait for every bucket, then write the averages into ``p.grad`` in place."""
        for bucket in self._buckets:
            bucket.work.wait()
        if self.find_unused_parameters:  # a parameter no rank used keeps its grad (None), as in PyTorch
            dist.all_reduce(self._used_tensor, dist.ReduceOp.MAX, group=self.process_group)
        for i, p in enumerate(self._params):
            if self._used[i] or not self.find_unused_parameters:
                _write_grad(p, self._slots[i][1])
        self._armed = False


def _write_grad(p, average):
    if p.grad is None:
        p.grad = from_numpy(average.copy())
    else:
        np.copyto(p.grad._data, average)
        p.grad._version[0] += 1


def _assign_buckets(params, cap_bytes):
    """Parameter indices grouped into buckets, last parameters first; a bucket closes when it reaches its
    cap (the first one's is at most 1 MiB) or the dtype changes."""
    buckets, current, size, limit = [], [], 0, min(FIRST_BUCKET_BYTES, cap_bytes)
    for i in reversed(range(len(params))):
        if current and params[i]._data.dtype != params[current[0]]._data.dtype:
            buckets.append(current)
            current, size, limit = [], 0, cap_bytes
        current.append(i)
        size += params[i]._data.nbytes
        if size >= limit:
            buckets.append(current)
            current, size, limit = [], 0, cap_bytes
    return buckets + [current] if current else buckets


def _nodes_reached(output):
    """The backward-graph nodes (AccumulateGrad ones included) that the tensors in ``output`` lead to."""
    stack = [grad_edge(t)[0] for t in _tensors_in(output) if t.requires_grad]
    seen = set(stack)
    while stack:
        for edge in stack.pop().edges:
            if edge is not None and edge[0] not in seen:
                seen.add(edge[0])
                stack.append(edge[0])
    return seen


def _tensors_in(obj):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors_in(item)


def _verify_same_model(module, group):
    """Every rank's parameters and buffers, compared with rank 0's; the first difference is an error."""
    mine = [("parameter", name, list(p.shape), p.dtype.name, p.requires_grad) for name, p in module.named_parameters()]
    mine += [("buffer", name, list(b.shape), b.dtype.name, False) for name, b in module.named_buffers()]
    everyone = [None] * dist.get_world_size(group)
    dist.all_gather_object(everyone, mine, group=group)
    for rank, theirs in enumerate(everyone):
        if theirs != everyone[0]:
            raise RuntimeError("DistributedDataParallel: every rank must hold the same model, but "
                               + _first_difference(rank, theirs, everyone[0]))


def _first_difference(rank, theirs, reference):
    def describe(entry):
        kind, name, shape, dtype, requires_grad = entry
        return f"{kind} '{name}' {shape} {dtype}" + ("" if requires_grad or kind == "buffer" else " (no grad)")

    for k, (a, b) in enumerate(zip(theirs, reference)):
        if a != b:
            return f"entry {k} differs: rank {rank} has {describe(a)}, rank 0 has {describe(b)}"
    longer, owner = (theirs, rank) if len(theirs) > len(reference) else (reference, 0)
    return (f"rank {rank} has {len(theirs)} parameters and buffers, rank 0 has {len(reference)}; "
            f"the first extra one is rank {owner}'s {describe(longer[min(len(theirs), len(reference))])}")
