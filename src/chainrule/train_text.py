"""``chainrule train --model gpt|lstm``: a character-level language model on a bundled public-domain text.

Trains on random windows of the text's first 90%, reports the loss on the last 10%, and prints a
sample generated from a prompt. ``--text-file FILE`` trains on any UTF-8 text instead; ``--compile``
traces the training step once into a static-graph program (faster for the LSTM's many small ops).
"""

import time
from pathlib import Path

import numpy as np

import chainrule as cr
from chainrule.datasets import CharVocab, load_text, random_windows
from chainrule.models import CharGPT, CharLSTM
from chainrule.nn import functional as F

MODELS = ("gpt", "lstm")
DEFAULTS = {  # per model: steps, batch size, learning rate (Adam), context length
    "gpt": (300, 16, 1e-2, 64),
    "lstm": (200, 16, 1e-2, 64),
}
PROMPT = "We hold "


def build_model(name, vocab_size, context):
    if name == "gpt":
        return CharGPT(vocab_size, context=context, d_model=64, n_layer=2, n_head=4, dropout=0.0)
    return CharLSTM(vocab_size, embed_dim=32, hidden_size=128)


def lm_loss(model, x, y):
    """Mean next-character cross-entropy over every position of the (N, T) batch (tensors or arrays)."""
    x, y = (t if isinstance(t, cr.Tensor) else cr.from_numpy(t) for t in (x, y))
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def training_step(model, optimizer, compiled=False):
    """One step on a batch: zero_grad, loss, backward, optimizer step; ``compiled``: traced once into a
    static-graph program (``cr.compile``) and run as that program from then on."""
    def step(x, y):
        optimizer.zero_grad()
        loss = lm_loss(model, x, y)
        loss.backward()
        optimizer.step()
        return loss

    step = cr.compile(step) if compiled else step
    return lambda x, y: step(cr.from_numpy(x), cr.from_numpy(y))


def evaluate(model, ids, context, windows=8):
    """Loss on ``windows`` evenly spaced windows of ``ids`` (the held-out text), without the tape."""
    starts = np.linspace(0, len(ids) - context - 1, windows).astype(int)
    batch = np.stack([ids[s:s + context + 1] for s in starts])
    model.eval()
    with cr.no_grad():
        loss = lm_loss(model, batch[:, :-1], batch[:, 1:]).item()
    model.train()
    return loss


def sample(model, vocab, prompt=PROMPT, length=200, seed=0):
    start = cr.from_numpy(vocab.encode(prompt)[None])
    model.eval()
    out = model.generate(start, length, temperature=0.8, top_k=10, generator=cr.Generator().manual_seed(seed))
    model.train()
    return vocab.decode(out[0].numpy())


def run(args, build_optimizer):
    """Train, report and sample; ``build_optimizer(args, params)`` makes the optimizer ``chainrule train`` asked
    for (``args.lr`` is set to this model's default when not given)."""
    steps, batch_size, lr, context = DEFAULTS[args.model]
    steps = steps if args.steps is None else args.steps
    batch_size = batch_size if args.batch_size is None else args.batch_size
    lr = lr if args.lr is None else args.lr
    if steps < 0 or batch_size < 1 or lr <= 0:
        raise SystemExit("chainrule train: --steps must be >= 0, --batch-size >= 1 and --lr > 0")
    if args.epochs is not None or args.resume:
        raise SystemExit(f"chainrule train: --model {args.model} trains for --steps N (no --epochs, no --resume)")
    text = Path(args.text_file).read_text(encoding="utf-8") if args.text_file else load_text(args.dataset)
    vocab = CharVocab(text + PROMPT)
    ids = vocab.encode(text)
    cut = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:cut], ids[cut:]
    if len(val_ids) <= context + 1:
        raise SystemExit(f"chainrule train: the text is too short ({len(text)} characters) for context {context}")
    cr.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = build_model(args.model, len(vocab), context)
    args.lr = lr
    optimizer = build_optimizer(args, model.parameters())
    scheduler = cr.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    n_params = sum(p.numel() for p in model.parameters())
    source = args.text_file or args.dataset
    print(f"{args.model} ({n_params:,} parameters) on {source}: {len(train_ids):,} train / {len(val_ids):,} "
          f"held-out characters, vocabulary {len(vocab)}, {steps} steps, batch {batch_size} x {context}, "
          f"{args.optimizer} lr {lr:g}" + (", compiled" if args.compile else ""))
    log_every = max(steps // 10, 1)
    writer = _tensorboard(args.tensorboard)
    began, running = time.perf_counter(), []
    train_step = training_step(model, optimizer, args.compile)
    for step in range(1, steps + 1):
        loss = train_step(*random_windows(train_ids, context, batch_size, rng))
        scheduler.step()
        running.append(loss.item())
        if step % log_every == 0 or step == steps:
            val = evaluate(model, val_ids, context)
            rate = step * batch_size * context / (time.perf_counter() - began)
            print(f"step {step}: train loss {np.mean(running):.4f}, held-out loss {val:.4f}, {rate:.0f} chars/s",
                  flush=True)
            if writer is not None:
                writer.add_scalar("train/loss", float(np.mean(running)), step)
                writer.add_scalar("heldout/loss", val, step)
            running = []
    seconds = time.perf_counter() - began
    if args.checkpoint_dir:
        path = Path(args.checkpoint_dir) / "last.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        cr.save({"model": model.state_dict(), "config": {"model": args.model, "vocab": "".join(vocab.chars)}}, path)
    if writer is not None:
        writer.close()
    rate = steps * batch_size * context / seconds if steps else 0.0
    print(f"final held-out loss {evaluate(model, val_ids, context):.4f} | {rate:.0f} chars/s")
    print(f"sample: {sample(model, vocab)!r}")
    return 0


def _tensorboard(log_dir):
    if log_dir is None:
        return None
    from chainrule.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir)
