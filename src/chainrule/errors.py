"""chainrule's exceptions.

Each subclasses the Python exception a caller would expect (and ``RuntimeError``, which is what
PyTorch raises), so ``except ValueError`` and code written for PyTorch both catch them.
"""


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose."""


class ShapeError(ChainruleError, ValueError, RuntimeError):
    """Shapes that an op cannot combine; the message names the op and the shapes."""


class DTypeError(ChainruleError, TypeError, RuntimeError):
    """A dtype an op does not accept (an integer tensor asked to require grad, say)."""


class IndexOutOfRangeError(ChainruleError, IndexError):
    """An index outside a tensor's bounds, or of a type that cannot index."""


class GraphError(ChainruleError, RuntimeError):
    """Misuse of the autograd graph: backward twice, a saved tensor modified in place, ..."""
