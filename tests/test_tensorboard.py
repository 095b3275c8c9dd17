"""SummaryWriter writes real TensorBoard event files: read back here with TensorBoard's own reader.

Tests not marked ``beyond_torch`` use only PyTorch's API (``SummaryWriter`` reached as
``<lib>.utils.tensorboard``), so they also pass with ``CHAINRULE_TEST_ORACLE=torch``.
"""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

KEEP_ALL = {"scalars": 0, "histograms": 0, "tensors": 0, "compressedHistograms": 0}


def _writer_module():
    return importlib.import_module(f"{cr.__name__}.utils.tensorboard")


def SummaryWriter(*args, **kwargs):  # noqa: N802 - the class, reached through whichever library is tested
    return _writer_module().SummaryWriter(*args, **kwargs)


def _read(path):
    return EventAccumulator(str(path), size_guidance=KEEP_ALL).Reload()


def _event_files(path):
    return [f for f in os.listdir(path) if f.startswith("events.out.tfevents.")]


def test_scalars_read_back_with_tags_steps_and_values(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(5):
            w.add_scalar("train/loss", 1.0 / (step + 1), step)
            w.add_scalar("lr", cr.tensor(0.1 * 0.5 ** step), global_step=step)
        w.add_scalar("test/accuracy", np.float64(0.875), 4, walltime=1234.5)
    assert len(_event_files(tmp_path)) == 1
    acc = _read(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"train/loss", "lr", "test/accuracy"}
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([e.value for e in loss], [1.0 / (s + 1) for s in range(5)], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in acc.Scalars("lr")], [0.1 * 0.5 ** s for s in range(5)], rtol=1e-6)
    (accuracy,) = acc.Scalars("test/accuracy")
    assert (accuracy.step, accuracy.wall_time) == (4, 1234.5)
    assert accuracy.value == pytest.approx(0.875)


def test_add_scalars_writes_one_run_per_key(tmp_path):
    w = SummaryWriter(tmp_path)
    for step in range(3):
        w.add_scalars("loss", {"train": 1.0 + step, "test": 2.0 + step}, step)
    w.close()
    for key, offset in (("train", 1.0), ("test", 2.0)):
        run = tmp_path / f"loss_{key}"
        assert run.is_dir()
        acc = _read(run)
        assert acc.Tags()["scalars"] == ["loss"]
        assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(s, offset + s) for s in range(3)]


def test_histogram_counts_and_statistics(tmp_path):
    values = np.random.RandomState(0).randn(1000)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("weights", values, 3)
        w.add_histogram("ten_bins", cr.tensor(values.astype(np.float32)), 4, bins=10)
    acc = _read(tmp_path)
    assert set(acc.Tags()["histograms"]) == {"weights", "ten_bins"}
    (event,) = acc.Histograms("weights")
    h = event.histogram_value
    assert event.step == 3
    assert h.num == 1000 and sum(h.bucket) == 1000
    assert h.min == pytest.approx(values.min()) and h.max == pytest.approx(values.max())
    assert h.sum == pytest.approx(values.sum()) and h.sum_squares == pytest.approx((values ** 2).sum())
    assert list(h.bucket_limit) == sorted(h.bucket_limit)
    (event,) = acc.Histograms("ten_bins")
    h = event.histogram_value
    counts, edges = np.histogram(values.astype(np.float32), bins=10)
    assert sum(h.bucket) == 1000
    assert [c for c in h.bucket if c] == [c for c in counts if c]  # the same buckets, empty ends trimmed
    np.testing.assert_allclose(max(h.bucket_limit), edges[-1], rtol=1e-6)


def test_text(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "lr = **0.1**", 0)
    acc = _read(tmp_path)
    assert acc.Tags()["tensors"] == ["notes/text_summary"]
    (event,) = acc.Tensors("notes/text_summary")
    assert event.tensor_proto.string_val == [b"lr = **0.1**"]
    assert acc.SummaryMetadata("notes/text_summary").plugin_data.plugin_name == "text"


def test_flush_makes_events_readable_before_close(tmp_path):
    w = SummaryWriter(tmp_path, flush_secs=3600)
    w.add_scalar("x", 1.5, 7)
    w.flush()
    assert [(e.step, e.value) for e in _read(tmp_path).Scalars("x")] == [(7, 1.5)]
    w.close()


def test_purge_step_hides_events_of_an_earlier_run(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(10):
            w.add_scalar("loss", float(step), step)
    with SummaryWriter(tmp_path, purge_step=5, filename_suffix=".resumed") as w:
        for step in range(5, 8):
            w.add_scalar("loss", 100.0 + step, step)
    events = _read(tmp_path).Scalars("loss")
    assert [e.step for e in events] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert [e.value for e in events] == [0.0, 1.0, 2.0, 3.0, 4.0, 105.0, 106.0, 107.0]


def test_default_log_dir_is_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lenet")
    w.close()
    (run,) = os.listdir(tmp_path / "runs")
    assert run.endswith("_lenet")
    assert w.get_logdir() == os.path.join("runs", run)


@pytest.mark.beyond_torch
def test_train_command_usage(tmp_path):
    """What ``chainrule train --tensorboard DIR`` does: loss, accuracy, lr and the graph."""
    from chainrule.models import LeNet5

    model = LeNet5()
    model.train()
    w = SummaryWriter(str(tmp_path))
    w.add_graph(model, cr.randn(2, 1, 32, 32))
    assert model.training  # add_graph traces in eval mode, then restores the mode
    assert "forward" not in model.__dict__
    for step in range(3):
        w.add_scalar("train/loss", cr.tensor(2.3 - step), step)
        w.add_scalar("lr", 0.01, step)
    w.add_scalar("test/accuracy", 0.98, 2)
    w.close()
    w.add_scalar("train/loss", 0.1, 3)  # a closed writer opens a new file when used again
    w.close()
    assert len(_event_files(tmp_path)) == 2
    acc = _read(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"train/loss", "lr", "test/accuracy"}
    assert [e.step for e in acc.Scalars("train/loss")] == [0, 1, 2, 3]
    assert acc.Tags()["graph"]


@pytest.mark.beyond_torch
def test_graph_has_module_scopes_shapes_and_edges(tmp_path):
    from chainrule.models import LeNet5

    with SummaryWriter(tmp_path) as w:
        w.add_graph(LeNet5(), cr.randn(1, 1, 32, 32))
    graph = _read(tmp_path).Graph()
    nodes = {n.name: n for n in graph.node}
    for name in nodes:  # every edge points at a node of the graph
        for source in nodes[name].input:
            assert source.split(":")[0] in nodes, (name, source)
    assert nodes["input/x"].op == "IO Node"
    conv = "LeNet5/Sequential[features]/Conv2d[0]"
    assert nodes[f"{conv}/weight"].op == "Parameter"
    assert f"{conv}/matmul" in nodes and nodes[f"{conv}/matmul"].op == "matmul"
    assert nodes["LeNet5/Sequential[features]/ReLU[1]/relu"].op == "relu"
    assert nodes["LeNet5/Sequential[features]/MaxPool2d[2]/max_pool2d"].op == "max_pool2d"
    fc = "LeNet5/Sequential[classifier]/Linear[5]"
    assert f"{fc}/weight" in nodes and f"{fc}/bias" in nodes
    out = nodes["output/output.0"]
    assert out.op == "IO Node" and out.input[0].startswith("LeNet5/Sequential[classifier]/Linear[5]/")
    shape = [d.size for d in out.attr["_output_shapes"].list.shape[0].dim]
    assert shape == [1, 10]
    pool = nodes["LeNet5/Sequential[features]/MaxPool2d[2]/max_pool2d"]
    assert [d.size for d in pool.attr["_output_shapes"].list.shape[0].dim] == [1, 6, 14, 14]
    assert b"kernel : (2, 2)" in pool.attr["attr"].s


@pytest.mark.beyond_torch
def test_graph_of_custom_forward_with_several_inputs_and_outputs(tmp_path):
    nn = cr.nn

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)
            self.b = nn.Linear(4, 3)

        def forward(self, x, y):
            h = self.a(x) * 0.5 + self.b(y).tanh()
            return h.sum(dim=1), cr.cat([h, x[:, :1]], dim=1)

    with SummaryWriter(tmp_path) as w:
        w.add_graph(TwoHeads(), (cr.randn(2, 4), cr.randn(2, 4)))
    nodes = {n.name: n for n in _read(tmp_path).Graph().node}
    assert {"input/x", "input/y", "output/output.0", "output/output.1"} <= set(nodes)
    assert nodes["TwoHeads/mul"].attr["attr"].s == b"{ arg1 : 0.5 }"
    assert nodes["TwoHeads/Linear[b]/addmm"].op == "addmm"  # nn.Linear is one addmm, as in PyTorch
    assert nodes["TwoHeads/cat"].input[1] == "TwoHeads/getitem"


@pytest.mark.beyond_torch
def test_bad_values_raise_clear_errors(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="one element"):
            w.add_scalar("x", cr.tensor([1.0, 2.0]))
        with pytest.raises(ValueError, match="empty"):
            w.add_histogram("h", np.array([]))
        with pytest.raises(TypeError, match="nn.Module"):
            w.add_graph(lambda x: x, cr.randn(2))


@pytest.mark.beyond_torch
def test_importing_chainrule_does_not_import_tensorboard():
    code = "import sys, chainrule; assert 'tensorboard' not in sys.modules and 'onnx' not in sys.modules"
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
