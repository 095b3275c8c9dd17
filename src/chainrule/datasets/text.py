"""Character-level text for language models: a bundled public-domain text and a character vocabulary.

The bundled text is the United States Declaration of Independence (1776; public domain), about 8 KB,
typed in for this package: enough for a small character model to learn words and phrases in a minute.
"""

from importlib import resources

import numpy as np

BUNDLED = {"declaration": "declaration.txt"}


def load_text(name="declaration"):
    """A bundled text by name."""
    if name not in BUNDLED:
        raise ValueError(f"load_text: unknown text {name!r}; bundled texts: {', '.join(sorted(BUNDLED))}")
    return resources.files(__package__).joinpath("data", BUNDLED[name]).read_text(encoding="utf-8")


class CharVocab:
    """The characters of a text, sorted, each with an integer id (``encode``/``decode``)."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self._ids = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        unknown = sorted(set(text) - set(self._ids))
        if unknown:
            raise ValueError(f"CharVocab.encode: characters not in the vocabulary: {''.join(unknown)!r}")
        return np.fromiter((self._ids[c] for c in text), np.int64, len(text))

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


def random_windows(ids, length, batch_size, rng):
    """``batch_size`` random windows of ``length + 1`` ids: inputs and next-character targets (N, length)."""
    starts = rng.integers(0, len(ids) - length - 1, batch_size)
    windows = np.stack([ids[s:s + length + 1] for s in starts])
    return windows[:, :-1], windows[:, 1:]
