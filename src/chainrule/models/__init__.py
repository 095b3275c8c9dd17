"""Ready-made models: LeNet-5, a multilayer perceptron, and character-level language models (GPT, LSTM)."""

from .charlm import CharGPT, CharLSTM
from .lenet import MLP, LeNet5

__all__ = ["CharGPT", "CharLSTM", "LeNet5", "MLP"]
