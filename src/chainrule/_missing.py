"""Clear errors for PyTorch names chainrule does not have: a module's ``__getattr__`` and Tensor's.

``chainrule.fft`` or ``x.unfold_`` raise an AttributeError (so ``hasattr`` and ``getattr(..., default)``
keep working) whose message names the missing feature and its PyTorch spelling, instead of Python's bare
"has no attribute"."""


def module_getattr(module, torch_module):
    """A module-level ``__getattr__`` for ``module`` (its name) mirroring ``torch_module``."""

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        raise AttributeError(f"module {module!r} has no attribute {name!r}: PyTorch's {torch_module}.{name} is not "
                             "implemented in chainrule (or the name is misspelled)")

    return __getattr__


def tensor_getattr(self, name):
    """``Tensor.__getattr__``: only reached when normal lookup failed."""
    if name.startswith("__"):
        raise AttributeError(f"'Tensor' object has no attribute {name!r}")
    raise AttributeError(f"'Tensor' object has no attribute {name!r}: PyTorch's Tensor.{name} is not implemented "
                         "in chainrule (or the name is misspelled)")
