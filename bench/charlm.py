"""Character-level GPT and LSTM language models: chainrule against the same model in PyTorch, one thread.

``python -m bench.charlm [gpt|lstm ...] [--steps N]`` builds ``chainrule.models.CharGPT``/``CharLSTM`` as
``chainrule train`` does, copies its state_dict into a PyTorch twin (same layers, same parameter names),
then trains both, and a copy of chainrule's model whose step is compiled (``cr.compile``), on the same
batches of the bundled text with Adam, taking turns step by step so a busy machine slows all alike. It
prints the loss curves (mean over each tenth of the run) and each one's median step time.
"""

import sys
import time

import numpy as np

from .nn_workloads import _chainrule, _to_torch, _torch


def torch_twin(torch, name, vocab_size, context):
    """The PyTorch module tree of ``train_text.build_model(name, ...)``: same names, shapes and maths."""
    nn = torch.nn

    class CharGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.token, self.position = nn.Embedding(vocab_size, 64), nn.Embedding(context, 64)
            block = nn.TransformerEncoderLayer(64, 4, 256, 0.0, activation=nn.GELU("tanh"), batch_first=True,
                                               norm_first=True)
            self.blocks = nn.TransformerEncoder(block, 2, norm=nn.LayerNorm(64), enable_nested_tensor=False)
            self.head = nn.Linear(64, vocab_size)
            self.register_buffer("causal_mask", torch.triu(torch.ones(context, context, dtype=bool), 1), False)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.token(idx) + self.position(torch.arange(t))
            return self.head(self.blocks(x, mask=self.causal_mask[:t, :t], is_causal=True))

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, 32)
            self.lstm = nn.LSTM(32, 128, 1, batch_first=True)
            self.head = nn.Linear(128, vocab_size)

        def forward(self, idx):
            return self.head(self.lstm(self.embed(idx))[0])

    return CharGPT() if name == "gpt" else CharLSTM()


def compare(name, steps):
    cr, torch = _chainrule(), _torch()
    from chainrule import train_text
    from chainrule.datasets import CharVocab, load_text, random_windows

    _, batch_size, lr, context = train_text.DEFAULTS[name]
    text = load_text()
    vocab = CharVocab(text + train_text.PROMPT)
    ids = vocab.encode(text)
    cr.manual_seed(0)
    ours = train_text.build_model(name, len(vocab), context)
    theirs = _to_torch(torch, ours, torch_twin(torch, name, len(vocab), context))
    traced = train_text.build_model(name, len(vocab), context)
    traced.load_state_dict(ours.state_dict())
    step_ours = train_text.training_step(ours, cr.optim.Adam(ours.parameters(), lr=lr))
    step_traced = train_text.training_step(traced, cr.optim.Adam(traced.parameters(), lr=lr), compiled=True)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=lr)
    rng = np.random.default_rng(0)

    def step_theirs(x, y):
        logits = theirs(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        opt_theirs.zero_grad()
        loss.backward()
        opt_theirs.step()
        return loss.item()

    steppers = {"chainrule": step_ours, "compiled": step_traced, "torch": step_theirs}
    losses, times = ({k: [] for k in steppers} for _ in range(2))
    for i in range(steps):
        x, y = random_windows(ids, context, batch_size, rng)
        order = list(steppers)[i % 3:] + list(steppers)[:i % 3]  # rotate: a busy stretch slows all alike
        for framework in order:
            began = time.perf_counter()
            losses[framework].append(float(steppers[framework](x, y)))
            times[framework].append(time.perf_counter() - began)
    n_params = sum(p.numel() for p in ours.parameters())
    print(f"\n{name}: {n_params:,} parameters, batch {batch_size} x {context}, Adam lr {lr:g}, {steps} steps")
    print(f"{'steps':>11} " + " ".join(f"{k + ' loss':>15}" for k in steppers))
    for part in np.array_split(np.arange(steps), 10):
        print(f"{part[0] + 1:>5}-{part[-1] + 1:<5} "
              + " ".join(f"{np.mean(np.take(losses[k], part)):>15.4f}" for k in steppers))
    ms = {k: 1000 * np.median(v[steps // 10:]) for k, v in times.items()}  # the first tenth: warm-up, tracing
    print("median step: " + ", ".join(f"{k} {ms[k]:.1f} ms ({ms[k] / ms['torch']:.2f}x torch)" for k in steppers))


def main(argv):
    steps = int(argv[argv.index("--steps") + 1]) if "--steps" in argv else 200
    names = [a for a in argv if a in ("gpt", "lstm")] or ["gpt", "lstm"]
    for name in names:
        compare(name, steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
