"""chainrule.utils.data: datasets, samplers, collation and the DataLoader with and without workers."""

import collections
import gc
import mmap
import multiprocessing
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)

Point = collections.namedtuple("Point", "x y")


# --- datasets used by the tests (module level, so that spawned workers can unpickle them) -----------

class RangeDataset(Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return np.full(3, i, dtype=np.float32), i

    def __len__(self):
        return self.n


class FailingDataset(RangeDataset):
    def __getitem__(self, i):
        if i == 3:
            raise ValueError(f"bad sample {i}")
        return i


class MissingKeyDataset(RangeDataset):
    def __getitem__(self, i):
        return {}["no such key"]


class SuicidalDataset(RangeDataset):
    def __getitem__(self, i):
        if i == 5 and get_worker_info() is not None:  # never kill the test process itself
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class SlowDataset(RangeDataset):
    def __getitem__(self, i):
        if i == 2:
            time.sleep(3)
        return i


class WorkerDataset(RangeDataset):
    """Each sample says who produced it: (index, pid, worker id, worker seed, a draw from numpy)."""

    def __getitem__(self, i):
        info = get_worker_info()
        return i, os.getpid(), info.id, info.seed, int(np.random.randint(0, 2**31))


class BigDataset(RangeDataset):
    def __getitem__(self, i):
        return np.full((512, 512), i, dtype=np.float32)  # 1 MiB per sample: batches travel by shared memory


class Stream(IterableDataset):
    """0..n-1, split between workers by striding."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


def record_init(worker_id):
    os.environ["CHAINRULE_TEST_INIT"] = str(worker_id)


def env_init_collate(batch):
    return [os.environ.get("CHAINRULE_TEST_INIT")] * len(batch)


def failing_init(worker_id):
    raise OSError(f"cannot open the shard for worker {worker_id}")


def mixed_collate(batch):
    images = np.stack(batch)
    return {"array": images, "tensor": cr.from_numpy(images * 2), "small": np.arange(3), "name": "batch"}


def unpicklable_collate(batch):
    return lambda: batch


# --- helpers ------------------------------------------------------------------------------------

def within(seconds, fn, *args):
    """fn(*args) run in a thread; the test fails instead of hanging if it takes longer than ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # handed to the test thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds} s: the DataLoader hangs")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def live_workers():
    return [p for p in multiprocessing.active_children() if p.name.startswith("DataLoader worker")]


def as_lists(batches):
    """Batches of (tensor, tensor) as nested Python lists, for comparing epochs."""
    return [[t.numpy().tolist() for t in batch] for batch in batches]


@pytest.fixture(autouse=True)
def no_workers_left_behind():
    yield
    assert live_workers() == [], "a test left DataLoader worker processes running"


# --- datasets and splitting ---------------------------------------------------------------------

def test_tensor_dataset_and_subset():
    x = cr.from_numpy(np.arange(12, dtype=np.float32).reshape(6, 2))
    y = cr.from_numpy(np.arange(6, dtype=np.int64))
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    assert xi.numpy().tolist() == [8.0, 9.0] and yi.item() == 4
    sub = Subset(ds, [5, 0, 3])
    assert len(sub) == 3
    assert sub[0][1].item() == 5 and [s[1].item() for s in sub.__getitems__([2, 1])] == [3, 0]
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(x, cr.from_numpy(np.arange(5)))
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]


def test_random_split_counts_fractions_and_reproducibility():
    ds = RangeDataset(10)
    parts = random_split(ds, [7, 3], generator=cr.Generator().manual_seed(1))
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    again = random_split(ds, [7, 3], generator=cr.Generator().manual_seed(1))
    assert again[0].indices == parts[0].indices
    other = random_split(ds, [7, 3], generator=cr.Generator().manual_seed(2))
    assert other[0].indices != parts[0].indices

    assert [len(p) for p in random_split(RangeDataset(11), [0.5, 0.5])] == [6, 5]  # remainder dealt first-come
    assert [len(p) for p in random_split(RangeDataset(10), [0.7, 0.2, 0.1])] == [7, 2, 1]
    with pytest.raises(ValueError, match="does not equal the length"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="not between 0 and 1"):
        random_split(ds, [1.5, -0.5])


# --- collation ----------------------------------------------------------------------------------

def test_default_collate_nested_structures():
    batch = [
        {"image": np.ones((2, 2), np.float32) * i, "label": i, "weight": 0.5 * i, "name": f"s{i}",
         "pair": (np.int32(i), [i, -i]), "point": Point(i, True), "t": cr.from_numpy(np.arange(3.0) + i)}
        for i in range(4)
    ]
    out = default_collate(batch)
    assert set(out) == set(batch[0])
    assert out["image"].shape == (4, 2, 2) and out["image"].dtype == cr.float32
    assert out["label"].dtype == cr.int64 and out["label"].tolist() == [0, 1, 2, 3]
    assert out["weight"].dtype == cr.float64 and out["weight"].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert out["name"] == ["s0", "s1", "s2", "s3"]
    numpy_scalars, lists = out["pair"]  # tuples become lists, as in PyTorch
    assert numpy_scalars.dtype == cr.int32 and numpy_scalars.tolist() == [0, 1, 2, 3]
    assert [t.tolist() for t in lists] == [[0, 1, 2, 3], [0, -1, -2, -3]]
    assert isinstance(out["point"], Point) and out["point"].y.dtype == cr.bool
    assert out["t"].shape == (4, 3) and out["t"].numpy()[2].tolist() == [2.0, 3.0, 4.0]


def test_default_collate_errors_name_the_problem():
    with pytest.raises(RuntimeError, match=r"equal size, but got \[2\] at entry 0 and \[3\] at entry 1"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1, 2, 3]])
    with pytest.raises(TypeError, match="found <class 'object'>"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="numpy arrays"):
        default_collate([np.array(["a"]), np.array(["b"])])


def test_default_convert_leaves_batch_dimension_alone():
    out = default_convert({"x": np.arange(3), "n": 1, "pair": (np.float32(2), "s")})
    assert out["x"].shape == (3,) and out["n"] == 1
    assert out["pair"][0].dtype == cr.float32 and out["pair"][1] == "s"


# --- samplers -----------------------------------------------------------------------------------

def test_samplers():
    ds = RangeDataset(10)
    assert list(SequentialSampler(ds)) == list(range(10))
    order = list(RandomSampler(ds, generator=cr.Generator().manual_seed(3)))
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert order == list(RandomSampler(ds, generator=cr.Generator().manual_seed(3)))
    long = list(RandomSampler(ds, num_samples=25, generator=cr.Generator().manual_seed(0)))
    assert len(long) == 25 and sorted(long[:10]) == list(range(10)) and sorted(long[10:20]) == list(range(10))
    drawn = list(RandomSampler(ds, replacement=True, num_samples=100, generator=cr.Generator().manual_seed(0)))
    assert len(drawn) == 100 and set(drawn) <= set(range(10)) and len(set(drawn)) < 100
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(ds, num_samples=0)


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batch_sampler_and_len_with_drop_last(drop_last, sizes):
    batches = list(BatchSampler(SequentialSampler(range(10)), 4, drop_last))
    assert [len(b) for b in batches] == sizes and len(BatchSampler(range(10), 4, drop_last)) == len(sizes)
    loader = DataLoader(RangeDataset(10), batch_size=4, drop_last=drop_last)
    assert len(loader) == len(sizes) == len(list(loader))
    assert [len(labels) for _, labels in loader] == sizes
    workers = DataLoader(RangeDataset(10), batch_size=4, drop_last=drop_last, num_workers=2)
    assert len(workers) == len(sizes) == len(list(workers))


# --- DataLoader in the main process -------------------------------------------------------------

def test_loader_batches_in_order():
    batches = list(DataLoader(RangeDataset(5), batch_size=2))
    assert [labels.tolist() for _, labels in batches] == [[0, 1], [2, 3], [4]]
    images, labels = batches[1]
    assert images.shape == (2, 3) and images.dtype == cr.float32 and images.numpy()[1].tolist() == [3, 3, 3]
    unbatched = list(DataLoader(RangeDataset(3), batch_size=None))
    assert unbatched[2][0].shape == (3,) and unbatched[2][1] == 2


def test_shuffle_is_reproducible_with_a_seeded_generator():
    def epochs(seed, n=2):
        loader = DataLoader(RangeDataset(20), batch_size=6, shuffle=True, generator=cr.Generator().manual_seed(seed))
        return [as_lists(loader) for _ in range(n)]

    first, second = epochs(7)
    assert first == epochs(7)[0] and second == epochs(7)[1]
    assert first != second  # each epoch is a new permutation
    assert sorted(sum((labels for _, labels in first), [])) == list(range(20))
    assert epochs(8)[0] != first


def test_option_validation():
    ds = RangeDataset(4)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=BatchSampler(range(4), 2, False), batch_size=2)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified"):
        DataLoader(ds, prefetch_factor=4)
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(4), shuffle=True)
    assert DataLoader(ds, num_workers=2).prefetch_factor == 2


# --- DataLoader with workers --------------------------------------------------------------------

@pytest.mark.parametrize("drop_last", [False, True])
def test_workers_give_the_same_batches_in_the_same_order(drop_last):
    def epoch(num_workers):
        loader = DataLoader(RangeDataset(23), batch_size=4, shuffle=True, drop_last=drop_last,
                            num_workers=num_workers, generator=cr.Generator().manual_seed(5))
        return as_lists(loader)

    expected = epoch(0)
    assert within(20, lambda: epoch(2)) == expected
    assert within(20, lambda: epoch(3)) == expected
    assert live_workers() == []  # an exhausted iterator shuts its workers down at once


def test_iterable_dataset_with_and_without_workers():
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    loader = DataLoader(Stream(10), batch_size=2, num_workers=2, persistent_workers=True)
    for _ in range(2):  # the second epoch restarts each worker's iterator
        batches = [b.tolist() for b in within(20, list, loader)]
        assert sorted(sum(batches, [])) == list(range(10))
        assert batches[:2] == [[0, 2], [1, 3]]  # round-robin over the workers' shards
    del loader
    gc.collect()


def test_worker_info_seeds_and_init_fn():
    assert get_worker_info() is None
    loader = DataLoader(WorkerDataset(8), batch_size=2, num_workers=2, generator=cr.Generator().manual_seed(0))
    samples = [s for batch in within(20, lambda: list(loader)) for s in zip(*[t.tolist() for t in batch])]
    by_worker = {worker: (pid, seed) for _, pid, worker, seed, _ in samples}
    assert sorted(by_worker) == [0, 1]
    assert by_worker[0][0] != by_worker[1][0] != os.getpid()
    assert by_worker[1][1] == by_worker[0][1] + 1  # base seed + worker id
    draws = [draw for *_, draw in samples]
    assert len(set(draws)) == len(draws)  # numpy is seeded differently in each worker
    loader = DataLoader(WorkerDataset(8), batch_size=2, num_workers=2, generator=cr.Generator().manual_seed(0))
    again = [s for batch in within(20, list, loader) for s in zip(*[t.tolist() for t in batch])]
    assert [(s[3], s[4]) for s in again] == [(s[3], s[4]) for s in samples]  # seeded generator: same seeds

    loader = DataLoader(RangeDataset(4), batch_size=2, num_workers=2, worker_init_fn=record_init,
                        collate_fn=env_init_collate)
    assert within(20, lambda: list(loader)) == [["0", "0"], ["1", "1"]]


def test_worker_exception_is_reraised_with_worker_id_and_traceback():
    loader = DataLoader(FailingDataset(8), batch_size=2, num_workers=2)
    it = iter(loader)
    assert within(20, next, it).tolist() == [0, 1]
    with pytest.raises(ValueError) as info:
        within(10, next, it)
    message = str(info.value)
    assert message.startswith("Caught ValueError in DataLoader worker process 1.\nOriginal Traceback")
    assert "in __getitem__" in message and "ValueError: bad sample 3" in message
    assert within(10, next, it).tolist() == [4, 5]  # as in PyTorch, the epoch can go on
    del it, info  # the traceback holds the iterator too; dropping both shuts the workers down
    gc.collect()  # (within() puts the exception in a reference cycle)


def test_key_error_message_stays_readable():
    with pytest.raises(KeyError) as info:
        within(20, lambda: list(DataLoader(MissingKeyDataset(2), num_workers=1)))
    assert "Caught KeyError in DataLoader worker process 0.\nOriginal Traceback" in repr(info.value)


def test_worker_init_fn_failure_is_reported():
    with pytest.raises(OSError, match="(?s)process 0 while running worker_init_fn.*cannot open the shard for worker 0"):
        within(20, lambda: list(DataLoader(RangeDataset(4), num_workers=2, worker_init_fn=failing_init)))


def test_unpicklable_batch_is_reported():
    with pytest.raises(Exception, match="in DataLoader worker process 0 while sending the batch"):
        within(20, lambda: list(DataLoader(RangeDataset(2), num_workers=1, collate_fn=unpicklable_collate)))


def test_killed_worker_raises_instead_of_hanging():
    loader = DataLoader(SuicidalDataset(16), batch_size=2, num_workers=2)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader worker 0 \(pid \d+\) exited unexpectedly with exit code -9"):
        within(20, lambda: list(loader))
    assert time.monotonic() - start < 10
    assert live_workers() == []


def test_timeout_raises():
    loader = DataLoader(SlowDataset(4), num_workers=1, timeout=0.5)
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        within(20, lambda: list(loader))


def test_no_worker_left_after_break_delete_or_collect():
    loader = DataLoader(RangeDataset(100), batch_size=2, num_workers=2)
    it = iter(loader)
    next(it)
    assert len(live_workers()) == 2
    del it  # reference counting runs the shutdown at once
    assert live_workers() == []

    for _ in loader:
        break  # the loop's iterator is dropped the same way
    assert live_workers() == []

    it = iter(loader)
    next(it)
    cycle = [it]
    cycle.append(cycle)
    del it, cycle
    gc.collect()  # an iterator caught in a reference cycle goes when the collector runs
    assert live_workers() == []


def test_persistent_workers_are_reused_across_epochs():
    loader = DataLoader(WorkerDataset(8), batch_size=2, num_workers=2, persistent_workers=True)

    def epoch(loader):
        return [s for batch in loader for s in zip(*[t.tolist() for t in batch])]

    first = within(20, epoch, loader)
    pids = {s[1] for s in first}
    assert len(live_workers()) == 2 and {p.pid for p in live_workers()} == pids
    it = iter(loader)
    next(it)  # stop in the middle: the rest of this epoch must not leak into the next one
    second = within(20, epoch, loader)
    assert [s[0] for s in second] == list(range(8)) and {s[1] for s in second} == pids
    del loader, it
    gc.collect()
    assert live_workers() == []


def test_spawn_start_method():
    loader = DataLoader(RangeDataset(6), batch_size=4, num_workers=2, multiprocessing_context="spawn")
    assert within(60, as_lists, loader) == as_lists(DataLoader(RangeDataset(6), batch_size=4))
    local = DataLoader(RangeDataset(2), num_workers=1, multiprocessing_context="spawn", collate_fn=lambda b: b)
    with pytest.raises(RuntimeError, match="'spawn' start method: .* must be defined at module level"):
        iter(local)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared memory transport is Linux-only")
def test_large_batches_arrive_through_shared_memory():
    def mapped(array):
        while isinstance(array, np.ndarray):
            array = array.base
        return isinstance(array, memoryview) and isinstance(array.obj, mmap.mmap)

    batches = within(20, lambda: list(DataLoader(BigDataset(6), batch_size=4, num_workers=2)))
    assert [b.shape for b in batches] == [(4, 512, 512), (2, 512, 512)]
    assert batches[1].numpy()[1, 0, 0] == 5 and mapped(batches[1].numpy())
    batches[0].numpy()[:] = 1.0  # writable, like any other tensor

    out = within(20, lambda: next(iter(DataLoader(BigDataset(4), batch_size=4, num_workers=1,
                                                  collate_fn=mixed_collate))))
    assert isinstance(out["array"], np.ndarray) and mapped(out["array"]) and out["array"][3, 9, 9] == 3
    assert isinstance(out["tensor"], cr.Tensor) and out["tensor"].numpy()[3, 0, 0] == 6
    assert out["small"].tolist() == [0, 1, 2] and not mapped(out["small"]) and out["name"] == "batch"


def test_tensor_dataset_batches_equal_stacked_samples_and_edits_are_seen():
    """TensorDataset hands default_collate its gathered columns; a collate_fn that edits the sample
    list before calling default_collate gets the edited samples stacked, as PyTorch would."""
    x, y = cr.arange(40.0).reshape(10, 4), cr.arange(10) * 3
    ds = TensorDataset(x, y)
    for images, labels in DataLoader(ds, batch_size=4, shuffle=True):
        index = (labels // 3).tolist()
        assert images.tolist() == x.numpy()[index].tolist() and images.dtype == cr.float32
        assert labels.dtype == cr.int64 and images.is_contiguous()

    def replace_first(samples):
        samples[0] = (cr.full((4,), -1.0), cr.tensor(-1))
        return default_collate(samples)

    images, labels = next(iter(DataLoader(ds, batch_size=3, collate_fn=replace_first)))
    assert images.tolist() == [[-1.0] * 4, [4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0]]
    assert labels.tolist() == [-1, 3, 6]
