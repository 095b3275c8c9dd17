"""Character-level language models: a small GPT (a decoder-only transformer) and an LSTM.

Both map a batch of character ids (N, T) to next-character logits (N, T, vocab) and can ``generate``
text from a prompt. They are built from the library's layers (``nn.TransformerEncoderLayer`` with a
causal mask, ``nn.LSTM``), with PyTorch's parameter names throughout.
"""

from .. import nn
from .. import ops as _ops
from ..autograd.grad_mode import no_grad


def _next_ids(logits, temperature, top_k, generator):
    """Sample one id per row from the last position's logits (N, vocab), optionally among the top k."""
    logits = logits / temperature
    if top_k is not None:
        kth = _ops.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = _ops.where(logits < kth, float("-inf"), logits)
    return _ops.multinomial(_ops.softmax(logits, -1), 1, generator=generator)


class CharGPT(nn.Module):
    """GPT in miniature: token and position embeddings, ``n_layer`` pre-norm transformer blocks with
    causal self-attention and a tanh-GELU feed-forward, a final LayerNorm and a linear head."""

    def __init__(self, vocab_size, context=64, d_model=64, n_layer=2, n_head=4, dropout=0.1):
        super().__init__()
        self.context = context
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(context, d_model)
        block = nn.TransformerEncoderLayer(d_model, n_head, 4 * d_model, dropout, activation=nn.GELU("tanh"),
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, n_layer, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.head = nn.Linear(d_model, vocab_size)
        self.register_buffer("causal_mask", _ops.triu(_ops.ones((context, context), dtype=bool), 1), persistent=False)

    def forward(self, idx):
        length = idx.shape[1]
        if length > self.context:
            raise ValueError(f"CharGPT: a sequence of {length} characters is longer than the context {self.context}")
        x = self.token(idx) + self.position(_ops.arange(length, device=idx.device))
        x = self.blocks(x, mask=self.causal_mask[:length, :length], is_causal=True)
        return self.head(x)

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Extend ``idx`` (N, T) by ``max_new_tokens`` sampled characters, reading the last ``context``."""
        with no_grad():
            for _ in range(max_new_tokens):
                logits = self(idx[:, -self.context:])[:, -1]
                idx = _ops.cat([idx, _next_ids(logits, temperature, top_k, generator)], 1)
        return idx


class CharLSTM(nn.Module):
    """Embedding, an LSTM and a linear head; ``step`` carries the LSTM state for generation."""

    def __init__(self, vocab_size, embed_dim=32, hidden_size=128, num_layers=1, dropout=0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, idx):
        return self.step(idx)[0]

    def step(self, idx, state=None):
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Extend ``idx`` (N, T): read the prompt once, then feed one sampled character at a time."""
        with no_grad():
            logits, state = self.step(idx)
            for _ in range(max_new_tokens):
                nxt = _next_ids(logits[:, -1], temperature, top_k, generator)
                idx = _ops.cat([idx, nxt], 1)
                logits, state = self.step(nxt, state)
        return idx
