"""Global autograd switches: whether ops record the tape, forward-mode level, anomaly mode.

They live in one small object that ``bind`` reads on every op, so checking them costs one
attribute lookup. Like PyTorch's defaults these are process-wide switches used by one thread at a
time (the static scheduler's worker threads run array kernels only, never ``bind``).
"""

import functools


class _State:
    __slots__ = ("grad_enabled", "fw_level", "fw_epoch", "anomaly", "anomaly_check_nan", "tracer")

    def __init__(self):
        self.grad_enabled = True
        self.fw_level = 0  # > 0 inside forward_ad.dual_level()
        self.fw_epoch = 0  # bumped when a dual level exits, so old tangents read as absent
        self.anomaly = False
        self.anomaly_check_nan = True
        self.tracer = None  # the static-graph builder while a Graph is being recorded


state = _State()


class _GradModeContext:
    """Base of the grad-mode context managers; each also works as a decorator."""

    _target = True

    def __enter__(self):
        self._previous = state.grad_enabled
        state.grad_enabled = self._target

    def __exit__(self, *exc):
        state.grad_enabled = self._previous
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Ops inside do not record the tape (inference, optimizer updates)."""

    _target = False


class enable_grad(_GradModeContext):
    """Re-enable recording inside a ``no_grad`` block."""

    _target = True


class set_grad_enabled(_GradModeContext):
    """Switch recording on or off; takes effect at once, and undoes itself when used with ``with``."""

    def __init__(self, mode):
        self._target = bool(mode)
        self._previous = state.grad_enabled
        state.grad_enabled = self._target

    def __enter__(self):
        pass

    def __call__(self, fn):
        state.grad_enabled = self._previous  # as a decorator it must not change the mode now
        target = self._target

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(target):
                return fn(*args, **kwargs)

        return wrapper


def is_grad_enabled():
    return state.grad_enabled
