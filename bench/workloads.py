"""The benchmark workloads. Each ``make_*`` builds the same computation for a given framework."""

import numpy as np

from .harness import Workload
from .nn_workloads import NN_WORKLOADS
from .static_workloads import NUMPY_FLOORS as _STATIC_FLOORS
from .static_workloads import STATIC_WORKLOADS


def _frameworks(name):
    if name == "torch":
        import torch

        torch.set_num_threads(1)
        return torch
    import chainrule

    return chainrule


def make_op_overhead(framework):
    """x, w (8, 8), b (8,): ((x @ w + b).relu() * 2).sum().backward() -- overhead-bound tiny ops."""
    lib = _frameworks(framework)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)
    w = lib.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)
    b = lib.tensor(rng.standard_normal(8).astype(np.float32), requires_grad=True)

    def step():
        ((x @ w + b).relu() * 2).sum().backward()

    return step


def make_op_overhead_numpy(_framework):
    """The same forward and backward as bare numpy calls: the floor with no framework at all."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 8)).astype(np.float32)
    w = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)

    def step():
        h = x @ w + b
        r = np.maximum(h, 0)
        m = r * 2
        m.sum()
        g_m = np.ones_like(m)
        g_r = g_m * 2
        g_h = g_r * (r > 0)
        g_h.sum(axis=0)
        g_h @ w.T
        x.T @ g_h

    return step


WORKLOADS = {
    "op_overhead": Workload("op_overhead", make_op_overhead, unit_count=5, unit="op", rounds=9,
                            steps_per_round=2000 // 9),
}
NUMPY_FLOORS = {"op_overhead": make_op_overhead_numpy}


WORKLOADS.update(STATIC_WORKLOADS)
NUMPY_FLOORS.update(_STATIC_FLOORS)
WORKLOADS.update(NN_WORKLOADS)  # eager nn/optim/data workloads (issue 3); their numpy floors are Workload.floor
