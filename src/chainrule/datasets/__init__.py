"""Datasets read from local files or bundled packages (chainrule never downloads).

``MNIST`` reads the original IDX files; ``Digits`` is scikit-learn's 8x8 digits upsampled to
32x32; ``load_idx`` reads any IDX file; ``load_text`` gives a bundled public-domain text for character
language models (``CharVocab`` maps its characters to ids).
"""

from .digits import Digits
from .idx import load_idx
from .mnist import MNIST
from .text import CharVocab, load_text, random_windows

__all__ = ["MNIST", "CharVocab", "Digits", "load_idx", "load_text", "random_windows"]
