# ruff: noqa: F811 - the tests take the imported ``gpu`` fixture as their argument
"""Compiled programs on a GPU, the CUDA source of their fused kernels, and the hand-written CUDA kernels.

Programs run on the ``gpu`` fixture of test_device.py: the strict simulated GPU everywhere (its backend
runs a fused kernel step by step, so the program's structure, buffers and devices are checked in CI)
and a real one through CuPy (marked ``cuda``, ``make test-gpu``), against the same program on the CPU.
Without a GPU the kernels' CUDA C is checked as text and, where the NVRTC library is installed
(``nvidia-cuda-nvrtc``, no driver needed), compiled to PTX.
"""

import re

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
import nvrtc
from chainrule import _cuda_kernels, _device
from chainrule.models import LeNet5
from chainrule.ops.op import OPS
from chainrule.static.cuda import FusedKernel, expression
from chainrule.static.passes import fusable_op
from op_samples import SAMPLES
from test_compile_training import training_step
from test_device import CUDA, HAVE_CUDA, close, gpu, host  # noqa: F401 - gpu: the fixture (sim, cuda)
from test_op_harness import samples

NVRTC = nvrtc.library()
needs_nvrtc = pytest.mark.skipif(NVRTC is None, reason="needs the NVRTC library (pip install nvidia-cuda-nvrtc)")
needs_cuda = [pytest.mark.cuda, pytest.mark.skipif(not HAVE_CUDA, reason="needs a usable CUDA GPU and CuPy")]
FUSABLE = sorted(name for name, op in OPS.items() if fusable_op(op))
LAUNCH = re.compile(r"^\s*(?:v\d+ = )?cuda_kernel\d+\(", re.M)


def fused_nodes(program):
    return [n for n in program.nodes if n.kind == "fused"]


def kernels_of(program):
    return [FusedKernel(n.steps, [i.dtype for i in n.inputs], n.dtype) for n in fused_nodes(program)]


# --- compiled programs on the GPU --------------------------------------------------------------------------
def test_a_compiled_function_runs_on_the_gpu_one_launch_per_fused_chain(gpu):
    f = cr.compile(lambda x, y: (cr.sigmoid(x * 2 + y) * cr.tanh(y) - 1).relu().sum(dim=1))
    x, y = cr.randn(5, 6), cr.randn(5, 6)
    got, want = f(x.to(gpu), y.to(gpu)), f(x, y)
    close(got, want, np.float32, "compiled on the gpu")
    close(got, (cr.sigmoid(x * 2 + y) * cr.tanh(y) - 1).relu().sum(dim=1), np.float32, "eager on the cpu")
    assert f.trace_count == 2  # one program per device
    program = f.program(x.to(gpu), y.to(gpu))
    assert program.device == gpu and len(fused_nodes(program)) == 1
    assert len(LAUNCH.findall(program.source())) == 1  # the whole chain: one kernel launch, no per-step calls
    assert "np.multiply" not in program.source() and "np.multiply" in f.program(x, y).source()


def test_buffers_and_tensors_made_while_tracing_live_on_the_gpu(gpu):
    w = cr.randn(4, 4, device=gpu)

    def f(x):  # full_like of a symbolic tensor is made on the host: the program copies it over
        return ((x @ w) * cr.full_like(x, 3.0)).exp() + x[:, [0, 0, 1, 3]] * 2

    x = cr.randn(3, 4)
    compiled = cr.compile(f)
    close(compiled(x.to(gpu)), f(x.to(gpu)), np.float32, "compiled vs eager on the gpu")
    namespace = compiled.program(x.to(gpu))._fn.__globals__
    buffers = [v for k, v in namespace.items() if re.fullmatch(r"B\d+", k)]
    assert buffers and all(_device.is_device_array(b) for b in buffers)


MLP_OPTIMIZERS = {
    "sgd-nesterov-wd": lambda p: cr.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd-dampening": lambda p: cr.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.1),
    "adam": lambda p: cr.optim.Adam(p, lr=1e-2),
    "adamw-amsgrad": lambda p: cr.optim.AdamW(p, lr=1e-2, amsgrad=True),
}


def _compiled_training(where, optimizer, model_fn, batches):
    cr.manual_seed(0)
    model = model_fn().to(where)
    opt = optimizer(model.parameters())

    step = training_step(model, opt, compiled=True)
    losses = [step(cr.tensor(x).to(where), cr.tensor(y).to(where)) for x, y in batches]
    return losses, list(model.parameters()), step


def _batches(shape, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, shape[0])) for _ in range(n)]


@pytest.mark.parametrize("optimizer", list(MLP_OPTIMIZERS))
def test_compiled_mlp_training_on_the_gpu_equals_the_cpu(gpu, optimizer):
    def mlp():
        return cr.nn.Sequential(cr.nn.Linear(20, 32), cr.nn.ReLU(), cr.nn.Linear(32, 10))

    batches = _batches((16, 20))
    losses, params, step = _compiled_training(gpu, MLP_OPTIMIZERS[optimizer], mlp, batches)
    ref_losses, ref_params, _ = _compiled_training("cpu", MLP_OPTIMIZERS[optimizer], mlp, batches)
    for got, want in zip(losses + params, ref_losses + ref_params):
        close(got, want, np.float32, optimizer)
    program = step.program(*[cr.tensor(a).to(gpu) for a in batches[0]])
    assert step.trace_count == 1 and fused_nodes(program)
    # the hyperparameters' arithmetic (Adam's bias corrections) runs on the host: no 0-d kernels on the GPU
    assert "np.power" not in program.source() and "np.subtract(1" not in program.source()


def test_compiled_lenet_training_on_the_gpu_equals_the_cpu(gpu):
    def sgd(p):
        return cr.optim.SGD(p, lr=0.05, momentum=0.9)

    batches = _batches((4, 1, 28, 28), n=2)
    losses, params, _ = _compiled_training(gpu, sgd, lambda: LeNet5(input_size=28), batches)
    ref_losses, ref_params, _ = _compiled_training("cpu", sgd, lambda: LeNet5(input_size=28), batches)
    for got, want in zip(losses + params, ref_losses + ref_params):
        close(got, want, np.float32, "lenet")


def test_a_static_program_runs_where_it_was_compiled_and_refuses_other_feeds(gpu):
    w = cr.randn(3, 2, device=gpu)
    with cr.static.Graph():
        x = cr.static.placeholder((None, 3), name="x", requires_grad=False)
        out = cr.tanh(x @ w) * 2 + 1
    program = cr.static.compile(out)
    assert program.device == gpu  # where its variable lives
    data = cr.randn(4, 3)
    close(program.run(x=data.to(gpu)), cr.tanh(data @ w.cpu()) * 2 + 1, np.float32, "static program")
    with pytest.raises(cr.static.FeedError, match="placeholder 'x' was fed data on cpu; this program runs on cuda:0"):
        program.run(x=data)
    threaded = cr.static.compile(out, threads=2)
    close(threaded.run(x=data.to(gpu)), program.run(x=data.to(gpu)), np.float32, "threaded")


def test_a_function_of_no_tensor_runs_where_its_captured_tensors_live(gpu):
    w = cr.randn(3, 3)
    w_gpu = w.to(gpu)
    close(cr.compile(lambda: (w_gpu.exp() * 2).sum(0))(), (w.exp() * 2).sum(0), np.float32, "captured")


def test_a_program_of_tensors_on_two_devices_is_refused_like_torch(gpu):
    f = cr.compile(lambda x, y: x + y)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but found at least two "
                                           "devices, cuda:0 and cpu"):
        f(cr.ones(2, device=gpu), cr.ones(2))


# --- the CUDA C of fused kernels (no GPU needed) -----------------------------------------------------------
def _balanced(text):
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def one_step_kernels(name, dtype):
    """A one-step kernel per sample of op ``name`` in ``dtype``: its arrays as inputs, its numbers as literals."""
    op = OPS[name]
    for args, params in samples(name, dtype):
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        positions = iter(range(len(arrays)))
        operands = [("x", next(positions)) if isinstance(a, np.ndarray) else ("c", a) for a in args]
        yield FusedKernel([(op, params, operands)], [a.dtype for a in arrays], op.forward(*args, **params).dtype)


FLOAT_FUSABLE = [pytest.param(n, dt, id=f"{n}-{dt}") for n in FUSABLE for dt in ("float32", "float64")
                 if np.dtype(dt) in [np.dtype(d) for d in SAMPLES[n].dtypes]]


@pytest.mark.parametrize("name", FUSABLE)
def test_every_fusable_op_declares_its_cuda_expression(name):
    assert OPS[name].cuda is not None
    for dtype in SAMPLES[name].dtypes:
        for kernel in one_step_kernels(name, dtype):
            params, out, body, _ = kernel.source()
            expr = body.splitlines()[0].split(" = ", 1)[1]
            used = set(re.findall(r"\bx\d+\b", expr))
            assert used == {f"x{k}" for k in range(len(kernel.in_dtypes))} and _balanced(expr), expr
            assert not re.search(r"[{}]|\bNone\b|\bnan\b|\binf\b", expr), expr  # Python's text is not C


def test_clamp_renders_one_sided_bounds():
    clamp = OPS["clamp"]
    assert expression(clamp, ["x0"], {"min": None, "max": 3}) == "(x0 > 3 ? 3 : x0)"
    assert expression(clamp, ["x0"], {"min": 0.5, "max": None}) == "(x0 < 0.5 ? 0.5 : x0)"


def _chain_programs():
    """Programs whose fused kernels cover the usual chains: activations, a training step, literals."""
    x, y = cr.randn(4, 5), cr.randn(4, 5)
    programs = [cr.compile(lambda a, b: cr.where(a > 0, cr.sigmoid(a) * b, cr.exp(-a)).clamp(-1, 1) ** 2 / 3)
                .program(x, y),
                cr.compile(lambda a: (a * float("inf")).minimum(a).maximum(a * 0.5).abs().sqrt()).program(x)]
    _, _, step = _compiled_training("cpu", MLP_OPTIMIZERS["adam"], lambda: cr.nn.Linear(5, 10), _batches((4, 5)))
    return programs + [step.program(x, cr.tensor(np.arange(4)))]


def test_generated_kernels_are_well_formed():
    kernels = [k for p in _chain_programs() for k in kernels_of(p)]
    assert len(kernels) >= 4 and max(len(k.steps) for k in kernels) >= 4
    for kernel in kernels:
        params, out, body, name = kernel.source()
        declared = re.findall(r"(\w+) (x\d+)", params)
        assert [n for _, n in declared] == [f"x{k}" for k in range(len(kernel.in_dtypes))]
        assert [np.dtype(t) for t, _ in declared] == kernel.in_dtypes and out == f"{kernel.dtype.name} out"
        lines = body.splitlines()
        assert len(lines) == len(kernel.steps) + 1 and lines[-1] == f"out = s{len(kernel.steps) - 1};"
        for s, line in enumerate(lines[:-1]):
            assert line.startswith(f"const float s{s} = ") and line.endswith(";") and _balanced(line), line
            assert set(re.findall(r"\b(s\d+|x\d+)\b", line.split(" = ", 1)[1])) <= {f"s{k}" for k in range(s)} | {
                n for _, n in declared}, line
        assert name.startswith("chainrule_fused_") and name.isidentifier()


@needs_nvrtc
@pytest.mark.parametrize("name, dtype", FLOAT_FUSABLE)
def test_every_fusable_op_compiles_to_ptx(name, dtype):
    for kernel in one_step_kernels(name, dtype):
        assert f".entry {kernel.name}" in nvrtc.compile_ptx(NVRTC, nvrtc.translation_unit(*kernel.source(), {}))


@needs_nvrtc
def test_the_kernels_of_compiled_programs_compile_to_ptx():
    for program in _chain_programs():
        for kernel in kernels_of(program):
            assert f".entry {kernel.name}" in nvrtc.compile_ptx(NVRTC, nvrtc.translation_unit(*kernel.source(), {}))


@needs_nvrtc
@pytest.mark.parametrize("kernel", _cuda_kernels.KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_hand_written_kernels_compile_to_ptx(kernel, dtype):
    for index_dtype in ("int8", "int64"):
        source = nvrtc.translation_unit(kernel.params, kernel.out, kernel.body, kernel.name,
                                        {"T": dtype, "I": index_dtype})
        assert f".entry {kernel.name}" in nvrtc.compile_ptx(NVRTC, source)


@needs_nvrtc
def test_nvrtc_refuses_a_kernel_that_does_not_type_check():
    broken = FusedKernel([(cr.exp.op, {}, [("x", 0)])], ["float32"], "float32")
    params, out, body, name = broken.source()
    with pytest.raises(RuntimeError, match="could not compile"):
        nvrtc.compile_ptx(NVRTC, nvrtc.translation_unit(params, out, body.replace("x0", "x9"), name, {}))


# --- the hand-written kernels' wrappers, with a recording kernel (no GPU) ----------------------------------
class Recorder:
    """Stands in for a Kernel: records each launch; ``run`` (optional) applies the kernel's C semantics."""

    def __init__(self, run=None):
        self.launches, self.run = [], run

    def __call__(self, *args):
        self.launches.append(args)
        if self.run is not None:
            self.run(*args)


@pytest.fixture
def fake_gpu(monkeypatch):
    """numpy arrays handed to the kernels module as if they were CuPy's."""
    pytest.importorskip("cupy")
    monkeypatch.setattr(_device, "kernels", lambda array: _cuda_kernels if type(array) is np.ndarray else None)
    return monkeypatch


def test_scatter_add_adds_repeated_indices_at_their_flat_positions(fake_gpu):
    kernel = Recorder(lambda positions, values, out: np.add.at(out.reshape(-1), positions, values))
    fake_gpu.setattr(_cuda_kernels, "SCATTER_ADD", kernel)
    x = cr.randn(4, 3, 5, requires_grad=True)
    index = (slice(None), np.array([0, 2, 0, 0]).reshape(4, 1), np.array([1, 1, 4]))
    x[index].backward(cr.ones(4, 4, 3) * cr.arange(3.0))
    want = np.zeros((4, 3, 5), np.float32)
    np.add.at(want, index, np.ones((4, 4, 3), np.float32) * np.arange(3.0, dtype=np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), want)
    assert len(kernel.launches) == 1 and kernel.launches[0][0].dtype == np.int64


def test_max_pool_launches_one_kernel_with_the_cpu_ops_shapes_and_dtypes(fake_gpu):
    kernel = Recorder()
    fake_gpu.setattr(_cuda_kernels, "MAX_POOL", kernel)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    for geometry, flat in [(dict(kernel_size=3, stride=2, padding=1), True), (dict(kernel_size=2), False)]:
        with fake_gpu.context() as patch:
            patch.setattr(_device, "kernels", lambda array: None)
            want_out, want_idx = F.max_pool2d(cr.tensor(x), return_indices=True, **geometry)
        F.max_pool2d(cr.tensor(x), return_indices=flat, **geometry)
        *_, out, arg = kernel.launches[-1]
        assert out.shape == tuple(want_out.shape) and out.dtype == np.float32
        assert arg.shape == tuple(want_idx.shape) and arg.dtype == (np.int64 if flat else np.int8)


def test_sgd_and_adam_launch_one_kernel_per_parameter_with_their_state(fake_gpu):
    for attribute, make, state_keys in [("SGD", lambda p: cr.optim.SGD(p, lr=0.1, momentum=0.9), ["momentum_buffer"]),
                                        ("ADAM", lambda p: cr.optim.AdamW(p, lr=0.1, amsgrad=True),
                                         ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])]:
        kernel = Recorder()
        fake_gpu.setattr(_cuda_kernels, attribute, kernel)
        model = cr.nn.Linear(3, 2)
        opt = make(model.parameters())
        model(cr.randn(4, 3)).sum().backward()
        versions = [p._version[0] for p in model.parameters()]
        opt.step()
        assert len(kernel.launches) == 2  # one per parameter, nothing else
        for p, launch, version in zip(model.parameters(), kernel.launches, versions):
            arrays = [a for a in launch if isinstance(a, np.ndarray)]
            assert arrays[0] is p.grad._data and p._data in [a for a in arrays if a is p._data]
            assert all(any(a is opt.state[p][k]._data for a in arrays) for k in state_keys)
            assert p._version[0] == version + 1
        if attribute == "ADAM":  # hyperparameters: lr, betas, eps, weight decay, the step's bias corrections
            assert launch[1:8] == pytest.approx((0.1, 0.9, 0.999, 1e-8, 1e-2, 0.1 / (1 - 0.9), (1 - 0.999) ** 0.5))
            assert opt.state[p]["step"].item() == 1.0


# --- the hand-written kernels against the CPU, on a real GPU -----------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", [pytest.param(CUDA, id="cuda", marks=needs_cuda)])
def test_max_pool_kernel_matches_the_cpu_with_padding_and_nan(where, dtype):
    x = np.random.default_rng(1).standard_normal((2, 3, 10, 9)).astype(dtype)
    x[0, 0, 1, 1] = np.nan
    x[1, 2] = -np.inf
    for geometry in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), dilation=2)):
        got = F.max_pool2d(cr.tensor(x, device=where), return_indices=True, **geometry)
        want = F.max_pool2d(cr.tensor(x), return_indices=True, **geometry)
        np.testing.assert_array_equal(host(got[0]), host(want[0]))
        assert got[1].tolist() == want[1].tolist()


@pytest.mark.parametrize("where", [pytest.param(CUDA, id="cuda", marks=needs_cuda)])
def test_scatter_add_kernel_matches_the_cpu(where):
    src = np.random.default_rng(2).standard_normal((6, 4))
    index = np.array([[0, 1, 1, 0], [2, 2, 2, 2], [0, 0, 0, 1], [1, 2, 0, 0], [2, 1, 0, 1], [0, 0, 0, 0]])
    got = cr.zeros(3, 4, dtype=cr.float64, device=where).scatter_add(0, cr.tensor(index, device=where),
                                                                     cr.tensor(src, device=where))
    want = cr.zeros(3, 4, dtype=cr.float64).scatter_add(0, cr.tensor(index), cr.tensor(src))
    close(got, want, np.float64, "scatter_add")
