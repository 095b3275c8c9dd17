"""Utilities beside the core: ``chainrule.utils.data`` (datasets, samplers, DataLoader) and friends.

Submodules are imported on first attribute access, so ``import chainrule`` does not pay for
tools a program never uses, and ``cr.utils.data`` works without an explicit import.
"""

import importlib


def __getattr__(name):
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
