"""Checks that need several processes, run by tests/test_distributed.py as
``chainrule run -n N tests/mpi_checks.py checks`` (or ``raise``, ``mismatch`` ...).

Every rank runs every check; after a check passed on all ranks, rank 0 prints ``PASSED <name>``. A
failing assert on any rank aborts the whole job through the hook ``init_process_group`` installs, with
that rank's traceback, so the pytest side sees which check failed (and never waits on a hung job).
"""

import sys

import numpy as np

import chainrule as cr
import chainrule.distributed as dist
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.distributed import ReduceOp
from chainrule.nn.parallel import DistributedDataParallel as DDP
from chainrule.utils.data import DataLoader, DistributedSampler, TensorDataset

CHECKS = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def raises(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return str(exc)
    raise AssertionError(f"{fn.__name__} did not raise {exc_type.__name__}")


# --- collectives --------------------------------------------------------------------------------------

DTYPES = [cr.bool, cr.uint8, cr.int8, cr.int16, cr.int32, cr.int64, cr.float16, cr.float32, cr.float64]
NUMPY_REDUCE = {ReduceOp.SUM: np.sum, ReduceOp.PRODUCT: np.prod, ReduceOp.MIN: np.min, ReduceOp.MAX: np.max,
                ReduceOp.AVG: np.mean, ReduceOp.BAND: np.bitwise_and.reduce, ReduceOp.BOR: np.bitwise_or.reduce,
                ReduceOp.BXOR: np.bitwise_xor.reduce}
BOOL_REDUCE = {ReduceOp.SUM: np.any, ReduceOp.MAX: np.any, ReduceOp.BOR: np.any, ReduceOp.PRODUCT: np.all,
               ReduceOp.MIN: np.all, ReduceOp.BAND: np.all, ReduceOp.BXOR: np.logical_xor.reduce}


def values(rank, dtype, shape=(2, 3)):
    """What rank ``rank`` contributes: different on every rank, small enough for products of int8."""
    a = (np.arange(np.prod(shape)).reshape(shape) * (rank + 1)) % 5 + rank % 2
    return (a % 2).astype(bool) if dtype is cr.bool else a.astype(dtype.numpy)


def ops_for(dtype):
    if dtype is cr.bool:
        return [op for op in ReduceOp if op is not ReduceOp.AVG]
    if dtype.is_floating_point:
        return [ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX]
    return [op for op in ReduceOp if op is not ReduceOp.AVG]


@check
def collectives(rank, world):
    everyone = lambda dtype, shape=(2, 3): np.stack([values(r, dtype, shape) for r in range(world)])  # noqa: E731
    for dtype in DTYPES:
        for op in ops_for(dtype):
            t = cr.from_numpy(values(rank, dtype))
            version = t._version[0]
            assert dist.all_reduce(t, op=op) is None
            reduce = (BOOL_REDUCE if dtype is cr.bool else NUMPY_REDUCE)[op]
            expected = reduce(everyone(dtype), axis=0).astype(dtype.numpy)
            tol = 1e-3 if dtype is cr.float16 else 0
            assert t.dtype is dtype and np.allclose(t.numpy(), expected, rtol=tol, atol=tol), (dtype, op, t, expected)
            assert t._version[0] == version + 1  # an in-place change, as autograd's checks need to know
        t = cr.from_numpy(values(rank, dtype))
        dist.broadcast(t, src=world - 1)
        assert np.array_equal(t.numpy(), values(world - 1, dtype))
        gathered = [cr.zeros(2, 3, dtype=dtype) for _ in range(world)]
        dist.all_gather(gathered, cr.from_numpy(values(rank, dtype)))
        assert np.array_equal(np.stack([g.numpy() for g in gathered]), everyone(dtype))
        out = cr.zeros(world * 2, 3, dtype=dtype)
        dist.all_gather_into_tensor(out, cr.from_numpy(values(rank, dtype)))
        assert np.array_equal(out.numpy(), everyone(dtype).reshape(world * 2, 3))
    # reduce_scatter: rank r gets block r of the sum
    full = lambda r: values(r, cr.float64, (world, 4))  # noqa: E731
    block = cr.zeros(4, dtype=cr.float64)
    dist.reduce_scatter_tensor(block, cr.from_numpy(full(rank)))
    assert np.array_equal(block.numpy(), sum(full(r) for r in range(world))[rank])
    dist.reduce_scatter(block, [cr.from_numpy(row) for row in full(rank)], op=ReduceOp.MAX)
    assert np.array_equal(block.numpy(), np.max([full(r) for r in range(world)], axis=0)[rank])
    t = cr.from_numpy(values(rank, cr.int64))
    dist.reduce(t, dst=world - 1)
    expected = everyone(cr.int64).sum(0) if rank == world - 1 else values(rank, cr.int64)
    assert np.array_equal(t.numpy(), expected)
    # not contiguous, asynchronous
    t = cr.from_numpy(values(rank, cr.float64, (3, 4))).T
    work = dist.all_reduce(t, op=ReduceOp.AVG, async_op=True)
    assert work.wait() and work.is_completed()
    assert np.allclose(t.numpy(), everyone(cr.float64, (3, 4)).mean(0).T)
    assert dist.barrier(async_op=True).wait()
    objects = [None] * world
    dist.all_gather_object(objects, {"rank": rank})
    assert objects == [{"rank": r} for r in range(world)]
    box = [f"from {rank}", rank]
    dist.broadcast_object_list(box, src=1)
    assert box == ["from 1", 1]
    # wrong arguments: the same error on every rank, before any communication
    assert "world_size" in raises(ValueError, dist.all_gather, [cr.zeros(1)], cr.zeros(1))
    assert "src=" in raises(ValueError, dist.broadcast, cr.zeros(1), src=world)
    assert "AVG" in raises(ValueError, dist.all_reduce, cr.zeros(1, dtype=cr.int64), op=ReduceOp.AVG)
    assert "BAND" in raises(ValueError, dist.all_reduce, cr.zeros(1), op=ReduceOp.BAND)
    assert "Tensor" in raises(TypeError, dist.all_reduce, np.zeros(1))
    assert "twice" in raises(RuntimeError, dist.init_process_group)


# --- DistributedDataParallel -----------------------------------------------------------------------

BATCH = 3  # per rank
SMALL_BUCKETS = 200 / 2**20  # bucket_cap_mb of 200 bytes: Net's gradients fill 3 buckets


class Net(nn.Module):
    """Conv, linear and an optional branch: enough to give several buckets and an unused parameter."""

    def __init__(self, wider=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc1 = nn.Linear(2 * 4 * 4, 6 + wider)
        self.fc2 = nn.Linear(6 + wider, 4)
        self.extra = nn.Linear(4, 4)

    def forward(self, x, extra=False):
        h = self.fc2(F.relu(self.fc1(F.relu(self.conv(x)).flatten(1))))
        return self.extra(h) if extra else h


def batches(steps, world, seed=7):
    """The same global batches on every rank: (images, labels) of world * BATCH samples per step."""
    rng = np.random.default_rng(seed)
    n = world * BATCH
    return [(cr.from_numpy(rng.standard_normal((n, 1, 6, 6))), cr.from_numpy(rng.integers(0, 4, n)))
            for _ in range(steps)]


def shard(batch, rank):
    x, y = batch
    return x[rank * BATCH:(rank + 1) * BATCH], y[rank * BATCH:(rank + 1) * BATCH]


def net(seed=0, **kwargs):
    cr.manual_seed(seed)
    return Net(**kwargs).double()


def not_same_on_every_rank(t, world):
    copies = [cr.zeros_like(t) for _ in range(world)]
    dist.all_gather(copies, t.detach())
    return not all(np.array_equal(c.numpy(), t.detach().numpy()) for c in copies)


def assert_same_on_every_rank(model, world):
    """Bitwise: the ranks' parameters must never drift apart."""
    for name, p in model.named_parameters():
        assert not not_same_on_every_rank(p, world), f"{name} differs between ranks"


def close(a, b, tol=1e-10):
    return np.allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


def train_and_compare(rank, world, make_optimizer):
    """DDP on BATCH samples per rank == one process on world * BATCH samples, step after step."""
    reference, model = net(), net(seed=rank)  # DDP must start every rank from rank 0's weights
    ddp = DDP(model, bucket_cap_mb=SMALL_BUCKETS)  # ~500 bytes: a few buckets, reduced during backward
    assert len(ddp._buckets) == 3
    assert all(close(p, q, 0) for p, q in zip(model.parameters(), reference.parameters()))
    opt, ref_opt = make_optimizer(model.parameters()), make_optimizer(reference.parameters())
    for batch in batches(4, world):
        opt.zero_grad()
        ref_opt.zero_grad()
        x, y = shard(batch, rank)
        F.cross_entropy(ddp(x, extra=True), y).backward()
        F.cross_entropy(reference(batch[0], extra=True), batch[1]).backward()
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            assert p.grad is not None and close(p.grad, q.grad), name
        opt.step()
        ref_opt.step()
        assert_same_on_every_rank(model, world)
        assert all(close(p, q) for p, q in zip(model.parameters(), reference.parameters()))


@check
def ddp_sgd(rank, world):
    train_and_compare(rank, world, lambda params: cr.optim.SGD(params, lr=0.1, momentum=0.9))


@check
def ddp_adam(rank, world):
    train_and_compare(rank, world, lambda params: cr.optim.Adam(params, lr=0.01))


@check
def ddp_no_sync(rank, world):
    """Two backward passes under no_sync, then a synchronised one: the average of the accumulated sums."""
    reference, model = net(), net()
    ddp = DDP(model, bucket_cap_mb=SMALL_BUCKETS)
    steps = batches(3, world, seed=3)
    with ddp.no_sync():
        for batch in steps[:2]:
            x, y = shard(batch, rank)
            F.cross_entropy(ddp(x, extra=True), y).backward()
    differs = [not_same_on_every_rank(p.grad, world) for p in model.parameters()]
    assert all(differs)  # no_sync did not reduce
    held = [p.grad for p in model.parameters()]  # references held across the synchronised backward
    x, y = shard(steps[2], rank)
    F.cross_entropy(ddp(x, extra=True), y).backward()
    assert all(h is p.grad for h, p in zip(held, model.parameters()))  # averaged in place, as in PyTorch
    for batch in steps:
        F.cross_entropy(reference(batch[0], extra=True), batch[1]).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        assert close(p.grad, q.grad)


@check
def ddp_unused_parameters(rank, world):
    """``extra`` runs on rank 0 only; ``other`` nowhere. Nothing hangs; rank 0's extra gradient is averaged."""
    reference, model = net(), net()
    model.other, reference.other = nn.Linear(2, 2).double(), nn.Linear(2, 2).double()
    ddp = DDP(model, bucket_cap_mb=SMALL_BUCKETS, find_unused_parameters=True)
    for batch in batches(2, world, seed=5):
        model.zero_grad()
        reference.zero_grad()
        x, y = shard(batch, rank)
        F.cross_entropy(ddp(x, extra=rank == 0), y).backward()
        # the reference: the mean over ranks of each rank's own loss
        loss = sum(F.cross_entropy(reference(*shard(batch, r)[:1], extra=r == 0), shard(batch, r)[1])
                   for r in range(world)) / world
        loss.backward()
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            if name.startswith("other"):
                assert p.grad is None and q.grad is None, name
            else:
                assert close(p.grad, q.grad), name
    assert_same_on_every_rank(model, world)
    # without find_unused_parameters, an unused parameter is named at the next forward
    ddp = DDP(net(), bucket_cap_mb=SMALL_BUCKETS)
    x, y = shard(batches(1, world)[0], rank)
    F.cross_entropy(ddp(x), y).backward()
    message = raises(RuntimeError, ddp, x)
    assert "extra.weight" in message and "find_unused_parameters=True" in message, message


@check
def ddp_buffers_and_model_check(rank, world):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    model[1].running_mean.fill_(float(rank))
    ddp = DDP(model)
    assert model[1].running_mean.tolist() == [0.0] * 4  # rank 0's buffers at construction
    model.eval()
    model[1].running_var.fill_(float(rank + 1))
    with cr.no_grad():
        ddp(cr.ones(2, 3, dtype=cr.float64))
    assert model[1].running_var.tolist() == [1.0] * 4  # and before each forward (broadcast_buffers)
    message = raises(RuntimeError, DDP, net(wider=rank == world - 1))
    assert (f"rank {world - 1} has parameter 'fc1.weight' [7, 32] float64, rank 0 has parameter 'fc1.weight' "
            "[6, 32] float64") in message, message
    shorter = nn.Linear(2, 2, bias=rank != 1)
    assert "rank 1 has 1 parameters and buffers, rank 0 has 2" in raises(RuntimeError, DDP, shorter)


# --- the sampler ------------------------------------------------------------------------------------

@check
def sampler(rank, world):
    """Over all ranks, one epoch visits every sample once (plus padding up to a multiple of world)."""
    for n in (world * 5, world * 5 + 1):
        data = TensorDataset(cr.arange(n))
        s = DistributedSampler(data, shuffle=True, seed=4)
        assert (s.num_replicas, s.rank) == (world, rank)
        orders = []
        for epoch in (0, 1):
            s.set_epoch(epoch)
            mine = cr.cat([b for (b,) in DataLoader(data, batch_size=2, sampler=s)]).tolist()
            everyone = [None] * world
            dist.all_gather_object(everyone, mine)
            seen = sorted(i for part in everyone for i in part)
            padding = -n % world
            assert len(seen) == n + padding and sorted(set(seen)) == list(range(n))
            assert len(seen) - len(set(seen)) == padding
            orders.append(everyone)
        assert orders[0] != orders[1]  # set_epoch reshuffles


@check
def debug_mode(rank, world):
    """With CHAINRULE_DISTRIBUTED_DEBUG=1 a rank calling another collective, or another shape, is named."""
    if rank == 1:
        message = raises(RuntimeError, dist.broadcast, cr.zeros(3), src=0)
    else:
        message = raises(RuntimeError, dist.all_reduce, cr.zeros(3))
    others = ", ".join(str(r) for r in range(world) if r != 1)
    assert "rank 1: broadcast(shape=[3], dtype=float32, src=0)" in message, message
    assert f"rank{'s' if world > 2 else ''} {others}: all_reduce(shape=[3], dtype=float32, op=SUM)" in message
    message = raises(RuntimeError, dist.all_reduce, cr.zeros(2 + (rank == world - 1)))
    assert f"rank {world - 1}: all_reduce(shape=[3]" in message, message


def main(mode):
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    if mode == "raise":  # rank 1 fails; the others wait in a barrier it never reaches
        if rank == 1:
            raise ValueError("rank 1 failed on purpose")
        dist.barrier()
        return
    names = [n for n in CHECKS if n != "debug_mode" or dist.c10d._group.debug]
    for name in names:
        CHECKS[name](rank, world)
        dist.barrier()
        if rank == 0:
            print(f"PASSED {name}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
