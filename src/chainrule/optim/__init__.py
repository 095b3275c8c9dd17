"""Optimizers and learning-rate schedulers with PyTorch's API (``torch.optim``)::

    opt = chainrule.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = chainrule.optim.lr_scheduler.StepLR(opt, step_size=10)
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        sched.step()
"""

from .._missing import module_getattr
from . import lr_scheduler
from .adam import Adam, AdamW
from .adaptive import Adadelta, Adagrad, RMSprop
from .optimizer import Optimizer, required
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad", "lr_scheduler", "required"]

__getattr__ = module_getattr("chainrule.optim", "torch.optim")
