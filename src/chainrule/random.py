"""Random number generation: PyTorch's Generator API over numpy's PCG64.

Streams differ from PyTorch's (values are not bit-identical), but seeding gives the same
reproducibility guarantees: the same seed yields the same sequence. As in PyTorch, the default
generator starts from a random seed in every process (``initial_seed()`` tells which), and a new
``Generator()`` from PyTorch's fixed default seed.
"""

import numpy as np


class Generator:
    """A seeded source of random numbers (``manual_seed`` returns the generator, as in PyTorch)."""

    def __init__(self, device="cpu"):
        self.device = device
        self.manual_seed(67280421310721)  # PyTorch's seed for a new Generator

    def manual_seed(self, seed):
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self):
        """Re-seed from fresh entropy and return the new seed."""
        new_seed = int(np.random.SeedSequence().entropy % (1 << 63))
        self.manual_seed(new_seed)
        return new_seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return self._rng.bit_generator.state

    def set_state(self, state):
        self._rng.bit_generator.state = state
        return self


default_generator = Generator()
default_generator.seed()  # as in PyTorch, each process starts from a fresh random seed (cr.manual_seed pins it)


def manual_seed(seed):
    """Seed the default generator (what ``chainrule.manual_seed`` does)."""
    return default_generator.manual_seed(seed)


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)


def rng(generator=None):
    """The numpy Generator behind ``generator`` (or the default one)."""
    return (generator if generator is not None else default_generator)._rng
