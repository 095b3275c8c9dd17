"""TensorBoard logging with PyTorch's API: ``chainrule.utils.tensorboard.SummaryWriter``.

Needs the ``tensorboard`` package (``pip install tensorboard``): the event files are written with
its own protobufs and record writer, so ``tensorboard --logdir runs`` reads them as usual.

    from chainrule.utils.tensorboard import SummaryWriter

    with SummaryWriter("runs/lenet") as writer:
        writer.add_graph(model, example_batch)
        for step, loss in enumerate(losses):
            writer.add_scalar("train/loss", loss, step)
"""

try:
    import tensorboard  # noqa: F401
except ImportError:
    raise ImportError("chainrule.utils.tensorboard needs the 'tensorboard' package: pip install tensorboard "
                      "(or: pip install chainrule[tensorboard])") from None

from .writer import FileWriter, SummaryWriter

__all__ = ["FileWriter", "SummaryWriter"]
