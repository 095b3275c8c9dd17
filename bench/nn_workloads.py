"""Benchmarks of the eager ``nn`` / ``optim`` / ``utils.data`` stack (issue 3, "Speed"), in the style of workloads.py.

Each model is built once in chainrule from a fixed seed and its state_dict is copied into an identical
PyTorch module, so both frameworks (and the hand-written numpy floor, which starts from the same
arrays) compute the same float32 step on the same batch.

- ``mlp_mnist_step``: MLP 784-512-512-10 (ReLU), batch 256, CrossEntropyLoss, SGD(lr=0.01,
  momentum=0.9): zero_grad, forward, loss, backward, step. Target <= 0.85x PyTorch (issue 13).
- ``lenet_step``: ``chainrule.models.LeNet5(input_size=28)`` (conv 1->6 k5 pad 2, relu, maxpool 2,
  conv 6->16 k5, relu, maxpool 2, flatten, 400-120-84-10 with relu), batch 64 of 1x28x28,
  CrossEntropyLoss, Adam(lr=1e-3), full step. Target <= 1.0x PyTorch (issue 13).
- ``conv_fwd_bwd``: Conv2d 64->64, k3, pad 1 on (32, 64, 32, 32), forward + backward of
  ``output.sum()`` with the input requiring grad. Target <= 1.2x PyTorch (issue 13).
- ``mnist_epoch_workers``: one epoch of DataLoader(real MNIST, normalised per sample, batch_size=64,
  shuffle=True) iteration with no model, ``num_workers=2`` against ``num_workers=0`` (chainrule
  only; ``num_workers=2, persistent_workers=True`` is shown too). Target: 2 workers not slower than 0.

``python -m bench.nn_workloads check`` verifies that chainrule, PyTorch and the numpy floors agree
after a few steps (so the timings compare the same computation); ``python -m bench.nn_workloads
[NAME ...]`` runs the workloads alone.
"""

import os
import sys
from pathlib import Path

import numpy as np

from .harness import Workload, report, run

# Real MNIST lies in ../shared/data/mnist next to the repository; CHAINRULE_MNIST_DIR overrides it.
MNIST_DIR = os.environ.get("CHAINRULE_MNIST_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _chainrule():
    import chainrule

    return chainrule


def _to_torch(torch, cr_module, torch_module):
    """Copy ``cr_module``'s parameters into ``torch_module`` (same state_dict keys and shapes)."""
    state = {k: torch.from_numpy(np.array(v.numpy(), dtype=np.float32)) for k, v in cr_module.state_dict().items()}
    torch_module.load_state_dict(state)
    return torch_module


def _batch(shape, classes, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, classes, shape[0]).astype(np.int64)


def _train_step(framework, build_cr, build_torch, make_opt, x, y):
    """The full step in ``framework``; ``step.params()`` returns the parameters as numpy arrays
    (state_dict order), for ``check``."""
    cr = _chainrule()
    cr.manual_seed(0)
    cr_model = build_cr(cr)
    if framework == "torch":
        torch = _torch()
        model = _to_torch(torch, cr_model, build_torch(torch))
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        lib = torch
    else:
        model, xt, yt, lib = cr_model, cr.from_numpy(x), cr.from_numpy(y), cr
    loss_fn = lib.nn.CrossEntropyLoss()
    opt = make_opt(lib, model.parameters())

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()

    step.params = lambda: [np.array(v.detach().numpy()) for v in model.state_dict().values()]
    step.initial = [np.array(v.numpy(), dtype=np.float32) for v in cr_model.state_dict().values()]
    return step


# --- mlp_mnist_step ---------------------------------------------------------------------------------------
MLP_SIZES, MLP_BATCH, MLP_LR, MLP_MOMENTUM = (784, 512, 512, 10), 256, 0.01, 0.9


def _mlp_of(sizes):
    """A builder ``lib -> Sequential`` of Linear layers of ``sizes`` with ReLUs between them."""
    def build(lib):
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [lib.nn.Linear(fan_in, fan_out), lib.nn.ReLU()]
        return lib.nn.Sequential(*layers[:-1])

    return build


_mlp = _mlp_of(MLP_SIZES)


def make_mlp_mnist_step(framework):
    """784-512-512-10 MLP, batch 256, CrossEntropyLoss, SGD(lr=0.01, momentum=0.9), full step."""
    x, y = _batch((MLP_BATCH, MLP_SIZES[0]), MLP_SIZES[-1])
    return _train_step(framework, _mlp, _mlp,
                       lambda lib, params: lib.optim.SGD(params, lr=MLP_LR, momentum=MLP_MOMENTUM), x, y)


def make_mlp_small_eager_step(framework):
    """64-32-10 MLP, batch 32, CrossEntropyLoss, SGD(lr=0.01), full eager step: overhead-bound (the
    eager twin of static_workloads' compiled ``mlp_small_step``)."""
    x, y = _batch((32, 64), 10)
    build = _mlp_of((64, 32, 10))
    return _train_step(framework, build, build, lambda lib, params: lib.optim.SGD(params, lr=0.01), x, y)


def _cross_entropy_grad(logits, labels):
    """d mean(cross_entropy(logits, labels)) / d logits."""
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    e /= e.sum(1, keepdims=True)
    e[np.arange(len(labels)), labels] -= 1
    e /= len(labels)
    return e


def make_mlp_mnist_step_numpy(_framework=None):
    """The same step as hand-written numpy (weights (out, in) as in PyTorch): the floor."""
    params = make_mlp_mnist_step("chainrule").initial  # w0, b0, w1, b1, w2, b2
    x, y = _batch((MLP_BATCH, MLP_SIZES[0]), MLP_SIZES[-1])
    bufs = [None] * len(params)
    n = len(params) // 2

    def step():
        acts = [x]
        h = x
        for k in range(n):
            h = h @ params[2 * k].T
            h += params[2 * k + 1]
            if k + 1 < n:
                np.maximum(h, 0, out=h)
            acts.append(h)
        g = _cross_entropy_grad(h, y)
        for k in reversed(range(n)):
            grads = ((2 * k, g.T @ acts[k]), (2 * k + 1, g.sum(0)))
            if k:
                g = g @ params[2 * k]
                g *= acts[k] > 0
            for j, grad in grads:
                if bufs[j] is None:
                    bufs[j] = grad
                else:
                    bufs[j] *= MLP_MOMENTUM
                    bufs[j] += grad
                params[j] -= MLP_LR * bufs[j]

    step.params = lambda: params
    return step


# --- lenet_step ---------------------------------------------------------------------------------------------
LENET_BATCH, LENET_LR = 64, 1e-3


def _lenet_cr(cr):
    import chainrule.models

    return chainrule.models.LeNet5(input_size=28)


def _lenet_torch(torch):
    nn = torch.nn

    class LeNet5(nn.Module):  # the same module tree as chainrule.models.LeNet5, so state_dict keys match
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                                            nn.ReLU(), nn.Linear(84, 10))

        def forward(self, x):
            return self.classifier(self.features(x))

    return LeNet5()


def make_lenet_step(framework):
    """LeNet-5 (28x28 input, padded by the first conv), batch 64, CrossEntropyLoss, Adam(lr=1e-3), full step."""
    x, y = _batch((LENET_BATCH, 1, 28, 28), 10)
    return _train_step(framework, _lenet_cr, _lenet_torch, lambda lib, params: lib.optim.Adam(params, lr=LENET_LR),
                       x, y)


# The floors keep activations channel-major, (C, N, H, W): then im2col is one contiguous-row copy per
# kernel tap, the convolution is one GEMM (Co, C*kh*kw) @ (C*kh*kw, N*Ho*Wo) whose result is already
# the next layer's (Co, N, Ho, Wo), and col2im is one slice add per tap.
def _pad(x, pad):
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x


def _im2col(xp, kh, kw):
    """Padded (C, N, H, W) ``xp`` -> columns (C*kh*kw, N*Ho*Wo), stride 1."""
    c, n, h, w = xp.shape
    ho, wo = h - kh + 1, w - kw + 1
    cols = np.empty((c, kh, kw, n, ho, wo), xp.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, :, i:i + ho, j:j + wo]
    return cols.reshape(c * kh * kw, n * ho * wo)


def _col2im(gcols, shape, kh, kw):
    """Adjoint of ``_im2col``: (C*kh*kw, N*Ho*Wo) -> padded (C, N, H, W) ``shape``."""
    c, n, h, w = shape
    ho, wo = h - kh + 1, w - kw + 1
    g = gcols.reshape(c, kh, kw, n, ho, wo)
    out = np.zeros(shape, gcols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + ho, j:j + wo] += g[:, i, j]
    return out


def _conv_forward(x, w, b, pad):
    """(C, N, H, W) ``x``, weight (Co, C, kh, kw) -> (Co, N, Ho, Wo), and what backward needs."""
    co, _, kh, kw = w.shape
    xp = _pad(x, pad)
    cols = _im2col(xp, kh, kw)
    out = w.reshape(co, -1) @ cols
    if b is not None:
        out += b[:, None]
    return out.reshape(co, x.shape[1], xp.shape[2] - kh + 1, xp.shape[3] - kw + 1), (cols, xp.shape)


def _conv_backward(gout, w, saved, pad, need_input=True):
    cols, padded_shape = saved
    co, _, kh, kw = w.shape
    g = gout.reshape(co, -1)  # Co, N*Ho*Wo
    gw = (g @ cols.T).reshape(w.shape)
    gb = g.sum(1)
    if not need_input:
        return None, gw, gb
    gx = _col2im(w.reshape(co, -1).T @ g, padded_shape, kh, kw)
    if pad:
        gx = gx[:, :, pad:-pad, pad:-pad]
    return gx, gw, gb


def _pool_forward(x):
    """2x2 max pool, stride 2, over the last two dims."""
    return np.maximum(np.maximum(x[:, :, ::2, ::2], x[:, :, ::2, 1::2]),
                      np.maximum(x[:, :, 1::2, ::2], x[:, :, 1::2, 1::2]))


def _pool_backward(gout, x, out):
    """2x2/2 max-pool backward through a mask, one strided pass per window position. Ties only happen
    here between zeros after a ReLU, whose gradient the ReLU backward zeroes anyway, so the result
    equals PyTorch's first-max routing."""
    gx = np.empty_like(x)
    for i in range(2):
        for j in range(2):
            np.multiply(gout, x[:, :, i::2, j::2] == out, out=gx[:, :, i::2, j::2])
    return gx


def make_lenet_step_numpy(_framework=None):
    """LeNet-5 forward, backward and Adam update as hand-written numpy (im2col convolutions): the floor."""
    params = make_lenet_step("chainrule").initial  # c1w c1b c2w c2b f1w f1b f2w f2b f3w f3b
    x, y = _batch((LENET_BATCH, 1, 28, 28), 10)
    xc = np.ascontiguousarray(x.transpose(1, 0, 2, 3))  # the floor works channel-major
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    t = [0]

    def step():
        c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b = params
        a1, s1 = _conv_forward(xc, c1w, c1b, 2)
        r1 = np.maximum(a1, 0)
        p1 = _pool_forward(r1)
        a2, s2 = _conv_forward(p1, c2w, c2b, 0)
        r2 = np.maximum(a2, 0)
        p2 = _pool_forward(r2)
        h0 = p2.transpose(1, 0, 2, 3).reshape(len(x), -1)  # PyTorch's flatten order: (c, h, w)
        h1 = np.maximum(h0 @ f1w.T + f1b, 0)
        h2 = np.maximum(h1 @ f2w.T + f2b, 0)
        logits = h2 @ f3w.T + f3b
        g = _cross_entropy_grad(logits, y)
        gf3w, gf3b = g.T @ h2, g.sum(0)
        g = (g @ f3w) * (h2 > 0)
        gf2w, gf2b = g.T @ h1, g.sum(0)
        g = (g @ f2w) * (h1 > 0)
        gf1w, gf1b = g.T @ h0, g.sum(0)
        g = (g @ f1w).reshape(p2.shape[1], p2.shape[0], *p2.shape[2:]).transpose(1, 0, 2, 3)
        g = _pool_backward(g, r2, p2) * (a2 > 0)
        g, gc2w, gc2b = _conv_backward(g, c2w, s2, 0)
        g = _pool_backward(g, r1, p1) * (a1 > 0)
        _, gc1w, gc1b = _conv_backward(g, c1w, s1, 2, need_input=False)
        t[0] += 1
        bc1, bc2 = 1 - beta1 ** t[0], 1 - beta2 ** t[0]
        for p, grad, mi, vi in zip(params, (gc1w, gc1b, gc2w, gc2b, gf1w, gf1b, gf2w, gf2b, gf3w, gf3b), m, v):
            mi *= beta1
            mi += (1 - beta1) * grad
            vi *= beta2
            vi += (1 - beta2) * grad * grad
            denom = np.sqrt(vi) / np.sqrt(bc2) + eps
            p -= (LENET_LR / bc1) * mi / denom

    step.params = lambda: params
    return step


# --- conv_fwd_bwd -------------------------------------------------------------------------------------------
CONV_SHAPE, CONV_OUT = (32, 64, 32, 32), 64


def make_conv_fwd_bwd(framework):
    """Conv2d 64->64, k3, pad 1; input (32, 64, 32, 32) requiring grad; forward, then backward of output.sum()."""
    cr = _chainrule()
    cr.manual_seed(0)
    conv = cr.nn.Conv2d(CONV_SHAPE[1], CONV_OUT, 3, padding=1)
    x = np.random.default_rng(1).standard_normal(CONV_SHAPE).astype(np.float32)
    if framework == "torch":
        torch = _torch()
        conv = _to_torch(torch, conv, torch.nn.Conv2d(CONV_SHAPE[1], CONV_OUT, 3, padding=1))
        xt = torch.from_numpy(x).requires_grad_(True)
    else:
        xt = cr.from_numpy(x).requires_grad_(True)

    def step():
        xt.grad = None
        conv.zero_grad()
        conv(xt).sum().backward()

    step.grads = lambda: [np.array(xt.grad.numpy()), np.array(conv.weight.grad.numpy()),
                          np.array(conv.bias.grad.numpy())]
    return step


def make_conv_fwd_bwd_numpy(_framework=None):
    """The same forward and backward as im2col + GEMM + col2im in numpy (channel-major): the floor."""
    cr = _chainrule()
    cr.manual_seed(0)
    conv = cr.nn.Conv2d(CONV_SHAPE[1], CONV_OUT, 3, padding=1)
    w, b = np.array(conv.weight.detach().numpy()), np.array(conv.bias.detach().numpy())
    x = np.random.default_rng(1).standard_normal(CONV_SHAPE).astype(np.float32)
    grads = []

    def step():
        out, saved = _conv_forward(x.transpose(1, 0, 2, 3), w, b, 1)  # (Co, N, H, W); NCHW is its transpose
        out.transpose(1, 0, 2, 3).sum()
        gx, gw, gb = _conv_backward(np.ones_like(out), w, saved, 1)
        grads[:] = gx.transpose(1, 0, 2, 3), gw, gb

    step.grads = lambda: grads
    return step


# --- mnist_epoch_workers --------------------------------------------------------------------------------------
_MNIST = {}


def _normalise(image):
    return (image - 0.1307) / 0.3081


def _mnist_dataset():
    """MNIST train read sample by sample with a per-sample transform: what worker processes are for. (A
    ``TensorDataset`` gathers a whole batch in one read, which in-process loading does faster than any
    worker pipeline can ship batches between processes, in PyTorch too.)"""
    if "ds" not in _MNIST:
        from chainrule.datasets import MNIST

        _MNIST["ds"] = MNIST(MNIST_DIR, transform=_normalise)
    return _MNIST["ds"]


def make_mnist_epoch(framework):
    """One epoch of DataLoader(MNIST train with a per-sample transform, batch_size=64, shuffle=True), iteration only.
    ``framework`` names the loader: 'num_workers=0', 'num_workers=2', 'num_workers=2,persistent'."""
    from chainrule.utils.data import DataLoader

    workers = int(framework.split("=")[1].split(",")[0])
    kwargs = {"persistent_workers": True} if framework.endswith("persistent") else {}
    loader = DataLoader(_mnist_dataset(), batch_size=64, shuffle=True, num_workers=workers, **kwargs)

    def step():
        for _ in loader:
            pass

    step.loader = loader  # keeps persistent workers alive as long as the step
    return step


NN_WORKLOADS = {
    "mlp_mnist_step": Workload("mlp_mnist_step", make_mlp_mnist_step, rounds=9, steps_per_round=15, target=0.85,
                               floor=make_mlp_mnist_step_numpy),
    "mlp_small_eager_step": Workload("mlp_small_eager_step", make_mlp_small_eager_step, rounds=9,
                                     steps_per_round=200, target=1.0),
    "lenet_step": Workload("lenet_step", make_lenet_step, rounds=9, steps_per_round=20, target=1.0,
                           floor=make_lenet_step_numpy),
    "conv_fwd_bwd": Workload("conv_fwd_bwd", make_conv_fwd_bwd, rounds=7, steps_per_round=3, target=1.2,
                             floor=make_conv_fwd_bwd_numpy),
    "mnist_epoch_workers": Workload("mnist_epoch_workers", make_mnist_epoch, unit="epoch", rounds=5,
                                    steps_per_round=1,
                                    frameworks=("num_workers=2", "num_workers=0", "num_workers=2,persistent"),
                                    baseline="num_workers=0", target=1.0,
                                    note="ratio is num_workers=2 / num_workers=0 (chainrule only, no model)"),
}


# --- check: the frameworks compute the same thing -------------------------------------------------------------
def _max_rel(a, b):
    return max(float(np.abs(x - y).max() / (np.abs(y).max() + 1e-12)) for x, y in zip(a, b))


def check(steps=3):
    """Run ``steps`` steps of every model workload in chainrule, PyTorch and numpy; print the largest
    relative difference of the parameters (or gradients) from PyTorch's. Returns True if all agree."""
    ok = True
    for name, tol in (("mlp_mnist_step", 1e-4), ("lenet_step", 1e-3)):
        w = NN_WORKLOADS[name]
        runs = {"chainrule": w.make("chainrule"), "torch": w.make("torch"), "numpy": w.floor(None)}
        for s in runs.values():
            for _ in range(steps):
                s()
        ref = runs["torch"].params()
        moved = _max_rel(ref, runs["torch"].initial)
        for fw in ("chainrule", "numpy"):
            d = _max_rel(runs[fw].params(), ref)
            ok &= d < tol
            print(f"{name:<16} {fw:<9} max rel diff from torch after {steps} steps: {d:.2e} "
                  f"(parameters moved {moved:.2e})")
    runs = {"chainrule": make_conv_fwd_bwd("chainrule"), "torch": make_conv_fwd_bwd("torch"),
            "numpy": make_conv_fwd_bwd_numpy()}
    for s in runs.values():
        s()
    ref = runs["torch"].grads()
    for fw in ("chainrule", "numpy"):
        d = _max_rel(runs[fw].grads(), ref)
        ok &= d < 1e-4
        print(f"conv_fwd_bwd     {fw:<9} max rel diff of (input, weight, bias) grads from torch: {d:.2e}")
    return ok


def main(argv):
    if argv[:1] == ["check"]:
        return 0 if check() else 1
    for name in argv or list(NN_WORKLOADS):
        w = NN_WORKLOADS[name]
        print(report(w, run(w)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
