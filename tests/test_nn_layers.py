"""Every layer and loss module against PyTorch with the weights copied over: outputs, input gradients
and parameter gradients; batch-norm running statistics over several steps; default initialisation
and ``nn.init``; a LeNet-5 training step end to end."""

import importlib
import math

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close

nn = importlib.import_module(cr.__name__ + ".nn")
init = importlib.import_module(cr.__name__ + ".nn.init")
TOL = dict(rtol=2e-5, atol=2e-6)


def copy_weights(src, dst):
    """Load a torch module's state into a chainrule one (through numpy)."""
    dst.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in src.state_dict().items()})


def run_pair(make, x, target=None, grad_out=True, seed=0, tol=TOL):
    """Build the layer in both libraries (weights copied), run forward and backward, compare everything."""
    t_mod, c_mod = make(torch), make(cr)
    copy_weights(t_mod, c_mod)
    assert t_mod.training == c_mod.training
    floating = x.dtype.kind == "f"
    tx = torch.tensor(x, requires_grad=floating)
    cx = cr.tensor(x, requires_grad=floating)
    if target is not None:
        t_out, c_out = t_mod(tx, torch.tensor(target)), c_mod(cx, cr.tensor(target))
    else:
        t_out, c_out = t_mod(tx), c_mod(cx)
    assert_close(c_out, t_out, what="output", **tol)
    if grad_out and t_out.requires_grad:
        g = np.random.default_rng(seed).standard_normal(tuple(t_out.shape)).astype(np.float32)
        t_out.backward(torch.tensor(g))
        c_out.backward(cr.tensor(g))
        if floating:
            assert_close(cx.grad, tx.grad, what="input grad", **tol)
        for (name, cp), (_, tp) in zip(c_mod.named_parameters(), t_mod.named_parameters()):
            assert_close(cp.grad, tp.grad, what=f"grad of {name}", **tol)
    for (name, cb), (_, tb) in zip(c_mod.named_buffers(), t_mod.named_buffers()):
        assert_close(cb, tb, what=f"buffer {name}", **tol)
    return t_mod, c_mod


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


LAYERS = {
    "Linear": (lambda lib: lib.nn.Linear(5, 3), (4, 5)),
    "Linear_nobias_3d": (lambda lib: lib.nn.Linear(5, 3, bias=False), (2, 4, 5)),
    "Conv2d": (lambda lib: lib.nn.Conv2d(3, 4, 3), (2, 3, 7, 6)),
    "Conv2d_strided": (lambda lib: lib.nn.Conv2d(3, 4, (3, 2), stride=2, padding=1, dilation=(1, 2)), (2, 3, 9, 8)),
    "Conv2d_groups_same": (lambda lib: lib.nn.Conv2d(4, 6, 3, padding="same", groups=2, bias=False), (2, 4, 6, 6)),
    "Conv2d_wide": (lambda lib: lib.nn.Conv2d(4, 36, 3, padding=1), (2, 4, 5, 5)),
    "Conv2d_reflect": (lambda lib: lib.nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 2, 5, 5)),
    "Conv2d_replicate": (lambda lib: lib.nn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode="replicate"), (2, 2, 5, 5)),
    "Conv2d_circular": (lambda lib: lib.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), (2, 2, 5, 5)),
    "MaxPool2d": (lambda lib: lib.nn.MaxPool2d(2), (2, 3, 6, 6)),
    "MaxPool2d_overlap": (lambda lib: lib.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 7, 6)),
    "AvgPool2d": (lambda lib: lib.nn.AvgPool2d(2), (2, 3, 6, 6)),
    "AvgPool2d_pad": (lambda lib: lib.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 7, 6)),
    "ReLU": (lambda lib: lib.nn.ReLU(), (3, 4)),
    "LeakyReLU": (lambda lib: lib.nn.LeakyReLU(0.1), (3, 4)),
    "PReLU": (lambda lib: lib.nn.PReLU(), (3, 4)),
    "PReLU_channels": (lambda lib: lib.nn.PReLU(3, init=0.1), (2, 3, 4, 4)),
    "Sigmoid": (lambda lib: lib.nn.Sigmoid(), (3, 4)),
    "Tanh": (lambda lib: lib.nn.Tanh(), (3, 4)),
    "Softmax": (lambda lib: lib.nn.Softmax(dim=1), (3, 4)),
    "LogSoftmax": (lambda lib: lib.nn.LogSoftmax(dim=-1), (3, 4)),
    "Flatten": (lambda lib: lib.nn.Flatten(), (2, 3, 4)),
    "Flatten_range": (lambda lib: lib.nn.Flatten(0, 1), (2, 3, 4)),
    "Unflatten": (lambda lib: lib.nn.Unflatten(1, (2, 3)), (4, 6)),
    "Identity": (lambda lib: lib.nn.Identity(54, unused="x"), (3, 4)),
    "Dropout_eval": (lambda lib: lib.nn.Dropout(0.5).eval(), (3, 4)),
    "Sequential": (lambda lib: lib.nn.Sequential(lib.nn.Linear(4, 6), lib.nn.ReLU(), lib.nn.Linear(6, 2)), (5, 4)),
    "BatchNorm1d": (lambda lib: lib.nn.BatchNorm1d(4), (6, 4)),
    "BatchNorm1d_3d": (lambda lib: lib.nn.BatchNorm1d(3, momentum=0.3), (4, 3, 5)),
    "BatchNorm2d": (lambda lib: lib.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "BatchNorm2d_noaffine": (lambda lib: lib.nn.BatchNorm2d(3, affine=False), (4, 3, 2, 2)),
    "BatchNorm2d_nostats": (lambda lib: lib.nn.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 2)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch(name):
    make, shape = LAYERS[name]
    x = randn(*shape)
    if name in ("ReLU", "LeakyReLU", "PReLU", "PReLU_channels"):
        x = (np.round(x * 10) / 10 + 0.05).astype(np.float32)  # away from the kink
    if name.startswith("PReLU"):
        def make(lib, _make=make):  # noqa: E306 - a non-default slope so the weight gradient matters
            module = _make(lib)
            with (torch.no_grad() if lib is torch else cr.no_grad()):
                module.weight.copy_(lib.tensor(np.linspace(0.1, 0.4, module.weight.numel()).astype(np.float32)))
            return module
    run_pair(make, x)


@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (8, 3)), ("BatchNorm2d", (4, 3, 3, 2))])
def test_batchnorm_running_stats_over_steps_then_eval(cls, shape, momentum):
    t_bn = getattr(torch.nn, cls)(3, momentum=momentum)
    c_bn = getattr(nn, cls)(3, momentum=momentum)
    copy_weights(t_bn, c_bn)
    for step in range(4):
        x = randn(*shape, seed=step) * (step + 1) + step
        t_out, c_out = t_bn(torch.tensor(x)), c_bn(cr.tensor(x))
        assert_close(c_out, t_out, **TOL)
    assert_close(c_bn.running_mean, t_bn.running_mean, **TOL)
    assert_close(c_bn.running_var, t_bn.running_var, **TOL)
    assert int(c_bn.num_batches_tracked.item()) == int(t_bn.num_batches_tracked.item()) == 4
    t_bn.eval(), c_bn.eval()
    x = randn(*shape, seed=9)
    assert_close(c_bn(cr.tensor(x)), t_bn(torch.tensor(x)), **TOL)


def test_batchnorm_input_dim_errors():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(cr.randn(2, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(cr.randn(2, 3, 4, 5))


def test_maxpool_return_indices_module():
    x = randn(2, 3, 6, 5)
    t_out, t_idx = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    c_out, c_idx = nn.MaxPool2d(2, return_indices=True)(cr.tensor(x))
    assert_close(c_out, t_out)
    np.testing.assert_array_equal(c_idx.numpy(), t_idx.numpy())


def test_dropout_module_train_and_eval():
    drop = nn.Dropout(0.4)
    x = cr.ones(100, 100)
    y = drop(x).numpy()
    assert 0.55 < (y != 0).mean() < 0.65
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    with pytest.raises(ValueError):
        nn.Dropout(-0.1)


def test_embedding_matches_torch():
    idx = np.array([[0, 2, 4], [4, 3, 0]], dtype=np.int64)
    run_pair(lambda lib: lib.nn.Embedding(5, 3, padding_idx=4), idx)


LOSSES = {
    "MSELoss": (lambda lib: lib.nn.MSELoss(), "regression"),
    "MSELoss_sum": (lambda lib: lib.nn.MSELoss(reduction="sum"), "regression"),
    "L1Loss": (lambda lib: lib.nn.L1Loss(), "regression"),
    "L1Loss_none": (lambda lib: lib.nn.L1Loss(reduction="none"), "regression"),
    "SmoothL1Loss": (lambda lib: lib.nn.SmoothL1Loss(beta=0.5), "regression"),
    "CrossEntropyLoss": (lambda lib: lib.nn.CrossEntropyLoss(), "classes"),
    "CrossEntropyLoss_full": (lambda lib: lib.nn.CrossEntropyLoss(
        weight=lib.tensor([1.0, 0.5, 2.0, 1.5]), ignore_index=2, label_smoothing=0.1), "classes"),
    "CrossEntropyLoss_none": (lambda lib: lib.nn.CrossEntropyLoss(reduction="none", ignore_index=1), "classes"),
    "CrossEntropyLoss_probs": (lambda lib: lib.nn.CrossEntropyLoss(label_smoothing=0.2), "probs"),
    "NLLLoss": (lambda lib: lib.nn.NLLLoss(weight=lib.tensor([1.0, 0.5, 2.0, 1.5])), "log_probs"),
    "NLLLoss_sum": (lambda lib: lib.nn.NLLLoss(reduction="sum", ignore_index=0), "log_probs"),
    "BCEWithLogitsLoss": (lambda lib: lib.nn.BCEWithLogitsLoss(), "binary"),
    "BCEWithLogitsLoss_weights": (lambda lib: lib.nn.BCEWithLogitsLoss(
        weight=lib.tensor([1.0, 2.0, 0.5, 1.0]), pos_weight=lib.tensor([3.0, 1.0, 0.5, 2.0])), "binary"),
    "BCELoss": (lambda lib: lib.nn.BCELoss(), "binary_prob"),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_module_matches_torch(name):
    make, kind = LOSSES[name]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    if kind == "regression":
        target = rng.standard_normal((6, 4)).astype(np.float32)
    elif kind in ("classes", "log_probs"):
        target = rng.integers(0, 4, 6).astype(np.int64)
        if kind == "log_probs":
            x = (x - np.log(np.exp(x).sum(1, keepdims=True))).astype(np.float32)
    elif kind == "probs":
        e = np.exp(rng.standard_normal((6, 4)))
        target = (e / e.sum(1, keepdims=True)).astype(np.float32)
    elif kind == "binary":
        target = rng.uniform(0, 1, (6, 4)).astype(np.float32)
    else:
        x = rng.uniform(0.05, 0.95, (6, 4)).astype(np.float32)
        target = rng.uniform(0, 1, (6, 4)).astype(np.float32)
    run_pair(make, x, target=target)


def test_loss_modules_register_weights_as_buffers():
    loss = nn.CrossEntropyLoss(weight=cr.tensor([1.0, 2.0]))
    assert "weight" in dict(loss.named_buffers())
    assert list(nn.BCEWithLogitsLoss(pos_weight=cr.ones(3)).state_dict()) == ["pos_weight"]
    assert list(nn.MSELoss().state_dict()) == []


# --- initialisation -----------------------------------------------------------------------------
def test_default_init_of_linear_and_conv():
    cr.manual_seed(0)
    lin = nn.Linear(300, 200)
    bound = 1 / math.sqrt(300)
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert np.abs(lin.bias.detach().numpy()).max() <= bound
    conv = nn.Conv2d(16, 64, 5, groups=2)  # fan_in = 16 / 2 * 5 * 5
    bound = 1 / math.sqrt(8 * 25)
    w = conv.weight.detach().numpy()
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert np.abs(conv.bias.detach().numpy()).max() <= bound
    assert lin.weight.requires_grad and lin.weight.is_leaf


@pytest.mark.parametrize("nonlinearity,param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                                ("tanh", None), ("relu", None), ("leaky_relu", None),
                                                ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


@pytest.mark.parametrize("fn,kwargs,std", [
    ("xavier_uniform_", dict(gain=2.0), lambda fi, fo: 2.0 * math.sqrt(2.0 / (fi + fo))),
    ("xavier_normal_", dict(), lambda fi, fo: math.sqrt(2.0 / (fi + fo))),
    ("kaiming_uniform_", dict(nonlinearity="relu"), lambda fi, fo: math.sqrt(2.0) / math.sqrt(fi)),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="relu"), lambda fi, fo: math.sqrt(2.0) / math.sqrt(fo)),
    ("kaiming_uniform_", dict(a=math.sqrt(5)), lambda fi, fo: 1 / math.sqrt(3 * fi)),
])
def test_init_statistics(fn, kwargs, std):
    cr.manual_seed(1)
    t = cr.empty(256, 64, 3, 3, requires_grad=True)
    assert getattr(init, fn)(t, **kwargs) is t
    fan_in, fan_out = 64 * 9, 256 * 9
    assert t.detach().numpy().std() == pytest.approx(std(fan_in, fan_out), rel=0.02)
    if "uniform" in fn:
        assert np.abs(t.detach().numpy()).max() <= math.sqrt(3) * std(fan_in, fan_out) * (1 + 1e-6)
    assert t.requires_grad and t.grad_fn is None


def test_simple_inits():
    t = cr.empty(3, 4)
    init.constant_(t, 0.5)
    assert np.all(t.numpy() == 0.5)
    init.zeros_(t)
    assert not t.numpy().any()
    init.ones_(t)
    assert np.all(t.numpy() == 1)
    init.eye_(t)
    np.testing.assert_array_equal(t.numpy(), np.eye(3, 4))
    init.uniform_(t, -2, -1)
    assert t.numpy().min() >= -2 and t.numpy().max() <= -1
    cr.manual_seed(0)
    big = cr.empty(20000)
    init.normal_(big, 3.0, 0.5)
    assert big.numpy().mean() == pytest.approx(3.0, abs=0.02) and big.numpy().std() == pytest.approx(0.5, rel=0.03)
    init.trunc_normal_(big, mean=0.0, std=1.0, a=-1.0, b=0.5)
    assert big.numpy().min() >= -1.0 and big.numpy().max() <= 0.5
    with pytest.raises(ValueError):
        init.xavier_uniform_(cr.empty(3))
    with pytest.raises(ValueError):
        init.kaiming_uniform_(cr.empty(3, 3), mode="fan_middle")


def test_init_orthogonal():
    t = cr.empty(4, 6)
    init.orthogonal_(t)
    m = t.numpy()
    np.testing.assert_allclose(m @ m.T, np.eye(4), atol=1e-5)


# --- a whole network -------------------------------------------------------------------------------
def _lenet(lib):
    tnn = lib.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))


def test_lenet_training_step_matches_torch():
    t_net, c_net = _lenet(torch), _lenet(cr)
    copy_weights(t_net, c_net)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    for _ in range(2):  # two SGD steps: the second starts from updated weights
        t_loss = torch.nn.functional.cross_entropy(t_net(torch.tensor(x)), torch.tensor(y))
        c_loss = cr_F().cross_entropy(c_net(cr.tensor(x)), cr.tensor(y))
        assert c_loss.item() == pytest.approx(t_loss.item(), rel=1e-5)
        t_net.zero_grad(), c_net.zero_grad()
        t_loss.backward(), c_loss.backward()
        for (name, cp), (_, tp) in zip(c_net.named_parameters(), t_net.named_parameters()):
            assert_close(cp.grad, tp.grad, rtol=1e-4, atol=1e-5, what=name)
        with torch.no_grad():
            for p in t_net.parameters():
                p -= 0.1 * p.grad
        with cr.no_grad():
            for p in c_net.parameters():
                p -= 0.1 * p.grad


def cr_F():
    return importlib.import_module(cr.__name__ + ".nn.functional")
