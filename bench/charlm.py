"""Character-level GPT and LSTM language models: chainrule against the same model in PyTorch, one thread.

``python -m bench.charlm [gpt|lstm ...] [--steps N]`` builds ``chainrule.models.CharGPT``/``CharLSTM`` as
``chainrule train`` does, copies its state_dict into a PyTorch twin (same layers, same parameter names),
then trains both on the same batches of the bundled text with Adam, alternating step by step so a busy
machine slows both alike. It prints both loss curves (mean over each tenth of the run) and the median
step time of each framework.
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
    opt_ours = cr.optim.Adam(ours.parameters(), lr=lr)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=lr)
    rng = np.random.default_rng(0)

    def step_ours(x, y):
        loss = train_text.lm_loss(ours, x, y)
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()
        return loss.item()

    def step_theirs(x, y):
        logits = theirs(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
        opt_theirs.zero_grad()
        loss.backward()
        opt_theirs.step()
        return loss.item()

    losses, times = {"chainrule": [], "torch": []}, {"chainrule": [], "torch": []}
    for i in range(steps):
        x, y = random_windows(ids, context, batch_size, rng)
        order = [("chainrule", step_ours), ("torch", step_theirs)][:: 1 if i % 2 else -1]
        for framework, step in order:
            began = time.perf_counter()
            losses[framework].append(step(x, y))
            times[framework].append(time.perf_counter() - began)
    n_params = sum(p.numel() for p in ours.parameters())
    print(f"\n{name}: {n_params:,} parameters, batch {batch_size} x {context}, Adam lr {lr:g}, {steps} steps")
    print(f"{'steps':>11} {'chainrule loss':>15} {'torch loss':>11}")
    for part in np.array_split(np.arange(steps), 10):
        print(f"{part[0] + 1:>5}-{part[-1] + 1:<5} {np.mean(np.take(losses['chainrule'], part)):>15.4f} "
              f"{np.mean(np.take(losses['torch'], part)):>11.4f}")
    ms = {k: 1000 * np.median(v[steps // 10:]) for k, v in times.items()}
    print(f"median step: chainrule {ms['chainrule']:.1f} ms, torch {ms['torch']:.1f} ms, "
          f"ratio {ms['chainrule'] / ms['torch']:.2f}x")


def main(argv):
    steps = int(argv[argv.index("--steps") + 1]) if "--steps" in argv else 200
    names = [a for a in argv if a in ("gpt", "lstm")] or ["gpt", "lstm"]
    for name in names:
        compare(name, steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
