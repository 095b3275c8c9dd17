"""Ready-made models: LeNet-5 and a multilayer perceptron."""

from .lenet import MLP, LeNet5

__all__ = ["LeNet5", "MLP"]
