"""DataLoader: batches from a dataset, in the main process or in worker processes.

With ``num_workers > 0`` each worker is a process with one duplex channel to the main process.
The main process hands out batch indices round-robin, keeps ``prefetch_factor`` batches
outstanding per worker, and reads results in order: batch ``i`` is always read from the worker
it was given to, so no reordering buffer is needed and the batches are exactly those of
``num_workers=0``. While waiting it also watches every worker's process sentinel, so a worker
that dies is reported at once instead of leaving the loop waiting forever. Large arrays come back
through shared memory (see ``_transport``).
"""

import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import time
import weakref

from chainrule.random import rng as _numpy_rng

from . import _transport, _worker
from ._fetch import make_fetcher
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler, _InfiniteConstantSampler

_SHUTDOWN_GRACE = 1.0  # seconds a worker gets to finish its batch and exit before it is killed


class DataLoader:
    """Iterates over batches of ``dataset``, optionally shuffled and loaded by worker processes.

    Arguments and behaviour follow ``torch.utils.data.DataLoader``. ``batch_size=None`` turns
    batching off (samples pass through ``default_convert``). With ``num_workers > 0`` the
    dataset, ``collate_fn`` and ``worker_init_fn`` must be picklable when the start method is
    'spawn' (the default is 'fork' on Linux). ``generator`` drives shuffling and the workers'
    seeds, so a seeded generator reproduces an epoch whatever ``num_workers`` is.
    ``pin_memory`` is accepted for compatibility and does nothing: batches are host arrays, moved to a GPU by
    ``batch.to(device)`` (``Tensor.pin_memory()`` returns the tensor itself).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. Let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"prefetch_factor should be at least 1, but got {prefetch_factor}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None and num_workers == 0:
            raise ValueError("multiprocessing_context can only be used with multi-process loading "
                             "(num_workers > 0), but got num_workers=0")

        if isinstance(dataset, IterableDataset):
            if shuffle:
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}; shuffle inside the dataset's __iter__ instead")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler!r}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")

        if sampler is None:
            if isinstance(dataset, IterableDataset):
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn or (default_collate if batch_sampler is not None else default_convert)
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = _context(multiprocessing_context) if num_workers else None
        self.generator = generator
        self.prefetch_factor = prefetch_factor if prefetch_factor is not None or not num_workers else 2
        self.persistent_workers = persistent_workers
        self._iterator = None

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if not self.persistent_workers:
            return self._get_iterator()
        if self._iterator is None or self._iterator.closed:
            self._iterator = self._get_iterator()
        else:
            self._iterator._reset(self)
        return self._iterator

    def _get_iterator(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        return _MultiProcessIter(self)

    def __len__(self):
        return _length(self.dataset, self._index_sampler, self.batch_size, self.drop_last)


def _length(dataset, index_sampler, batch_size, drop_last):
    if not isinstance(dataset, IterableDataset):
        return len(index_sampler)
    length = len(dataset)  # TypeError for a dataset without __len__, as in PyTorch
    if batch_size is None:
        return length
    return length // batch_size if drop_last else -(-length // batch_size)


def _context(context):
    """The multiprocessing context for workers: as given, else 'fork' on Linux (workers start in
    milliseconds and share the dataset's memory copy-on-write), else the platform default."""
    if context is None:
        if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
            return multiprocessing.get_context("fork")
        return multiprocessing.get_context()
    if isinstance(context, str):
        return multiprocessing.get_context(context)
    return context


class _BaseIter:
    def __init__(self, loader):
        self._start_epoch(loader)

    def _start_epoch(self, loader):
        # The base seed is drawn whatever num_workers is, so a seeded generator gives the same
        # shuffle with or without workers.
        self._base_seed = int(_numpy_rng(loader.generator).integers(0, 2**62))
        self._sampler_iter = iter(loader._index_sampler)
        # Not loader.__len__: a persistent iterator must not keep its loader alive.
        self._length = functools.partial(_length, loader.dataset, loader._index_sampler, loader.batch_size,
                                         loader.drop_last)

    def __iter__(self):
        return self

    def __len__(self):
        return self._length()


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader):
        super().__init__(loader)
        self._fetcher = make_fetcher(loader.dataset, loader._auto_collation, loader.collate_fn, loader.drop_last)

    def __next__(self):
        return self._fetcher.fetch(next(self._sampler_iter))


class _MultiProcessIter(_BaseIter):
    def __init__(self, loader):
        super().__init__(loader)
        self._prefetch_factor = loader.prefetch_factor
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        worker_args = [(loader.dataset, loader._auto_collation, loader.collate_fn, loader.drop_last,
                        self._base_seed, loader.worker_init_fn, worker_id, loader.num_workers, os.getpid())
                       for worker_id in range(loader.num_workers)]
        self._pool = _WorkerPool(loader.multiprocessing_context, worker_args)
        # Shut the workers down when this iterator is garbage-collected or the interpreter exits.
        self._shutdown = weakref.finalize(self, self._pool.shutdown)
        self._dispatch_epoch()

    @property
    def closed(self):
        return not self._shutdown.alive

    def _reset(self, loader):
        """Start a new epoch on the same worker processes (persistent_workers)."""
        self._start_epoch(loader)
        try:
            self._pool.reset()
        except BaseException:
            self._shutdown()
            raise
        self._dispatch_epoch()

    def _dispatch_epoch(self):
        n = len(self._pool.workers)
        self._send_idx = self._rcvd_idx = 0
        self._task_worker = {}
        self._outstanding = [0] * n
        self._active = [True] * n
        self._next_worker = 0
        self._sampler_done = False
        self._dispatch()

    def _dispatch(self):
        """Hand out batch indices until every active worker has prefetch_factor batches to do."""
        n = len(self._active)
        while not self._sampler_done:
            candidates = [(self._next_worker + k) % n for k in range(n)]
            free = [w for w in candidates if self._active[w] and self._outstanding[w] < self._prefetch_factor]
            if not free:
                return
            try:
                index = next(self._sampler_iter)
            except StopIteration:
                self._sampler_done = True
                return
            worker_id = free[0]
            self._pool.send(worker_id, (self._send_idx, index))
            self._task_worker[self._send_idx] = worker_id
            self._outstanding[worker_id] += 1
            self._send_idx += 1
            self._next_worker = (worker_id + 1) % n

    def __next__(self):
        if self.closed and self._rcvd_idx < self._send_idx:
            raise RuntimeError("this DataLoader iterator was shut down by an earlier error; start a new epoch "
                               "with iter(loader)")
        try:
            result = self._next_result()
        except StopIteration:
            if not self._persistent:
                self._shutdown()
            raise
        except BaseException:  # a dead worker, a timeout, Ctrl-C: this epoch cannot go on
            self._shutdown()
            raise
        if isinstance(result, _worker.ExceptionWrapper):
            # The iterator stays usable (the next batch is already on its way), but the traceback
            # must not keep it alive: whoever drops the iterator also drops its workers.
            del self
            result.reraise()
        return result

    def _next_result(self):
        while self._rcvd_idx < self._send_idx:
            worker_id = self._task_worker.pop(self._rcvd_idx)
            task_idx, result = self._pool.receive(worker_id, self._timeout)
            assert task_idx == self._rcvd_idx, f"DataLoader received batch {task_idx}, expected {self._rcvd_idx}"
            self._rcvd_idx += 1
            self._outstanding[worker_id] -= 1
            if isinstance(result, _worker.IterationEnd):
                self._active[worker_id] = False
            self._dispatch()
            if not isinstance(result, _worker.IterationEnd):
                return result
        raise StopIteration


class _WorkerPool:
    """The worker processes of one iterator, a duplex channel to each, and their shutdown."""

    def __init__(self, context, worker_args):
        self._owner_pid = os.getpid()
        self.workers, self._conns, self._socks = [], [], []
        try:
            for worker_id, args in enumerate(worker_args):
                self._start(context, worker_id, args)
        except BaseException:
            self.shutdown()
            raise

    def _start(self, context, worker_id, args):
        conn, child_conn = context.Pipe(duplex=True)
        self._conns.append(conn)
        self._socks.append(_transport.fd_socket(conn))
        process = context.Process(target=_worker.worker_loop, args=(child_conn, *args),
                                  name=f"DataLoader worker {worker_id}", daemon=True)
        try:
            process.start()
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            method = context.get_start_method()
            if method == "fork":
                raise
            raise RuntimeError(
                f"DataLoader could not start worker {worker_id} with the {method!r} start method: {exc}. "
                f"Workers started this way receive the dataset, collate_fn and worker_init_fn by pickling, so "
                f"these must be defined at module level (no lambdas, local functions or local classes); or "
                f"pass multiprocessing_context='fork' where the platform has it.") from exc
        finally:
            child_conn.close()  # keep only the worker's copy, so the channel reads EOF when it dies
        self.workers.append(process)

    def send(self, worker_id, message):
        try:
            self._conns[worker_id].send(message)
        except ConnectionError:
            raise self._death_error(worker_id) from None

    def receive(self, worker_id, timeout):
        """The next message from worker ``worker_id``; raises RuntimeError if any worker has died
        or nothing arrives within ``timeout`` seconds (0: wait as long as it takes)."""
        conn = self._conns[worker_id]
        ready = multiprocessing.connection.wait([conn] + [w.sentinel for w in self.workers], timeout or None)
        if not ready:
            raise RuntimeError(f"DataLoader timed out after {timeout} seconds waiting for a batch from worker "
                               f"{worker_id}; raise timeout= if the dataset is slow, or run with "
                               f"num_workers=0 to see where it blocks")
        if conn not in ready:
            raise self._death_error(next(i for i, w in enumerate(self.workers) if w.sentinel in ready))
        try:
            return _transport.recv(conn, self._socks[worker_id])
        except (EOFError, ConnectionError):
            raise self._death_error(worker_id) from None

    def reset(self):
        """Tell every worker a new epoch starts and discard what is left of the previous one."""
        for worker_id in range(len(self.workers)):
            self.send(worker_id, _worker.RESET)
        for worker_id in range(len(self.workers)):
            task_idx = 0
            while task_idx is not None:  # results of the previous epoch come first; drop them
                task_idx, _ = self.receive(worker_id, timeout=0)

    def _death_error(self, worker_id):
        process = self.workers[worker_id]
        process.join(_SHUTDOWN_GRACE)  # its channel can close a moment before it is reaped
        code = process.exitcode
        if code is None:
            how = "closed its connection unexpectedly"
        elif code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return RuntimeError(
            f"DataLoader worker {worker_id} (pid {process.pid}) exited unexpectedly with exit code {code}: it "
            f"{how}. A worker dies like this when it runs out of memory (the kernel's OOM killer sends "
            f"SIGKILL), crashes in native code, or is killed by someone. Lower batch_size or num_workers if "
            f"memory is short, or run with num_workers=0 to see the failure in this process.")

    def shutdown(self):
        """Ask every worker to exit, wait a moment, kill those still running; idempotent."""
        if os.getpid() != self._owner_pid:
            return  # a copy of this pool inherited by a forked process: the workers are not its own
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass  # that worker is already gone
        for conn, sock in zip(self._conns, self._socks):
            conn.close()  # a worker blocked sending to us now fails and exits
            if sock is not None:
                sock.close()
        deadline = time.monotonic() + _SHUTDOWN_GRACE
        for process in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.workers:
            if process.is_alive():
                process.kill()
                process.join()
        self._conns, self._socks = [], []
