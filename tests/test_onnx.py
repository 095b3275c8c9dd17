"""ONNX export: the files pass onnx.checker and onnxruntime computes what chainrule computes."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.beyond_torch  # chainrule.models and the exporter's own errors: not torch's API

TOL = dict(rtol=1e-5, atol=1e-5)


def _export(model, args, **kwargs):
    buf = io.BytesIO()
    cr.onnx.export(model, args, buf, **kwargs)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    return proto, ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])


def _reference(model, *args):
    model.eval()
    with cr.no_grad():
        out = model(*args)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _check(session, model, feeds):
    """Run the session on ``feeds`` (input name -> tensor) and compare with the model, output by output."""
    got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
    want = _reference(model, *feeds.values())
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, **TOL)


def _op_types(proto):
    return [n.op_type for n in proto.graph.node]


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


BATCH = {"input": {0: "batch"}, "logits": {0: "batch"}}


def test_lenet5_parity_with_dynamic_batch():
    from chainrule.models import LeNet5

    model = LeNet5()
    proto, session = _export(model, cr.randn(1, 1, 32, 32), input_names=["input"], output_names=["logits"],
                             dynamic_axes=BATCH)
    assert _op_types(proto) == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu",
                                "Gemm", "Relu", "Gemm"]
    assert _dims(proto.graph.input[0]) == ["batch", 1, 32, 32]
    assert _dims(proto.graph.output[0]) == ["batch", 10]
    assert {i.name for i in proto.graph.initializer} >= {"features.0.weight", "features.0.bias",
                                                         "classifier.5.weight"}
    for batch in (7, 1):
        _check(session, model, {"input": cr.randn(batch, 1, 32, 32)})


def test_lenet5_on_28x28_inputs():
    from chainrule.models import LeNet5

    model = LeNet5(input_size=28)
    _, session = _export(model, cr.randn(1, 1, 28, 28), input_names=["input"], output_names=["logits"],
                         dynamic_axes=BATCH)
    _check(session, model, {"input": cr.randn(7, 1, 28, 28)})


def test_mlp_parity_with_dynamic_batch():
    from chainrule.models import MLP

    model = MLP()
    proto, session = _export(model, cr.randn(1, 1, 28, 28), input_names=["input"], output_names=["logits"],
                             dynamic_axes={"input": [0], "logits": [0]})
    assert _op_types(proto) == ["Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    assert _dims(proto.graph.input[0]) == ["input_dynamic_axes_1", 1, 28, 28]
    _check(session, model, {"input": cr.randn(7, 1, 28, 28)})


class Mixer(nn.Module):
    """Custom forward code: elementwise ops, reshape/permute/matmul, cat, indexing, reductions."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.gate = nn.Parameter(cr.randn(8))

    def forward(self, x):  # x: (B, 4, 8)
        h = self.proj(x)  # Linear on a 3-D input
        scores = h @ h.transpose(1, 2) / 8 ** 0.5  # (B, 4, 4)
        h = F.softmax(scores, dim=-1) @ h
        h = h * cr.sigmoid(self.gate) + cr.tanh(x).exp() - 1.0
        flat = h.reshape(h.shape[0], -1)  # (B, 32): the batch size must not be baked in
        parts = cr.cat([flat, flat.abs().sqrt(), cr.where(flat > 0, flat, flat * 0.1)], dim=1)  # (B, 96)
        y = parts.view(-1, 3, 32).permute(0, 2, 1).mean(dim=2)  # (B, 32)
        y = y.clamp(min=-2.0, max=2.0) + y.amax(dim=1, keepdim=True) ** 2
        return y[:, :16] - y[:, 16:].flip(1), cr.stack([x[..., -1], x[:, :, 0]], dim=1).sum(dim=2)


def test_custom_forward_ops_with_dynamic_batch():
    model = Mixer()
    proto, session = _export(model, cr.randn(1, 4, 8), input_names=["x"], output_names=["y", "s"],
                             dynamic_axes={"x": {0: "B"}, "y": {0: "B"}, "s": {0: "B"}})
    ops = set(_op_types(proto))
    assert {"MatMul", "Concat", "Reshape", "Transpose", "Where", "Slice", "ReduceMean", "Clip"} <= ops
    for batch in (1, 7):
        _check(session, model, {"x": cr.randn(batch, 4, 8)})


def test_reshape_targets_do_not_hard_code_the_batch():
    class Views(nn.Module):
        def forward(self, x):  # (B, 2, 3, 4)
            a = x.flatten(1)  # (B, 24)
            b = x.reshape(-1, 12) * 2  # (2B, 12)
            c = x.permute(0, 2, 1, 3).reshape(x.shape[0], 3, 8)  # (B, 3, 8)
            return a.unsqueeze(1), b, c.flatten()

    model = Views()
    proto, session = _export(model, cr.randn(1, 2, 3, 4), input_names=["x"], dynamic_axes={"x": [0]})
    for init in proto.graph.initializer:
        if init.name.startswith("onnx::Shape"):
            assert 1 not in onnx.numpy_helper.to_array(init)[:1].tolist()  # a batch of 1 is never written out
    _check(session, model, {"x": cr.randn(5, 2, 3, 4)})


@pytest.mark.parametrize("conv", [
    dict(stride=1, padding=0),
    dict(stride=2, padding=1),
    dict(stride=1, padding=2, dilation=2),
    dict(stride=(2, 1), padding=(1, 0), groups=2),
    dict(padding="same", padding_mode="reflect"),
    dict(padding=1, bias=False),
])
def test_conv2d_options(conv):
    model = nn.Sequential(nn.Conv2d(4, 6, 3, **conv), nn.Tanh())
    _, session = _export(model, cr.randn(1, 4, 9, 10), input_names=["x"], dynamic_axes={"x": [0]})
    _check(session, model, {"x": cr.randn(3, 4, 9, 10)})


@pytest.mark.parametrize("pool", [
    nn.MaxPool2d(2),
    nn.MaxPool2d(3, stride=2, padding=1),
    nn.MaxPool2d(2, dilation=2),
    nn.AvgPool2d(2),
    nn.AvgPool2d(3, stride=2, padding=1),
    nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    nn.AdaptiveAvgPool2d(1),
])
def test_pooling(pool):
    model = nn.Sequential(nn.Conv2d(2, 3, 1), pool)
    _, session = _export(model, cr.randn(1, 2, 11, 11), input_names=["x"], dynamic_axes={"x": [0]})
    _check(session, model, {"x": cr.randn(2, 2, 11, 11)})


def test_batchnorm_eval_parity():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5), nn.BatchNorm1d(5, affine=False), nn.Dropout(0.5), nn.LeakyReLU(0.2),
        nn.Linear(5, 3), nn.LogSoftmax(dim=1),
    )
    model.train()
    with cr.no_grad():  # non-trivial running statistics, weights and biases
        for _ in range(3):
            model(cr.randn(8, 3, 8, 8) * 2 + 1)
        model[1].weight.mul_(1.5)
        model[1].bias.add_(0.3)
    proto, session = _export(model, cr.randn(1, 3, 8, 8), input_names=["x"], dynamic_axes={"x": [0]})
    assert model.training  # export ran in eval mode and gave the mode back
    assert _op_types(proto).count("BatchNormalization") == 2
    assert "Dropout" not in _op_types(proto)
    _check(session, model, {"x": cr.randn(6, 3, 8, 8)})


def test_activations_and_softmax():
    model = nn.Sequential(nn.Linear(6, 6), nn.Sigmoid(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6),
                          nn.LeakyReLU(), nn.Linear(6, 6), nn.ELU(), nn.Linear(6, 6), nn.Softmax(dim=1))
    proto, session = _export(model, cr.randn(1, 6), input_names=["x"], dynamic_axes={"x": [0]})
    assert _op_types(proto)[-1] == "Softmax"
    _check(session, model, {"x": cr.randn(4, 6)})


def test_opset_18_and_outputs_to_files(tmp_path):
    class Reduce(nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2)), x.amax(dim=-1), x.logsumexp(dim=1), x.sum(dim=2, keepdim=True)

    model = Reduce()
    path = tmp_path / "reduce.onnx"
    assert cr.onnx.export(model, (cr.randn(2, 3, 4),), str(path), opset_version=18,
                          input_names=["x"], dynamic_axes={"x": [0]}) is None
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 18
    _check(ort.InferenceSession(str(path)), model, {"x": cr.randn(5, 3, 4)})
    model_proto = cr.onnx.export(model, cr.randn(2, 3, 4), None)
    assert isinstance(model_proto, onnx.ModelProto)


def test_several_inputs_keyword_args_and_in_place_ops():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = nn.ReLU(inplace=True)

        def forward(self, x, y, scale=None):
            h = self.fc(x)
            h.mul_(2.0)
            h = self.act(h)
            return h + y * scale, h

    model = Two()
    args = (cr.randn(2, 4), cr.randn(2, 4), {"scale": cr.randn(4)})
    proto, session = _export(model, args, input_names=["x", "y", "scale"], output_names=["sum", "h"],
                             dynamic_axes={"x": [0], "y": [0]})
    assert [i.name for i in proto.graph.input] == ["x", "y", "scale"]
    _check(session, model, {"x": cr.randn(3, 4), "y": cr.randn(3, 4), "scale": cr.randn(4)})


def test_constant_folding_and_params_as_inputs():
    class Folded(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(cr.randn(3, 5))

        def forward(self, x):
            return x @ (self.w.t() * 2).exp()

    model = Folded()
    proto, session = _export(model, cr.randn(2, 5), input_names=["x"])
    assert _op_types(proto) == ["MatMul"]  # the parameter's transform is computed once, at export
    _check(session, model, {"x": cr.randn(2, 5)})
    proto, session = _export(model, cr.randn(2, 5), input_names=["x"], do_constant_folding=False)
    assert _op_types(proto) == ["Transpose", "Mul", "Exp", "MatMul"]
    _check(session, model, {"x": cr.randn(2, 5)})
    proto, _ = _export(model, cr.randn(2, 5), input_names=["x"], export_params=False, do_constant_folding=False)
    assert [i.name for i in proto.graph.input] == ["x", "w"]
    assert "w" not in {i.name for i in proto.graph.initializer}


def test_unsupported_op_names_the_op_and_module():
    class RawConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(cr.randn(2, 1, 3, 3))

        def forward(self, x):
            return F.conv2d(x, self.weight)

    model = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Identity(), RawConv()))
    with pytest.raises(cr.onnx.UnsupportedOperatorError, match=r"op 'im2col'.*module '1\.1' \(RawConv\)"):
        cr.onnx.export(model, cr.randn(1, 1, 5, 5), io.BytesIO())
    assert issubclass(cr.onnx.UnsupportedOperatorError, RuntimeError)


def test_unsupported_function_and_module_options():
    class Double(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    class UsesFunction(nn.Module):
        def forward(self, x):
            return Double.apply(x) + 1

    with pytest.raises(cr.onnx.UnsupportedOperatorError, match="Function 'Double'"):
        cr.onnx.export(UsesFunction(), cr.randn(3), io.BytesIO())
    with pytest.raises(cr.onnx.UnsupportedOperatorError, match=r"return_indices.*module '0' \(MaxPool2d\)"):
        cr.onnx.export(nn.Sequential(nn.MaxPool2d(2, return_indices=True)), cr.randn(1, 1, 4, 4), io.BytesIO())


def test_export_leaves_the_model_as_it_was():
    from chainrule.models import LeNet5

    model = LeNet5()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    cr.onnx.export(model, cr.randn(1, 1, 32, 32), io.BytesIO())
    assert model.training
    assert all("forward" not in m.__dict__ for m in model.modules())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert cr.autograd.grad_mode.state.tracer is None
    out = model(cr.randn(2, 1, 32, 32))
    assert out.requires_grad  # eager mode works as before


def test_onnx_package_is_optional():
    """Without the onnx package chainrule still imports; export says what to install."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'onnx' or name.startswith('onnx.'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import chainrule as cr\n"
        "from chainrule.models import MLP\n"
        "try:\n"
        "    cr.onnx.export(MLP(), cr.randn(1, 784), 'never.onnx')\n"
        "except ImportError as exc:\n"
        "    assert 'pip install onnx' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('export worked without onnx')\n"
    )
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_in_place_change_seen_through_a_view_warns():
    class ViewThenChange(nn.Module):
        def forward(self, x):
            y = x * 1.0
            flat = y.reshape(-1)
            y.mul_(2.0)  # eager mode: flat sees this change; a graph cannot
            return flat + 1

    with pytest.warns(UserWarning, match="mul_ changed a tensor in place"):
        cr.onnx.export(ViewThenChange(), cr.randn(2, 3), io.BytesIO())


def test_functional_linear_in_custom_forward_exports():
    onnxruntime = pytest.importorskip("onnxruntime")
    import chainrule.nn as nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(cr.randn(3, 5))

        def forward(self, x):
            return nn.functional.linear(x, self.w).relu()

    model = Head()
    x = cr.randn(2, 5)
    proto = cr.onnx.export(model, (x,), None, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    wide = cr.randn(7, 5)
    (got,) = session.run(None, {"x": wide.numpy()})
    with cr.no_grad():
        np.testing.assert_allclose(got, model(wide).numpy(), rtol=1e-5, atol=1e-6)


def test_converters_live_on_the_op_records():
    from chainrule.ops import elementwise, reduce

    assert elementwise.mul_op.export is not None and reduce.sum_op.export is not None
    assert reduce.argmax_op.export is not reduce.argmin_op.export  # one factory, bound to ArgMax and ArgMin
    assert not hasattr(cr.onnx, "OPS")  # no second registry keyed by op name


def test_export_runs_the_static_passes():
    class Twice(nn.Module):
        def forward(self, x):
            return x.exp() * 2 + x.exp(), x.exp() * 2  # one Exp and one Mul after common subexpressions

    proto, session = _export(Twice(), cr.randn(2, 3), input_names=["x"], dynamic_axes={"x": [0]})
    assert sorted(_op_types(proto)) == ["Add", "Exp", "Mul"]
    _check(session, Twice(), {"x": cr.randn(4, 3)})


def test_a_layer_stays_one_node_when_followed_by_a_view():
    """The permute after a Conv2d is not merged into the Conv2d's own ops: the layer stays one Conv."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(2))

    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = model

        def forward(self, x):
            return self.body[0](x).permute(0, 2, 3, 1), self.body(x).transpose(1, 2)

    wrapper = ChannelsLast()
    proto, session = _export(wrapper, cr.randn(1, 2, 6, 6), input_names=["x"], dynamic_axes={"x": [0]})
    assert _op_types(proto).count("Conv") == 1  # the same layer on the same input: computed once
    _check(session, wrapper, {"x": cr.randn(3, 2, 6, 6)})


def test_symbolic_sizes_reach_the_graph_at_run_time():
    class Sizes(nn.Module):
        def forward(self, x):  # (B, T, 4): both sizes dynamic
            return x.reshape(x.shape[0] * x.shape[1], 2, 2), x.mean(dim=(0, 1)), x.std(dim=1)

    model = Sizes()
    proto, session = _export(model, cr.randn(2, 3, 4), input_names=["x"], output_names=["a", "m", "s"],
                             dynamic_axes={"x": {0: "B", 1: "T"}, "s": {0: "B"}})
    assert _dims(proto.graph.output[2]) == ["B", 4]
    for shape in [(5, 7, 4), (1, 2, 4)]:
        _check(session, model, {"x": cr.randn(*shape)})


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4, padding_idx=0)
        self.head = nn.Linear(4, 2)

    def forward(self, tokens):
        return self.head(self.embed(tokens)).sum(1)


def test_embedding_exports_with_dynamic_batch_and_length():
    model = Tagger()
    proto, session = _export(model, cr.tensor([[1, 2, 3], [4, 0, 9]]), input_names=["tokens"],
                             output_names=["y"], dynamic_axes={"tokens": {0: "B", 1: "T"}, "y": {0: "B"}})
    assert "GatherElements" in set(_op_types(proto))
    tokens = np.random.default_rng(0).integers(0, 10, (5, 7))
    (expected,) = _reference(model, cr.tensor(tokens))
    np.testing.assert_allclose(session.run(None, {"tokens": tokens})[0], expected, atol=1e-5)
