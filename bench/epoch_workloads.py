"""Whole-epoch benchmarks (issue 13): LeNet-5 trained on real MNIST for one epoch, chainrule against PyTorch.

A step benchmark times the model alone; an epoch also pays for batching, shuffling, ``loss.item()``,
the optimizer over every parameter and evaluation. Both workloads use the recipe of the issue:
LeNet-5 (``input_size=28``), batch 64, shuffled, SGD with momentum 0.9, and start from the same
weights (the PyTorch model gets chainrule's ``state_dict``).

- ``lenet_mnist_epoch``: the plain training loop in each framework's own ``DataLoader`` over
  ``TensorDataset(MNIST train)``: zero_grad, forward, ``CrossEntropyLoss``, backward, ``SGD(lr=0.01,
  momentum=0.9)`` step, ``loss.item()``. Target <= 1.1x PyTorch.
- ``lenet_mnist_train``: ``chainrule train --dataset mnist --optimizer sgd --epochs 1 --no-progress``
  (the command's own loop: Nesterov momentum, the cosine schedule, the per-epoch test evaluation) against
  the same program written in PyTorch. Target <= 1.1x PyTorch.

An epoch is 938 steps, about half a minute per framework on the 2-core development machine, so these
run only when named: ``python -m bench epoch`` (about 7 minutes for both).
"""

import argparse
import contextlib
import io

import numpy as np

from .harness import Workload
from .nn_workloads import MNIST_DIR, _chainrule, _lenet_cr, _lenet_torch, _to_torch, _torch

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BATCH, LR, MOMENTUM = 64, 0.01, 0.9


def _mnist(train=True):
    from chainrule.datasets import MNIST

    images, labels = MNIST(MNIST_DIR, train=train).arrays()
    return ((images - MNIST_MEAN) / MNIST_STD).astype(np.float32), labels


def _models(framework):
    """The framework's LeNet-5 and its ``lib``, from chainrule's seed-0 weights."""
    cr = _chainrule()
    cr.manual_seed(0)
    model = _lenet_cr(cr)
    if framework == "torch":
        torch = _torch()
        return _to_torch(torch, model, _lenet_torch(torch)), torch
    return model, cr


def make_lenet_mnist_epoch(framework):
    """The plain loop: one shuffled epoch of SGD with momentum through the framework's DataLoader."""
    model, lib = _models(framework)
    x, y = _mnist()
    loader = lib.utils.data.DataLoader(lib.utils.data.TensorDataset(lib.from_numpy(x), lib.from_numpy(y)),
                                       batch_size=BATCH, shuffle=True)
    loss_fn = lib.nn.CrossEntropyLoss()
    opt = lib.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def epoch():
        for images, labels in loader:
            opt.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            opt.step()
            loss.item()

    return epoch


def make_lenet_mnist_train(framework):
    """``chainrule train`` for one epoch, or the same program in PyTorch."""
    if framework == "torch":
        return _torch_train()
    import chainrule.__main__ as cli

    argv = ["train", "--dataset", "mnist", "--data-dir", MNIST_DIR, "--optimizer", "sgd", "--epochs", "1",
            "--batch-size", str(BATCH), "--lr", str(LR), "--no-progress", "--device", "cpu"]

    def epoch():
        with contextlib.redirect_stdout(io.StringIO()):  # its per-epoch report line
            cli.main(argv)

    return epoch


def _torch_train():
    """What ``chainrule.train.train`` does for one epoch, in PyTorch: load and normalise MNIST, build
    LeNet-5, SGD with Nesterov momentum and a cosine schedule, train with ``loss.item()`` per step,
    step the schedule, score the test set in batches of 1000."""
    torch = _torch()

    def epoch():
        torch.manual_seed(0)
        (x, y), (x_test, y_test) = _mnist(), _mnist(train=False)
        model = _lenet_torch(torch)
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1)
        loss_fn = torch.nn.CrossEntropyLoss()
        generator = torch.Generator()
        generator.manual_seed(0)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                             batch_size=BATCH, shuffle=True, generator=generator)
        running = 0.0
        for images, labels in loader:
            opt.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            opt.step()
            running += loss.item() * len(labels)
        schedule.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(x_test), 1000):
                logits = model(torch.from_numpy(x_test[start:start + 1000]))
                correct += int((logits.argmax(1).numpy() == y_test[start:start + 1000]).sum())
        model.train()
        return argparse.Namespace(loss=running / len(x), accuracy=correct / len(x_test))

    return epoch


EPOCH_WORKLOADS = {
    "lenet_mnist_epoch": Workload("lenet_mnist_epoch", make_lenet_mnist_epoch, unit="epoch", rounds=3,
                                  steps_per_round=1, target=1.1),
    "lenet_mnist_train": Workload("lenet_mnist_train", make_lenet_mnist_train, unit="epoch", rounds=3,
                                  steps_per_round=1, target=1.1),
}
