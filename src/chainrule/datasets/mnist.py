"""MNIST from the original IDX files, verified against their published MD5 checksums."""

import hashlib
from pathlib import Path

import numpy as np

import chainrule as cr

from ._images import LabelledImages
from .idx import parse_idx, read_idx_bytes

_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision downloads from

# name -> (MD5 of the original .gz file, MD5 of its decompressed content)
_MD5 = {
    "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
}


class MNIST(LabelledImages):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grayscale.

    ``root`` is a directory holding the four original files, each gzipped
    (``train-images-idx3-ubyte.gz``) or not (``train-images-idx3-ubyte``; the spelling
    ``train-images.idx3-ubyte`` is accepted too). Each file's structure and MD5 are checked, and
    a missing or damaged file is reported by name. chainrule does not download: ``download=True``
    is accepted for torchvision compatibility and only changes the advice in that error.

    ``dataset[i]`` is ``(image, label)``: a float32 tensor of shape (1, 28, 28) scaled to [0, 1]
    and an int, passed through ``transform`` / ``target_transform`` when given. For speed, skip
    the per-item path: ``.data`` (uint8 tensor N x 28 x 28) and ``.targets`` (int64 tensor N)
    hold the whole split, and ``arrays()`` returns it ready for training.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = Path(root).expanduser()
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        split = "train" if train else "t10k"
        images_path = _find(self.root, f"{split}-images-idx3-ubyte", download)
        labels_path = _find(self.root, f"{split}-labels-idx1-ubyte", download)
        images, images_raw = _load(images_path, f"{split}-images-idx3-ubyte", magic=0x0803)
        labels, labels_raw = _load(labels_path, f"{split}-labels-idx1-ubyte", magic=0x0801)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, MNIST's are 28x28")
        if len(images) != len(labels):
            raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                             f"labels; the two files must come from the same split")
        _check_md5(images_path, f"{split}-images-idx3-ubyte", *images_raw)
        _check_md5(labels_path, f"{split}-labels-idx1-ubyte", *labels_raw)
        self._images = images
        self._labels = labels.astype(np.int64)
        self.data = cr.from_numpy(self._images)
        self.targets = cr.from_numpy(self._labels)

    def _image_tensor(self, index):
        return cr.from_numpy(np.divide(self._images[index], 255, dtype=np.float32)[None])

    def arrays(self):
        """The whole split as numpy arrays, for loops that batch by slicing rather than per item:
        images float32 (N, 1, 28, 28) in [0, 1] and labels int64 (N,). Transforms are not applied."""
        return np.divide(self._images[:, None], 255, dtype=np.float32), self._labels.copy()

    def __repr__(self):
        return (f"Dataset MNIST\n    Number of datapoints: {len(self)}\n    Root location: {self.root}\n"
                f"    Split: {'Train' if self.train else 'Test'}")


def _find(root, name, download):
    """The path of MNIST file ``name`` in ``root``, gzipped or not, or a FileNotFoundError saying what to do."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (f"{name}.gz", name, f"{dotted}.gz", dotted):
        if (root / candidate).is_file():
            return root / candidate
    advice = (" chainrule does not download datasets (download=True only asks it to)." if download else "")
    raise FileNotFoundError(
        f"MNIST file {name}.gz (or uncompressed {name}) not found in {root}.{advice} Download the original "
        f"file, e.g. {_MIRROR}{name}.gz, and put it in that directory, gzipped or not; or pass as root the "
        f"directory that already holds the MNIST files.")


def _load(path, name, magic):
    """The array in an MNIST file, checked for structure and magic number, and the file's
    (bytes, content) for the MD5 check."""
    raw, content = read_idx_bytes(path)
    array = parse_idx(content, path)
    found = int.from_bytes(content[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: magic number 0x{found:08x}, but {name} must start with 0x{magic:08x}; "
                         f"is it the right file?")
    return array, (raw, content)


def _check_md5(path, name, raw, content):
    """Accept the original .gz by its own MD5, anything else (raw, re-compressed) by its content's."""
    gz_md5, content_md5 = _MD5[name]
    if raw is not content and hashlib.md5(raw).hexdigest() == gz_md5:
        return
    got = hashlib.md5(content).hexdigest()
    if got != content_md5:
        raise ValueError(f"{path} is corrupt: the MD5 of its {'decompressed ' if raw is not content else ''}"
                         f"content is {got}, but the original {name}'s is {content_md5}. Delete it and "
                         f"download the original again, e.g. from {_MIRROR}{name}.gz")
