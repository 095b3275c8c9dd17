"""``chainrule train``: the command line that trains LeNet-5 or an MLP on digits or MNIST.

Runs are kept short (one or two epochs on scikit-learn's digits, 1,438 training images); the
MLP with batch 128 is the quickest and is used where only the training machinery is tested.
"""

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr

load_data = pytest.importorskip("chainrule.train").load_data  # skipped, not broken, in the torch-oracle mode
main = pytest.importorskip("chainrule.__main__").main

pytestmark = pytest.mark.beyond_torch  # chainrule's own command line

SRC = Path(__file__).resolve().parents[1] / "src"
MNIST_DIR = Path("/work/shared/data/mnist")
FINAL = re.compile(r"final test accuracy (\d+\.\d+)% \| (\d+) samples/s")
EPOCH = re.compile(r"epoch (\d+): train loss (\d+\.\d+), test accuracy (\d+\.\d+)%, (\d+) samples/s")
FAST_MLP = ["--model", "mlp", "--batch-size", "128", "--no-progress"]

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="the digits dataset needs scikit-learn (pip install chainrule[train])")


def train(*argv):
    """``chainrule train ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *map(str, argv)])
    return code, out.getvalue(), err.getvalue()


def _lines(text):
    return [line for line in text.splitlines() if line.strip()]


def _tensors_equal(a, b, where="checkpoint"):
    """Every tensor bit for bit, every other value equal, through nested dicts and lists."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _tensors_equal(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            _tensors_equal(x, y, f"{where}[{i}]")
    elif hasattr(a, "numpy"):
        assert hasattr(b, "numpy"), f"{where}: tensor vs {type(b).__name__}"
        x, y = a.numpy(), b.numpy()
        assert x.dtype == y.dtype and x.shape == y.shape, f"{where}: {x.dtype}{x.shape} != {y.dtype}{y.shape}"
        np.testing.assert_array_equal(x, y, err_msg=where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# ----------------------------------------------------------------------------------------------
# a default LeNet-5 run (one epoch), with TensorBoard logging
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("the digits dataset needs scikit-learn")
    logs = tmp_path_factory.mktemp("tensorboard")
    code, out, err = train("--epochs", 1, "--no-progress", "--tensorboard", logs)
    return code, out, err, logs


def test_one_epoch_on_digits_prints_epoch_and_final_lines(lenet_run):
    code, out, err, _ = lenet_run
    assert code == 0
    lines = _lines(out)
    assert lines[0].startswith("lenet5 (61,706 parameters) on digits: 1,438 train / 359 test images, 1 epochs")
    epoch = EPOCH.fullmatch(lines[1])
    assert epoch and epoch.group(1) == "1", lines[1]
    assert FINAL.fullmatch(lines[-1]), f"last line: {lines[-1]!r}"
    assert len(lines) == 3
    final = FINAL.fullmatch(lines[-1])
    assert final.group(1) == epoch.group(3)  # the final accuracy is the last epoch's
    assert float(final.group(1)) >= 60.0  # one epoch of Adam already learns the digits (about 90%)
    assert int(final.group(2)) > 0
    assert "epoch 1/1" not in err  # --no-progress: no progress bar


def test_tensorboard_logs_loss_accuracy_and_lr(lenet_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out, _, logs = lenet_run
    assert any(name.startswith("events.out.tfevents.") for name in os.listdir(logs))
    acc = EventAccumulator(str(logs), size_guidance={"scalars": 0}).Reload()
    assert {"train/loss", "test/accuracy", "lr"} <= set(acc.Tags()["scalars"])
    losses = acc.Scalars("train/loss")
    assert [e.step for e in losses] == [10, 20, 30, 40]  # every 10 of the 45 batches
    assert all(np.isfinite(e.value) and 0 < e.value < 5 for e in losses)
    (accuracy,) = acc.Scalars("test/accuracy")
    printed = float(EPOCH.search(out).group(3)) / 100
    assert accuracy.step == 1 and accuracy.value == pytest.approx(printed, abs=1e-4)
    (lr,) = acc.Scalars("lr")
    assert lr.step == 1 and lr.value == pytest.approx(0.0, abs=1e-9)  # cosine annealed to 0 after the last epoch
    assert acc.Tags()["graph"]


@needs_sklearn
def test_subprocess_mlp_with_progress_bar():
    """``python -m chainrule train`` as a user runs it: exit code 0, epoch lines, final line, tqdm bar."""
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "chainrule", "train", "--model", "mlp", "--epochs", "1"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stdout)
    assert lines[0].startswith("mlp (792,586 parameters) on digits")  # 1024-512-512-10
    assert EPOCH.fullmatch(lines[1]), lines[1]
    assert FINAL.fullmatch(lines[-1]), f"last line: {lines[-1]!r}"
    assert "Traceback" not in proc.stderr
    if importlib.util.find_spec("tqdm") is not None:
        assert "epoch 1/1" in proc.stderr and "/45" in proc.stderr  # the bar: 45 batches of 32


# ----------------------------------------------------------------------------------------------
# checkpoints and resuming
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Two epochs in one run; the checkpoint directory does not exist beforehand."""
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("the digits dataset needs scikit-learn")
    directory = tmp_path_factory.mktemp("runs") / "a" / "nested"
    code, out, _ = train(*FAST_MLP, "--epochs", 2, "--checkpoint-dir", directory)
    assert code == 0
    return directory / "last.safetensors", out


def test_checkpoint_holds_model_optimizer_and_epoch(uninterrupted):
    path, out = uninterrupted
    state = cr.load(path)
    assert state["epoch"] == 2
    assert set(state) >= {"model", "optimizer", "scheduler", "epoch"}
    assert set(state["model"]) == {f"net.{i}.{p}" for i in (1, 3, 5) for p in ("weight", "bias")}
    assert [m.group(1) for m in EPOCH.finditer(out)] == ["1", "2"]


@needs_sklearn
def test_resume_with_more_epochs_equals_uninterrupted_run(uninterrupted, tmp_path):
    """1 epoch, then ``--resume --epochs 2``: the same parameters as 2 epochs in one run, bit for bit."""
    code, _, _ = train(*FAST_MLP, "--epochs", 1, "--checkpoint-dir", tmp_path)
    assert code == 0
    assert cr.load(tmp_path / "last.safetensors")["epoch"] == 1
    code, out, _ = train(*FAST_MLP, "--epochs", 2, "--checkpoint-dir", tmp_path, "--resume")
    assert code == 0
    assert f"resumed from {tmp_path / 'last.safetensors'} after epoch 1" in out
    assert [m.group(1) for m in EPOCH.finditer(out)] == ["2"]  # only the remaining epoch runs
    assert FINAL.search(_lines(out)[-1])

    expected, actual = cr.load(uninterrupted[0]), cr.load(tmp_path / "last.safetensors")
    _tensors_equal(actual["model"], expected["model"], "model")
    _tensors_equal(actual["optimizer"], expected["optimizer"], "optimizer")
    assert actual["epoch"] == 2
    # and the same test accuracy is printed at the end
    assert FINAL.search(out).group(1) == FINAL.search(uninterrupted[1]).group(1)


class _Crash(Exception):
    pass


@needs_sklearn
def test_resume_after_a_crash_equals_uninterrupted_run(uninterrupted, tmp_path, monkeypatch):
    """A 2-epoch run killed right after its first checkpoint, resumed with the same command."""
    save = cr.save

    def save_then_crash(obj, f):
        save(obj, f)
        raise _Crash

    monkeypatch.setattr(cr, "save", save_then_crash)
    with pytest.raises(_Crash):
        train(*FAST_MLP, "--epochs", 2, "--checkpoint-dir", tmp_path)
    monkeypatch.setattr(cr, "save", save)
    assert cr.load(tmp_path / "last.safetensors")["epoch"] == 1

    code, _, _ = train(*FAST_MLP, "--epochs", 2, "--checkpoint-dir", tmp_path, "--resume")
    assert code == 0
    _tensors_equal(cr.load(tmp_path / "last.safetensors"), cr.load(uninterrupted[0]), "checkpoint")


@needs_sklearn
def test_resume_of_a_finished_run_only_evaluates(uninterrupted, tmp_path):
    path, out = uninterrupted
    (tmp_path / "last.safetensors").write_bytes(path.read_bytes())
    code, resumed, _ = train(*FAST_MLP, "--epochs", 2, "--checkpoint-dir", tmp_path, "--resume")
    assert code == 0
    assert not EPOCH.search(resumed)  # nothing left to train
    assert FINAL.search(resumed).group(1) == FINAL.search(out).group(1)
    assert (tmp_path / "last.safetensors").read_bytes() == path.read_bytes()


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        train("--resume", "--checkpoint-dir", tmp_path)
    message = str(info.value.code)
    assert "--resume" in message and "last.safetensors" in message and "not found" in message
    assert not isinstance(info.value.code, int)  # a message, printed by Python without a traceback


def test_resume_without_checkpoint_dir_is_a_clear_error():
    with pytest.raises(SystemExit) as info:
        train("--resume")
    assert "--checkpoint-dir" in str(info.value.code)


def test_resume_from_a_damaged_checkpoint_is_a_clear_error(uninterrupted, tmp_path):
    (tmp_path / "last.safetensors").write_bytes(uninterrupted[0].read_bytes()[:100])
    with pytest.raises(SystemExit) as info:
        train(*FAST_MLP, "--checkpoint-dir", tmp_path, "--resume")
    assert "cannot resume" in str(info.value.code) and "truncated" in str(info.value.code)


@pytest.mark.parametrize("option", [("--model", "lenet5"), ("--optimizer", "sgd")])
def test_resume_with_another_model_or_optimizer_is_a_clear_error(uninterrupted, tmp_path, option):
    (tmp_path / "last.safetensors").write_bytes(uninterrupted[0].read_bytes())
    argv = [*FAST_MLP, "--checkpoint-dir", tmp_path, "--resume", *option]
    with pytest.raises(SystemExit) as info:
        train(*argv)
    assert "cannot resume" in str(info.value.code)


def test_subprocess_errors_have_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for argv, words in [(["--dataset", "mnist"], "--data-dir"),
                        (["--resume", "--checkpoint-dir", str(tmp_path)], "not found")]:
        proc = subprocess.run([sys.executable, "-m", "chainrule", "train", *argv],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode != 0
        assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# ----------------------------------------------------------------------------------------------
# MNIST
# ----------------------------------------------------------------------------------------------
def test_mnist_without_data_dir_is_a_clear_error():
    with pytest.raises(SystemExit) as info:
        train("--dataset", "mnist")
    assert "--data-dir" in str(info.value.code)


def test_mnist_with_a_wrong_data_dir_names_the_missing_file(tmp_path):
    with pytest.raises(SystemExit) as info:
        train("--dataset", "mnist", "--data-dir", tmp_path)
    message = str(info.value.code)
    assert "train-images-idx3-ubyte" in message and str(tmp_path) in message


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"real MNIST files not in {MNIST_DIR}")
def test_load_data_mnist_shapes_dtypes_and_normalisation():
    (x_train, y_train), (x_test, y_test) = load_data("mnist", str(MNIST_DIR))
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert abs(float(x_train.mean())) < 0.01 and abs(float(x_train.std()) - 1) < 0.01  # MNIST's mean/std
    assert x_train.min() == pytest.approx(-0.1307 / 0.3081) and x_train.max() == pytest.approx(0.8693 / 0.3081)
    assert set(np.unique(y_train)) == set(range(10)) and set(np.unique(y_test)) == set(range(10))
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the first training labels of the original file


@needs_sklearn
def test_load_data_digits_shapes_and_normalisation():
    (x_train, y_train), (x_test, y_test) = load_data("digits", None)
    assert x_train.shape == (1438, 1, 32, 32) and x_test.shape == (359, 1, 32, 32)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert abs(float(x_train.mean())) < 1e-4 and abs(float(x_train.std()) - 1) < 1e-4


def test_invalid_numbers_are_refused():
    for argv in (["--epochs", "-1"], ["--batch-size", "0"], ["--lr", "0"]):
        with pytest.raises(SystemExit) as info:
            train(*argv)
        assert "chainrule train" in str(info.value.code)


# ----------------------------------------------------------------------------------------------
# accuracy
# ----------------------------------------------------------------------------------------------
@needs_sklearn
def test_lenet5_reaches_95_percent_on_digits():
    """The issue's bar for digits (>= 95%), in 6 epochs rather than the default 15 (about 97%)."""
    code, out, _ = train("--epochs", 6, "--batch-size", 32, "--no-progress")
    assert code == 0
    accuracy = float(FINAL.search(out).group(1))
    assert accuracy >= 95.0, out


@needs_sklearn
def test_workers_train_the_same_model(tmp_path):
    """``--workers 2`` loads the same batches in the same order: identical parameters after an epoch."""
    checkpoints = []
    for workers in (0, 2):
        directory = tmp_path / f"workers{workers}"
        code, out, _ = train(*FAST_MLP, "--epochs", 1, "--workers", workers, "--checkpoint-dir", directory)
        assert code == 0 and FINAL.search(out)
        checkpoints.append(cr.load(directory / "last.safetensors"))
    _tensors_equal(checkpoints[1]["model"], checkpoints[0]["model"], "model")
