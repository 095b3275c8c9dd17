"""Tensors on a GPU, against the same computation on the CPU.

Every test takes the ``gpu`` fixture: the strict simulated GPU (``chainrule._device.simulate_cuda``,
runs everywhere: its arrays refuse to mix with numpy arrays, so a stray numpy call on device data
fails here) and a real CUDA GPU through CuPy (marked ``cuda``, run by ``make test-gpu``; skipped
where no GPU is usable). Each op of the op table runs on its samples (tests/op_samples.py): value,
gradient, double backward and forward mode must match the CPU and stay on the device.
"""

import ast
import pathlib

import numpy as np
import pytest

import chainrule as cr
import helpers
from chainrule import _device
from chainrule.__main__ import main as cr_main
from chainrule.autograd import forward_ad
from chainrule.models import LeNet5
from chainrule.ops.op import OPS, bind
from op_samples import SAMPLES
from test_op_harness import grad_inputs, samples

HAVE_CUDA = cr.cuda.is_available()
GPUS = [pytest.param("simulated", id="sim"),
        pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
            not HAVE_CUDA, reason="needs a usable CUDA GPU and CuPy (make test-gpu on a GPU machine)")])]
TOL = {np.dtype("float32"): dict(rtol=2e-4, atol=2e-5), np.dtype("float64"): dict(rtol=1e-9, atol=1e-11)}
CUDA = cr.device("cuda", 0)


@pytest.fixture(params=GPUS)
def gpu(request):
    if request.param == "simulated":
        with _device.simulate_cuda():
            yield CUDA
    else:
        yield CUDA


def host(t):
    return t.detach().cpu().numpy()


def close(actual, expected, dtype, what=""):
    assert actual.device == CUDA, f"{what}: the result left the GPU ({actual.device})"
    np.testing.assert_allclose(host(actual), host(expected), err_msg=what, **TOL.get(np.dtype(dtype), {}))


def run(op, args, params, on_gpu):
    """The op on a sample from one random state (dropout draws the same mask on both devices); an op that
    takes no tensor (fill) is asked for its result on the GPU."""
    cr.manual_seed(0)
    if on_gpu and not any(isinstance(a, cr.Tensor) for a in args):
        params = dict(params, device=CUDA)
    return bind(op, *args, **params)


def both(args, requires_grad=()):
    """The sample's tensor arguments on the CPU and (copies) on the GPU, as leaves."""
    on_cpu = [cr.tensor(a, requires_grad=i in requires_grad) if isinstance(a, np.ndarray) else a
              for i, a in enumerate(args)]
    on_gpu = [cr.tensor(a, device=CUDA, requires_grad=i in requires_grad) if isinstance(a, np.ndarray) else a
              for i, a in enumerate(args)]
    return on_cpu, on_gpu


def outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


MOVES = {"to_copy"}  # its samples move to the CPU; moving is tested below
CASES = [pytest.param(n, dt, id=f"{n}-{dt}") for n in sorted(set(OPS) - MOVES) if n in SAMPLES
         for dt in SAMPLES[n].dtypes]
FLOAT_CASES = [pytest.param(n, dt, id=f"{n}-{dt}") for n in sorted(set(OPS) - MOVES) if n in SAMPLES
               and OPS[n].vjp is not None for dt in SAMPLES[n].dtypes if np.dtype(dt).kind == "f"]


@pytest.mark.parametrize("name, dtype", CASES)
def test_op_forward_on_gpu_matches_cpu(gpu, name, dtype):
    op = OPS[name]
    for args, params in samples(name, dtype):
        on_cpu, on_gpu = both(args)
        for got, want in zip(outputs(run(op, on_gpu, params, True)), outputs(run(op, on_cpu, params, False))):
            close(got, want, dtype, f"{name} {params}")


def _grads(op, args, params, positions, on, rng_seed=3):
    tensors = both(args, positions)[on]
    outs = [o for o in outputs(run(op, tensors, params, on == 1)) if o.requires_grad]
    rng = np.random.default_rng(rng_seed)
    seeds = [cr.tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype, device=o.device) for o in outs]
    inputs = [tensors[i] for i in positions]
    return inputs, cr.autograd.grad(outs, inputs, seeds, allow_unused=True, create_graph=True)


@pytest.mark.parametrize("name, dtype", FLOAT_CASES)
def test_op_gradient_on_gpu_matches_cpu(gpu, name, dtype):
    op = OPS[name]
    for args, params in samples(name, dtype):
        positions = grad_inputs(op, args)
        _, want = _grads(op, args, params, positions, 0)
        _, got = _grads(op, args, params, positions, 1)
        for g, w in zip(got, want):
            if w is not None:
                close(g, w, dtype, f"{name} gradient {params}")


@pytest.mark.parametrize("name", sorted({p.values[0] for p in FLOAT_CASES}))
def test_op_double_backward_on_gpu_matches_cpu(gpu, name):
    op = OPS[name]
    for args, params in samples(name, np.float64):
        positions = grad_inputs(op, args)
        results = []
        for on in (0, 1):
            inputs, grads = _grads(op, args, params, positions, on)
            total = sum((g * g).sum() for g in grads if g is not None and g.requires_grad)
            results.append(cr.autograd.grad(total, inputs, allow_unused=True) if isinstance(total, cr.Tensor)
                           else [None] * len(inputs))
        for g, w in zip(results[1], results[0]):
            if w is not None:
                close(g, w, np.float64, f"{name} double backward {params}")


@pytest.mark.parametrize("name", sorted(p.values[0] for p in FLOAT_CASES if OPS[p.values[0]].jvp is not None
                                        and p.values[1] == np.float64))
def test_op_forward_mode_on_gpu_matches_cpu(gpu, name):
    op = OPS[name]
    for args, params in samples(name, np.float64):
        rng = np.random.default_rng(4)
        tangents = {i: rng.standard_normal(args[i].shape) for i in grad_inputs(op, args)}
        results = []
        for where in (None, CUDA):
            with forward_ad.dual_level():
                tensors = [forward_ad.make_dual(cr.tensor(a, device=where), cr.tensor(tangents[i], device=where))
                           if i in tangents else cr.tensor(a, device=where) if isinstance(a, np.ndarray) else a
                           for i, a in enumerate(args)]
                outs = outputs(run(op, tensors, params, where is not None))
                results.append([forward_ad.unpack_dual(o).tangent for o in outs])
        for got, want in zip(results[1], results[0]):
            if want is not None:
                close(got, want, np.float64, f"{name} jvp {params}")


# --- moving between devices -----------------------------------------------------------------------------
def test_moving_is_an_op_whose_gradient_moves_back(gpu):
    x = cr.tensor([1.0, -2.0, 3.0], dtype=cr.float64, requires_grad=True)
    y = x.cuda()
    assert y.device == gpu and not y.is_leaf and y.grad_fn.name() == "ToCopyBackward0"
    assert x.to(gpu) is not x and y.to("cuda") is y and y.cuda() is y and y.to(gpu, cr.float64) is y
    z = (y * y).cpu()
    assert z.device == cr.device("cpu") and z.grad_fn.name() == "ToCopyBackward0"
    (g,) = cr.autograd.grad(z.sum(), x, create_graph=True)
    assert g.device == x.device and g.tolist() == [2.0, -4.0, 6.0]
    (gg,) = cr.autograd.grad(g.sum(), x)  # double backward through both moves
    assert gg.tolist() == [2.0, 2.0, 2.0]
    y.retain_grad()
    (y * 3).sum().backward()
    assert y.grad.device == gpu and x.grad.device == x.device and x.grad.tolist() == [3.0, 3.0, 3.0]
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(cr.tensor([1.0, 2.0]), cr.tensor([0.5, -1.0]))
        out = forward_ad.unpack_dual(dual.cuda() * 2)
        assert out.tangent.device == gpu and out.tangent.tolist() == [1.0, -2.0]


def test_a_gradient_on_another_device_is_refused_like_torch(gpu):
    y = (cr.ones(3, device=gpu, requires_grad=True) * 2)
    with pytest.raises(RuntimeError, match="invalid gradient at index 0 - expected device cuda:0 but got cpu"):
        y.backward(cr.ones(3))
    y.backward(cr.ones(3, device=gpu))
    assert cr.cuda.memory_allocated() >= 0 and cr.cuda.empty_cache() is None and cr.cuda.current_device() == 0
    cr.cuda.synchronize()


def test_to_accepts_every_form_on_the_gpu(gpu):
    x = cr.ones(2, 3)
    assert x.to(gpu).device == gpu and x.to("cuda:0").device == gpu and x.cuda(0).device == gpu
    y = x.to("cuda", cr.float64)
    assert (y.device, y.dtype) == (gpu, cr.float64)
    z = cr.zeros(1, dtype=cr.int64).to(y)  # to(other): its device and dtype
    assert (z.device, z.dtype) == (gpu, cr.float64)
    assert y.to(dtype=cr.float32, device="cpu", non_blocking=True).device == cr.device("cpu")
    assert y.to("cuda", copy=True) is not y and y.is_cuda and y.get_device() == 0
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        x.to("cuda:7")


def test_mixing_devices_names_the_op_and_both_devices(gpu):
    a, b = cr.ones(2, 2), cr.ones(2, 2, device=gpu)
    for call, op in ((lambda: a + b, "add"), (lambda: b @ a, "matmul"), (lambda: cr.cat([b, a]), "cat"),
                     (lambda: cr.nn.functional.linear(b, a), "")):
        with pytest.raises(RuntimeError, match=f"{op}.*Expected all tensors to be on the same device, but found at "
                                               "least two devices, (cpu and cuda:0|cuda:0 and cpu)!"):
            call()


def test_a_zero_dim_cpu_tensor_joins_a_gpu_op_like_a_number(gpu):
    """PyTorch's exception to the same-device rule: a 0-d CPU tensor moves to the other operand's device
    (its gradient comes back to the CPU); a CPU tensor with dimensions is still refused."""
    x = cr.tensor([1.0, 2.0, 3.0], device=gpu, requires_grad=True)
    scale = cr.tensor(2.0, requires_grad=True)
    out = x * scale + cr.tensor(1)
    assert out.device == x.device and host(out).tolist() == [3.0, 5.0, 7.0]
    assert host(scale - x).tolist() == [1.0, 0.0, -1.0] and host(x > cr.tensor(1.5)).tolist() == [False, True, True]
    out.sum().backward()
    assert scale.grad.device.type == "cpu" and scale.grad.item() == 6.0
    assert host(x.grad).tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        x * cr.ones(1)


def test_device_tensors_refuse_numpy_and_print_their_device(gpu):
    x = cr.tensor([1.5, 2.0], device=gpu)
    for call in (x.numpy, lambda: np.asarray(x)):
        with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu()"):
            call()
    assert repr(x) == "tensor([1.5000, 2.0000], device='cuda:0')"
    assert repr(x.double().requires_grad_()) == ("tensor([1.5000, 2.0000], device='cuda:0', dtype=chainrule.float64,\n"
                                                  "       requires_grad=True)")  # wrapped at 80 columns, as torch does
    assert x.tolist() == [1.5, 2.0] and x[0].item() == 1.5 and float(x.sum()) == 3.5 and bool(x[1] > 1)
    assert x.cpu().numpy().tolist() == [1.5, 2.0]


# --- creation ----------------------------------------------------------------------------------------
def test_creation_on_the_gpu_and_like_functions_keep_the_device(gpu):
    made = [cr.zeros(2, device=gpu), cr.ones(2, device="cuda"), cr.full((2,), 3.0, device=gpu),
            cr.arange(3, device=gpu), cr.eye(2, device=gpu), cr.tensor([1, 2], device=gpu),
            cr.as_tensor(np.ones(2), device=gpu), cr.linspace(0, 1, 3, device=gpu)]
    base = cr.randn(3, device=gpu)
    made += [cr.zeros_like(base), cr.ones_like(base), cr.full_like(base, 2.0), cr.empty_like(base),
             cr.rand_like(base), cr.randn_like(base), cr.zeros_like(cr.ones(2), device=gpu)]
    assert {t.device for t in made} == {gpu}
    assert cr.zeros_like(base, device="cpu").device == cr.device("cpu")
    cr.manual_seed(5)
    on_gpu = cr.randn(4, device=gpu)
    cr.manual_seed(5)
    assert on_gpu.tolist() == cr.randn(4).tolist()  # one generator: the same draws on every device


def test_default_device_cuda(gpu):
    with cr.device("cuda"):
        assert cr.zeros(1).device == gpu
    assert cr.zeros(1).device == cr.device("cpu")
    try:
        cr.set_default_device("cuda")
        assert cr.get_default_device() == cr.device("cuda")
        assert cr.zeros(2).device == gpu and cr.nn.Linear(2, 3).weight.device == gpu
        assert cr.tensor([1.0]).device == gpu and cr.zeros(2, device="cpu").device == cr.device("cpu")
    finally:
        cr.set_default_device(None)
    assert cr.zeros(2).device == cr.device("cpu")


# --- training --------------------------------------------------------------------------------------------
def _batches(n=3, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, batch))
            for _ in range(n)]


def _train_lenet(where, optimizer):
    cr.manual_seed(0)
    model = LeNet5(input_size=28)
    params = list(model.parameters())
    opt = optimizer(model.parameters())  # built before .to: it must keep working
    model.to(where)
    assert [p is q for p, q in zip(model.parameters(), params)] == [True] * len(params)
    losses = []
    for images, labels in _batches():
        opt.zero_grad()
        loss = cr.nn.functional.cross_entropy(model(cr.tensor(images).to(where)), cr.tensor(labels).to(where))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, opt, losses


OPTIMIZERS = {"sgd-momentum": lambda p: cr.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
              "adam": lambda p: cr.optim.Adam(p, lr=1e-3), "adamw-amsgrad": lambda p: cr.optim.AdamW(p, amsgrad=True)}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_lenet_training_steps_on_the_gpu_equal_the_cpu(gpu, optimizer):
    model, opt, losses = _train_lenet(gpu, OPTIMIZERS[optimizer])
    ref_model, _, ref_losses = _train_lenet("cpu", OPTIMIZERS[optimizer])
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    for p, q in zip(model.parameters(), ref_model.parameters()):
        assert p.device == gpu and p.grad.device == gpu
        np.testing.assert_allclose(host(p), host(q), rtol=1e-4, atol=1e-5)
    states = [v for st in opt.state.values() for v in st.values() if isinstance(v, cr.Tensor) and v.ndim > 0]
    assert states and {v.device for v in states} == {gpu}  # optimizer state lives on its parameter's device


def test_checkpoints_of_gpu_tensors_load_back_where_asked(gpu, tmp_path):
    model, opt, _ = _train_lenet(gpu, OPTIMIZERS["adam"])
    path = tmp_path / "ckpt.safetensors"
    cr.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    back = cr.load(path)
    assert {t.device for t in back["model"].values()} == {gpu}  # where they were saved from
    on_cpu = cr.load(path, map_location="cpu")
    assert {t.device for t in on_cpu["model"].values()} == {cr.device("cpu")}
    assert {t.device for t in cr.load(path, map_location={"cuda:0": "cpu"})["model"].values()} == {cr.device("cpu")}
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(on_cpu["model"][key].numpy(), host(value))
    fresh = LeNet5(input_size=28).to(gpu)
    fresh_opt = cr.optim.Adam(fresh.parameters(), lr=1e-3)
    fresh.load_state_dict(on_cpu["model"])
    fresh_opt.load_state_dict(on_cpu["optimizer"])  # CPU state onto GPU parameters: moved there, as in PyTorch
    assert {p.device for p in fresh.parameters()} == {gpu}
    assert {v.device for st in fresh_opt.state.values() for k, v in st.items() if k != "step"} == {gpu}


def test_data_loader_batches_move_to_the_gpu(gpu):
    data = cr.utils.data.TensorDataset(cr.arange(12.0).reshape(6, 2), cr.arange(6))
    loader = cr.utils.data.DataLoader(data, batch_size=4, pin_memory=True)
    batches = [(x.pin_memory().to(gpu, non_blocking=True), y.to(gpu)) for x, y in loader]
    assert [b[0].device for b in batches] == [gpu, gpu] and batches[1][1].tolist() == [4, 5]
    on_gpu = cr.utils.data.TensorDataset(cr.arange(12.0, device=gpu).reshape(6, 2), cr.arange(6, device=gpu))
    batches = list(cr.utils.data.DataLoader(on_gpu, batch_size=4, shuffle=True))  # collated on the GPU
    assert {t.device for batch in batches for t in batch} == {gpu}
    assert sorted(sum((b[1].tolist() for b in batches), [])) == list(range(6))


def test_train_cli_on_the_gpu(gpu, capsys):
    pytest.importorskip("sklearn")
    code = cr_main(["train", "--device", "cuda", "--model", "mlp", "--epochs", "1", "--batch-size", "256",
                    "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and ", on cuda:0" in out and "final test accuracy" in out


def test_train_cli_cuda_without_a_gpu_says_what_is_missing():
    if HAVE_CUDA:
        pytest.skip("this machine has a GPU")
    with pytest.raises(SystemExit, match="--device cuda: .*CUDA is not available"):
        cr_main(["train", "--device", "cuda", "--epochs", "0"])


# --- every array-module name the ops use exists in CuPy ---------------------------------------------------
def _array_module_names():
    """Dotted names read off ``np``/``xp`` where tensor data is computed on (the op library, nn, optim, autograd,
    tensor.py): on device data these calls reach CuPy (dispatched by numpy, or through the array module)."""
    package = pathlib.Path(cr.__file__).parent
    names = set()
    for path in [package / "tensor.py"] + [p for part in ("ops", "nn", "optim", "autograd")
                                           for p in (package / part).glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            chain = []
            while isinstance(node, ast.Attribute):
                chain.append(node.attr)
                node = node.value
            if chain and isinstance(node, ast.Name) and node.id in ("np", "xp"):
                names.add(".".join(reversed(chain)))
    return names


def test_every_array_module_name_the_ops_use_exists_in_cupy():
    cupy = pytest.importorskip("cupy", reason="needs CuPy installed (pip install 'chainrule[cuda]'; no GPU needed)")
    names = _array_module_names()
    assert len(names) > 50 and "add.at" in names and "lib.stride_tricks.as_strided" in names

    def exists(dotted):
        namespace = cupy
        for part in dotted.split("."):
            namespace = getattr(namespace, part, None)
        return namespace is not None

    assert sorted(n for n in names if not exists(n)) == []


def test_import_works_and_cuda_is_unavailable_without_a_usable_gpu():
    if HAVE_CUDA:
        pytest.skip("this machine has a GPU")
    assert cr.cuda.device_count() == 0 and cr.accelerator.current_accelerator() is None
    with pytest.raises(AssertionError, match="CUDA is not available: CuPy (is not installed|is installed but no "
                                             "usable NVIDIA GPU)"):
        cr.zeros(1, device="cuda")


# --- the public functions of the core op table and of nn.functional, on the GPU ------------------------------
class OnGpu:
    """chainrule whose ``tensor()`` makes GPU tensors: the op table's functions then get GPU inputs and
    GPU constants (indices, masks) alike."""

    def __getattr__(self, name):
        return getattr(cr, name)

    @staticmethod
    def tensor(data, **kwargs):
        return cr.tensor(data, **kwargs, device=CUDA)


@pytest.mark.parametrize("spec", helpers.op_params(helpers.OPS))
def test_core_functions_on_gpu_match_cpu(gpu, spec):
    arrays = spec.arrays("float64")
    results = []
    for lib in (cr, OnGpu()):
        inputs = [helpers.make_tensor(lib, a, requires_grad=spec.grad) for a in arrays]
        out = spec.fn(lib, *inputs)
        if spec.grad:
            seed = np.random.default_rng(1).standard_normal(tuple(out.shape))
            out.backward(lib.tensor(seed, dtype=out.dtype))
        results.append([out] + ([x.grad for x in inputs] if spec.grad else []))
    for got, want in zip(results[1], results[0]):
        if want is not None:
            close(got, want, np.float64, spec.name)


F = cr.nn.functional
FUNCTIONAL = {  # name: (function of GPU-or-CPU tensors, input arrays)
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t.long(), label_smoothing=0.1), [(5, 4), "labels"]),
    "cross_entropy_weighted_ignore": (lambda x, t, w: F.cross_entropy(x, t.long(), weight=w.abs(), ignore_index=1),
                                      [(5, 4), "labels", (4,)]),
    "nll_loss": (lambda x, t: F.nll_loss(F.log_softmax(x, dim=1), t.long()), [(5, 4), "labels"]),
    "bce": (lambda x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid()), [(3, 4), (3, 4)]),
    "bce_logits": (lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=y.abs()),
                   [(3, 4), (3, 4)]),
    "mse_l1_huber": (lambda x, y: F.mse_loss(x, y) + F.l1_loss(x, y) + F.huber_loss(x, y) + F.smooth_l1_loss(x, y),
                     [(3, 4), (3, 4)]),
    "kl_div": (lambda x, y: F.kl_div(F.log_softmax(x, 1), F.softmax(y, 1), reduction="batchmean"), [(3, 4), (3, 4)]),
    "activations": (lambda x, a: F.elu(x) + F.silu(x) + F.softplus(x) + F.leaky_relu(x, 0.1) + F.relu6(x)
                    + F.hardtanh(x) + F.prelu(x, a) + F.softmin(x, 1) + F.normalize(x) + F.logsigmoid(x),
                    [(3, 4), (1,)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(4, 3, 2, 2), (3,), (3,)]),
    "conv2d_grouped_strided": (lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2),
                               [(2, 4, 5, 5), (6, 2, 3, 3)]),
    "max_pool_indices": (lambda x: F.max_pool2d(x, 2, return_indices=True)[0] * 1, [(2, 3, 4, 4)]),
    "avg_pool_no_pad_count": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
                              [(2, 3, 5, 5)]),
    "adaptive_avg_pool": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [(2, 3, 4, 6)]),
    "unfold_fold": (lambda x: F.fold(F.unfold(x, 2, stride=2), (4, 4), 2, stride=2), [(2, 3, 4, 4)]),
    "embedding": (lambda w, i: F.embedding(i.long(), w), [(6, 3), "indices"]),
    "one_hot_pad": (lambda x, i: F.pad(x, (1, 2)).sum() + F.pad(x[None], (2, 1), mode="reflect").sum()
                    + F.pad(x[None], (1, 1), mode="replicate").sum() + (F.one_hot(i.long(), 6) * 2).sum(),
                    [(2, 3), "indices"]),
    "linear_dropout_eval": (lambda x, w, b: F.dropout(F.linear(x, w, b), 0.5, training=False), [(3, 4), (2, 4), (2,)]),
}


def _functional_inputs(specs, where):
    rng = np.random.default_rng(7)
    made = []
    for spec in specs:
        if spec in ("labels", "indices"):
            made.append(cr.tensor(rng.integers(0, 4 if spec == "labels" else 6, 5), device=where))
        else:
            made.append(cr.tensor(rng.standard_normal(spec), requires_grad=True, device=where))
    return made


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional_on_gpu_matches_cpu(gpu, name):
    fn, specs = FUNCTIONAL[name]
    results = []
    for where in ("cpu", CUDA):
        inputs = _functional_inputs(specs, where)
        out = fn(*inputs)
        leaves = [x for x in inputs if x.requires_grad]
        results.append([out, *cr.autograd.grad(out.sum(), leaves)])
    for got, want in zip(results[1], results[0]):
        close(got, want, np.float64, name)


def _bn_dropout_net(where):
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Conv2d(1, 4, 3), cr.nn.BatchNorm2d(4), cr.nn.ReLU(), cr.nn.Dropout(0.3),
                             cr.nn.Flatten(), cr.nn.Linear(64, 3)).to(where)
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(2)
    x, y = cr.tensor(rng.standard_normal((5, 1, 6, 6)), dtype=cr.float32), cr.tensor(rng.integers(0, 3, 5))
    for _ in range(2):
        opt.zero_grad()
        cr.manual_seed(1)  # the same dropout masks on both devices
        loss = cr.nn.functional.cross_entropy(model(x.to(where)), y.to(where))
        loss.backward()
        opt.step()
    model.eval()
    return [loss, model(x.to(where)), *model.state_dict().values()]


def test_batch_norm_running_stats_and_dropout_train_on_the_gpu(gpu):
    got, want = _bn_dropout_net(gpu), _bn_dropout_net("cpu")
    for g, w in zip(got, want):
        if w.dtype == cr.int64:
            assert g.device == gpu and g.tolist() == w.tolist()
        else:
            close(g, w, np.float32, "batchnorm/dropout net")


def test_new_methods_make_tensors_on_self_device(gpu):
    x = cr.ones(2, device=gpu)
    for made in (x.new_zeros(3), x.new_ones((2, 2)), x.new_full((2,), 3.0), x.new_empty(2)):
        assert made.device == x.device and made.dtype == x.dtype
    assert x.new_zeros(2, device="cpu").device == cr.device("cpu")


def test_sequence_layers_make_their_own_tensors_on_the_input_device(gpu):
    cr.manual_seed(0)
    x = cr.randn(5, 2, 3)
    lstm, cell = cr.nn.LSTM(3, 4), cr.nn.GRUCell(3, 4)
    cpu_out = (lstm(x)[0], cell(x[0]), F.scaled_dot_product_attention(x, x, x, is_causal=True))
    lstm.to(gpu)
    cell.to(gpu)
    xg = x.to(gpu)
    gpu_out = (lstm(xg)[0], cell(xg[0]), F.scaled_dot_product_attention(xg, xg, xg, is_causal=True))
    for ours, ref in zip(gpu_out, cpu_out):
        assert ours.device == xg.device
        np.testing.assert_allclose(ours.cpu().detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
