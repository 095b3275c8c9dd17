"""Layers beyond LeNet against PyTorch: GELU, LayerNorm, attention, transformer encoder layers, RNN/LSTM/GRU
and their cells, Conv1d, ConvTranspose2d, AdaptiveAvgPool2d, Upsample, and tril/triu/topk/multinomial.

Each layer is built in both libraries, torch's state_dict is loaded into chainrule's (so the parameter names
and layouts must agree), and outputs, input gradients and parameter gradients are compared. Then float64
gradcheck and double backward on small sizes, forward mode through an LSTM cell, and a compiled
TransformerEncoderLayer forward + backward.
"""

import importlib

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close

nn = importlib.import_module(cr.__name__ + ".nn")
F = importlib.import_module(cr.__name__ + ".nn.functional")
TOL = dict(rtol=2e-5, atol=2e-5)


def randn(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def load_from_torch(t_mod, c_mod):
    """torch's state_dict into chainrule's module: the key lists must be the same, in the same order."""
    state = t_mod.state_dict()
    assert list(c_mod.state_dict()) == list(state)
    c_mod.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in state.items()})


def tensors_of(out):
    """The tensors in a layer's output (LSTM: output, (h, c); attention: output, weights)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in tensors_of(o)]
    return [] if out is None else [out]


def compare_layer(make, inputs, call=lambda m, *xs: m(*xs), tol=TOL, grad_inputs=True):
    """Same weights, same inputs: outputs, input gradients and parameter gradients agree with torch."""
    t_mod, c_mod = make(torch), make(cr)
    load_from_torch(t_mod, c_mod)
    t_mod.eval()
    c_mod.eval()
    floats = [x.dtype.kind == "f" and grad_inputs for x in inputs]
    tx = [torch.tensor(x, requires_grad=f) for x, f in zip(inputs, floats)]
    cx = [cr.tensor(x, requires_grad=f) for x, f in zip(inputs, floats)]
    t_outs, c_outs = tensors_of(call(t_mod, *tx)), tensors_of(call(c_mod, *cx))
    assert len(c_outs) == len(t_outs)
    t_loss, c_loss = 0, 0
    for i, (c, t) in enumerate(zip(c_outs, t_outs)):
        assert_close(c, t, what=f"output {i}", **tol)
        g = randn(*t.shape, seed=i + 1)
        t_loss = t_loss + (t * torch.tensor(g)).sum()
        c_loss = c_loss + (c * cr.tensor(g)).sum()
    t_loss.backward()
    c_loss.backward()
    for i, (c, t, f) in enumerate(zip(cx, tx, floats)):
        if f:
            assert_close(c.grad, t.grad, what=f"grad of input {i}", **tol)
    for (name, cp), (_, tp) in zip(c_mod.named_parameters(), t_mod.named_parameters()):
        assert_close(cp.grad, tp.grad, what=f"grad of {name}", **tol)
    return t_mod, c_mod


# --- activations, normalisation, convolutions, resampling ---------------------------------------------
SIMPLE = {
    "GELU": (lambda lib: lib.nn.GELU(), (3, 7)),
    "GELU_tanh": (lambda lib: lib.nn.GELU(approximate="tanh"), (3, 7)),
    "LayerNorm": (lambda lib: lib.nn.LayerNorm(6), (2, 3, 6)),
    "LayerNorm_2d_shape": (lambda lib: lib.nn.LayerNorm((3, 6), eps=1e-3), (2, 3, 6)),
    "LayerNorm_no_affine": (lambda lib: lib.nn.LayerNorm(6, elementwise_affine=False), (4, 6)),
    "LayerNorm_no_bias": (lambda lib: lib.nn.LayerNorm(6, bias=False), (4, 6)),
    "Conv1d": (lambda lib: lib.nn.Conv1d(3, 4, 3), (2, 3, 9)),
    "Conv1d_strided_groups": (lambda lib: lib.nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
                              (2, 4, 11)),
    "Conv1d_same_reflect": (lambda lib: lib.nn.Conv1d(3, 2, 3, padding="same", padding_mode="reflect"), (2, 3, 7)),
    "Conv1d_unbatched": (lambda lib: lib.nn.Conv1d(3, 2, 2, bias=False), (3, 6)),
    "ConvTranspose2d": (lambda lib: lib.nn.ConvTranspose2d(3, 4, 3), (2, 3, 5, 4)),
    "ConvTranspose2d_strided": (lambda lib: lib.nn.ConvTranspose2d(4, 2, (3, 2), stride=2, padding=1,
                                                                   output_padding=1), (2, 4, 4, 5)),
    "ConvTranspose2d_groups_dilated": (lambda lib: lib.nn.ConvTranspose2d(4, 6, 2, stride=(1, 2), groups=2,
                                                                          dilation=2, bias=False), (1, 4, 3, 3)),
    "AdaptiveAvgPool2d_uneven": (lambda lib: lib.nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 7, 10)),
    "AdaptiveAvgPool2d_even": (lambda lib: lib.nn.AdaptiveAvgPool2d(2), (2, 2, 6, 4)),
    "Upsample_nearest": (lambda lib: lib.nn.Upsample(scale_factor=2), (2, 3, 3, 4)),
    "Upsample_nearest_size": (lambda lib: lib.nn.Upsample(size=(5, 7)), (2, 3, 3, 4)),
    "Upsample_bilinear": (lambda lib: lib.nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 3, 4)),
    "Upsample_bilinear_corners": (lambda lib: lib.nn.Upsample(size=(5, 6), mode="bilinear", align_corners=True),
                                  (2, 3, 3, 4)),
    "Upsample_linear": (lambda lib: lib.nn.Upsample(scale_factor=1.5, mode="linear"), (2, 3, 6)),
}


@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_layer_matches_torch(name):
    make, shape = SIMPLE[name]
    compare_layer(make, [randn(*shape)])


def test_conv_transpose2d_output_size_and_shape_formula():
    make = lambda lib: lib.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    t_mod, c_mod = make(torch), make(cr)
    load_from_torch(t_mod, c_mod)
    x = randn(1, 2, 4, 4)
    t_out = t_mod(torch.tensor(x), output_size=(8, 8))
    assert_close(c_mod(cr.tensor(x), output_size=(8, 8)), t_out, **TOL)
    assert tuple(t_out.shape) == (1, 3, 8, 8)


def test_embedding_from_pretrained_matches_torch():
    weights = randn(5, 3)
    for freeze in (True, False):
        t_emb = torch.nn.Embedding.from_pretrained(torch.tensor(weights), freeze=freeze, padding_idx=1)
        c_emb = nn.Embedding.from_pretrained(cr.tensor(weights), freeze=freeze, padding_idx=1)
        assert c_emb.weight.requires_grad == t_emb.weight.requires_grad == (not freeze)
        assert c_emb.padding_idx == t_emb.padding_idx == 1
        index = [[0, 1], [4, 1]]
        assert_close(c_emb(cr.tensor(index)), t_emb(torch.tensor(index)))
    with pytest.raises(AssertionError):
        nn.Embedding.from_pretrained(cr.ones(3))


# --- attention ------------------------------------------------------------------------------------
def _causal(lib, n):
    return lib.triu(lib.ones(n, n, dtype=lib.bool), 1)


ATTENTION = {
    "seq_first": (dict(), dict()),
    "batch_first_per_head_weights": (dict(batch_first=True), dict(average_attn_weights=False)),
    "causal_bool_mask": (dict(batch_first=True), dict(attn_mask="causal", is_causal=True)),
    "key_padding_mask": (dict(batch_first=True), dict(key_padding_mask="padding")),
    "float_mask_no_weights": (dict(bias=False), dict(attn_mask="float", need_weights=False)),
}


@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_multihead_attention_matches_torch(name):
    kwargs, call_kwargs = ATTENTION[name]
    length, batch, dim = 5, 2, 8
    x = randn(batch, length, dim) if kwargs.get("batch_first") else randn(length, batch, dim)
    kv = randn(*x.shape, seed=3)

    def call(m, q, k):
        lib = torch if isinstance(q, torch.Tensor) else cr
        extra = dict(call_kwargs)
        if extra.get("attn_mask") == "causal":
            extra["attn_mask"] = _causal(lib, length)
        elif extra.get("attn_mask") == "float":
            extra["attn_mask"] = lib.tensor(randn(length, length, seed=4))
        if extra.get("key_padding_mask") == "padding":
            extra["key_padding_mask"] = lib.tensor([[False] * 4 + [True], [False] * 2 + [True] * 3])
        return m(q, k, k, **extra)

    compare_layer(lambda lib: lib.nn.MultiheadAttention(dim, 2, **kwargs), [x, kv], call)


def test_multihead_attention_unbatched_and_state_dict_keys():
    compare_layer(lambda lib: lib.nn.MultiheadAttention(6, 3), [randn(4, 6), randn(4, 6, seed=1)],
                  lambda m, q, k: m(q, k, k))
    assert list(nn.MultiheadAttention(6, 3).state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                              "out_proj.bias"]


@pytest.mark.parametrize("kwargs", [dict(), dict(attn_mask="bool"), dict(attn_mask="float", scale=0.3),
                                    dict(is_causal=True), dict(is_causal=True, attn_mask="bool")])
def test_scaled_dot_product_attention_matches_torch(kwargs):
    q, k, v = randn(2, 3, 4, 5), randn(2, 3, 6, 5, seed=1), randn(2, 3, 6, 5, seed=2)
    if kwargs.get("is_causal"):
        k, v = k[:, :, :4], v[:, :, :4]
    mask = np.random.default_rng(5).random((4, 6)) < 0.6
    mask[1] = False  # a row with nothing to attend to gives zeros

    def run(lib):
        inputs = [lib.tensor(a, requires_grad=True) for a in (q, k, v)]
        extra = dict(kwargs)
        if extra.get("attn_mask") == "bool":
            extra["attn_mask"] = lib.tensor(mask[:, :k.shape[2]])
        elif extra.get("attn_mask") == "float":
            extra["attn_mask"] = lib.tensor(randn(4, 6, seed=7))
        out = lib.nn.functional.scaled_dot_product_attention(*inputs, **extra)
        (out * lib.tensor(randn(*out.shape, seed=9))).sum().backward()
        return [out] + [t.grad for t in inputs]

    for c, t in zip(run(cr), run(torch)):
        assert_close(c, t, **TOL)


def test_attention_refusals_match_torch():
    with pytest.raises(AssertionError):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(RuntimeError):
        nn.MultiheadAttention(4, 2)(cr.randn(3, 1, 4), cr.randn(3, 1, 4), cr.randn(3, 1, 4), is_causal=True)
    with pytest.raises(RuntimeError):
        F.gelu(cr.randn(3), approximate="fast")


# --- transformer encoder --------------------------------------------------------------------------------
ENCODER = {
    "post_norm_relu": dict(),
    "pre_norm_gelu_batch_first": dict(norm_first=True, activation="gelu", batch_first=True),
    "no_bias": dict(bias=False, batch_first=True),
}


@pytest.mark.parametrize("name", sorted(ENCODER))
def test_transformer_encoder_layer_matches_torch(name):
    kwargs = ENCODER[name]
    x = randn(2, 5, 8) if kwargs.get("batch_first") else randn(5, 2, 8)
    compare_layer(lambda lib: lib.nn.TransformerEncoderLayer(8, 2, 16, **kwargs), [x])


def test_transformer_encoder_with_causal_mask_and_final_norm():
    def make(lib):
        layer = lib.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, batch_first=True, norm_first=True)
        return lib.nn.TransformerEncoder(layer, 2, norm=lib.nn.LayerNorm(8), enable_nested_tensor=False)

    def call(m, x):
        lib = torch if isinstance(x, torch.Tensor) else cr
        mask = lib.triu(lib.full((5, 5), float("-inf")), 1)
        return m(x, mask=mask, is_causal=True)

    t_mod, c_mod = compare_layer(make, [randn(3, 5, 8)], call)
    assert c_mod.layers[0].linear1.weight is not c_mod.layers[1].linear1.weight  # copies, not shared


def test_dropout_in_attention_and_encoder_only_when_training():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    x = cr.randn(2, 5, 8)
    assert not cr.allclose(layer(x), layer(x))
    layer.eval()
    assert cr.equal(layer(x), layer(x))


# --- recurrent layers --------------------------------------------------------------------------------
RECURRENT = {
    "RNN_tanh": (lambda lib: lib.nn.RNN(4, 5), (6, 3, 4), False),
    "RNN_relu_2_layers_batch_first": (lambda lib: lib.nn.RNN(4, 5, 2, nonlinearity="relu", batch_first=True),
                                      (3, 6, 4), True),
    "LSTM": (lambda lib: lib.nn.LSTM(4, 5), (6, 3, 4), False),
    "LSTM_2_layers_bidirectional_h0": (lambda lib: lib.nn.LSTM(4, 5, 2, bidirectional=True), (6, 3, 4), True),
    "LSTM_batch_first_no_bias": (lambda lib: lib.nn.LSTM(4, 5, batch_first=True, bias=False), (3, 6, 4), False),
    "LSTM_unbatched": (lambda lib: lib.nn.LSTM(4, 5, 2), (6, 4), True),
    "GRU": (lambda lib: lib.nn.GRU(4, 5), (6, 3, 4), False),
    "GRU_bidirectional_batch_first_h0": (lambda lib: lib.nn.GRU(4, 5, 2, batch_first=True, bidirectional=True),
                                         (3, 6, 4), True),
}


@pytest.mark.parametrize("name", sorted(RECURRENT))
def test_recurrent_layer_matches_torch(name):
    make, shape, with_h0 = RECURRENT[name]
    layer = make(torch)
    inputs = [randn(*shape)]
    if with_h0:
        directions = 2 if layer.bidirectional else 1
        batch = () if len(shape) == 2 else (shape[0] if layer.batch_first else shape[1],)
        h_shape = (layer.num_layers * directions,) + batch + (layer.hidden_size,)
        inputs += [randn(*h_shape, seed=1)] + ([randn(*h_shape, seed=2)] if isinstance(layer, torch.nn.LSTM) else [])

    def call(m, x, *h):
        return m(x, (h[0], h[1]) if len(h) == 2 else h[0]) if h else m(x)

    compare_layer(make, inputs, call)


CELLS = {
    "RNNCell": lambda lib: lib.nn.RNNCell(4, 5),
    "RNNCell_relu": lambda lib: lib.nn.RNNCell(4, 5, nonlinearity="relu"),
    "LSTMCell": lambda lib: lib.nn.LSTMCell(4, 5),
    "GRUCell": lambda lib: lib.nn.GRUCell(4, 5, bias=False),
}


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("batched", [True, False])
def test_recurrent_cell_matches_torch(name, batched):
    lead = (3,) if batched else ()
    inputs = [randn(*lead, 4), randn(*lead, 5, seed=1)]
    if name == "LSTMCell":
        inputs.append(randn(*lead, 5, seed=2))
    compare_layer(CELLS[name], inputs, lambda m, x, *h: m(x, tuple(h) if len(h) == 2 else h[0]))
    compare_layer(CELLS[name], inputs[:1])  # zero initial state


def test_recurrent_dropout_between_layers_only_when_training():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = cr.randn(5, 2, 3)
    assert not cr.allclose(lstm(x)[0], lstm(x)[0])
    lstm.eval()
    assert cr.equal(lstm(x)[0], lstm(x)[0])


def test_recurrent_refusals_match_torch():
    with pytest.raises(RuntimeError):
        nn.LSTM(4, 5)(cr.randn(6, 3, 7))
    with pytest.raises(RuntimeError):
        nn.GRU(4, 5)(cr.randn(6, 3, 4), cr.randn(2, 3, 5))
    with pytest.raises(ValueError):
        nn.RNN(4, 5, nonlinearity="sigmoid")


# --- tril, triu, topk, multinomial ------------------------------------------------------------------
@pytest.mark.parametrize("fn", ["tril", "triu"])
@pytest.mark.parametrize("diagonal", [-1, 0, 2])
def test_tril_triu_values_grads_and_methods(fn, diagonal):
    x = randn(2, 3, 4)
    c, t = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    c_out, t_out = getattr(cr, fn)(c, diagonal), getattr(torch, fn)(t, diagonal)
    assert_close(c_out, t_out)
    assert_close(getattr(c, fn)(diagonal), t_out)
    g = randn(2, 3, 4, seed=1)
    c_out.backward(cr.tensor(g))
    t_out.backward(torch.tensor(g))
    assert_close(c.grad, t.grad)


@pytest.mark.parametrize("kwargs", [dict(k=2), dict(k=3, dim=0, largest=False), dict(k=1, dim=-1)])
def test_topk_values_indices_and_gradient(kwargs):
    x = np.random.default_rng(0).permutation(20).reshape(4, 5).astype(np.float32)
    c, t = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    c_out, t_out = cr.topk(c, **kwargs), torch.topk(t, **kwargs)
    assert_close(c_out.values, t_out.values)
    assert_close(c_out.indices, t_out.indices)
    values, indices = c.topk(**kwargs)
    assert_close(indices, t_out.indices)
    g = randn(*t_out.values.shape)
    values.backward(cr.tensor(g))
    t_out.values.backward(torch.tensor(g))
    assert_close(c.grad, t.grad)
    with pytest.raises(RuntimeError):
        cr.topk(cr.tensor(x), 6)


def test_multinomial_frequencies_and_refusals():
    probs = cr.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 1.0, 1.0]])
    draws = cr.multinomial(probs, 20000, replacement=True)
    assert draws.dtype == cr.int64 and tuple(draws.shape) == (2, 20000)
    counts = np.stack([np.bincount(row, minlength=4) for row in draws.numpy()]) / 20000
    np.testing.assert_allclose(counts, [[0.1, 0.0, 0.6, 0.3], [0.25] * 4], atol=0.02)
    unique = cr.multinomial(cr.tensor([0.2, 0.3, 0.1, 0.4]), 4)
    assert sorted(unique.tolist()) == [0, 1, 2, 3]
    gen = cr.Generator().manual_seed(3)
    first = cr.multinomial(probs, 5, True, generator=gen)
    assert cr.equal(first, cr.multinomial(probs, 5, True, generator=gen.manual_seed(3)))
    with pytest.raises(RuntimeError):
        cr.multinomial(cr.tensor([0.5, 0.5]), 3)  # more than the categories without replacement
    with pytest.raises(RuntimeError):
        cr.multinomial(cr.tensor([0.5, -0.1]), 1)


# --- buffers ----------------------------------------------------------------------------------------
def test_register_buffer_semantics_match_torch():
    def make(lib):
        class Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = lib.nn.Linear(2, 2)
                self.register_buffer("mask", lib.tril(lib.ones(3, 3)))
                self.register_buffer("cache", lib.zeros(2), persistent=False)
                self.register_buffer("empty", None)

        return Net()

    t_net, c_net = make(torch), make(cr)
    assert list(c_net.state_dict()) == list(t_net.state_dict()) == ["mask", "lin.weight", "lin.bias"]
    assert [n for n, _ in c_net.named_buffers()] == [n for n, _ in t_net.named_buffers()] == ["mask", "cache"]
    assert len(list(c_net.buffers())) == 2
    c_net.double()
    assert c_net.mask.dtype == cr.float64 and c_net.cache.dtype == cr.float64
    c_net.load_state_dict({k: cr.tensor(v.numpy()) for k, v in t_net.state_dict().items()})
    assert c_net.mask.dtype == cr.float64  # loading copies into the existing buffer


# --- gradcheck, double backward, forward mode, static graph ----------------------------------------
def _f64(*shapes):
    return [cr.tensor(randn(*s, seed=i, dtype=np.float64), requires_grad=True) for i, s in enumerate(shapes)]


def _module_fn(module, *args, **kwargs):
    module.double().eval()
    return lambda x: tensors_of(module(x, *args, **kwargs))[0]


GRADCHECK = {
    "gelu": (lambda x: F.gelu(x), [(3, 4)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [(3, 4)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    "sdpa_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    [(1, 2, 3, 2), (1, 2, 3, 2), (1, 2, 3, 2)]),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                         [(1, 2, 3, 3), (2, 2, 3, 3)]),
    "interpolate_bilinear": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), [(1, 1, 2, 3)]),
    "topk": (lambda x: cr.topk(x, 2).values, [(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradcheck_float64(name):
    fn, shapes = GRADCHECK[name]
    assert cr.autograd.gradcheck(fn, _f64(*shapes))


@pytest.mark.parametrize("make", [lambda: nn.MultiheadAttention(4, 2), lambda: nn.LSTM(3, 2, 2, bidirectional=True),
                                  lambda: nn.GRU(3, 2), lambda: nn.TransformerEncoderLayer(4, 2, 6)],
                         ids=["attention", "lstm", "gru", "encoder_layer"])
def test_gradcheck_float64_layers(make):
    module = make().double().eval()
    x = _f64((3, 2, module.embed_dim if isinstance(module, nn.MultiheadAttention) else
              getattr(module, "input_size", 4)))[0]
    if isinstance(module, nn.MultiheadAttention):
        fn = lambda x: module(x, x, x)[0]
    else:
        fn = lambda x: tensors_of(module(x))[0]
    assert cr.autograd.gradcheck(fn, [x])
    params = [p for p in module.parameters()][:2]  # and through the weights
    assert cr.autograd.gradcheck(lambda *ps: fn(x.detach()) * sum(p.sum() for p in ps), params)


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "layer_norm",
                                  pytest.param("sdpa_causal", marks=pytest.mark.beyond_torch)])  # torch: no 2nd order
def test_double_backward(name):
    fn, shapes = GRADCHECK[name]
    assert cr.autograd.gradgradcheck(fn, _f64(*shapes))


def test_forward_mode_through_an_lstm_cell_matches_torch():
    t_cell, c_cell = torch.nn.LSTMCell(3, 4), nn.LSTMCell(3, 4)
    load_from_torch(t_cell, c_cell)
    x, h, c, tangent = randn(2, 3), randn(2, 4, seed=1), randn(2, 4, seed=2), randn(2, 3, seed=3)

    def primal_and_tangents(lib, cell):
        fwad = lib.autograd.forward_ad
        with fwad.dual_level():
            h1, c1 = cell(fwad.make_dual(lib.tensor(x), lib.tensor(tangent)), (lib.tensor(h), lib.tensor(c)))
            return [fwad.unpack_dual(h1).primal, fwad.unpack_dual(h1).tangent, fwad.unpack_dual(c1).tangent]

    for ours, theirs in zip(primal_and_tangents(cr, c_cell), primal_and_tangents(torch, t_cell)):
        assert_close(ours, theirs, **TOL)


@pytest.mark.beyond_torch  # chainrule's compiler
def test_compiled_transformer_encoder_layer_forward_and_backward_match_eager():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True, activation="gelu")
    x = cr.tensor(randn(2, 5, 8))
    mask = cr.triu(cr.ones(5, 5, dtype=cr.bool), 1)
    opt = cr.optim.SGD(layer.parameters(), lr=0.1)  # its zero_grad is what a compiled step recognises

    def step(x):
        opt.zero_grad()
        loss = (layer(x, src_mask=mask) ** 2).mean()
        loss.backward()
        return loss

    eager = step(x).item()
    eager_grads = [p.grad.clone() for p in layer.parameters()]
    compiled = cr.compile(step)
    for _ in range(2):
        assert abs(compiled(x).item() - eager) < 1e-5
        for p, g in zip(layer.parameters(), eager_grads):
            assert_close(p.grad, g, **TOL)
    assert compiled.trace_count == 1
