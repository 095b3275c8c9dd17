"""PyTorch's device API on a machine without a GPU, against torch (a CPU build) as the oracle:
device objects, ``device=`` on creation functions, ``.to``/``.cpu``/``.cuda``, ``Module.to``, the
``cuda``/``accelerator``/``backends.mps`` queries and the default device. Device tensors (on the
simulated GPU and on a real one) are tested in tests/test_device.py."""

import pickle

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close

LIBS = [pytest.param(cr, id="chainrule"), pytest.param(torch, id="torch")]
no_gpu = pytest.mark.skipif(cr.cuda.is_available() or torch.cuda.is_available(),
                            reason="asserts what happens on a machine without a GPU")


# --- device objects ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [("cpu",), ("cuda",), ("cuda:1",), ("cuda", 2), ("cpu", 0), ("mps",)])
def test_device_fields_and_printing_match_torch(args):
    ours, theirs = cr.device(*args), torch.device(*args)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert (str(ours), repr(ours)) == (str(theirs), repr(theirs))
    assert cr.device(ours) == ours and hash(cr.device(ours)) == hash(ours)


def test_device_equality_follows_torch():
    for lib in (cr, torch):
        assert lib.device("cuda", 0) == lib.device("cuda:0")
        assert lib.device("cuda") != lib.device("cuda:0")  # no index is not index 0
        assert lib.device("cpu") != "cpu"  # PyTorch's devices never equal strings
        assert len({lib.device("cuda:0"), lib.device("cuda", 0), lib.device("cpu")}) == 2
    assert pickle.loads(pickle.dumps(cr.device("cuda:1"))) == cr.device("cuda:1")


@no_gpu
@pytest.mark.parametrize("bad", ["foo", "cuda:x", "cuda:-1", 0])
def test_bad_device_strings_raise_like_torch(bad):
    with pytest.raises(RuntimeError) as theirs:
        torch.device(bad)  # 0: the accelerator's first device, and there is none
    with pytest.raises(RuntimeError) as ours:
        cr.device(bad)
    assert str(ours.value).split(":")[0] == str(theirs.value).split(":")[0]


def test_device_refuses_a_non_string():
    with pytest.raises(TypeError, match="device"):
        cr.device(1.5)


# --- tensors on the CPU --------------------------------------------------------------------------------
def test_tensor_device_is_a_device_object():
    x = cr.ones(2)
    assert x.device == cr.device("cpu") and x.device.type == "cpu" and x.device.index is None
    assert not x.is_cuda and x.get_device() == torch.ones(2).get_device() == -1


CREATORS = [
    lambda lib, d: lib.zeros(2, 3, device=d), lambda lib, d: lib.ones((2,), device=d),
    lambda lib, d: lib.empty(2, device=d).shape, lambda lib, d: lib.full((2,), 1.5, device=d),
    lambda lib, d: lib.eye(3, device=d), lambda lib, d: lib.arange(5, device=d),
    lambda lib, d: lib.linspace(0, 1, 5, device=d), lambda lib, d: lib.rand(3, device=d).shape,
    lambda lib, d: lib.randn(3, device=d).shape, lambda lib, d: lib.randint(0, 5, (3,), device=d).shape,
    lambda lib, d: lib.randperm(4, device=d).shape, lambda lib, d: lib.tensor([1.0, 2.0], device=d),
    lambda lib, d: lib.as_tensor([1, 2], device=d), lambda lib, d: lib.zeros_like(lib.ones(2), device=d),
    lambda lib, d: lib.ones_like(lib.ones(2), device=d), lambda lib, d: lib.full_like(lib.ones(2), 3.0, device=d),
    lambda lib, d: lib.empty_like(lib.ones(2), device=d).shape,
    lambda lib, d: lib.rand_like(lib.ones(2), device=d).shape,
    lambda lib, d: lib.randn_like(lib.ones(2), device=d).shape,
    lambda lib, d: lib.normal(0.0, 1.0, (2,), device=d).shape,
]


@pytest.mark.parametrize("make", CREATORS)
@pytest.mark.parametrize("where", ["cpu", "cpu:0", "device"])
def test_creation_functions_take_device_like_torch(make, where):
    ours = make(cr, cr.device("cpu") if where == "device" else where)
    theirs = make(torch, torch.device("cpu") if where == "device" else where)
    if isinstance(theirs, torch.Size):
        assert tuple(ours) == tuple(theirs)
    else:
        assert ours.device.type == "cpu"
        assert_close(ours, theirs)


@pytest.mark.parametrize("lib", LIBS)
def test_to_reads_every_form_torch_accepts(lib):
    x = lib.ones(2, 3)
    assert x.to("cpu") is x and x.to(lib.device("cpu")) is x and x.cpu() is x
    assert x.to(lib.float32) is x and x.to(x) is x
    assert x.to("cpu", lib.float64).dtype == lib.float64
    assert x.to(lib.device("cpu"), lib.float64).dtype == lib.float64
    assert x.to(lib.ones(1, dtype=lib.float64)).dtype == lib.float64
    y = x.to(dtype=lib.float64, device="cpu", non_blocking=True, copy=True)
    assert y.dtype == lib.float64 and y.device.type == "cpu"
    copied = x.to("cpu", copy=True)
    assert copied is not x and copied.data_ptr() != x.data_ptr() if lib is torch else copied is not x
    assert x.to(lib.float64, copy=True).dtype == lib.float64


@no_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_asking_for_cuda_without_a_gpu_raises_torchs_error(lib):
    x = lib.ones(2)
    for call in (lambda: x.cuda(), lambda: x.to("cuda"), lambda: lib.zeros(2, device="cuda"),
                 lambda: lib.tensor([1.0], device=lib.device("cuda", 0)), lambda: lib.nn.Linear(2, 2).cuda(),
                 lambda: lib.nn.Linear(2, 2, device="cuda"), lambda: lib.cuda.synchronize()):
        with pytest.raises(AssertionError):
            call()


@no_gpu
@pytest.mark.beyond_torch
def test_the_cuda_error_says_what_is_missing():
    with pytest.raises(AssertionError, match="CUDA is not available: CuPy"):
        cr.ones(2).cuda()


@no_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_gpu_queries_answer_no_gpu(lib):
    assert lib.cuda.is_available() is False and lib.cuda.device_count() == 0
    lib.cuda.manual_seed(0)
    lib.cuda.manual_seed_all(0)
    assert lib.accelerator.is_available() is False and lib.accelerator.current_accelerator() is None
    assert lib.backends.mps.is_available() is False


@pytest.mark.parametrize("lib", LIBS)
def test_default_device(lib):
    assert lib.get_default_device() == lib.device("cpu")
    try:
        lib.set_default_device("cpu")
        assert lib.get_default_device() == lib.device("cpu") and lib.zeros(2).device == lib.device("cpu")
    finally:
        lib.set_default_device(None)
    assert lib.get_default_device() == lib.device("cpu")


@pytest.mark.parametrize("lib", LIBS)
def test_a_device_as_context_sets_the_default_device(lib):
    with lib.device("cpu") as where:
        assert lib.get_default_device() == where and lib.ones(1).device == lib.device("cpu")
    assert lib.get_default_device() == lib.device("cpu")
    lib.backends.cudnn.benchmark = True  # tutorials switch these; chainrule accepts and ignores them
    lib.backends.cuda.matmul.allow_tf32 = False
    lib.backends.cudnn.benchmark = False


@pytest.mark.parametrize("lib", LIBS)
def test_module_to_keeps_parameter_identity(lib):
    lib.manual_seed(0)
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.Linear(4, 1))
    params = list(model.parameters())
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    assert model.to("cpu") is model and model.cpu() is model and model.to(lib.device("cpu")) is model
    model.to(lib.device("cpu"), lib.float64)
    assert [p is q for p, q in zip(model.parameters(), params)] == [True] * len(params)
    assert all(p.dtype == lib.float64 for p in params) and model[1].num_batches_tracked.dtype == lib.int64
    before = params[-2].detach().clone()  # the last layer's weight
    model(lib.arange(15, dtype=lib.float64).reshape(5, 3) ** 2).pow(2).sum().backward()  # (a plain sum after
    # BatchNorm has a zero weight gradient)
    opt.step()  # the optimizer built before .to still updates the same parameters
    assert not bool((params[-2] == before).all())
    model.to(dtype=lib.float32)
    assert params[0].dtype == lib.float32 and params[0].grad.dtype == lib.float32
    with pytest.raises(TypeError, match="floating point"):
        model.to(lib.int64)


@pytest.mark.parametrize("lib", LIBS)
def test_layers_take_device_and_dtype(lib):
    for layer in (lib.nn.Linear(2, 3, device="cpu", dtype=lib.float64),
                  lib.nn.Conv2d(1, 2, 3, device=lib.device("cpu"), dtype=lib.float64),
                  lib.nn.BatchNorm1d(3, device="cpu", dtype=lib.float64), lib.nn.PReLU(device="cpu")):
        assert {p.device.type for p in layer.parameters()} == {"cpu"}


def tutorial_program(torch):
    """The device selection of PyTorch's tutorials, written for torch; runs unchanged with chainrule."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if torch.accelerator.is_available():
        device = torch.accelerator.current_accelerator()
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    torch.manual_seed(0)
    torch.cuda.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.tensor(np.linspace(-1, 1, 40, dtype=np.float32).reshape(10, 4)).to(device)
    y = torch.arange(10, device=device) % 3
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(f"Using {device} device")
    return device.type, x.device == device, losses


def test_tutorial_device_selection_runs_unchanged_on_both(capsys):
    ours, theirs = tutorial_program(cr), tutorial_program(torch)
    assert ours[:2] == theirs[:2] and ours[1] is True  # the same device picked, the data moved there
    assert ours[2][-1] < ours[2][0] and theirs[2][-1] < theirs[2][0]  # both train (their initial weights differ)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1] == f"Using {ours[0]} device"
