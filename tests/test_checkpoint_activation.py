"""Activation checkpointing (chainrule.utils.checkpoint): same gradients, recomputation, RNG replay."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.utils.checkpoint import checkpoint, checkpoint_sequential

pytestmark = pytest.mark.beyond_torch


def _weights(n, width=8, seed=0):
    rng = np.random.default_rng(seed)
    return [cr.tensor((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), requires_grad=True)
            for _ in range(n)]


def _segment(ws, lo, hi, calls=None):
    def run(h):
        if calls is not None:
            calls.append(lo)
        for w in ws[lo:hi]:
            h = (h @ w).tanh()
        return h

    return run


@pytest.mark.parametrize("use_reentrant", [True, False])
@pytest.mark.parametrize("input_requires_grad", [True, False])
def test_checkpoint_gradients_equal_plain_backward(use_reentrant, input_requires_grad):
    ws = _weights(6)
    xa = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    x = cr.tensor(xa, requires_grad=input_requires_grad)
    _segment(ws, 0, 6)(x).sum().backward()
    ref = [w.grad.numpy().copy() for w in ws]
    ref_x = x.grad.numpy().copy() if input_requires_grad else None
    for w in ws:
        w.grad = None
    x = cr.tensor(xa, requires_grad=input_requires_grad)
    calls = []
    h = x
    for lo in (0, 2, 4):
        h = checkpoint(_segment(ws, lo, lo + 2, calls), h, use_reentrant=use_reentrant)
    assert calls == [0, 2, 4]
    h.sum().backward()
    assert calls == [0, 2, 4, 4, 2, 0]  # each segment recomputed once, in backward order
    for w, r in zip(ws, ref):
        np.testing.assert_allclose(w.grad.numpy(), r, rtol=1e-6, atol=1e-7)
    if input_requires_grad:
        np.testing.assert_allclose(x.grad.numpy(), ref_x, rtol=1e-6, atol=1e-7)


def test_checkpoint_forward_keeps_no_graph_inside_segment():
    ws = _weights(3)
    x = cr.tensor(np.ones((2, 8), np.float32), requires_grad=True)
    out = checkpoint(_segment(ws, 0, 3), x, use_reentrant=True)
    assert out.requires_grad and out.grad_fn is not None
    # the only node is the checkpoint's: its inputs are x (and the function), not the tanh/matmul chain
    names = {fn.name() for fn, _ in out.grad_fn.next_functions if fn is not None}
    assert names == {"AccumulateGrad"}


def test_checkpoint_replays_rng_state_for_dropout():
    w = _weights(1)[0]
    x = cr.tensor(np.ones((4, 8), np.float32), requires_grad=True)
    masks = []

    def noisy(h):
        mask = cr.rand(h.shape) > 0.5
        masks.append(mask.numpy().copy())
        return (h @ w) * mask

    out = checkpoint(noisy, x, use_reentrant=True)
    out.sum().backward()
    assert len(masks) == 2 and np.array_equal(masks[0], masks[1])
    expected = (masks[0].astype(np.float32)).sum(0)  # d/dx sum((x@w)*m) = m @ w.T
    np.testing.assert_allclose(x.grad.numpy(), masks[0].astype(np.float32) @ w.detach().numpy().T, rtol=1e-6)
    assert expected.shape == (8,)


def test_checkpoint_sequential_matches():
    nn = pytest.importorskip("chainrule.nn")
    cr.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(6, 6), nn.Tanh())])
    x = cr.tensor(np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32))
    model(x).sum().backward()
    ref = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    checkpoint_sequential(model, 2, x, use_reentrant=True).sum().backward()
    for p, r in zip(model.parameters(), ref):
        np.testing.assert_allclose(p.grad.numpy(), r, rtol=1e-6, atol=1e-7)
