"""``cr.summary(model, input_size)``: layers, output shapes, and parameters used vs registered."""

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

pytestmark = pytest.mark.beyond_torch  # cr.summary is chainrule's own (PyTorch has no summary)


class ReusesConv1(nn.Module):
    """The issue's example: owns three 3x3 convolutions (9 weights each), uses conv1 twice."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 3, bias=False)
        self.conv2 = nn.Conv2d(1, 1, 3, bias=False)
        self.conv3 = nn.Conv2d(1, 1, 3, bias=False)

    def forward(self, x):
        return self.conv1(self.conv1(x))


def _number_after(label, text):
    match = re.search(re.escape(label) + r"\s*([\d,]+)", text)
    assert match, f"no {label!r} line in the table:\n{text}"
    return int(match.group(1).replace(",", ""))


def test_reused_conv_counts_9_used_and_27_registered(capsys):
    s = cr.summary(ReusesConv1(), (1, 1, 8, 8))
    assert s.used_params == 9
    assert s.registered_params == 27
    printed = capsys.readouterr().out
    assert printed.strip() == str(s).strip()
    assert _number_after("used by forward:", printed) == 9
    assert _number_after("registered:", printed) == 27
    # one row per call: conv1 twice, the second marked as shared and not counted again
    assert [(r.name, r.output_shape) for r in s.rows] == [("conv1", (1, 1, 6, 6)), ("conv1", (1, 1, 4, 4))]
    assert [r.params for r in s.rows] == [9, 0]
    assert not s.rows[0].repeated and s.rows[1].repeated
    assert "(shared)" in printed
    assert "conv2" not in printed and "conv3" not in printed  # never called: no row


def test_print_table_false_prints_nothing(capsys):
    s = cr.summary(ReusesConv1(), (1, 1, 8, 8), print_table=False)
    assert capsys.readouterr().out == ""
    assert (s.used_params, s.registered_params) == (9, 27)


LENET_ROWS = [
    ("features", "Sequential", (1, 16, 5, 5), 0),
    ("features.0", "Conv2d", (1, 6, 28, 28), 6 * 25 + 6),
    ("features.1", "ReLU", (1, 6, 28, 28), 0),
    ("features.2", "MaxPool2d", (1, 6, 14, 14), 0),
    ("features.3", "Conv2d", (1, 16, 10, 10), 16 * 6 * 25 + 16),
    ("features.4", "ReLU", (1, 16, 10, 10), 0),
    ("features.5", "MaxPool2d", (1, 16, 5, 5), 0),
    ("classifier", "Sequential", (1, 10), 0),
    ("classifier.0", "Flatten", (1, 400), 0),
    ("classifier.1", "Linear", (1, 120), 400 * 120 + 120),
    ("classifier.2", "ReLU", (1, 120), 0),
    ("classifier.3", "Linear", (1, 84), 120 * 84 + 84),
    ("classifier.4", "ReLU", (1, 84), 0),
    ("classifier.5", "Linear", (1, 10), 84 * 10 + 10),
]


def test_lenet5_rows_shapes_and_total(capsys):
    from chainrule.models import LeNet5

    s = cr.summary(LeNet5(), (1, 1, 32, 32))
    assert [(r.name, r.kind, r.output_shape, r.params) for r in s.rows] == LENET_ROWS
    assert s.used_params == s.registered_params == s.trainable_params == 61_706
    assert s.param_bytes == 61_706 * 4
    printed = capsys.readouterr().out
    assert "[1, 6, 28, 28]" in printed and "[1, 10]" in printed
    assert _number_after("used by forward:", printed) == 61_706
    assert _number_after("registered:", printed) == 61_706
    assert "never used" not in printed  # the note appears only when the two counts differ


def test_lenet5_on_28x28_input_pads_to_the_same_shapes():
    from chainrule.models import LeNet5

    s = cr.summary(LeNet5(input_size=28), (2, 1, 28, 28), print_table=False)
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["features.0"] == (2, 6, 28, 28)
    assert shapes["classifier"] == (2, 10)
    assert s.used_params == 61_706


class SharedLinear(nn.Module):
    """One Linear registered under two names and called twice, plus a head that is used."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.fc_again = self.fc  # the same module under a second name
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.fc_again(self.fc(x)).relu())


def test_shared_linear_used_twice_counts_once():
    s = cr.summary(SharedLinear(), (3, 4), print_table=False)
    assert s.used_params == s.registered_params == 4 * 4 + 4 + 4 * 2 + 2
    assert [r.params for r in s.rows] == [20, 0, 10]
    assert [r.repeated for r in s.rows] == [False, True, False]


class SharedWeight(nn.Module):
    """Two distinct Linear modules holding the same Parameter object (tied weights)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 5, bias=False)
        self.b = nn.Linear(5, 5, bias=False)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


def test_tied_parameter_counts_once():
    s = cr.summary(SharedWeight(), (2, 5), print_table=False)
    assert s.used_params == s.registered_params == 25
    assert [r.params for r in s.rows] == [25, 0]


class OwnParameter(nn.Module):
    """Parameters registered on the model itself (not in a submodule) count as used."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(cr.ones(3))
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return x * self.scale


def test_model_own_parameters_and_unused_submodule():
    s = cr.summary(OwnParameter(), (2, 3), print_table=False)
    assert s.used_params == 3
    assert s.registered_params == 3 + 12
    assert "never used" in str(s)


def test_frozen_parameters_are_registered_but_not_trainable():
    from chainrule.models import LeNet5

    model = LeNet5()
    for p in model.features.parameters():
        p.requires_grad_(False)
    s = cr.summary(model, (1, 1, 32, 32), print_table=False)
    assert s.registered_params == 61_706
    assert s.trainable_params == 61_706 - (156 + 2416)


class RecordsMode(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(4)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, self.drop.training, self.bn.training))
        return self.bn(self.drop(x))


@pytest.mark.parametrize("training", [True, False])
def test_training_mode_is_restored(training):
    model = RecordsMode()
    model.train(training)
    cr.summary(model, (1, 4), print_table=False)  # batch 1: only works in eval mode for BatchNorm
    assert model.seen == [(False, False, False)]  # runs in eval mode
    assert (model.training, model.drop.training, model.bn.training) == (training,) * 3
    # the BatchNorm running statistics were not touched by the summary pass
    np.testing.assert_array_equal(model.bn.running_mean.numpy(), np.zeros(4, np.float32))
    np.testing.assert_array_equal(model.bn.running_var.numpy(), np.ones(4, np.float32))


def test_mixed_modes_are_restored_per_module():
    """A frozen BatchNorm in eval inside a training model stays in eval after the summary."""
    model = RecordsMode()
    model.train()
    model.bn.eval()
    cr.summary(model, (1, 4), print_table=False)
    assert (model.training, model.drop.training, model.bn.training) == (True, True, False)


def test_no_hooks_left_and_grad_mode_untouched():
    model = ReusesConv1()
    cr.summary(model, (1, 1, 8, 8), print_table=False)
    assert cr.is_grad_enabled()
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    # the model still works normally and records the tape
    out = model(cr.ones(1, 1, 8, 8))
    assert out.requires_grad


def test_forward_error_propagates_and_cleans_up():
    model = ReusesConv1()
    model.train()
    with pytest.raises(RuntimeError, match="channels"):  # 2 channels into a 1-channel conv
        cr.summary(model, (1, 2, 8, 8), print_table=False)
    assert model.training
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.b = nn.Linear(5, 2)

    def forward(self, x, y):
        return self.a(x) + self.b(y)


def test_several_inputs():
    s = cr.summary(TwoInputs(), [(4, 3), (4, 5)], print_table=False)
    assert [(r.name, r.output_shape) for r in s.rows] == [("a", (4, 2)), ("b", (4, 2))]
    assert s.used_params == 8 + 12


def test_numpy_integer_sizes():
    s = cr.summary(TwoInputs().a, np.array([4, 3]), print_table=False)
    assert s.used_params == 8


def test_a_lone_layer_gets_its_own_row():
    s = cr.summary(nn.Linear(3, 2), (4, 3), print_table=False)
    assert [(r.name, r.kind, r.output_shape, r.params) for r in s.rows] == [("Linear", "Linear", (4, 2), 8)]
    assert s.used_params == s.registered_params == 8
    assert "Linear (Linear)" in str(s)
