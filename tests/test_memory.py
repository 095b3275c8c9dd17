"""Memory: graphs are freed by reference counting alone (no cycles), RSS stays flat over many
iterations, and very deep graphs backpropagate without recursion."""

import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule import _blas
from helpers import to_numpy

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _step(x, w, b):
    h = (x @ w + b).tanh()
    loss = (h * h).mean() + (x.exp() * 0.01).sum()
    loss.backward()
    return loss


def test_rss_flat_over_10000_iterations():
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((4, 3)), dtype=cr.float32, requires_grad=True)
    w = cr.tensor(rng.standard_normal((3, 5)), dtype=cr.float32, requires_grad=True)
    b = cr.tensor(rng.standard_normal(5), dtype=cr.float32, requires_grad=True)
    for _ in range(1000):  # warm up allocator pools and caches
        _step(x, w, b)
        x.grad = w.grad = b.grad = None
    gc.collect()
    before = rss_bytes()
    for _ in range(9000):
        _step(x, w, b)
        x.grad = w.grad = b.grad = None
    gc.collect()
    grown = rss_bytes() - before
    # a leaked graph per iteration (a dozen tensors and nodes) would be > 10 MB over 9000 iterations
    assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 9000 iterations"


_CACHE = {}


def _square_function():
    # defined once: a class object is itself a reference cycle, so it must not be made per iteration
    if "Sq" not in _CACHE:

        class Sq(cr.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                ctx.save_for_backward(a)
                return a * a

            @staticmethod
            def backward(ctx, g):
                (a,) = ctx.saved_tensors
                return 2 * a * g

        _CACHE["Sq"] = Sq
    return _CACHE["Sq"]


def _one_iteration(kind, refs):
    x = cr.tensor([0.5, -1.0, 2.0], requires_grad=True)
    w = cr.tensor([1.5, 0.5, -0.5], requires_grad=True)
    h = (x * w).sin()
    k = h.exp() + x
    refs.append(weakref.ref(h))
    refs.append(weakref.ref(k))
    if kind == "backward":
        (k * k).sum().backward()
    elif kind == "retain_graph":
        loss = (k * k).sum()
        loss.backward(retain_graph=True)
    elif kind == "create_graph":
        (g,) = cr.autograd.grad((k * k).sum(), x, create_graph=True)
        (g * g).sum().backward()
    elif kind == "hook":
        h.register_hook(lambda g: g * 2)
        x.register_hook(lambda g: g + 1)
        (k * k).sum().backward()
    elif kind == "retain_grad":
        h.retain_grad()
        (k * k).sum().backward()
    elif kind == "no_backward":
        (k * k).sum()
    elif kind == "custom_function":
        _square_function().apply(k).sum().backward()
    return float(to_numpy(x.grad).sum()) if x.grad is not None else 0.0


KINDS = ["backward", "retain_graph", "create_graph", "hook", "retain_grad", "no_backward", "custom_function"]


@pytest.mark.parametrize("kind", KINDS)
def test_graphs_freed_without_gc(kind):
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(50):
            refs = []
            _one_iteration(kind, refs)
            dead = [r() is None for r in refs]
            assert all(dead), f"{kind}: intermediate tensors kept alive by a reference cycle"
        found = gc.collect()
    finally:
        if was_enabled:
            gc.enable()
    assert found < 20, f"{kind}: gc found {found} unreachable objects after 50 iterations (cycles)"


@pytest.mark.beyond_torch  # torch's graph nodes cannot be weakly referenced
@pytest.mark.parametrize("kind", ["backward", "retain_graph", "create_graph", "hook", "no_backward"])
def test_grad_fn_freed_without_gc(kind):
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            node_refs = []

            def run(node_refs=node_refs):
                x = cr.tensor([0.5, -1.0], requires_grad=True)
                h = (x * 3).exp()
                node_refs.append(weakref.ref(h.grad_fn))
                node_refs.append(weakref.ref(h.grad_fn.next_functions[0][0]))
                loss = (h * h).sum()
                node_refs.append(weakref.ref(loss.grad_fn))
                if kind == "backward":
                    loss.backward()
                elif kind == "retain_graph":
                    loss.backward(retain_graph=True)
                elif kind == "create_graph":
                    (g,) = cr.autograd.grad(loss, x, create_graph=True)
                    g.sum().backward()
                elif kind == "hook":
                    h.register_hook(lambda g: g * 0.5)
                    loss.backward()

            run()
            alive = [r() is not None for r in node_refs]
            assert not any(alive), f"{kind}: grad_fn nodes alive after the iteration: {alive}"
    finally:
        gc.enable()


def test_leaf_survives_and_grad_is_kept_while_graph_is_freed():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    refs = []
    for _ in range(3):
        y = (x * x).exp()
        refs.append(weakref.ref(y))
        y.sum().backward()
        del y
    assert all(r() is None for r in refs)
    assert x.grad is not None and tuple(x.grad.shape) == (2,)


def test_deep_chain_100k_ops_backward_without_recursion_error():
    x = cr.tensor([1.0, -2.0], dtype=cr.float64, requires_grad=True)
    y = x
    n = 100_000
    for _ in range(n):
        y = y + 1.0
    np.testing.assert_allclose(to_numpy(y), [1.0 + n, -2.0 + n])
    y.sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [1.0, 1.0])
    del y  # freeing a 100k-node graph must not overflow the C stack either


def test_deep_chain_autograd_grad_and_mul():
    x = cr.tensor(1.0, dtype=cr.float64, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    (g,) = cr.autograd.grad(y, x)
    assert g.item() == pytest.approx(1.0001**20_000, rel=1e-9)


def test_blas_warm_up_runs_at_import_and_can_be_switched_off(monkeypatch):
    """The import-time GEMM that pages in OpenBLAS's packing buffer (chainrule/_blas.py) runs unless
    CHAINRULE_BLAS_WARMUP=0; a process started with it off imports and multiplies correctly."""
    monkeypatch.delenv("CHAINRULE_BLAS_WARMUP", raising=False)
    assert _blas.warm_up() is True
    monkeypatch.setenv("CHAINRULE_BLAS_WARMUP", "0")
    assert _blas.warm_up() is False
    code = "import chainrule as cr; print((cr.ones(3, 4) @ cr.ones(4, 2)).sum().item())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CHAINRULE_BLAS_WARMUP": "0"})
    assert out.stdout.strip() == "24.0"
