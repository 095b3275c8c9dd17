"""Datasets read from local files or bundled packages (chainrule never downloads).

``MNIST`` reads the original IDX files; ``Digits`` is scikit-learn's 8x8 digits upsampled to
32x32; ``load_idx`` reads any IDX file.
"""

from .digits import Digits
from .idx import load_idx
from .mnist import MNIST

__all__ = ["MNIST", "Digits", "load_idx"]
