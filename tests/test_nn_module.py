"""``nn.Module`` and ``nn.Parameter``: registration, traversal (shared parameters counted once),
state dicts (round trips, strict and non-strict loading), modes, conversions, hooks (forward,
forward pre-, full backward and backward pre-hooks, compared with PyTorch), containers, repr, copy."""

import copy
import importlib
from collections import OrderedDict

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close

nn = importlib.import_module(cr.__name__ + ".nn")
F = importlib.import_module(cr.__name__ + ".nn.functional")


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.register_buffer("scale", cr.ones(4))
        self.register_buffer("cache", cr.zeros(2), persistent=False)

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2)
        self.alpha = nn.Parameter(cr.tensor(0.5))

    def forward(self, x):
        return self.head(self.block(x).relu()) * self.alpha


# --- Parameter ------------------------------------------------------------------------------------
def test_parameter_basics():
    data = cr.tensor([1.0, 2.0])
    p = nn.Parameter(data)
    assert isinstance(p, cr.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    assert not nn.Parameter(data, requires_grad=False).requires_grad
    with cr.no_grad():
        p.mul_(2)
    np.testing.assert_array_equal(data.numpy(), [2.0, 4.0])  # shares memory with its data
    assert not isinstance(p * 2, nn.Parameter)
    assert isinstance(copy.deepcopy(p), nn.Parameter)


# --- registration and traversal -----------------------------------------------------------------------
def test_registration_dicts_and_names():
    net = Net()
    assert isinstance(net._modules, dict) and list(net._modules) == ["block", "head"]  # ordered
    assert list(net._parameters) == ["alpha"]
    assert [n for n, _ in net.named_parameters()] == [
        "alpha", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "block.scale", "block.cache", "block.bn.running_mean", "block.bn.running_var",
        "block.bn.num_batches_tracked"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "block.bn", "head"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]
    assert [n for n, _ in net.named_parameters(prefix="model", recurse=False)] == ["model.alpha"]
    assert len(list(net.modules())) == 5
    assert net.get_submodule("block.fc") is net.block.fc
    assert net.get_parameter("block.fc.bias") is net.block.fc.bias


def test_names_match_torch_for_the_same_model():
    def build(lib):
        tnn = lib.nn
        return tnn.Sequential(OrderedDict(conv=tnn.Conv2d(1, 2, 3), act=tnn.ReLU(),
                                          body=tnn.Sequential(tnn.Linear(2, 2), tnn.BatchNorm1d(2))))

    t, c = build(torch), build(cr)
    for attr in ("named_parameters", "named_buffers", "named_modules"):
        assert [n for n, _ in getattr(c, attr)()] == [n for n, _ in getattr(t, attr)()]
    assert list(c.state_dict()) == list(t.state_dict())


def test_shared_parameters_counted_once():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4
    assert len(list(model.modules())) == 3
    assert len(list(model.named_modules(remove_duplicate=False))) == 4
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight  # one parameter in two modules
    pair = nn.ModuleList([a, b])
    assert sum(p.numel() for p in pair.parameters()) == 4 + 2 + 2


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(cr.ones(2))
    assert "w" in m._parameters
    m.sub = nn.Linear(1, 1)
    assert "sub" in m._modules
    m.register_buffer("buf", cr.zeros(3))
    m.buf = cr.ones(3)  # reassigning a buffer keeps it a buffer
    assert "buf" in m._buffers and m.buf.sum().item() == 3
    with pytest.raises(TypeError, match="w"):
        m.w = cr.ones(2)  # a plain tensor cannot replace a parameter
    m.w = None
    assert m._parameters["w"] is None and m.w is None
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("sub", nn.Parameter(cr.ones(1)))
    with pytest.raises(KeyError, match=r"\."):
        m.register_buffer("a.b", cr.ones(1))
    with pytest.raises(TypeError):
        m.register_buffer("x", [1, 2])
    with pytest.raises(AttributeError, match="nope"):
        _ = m.nope
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError, match="sub"):
        _ = m.sub
    m.sub = nn.ReLU()
    m.sub = nn.Parameter(cr.ones(1))  # a name moves from modules to parameters
    assert "sub" not in m._modules and "sub" in m._parameters


def test_parameter_before_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(cr.ones(1))

    with pytest.raises(AttributeError, match="__init__"):
        Bad()


def test_forward_missing_raises():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(cr.ones(1))


# --- state dict ---------------------------------------------------------------------------------------
def test_state_dict_contents_and_round_trip():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["alpha", "block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight",
                        "block.bn.bias", "block.bn.running_mean", "block.bn.running_var",
                        "block.bn.num_batches_tracked", "head.weight", "head.bias"]
    assert "block.cache" not in sd  # non-persistent buffer
    assert not sd["head.weight"].requires_grad
    assert sd["head.weight"].data_ptr() == net.head.weight.data_ptr() if hasattr(cr.Tensor, "data_ptr") else True
    other = Net()
    result = other.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    x = cr.randn(5, 3)
    net.eval(), other.eval()
    np.testing.assert_array_equal(net(x).detach().numpy(), other(x).detach().numpy())
    with cr.no_grad():
        net.head.weight.add_(1)
    assert not np.array_equal(net.head.weight.detach().numpy(), other.head.weight.detach().numpy())
    assert other.head.weight.requires_grad and isinstance(other.head.weight, nn.Parameter)


def test_state_dict_survives_save_and_load(tmp_path):
    net = Net()
    net(cr.randn(4, 3))  # moves the batch-norm statistics away from their initial values
    path = str(tmp_path / "net.ckpt")
    cr.save(net.state_dict(), path)
    other = Net()
    assert repr(other.load_state_dict(cr.load(path))) == "<All keys matched successfully>"
    for (name, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_state_dict_keep_vars():
    net = nn.Linear(2, 2)
    assert net.state_dict(keep_vars=True)["weight"] is net.weight


def test_load_state_dict_strict_errors_list_keys():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["head.extra"] = cr.ones(1)
    sd["ghost.weight"] = cr.ones(1)
    with pytest.raises(RuntimeError) as info:
        Net().load_state_dict(sd)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for Net" in msg
    assert 'Missing key(s) in state_dict: "head.bias"' in msg
    assert '"head.extra"' in msg and '"ghost.weight"' in msg and "Unexpected key(s)" in msg
    result = Net().load_state_dict(sd, strict=False)
    assert result.missing_keys == ["head.bias"]
    assert sorted(result.unexpected_keys) == ["ghost.weight", "head.extra"]
    assert result == (["head.bias"], result.unexpected_keys)


def test_load_state_dict_shape_mismatch_raises_even_non_strict():
    sd = nn.Linear(3, 2).state_dict()
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape"):
            nn.Linear(4, 2).load_state_dict(sd, strict=strict)


def test_load_state_dict_matches_torch_error_text():
    def message(lib):
        with pytest.raises(RuntimeError) as info:
            lib.nn.Linear(3, 2).load_state_dict({"weight": lib.ones(2, 3), "extra": lib.ones(1)})
        return str(info.value)

    assert message(cr) == message(torch)


def test_load_state_dict_copies_into_existing_parameters():
    net = nn.Linear(2, 2)
    weight = net.weight
    net.load_state_dict({"weight": cr.full((2, 2), 3.0), "bias": cr.zeros(2)})
    assert net.weight is weight and weight.sum().item() == 12


# --- modes and conversions -------------------------------------------------------------------------
def test_train_eval_propagate():
    net = Net()
    assert net.training and net.block.bn.training
    assert net.eval() is net
    assert not net.training and not net.block.bn.training and not net.block.fc.training
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError):
        net.train("yes")


def test_zero_grad():
    net = nn.Linear(3, 2)
    net(cr.randn(4, 3)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert net.weight.grad is not None and not net.weight.grad.numpy().any()
    net.zero_grad()
    assert net.weight.grad is None and net.bias.grad is None


def test_apply_and_requires_grad():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "Block", "Linear", "Net"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_to_double_and_float():
    net = Net()
    net.block.fc(cr.randn(2, 3)).sum().backward()
    grad = net.block.fc.weight
    assert net.double() is net
    assert all(str(p.dtype).endswith("float64") for p in net.parameters())
    assert str(net.block.bn.running_mean.dtype).endswith("float64")
    assert str(net.block.bn.num_batches_tracked.dtype).endswith("int64")
    assert str(net.block.fc.weight.grad.dtype).endswith("float64")
    assert net.block.fc.weight is grad  # the same Parameter objects, converted in place
    out = net(cr.randn(5, 3, dtype=cr.float64))
    assert str(out.dtype).endswith("float64")
    net.float()
    assert all(str(p.dtype).endswith("float32") for p in net.parameters())
    net.to(cr.float64)
    assert str(net.head.bias.dtype).endswith("float64")
    with pytest.raises(TypeError):
        net.to(cr.int64)


def test_deepcopy_is_independent_and_keeps_sharing():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, lin)
    clone = copy.deepcopy(model)
    assert clone[0] is clone[1] and clone[0] is not lin
    assert clone[0].weight is not lin.weight
    np.testing.assert_array_equal(clone[0].weight.detach().numpy(), lin.weight.detach().numpy())
    with cr.no_grad():
        clone[0].weight.fill_(0)
    assert lin.weight.detach().numpy().any()
    assert isinstance(clone[0].weight, nn.Parameter)


# --- hooks ---------------------------------------------------------------------------------------
def test_forward_pre_hook_and_forward_hook_replace_values():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(args[0].sum().item()) or out + 100)
    x = cr.ones(1, 2)
    out = lin(x)
    np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None] + 100, rtol=1e-6)
    assert calls == [0.0]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(lin(x).detach().numpy(), F.linear(x, lin.weight, lin.bias).detach().numpy())


def test_hook_order_prepend_and_kwargs():
    m = nn.Identity()
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("a"))
    m.register_forward_hook(lambda mod, a, o: order.append("b"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a, k: (a, {}), with_kwargs=True)
    m.register_forward_hook(lambda mod, a, k, o: order.append(("kw", k)), with_kwargs=True)
    m(cr.ones(1))
    assert order == ["b", "a", ("kw", {})]


def _backward_hook_run(lib):
    tnn = lib.nn
    torch_like = lib is torch
    lin = tnn.Linear(3, 2)
    with (torch.no_grad() if torch_like else cr.no_grad()):
        lin.weight.copy_(lib.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 5))
        lin.bias.copy_(lib.tensor([0.5, -0.5]))
    seen = []

    def hook(module, grad_input, grad_output):
        seen.append(([None if g is None else g.detach().numpy().copy() for g in grad_input],
                     [g.detach().numpy().copy() for g in grad_output]))
        return (grad_input[0] * 10,)

    handle = lin.register_full_backward_hook(hook)
    x = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3), requires_grad=True)
    (lin(x) ** 2).sum().backward()
    handle.remove()
    x2 = lib.tensor(np.ones((1, 3), np.float32), requires_grad=True)
    lin(x2).sum().backward()
    return seen, x.grad.numpy(), lin.weight.grad.numpy(), x2.grad.numpy()


def test_full_backward_hook_matches_torch():
    t_seen, t_xgrad, t_wgrad, t_x2 = _backward_hook_run(torch)
    c_seen, c_xgrad, c_wgrad, c_x2 = _backward_hook_run(cr)
    assert len(c_seen) == len(t_seen) == 1
    for got, want in zip(c_seen[0][0] + c_seen[0][1], t_seen[0][0] + t_seen[0][1]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(c_xgrad, t_xgrad, rtol=1e-6)  # grad_input replaced: x10
    np.testing.assert_allclose(c_wgrad, t_wgrad, rtol=1e-6)
    np.testing.assert_allclose(c_x2, t_x2, rtol=1e-6)  # hook removed: plain gradient


def test_full_backward_hook_input_without_grad_and_pre_hook():
    lin = nn.Linear(2, 2)
    seen = []
    lin.register_full_backward_pre_hook(lambda m, g_out: (g_out[0] * 2,))
    lin.register_full_backward_hook(lambda m, g_in, g_out: seen.append((g_in, g_out[0].numpy().copy())))
    lin(cr.ones(3, 2)).sum().backward()  # the input does not require grad
    assert len(seen) == 1 and seen[0][0] == (None,)
    np.testing.assert_allclose(seen[0][1], np.full((3, 2), 2.0))
    np.testing.assert_allclose(lin.bias.grad.numpy(), [6.0, 6.0])  # the doubled grad_output flowed on


def test_backward_hook_on_sequential_sees_its_input_and_output():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    shapes = []
    model.register_full_backward_hook(lambda m, gi, go: shapes.append((tuple(gi[0].shape), tuple(go[0].shape))))
    x = cr.randn(4, 2, requires_grad=True)
    model(x).sum().backward()
    assert shapes == [((4, 2), (4, 1))]


def test_backward_hook_returning_wrong_count_raises():
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input"):
        lin(cr.randn(1, 2, requires_grad=True)).sum().backward()


# --- containers and printing --------------------------------------------------------------------------
def test_sequential_indexing_and_editing():
    a, b, c = nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c] and list(sub._modules) == ["1", "2"]
    seq.append(nn.Tanh())
    assert len(seq) == 4 and isinstance(seq[3], nn.Tanh)
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is c
    seq[0] = nn.Identity()
    assert isinstance(seq[0], nn.Identity)
    with pytest.raises(IndexError):
        seq[10]
    named = nn.Sequential(OrderedDict(first=nn.Linear(2, 2), second=nn.ReLU()))
    assert named.first is named[0]
    x = cr.randn(3, 2)
    np.testing.assert_allclose(named(x).detach().numpy(), named.second(named.first(x)).detach().numpy())


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    assert isinstance(layers[-1], nn.Tanh) and isinstance(layers[1:3], nn.ModuleList)
    layers.insert(0, nn.Identity())
    assert isinstance(layers[0], nn.Identity) and len(layers) == 6
    del layers[0]
    assert list(layers._modules) == [str(i) for i in range(5)]
    d = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert "a" in d and list(d.keys()) == ["a", "b"] and len(d) == 2
    d["c"] = nn.Tanh()
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]
    assert list(d) == ["a", "b", "c"]


def test_reprs_match_torch():
    def build(lib):
        tnn = lib.nn
        return tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(inplace=True), tnn.MaxPool2d(2),
            tnn.Conv2d(6, 16, (3, 2), stride=2, dilation=2, groups=2, bias=False, padding_mode="reflect"),
            tnn.Conv2d(16, 16, 3, padding="same"),
            tnn.AvgPool2d(2, stride=1), tnn.BatchNorm2d(16, momentum=None), tnn.Dropout(0.25), tnn.Flatten(),
            tnn.Unflatten(1, (2, 8)), tnn.Flatten(), tnn.Linear(400, 120), tnn.LeakyReLU(0.2), tnn.PReLU(120),
            tnn.Sigmoid(), tnn.Tanh(), tnn.Softmax(dim=1), tnn.LogSoftmax(dim=-1), tnn.Identity(),
            tnn.BatchNorm1d(3, affine=False, track_running_stats=False),
            tnn.ModuleList([tnn.Linear(2, 2), tnn.Linear(2, 2), tnn.ReLU()]),
            tnn.ModuleDict({"head": tnn.Linear(2, 1)}),
            tnn.CrossEntropyLoss(), tnn.MSELoss(), tnn.BCEWithLogitsLoss(),
        )

    assert repr(build(cr)) == repr(build(torch))


def test_extra_repr_used_by_custom_module():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(1, 1)

        def extra_repr(self):
            return "size=3"

    assert repr(Custom()) == "Custom(\n  size=3\n  (inner): Linear(in_features=1, out_features=1, bias=True)\n)"


def test_module_training_loop_reduces_loss():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    x = cr.tensor(np.random.default_rng(0).standard_normal((32, 2)).astype(np.float32))
    y = (x[:, :1] * x[:, 1:]).detach()
    losses = []
    for _ in range(60):
        model.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        with cr.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_grad_of_module_output_matches_torch_with_copied_weights():
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))

    t, c = build(torch), build(cr)
    c.load_state_dict({k: cr.tensor(v.numpy()) for k, v in t.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    t_out, c_out = t(torch.tensor(x)), c(cr.tensor(x))
    assert_close(c_out, t_out)
    t_out.pow(2).sum().backward()
    c_out.pow(2).sum().backward()
    for (name, cp), (_, tp) in zip(c.named_parameters(), t.named_parameters()):
        assert_close(cp.grad, tp.grad, what=name)
