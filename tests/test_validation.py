"""Bad arguments are refused as PyTorch refuses them: same exception type, a message naming the
function and the argument, never numpy's text nor an AttributeError from inside chainrule."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import chainrule as cr
import chainrule.nn.functional as F

X = np.arange(6, dtype=np.float32).reshape(2, 3)
I = np.array([0, 1])

# (what is called, how, the words the message must contain)
CASES = [
    ("sigmoid(None)", lambda m, f, x: m.sigmoid(None), ["sigmoid", "input", "NoneType"]),
    ("exp(2.0)", lambda m, f, x: m.exp(2.0), ["exp", "input", "float"]),
    ("log([1.0])", lambda m, f, x: m.log([1.0]), ["log", "input", "list"]),
    ("add(x, None)", lambda m, f, x: m.add(x, None), ["add", "other", "NoneType"]),
    ("mul(x, 'a')", lambda m, f, x: m.mul(x, "a"), ["mul", "other", "str"]),
    ("eq(1, x)", lambda m, f, x: m.eq(1, x), ["eq", "input", "int"]),
    ("linear(x, None)", lambda m, f, x: f.linear(x, None), ["linear", "weight", "NoneType"]),
    ("linear(x, 3)", lambda m, f, x: f.linear(x, 3), ["linear", "weight", "int"]),
    ("mse_loss(x, [1])", lambda m, f, x: f.mse_loss(x, [1.0]), ["mse_loss", "target", "list"]),
    ("x.sum(dim=1.5)", lambda m, f, x: x.sum(1.5), ["sum", "dim", "float"]),
    ("x.softmax([0])", lambda m, f, x: x.softmax([0]), ["softmax", "dim", "list"]),
    ("softmax(x, 5)", lambda m, f, x: f.softmax(x, 5), ["softmax", "Dimension out of range"]),
    ("log_softmax(x, -3)", lambda m, f, x: f.log_softmax(x, -3), ["log_softmax", "Dimension out of range"]),
    ("x.unsqueeze(None)", lambda m, f, x: x.unsqueeze(None), ["unsqueeze", "dim", "NoneType"]),
    ("cat(x)", lambda m, f, x: m.cat(3), ["cat", "tensors", "int"]),
    ("cat([x], 'a')", lambda m, f, x: m.cat([x], "a"), ["cat", "dim", "str"]),
    ("stack([x, None])", lambda m, f, x: m.stack([x, None]), ["stack", "tensors", "NoneType"]),
    ("chunk(x, 0)", lambda m, f, x: m.chunk(x, 0), ["chunk", "chunks"]),
    ("split(x, -1)", lambda m, f, x: m.split(x, -1), ["split", "split_size"]),
    ("narrow(x, 0, 1, 5)", lambda m, f, x: m.narrow(x, 0, 1, 5), ["narrow", "length"]),
    ("select(x, 1, 3)", lambda m, f, x: m.select(x, 1, 3), ["select", "index 3"]),
    ("reshape(x, -1)", lambda m, f, x: m.reshape(x, -1), ["reshape", "shape", "int"]),
    ("arange(3, None)", lambda m, f, x: m.arange(3, None), ["arange", "end", "NoneType"]),
    ("zeros(2.5)", lambda m, f, x: m.zeros(2.5), ["zeros", "size", "float"]),
    ("ones(x)", lambda m, f, x: m.ones(m.tensor(2.0)), ["ones", "size"]),
    ("mv(x, x)", lambda m, f, x: m.mv(x, x), ["mv"]),
    ("outer(x, x)", lambda m, f, x: m.outer(x, x), ["outer"]),
    ("dropout(x, 'a')", lambda m, f, x: f.dropout(x, "a"), ["dropout", "p", "str"]),
    ("clamp(x, 'a')", lambda m, f, x: m.clamp(x, "a"), ["clamp", "min", "str"]),
    ("embedding(i, x[0])", lambda m, f, x: f.embedding(m.tensor([0, 1]), x[0]), ["embedding", "weight"]),
    ("x[0, 0, 0]", lambda m, f, x: x[0, 0, 0], ["too many indices for tensor of dimension 2"]),
    ("x[5]", lambda m, f, x: x[5], ["index 5 is out of bounds for dimension 0 with size 2"]),
    ("x[:, 7]", lambda m, f, x: x[:, 7], ["index 7 is out of bounds for dimension 1 with size 3"]),
    ("x[1.5]", lambda m, f, x: x[1.5], ["valid indices", "float"]),
]


@pytest.mark.parametrize("call", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_like_pytorch_with_a_message_naming_function_and_argument(call):
    with pytest.raises(Exception) as theirs:
        call(torch, TF, torch.from_numpy(X.copy()))
    with pytest.raises(Exception) as ours:
        call(cr, F, cr.from_numpy(X.copy()))
    words = next(c[2] for c in CASES if c[1] is call)
    if not isinstance(theirs.value, AttributeError):  # there chainrule's TypeError says what is wrong
        assert isinstance(ours.value, type(theirs.value)), (ours.value, theirs.value)
    assert all(w in str(ours.value) for w in words), str(ours.value)
    assert "array" not in str(ours.value) and "axis" not in str(ours.value)


def test_what_pytorch_accepts_still_works():
    x = cr.from_numpy(X.copy())
    assert x.reshape(-1).shape == (6,) and x.reshape(3, 2).shape == (3, 2) and cr.reshape(x, [3, 2]).shape == (3, 2)
    assert x.squeeze(cr.tensor(0)).shape == (2, 3)  # a one-element integer tensor is an int, as in PyTorch
    assert cr.ones(cr.tensor(2)).shape == (2,) and cr.arange(cr.tensor(3)).tolist() == [0, 1, 2]
    assert (x == None) is False and (x != "a") is True  # noqa: E711 - what PyTorch returns
    assert cr.add(2, x).tolist() == (X + 2).tolist() and (2 % (x + 1)).shape == (2, 3)
    assert cr.where(x > 2, 1.0, 0.0).tolist() == np.where(X > 2, 1.0, 0.0).tolist()
    assert cr.flatten(cr.tensor(3.0)).shape == (1,) and cr.narrow(x, 1, -2, 2).tolist() == X[:, 1:].tolist()
