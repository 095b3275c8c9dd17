"""cr.save / cr.load: exact round trips, standard safetensors files, refusals, atomic writes."""

import io
import json
import math
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from safetensors import safe_open

import chainrule as cr
from chainrule.io import CheckpointError, CheckpointNotFoundError


def assert_same(a, b, where="obj"):
    """Structural equality that also checks types (tuple vs list, int vs float) and tensor dtypes."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, cr.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape), where
        assert not b.requires_grad, where
        np.testing.assert_array_equal(a.detach().numpy(), b.numpy(), err_msg=where)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


def round_trip(obj, tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cr.save(obj, path)
    return cr.load(path)


# ------------------------------------------------------------------------------------ round trips


def test_round_trip_of_a_training_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    checkpoint = {
        "model": OrderedDict(
            [
                ("conv1.weight", cr.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))),
                ("bn.num_batches_tracked", cr.tensor(7)),  # 0-d int64
                ("fc.weight", cr.from_numpy(rng.standard_normal((5, 3)).T)),  # float64, transposed view
                ("mask", cr.tensor([[True, False], [False, True]])),
                ("pixels", cr.from_numpy(np.arange(12, dtype=np.uint8).reshape(3, 4))),
            ]
        ),
        "optimizer": {
            "state": {0: {"momentum_buffer": cr.tensor([0.5, -1.5]), "step": 3}, 1: {}},
            "param_groups": [
                {
                    "lr": 0.1,
                    "params": [0, 1],
                    "betas": (0.9, 0.999),
                    "nesterov": False,
                    "weight_decay": 0,
                    "foreach": None,
                }
            ],
        },
        "epoch": 12,
        "best": float("inf"),
        "loss_history": [1.0, float("nan"), -float("inf")],
        "name": "résnet / run #3",
        "nested": [(), [], {}, ((1, 2.0), [None, True])],
        "keys": {-1: "neg", True: "bool key", None: "none key", "": "empty"},
        "numpy": {"array": np.arange(6, dtype=np.int32).reshape(2, 3)[:, ::2], "scalar": np.float16(0.5)},
    }
    assert_same(checkpoint, round_trip(checkpoint, tmp_path))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 3), (2, 3, 4)])
def test_every_dtype_and_shape(tmp_path, dtype, shape):
    array = np.asarray(np.arange(math.prod(shape)).reshape(shape) % 3).astype(dtype)
    loaded = round_trip({"t": cr.from_numpy(array)}, tmp_path)["t"]
    assert loaded.dtype == cr.from_numpy(array).dtype
    assert tuple(loaded.shape) == shape
    np.testing.assert_array_equal(loaded.numpy(), array)


def test_non_contiguous_arrays_are_stored_in_logical_order(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    views = {"transposed": base.T, "strided": base[::2, 1::3], "reversed": base[::-1]}
    loaded = round_trip(views, tmp_path)
    for key, view in views.items():
        np.testing.assert_array_equal(loaded[key], view)
    assert_same(cr.from_numpy(base.T), round_trip(cr.from_numpy(base.T), tmp_path))


def test_loaded_tensors_do_not_require_grad_and_are_writable(tmp_path):
    weight = cr.tensor([1.0, 2.0], requires_grad=True)
    loaded = round_trip({"w": weight}, tmp_path)["w"]
    assert weight.requires_grad and not loaded.requires_grad
    loaded.numpy()[0] = 5.0  # a fresh, writable buffer that does not alias the saved tensor
    assert weight.detach().numpy()[0] == 1.0


@pytest.mark.parametrize("obj", [7, None, "text", [1, (2,)], cr.tensor([1, 2])])
def test_non_dict_top_level_objects(tmp_path, obj):
    assert_same(obj, round_trip(obj, tmp_path))


def test_keys_that_would_share_a_tensor_name_stay_distinct(tmp_path):
    obj = {
        "a.b": cr.tensor([1.0]),
        "a": {"b": cr.tensor([2.0])},
        0: [cr.tensor([3.0])],
        "0": [cr.tensor([4.0])],
    }
    assert_same(obj, round_trip(obj, tmp_path))


def test_file_objects(tmp_path):
    obj = {"w": cr.tensor([[1.0, 2.0]]), "step": 4}
    buffer = io.BytesIO()
    cr.save(obj, buffer)
    buffer.seek(0)
    assert_same(obj, cr.load(buffer))

    path = tmp_path / "ckpt.safetensors"
    with open(path, "wb") as fh:
        cr.save(obj, fh)
    with open(path, "rb") as fh:
        assert_same(obj, cr.load(fh))
    with open(path, encoding="latin-1") as fh, pytest.raises(TypeError, match="mode 'rb'"):
        cr.load(fh)


def test_str_and_pathlike_paths(tmp_path):
    cr.save({"x": 1}, str(tmp_path / "a.safetensors"))
    assert cr.load(tmp_path / "a.safetensors") == {"x": 1}


def test_saving_through_a_symlink_updates_its_target(tmp_path):
    target = tmp_path / "real.safetensors"
    link = tmp_path / "latest.safetensors"
    cr.save({"v": 1}, target)
    link.symlink_to(target)
    cr.save({"v": 2}, link)
    assert link.is_symlink() and cr.load(target) == {"v": 2}


# ------------------------------------------------------------------------ standard safetensors files


def test_flat_state_dict_is_a_standard_safetensors_file(tmp_path):
    state = {
        "conv1.weight": cr.from_numpy(np.random.default_rng(1).standard_normal((2, 1, 3, 3)).astype(np.float32)),
        "conv1.bias": cr.tensor([0.5, -0.5]),
        "bn.num_batches_tracked": cr.tensor(3),
        "mask": cr.tensor([True, False]),
    }
    path = tmp_path / "model.safetensors"
    cr.save(state, path)

    with safe_open(path, framework="np") as f:
        assert set(f.keys()) == set(state)
        assert f.metadata()["chainrule.format_version"] == "1"
        for key, tensor in state.items():
            np.testing.assert_array_equal(f.get_tensor(key), tensor.numpy())

    loaded_by_torch = safetensors.torch.load_file(path)
    assert set(loaded_by_torch) == set(state)
    for key, tensor in state.items():
        assert loaded_by_torch[key].dtype == getattr(torch, tensor.numpy().dtype.name)
        np.testing.assert_array_equal(loaded_by_torch[key].numpy(), tensor.numpy())


def test_nested_tensors_are_named_by_their_key_path(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cr.save({"model": {"fc.weight": cr.tensor([1.0])}, "optim": {"state": {0: {"buf": cr.tensor([2.0])}}}}, path)
    with safe_open(path, framework="np") as f:
        assert set(f.keys()) == {"model.fc.weight", "optim.state.0.buf"}


@pytest.mark.parametrize("writer", ["numpy", "torch"])
def test_plain_safetensors_files_load_as_a_flat_dict(tmp_path, writer):
    path = tmp_path / "foreign.safetensors"
    arrays = {
        "embed.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "ids": np.array([3, 1], dtype=np.int64),
    }
    if writer == "numpy":
        safetensors.numpy.save_file(arrays, path)
    else:
        safetensors.torch.save_file({k: torch.from_numpy(v) for k, v in arrays.items()}, path, {"format": "pt"})
    loaded = cr.load(path)
    assert set(loaded) == set(arrays)
    for key, array in arrays.items():
        assert isinstance(loaded[key], cr.Tensor)
        assert loaded[key].dtype == cr.from_numpy(array).dtype
        np.testing.assert_array_equal(loaded[key].numpy(), array)


# ------------------------------------------------------------------------------------ refusals


def valid_bytes():
    buffer = io.BytesIO()
    cr.save({"w": cr.from_numpy(np.arange(100, dtype=np.float32)), "step": 1}, buffer)
    return buffer.getvalue()


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}))
    return buffer.getvalue()


def torch_save_bytes():
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buffer)
    return buffer.getvalue()


def header_bytes(header_json):
    return len(header_json).to_bytes(8, "little") + header_json


FOREIGN_FILES = {
    "empty": (lambda: b"", "the file is empty"),
    "four bytes": (lambda: valid_bytes()[:4], "truncated"),
    "cut in the header": (lambda: valid_bytes()[:40], "truncated"),
    "cut in the data": (lambda: valid_bytes()[:-7], "truncated"),
    "trailing bytes": (lambda: valid_bytes() + b"extra", "not a valid safetensors file"),
    "zip": (zip_bytes, "zip archive"),
    "torch.save": (torch_save_bytes, "zip archive"),
    "pickle": (lambda: pickle.dumps({"w": [1.0]}), "pickle"),
    "random bytes": (lambda: b"\x13" + np.random.default_rng(0).bytes(4096), "not a safetensors file"),
    "text": (lambda: b"epoch,loss\n1,0.5\n2,0.25\n", "not a safetensors file"),
    "bad header json": (lambda: header_bytes(b"{not json}"), "header is malformed"),
    "header entry not a dict": (lambda: header_bytes(b'{"w": 5}'), "header is malformed"),
}


@pytest.mark.parametrize("kind", FOREIGN_FILES)
def test_invalid_files_are_refused_with_a_clear_error(tmp_path, kind):
    make, message = FOREIGN_FILES[kind]
    path = tmp_path / "bad.ckpt"
    path.write_bytes(make())
    with pytest.raises(CheckpointError, match=message) as info:
        cr.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    shown_context = info.value.__cause__ or (None if info.value.__suppress_context__ else info.value.__context__)
    assert shown_context is None  # one clear error, not a safetensors/JSON traceback above it


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint file") as info:
        cr.load(path)
    assert isinstance(info.value, FileNotFoundError) and info.value.filename == str(path)


class Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    armed = tmp_path / "armed"
    pickle.loads(pickle.dumps(Exploit(armed)))  # the payload is live: unpickling does run it
    assert armed.exists()

    marker = tmp_path / "pwned"
    for name, data in [("exploit.pkl", pickle.dumps(Exploit(marker))), ("exploit.pt", None)]:
        path = tmp_path / name
        if data is None:
            torch.save({"model": Exploit(marker)}, path)
        else:
            path.write_bytes(data)
        with pytest.raises(CheckpointError, match="never unpickles"):
            cr.load(path)
    assert not marker.exists()


def test_unsupported_dtype_in_a_foreign_file(tmp_path):
    path = tmp_path / "u32.safetensors"
    safetensors.numpy.save_file({"counts": np.arange(3, dtype=np.uint32)}, path)
    with pytest.raises(CheckpointError, match="'counts' has dtype U32"):
        cr.load(path)


def write_with_metadata(path, metadata, arrays=None):
    safetensors.numpy.save_file(arrays or {"w": np.zeros(2, dtype=np.float32)}, path, metadata)


CORRUPT_STRUCTURES = {
    "missing tensor": '{"tensor": "missing"}',
    "bad json": '{"dict": [["a", {"tensor": "w"}]]',
    "unknown tag": '{"unknown_tag": 1}',
    "tuple of a string": '{"tuple": "not a list"}',
    "pair too short": '{"dict": [["a"]]}',
    "unhashable key": '{"dict": [[["unhashable"], 1]]}',
    "nested too deep": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("kind", CORRUPT_STRUCTURES)
def test_corrupt_chainrule_metadata(tmp_path, kind):
    path = tmp_path / "corrupt.safetensors"
    write_with_metadata(path, {"chainrule.format_version": "1", "chainrule.structure": CORRUPT_STRUCTURES[kind]})
    with pytest.raises(CheckpointError, match="metadata is corrupt"):
        cr.load(path)


def test_newer_format_version_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "future.safetensors"
    write_with_metadata(path, {"chainrule.format_version": "2", "chainrule.structure": "{}"})
    with pytest.raises(CheckpointError, match="format 2.*upgrade chainrule"):
        cr.load(path)


@pytest.mark.parametrize(
    "obj, error, message",
    [
        ({"opt": {"fn": lambda x: x}}, TypeError, r"function at obj\['opt'\]\['fn'\]"),
        ({"layers": [1, object()]}, TypeError, r"object at obj\['layers'\]\[1\]"),
        ({"s": {1, 2}}, TypeError, r"set at obj\['s'\]"),
        ({"d": {(1, 2): 3}}, TypeError, r"dict key \(1, 2\) \(tuple\) in obj\['d'\]"),
        ({"z": np.ones(2, dtype=np.complex64)}, TypeError, r"obj\['z'\]: its dtype complex64"),
        ({"s": np.array(["a"])}, TypeError, r"obj\['s'\]: its dtype <U1"),
    ],
)
def test_unsupported_objects_name_their_key_path(tmp_path, obj, error, message):
    path = tmp_path / "ckpt.safetensors"
    with pytest.raises(error, match=message):
        cr.save(obj, path)
    assert list(tmp_path.iterdir()) == []


def test_self_containing_objects_are_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match=r"obj\['a'\]\[0\]: it contains itself"):
        cr.save(loop, tmp_path / "ckpt.safetensors")
    shared = [1]
    assert_same({"x": shared, "y": shared}, round_trip({"x": shared, "y": shared}, tmp_path))


def test_save_into_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory does not exist") as info:
        cr.save({"x": 1}, tmp_path / "no" / "such" / "dir.safetensors")
    assert info.value.filename == str(tmp_path / "no" / "such")


@pytest.mark.parametrize("f", [3, None])
def test_save_and_load_need_a_path_or_file(f):
    with pytest.raises(TypeError, match="path or a writable binary file"):
        cr.save({}, f)
    with pytest.raises(TypeError, match="path or a readable binary file"):
        cr.load(f)


# ------------------------------------------------------------------------------------ atomicity


@pytest.mark.parametrize(
    "target, exception",
    [("fsync", OSError("disk full")), ("replace", OSError("rename failed")), ("fsync", KeyboardInterrupt())],
)
def test_a_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch, target, exception):
    path = tmp_path / "ckpt.safetensors"
    cr.save({"w": cr.tensor([1.0, 2.0]), "step": 1}, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise exception

    monkeypatch.setattr(os, target, fail)
    with pytest.raises(type(exception)):
        cr.save({"w": cr.tensor([3.0, 4.0, 5.0]), "step": 2}, path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the temporary file is gone


def test_a_save_never_writes_the_target_in_place(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cr.save({"step": 1}, path)
    old_inode = path.stat().st_ino
    cr.save({"step": 2}, path)
    assert path.stat().st_ino != old_inode and cr.load(path) == {"step": 2}


SAVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import chainrule as cr

    path, first = sys.argv[1], int(sys.argv[2])
    for step in range(first, first + 1_000_000):
        cr.save({"step": step, "w": cr.from_numpy(np.full(1_000_000, step, dtype=np.float64))}, path)
        if step == first:
            print("saving", flush=True)
    """
)


def wait_for_new_temp_file(directory, known, child, timeout=10.0):
    """Return once a save has created a temporary file, i.e. while a write is under way."""
    deadline = time.monotonic() + timeout
    while not set(os.listdir(directory)) - known:
        assert child.poll() is None and time.monotonic() < deadline, "the saving process stopped saving"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_during_saves_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cr.save({"step": 0, "w": cr.from_numpy(np.zeros(1_000_000))}, path)
    env = {**os.environ, "PYTHONPATH": str(Path(cr.__file__).parents[1])}
    rng = random.Random(0)
    last_step, killed_mid_write = 0, 0
    for round_ in range(6):
        first = last_step + 1
        command = [sys.executable, "-c", SAVER, str(path), str(first)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        try:
            assert child.stdout.readline() == b"saving\n", "the saving process failed; its stderr is above"
            known = set(os.listdir(tmp_path))
            if round_ % 2:  # at a random moment
                time.sleep(rng.uniform(0.0, 0.1))
            else:  # as soon as a write has begun
                wait_for_new_temp_file(tmp_path, known, child)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        killed_mid_write += bool(set(os.listdir(tmp_path)) - known)  # its temporary file was left behind

        checkpoint = cr.load(path)
        assert checkpoint["step"] >= first  # the first save had completed before the kill
        np.testing.assert_array_equal(checkpoint["w"].numpy(), np.full(1_000_000, checkpoint["step"], dtype=np.float64))
        last_step = checkpoint["step"]
    assert killed_mid_write >= 1  # the test did interrupt writes, not only the gaps between them


def test_load_accepts_pytorch_keyword_arguments(tmp_path):
    path = tmp_path / "model.safetensors"
    cr.save({"w": cr.ones(2)}, path)
    loaded = cr.load(path, map_location="cpu", weights_only=True)
    assert loaded["w"].tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="CUDA device but chainrule.cuda.is_available.. is False"):
        cr.load(path, map_location="cuda:0")  # PyTorch's error without a GPU (loading onto a GPU: test_device.py)


# ------------------------------------------------------------------------------------ integrity


def damaged_copies(data, positions, masks=(0x01, 0x20, 0x80)):
    """Every single-byte corruption of ``data`` at ``positions``: one bit flipped at a time."""
    for position in positions:
        for mask in masks:
            damaged = bytearray(data)
            damaged[position] ^= mask
            yield position, bytes(damaged)


def byte_classes(data):
    """Positions of the length prefix, the metadata, the rest of the header (the tensor table and
    its space padding) and the tensor data."""
    header_len = int.from_bytes(data[:8], "little")
    header = data[8:8 + header_len].decode()
    start = header.index('"__metadata__"')
    _, end = json.JSONDecoder().raw_decode(header, start + len('"__metadata__":'))
    return {
        "length": range(8),
        "metadata": range(8 + start, 8 + end),
        "tensor table": [8 + i for i in range(header_len) if not start <= i < end],
        "data": range(8 + header_len, len(data)),
    }


CHECKPOINT = {
    "model": OrderedDict(fc_weight=cr.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3)),
                         fc_bias=cr.from_numpy(np.array([0.5, -1.5], dtype=np.float64))),
    "step": 7, "lr": 0.25, "ids": np.arange(3, dtype=np.int64), "name": "run",
}


@pytest.mark.parametrize("kind", ["length", "metadata", "tensor table", "data"])
def test_a_flipped_byte_is_refused_or_changes_nothing(kind):
    buffer = io.BytesIO()
    cr.save(CHECKPOINT, buffer)
    data = buffer.getvalue()
    refused = loaded = 0
    for position, damaged in damaged_copies(data, byte_classes(data)[kind]):
        try:
            result = cr.load(io.BytesIO(damaged))
        except CheckpointError as error:
            refused += 1
            assert "cannot load checkpoint" in str(error), (position, error)
            continue
        loaded += 1  # only a flip in JSON whitespace may load, and then to exactly the same values
        assert_same(CHECKPOINT, result, f"byte {position}")
    assert refused > 0 and loaded <= refused // 10, (kind, refused, loaded)


def test_damaged_tensor_data_names_the_tensor_and_verify_false_skips_the_check(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cr.save(CHECKPOINT, path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40  # the last byte of the data section belongs to the last tensor in the file
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=r"tensor '(model\.fc_weight|model\.fc_bias|ids)' is damaged.*verify"):
        cr.load(path)
    loaded = cr.load(path, verify=False)  # the user's choice: the damaged values, unchecked
    assert loaded["step"] == 7 and loaded["model"]["fc_weight"].shape == (2, 3)


def test_a_checksummed_checkpoint_is_still_read_by_safetensors(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    cr.save(CHECKPOINT, path)
    tensors = safetensors.numpy.load_file(path)
    np.testing.assert_array_equal(tensors["model.fc_weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(tensors["ids"], np.arange(3))
    with safe_open(path, "np") as f:
        assert set(f.metadata()) == {"chainrule.format_version", "chainrule.structure", "chainrule.crc32"}


def test_checkpoints_without_checksums_still_load(tmp_path):
    path = tmp_path / "old.safetensors"
    write_with_metadata(path, {"chainrule.format_version": "1", "chainrule.structure": '{"tensor": "w"}'})
    assert cr.load(path).tolist() == [0.0, 0.0]


def test_a_tensor_under_two_names_is_stored_once_and_loads_sharing_memory(tmp_path):
    weight = cr.from_numpy(np.arange(4.0))
    state = {"encoder.weight": weight, "decoder.weight": weight, "view": weight.detach(), "other": cr.ones(4)}
    path = tmp_path / "tied.safetensors"
    cr.save(state, path)
    assert sorted(safetensors.numpy.load_file(path)) == ["encoder.weight", "other"]
    loaded = cr.load(path)
    assert_same(state, loaded)
    loaded["encoder.weight"][0] = 100.0  # as torch.load: one storage, seen through every name
    assert loaded["decoder.weight"][0].item() == 100.0 and loaded["view"][0].item() == 100.0
    assert loaded["other"][0].item() == 1.0
    reference = torch.ones(4)
    torch.save({"a": reference, "b": reference}, tmp_path / "tied.pt")
    torch_loaded = torch.load(tmp_path / "tied.pt")
    assert torch_loaded["a"].untyped_storage().data_ptr() == torch_loaded["b"].untyped_storage().data_ptr()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_the_next_save_removes_temporary_files_left_by_a_killed_save(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    env = {**os.environ, "PYTHONPATH": str(Path(cr.__file__).parents[1])}
    strangers = [".notes.txt", ".ckpt.safetensors.tmp", "other.12345-0123abcd.tmp", ".x.999999999-zzzz.tmp"]
    for stranger in strangers:  # files that are not ours, or not temporary files of a save
        (tmp_path / stranger).write_text("keep me")
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(path), "1"], stdout=subprocess.PIPE, env=env)
        try:
            assert child.stdout.readline() == b"saving\n", "the saving process failed; its stderr is above"
            wait_for_new_temp_file(tmp_path, set(os.listdir(tmp_path)), child)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") and p.name not in strangers]
    assert leftovers  # the kills interrupted writes
    cr.save({"step": 0}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, *strangers])
    assert cr.load(path) == {"step": 0}


def test_a_save_in_progress_in_another_process_keeps_its_temporary_file(tmp_path):
    in_progress = tmp_path / f".ckpt.safetensors.{os.getppid()}-0123abcd.tmp"  # a live process's name
    in_progress.write_bytes(b"half written")
    cr.save({"step": 1}, tmp_path / "ckpt.safetensors")
    assert in_progress.exists()
