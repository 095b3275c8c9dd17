"""Clear errors for PyTorch names chainrule does not have: a module-level ``__getattr__``.

``chainrule.fft`` raises an AttributeError (so ``hasattr`` and ``getattr(..., default)`` keep working) whose
message names the missing feature and its PyTorch spelling, instead of Python's bare "has no attribute".
Tensor has no such hook on purpose: a class ``__getattr__`` makes every attribute read of every tensor slower
(Python's own message, "'Tensor' object has no attribute 'stft'", names the feature already)."""


def module_getattr(module, torch_module):
    """A module-level ``__getattr__`` for ``module`` (its name) mirroring ``torch_module``."""

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        raise AttributeError(f"module {module!r} has no attribute {name!r}: PyTorch's {torch_module}.{name} is not "
                             "implemented in chainrule (or the name is misspelled)")

    return __getattr__
