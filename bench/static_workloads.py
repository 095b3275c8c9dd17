"""Benchmarks of the static graph compiler (``chainrule.static``), in the style of workloads.py.

Register them with::

    from .static_workloads import STATIC_WORKLOADS
    WORKLOADS.update(STATIC_WORKLOADS)

``python -m bench.static_workloads`` runs them directly, plus ``static_branches`` and ``threads`` (the
parallel scheduler: two independent matmul chains, and the compiled LeNet and MLP steps, on one
thread against two) and the memory measurements (activation peak of a 50-layer MLP: eager, compiled,
checkpointed; PyTorch's estimated) that are not timings.
"""

import sys
import time
import tracemalloc

import numpy as np

from . import nn_workloads
from .harness import Workload, report, run, time_step, time_steps


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _chainrule():
    import chainrule
    import chainrule.static  # noqa: F401

    return chainrule


def _init(rng, sizes):
    """Weights (in, out) and biases, float32, PyTorch's default uniform init range."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    return params


def _mlp_step(framework, sizes, batch, lr, momentum):
    rng = np.random.default_rng(0)
    arrays = _init(rng, sizes)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], batch)
    if framework == "torch":
        torch = _torch()
        layers = []
        for k in range(0, len(arrays), 2):
            lin = torch.nn.Linear(arrays[k].shape[0], arrays[k].shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(arrays[k].T.copy()))
                lin.bias.copy_(torch.from_numpy(arrays[k + 1]))
            layers += [lin, torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        xt, yt = torch.from_numpy(x), torch.from_numpy(labels)

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()

        return step
    cr = _chainrule()
    static = cr.static
    params = [cr.tensor(a, requires_grad=True) for a in arrays]
    onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
    with static.Graph():
        xs = static.placeholder((None, sizes[0]), name="x", requires_grad=False)
        ts = static.placeholder((None, sizes[-1]), name="t", requires_grad=False)
        h = xs
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k + 2 < len(params):
                h = h.relu()
        loss = -(h.log_softmax(1) * ts).sum(1).mean()
        grads = static.gradients(loss, params)
        updates = static.sgd_updates(params, grads, lr=lr, momentum=momentum)
    program = static.compile(loss, updates=updates)
    fn = program._fn  # what program.run calls after checking the feed

    def step():
        program.run({"x": x, "t": onehot})

    step.program = program
    step.raw = lambda: fn(x, onehot)
    return step


def _mlp_step_numpy(sizes, batch, lr, momentum):
    """The same step as hand-written numpy: the floor."""
    rng = np.random.default_rng(0)
    p = _init(rng, sizes)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], batch)
    onehot = np.eye(sizes[-1], dtype=np.float32)[labels]
    bufs = [np.zeros_like(a) for a in p]

    def step():
        acts = [x]
        h = x
        n = len(p) // 2
        for k in range(n):
            h = h @ p[2 * k] + p[2 * k + 1]
            if k + 1 < n:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = h - h.max(1, keepdims=True)
        e = np.exp(z)
        s = e.sum(1, keepdims=True)
        g = (e / s - onehot) / batch
        for k in reversed(range(n)):
            a = acts[k]
            gw = a.T @ g
            gb = g.sum(0)
            if k:
                g = g @ p[2 * k].T
                g *= acts[k] > 0
            for j, gr in ((2 * k, gw), (2 * k + 1, gb)):
                bufs[j] *= momentum
                bufs[j] += gr
                p[j] -= lr * bufs[j]

    return step


def make_mlp_small_step(framework):
    """64-32-10 MLP, batch 32, cross-entropy, SGD step (overhead-bound)."""
    return _mlp_step(framework, (64, 32, 10), 32, 0.01, 0.0)


def make_mlp_mnist_step(framework):
    """784-512-512-10 MLP, batch 256, cross-entropy, SGD with momentum 0.9."""
    return _mlp_step(framework, (784, 512, 512, 10), 256, 0.01, 0.9)


def make_static_branches(framework):
    """Two independent 512x512 matmul chains joined at the end: threads=2 ('chainrule') vs threads=1
    (reported as 'torch' slot is replaced by the serial program)."""
    cr = _chainrule()
    static = cr.static
    rng = np.random.default_rng(0)
    w = [cr.tensor(rng.standard_normal((512, 512)).astype(np.float32) / 23) for _ in range(4)]
    with static.Graph():
        a = static.placeholder((512, 512), name="a")
        b = static.placeholder((512, 512), name="b")
        ya = ((a @ w[0]).tanh() @ w[1]).tanh()
        yb = ((b @ w[2]).tanh() @ w[3]).tanh()
        out = ya + yb
    threads = 2 if framework == "chainrule" else 1
    program = static.compile(out, threads=threads)
    feed = {"a": rng.standard_normal((512, 512)).astype(np.float32),
            "b": rng.standard_normal((512, 512)).astype(np.float32)}

    def step():
        program.run(feed)

    return step


def _compiled_or_eager(make_eager, threads=None):
    """``make_eager``'s PyTorch eager step, or its chainrule step compiled whole by ``chainrule.compile``:
    zero_grad, forward, loss, backward and the optimizer update in one program (the batch is captured,
    so it is read as a variable), run on ``threads`` threads. Same weights and batch as the eager workload."""
    def make(framework):
        step = make_eager(framework)
        if framework == "torch":
            return step
        compiled = _chainrule().compile(step, threads=threads)
        compiled.params, compiled.initial = step.params, step.initial
        return compiled

    return make


make_static_lenet_step = _compiled_or_eager(nn_workloads.make_lenet_step)
make_static_mlp_mnist_eager_step = _compiled_or_eager(nn_workloads.make_mlp_mnist_step)


STATIC_WORKLOADS = {
    "mlp_small_step": Workload("mlp_small_step", make_mlp_small_step, rounds=9, steps_per_round=300, target=0.3),
    "static_mlp_mnist_step": Workload("static_mlp_mnist_step", make_mlp_mnist_step, rounds=5, steps_per_round=10,
                                      target=0.85),
    "static_lenet_step": Workload("static_lenet_step", make_static_lenet_step, rounds=7, steps_per_round=15,
                                  target=0.85, floor=nn_workloads.make_lenet_step_numpy),
    "static_mlp_mnist_module_step": Workload("static_mlp_mnist_module_step", make_static_mlp_mnist_eager_step,
                                             rounds=7, steps_per_round=10, target=0.85,
                                             floor=nn_workloads.make_mlp_mnist_step_numpy),
}
NUMPY_FLOORS = {
    "mlp_small_step": lambda _: _mlp_step_numpy((64, 32, 10), 32, 0.01, 0.0),
    "static_mlp_mnist_step": lambda _: _mlp_step_numpy((784, 512, 512, 10), 256, 0.01, 0.9),
}


# --- activation memory ------------------------------------------------------------------------------------
def _deep_mlp(cr, depth, width, seed=0):
    rng = np.random.default_rng(seed)
    ws = [cr.tensor((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), requires_grad=True)
          for _ in range(depth)]
    return ws


def _traced_peak(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, elapsed


def activation_memory(depth=50, width=256, batch=4096, segment=10):
    """Peak bytes above parameters and gradients for forward+backward of a deep tanh MLP."""
    cr = _chainrule()
    from chainrule.utils.checkpoint import checkpoint

    ws = _deep_mlp(cr, depth, width)
    x = cr.tensor(np.random.default_rng(1).standard_normal((batch, width)).astype(np.float32))

    def layers(h, lo, hi):
        for w in ws[lo:hi]:
            h = (h @ w).tanh()
        return h

    def eager():
        for w in ws:
            w.grad = None
        layers(x, 0, depth).sum().backward()

    def checkpointed():
        for w in ws:
            w.grad = None
        h = x
        for lo in range(0, depth, segment):
            h = checkpoint(lambda t, lo=lo: layers(t, lo, lo + segment), h, use_reentrant=True)
        h.sum().backward()

    eager()
    peak_eager, t_eager = _traced_peak(eager)
    checkpointed()
    peak_ckpt, t_ckpt = _traced_peak(checkpointed)
    # compiled
    with cr.static.Graph():
        xs = cr.static.placeholder((batch, width), name="x", requires_grad=False)
        loss = layers(xs, 0, depth).sum()
        grads = cr.static.gradients(loss, ws)
    program = cr.static.compile(grads)
    program.run({"x": x})
    peak_compiled, t_compiled = _traced_peak(lambda: program.run({"x": x}))
    plan = program.memory_plan()
    grads_bytes = depth * width * width * 4
    act = batch * width * 4
    return {
        "activation_bytes_per_layer": act,
        # eager() and checkpointed() set .grad to None first, so each run allocates the gradients anew
        "eager_peak": peak_eager - grads_bytes, "eager_time": t_eager,
        "checkpoint_peak": peak_ckpt - grads_bytes, "checkpoint_time": t_ckpt,
        "compiled_peak": peak_compiled - grads_bytes, "compiled_time": t_compiled,  # run returns fresh grads
        "compiled_plan": plan,
        "torch_estimate": depth * act + 2 * act,
    }


def main(argv):
    names = argv or list(STATIC_WORKLOADS) + ["static_branches", "threads", "memory"]
    for name in names:
        if name in STATIC_WORKLOADS:
            w = STATIC_WORKLOADS[name]
            timings = run(w, floor=NUMPY_FLOORS.get(name))
            print(report(w, timings), flush=True)
        elif name == "threads":  # the compiled whole steps on one thread and on two (numbers of one run)
            for label, make_eager in (("lenet_step", nn_workloads.make_lenet_step),
                                      ("mlp_mnist_step", nn_workloads.make_mlp_mnist_step)):
                steps = {t: _compiled_or_eager(make_eager, t)("chainrule") for t in (1, 2)}
                timings = time_steps(steps, 5, 10)
                one, two = timings[1], timings[2]
                print(f"compiled {label:<15} threads=1 {one * 1e3:.2f} ms  threads=2 {two * 1e3:.2f} ms  "
                      f"speedup {one / two:.2f}x", flush=True)
        elif name == "static_branches":
            par = time_step(make_static_branches("chainrule"), 5, 20)
            ser = time_step(make_static_branches("serial"), 5, 20)
            print(f"static_branches      threads=1 {ser * 1e3:.2f} ms  threads=2 {par * 1e3:.2f} ms  "
                  f"speedup {ser / par:.2f}x", flush=True)
        elif name == "memory":
            m = activation_memory()
            mb = 1 / 2**20
            print(f"activation memory (50x256, batch 4096): eager {m['eager_peak'] * mb:.0f} MiB "
                  f"({m['eager_time']:.2f} s), compiled {m['compiled_peak'] * mb:.0f} MiB ({m['compiled_time']:.2f} s; "
                  f"plan: planned peak {m['compiled_plan']['planned_peak_bytes'] * mb:.0f} MiB, naive "
                  f"{m['compiled_plan']['naive_bytes'] * mb:.0f} MiB, "
                  f"saved {m['compiled_plan']['bytes_saved'] * mb:.0f} MiB), "
                  f"checkpoint/10 {m['checkpoint_peak'] * mb:.0f} MiB ({m['checkpoint_time']:.2f} s: "
                  f"{m['checkpoint_time'] / m['eager_time']:.2f}x eager time, "
                  f"{100 * (1 - m['checkpoint_peak'] / m['eager_peak']):.0f}% less), "
                  f"torch estimate {m['torch_estimate'] * mb:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
