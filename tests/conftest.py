"""Shared pytest setup for the chainrule test suite.

* Makes ``src/`` importable when chainrule is not installed.
* Pins torch (the oracle) to one thread and seeds numpy / torch / chainrule before every test.
* Restores grad mode after every test so that one failing test cannot poison the next ones.

Oracle self-test: ``CHAINRULE_TEST_ORACLE=torch pytest tests/...`` makes ``import chainrule`` return
torch itself. Every test written against the PyTorch contract must then pass, which checks the
tests (not chainrule). Tests marked ``beyond_torch`` assert chainrule-specific requirements that
torch does not meet (our own exception classes, richer gradcheck reports, weak-referenceable graph
nodes); only they are deselected in that mode.
"""

import os
import random
import sys
import warnings

import numpy as np
import pytest

_TESTS = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.join(os.path.dirname(_TESTS), "src")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

ORACLE_MODE = os.environ.get("CHAINRULE_TEST_ORACLE", "") == "torch"

if ORACLE_MODE:
    import torch as _torch

    sys.modules["chainrule"] = _torch
else:
    try:
        import chainrule  # noqa: F401
    except ImportError:
        if os.path.isdir(_SRC) and _SRC not in sys.path:
            sys.path.insert(0, _SRC)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a test dependency
    torch = None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "beyond_torch: asserts a chainrule requirement that PyTorch itself does not meet"
    )
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU with CuPy (make test-gpu); skipped without one")


def pytest_collection_modifyitems(config, items):
    if not ORACLE_MODE:
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("beyond_torch") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _seed_and_restore_grad_mode():
    np.random.seed(0)
    random.seed(0)
    if torch is not None:
        torch.manual_seed(0)
    cr = sys.modules.get("chainrule")
    if cr is not None and hasattr(cr, "manual_seed"):
        cr.manual_seed(0)
    yield
    cr = sys.modules.get("chainrule")
    if cr is not None and hasattr(cr, "set_grad_enabled") and hasattr(cr, "is_grad_enabled"):
        if not cr.is_grad_enabled():
            cr.set_grad_enabled(True)
    if torch is not None and not torch.is_grad_enabled():
        torch.set_grad_enabled(True)


@pytest.fixture(autouse=True)
def _quiet_nonleaf_grad_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*\\.grad attribute of a Tensor that is not a leaf.*")
        yield
