"""``nn.functional`` against PyTorch: activations, dropout, batch_norm, linear, one_hot, pad, and the
losses (every reduction, class weights, ignore_index, label smoothing, probability targets), with
values and input gradients in float32 and float64 gradcheck."""

import importlib
import math

import numpy as np
import pytest
import torch

import chainrule as cr
from helpers import assert_close

F = importlib.import_module(cr.__name__ + ".nn.functional")
TF = torch.nn.functional


def _rng(seed=0):
    return np.random.default_rng(seed)


def _arrays(specs, dtype, seed):
    rng = _rng(seed)
    out = []
    for spec in specs:
        if isinstance(spec, np.ndarray):
            out.append(spec)
        elif isinstance(spec, tuple) and spec and spec[0] == "int":
            _, high, shape = spec
            out.append(rng.integers(0, high, shape).astype(np.int64))
        elif isinstance(spec, tuple) and spec and spec[0] == "prob":
            out.append(rng.uniform(0.05, 0.95, spec[1]).astype(dtype))
        elif isinstance(spec, tuple) and spec and spec[0] == "softmax":
            e = np.exp(rng.standard_normal(spec[1]))
            out.append((e / e.sum(axis=spec[2], keepdims=True)).astype(dtype))
        elif isinstance(spec, tuple) and spec and spec[0] == "pos":
            out.append(rng.uniform(0.5, 2.0, spec[1]).astype(dtype))
        else:
            out.append(rng.standard_normal(spec).astype(dtype))
    return out


def _tensors(lib, arrays, grad_mask):
    return [lib.tensor(a, requires_grad=bool(g and a.dtype.kind == "f")) for a, g in zip(arrays, grad_mask)]


def compare(fn, specs, grad=None, dtype=np.float32, rtol=1e-5, atol=1e-6, seed=0):
    """Run ``fn(lib, F, *tensors)`` in both libraries: same value, same gradients of the inputs."""
    arrays = _arrays(specs, dtype, seed)
    grad = grad if grad is not None else [True] * len(arrays)
    results = []
    for lib, fns in ((torch, TF), (cr, F)):
        ts = _tensors(lib, arrays, grad)
        out = fn(lib, fns, *ts)
        if out.requires_grad:
            g = _rng(seed + 1).standard_normal(tuple(out.shape)).astype(dtype)
            out.backward(lib.tensor(g))
        results.append((out, [t.grad for t in ts]))
    (t_out, t_grads), (c_out, c_grads) = results
    assert_close(c_out, t_out, rtol=rtol, atol=atol, what="value")
    for k, (cg, tg) in enumerate(zip(c_grads, t_grads)):
        if tg is None:
            assert cg is None or not np.any(cg.numpy()), f"input {k}: torch gives no gradient"
        else:
            assert_close(cg, tg, rtol=rtol, atol=atol, what=f"gradient of input {k}")


def gradcheck(fn, specs, grad=None, seed=0):
    arrays = _arrays(specs, np.float64, seed)
    grad = grad if grad is not None else [True] * len(arrays)
    ts = _tensors(cr, arrays, grad)
    assert cr.autograd.gradcheck(lambda *xs: fn(cr, F, *xs), tuple(ts))


# --- activations ---------------------------------------------------------------------------------
def _grid(shape, seed=0):
    """Values away from the kinks at 0 (k * 0.1 + 0.05)."""
    rng = _rng(seed)
    return (rng.integers(-15, 15, shape) * 0.1 + 0.05).astype(np.float32)


ACTIVATIONS = {
    "relu": lambda lib, f, x: f.relu(x),
    "leaky_relu": lambda lib, f, x: f.leaky_relu(x),
    "leaky_relu_slope": lambda lib, f, x: f.leaky_relu(x, 0.2),
    "sigmoid": lambda lib, f, x: f.sigmoid(x),
    "tanh": lambda lib, f, x: f.tanh(x),
    "softmax_dim1": lambda lib, f, x: f.softmax(x, dim=1),
    "softmax_dim_neg": lambda lib, f, x: f.softmax(x, dim=-1),
    "log_softmax_dim1": lambda lib, f, x: f.log_softmax(x, dim=1),
    "log_softmax_dim0": lambda lib, f, x: f.log_softmax(x, 0),
    "softmin": lambda lib, f, x: f.softmin(x, dim=1),
    "logsigmoid": lambda lib, f, x: f.logsigmoid(x),
    "softplus": lambda lib, f, x: f.softplus(x, beta=2.0, threshold=3.0),
    "silu": lambda lib, f, x: f.silu(x),
    "elu": lambda lib, f, x: f.elu(x, alpha=0.7),
    "hardtanh": lambda lib, f, x: f.hardtanh(x, -0.55, 0.75),
    "relu6": lambda lib, f, x: f.relu6(x * 5),
    "normalize": lambda lib, f, x: f.normalize(x, dim=1),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_matches_torch(name):
    compare(ACTIVATIONS[name], [_grid((3, 4, 5))])


@pytest.mark.parametrize("name", ["relu", "leaky_relu_slope", "sigmoid", "softmax_dim1", "log_softmax_dim1",
                                  "logsigmoid", "softplus", "elu"])
def test_activation_gradcheck(name):
    gradcheck(ACTIVATIONS[name], [_grid((2, 3, 2)).astype(np.float64)])


def test_relu_leaky_relu_gradient_at_zero():
    compare(lambda lib, f, x: f.relu(x) + f.leaky_relu(x, 0.3), [np.array([-1.0, 0.0, 2.0], np.float32)])


@pytest.mark.parametrize("shape,n", [((4, 3, 5, 2), 3), ((4, 3), 3), ((4, 3, 5), 1), ((5,), 1)])
def test_prelu_matches_torch(shape, n):
    compare(lambda lib, f, x, w: f.prelu(x, w), [_grid(shape), np.array([0.25, -0.5, 1.5][:n], np.float32)])


def test_relu_inplace():
    x = cr.tensor([-1.0, 2.0, -3.0])
    y = F.relu(x, inplace=True)
    assert y is x
    np.testing.assert_array_equal(x.numpy(), [0.0, 2.0, 0.0])


def test_softmax_without_dim_warns_like_torch():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = F.softmax(cr.tensor(x))
    assert_close(out, TF.softmax(torch.tensor(x), dim=1))


def test_logsigmoid_extreme_logits_finite():
    x = cr.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], requires_grad=True)
    out = F.logsigmoid(x)
    out.sum().backward()
    tx = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], requires_grad=True)
    expected = TF.logsigmoid(tx)
    expected.sum().backward()
    assert_close(out, expected)
    assert_close(x.grad, tx.grad)


# --- linear, dropout, batch_norm -------------------------------------------------------------------
@pytest.mark.parametrize("xshape", [(5, 4), (2, 3, 4), (4,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(xshape, bias):
    specs = [xshape, (3, 4), (3,)]
    if bias:
        compare(lambda lib, f, x, w, b: f.linear(x, w, b), specs)
    else:
        compare(lambda lib, f, x, w: f.linear(x, w), specs[:2])


def test_linear_gradcheck():
    gradcheck(lambda lib, f, x, w, b: f.linear(x, w, b), [(3, 4), (2, 4), (2,)])


def test_dropout_train_and_eval():
    x = cr.ones(200, 100, requires_grad=True)
    y = F.dropout(x, p=0.3, training=True)
    values = np.unique(y.detach().numpy())
    assert len(values) == 2 and values[0] == 0 and values[1] == pytest.approx(1 / 0.7)
    kept = (y.detach().numpy() != 0).mean()
    assert abs(kept - 0.7) < 0.02
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (y.detach().numpy() != 0) / 0.7, rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).detach().numpy(), 0)
    assert F.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_dropout_uses_the_default_generator():
    x = cr.ones(50, 50)
    cr.manual_seed(3)
    a = F.dropout(x, 0.5).numpy().copy()
    cr.manual_seed(3)
    b = F.dropout(x, 0.5).numpy().copy()
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_dropout2d_zeroes_whole_channels():
    y = F.dropout2d(cr.ones(8, 16, 3, 3), 0.5).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 4, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch(shape, affine):
    c = shape[1]
    rng = _rng(5)
    x = rng.standard_normal(shape).astype(np.float32) * 2 + 1
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    rm, rv = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    results = []
    for lib, f in ((torch, TF), (cr, F)):
        tx = lib.tensor(x, requires_grad=True)
        tw, tb = lib.tensor(w, requires_grad=True), lib.tensor(b, requires_grad=True)
        trm, trv = lib.tensor(rm), lib.tensor(rv)
        out = f.batch_norm(tx, trm, trv, tw if affine else None, tb if affine else None, training=True,
                           momentum=0.3, eps=1e-3)
        out.backward(lib.tensor(rng.standard_normal(shape).astype(np.float32)) if False else lib.tensor(
            np.cos(np.arange(out.numel()).reshape(shape)).astype(np.float32)))
        results.append((out, tx.grad, tw.grad, tb.grad, trm, trv))
    for name, got, want in zip(("out", "x.grad", "w.grad", "b.grad", "running_mean", "running_var"),
                               results[1], results[0]):
        if want is None:
            assert got is None
        else:
            assert_close(got, want, rtol=1e-4, atol=1e-5, what=name)


def test_batch_norm_eval_matches_torch():
    compare(lambda lib, f, x, rm, rv, w, b: f.batch_norm(x, rm.detach(), rv.detach(), w, b, training=False,
                                                          eps=1e-4),
            [(4, 3, 2, 2), (3,), ("pos", (3,)), (3,), (3,)])


def test_batch_norm_gradcheck():
    def fn(lib, f, x, w, b):
        return f.batch_norm(x, None, None, w, b, training=True)

    gradcheck(fn, [(4, 2, 3), (2,), (2,)])


def test_batch_norm_single_value_per_channel_raises():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(cr.randn(1, 3), cr.zeros(3), cr.ones(3), training=True)


# --- shape helpers --------------------------------------------------------------------------------
def test_one_hot_matches_torch():
    idx = np.array([[0, 3], [2, 1]], dtype=np.int64)
    for n in (-1, 5):
        got, want = F.one_hot(cr.tensor(idx), n), TF.one_hot(torch.tensor(idx), n)
        assert_close(got, want)
    with pytest.raises(RuntimeError if cr.__name__ == "torch" else ValueError):
        F.one_hot(cr.tensor([0, 7]), 3)


@pytest.mark.parametrize("pad,mode", [((1, 2), "constant"), ((1, 0, 2, 1), "constant"), ((2, 1, 1, 2), "reflect"),
                                      ((2, 3, 0, 1), "replicate"), ((1, 2, 2, 1), "circular"),
                                      ((-1, 2, 1, -1), "constant")])
def test_pad_matches_torch(pad, mode):
    compare(lambda lib, f, x: f.pad(x, pad, mode=mode), [(2, 3, 4, 5)])


def test_pad_value():
    compare(lambda lib, f, x: f.pad(x, (1, 1), value=2.5), [(2, 3)])


# --- losses ----------------------------------------------------------------------------------------
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_torch(reduction):
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"):
        compare(lambda lib, f, x, y, name=name: getattr(f, name)(x, y, reduction=reduction), [(4, 5), (4, 5)])


def test_regression_losses_gradcheck():
    gradcheck(lambda lib, f, x, y: f.mse_loss(x, y) + f.l1_loss(x, y, reduction="sum"), [(3, 4), (3, 4)])


def test_mse_loss_broadcast_warns():
    with pytest.warns(UserWarning, match="target size"):
        F.mse_loss(cr.randn(3, 4), cr.randn(4))


def _ce_specs(shape, n_classes, ignore=None, seed=0):
    rng = _rng(seed)
    target_shape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    target = rng.integers(0, n_classes, target_shape).astype(np.int64)
    if ignore is not None and target.ndim:
        target.reshape(-1)[::3] = ignore
    return [shape, target]


CE_CASES = [
    dict(),
    dict(weight=True),
    dict(ignore_index=1),
    dict(ignore_index=-100, ignore=-100),
    dict(weight=True, ignore_index=2, ignore=2),
    dict(label_smoothing=0.1),
    dict(label_smoothing=0.2, weight=True),
    dict(label_smoothing=0.15, weight=True, ignore_index=0, ignore=0),
    dict(label_smoothing=0.3, ignore_index=-1, ignore=-1),
]


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2, 3), (4,)])
@pytest.mark.parametrize("case", CE_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_indices_matches_torch(shape, case, reduction):
    n = shape[1] if len(shape) > 1 else shape[0]
    specs = _ce_specs(shape, n, case.get("ignore"))
    kwargs = {k: v for k, v in case.items() if k in ("ignore_index", "label_smoothing")}
    if case.get("weight"):
        specs.append(np.linspace(0.5, 2.0, n).astype(np.float32))

        def fn(lib, f, x, t, w):
            return f.cross_entropy(x, t, weight=w.detach(), reduction=reduction, **kwargs)
    else:
        def fn(lib, f, x, t):
            return f.cross_entropy(x, t, reduction=reduction, **kwargs)

    compare(fn, specs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("kwargs", [dict(), dict(label_smoothing=0.2), dict(weight=True)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_probabilities_matches_torch(shape, kwargs, reduction):
    specs = [shape, ("softmax", shape, 1)]
    if kwargs.pop("weight", False):
        specs.append(np.linspace(0.5, 2.0, shape[1]).astype(np.float32))

        def fn(lib, f, x, t, w):
            return f.cross_entropy(x, t, weight=w.detach(), reduction=reduction)
    else:
        def fn(lib, f, x, t):
            return f.cross_entropy(x, t, reduction=reduction, **kwargs)

    compare(fn, specs)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x, t = np.zeros((2, 3), np.float32), np.array([-100, -100])
    got = F.cross_entropy(cr.tensor(x), cr.tensor(t))
    want = TF.cross_entropy(torch.tensor(x), torch.tensor(t))
    assert np.isnan(got.item()) and np.isnan(want.item())


def test_cross_entropy_gradcheck():
    specs = _ce_specs((4, 3), 3, ignore=-100) + [np.array([0.5, 1.0, 2.0])]

    def fn(lib, f, x, t, w):
        return f.cross_entropy(x, t, weight=w, label_smoothing=0.1)

    gradcheck(fn, specs, grad=[True, False, False])
    gradcheck(lambda lib, f, x, t: f.cross_entropy(x, t, label_smoothing=0.25), [(3, 4), ("softmax", (3, 4), 1)],
              grad=[True, False])


def test_cross_entropy_errors():
    with pytest.raises(IndexError if cr.__name__ != "torch" else (IndexError, RuntimeError)):
        F.cross_entropy(cr.randn(2, 3), cr.tensor([0, 3]))
    with pytest.raises(ValueError, match="batch_size"):
        F.cross_entropy(cr.randn(2, 3), cr.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.cross_entropy(cr.randn(2, 3), cr.tensor([0, 1]), reduction="avg")


@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_torch(weight, reduction):
    specs = _ce_specs((6, 4), 4, ignore=3)
    if weight:
        specs.append(np.array([0.2, 1.0, 3.0, 0.5], np.float32))
        compare(lambda lib, f, x, t, w: f.nll_loss(x, t, weight=w.detach(), ignore_index=3, reduction=reduction),
                specs)
    else:
        compare(lambda lib, f, x, t: f.nll_loss(x, t, ignore_index=3, reduction=reduction), specs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_torch(reduction, weighted):
    specs = [("prob", (4, 3)), ("prob", (4, 3))]
    if weighted:
        specs.append(("pos", (4, 3)))
        compare(lambda lib, f, x, y, w: f.binary_cross_entropy(x, y, w.detach(), reduction=reduction), specs)
    else:
        compare(lambda lib, f, x, y: f.binary_cross_entropy(x, y, reduction=reduction), specs)


def test_binary_cross_entropy_log_clamp():
    x = cr.tensor([0.0, 1.0, 0.5])
    y = cr.tensor([1.0, 0.0, 1.0])
    got = F.binary_cross_entropy(x, y, reduction="none")
    want = TF.binary_cross_entropy(torch.tensor([0.0, 1.0, 0.5]), torch.tensor([1.0, 0.0, 1.0]), reduction="none")
    assert_close(got, want)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weights", ["none", "weight", "pos_weight", "both"])
def test_bce_with_logits_matches_torch(reduction, weights):
    specs = [(4, 3), ("prob", (4, 3)), ("pos", (4, 3)), ("pos", (3,))]

    def fn(lib, f, x, y, w, pw):
        return f.binary_cross_entropy_with_logits(
            x * 3, y, weight=w.detach() if weights in ("weight", "both") else None,
            pos_weight=pw.detach() if weights in ("pos_weight", "both") else None, reduction=reduction)

    compare(fn, specs)


def test_bce_with_logits_huge_logits_finite_and_equal_to_torch():
    logits = np.array([1e4, -1e4, 1e4, -1e4, 0.0], np.float32)
    target = np.array([1.0, 0.0, 0.0, 1.0, 0.5], np.float32)
    pos_weight = np.array([2.0], np.float32)
    for kwargs in (dict(), dict(pos_weight=True)):
        results = []
        for lib, f in ((torch, TF), (cr, F)):
            x = lib.tensor(logits, requires_grad=True)
            pw = lib.tensor(pos_weight) if kwargs else None
            loss = f.binary_cross_entropy_with_logits(x, lib.tensor(target), pos_weight=pw, reduction="none")
            loss.sum().backward()
            results.append((loss, x.grad))
        (t_loss, t_grad), (c_loss, c_grad) = results
        assert np.all(np.isfinite(c_loss.detach().numpy())) and np.all(np.isfinite(c_grad.numpy()))
        assert_close(c_loss, t_loss, what="loss")
        assert_close(c_grad, t_grad, what="gradient")
    assert F.binary_cross_entropy_with_logits(cr.tensor(logits), cr.tensor(target)).item() == pytest.approx(
        TF.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(target)).item())


def test_bce_gradchecks():
    gradcheck(lambda lib, f, x, y, pw: f.binary_cross_entropy_with_logits(x, y, pos_weight=pw),
              [(3, 2), ("prob", (3, 2)), ("pos", (2,))], grad=[True, True, False])
    gradcheck(lambda lib, f, x, y: f.binary_cross_entropy(x, y), [("prob", (3, 2)), ("prob", (3, 2))],
              grad=[True, False])


def test_bce_shape_mismatch_raises():
    with pytest.raises(ValueError, match="size"):
        F.binary_cross_entropy_with_logits(cr.randn(3, 2), cr.rand(3))
    with pytest.raises(ValueError, match="size"):
        F.binary_cross_entropy(cr.rand(3, 2), cr.rand(2, 3))


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    def fn(lib, f, x, t):
        target = t.log() if log_target else t
        return f.kl_div(f.log_softmax(x, 1), target, reduction=reduction, log_target=log_target)

    compare(fn, [(3, 4), ("softmax", (3, 4), 1)], grad=[True, False])


def test_legacy_size_average_reduce_arguments():
    x, y = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    with pytest.warns(UserWarning):
        got = F.mse_loss(cr.tensor(x), cr.tensor(y), size_average=False)
    assert got.item() == pytest.approx(6.0)
    assert math.isclose(F.l1_loss(cr.tensor(x), cr.tensor(y)).item(), 1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_class_weight_gradient_to_second_order(reduction):
    """PyTorch does not differentiate nll_loss in its class weights; chainrule does (plain ops), twice."""
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    w = cr.tensor(rng.uniform(0.5, 2.0, 4), requires_grad=True)
    t = cr.tensor([1, 0, 3, 0, 3])

    def loss(x, w):
        return F.nll_loss(F.log_softmax(x, 1), t, weight=w, ignore_index=1, reduction=reduction)

    assert cr.autograd.gradcheck(loss, (x, w))
    assert cr.autograd.gradgradcheck(loss, (x, w))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_infinite_rows_matches_torch(name):
    x = np.array([[1.0, np.inf, 2.0], [-np.inf, 0.0, 1.0], [-np.inf] * 3, [3.0, 4.0, 5.0]], np.float32)
    got = getattr(F, name)(cr.tensor(x), 1).numpy()
    want = getattr(torch.nn.functional, name)(torch.tensor(x), 1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)  # nan and inf in the same places
