"""Reading IDX files, the format of the original MNIST distribution.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order, big-endian.
"""

import gzip
import math
import struct
import zlib

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def load_idx(path):
    """Read the IDX file at ``path`` (gzipped or not: the content decides, not the name) into a
    numpy array in native byte order. Raises ValueError naming the file when it is not a
    well-formed IDX file: wrong magic number, truncated, or with bytes left over."""
    return parse_idx(read_idx_bytes(path)[1], path)


def read_idx_bytes(path):
    """The file's bytes and its content (the same bytes, or their decompression when gzipped)."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw, raw
    try:
        return raw, gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{path}: the gzip data is truncated or corrupt ({exc}); download the file again") from None


def parse_idx(content, path="<bytes>"):
    """The array stored in ``content``, the bytes of an uncompressed IDX file (``path`` is only
    for error messages)."""
    if len(content) < 4:
        raise ValueError(f"{path}: truncated: {len(content)} bytes, too short even for the 4-byte magic number")
    magic = int.from_bytes(content[:4], "big")
    type_code, ndim = content[2], content[3]
    if content[0] or content[1] or type_code not in _TYPES:
        raise ValueError(f"{path}: not an IDX file: bad magic number 0x{magic:08x} (it must be two zero bytes, "
                         f"a type code among {', '.join(f'0x{c:02x}' for c in _TYPES)}, and the number of "
                         f"dimensions)")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(f"{path}: truncated: the magic number announces {ndim} dimensions, but the file ends "
                         f"inside their sizes ({len(content)} bytes)")
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    dtype = np.dtype(_TYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize
    found = len(content) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise ValueError(f"{path}: {problem}: the header declares shape {shape} of {dtype.name}, which is "
                         f"{expected} bytes of data, but the file holds {found}")
    array = np.frombuffer(content, dtype, count=math.prod(shape), offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a native, writable copy
