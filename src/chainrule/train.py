"""``chainrule train``: train LeNet-5 or an MLP on handwritten digits, from the command line.

The default run needs no download: scikit-learn's bundled 8x8 digits, upsampled to 32x32.
``--dataset mnist --data-dir DIR`` trains on the original MNIST files in DIR. ``--model gpt`` and
``--model lstm`` train character-level language models on a bundled text (see ``train_text``).

``--nproc N`` trains data-parallel in N processes (started through ``chainrule run``, i.e. mpiexec):
``DistributedDataParallel`` averages the gradients, a ``DistributedSampler`` gives each rank its shard,
``--batch-size`` is per process, and only rank 0 prints, writes checkpoints and TensorBoard files.
"""

import time
import warnings
from pathlib import Path

import numpy as np

import chainrule as cr
from chainrule import distributed as dist
from chainrule import nn, train_text
from chainrule.datasets import MNIST, Digits
from chainrule.datasets.text import BUNDLED
from chainrule.distributed.run import launch, launched_by_mpi
from chainrule.models import MLP, LeNet5
from chainrule.utils.data import DataLoader, DistributedSampler, TensorDataset

DEFAULTS = {  # per dataset: epochs, batch size, learning rate (Adam)
    "digits": (15, 32, 2e-3),
    "mnist": (10, 64, 1e-3),
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MNIST_NEEDS_DATA_DIR = "chainrule train: --dataset mnist needs --data-dir DIR with the four MNIST IDX files"
IMAGE_DATASETS = ("digits", "mnist")


def register(subparsers):
    p = subparsers.add_parser("train", help="train LeNet-5 or an MLP on digits or MNIST, or a character GPT/LSTM",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("lenet5", "mlp") + train_text.MODELS, default="lenet5")
    p.add_argument("--dataset", choices=IMAGE_DATASETS + tuple(BUNDLED), default=None,
                   help="digits (default) or mnist for image models; a bundled text (declaration) for gpt/lstm")
    p.add_argument("--text-file", default=None, help="train --model gpt/lstm on this UTF-8 text file instead")
    p.add_argument("--steps", type=int, default=None, help="training steps of --model gpt/lstm")
    p.add_argument("--compile", action="store_true",
                   help="--model gpt/lstm: trace the training step once into a static-graph program (cr.compile)")
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (for --dataset mnist)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--momentum", type=float, default=0.9, help="for --optimizer sgd")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--nproc", type=int, default=None,
                   help="train data-parallel in this many processes (via mpiexec); --batch-size is per process")
    p.add_argument("--checkpoint-dir", default=None, help="save model and optimizer here after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    p.add_argument("--tensorboard", metavar="DIR", default=None,
                   help="log loss, accuracy, learning rate and the model graph for TensorBoard")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to train: auto picks the GPU when one is usable (CuPy and a driver)")
    p.set_defaults(func=run)


def load_data(dataset, data_dir):
    """Train and test arrays: images float32 (N, 1, H, W), normalised; labels int64."""
    if dataset == "digits":
        try:
            (x_train, y_train), (x_test, y_test) = Digits(train=True).arrays(), Digits(train=False).arrays()
        except ImportError as exc:  # scikit-learn, which bundles the digits, is an optional extra
            raise SystemExit(f"chainrule train: {exc}") from exc
        mean, std = x_train.mean(), x_train.std()
    else:
        if data_dir is None:
            raise SystemExit(MNIST_NEEDS_DATA_DIR)
        try:  # a missing or corrupt file: the dataset's message names it; no traceback on the command line
            (x_train, y_train) = MNIST(data_dir, train=True).arrays()
            (x_test, y_test) = MNIST(data_dir, train=False).arrays()
        except (OSError, ValueError) as exc:
            raise SystemExit(f"chainrule train: {exc}") from exc
        mean, std = MNIST_MEAN, MNIST_STD
    return (_normalise(x_train, mean, std), y_train), (_normalise(x_test, mean, std), y_test)


def _normalise(x, mean, std):
    """(x - mean) / std in place: ``x`` is a fresh float32 array, and for MNIST's 188 MB the two
    temporaries of the plain expression cost more than the arithmetic (the values are the same)."""
    x = x.astype(np.float32, copy=False)
    x -= mean
    x /= std
    return x


def build_model(name, image_shape):
    channels, height, width = image_shape
    if name == "lenet5":
        return LeNet5(in_channels=channels, input_size=height)
    return MLP(in_features=channels * height * width)


def build_optimizer(args, params):
    if args.optimizer == "sgd":
        return cr.optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.momentum > 0)
    cls = cr.optim.Adam if args.optimizer == "adam" else cr.optim.AdamW
    return cls(params, lr=args.lr)


def cosine_schedule(optimizer, lr, epochs, start_epoch=0):
    """Cosine annealing from ``lr`` over ``epochs``, advanced to ``start_epoch``.

    On resume the schedule is replayed from the command line rather than loaded from the
    checkpoint: the interrupted run may have planned fewer epochs (``--epochs 1``, then
    ``--resume --epochs 2``), and its saved schedule would then continue at a rate of 0. Replaying
    PyTorch's recursive formula gives the rates of an uninterrupted run bit for bit.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["initial_lr"] = lr
    scheduler = cr.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": this is a replay
        for _ in range(min(start_epoch, epochs)):
            scheduler.step()
    return scheduler


def pick_device(name):
    """``--device``: auto is the GPU when one is usable, else the CPU; cuda without a GPU says what is missing."""
    if name == "auto":
        name = "cuda" if cr.cuda.is_available() else "cpu"
    try:
        return cr.zeros(0, device=name).device  # with its index: cuda:0
    except AssertionError as exc:
        raise SystemExit(f"chainrule train: --device {name}: {exc}") from None


def evaluate(model, x, y, batch_size=1000, device="cpu"):
    """Accuracy of ``model`` on arrays ``x``, ``y``, in eval mode and without recording the tape.

    In a process group each rank scores its share of the images and the counts are summed."""
    world, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    model.eval()
    correct = 0
    with cr.no_grad():
        for start in range(rank * batch_size, len(x), world * batch_size):
            logits = model(cr.from_numpy(x[start:start + batch_size]).to(device))
            correct += int((logits.argmax(1).cpu().numpy() == y[start:start + batch_size]).sum())
    model.train()
    return _summed(correct) / len(x)


def _summed(*values):
    """The sums of ``values`` over all ranks (the values themselves outside a process group)."""
    if not dist.is_initialized():
        return values[0] if len(values) == 1 else values
    total = cr.tensor(values, dtype=cr.float64)
    dist.all_reduce(total)
    return total.item() if len(values) == 1 else tuple(total.tolist())


def run(args):
    text_model = args.model in train_text.MODELS
    default = "declaration" if text_model else "digits"
    args.dataset = default if args.dataset is None else args.dataset
    if text_model:
        if args.dataset not in BUNDLED:
            raise SystemExit(f"chainrule train: --model {args.model} trains on a text (--dataset "
                             f"{' or '.join(BUNDLED)}, or --text-file FILE), not on --dataset {args.dataset}")
        if args.nproc not in (None, 1):
            raise SystemExit(f"chainrule train: --nproc trains the image models data-parallel; --model {args.model} "
                             "runs in one process")
        return train_text.run(args, build_optimizer)
    if args.dataset not in IMAGE_DATASETS or args.text_file or args.steps is not None or args.compile:
        raise SystemExit(f"chainrule train: --model {args.model} trains on images (--dataset digits or mnist) for "
                         "--epochs N; --text-file, --steps and --compile are for --model gpt/lstm")
    epochs, batch_size, lr = DEFAULTS[args.dataset]
    args.epochs = epochs if args.epochs is None else args.epochs
    args.batch_size = batch_size if args.batch_size is None else args.batch_size
    args.lr = lr if args.lr is None else args.lr
    if args.epochs < 0 or args.batch_size < 1 or args.lr <= 0 or (args.nproc is not None and args.nproc < 1):
        raise SystemExit("chainrule train: --epochs must be >= 0, --batch-size >= 1, --lr > 0 and --nproc >= 1")
    # option errors first, before minutes of loading or training
    if args.dataset == "mnist" and args.data_dir is None:
        raise SystemExit(MNIST_NEEDS_DATA_DIR)
    if args.resume and args.checkpoint_dir is None:
        raise SystemExit("chainrule train: --resume needs --checkpoint-dir DIR (the directory of an earlier run)")
    checkpoint = Path(args.checkpoint_dir) / "last.safetensors" if args.checkpoint_dir else None
    if args.resume and not checkpoint.exists():
        raise SystemExit(f"chainrule train: --resume needs an existing checkpoint, {checkpoint} not found")
    if launched_by_mpi():
        return _train_in_process_group(args, checkpoint)
    if args.nproc is not None and args.nproc > 1:  # start the ranks; each runs this same command
        return launch(args.nproc, ["-m", "chainrule", *args.argv])
    return train(args, checkpoint)


def _train_in_process_group(args, checkpoint):
    dist.init_process_group("mpi")
    try:
        if args.nproc is not None and args.nproc != dist.get_world_size():
            raise SystemExit(f"chainrule train: --nproc {args.nproc}, but {dist.get_world_size()} processes "
                             "were started")
        return train(args, checkpoint)
    finally:
        dist.destroy_process_group()


def train(args, checkpoint):
    """The training run of ``chainrule train``; in a process group, one rank of a data-parallel run."""
    world, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    say = print if rank == 0 else _silent
    device = pick_device(args.device)
    cr.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data(args.dataset, args.data_dir)
    model = build_model(args.model, x_train.shape[1:]).to(device)
    optimizer = build_optimizer(args, model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    start_epoch = 0
    if args.resume:
        try:  # a damaged file, or one from another --model: say so, without a traceback
            state = cr.load(checkpoint, map_location=device)
            saved = state.get("config", {})
            for option in ("model", "optimizer"):  # Adam's state would load into SGD and fail mid-epoch
                if option in saved and saved[option] != getattr(args, option):
                    raise ValueError(f"it was written by a run with --{option} {saved[option]}")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch = int(state["epoch"])
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise SystemExit(f"chainrule train: cannot resume from {checkpoint} with --model {args.model} "
                             f"--optimizer {args.optimizer}: {exc}") from exc
        say(f"resumed from {checkpoint} after epoch {start_epoch}")
    elif checkpoint is not None and rank == 0:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    scheduler = cosine_schedule(optimizer, args.lr, args.epochs, start_epoch)

    n_params = sum(p.numel() for p in model.parameters())
    batch = f"batch {args.batch_size}" + (f" x {world} processes" if world > 1 else "")
    say(f"{args.model} ({n_params:,} parameters) on {args.dataset}: {len(x_train):,} train / {len(x_test):,} "
        f"test images, {args.epochs} epochs, {batch}, {args.optimizer} lr {args.lr:g}"
        + ("" if device.type == "cpu" else f", on {device}"))
    train_set = TensorDataset(cr.from_numpy(x_train), cr.from_numpy(y_train))
    generator = cr.Generator()
    sampler = DistributedSampler(train_set, seed=args.seed) if world > 1 else None
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler,
                        generator=generator, num_workers=args.workers, drop_last=False)
    forward = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    writer = _tensorboard(args.tensorboard, model, cr.from_numpy(x_train[:1]).to(device)) if rank == 0 else None
    accuracy, samples, seconds = 0.0, 0, 0.0
    step = start_epoch * len(loader)
    for epoch in range(start_epoch, args.epochs):
        generator.manual_seed(args.seed * 1000 + epoch)  # the order depends on the epoch alone: resumable
        if sampler is not None:
            sampler.set_epoch(epoch)
        began = time.perf_counter()
        seen, running = 0, 0.0
        bar = _progress(loader, f"epoch {epoch + 1}/{args.epochs}", args.no_progress or rank != 0)
        for images, labels in bar:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = loss_fn(forward(images), labels)
            loss.backward()
            optimizer.step()
            seen += len(labels)
            running += loss.item() * len(labels)
            step += 1
            if writer is not None and step % 10 == 0:
                writer.add_scalar("train/loss", loss.item(), step)
            if bar is not loader:
                bar.set_postfix(loss=f"{running / seen:.4f}",
                                rate=f"{world * seen / (time.perf_counter() - began):.0f}/s", refresh=False)
        scheduler.step()
        elapsed = time.perf_counter() - began
        running, seen = _summed(running, seen)
        samples, seconds = samples + seen, seconds + elapsed
        accuracy = evaluate(model, x_test, y_test, device=device)
        say(f"epoch {epoch + 1}: train loss {running / seen:.4f}, test accuracy {accuracy:.2%}, "
            f"{seen / elapsed:.0f} samples/s", flush=True)
        if writer is not None:
            writer.add_scalar("test/accuracy", accuracy, epoch + 1)
            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], epoch + 1)
            writer.flush()
        if checkpoint is not None and rank == 0:
            cr.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                     "config": {"model": args.model, "optimizer": args.optimizer}}, checkpoint)
    if samples == 0:
        accuracy = evaluate(model, x_test, y_test, device=device)
    if writer is not None:
        writer.close()
    rate = samples / seconds if seconds else 0.0
    say(f"final test accuracy {accuracy:.2%} | {rate:.0f} samples/s")
    return 0


def _silent(*args, **kwargs):
    """``print`` on ranks other than 0: one line per epoch, not one per process."""


def _tensorboard(log_dir, model, example):
    if log_dir is None:
        return None
    from chainrule.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir)
    writer.add_graph(model, example)
    return writer


def _progress(loader, description, disabled):
    if disabled:
        return loader
    try:
        from tqdm import tqdm
    except ImportError:
        return loader
    return tqdm(loader, desc=description, unit="batch", leave=False, dynamic_ncols=True)
