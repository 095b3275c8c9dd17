"""Tensors on a GPU, against the same computation on the CPU.

Every test takes the ``gpu`` fixture: the strict simulated GPU (``chainrule._device.simulate_cuda``,
runs everywhere: its arrays refuse to mix with numpy arrays, so a stray numpy call on device data
fails here) and a real CUDA GPU through CuPy (marked ``cuda``, run by ``make test-gpu``; skipped
where no GPU is usable). Each op of the op table runs on its samples (tests/op_samples.py): value,
gradient, double backward and forward mode must match the CPU and stay on the device.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule import _device
from chainrule.autograd import forward_ad
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
