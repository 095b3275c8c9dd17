"""Programs in the style of PyTorch's word-language-model example (a TransformerEncoder with a sinusoidal
positional encoding in a buffer and a float causal mask; LSTM/GRU models that carry detached hidden state
between batches), written against ``torch``'s API: they run unchanged on chainrule and, as the oracle, on
torch, and learn a periodic token sequence."""

import math

import numpy as np
import pytest

import chainrule as torch  # the point: the program does not know which library it runs on

nn = torch.nn
F = torch.nn.functional
NTOKEN = 12


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=500):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0).transpose(0, 1))

    def forward(self, x):
        return self.dropout(x + self.pe[:x.size(0), :])


class TransformerModel(nn.Module):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.1):
        super().__init__()
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        self.transformer_encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout),
                                                         nlayers, enable_nested_tensor=False)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    @staticmethod
    def square_subsequent_mask(sz):
        mask = (torch.triu(torch.ones(sz, sz)) == 1).transpose(0, 1)
        return mask.float().masked_fill(mask == 0, float("-inf")).masked_fill(mask == 1, 0.0)

    def forward(self, src, hidden=None):
        src = self.pos_encoder(self.encoder(src) * math.sqrt(self.ninp))
        output = self.decoder(self.transformer_encoder(src, self.square_subsequent_mask(len(src))))
        return F.log_softmax(output, dim=-1).view(-1, NTOKEN), None


class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.1):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

    def forward(self, input, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.decoder.out_features)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        zeros = torch.zeros(self.nlayers, bsz, self.nhid)
        return (zeros, zeros.clone()) if self.rnn_type == "LSTM" else zeros


def repackage_hidden(h):
    """Detach the hidden state from its history (truncated backpropagation through time)."""
    if h is None or isinstance(h, torch.Tensor):
        return None if h is None else h.detach()
    return tuple(repackage_hidden(v) for v in h)


@pytest.mark.parametrize("make", [lambda: TransformerModel(NTOKEN, 16, 2, 32, 2),
                                  lambda: RNNModel("LSTM", NTOKEN, 16, 32, 2),
                                  lambda: RNNModel("GRU", NTOKEN, 16, 32, 1)], ids=["transformer", "lstm", "gru"])
def test_word_language_model_style_training_learns_a_periodic_sequence(make):
    torch.manual_seed(0)
    data = torch.tensor((np.arange(2000) * 5 % 7 + np.arange(2000) // 7 % 2).astype(np.int64))  # period 14
    batch, bptt = 4, 12
    data = data.view(batch, -1).t().contiguous()  # (steps, batch): batchify
    model = make()
    criterion = nn.NLLLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    hidden = model.init_hidden(batch) if isinstance(model, RNNModel) else None
    losses = []
    model.train()
    for i in range(0, 30 * bptt, bptt):
        source, targets = data[i:i + bptt], data[i + 1:i + 1 + bptt].reshape(-1)
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden = model(source, hidden)
        loss = criterion(output, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
    model.eval()
    with torch.no_grad():
        output, _ = model(data[:bptt], model.init_hidden(batch) if hidden is not None else None)
    assert tuple(output.shape) == (bptt * batch, NTOKEN)
