"""scikit-learn's bundled handwritten digits, upsampled to LeNet-5's 32x32 input size."""

import numpy as np

import chainrule as cr

from ._images import LabelledImages


class Digits(LabelledImages):
    """The 1,797 8x8 digit images bundled with scikit-learn (16 gray levels), as 32x32 images.

    Needs scikit-learn (``pip install scikit-learn``, or ``pip install chainrule[train]``), which
    ships the data, so nothing is downloaded. Images are scaled to [0, 1] and upsampled by
    bilinear interpolation with pixel centres aligned (``align_corners=False``), which keeps the
    strokes smooth and the values in [0, 1]. The train/test split is stratified by class and
    fixed by ``seed``: each class contributes ``round(test_fraction * count)`` test images.

    ``dataset[i]`` is ``(image, label)``: a float32 tensor (1, size, size) and an int. ``.data``
    (float32 tensor N x size x size), ``.targets`` (int64 tensor N) and ``arrays()`` give the
    whole split at once.
    """

    def __init__(self, train=True, size=32, test_fraction=0.2, seed=0, transform=None, target_transform=None):
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
        digits = _load_digits()
        images = upsample_bilinear(digits.images / 16.0, size).astype(np.float32)
        labels = digits.target.astype(np.int64)
        test = _stratified_test_mask(labels, test_fraction, seed)
        keep = ~test if train else test
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self._images = images[keep]
        self._labels = labels[keep]
        self.data = cr.from_numpy(self._images)
        self.targets = cr.from_numpy(self._labels)

    def _image_tensor(self, index):
        return cr.from_numpy(self._images[index][None].copy())

    def arrays(self):
        """The whole split as numpy arrays: images float32 (N, 1, size, size), labels int64 (N,)."""
        return self._images[:, None].copy(), self._labels.copy()


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("Digits needs scikit-learn, which bundles the data: pip install scikit-learn "
                          "(or pip install chainrule[train])") from exc
    return load_digits()


def _stratified_test_mask(labels, test_fraction, seed):
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[:round(test_fraction * len(members))]] = True
    return test


def _interpolation_matrix(n_in, n_out):
    """The (n_out, n_in) matrix of 1-D linear interpolation weights, pixel centres aligned."""
    position = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    weight = position - low
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), low] += 1 - weight
    matrix[np.arange(n_out), high] += weight
    return matrix


def upsample_bilinear(images, size):
    """Resize a stack of square images (N, h, h) to (N, size, size) by bilinear interpolation."""
    matrix = _interpolation_matrix(images.shape[-1], size)
    return matrix @ images @ matrix.T
