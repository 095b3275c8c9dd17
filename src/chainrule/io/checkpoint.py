"""Checkpoints as safetensors files: ``chainrule.save`` and ``chainrule.load``.

A checkpoint is a standard safetensors file, so other frameworks read its tensors by name: a flat
state dict ``{'fc.weight': t, ...}`` is stored under exactly those names, nested objects under
their key paths joined by dots (``{'model': {'fc.weight': t}}`` -> ``'model.fc.weight'``).
Everything that is not an array -- nesting, dict keys of any allowed type, tuples, numbers,
strings -- is kept as JSON in the file's string metadata, so ``load`` rebuilds exactly the object
that was saved. Nothing is ever unpickled: an untrusted file can at worst be refused.

The metadata holds three keys::

    "chainrule.format_version": "1"
    "chainrule.structure": JSON in which null, booleans, numbers, strings and lists stand for
        themselves and a one-key object tags everything else:
        {"tuple": [...]}, {"dict": [[key, value], ...]}, {"odict": [[key, value], ...]},
        {"tensor": name}, {"ndarray": name}, {"npscalar": name}, {"float": "nan" | "inf" | "-inf"}
    "chainrule.crc32": JSON {"metadata": crc, "tensors": {name: crc, ...}}: CRC-32 checksums of
        the other metadata and of each tensor's dtype, shape and bytes, verified on load

A flipped byte anywhere in the file is refused: in the tensor data by the tensor's checksum, in the
header by safetensors' own layout checks or by a checksum (names, dtypes, shapes, metadata).
Files written before the checksums existed have no "chainrule.crc32" and load unverified. One
array saved under several names (tied weights) is stored once and loads as tensors sharing memory.
"""

import contextlib
import errno
import json
import math
import os
import re
import secrets
import zlib
from collections import OrderedDict

import numpy as np
import safetensors
import safetensors.numpy

from .. import _device
from ..errors import ChainruleError
from ..ops.creation import from_numpy
from ..tensor import Tensor

__all__ = ["save", "load", "CheckpointError", "CheckpointNotFoundError"]

_FORMAT_VERSION = "1"
_VERSION_KEY = "chainrule.format_version"
_STRUCTURE_KEY = "chainrule.structure"
_CRC_KEY = "chainrule.crc32"
_KNOWN_KEYS = {_VERSION_KEY, _STRUCTURE_KEY, _CRC_KEY}
_TEMP_NAME = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.tmp")  # .NAME.PID-TOKEN.tmp, written by _create_temp

# numpy dtype name -> safetensors dtype code, for every dtype a chainrule tensor can have.
_DTYPE_CODES = {
    "float16": "F16",
    "float32": "F32",
    "float64": "F64",
    "int8": "I8",
    "int16": "I16",
    "int32": "I32",
    "int64": "I64",
    "uint8": "U8",
    "bool": "BOOL",
}
_MAX_HEADER_BYTES = 100_000_000  # safetensors refuses larger headers, so a larger length is not one

_TRUNCATED = (
    "the file is truncated ({}); it was cut short while being written or copied, so save or copy it again"
)
_TYPES_HELP = "checkpoints hold tensors, numpy arrays, dicts, lists, tuples, str, int, float, bool and None"


class CheckpointError(ChainruleError, ValueError):
    """A file that is not a checkpoint chainrule can load; the message names the file and the fix."""


class CheckpointNotFoundError(ChainruleError, FileNotFoundError):
    """``load`` was given a path where no file exists."""


# ---------------------------------------------------------------------------------------- saving


def save(obj, f):
    """Save ``obj`` -- a state dict, or any nesting of dicts, lists and tuples holding tensors,
    numpy arrays and plain scalars -- to ``f``, a path or a writable binary file object.

    Saving to a path is atomic: the bytes go to a temporary file in the same directory, which is
    fsynced and then renamed over ``f``. A crash at any moment leaves either the previous file or
    the new one, never a mix, and an error leaves the previous file untouched.
    """
    data = _serialize(obj)
    if isinstance(f, (str, os.PathLike)):
        _write_atomically(os.fspath(f), data)
    elif hasattr(f, "write"):
        f.write(data)
        if hasattr(f, "flush"):
            f.flush()
    else:
        raise TypeError(f"save() needs a path or a writable binary file object, got {type(f).__name__}")


def _serialize(obj):
    encoder = _Encoder()
    structure = encoder.encode(obj, ())
    metadata = {
        _VERSION_KEY: _FORMAT_VERSION,
        _STRUCTURE_KEY: json.dumps(structure, allow_nan=False, separators=(",", ":")),
    }
    tensors = {name: _tensor_crc(_DTYPE_CODES[a.dtype.name], a.shape, a) for name, a in encoder.arrays.items()}
    metadata[_CRC_KEY] = json.dumps({"metadata": _metadata_crc(metadata), "tensors": tensors})
    return safetensors.numpy.save(encoder.arrays, metadata=metadata)


def _tensor_crc(dtype_code, shape, data):
    """CRC-32 of a tensor's dtype, shape and bytes: a damaged shape or dtype is caught as well."""
    return zlib.crc32(data, zlib.crc32(f"{dtype_code}{list(shape)}".encode()))


def _metadata_crc(metadata):
    """CRC-32 of every metadata entry except the checksums themselves, in a canonical order."""
    entries = {key: value for key, value in metadata.items() if key != _CRC_KEY}
    return zlib.crc32(json.dumps(entries, sort_keys=True).encode())


class _Encoder:
    """Turns an object into JSON-ready structure, collecting its arrays under unique names."""

    def __init__(self):
        self.arrays = {}
        self._names = {}  # (address, shape, strides, dtype) -> name: one memory region is stored once
        self._open = set()  # ids of the containers being encoded, to refuse cycles

    def encode(self, obj, path):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, Tensor):
            where = obj.device
            if where.type != "cpu":  # a host copy, and where it came from (load puts it back there)
                return {"device_tensor": [self._add(obj.detach().cpu().numpy(), path), str(where)]}
            return {"tensor": self._add(obj.detach().numpy(), path)}
        if isinstance(obj, np.ndarray):
            return {"ndarray": self._add(obj, path)}
        if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass
            return {"npscalar": self._add(np.asarray(obj), path)}
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"float": repr(float(obj))}
        if isinstance(obj, (dict, list, tuple)):
            return self._encode_container(obj, path)
        raise TypeError(f"cannot save {type(obj).__name__} at {_show(path)}: {_TYPES_HELP}")

    def _encode_container(self, obj, path):
        if id(obj) in self._open:
            raise ValueError(f"cannot save {_show(path)}: it contains itself")
        self._open.add(id(obj))
        try:
            if isinstance(obj, dict):
                tag = "odict" if isinstance(obj, OrderedDict) else "dict"
                return {tag: [[_check_key(k, path), self.encode(v, (*path, k))] for k, v in obj.items()]}
            items = [self.encode(v, (*path, i)) for i, v in enumerate(obj)]
            return {"tuple": items} if isinstance(obj, tuple) else items
        finally:
            self._open.discard(id(obj))

    def _add(self, array, path):
        if array.dtype.name not in _DTYPE_CODES:
            raise TypeError(
                f"cannot save the array at {_show(path)}: its dtype {array.dtype} is not one of "
                f"{', '.join(_DTYPE_CODES)}; convert it first"
            )
        region = (array.__array_interface__["data"][0], array.shape, array.strides, array.dtype.str)
        if region in self._names:  # the same tensor under another name: refer to the stored one
            return self._names[region]
        base = ".".join(map(str, path)) or "tensor"
        name, n = base, 1
        while name in self.arrays:  # keys such as 'a.b' and ('a', 'b') would otherwise collide
            name, n = f"{base}#{n}", n + 1
        # safetensors copies raw memory, so views (a transpose, a slice) must be made contiguous.
        self.arrays[name] = array if array.flags.c_contiguous else array.copy(order="C")
        self._names[region] = name
        return name


def _check_key(key, path):
    if key is None or isinstance(key, (str, int)):  # bool is an int
        return key
    raise TypeError(
        f"cannot save the dict key {key!r} ({type(key).__name__}) in {_show(path)}: "
        "keys must be str, int, bool or None"
    )


def _show(path):
    return "obj" + "".join(f"[{k!r}]" for k in path)


def _write_atomically(path, data):
    path = os.path.realpath(path)  # through a symlink to its target, as open() would write
    directory, name = os.path.split(path)
    fd, tmp = _create_temp(directory, name)
    _remove_abandoned_temps(directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _create_temp(directory, name):
    """A new file next to the target; created with mode 0o666 so the umask applies as for open()."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT,
                "cannot save the checkpoint: its directory does not exist; create it first",
                directory,
            ) from None


def _remove_abandoned_temps(directory):
    """Delete the temporary files of saves whose process died (killed mid-write). Only names that
    ``_create_temp`` makes are touched, and only when their process is gone: a save under way in
    another process keeps its file."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = _TEMP_NAME.fullmatch(entry.name)
            if match and not _process_alive(int(match.group(1))) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _process_alive(pid):
    if os.name == "nt":  # os.kill would terminate it there; never remove what may be in use
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _fsync_directory(directory):
    """Make the rename durable. The new file is already in place, so a platform or file system that
    cannot sync a directory (Windows, some network mounts) is no reason to report failure."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------- loading


def load(f, map_location=None, weights_only=True, *, verify=True):
    """Load a checkpoint written by ``save`` from ``f``, a path or a readable binary file object.

    Returns the saved object with its tensors as chainrule tensors (same dtype and shape,
    ``requires_grad=False``). A plain safetensors file written by another tool loads as a dict
    of tensors by name. A file that is not a valid safetensors file is refused with
    ``CheckpointError``; nothing in the file is ever executed. Tensors saved from a GPU load back onto it;
    ``map_location`` (a device, or a dict from saved to wanted device, as in PyTorch) puts them elsewhere.
    ``weights_only`` is accepted for PyTorch compatibility: loading is always weights-only.

    The checksums stored by ``save`` are verified, so a damaged file is refused with an error that
    names the damaged tensor; ``verify=False`` skips reading every byte twice, for trusted files.
    """
    place = _placer(map_location)
    if isinstance(f, (str, os.PathLike)):
        name = os.fspath(f)
        try:
            with open(name, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise CheckpointNotFoundError(
                errno.ENOENT, "no checkpoint file at this path; check the path, or save one there first", name
            ) from None
    elif hasattr(f, "read"):
        name = getattr(f, "name", "<file object>")
        data = f.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"load() needs a binary file object: open {name!r} with mode 'rb'")
    else:
        raise TypeError(f"load() needs a path or a readable binary file object, got {type(f).__name__}")

    header = _read_header(data, name)
    try:
        arrays = safetensors.numpy.load(bytes(data))
    except safetensors.SafetensorError as e:
        raise CheckpointError(
            f"cannot load checkpoint {name!r}: it is not a valid safetensors file ({e})"
        ) from None
    metadata = header.get("__metadata__") or {}
    if verify:
        _verify(header, memoryview(data)[8 + int.from_bytes(data[:8], "little"):], name)
    return _rebuild(metadata, arrays, name, place)


def _verify(header, body, name):
    """Compare the checksums written by ``save`` with the file's metadata, shapes, dtypes and bytes."""
    metadata = header.get("__metadata__") or {}
    if not _KNOWN_KEYS & metadata.keys() or metadata.keys() == {_VERSION_KEY, _STRUCTURE_KEY}:
        return  # another tool's file, or one saved before checksums existed
    damaged = CheckpointError(f"cannot load checkpoint {name!r}: its header (the tensor table and metadata) is "
                              "damaged; the file was corrupted on disk or in transfer, so save or copy it again")
    try:
        sums = json.loads(metadata[_CRC_KEY])
        expected, stored = sums["tensors"], sums["metadata"]
    except (KeyError, ValueError, TypeError):
        raise damaged from None
    tensors = {key: entry for key, entry in header.items() if key != "__metadata__"}
    if metadata.keys() != _KNOWN_KEYS or stored != _metadata_crc(metadata) or set(expected) != set(tensors):
        raise damaged
    for key, entry in tensors.items():
        start, end = entry["data_offsets"]
        if expected[key] != _tensor_crc(entry["dtype"], entry["shape"], body[start:end]):
            raise CheckpointError(
                f"cannot load checkpoint {name!r}: tensor {key!r} is damaged (its checksum does not match its "
                "dtype, shape and bytes); the file was corrupted on disk or in transfer, so save or copy it "
                "again, or load(..., verify=False) to read it regardless"
            )


def _read_header(data, name):
    """Check the layout of a safetensors file and return its JSON header, or say what the file is
    instead: safetensors' own messages ("header too large") do not tell a user what went wrong."""

    def refuse(problem):
        return CheckpointError(f"cannot load checkpoint {name!r}: {problem}")

    size = len(data)
    if size == 0:
        raise refuse("the file is empty; it was never written completely, so save it again")
    header_len = int.from_bytes(data[:8], "little")
    if size < 8 or header_len > _MAX_HEADER_BYTES or data[8:9] not in (b"{", b""):
        raise refuse(_describe_foreign(data))
    if size < 8 + header_len:
        raise refuse(_TRUNCATED.format(f"{size} bytes, but its header alone needs {8 + header_len}"))
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]))
        entries = {key: entry for key, entry in header.items() if key != "__metadata__"}
        needed = 8 + header_len + max((entry["data_offsets"][1] for entry in entries.values()), default=0)
        dtypes = {key: entry["dtype"] for key, entry in entries.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise refuse(
            "its safetensors header is malformed; the file is damaged or not a safetensors file"
        ) from None
    if size < needed:
        raise refuse(_TRUNCATED.format(f"{size} bytes, but its header describes {needed}"))
    for key, dtype in dtypes.items():
        if dtype not in _DTYPE_CODES.values():
            raise refuse(
                f"tensor {key!r} has dtype {dtype}, which chainrule tensors cannot hold "
                f"(supported: {', '.join(_DTYPE_CODES.values())}); convert it before saving"
            )
    return header


def _describe_foreign(data):
    """What a file that does not start with a safetensors header is, as far as a user can act on it."""
    if data.startswith(b"PK\x03\x04"):
        return (
            "it is a zip archive (the format of torch.save), not a safetensors file, and chainrule never "
            "unpickles; convert it in PyTorch with "
            "safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')"
        )
    if data.startswith(b"\x80"):
        return (
            "it is a Python pickle, not a safetensors file; chainrule never unpickles because that can run "
            "arbitrary code, so save the tensors with chainrule.save or safetensors instead"
        )
    if len(data) < 8:
        return _TRUNCATED.format(f"{len(data)} bytes, fewer than the 8-byte safetensors length prefix")
    return "it is not a safetensors file (it does not start with a safetensors header)"


def _placer(map_location):
    """``place(array, saved device) -> tensor`` for ``load``'s ``map_location``."""
    if isinstance(map_location, dict):
        remap = {str(_device.device(k)): _device.device(v) for k, v in map_location.items()}
        return lambda array, saved: _on(array, remap.get(saved, saved))
    if map_location is None:
        return _on
    if not isinstance(map_location, (str, _device.device)):
        raise TypeError(f"load: map_location must be a device, a device string or a dict of them, "
                        f"got {type(map_location).__name__}")
    where = _device.device(map_location)
    return lambda array, saved: _on(array, where)


def _on(array, where):
    where = _device.device(where)
    if where.type == "cuda" and _device.cuda_backend() is None:
        raise RuntimeError("Attempting to deserialize object on a CUDA device but chainrule.cuda.is_available() is "
                           "False. If you are running on a CPU-only machine, please use chainrule.load with "
                           "map_location=chainrule.device('cpu') to map your storages to the CPU.")
    return from_numpy(array).to(where)


def _rebuild(metadata, arrays, name, place=_on):
    if _VERSION_KEY not in metadata:  # a plain safetensors file from another tool
        return {key: from_numpy(array) for key, array in arrays.items()}
    version = metadata[_VERSION_KEY]
    if version != _FORMAT_VERSION:
        raise CheckpointError(
            f"cannot load checkpoint {name!r}: it is in chainrule checkpoint format {version}, and this "
            f"chainrule reads format {_FORMAT_VERSION}; upgrade chainrule to load it"
        )
    try:
        return _Decoder(arrays, place).decode(json.loads(metadata[_STRUCTURE_KEY]))
    except (KeyError, ValueError, TypeError, RecursionError) as e:
        raise CheckpointError(
            f"cannot load checkpoint {name!r}: its chainrule metadata is corrupt ({type(e).__name__}: {e}); "
            "the file was damaged or edited, so save it again"
        ) from None


class _Decoder:
    """The inverse of ``_Encoder``. The structure comes from an untrusted file, so anything
    unexpected raises ValueError/TypeError/KeyError, which ``load`` reports as corruption."""

    def __init__(self, arrays, place):
        self.arrays = arrays
        self.place = place  # (array, saved device) -> tensor on the device map_location asks for

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(x) for x in node]
        if isinstance(node, dict) and len(node) == 1:
            ((tag, value),) = node.items()
            if tag == "tuple":
                return tuple(self.decode(x) for x in _expect_list(value))
            if tag in ("dict", "odict"):
                pairs = ((key, self.decode(v)) for key, v in _expect_list(value))
                return OrderedDict(pairs) if tag == "odict" else dict(pairs)
            if tag == "tensor":
                return self.place(self._array(value), "cpu")
            if tag == "device_tensor":
                name, saved = _expect_list(value)
                return self.place(self._array(name), str(_device.device(saved)))
            if tag == "ndarray":
                return self._array(value)
            if tag == "npscalar":
                return self._array(value)[()]
            if tag == "float" and value in ("nan", "inf", "-inf"):
                return float(value)
        raise ValueError(f"unexpected entry {node!r}")

    def _array(self, name):
        if not isinstance(name, str) or name not in self.arrays:
            raise ValueError(f"it refers to a tensor {name!r} that the file does not contain")
        return self.arrays[name]


def _expect_list(value):
    if not isinstance(value, list):
        raise ValueError(f"expected a list, found {value!r}")
    return value

