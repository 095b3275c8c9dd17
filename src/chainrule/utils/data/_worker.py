"""What runs inside a DataLoader worker process, and what a worker can learn about itself.

Protocol on each worker's duplex channel. Main to worker: ``(task_idx, index)`` to fetch a
batch, ``RESET`` to start a new epoch (persistent workers), ``None`` to exit. Worker to main:
``(task_idx, result)`` where result is the batch, an ``ExceptionWrapper``, or ``IterationEnd``
(an IterableDataset ran out); ``(None, RESET)`` acknowledges a reset, so the main process knows
that everything before it belongs to the previous epoch.
"""

import os
import random
import signal
import sys
import traceback
from dataclasses import dataclass

import numpy as np

import chainrule as cr

from . import _transport
from ._fetch import make_fetcher

RESET = "reset"
_PARENT_CHECK_INTERVAL = 1.0  # seconds between checks that the main process is still alive

_worker_info = None


@dataclass(frozen=True)
class WorkerInfo:
    """Describes the worker process that is running: ``id`` (0 to num_workers - 1), ``num_workers``,
    ``seed`` (``base_seed + id``; chainrule's and ``random``'s generators are seeded with it and
    numpy's global one with a value derived from it) and ``dataset`` (this process's copy)."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """The ``WorkerInfo`` of the current DataLoader worker, or None in the main process.

    Use it in an IterableDataset's ``__iter__`` to give each worker its own shard, or in a
    ``worker_init_fn`` to configure the worker's copy of the dataset.
    """
    return _worker_info


class IterationEnd:
    """Sent instead of a batch when a worker's IterableDataset is used up."""


class _KeyErrorMessage(str):
    # KeyError's str() is the repr of its argument, which would print the traceback as one line.
    def __repr__(self):
        return str(self)


class ExceptionWrapper:
    """The exception being handled, carried across processes as its type and formatted traceback."""

    def __init__(self, where):
        self.exc_type = sys.exc_info()[0]
        self.traceback = traceback.format_exc()
        self.where = where

    def reraise(self):
        """Raise an exception of the original type (RuntimeError when that type cannot take one
        message), whose message says where it happened and holds the original traceback."""
        message = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.traceback}"
        if issubclass(self.exc_type, KeyError):
            message = _KeyErrorMessage(message)
        try:
            exception = self.exc_type(message)
        except Exception:
            raise RuntimeError(message) from None
        raise exception


def _seed_worker(base_seed, worker_id):
    seed = base_seed + worker_id
    random.seed(seed)
    cr.manual_seed(seed)
    np.random.seed(np.random.SeedSequence([base_seed, worker_id]).generate_state(1)[0])
    return seed


def _next_message(conn, parent_pid):
    """The next message from the main process, or None once it has died without saying so."""
    while not conn.poll(_PARENT_CHECK_INTERVAL):
        if os.getppid() != parent_pid:
            return None
    return conn.recv()


def worker_loop(conn, dataset, auto_collation, collate_fn, drop_last, base_seed, worker_init_fn,
                worker_id, num_workers, parent_pid):
    """Serve fetch requests from the main process until told to stop or the main process is gone."""
    global _worker_info
    # Ctrl-C reaches the whole process group; the main process handles it and shuts workers down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed = _seed_worker(base_seed, worker_id)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    where = f"in DataLoader worker process {worker_id}"
    sock = _transport.fd_socket(conn)
    init_failure = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception:
        init_failure = ExceptionWrapper(f"{where} while running worker_init_fn")
    fetcher = make_fetcher(dataset, auto_collation, collate_fn, drop_last)
    try:
        while (message := _next_message(conn, parent_pid)) is not None:
            if message == RESET:
                fetcher = make_fetcher(dataset, auto_collation, collate_fn, drop_last)
                _transport.send(conn, sock, (None, RESET))
                continue
            task_idx, index = message
            if init_failure is not None:
                result = init_failure
            else:
                try:
                    result = fetcher.fetch(index)
                except StopIteration:
                    result = IterationEnd()
                except Exception:
                    result = ExceptionWrapper(where)
            try:
                _transport.send(conn, sock, (task_idx, result))
            except ConnectionError:
                raise
            except Exception:  # the batch could not be pickled; nothing was sent yet
                failure = ExceptionWrapper(f"{where} while sending the batch to the main process")
                _transport.send(conn, sock, (task_idx, failure))
    except (EOFError, ConnectionError):
        pass  # the main process closed our channel: it is gone or shutting us down
    finally:
        if sock is not None:
            sock.close()
