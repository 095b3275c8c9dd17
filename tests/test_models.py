"""``chainrule.models``: LeNet-5 and the MLP — shapes, parameter counts, and agreement with PyTorch."""

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close

models = pytest.importorskip("chainrule.models")  # skipped, not broken, in the torch-oracle mode
LeNet5, MLP = models.LeNet5, models.MLP

pytestmark = pytest.mark.beyond_torch  # chainrule.models is chainrule's own module

TOL = dict(rtol=1e-5, atol=1e-6)  # float32 (helpers.F32)
# Adam divides by sqrt(v): a gradient differing in its last bits moves a parameter by ~1e-6 after 3 steps
STEP_TOL = dict(rtol=1e-4, atol=1e-5)


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_lenet5_is_importable_from_the_package():
    import chainrule.models

    assert chainrule.models.LeNet5 is LeNet5
    assert set(chainrule.models.__all__) >= {"LeNet5", "MLP"}


@pytest.mark.parametrize("size", [32, 28])
def test_lenet5_output_shape(size):
    model = LeNet5(input_size=size)
    out = model(cr.randn(3, 1, size, size))
    assert tuple(out.shape) == (3, 10)
    assert out.dtype == cr.float32


def test_lenet5_parameter_count_is_61706():
    # conv 1*6*25+6, conv 6*16*25+16, fc 400*120+120, 120*84+84, 84*10+10
    assert _count(LeNet5()) == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    assert _count(LeNet5(input_size=28)) == 61_706  # padding, not extra weights, handles 28x28


def test_lenet5_options():
    model = LeNet5(num_classes=3, in_channels=3)
    assert tuple(model(cr.randn(2, 3, 32, 32)).shape) == (2, 3)
    assert _count(model) == 3 * 6 * 25 + 6 + 2_416 + 48_120 + 10_164 + 84 * 3 + 3


def test_lenet5_wrong_input_size_fails_loudly():
    # 28x28 into the unpadded model: 16x4x4 = 256 features reach a layer expecting 400
    with pytest.raises(RuntimeError, match="input features 256 do not match .*in_features 400"):
        LeNet5()(cr.randn(1, 1, 28, 28))


def test_lenet5_state_dict_keys():
    keys = list(LeNet5().state_dict())
    assert keys == [f"features.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")] + [
        f"classifier.{i}.{p}" for i in (1, 3, 5) for p in ("weight", "bias")
    ]


@pytest.mark.parametrize(
    "kwargs, in_shape, n_params",
    [
        (dict(), (4, 1, 28, 28), 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10),
        (dict(in_features=1024), (4, 1, 32, 32), 1024 * 512 + 512 + 512 * 512 + 512 + 5130),
        (dict(in_features=6, hidden=(5,), num_classes=3), (2, 6), 6 * 5 + 5 + 5 * 3 + 3),
        (dict(in_features=6, hidden=(), num_classes=3), (2, 2, 3), 6 * 3 + 3),
    ],
)
def test_mlp_shapes_and_parameter_counts(kwargs, in_shape, n_params):
    model = MLP(**kwargs)
    out = model(cr.randn(*in_shape))
    assert tuple(out.shape) == (in_shape[0], kwargs.get("num_classes", 10))
    assert _count(model) == n_params


# ----------------------------------------------------------------------------------------------
# against PyTorch, weights copied over
# ----------------------------------------------------------------------------------------------
class TorchLeNet5(torch.nn.Module):
    """The same topology in PyTorch, with the same attribute names (so state dicts match)."""

    def __init__(self, input_size=32):
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=(32 - input_size) // 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _copy_weights(ours, theirs):
    state = ours.state_dict()
    assert set(state) == set(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(np.array(v.numpy(), copy=True)) for k, v in state.items()})


@pytest.mark.parametrize("size", [32, 28])
def test_lenet5_forward_backward_matches_torch(size):
    model = LeNet5(input_size=size)
    reference = TorchLeNet5(input_size=size)
    _copy_weights(model, reference)
    rng = np.random.default_rng(size)
    x = rng.standard_normal((5, 1, size, size)).astype(np.float32)
    y = rng.integers(0, 10, size=5)

    x_ours = cr.tensor(x, requires_grad=True)
    out = model(x_ours)
    loss = cr.nn.functional.cross_entropy(out, cr.tensor(y))
    loss.backward()

    x_ref = torch.tensor(x, requires_grad=True)
    out_ref = reference(x_ref)
    loss_ref = torch.nn.functional.cross_entropy(out_ref, torch.tensor(y))
    loss_ref.backward()

    assert_close(out, out_ref, **TOL, what="logits")
    assert_close(loss, loss_ref, **TOL, what="loss")
    assert_close(x_ours.grad, x_ref.grad, **TOL, what="input gradient")
    ref_params = dict(reference.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert names == list(ref_params)
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient"
        assert_close(p.grad, ref_params[name].grad, **TOL, what=f"grad of {name}")


def test_lenet5_training_steps_match_torch():
    """Three Adam steps on the same batches leave the same parameters (the CLI's training loop)."""
    model, reference = LeNet5(), TorchLeNet5()
    _copy_weights(model, reference)
    opt = cr.optim.Adam(model.parameters(), lr=2e-3)
    opt_ref = torch.optim.Adam(reference.parameters(), lr=2e-3)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal((8, 1, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, size=8)
        opt.zero_grad()
        cr.nn.functional.cross_entropy(model(cr.tensor(x)), cr.tensor(y)).backward()
        opt.step()
        opt_ref.zero_grad()
        torch.nn.functional.cross_entropy(reference(torch.tensor(x)), torch.tensor(y)).backward()
        opt_ref.step()
    ref_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p, ref_params[name], **STEP_TOL, what=f"{name} after 3 Adam steps")


def test_mlp_forward_backward_matches_torch():
    model = MLP(in_features=12, hidden=(7, 5), num_classes=4)
    reference = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 7), torch.nn.ReLU(), torch.nn.Linear(7, 5), torch.nn.ReLU(),
        torch.nn.Linear(5, 4),
    )
    state = {k.removeprefix("net."): torch.from_numpy(np.array(v.numpy(), copy=True))
             for k, v in model.state_dict().items()}
    reference.load_state_dict(state)
    x = np.random.default_rng(2).standard_normal((6, 3, 4)).astype(np.float32)
    out = model(cr.tensor(x))
    out_ref = reference(torch.tensor(x))
    assert_close(out, out_ref, **TOL, what="logits")
    (out * out).sum().backward()
    (out_ref * out_ref).sum().backward()
    ref_params = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.grad, ref_params[name.removeprefix("net.")].grad, **TOL, what=f"grad of {name}")
