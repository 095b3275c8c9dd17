"""chainrule.datasets: MNIST from the original IDX files, load_idx, and the Digits dataset."""

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.datasets import MNIST, Digits, load_idx
from chainrule.datasets.digits import upsample_bilinear
from chainrule.utils.data import DataLoader

MNIST_DIR = Path("/work/shared/data/mnist")
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_FILES = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"the MNIST files are not in {MNIST_DIR}")


@pytest.fixture(scope="module")
def mnist_train():
    return MNIST(MNIST_DIR, train=True)


@pytest.fixture(scope="module")
def mnist_test():
    return MNIST(MNIST_DIR, train=False)


def raw_copy(directory, names=TEST_FILES):
    """Write the given MNIST files uncompressed into ``directory``; return their contents."""
    contents = {}
    for name in names:
        contents[name] = bytearray(gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes()))
        (directory / name).write_bytes(contents[name])
    return contents


# --- MNIST ---------------------------------------------------------------------------------------

@needs_mnist
def test_mnist_train_split(mnist_train):
    assert len(mnist_train) == 60000
    assert mnist_train.data.shape == (60000, 28, 28) and mnist_train.data.dtype == cr.uint8
    assert mnist_train.targets.dtype == cr.int64
    labels = mnist_train.targets.numpy()
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(labels).tolist() == TRAIN_COUNTS


@needs_mnist
def test_mnist_test_split_items_and_arrays(mnist_test):
    assert len(mnist_test) == 10000
    assert mnist_test.targets.numpy()[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist_test.targets.numpy()).tolist() == TEST_COUNTS
    image, label = mnist_test[0]
    assert image.shape == (1, 28, 28) and image.dtype == cr.float32 and label == 7 and isinstance(label, int)
    pixels = image.numpy()
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    np.testing.assert_array_equal(pixels[0] * 255, mnist_test.data.numpy()[0])

    images, labels = mnist_test.arrays()
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(images[123], mnist_test[123][0].numpy())

    flipped = MNIST(MNIST_DIR, train=False, transform=lambda t: 1 - t, target_transform=lambda y: y + 10)
    image, label = flipped[0]
    assert label == 17 and image.numpy().max() == 1.0 and image.numpy()[0, 0, 0] == 1.0


@needs_mnist
def test_mnist_through_dataloader_workers(mnist_test):
    loader = DataLoader(mnist_test, batch_size=1000, num_workers=2)
    labels = np.concatenate([y.numpy() for _, y in loader])
    np.testing.assert_array_equal(labels, mnist_test.targets.numpy())


@needs_mnist
def test_mnist_reads_uncompressed_and_recompressed_files(tmp_path, mnist_test):
    raw_copy(tmp_path)
    raw = MNIST(tmp_path, train=False)
    np.testing.assert_array_equal(raw.data.numpy(), mnist_test.data.numpy())
    np.testing.assert_array_equal(raw.targets.numpy(), mnist_test.targets.numpy())

    # A .gz made by another gzip has a different MD5 but the original content: accepted.
    images = tmp_path / "t10k-images-idx3-ubyte"
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(images.read_bytes(), compresslevel=1))
    images.unlink()
    np.testing.assert_array_equal(MNIST(tmp_path, train=False).data.numpy(), mnist_test.data.numpy())


def test_mnist_missing_file_says_which_and_what_to_do(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path, train=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and str(tmp_path) in message and "Download" in message
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz .* does not download"):
        MNIST(tmp_path, train=True, download=True)


@needs_mnist
def test_mnist_truncated_file(tmp_path):
    contents = raw_copy(tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(contents["t10k-images-idx3-ubyte"][:5000])
    with pytest.raises(ValueError, match=rf"{images}: truncated: .* 7840000 bytes of data, but the file holds 4984"):
        MNIST(tmp_path, train=False)
    images.unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes((MNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes()[:4000])
    with pytest.raises(ValueError, match="gzip data is truncated or corrupt"):
        MNIST(tmp_path, train=False)


@needs_mnist
def test_mnist_bad_magic_number(tmp_path):
    contents = raw_copy(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x12\x34\x56\x78" + contents["t10k-labels-idx1-ubyte"][4:])
    with pytest.raises(ValueError, match=rf"{labels}: not an IDX file: bad magic number 0x12345678"):
        MNIST(tmp_path, train=False)
    # A well-formed IDX file in the wrong place: labels where the images should be.
    labels.write_bytes(contents["t10k-labels-idx1-ubyte"])
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(contents["t10k-labels-idx1-ubyte"])
    with pytest.raises(ValueError, match="magic number 0x00000801, but t10k-images-idx3-ubyte must start with "
                                         "0x00000803"):
        MNIST(tmp_path, train=False)


@needs_mnist
def test_mnist_md5_mismatch(tmp_path):
    contents = raw_copy(tmp_path)
    images = tmp_path / "t10k-images-idx3-ubyte"
    damaged = contents["t10k-images-idx3-ubyte"]
    damaged[1000] ^= 0xFF  # one pixel: the structure is intact, only the checksum can tell
    images.write_bytes(damaged)
    with pytest.raises(ValueError, match=rf"{images} is corrupt: the MD5 of its content is [0-9a-f]{{32}}, but "
                                         r"the original t10k-images-idx3-ubyte's is 2646ac647ad5339dbf082846283269ea"):
        MNIST(tmp_path, train=False)
    images.unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(damaged), compresslevel=1))
    with pytest.raises(ValueError, match="is corrupt: the MD5 of its decompressed content"):
        MNIST(tmp_path, train=False)


@needs_mnist
def test_mnist_image_and_label_counts_must_agree(tmp_path):
    contents = raw_copy(tmp_path)
    labels = contents["t10k-labels-idx1-ubyte"]
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(labels[:4] + struct.pack(">I", 9999) + labels[8:-1])
    with pytest.raises(ValueError, match="holds 10000 images but .* holds 9999 labels"):
        MNIST(tmp_path, train=False)


# --- load_idx -----------------------------------------------------------------------------------

def test_load_idx_types_gzip_and_errors(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    content = b"\x00\x00\x0d\x02" + struct.pack(">II", 2, 3) + values.astype(">f4").tobytes()
    (tmp_path / "floats.idx").write_bytes(content)
    (tmp_path / "floats.idx.gz").write_bytes(gzip.compress(content))
    for name in ("floats.idx", "floats.idx.gz"):
        array = load_idx(tmp_path / name)
        assert array.dtype == np.float32 and array.dtype.isnative and array.flags.writeable
        np.testing.assert_array_equal(array, values)
    (tmp_path / "long.idx").write_bytes(content + b"\x00")
    with pytest.raises(ValueError, match="long.idx: has trailing bytes"):
        load_idx(tmp_path / "long.idx")
    (tmp_path / "short.idx").write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="short.idx: truncated"):
        load_idx(tmp_path / "short.idx")


@needs_mnist
def test_load_idx_on_original_file():
    labels = load_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8 and labels[:3].tolist() == [7, 2, 1]


# --- Digits -------------------------------------------------------------------------------------

def test_digits_split_shapes_and_determinism():
    pytest.importorskip("sklearn")
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 359
    image, label = train[0]
    assert image.shape == (1, 32, 32) and image.dtype == cr.float32 and isinstance(label, int)
    images, labels = train.arrays()
    assert images.shape == (len(train), 1, 32, 32) and labels.dtype == np.int64
    assert images.min() == 0.0 and images.max() <= 1.0 and images.max() > 0.9
    counts = np.bincount(labels, minlength=10) + np.bincount(test.targets.numpy(), minlength=10)
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert np.allclose(np.bincount(test.targets.numpy()) / counts, 0.2, atol=0.01)  # stratified

    np.testing.assert_array_equal(Digits(train=False).data.numpy(), test.data.numpy())
    assert not np.array_equal(Digits(train=False, seed=1).targets.numpy(), test.targets.numpy())
    assert Digits(train=False, size=16).data.shape == (359, 16, 16)


def test_digits_upsampling_is_bilinear():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    originals = sklearn_datasets.load_digits().images / 16
    np.testing.assert_allclose(upsample_bilinear(originals[:5], 8), originals[:5])  # same size: identity
    up = upsample_bilinear(originals[:5], 32)
    assert np.allclose(up.mean(axis=(1, 2)), originals[:5].mean(axis=(1, 2)), atol=0.02)
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.interpolate(torch.from_numpy(originals[:5, None]), size=(32, 32),
                                               mode="bilinear", align_corners=False)
    np.testing.assert_allclose(up, expected[:, 0].numpy(), atol=1e-12)


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install scikit-learn \(or pip install chainrule\[train\]\)"):
        Digits()
