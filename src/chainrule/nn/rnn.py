"""Recurrent layers with PyTorch's parameters, gate order and shapes: ``RNN``, ``LSTM``, ``GRU``
(multi-layer, ``batch_first``, dropout between layers, bidirectional, initial states) and the cells
``RNNCell``, ``LSTMCell``, ``GRUCell``. A torch state_dict loads as is and gives the same outputs.

One step of each kind is a short composition of chainrule ops; a layer runs it over the time steps
in Python, so backward, double backward and forward mode need no code of their own.
"""

import math

from .. import ops as _ops
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _joined(w_ih, w_hh, b_ih, b_hh):
    """[W_ih | W_hh] and b_ih + b_hh, joined once per call: a step is then one product with [x, h]."""
    return _ops.cat([w_ih, w_hh], 1), (None if b_ih is None else b_ih + b_hh)


def _gates(x, h, w, b):
    return F.linear(_ops.cat([x, h], -1), w, b)


def _tanh_step(x, h, w, b):
    return _ops.tanh(_gates(x, h, w, b))


def _relu_step(x, h, w, b):
    return _ops.relu(_gates(x, h, w, b))


def _lstm_step(x, state, w, b):
    """Gates in PyTorch's order: input, forget, cell (g), output (one sigmoid over all four: fewer ops)."""
    h, c = state
    gates = _gates(x, h, w, b)
    size = h.shape[-1]
    sig = _ops.sigmoid(gates)
    i, f, o = sig[..., :size], sig[..., size:2 * size], sig[..., 3 * size:]
    c = f * c + i * _ops.tanh(gates[..., 2 * size:3 * size])
    return o * _ops.tanh(c), c


def _gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    """Gates in PyTorch's order: reset, update, new; the reset gate scales W_hn h + b_hn."""
    xr, xz, xn = _ops.chunk(F.linear(x, w_ih, b_ih), 3, -1)
    hr, hz, hn = _ops.chunk(F.linear(h, w_hh, b_hh), 3, -1)
    r, z = _ops.sigmoid(xr + hr), _ops.sigmoid(xz + hz)
    n = _ops.tanh(xn + r * hn)
    return n + z * (h - n)  # (1 - z) * n + z * h


def _separate(*weights):
    return weights


_MODES = {  # gates per hidden unit, one step, how a call prepares the weights for its steps
    "RNN_TANH": (1, _tanh_step, _joined),
    "RNN_RELU": (1, _relu_step, _joined),
    "LSTM": (4, _lstm_step, _joined),
    "GRU": (3, _gru_step, _separate),
}


def _nonlinearity_mode(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _output_of(state):
    return state[0] if isinstance(state, tuple) else state


def _check_input(name, input, input_size, dims):
    if input.ndim not in dims:
        raise ValueError(f"{name}: Expected input to be {dims[0]}D or {dims[1]}D, got {input.ndim}D instead")
    if input.shape[-1] != input_size:
        raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {input_size}, got "
                           f"{input.shape[-1]}")


class RNNBase(Module):
    """The layers' shared machinery: parameters ``weight_ih_l{k}[_reverse]`` (gates x input size),
    ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, all U(-1/sqrt(H), 1/sqrt(H))."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if proj_size:
            raise NotImplementedError(f"{type(self).__name__}: proj_size is not supported")
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{type(self).__name__}: hidden_size and num_layers must be greater than 0, got "
                             f"hidden_size={hidden_size} and num_layers={num_layers}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        gates, self._step, self._prepare = _MODES[mode]
        kw = {} if dtype is None else {"dtype": dtype}
        self._flat_weights_names = []
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:2 if bidirectional else 1]:
                width = input_size if layer == 0 else hidden_size * (2 if bidirectional else 1)
                shapes = {"weight_ih": (gates * hidden_size, width), "weight_hh": (gates * hidden_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(gates * hidden_size,), bias_hh=(gates * hidden_size,))
                for kind, shape in shapes.items():
                    name = f"{kind}_l{layer}{suffix}"
                    setattr(self, name, Parameter(_ops.empty(shape, **kw)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer, suffix):
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return tuple(getattr(self, f"{n}_l{layer}{suffix}", None) for n in names)

    def _zeros(self, input):
        shape = (self.num_layers * (2 if self.bidirectional else 1), input.shape[1], self.hidden_size)
        return _ops.zeros(shape, dtype=input.dtype, device=input.device)

    def forward(self, input, hx=None):
        input = _ops.as_tensor(input)
        _check_input(type(self).__name__, input, self.input_size, (2, 3))
        batched = input.ndim == 3
        if not batched:
            input = _ops.unsqueeze(input, 1)
        elif self.batch_first:
            input = _ops.transpose(input, 0, 1)
        states = self._initial_states(hx, input, batched)  # per (layer, direction): h or (h, c)
        steps = _ops.unbind(input, 0)  # (N, H_in) per time step
        finals = []
        directions = ("", "_reverse") if self.bidirectional else ("",)
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(directions):
                state = states[layer * len(directions) + d]
                weights = self._prepare(*self._weights(layer, suffix))
                out = [None] * len(steps)
                for t in (reversed(range(len(steps))) if suffix else range(len(steps))):
                    state = self._step(steps[t], state, *weights)
                    out[t] = _output_of(state)
                outputs.append(out)
                finals.append(state)
            steps = outputs[0] if len(outputs) == 1 else [_ops.cat(pair, -1) for pair in zip(*outputs)]
            if self.dropout and self.training and layer < self.num_layers - 1:
                steps = [F.dropout(s, self.dropout) for s in steps]
        output = _ops.stack(steps, 0)
        if not batched:
            output = _ops.squeeze(output, 1)
        elif self.batch_first:
            output = _ops.transpose(output, 0, 1)
        return output, self._final(finals, batched)

    def _initial_states(self, hx, input, batched):
        count = self.num_layers * (2 if self.bidirectional else 1)
        if hx is None:
            zeros = self._zeros(input)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        elif not batched:
            hx = tuple(_ops.unsqueeze(h, 1) for h in hx) if self.mode == "LSTM" else _ops.unsqueeze(hx, 1)
        expect = (count, input.shape[1], self.hidden_size)
        for h in (hx if self.mode == "LSTM" else (hx,)):
            if tuple(h.shape) != expect:
                raise RuntimeError(f"Expected hidden size {expect}, got {list(h.shape)}")
        if self.mode == "LSTM":
            return list(zip(_ops.unbind(hx[0], 0), _ops.unbind(hx[1], 0)))
        return list(_ops.unbind(hx, 0))

    def _final(self, finals, batched):
        def stacked(parts):
            h = _ops.stack(parts, 0)
            return h if batched else _ops.squeeze(h, 1)

        if self.mode == "LSTM":
            return stacked([s[0] for s in finals]), stacked([s[1] for s in finals])
        return stacked(finals)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__(_nonlinearity_mode(nonlinearity), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory; ``forward(input, (h0, c0))`` returns ``output, (h_n, c_n)``."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit (PyTorch's formulation: the reset gate applies after W_hn h + b_hn)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)


class RNNCellBase(Module):
    """One step: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` as in PyTorch."""

    def __init__(self, mode, input_size, hidden_size, bias, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.mode = mode
        gates, self._step, self._prepare = _MODES[mode]
        kw = {} if dtype is None else {"dtype": dtype}
        self.weight_ih = Parameter(_ops.empty((gates * hidden_size, input_size), **kw))
        self.weight_hh = Parameter(_ops.empty((gates * hidden_size, hidden_size), **kw))
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(name, Parameter(_ops.empty(gates * hidden_size, **kw)) if bias else None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def forward(self, input, hx=None):
        input = _ops.as_tensor(input)
        _check_input(type(self).__name__, input, self.input_size, (1, 2))
        batched = input.ndim == 2
        if not batched:
            input = _ops.unsqueeze(input, 0)
        if hx is None:
            zeros = _ops.zeros((input.shape[0], self.hidden_size), dtype=input.dtype, device=input.device)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        elif not batched:
            hx = tuple(_ops.unsqueeze(h, 0) for h in hx) if self.mode == "LSTM" else _ops.unsqueeze(hx, 0)
        state = self._step(input, hx, *self._prepare(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh))
        if batched:
            return state
        return tuple(_ops.squeeze(s, 0) for s in state) if self.mode == "LSTM" else _ops.squeeze(state, 0)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(_nonlinearity_mode(nonlinearity), input_size, hidden_size, bias, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTMCell(RNNCellBase):
    """``forward(input, (h, c))`` returns ``(h', c')``."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, dtype=dtype)


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, dtype=dtype)
