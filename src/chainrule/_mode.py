"""Modes: the stack of interpreters behind ``bind``, and the global autograd switches.

Every op goes through one dispatch point, ``bind(op, *args, **params)``, which hands it to the
interpreter on top of a stack (the shape of JAX's trace stack). Each interpreter handles
``(op, args, params)`` and defers to the one below it, so modes compose:

    rank 3  RecordTape          records a backward node (when grad mode is on)
    rank 2  PropagateTangents   forward mode: the output's tangent from the op's jvp (in a dual level)
    rank 1  static Graph        records an IR node from the op's shape rule (no data)
    rank 0  Evaluate            computes the op's forward on arrays

The stack is kept in rank order whatever order the modes are entered in, so a dual level inside a
static graph and a static graph inside a dual level both trace tangents into the graph. This module
is the bottom layer of the core: it imports nothing from chainrule.

The switches live in one small object that ``bind`` reads on every op, so checking them costs one
attribute lookup. Like PyTorch's defaults these are process-wide switches used by one thread at a
time (the static scheduler's worker threads run array kernels only, never ``bind``).
"""

import functools


class _State:
    __slots__ = ("grad_enabled", "fw_level", "fw_epoch", "anomaly", "anomaly_check_nan", "tracer", "top", "stack")

    def __init__(self):
        self.grad_enabled = True
        self.fw_level = 0  # > 0 inside forward_ad.dual_level()
        self.fw_epoch = 0  # bumped when a dual level exits, so old tangents read as absent
        self.anomaly = False
        self.anomaly_check_nan = True
        self.tracer = None  # the static Graph in the stack, if any (in-place ops and tracing code ask for it)
        self.stack = []  # interpreters, bottom first, in rank order
        self.top = None


state = _State()


class Interpreter:
    """One mode of running ops. Subclasses override what they change and defer the rest to ``below``.

    ``process(op, args, params)`` runs one primitive op; ``apply_function(call)`` runs a custom
    ``autograd.Function`` (a ``FunctionCall``). Entering an interpreter (``with``) places it in the
    stack by its ``rank``. In-place ops are not primitives: they go to ``state.tracer`` (a static
    graph records them as updates) or run eagerly as their out-of-place op plus a write.
    """

    rank = 0
    below = None

    def process(self, op, args, params):
        return self.below.process(op, args, params)

    def apply_function(self, cls, args, kwargs):
        return self.below.apply_function(cls, args, kwargs)

    def __enter__(self):
        push(self)
        return self

    def __exit__(self, *exc):
        pop(self)
        return False


def _relink(stack):
    for lower, upper in zip(stack, stack[1:]):
        upper.below = lower
    state.stack = stack
    state.top = stack[-1]
    state.tracer = next((i for i in reversed(stack) if i.rank == 1), None)


def push(interpreter):
    """Insert ``interpreter`` above every interpreter of its rank or lower."""
    stack = list(state.stack)
    at = next((k for k, i in enumerate(stack) if i.rank > interpreter.rank), len(stack))
    stack.insert(at, interpreter)
    _relink(stack)


def pop(interpreter):
    _relink([i for i in state.stack if i is not interpreter])


class suspended:
    """Run with ``interpreter`` taken out of the stack: a mode computing its own rules with the
    modes below it (a jvp rule's ops are taped and traced, but get no tangents of their own)."""

    def __init__(self, interpreter):
        self.interpreter = interpreter

    def __enter__(self):
        self.saved = state.stack
        _relink([i for i in self.saved if i is not self.interpreter])

    def __exit__(self, *exc):
        _relink(self.saved)
        return False


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
