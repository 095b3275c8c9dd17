"""GPU workloads (``make bench-gpu`` = ``python -m bench gpu``; needs a CUDA GPU, CuPy and CUDA PyTorch).

The same steps as the CPU workloads, with model and data on ``cuda``; every step ends with a device
synchronize, so a step's time is its whole GPU work. PyTorch runs with TF32 off (CuPy's matmuls are
plain float32 too). The "numpy" column of these rows is a hand-written CuPy step, the floor for one
kernel per op. Targets are the issue's: eager ones, and for the ``_compiled`` rows (the same step as
one ``chainrule.compile`` program: fused elementwise kernels; PyTorch runs eager) the compiled ones.
"""

import functools

import numpy as np

from .harness import Workload
from .nn_workloads import _batch, _chainrule, _lenet_cr, _lenet_torch, _mlp, _to_torch, _torch

BIG_MLP, BIG_BATCH = (4096, 4096, 4096, 10), 4096


def _lib(framework):
    if framework == "torch":
        torch = _torch()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch
    return _chainrule()


def _synced(lib, step):
    def timed():
        step()
        lib.cuda.synchronize()

    return timed


def _train_step(framework, build, x, y, make_opt, build_torch=None, compiled=False):
    """``build``'s model trained one step per call on (x, y), on the GPU, weights equal in both frameworks;
    ``compiled``: chainrule's step is one compiled program (PyTorch's stays eager)."""
    cr = _chainrule()
    cr.manual_seed(0)
    model = build(cr)
    lib = _lib(framework)
    if framework == "torch":
        model = _to_torch(lib, model, (build_torch or build)(lib))
    model.to("cuda")
    xt, yt = lib.from_numpy(x).to("cuda"), lib.from_numpy(y).to("cuda")
    opt = make_opt(lib, model.parameters())
    loss_fn = lib.nn.CrossEntropyLoss()

    def step(xt, yt):
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()

    run = cr.compile(step) if compiled and framework != "torch" else step
    return _synced(lib, lambda: run(xt, yt))


def make_gpu_mlp_mnist_step(framework, compiled=False):
    """784-512-512-10 MLP, batch 256, SGD momentum 0.9, full step on the GPU."""
    x, y = _batch((256, 784), 10)
    return _train_step(framework, _mlp, x, y, lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9),
                       compiled=compiled)


def make_gpu_lenet_step(framework, compiled=False):
    x, y = _batch((64, 1, 28, 28), 10)
    return _train_step(framework, _lenet_cr, x, y, lambda lib, p: lib.optim.Adam(p, lr=1e-3), _lenet_torch,
                       compiled=compiled)


def _big_mlp(lib):
    layers = []
    for fan_in, fan_out in zip(BIG_MLP[:-1], BIG_MLP[1:]):
        layers += [lib.nn.Linear(fan_in, fan_out), lib.nn.ReLU()]
    return lib.nn.Sequential(*layers[:-1])


def make_gpu_big_mlp_step(framework):
    x, y = _batch((BIG_BATCH, BIG_MLP[0]), BIG_MLP[-1])
    return _train_step(framework, _big_mlp, x, y, lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9))


def make_gpu_conv_fwd_bwd(framework):
    """Conv2d 64->64 k3 pad 1 on (32, 64, 32, 32) requiring grad: forward, backward of the sum."""
    cr = _chainrule()
    cr.manual_seed(0)
    conv = cr.nn.Conv2d(64, 64, 3, padding=1)
    lib = _lib(framework)
    if framework == "torch":
        conv = _to_torch(lib, conv, lib.nn.Conv2d(64, 64, 3, padding=1))
    conv.to("cuda")
    x = lib.from_numpy(np.random.default_rng(1).standard_normal((32, 64, 32, 32)).astype(np.float32))
    x = x.to("cuda").requires_grad_(True)

    def step():
        x.grad = None
        conv.zero_grad()
        conv(x).sum().backward()

    return _synced(lib, step)


def make_gpu_op_overhead(framework):
    """op_overhead's ((x @ w + b).relu() * 2).sum().backward() on 8x8 GPU tensors: per-op overhead."""
    lib = _lib(framework)
    rng = np.random.default_rng(0)
    x, w = (lib.tensor(rng.standard_normal((8, 8)).astype(np.float32), device="cuda", requires_grad=True)
            for _ in range(2))
    b = lib.tensor(rng.standard_normal(8).astype(np.float32), device="cuda", requires_grad=True)

    def step():
        ((x @ w + b).relu() * 2).sum().backward()

    return _synced(lib, step)


def make_gpu_mlp_floor(_framework=None):
    """The MLP step written directly in CuPy: matmuls, ReLU masks, softmax gradient, momentum update."""
    import cupy as xp

    params = [xp.asarray(p) for p in _mlp_weights()]
    x, y = (xp.asarray(a) for a in _batch((256, 784), 10))
    rows = xp.arange(256)
    bufs = [xp.zeros_like(p) for p in params]

    def step():
        acts, h = [x], x
        for k in range(3):
            h = h @ params[2 * k].T + params[2 * k + 1]
            if k < 2:
                h = xp.maximum(h, 0)
            acts.append(h)
        e = xp.exp(h - h.max(1, keepdims=True))
        e /= e.sum(1, keepdims=True)
        e[rows, y] -= 1
        g = e / 256
        for k in reversed(range(3)):
            grads = (g.T @ acts[k], g.sum(0))
            if k:
                g = (g @ params[2 * k]) * (acts[k] > 0)
            for j, grad in zip((2 * k, 2 * k + 1), grads):
                bufs[j] *= 0.9
                bufs[j] += grad
                params[j] -= 0.01 * bufs[j]
        xp.cuda.Device().synchronize()

    return step


def _mlp_weights():
    cr = _chainrule()
    cr.manual_seed(0)
    return [v.numpy() for v in _mlp(cr).state_dict().values()]


def make_gpu_op_overhead_floor(_framework=None):
    """op_overhead's forward and backward as bare CuPy calls (about one kernel each)."""
    import cupy as xp

    rng = np.random.default_rng(0)
    x, w = (xp.asarray(rng.standard_normal((8, 8)).astype(np.float32)) for _ in range(2))
    b = xp.asarray(rng.standard_normal(8).astype(np.float32))

    def step():
        h = x @ w + b
        r = xp.maximum(h, 0)
        m = r * 2
        m.sum()
        g_h = xp.ones_like(m) * 2 * (r > 0)
        g_h.sum(axis=0)
        g_h @ w.T
        x.T @ g_h
        xp.cuda.Device().synchronize()

    return step


GPU_WORKLOADS = {
    "gpu_mlp_mnist_step": Workload("gpu_mlp_mnist_step", make_gpu_mlp_mnist_step, rounds=5, steps_per_round=40,
                                   target=1.6, floor=make_gpu_mlp_floor, note="issue 10: PyTorch 1.20 ms on an H200"),
    "gpu_lenet_step": Workload("gpu_lenet_step", make_gpu_lenet_step, rounds=5, steps_per_round=40, target=2.0),
    "gpu_mlp_mnist_step_compiled": Workload(
        "gpu_mlp_mnist_step_compiled", functools.partial(make_gpu_mlp_mnist_step, compiled=True), rounds=5,
        steps_per_round=40, target=1.0, floor=make_gpu_mlp_floor, note="compiled step vs PyTorch eager"),
    "gpu_lenet_step_compiled": Workload(
        "gpu_lenet_step_compiled", functools.partial(make_gpu_lenet_step, compiled=True), rounds=5,
        steps_per_round=40, target=1.2, note="compiled step vs PyTorch eager"),
    "gpu_conv_fwd_bwd": Workload("gpu_conv_fwd_bwd", make_gpu_conv_fwd_bwd, rounds=5, steps_per_round=40,
                                 target=1.5),
    "gpu_big_mlp_step": Workload("gpu_big_mlp_step", make_gpu_big_mlp_step, rounds=5, steps_per_round=8, target=1.1,
                                 note="4096-4096-4096-10, batch 4096, fp32 (TF32 off)"),
    "gpu_op_overhead": Workload("gpu_op_overhead", make_gpu_op_overhead, unit_count=5, unit="op", rounds=5,
                                steps_per_round=200, target=1.0, floor=make_gpu_op_overhead_floor),
}
