"""Optimizers and learning-rate schedulers against PyTorch.

Parameters after N steps from the same start agree with torch.optim's to float32 rounding (torch
fuses multiply-adds on this CPU, numpy rounds twice: a difference of an ulp or so of the parameters'
scale); state dicts have PyTorch's layout and resume exactly; schedulers' learning rates are the
same floats; bad hyperparameters raise PyTorch's ValueErrors.
"""

import copy
import math
import re
import warnings

import numpy as np
import pytest
import torch

import chainrule as cr

if not hasattr(cr, "optim"):  # until chainrule/__init__ imports the subpackage itself
    import chainrule.optim  # noqa: F401

LIBS = (torch, cr)


@pytest.fixture(params=[torch, cr], ids=["torch", "chainrule"])
def lib(request):
    """Tests that check behaviour (not agreement) run against torch too, which checks the tests."""
    return request.param


STEPS = 20
SHAPES = [(7, 5), (5,), (300,)]


def _start_params(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _grad_sequence(steps=STEPS, seed=1, dtype=np.float32):
    """Gradients of several magnitudes (1e-4 .. 1), the same arrays fed to both libraries."""
    rng = np.random.default_rng(seed)
    return [[(rng.standard_normal(s) * 10.0 ** int(rng.integers(-4, 1))).astype(dtype) for s in SHAPES]
            for _ in range(steps)]


def _numpy(t):
    return np.array(t.detach().numpy(), copy=True)


def _assert_params_close(ours, ref, what="", rtol=1e-6, ulps_of_scale=8):
    """Elementwise: |ours - ref| <= rtol*|ref| + a few float32 ulps of the tensor's scale."""
    for i, (a, b) in enumerate(zip(ours, ref)):
        a, b = _numpy(a), _numpy(b)
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what} {i}: {a.shape}/{a.dtype} vs {b.shape}/{b.dtype}"
        scale = float(np.max(np.abs(b))) if b.size else 1.0
        atol = ulps_of_scale * np.finfo(b.dtype).eps * max(scale, 1e-30)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{what} tensor {i}")


def _run_fixed_grads(lib, cls, kwargs, steps=STEPS, dtype=np.float32, none_grad_for=()):
    params = [lib.tensor(a, requires_grad=True) for a in _start_params(dtype=dtype)]
    opt = getattr(lib.optim, cls)(params, **kwargs)
    for grads in _grad_sequence(steps, dtype=dtype):
        for i, (p, g) in enumerate(zip(params, grads)):
            p.grad = None if i in none_grad_for else lib.tensor(g)
        opt.step()
    return params, opt


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.8, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.9), eps=1e-6)),
    ("Adam", dict(lr=0.01, betas=(0.5, 0.5))),  # lerp weight exactly 0.5: torch's second formula
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.02, decoupled_weight_decay=True, weight_decay=0.1)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.5, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-3, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, maximize=True)),  # lerp weight 0.7: torch's second formula
    ("RMSprop", dict(lr=0.005, momentum=0.5, weight_decay=0.01, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=2.0, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, eps=1e-6, maximize=True)),
]
CONFIG_IDS = [f"{c}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for c, kw in CONFIGS]


# ------------------------------------------------------------------------------------------------
# update formulas
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_matches_torch_on_the_same_gradients(cls, kwargs):
    (tp, topt), (cp, copt) = (_run_fixed_grads(lib, cls, kwargs) for lib in LIBS)
    _assert_params_close(cp, tp, f"{cls} params")
    for i, (t, c) in enumerate(zip(tp, cp)):
        ts, cs = topt.state[t], copt.state[c]
        assert sorted(cs) == sorted(ts), f"state keys of param {i}"
        for key in ts:
            if key == "step":
                assert float(cs[key]) == float(ts[key]) == STEPS
                continue
            _assert_params_close([cs[key]], [ts[key]], f"state[{key!r}] of param {i}", ulps_of_scale=16)


@pytest.mark.parametrize("cls,kwargs", [CONFIGS[4], CONFIGS[6], CONFIGS[14], CONFIGS[18]],
                         ids=[CONFIG_IDS[4], CONFIG_IDS[6], CONFIG_IDS[14], CONFIG_IDS[18]])
def test_float64_parameters(cls, kwargs):
    (tp, _), (cp, _) = (_run_fixed_grads(lib, cls, kwargs, dtype=np.float64) for lib in LIBS)
    _assert_params_close(cp, tp, f"{cls} float64 params", rtol=1e-13)


def _mlp_run(lib, cls, kwargs, steps=STEPS):
    rng = np.random.default_rng(3)
    x = lib.tensor(rng.standard_normal((16, 6)).astype(np.float32))
    y = lib.tensor(rng.standard_normal((16, 3)).astype(np.float32))
    arrays = [rng.standard_normal(s).astype(np.float32) * 0.5 for s in [(6, 8), (8,), (8, 3), (3,)]]
    w1, b1, w2, b2 = params = [lib.tensor(a, requires_grad=True) for a in arrays]
    opt = getattr(lib.optim, cls)(params, **kwargs)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (((x @ w1 + b1).tanh() @ w2 + b2 - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return params, losses


MLP_CONFIGS = [  # no maximize here: gradient ascent on this loss diverges, amplifying rounding
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.8, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.5, amsgrad=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("Adadelta", dict(lr=1.0)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
]


@pytest.mark.parametrize("cls,kwargs", MLP_CONFIGS,
                         ids=[f"{c}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for c, kw in MLP_CONFIGS])
def test_training_a_small_mlp_matches_torch(cls, kwargs):
    """Gradients from each library's own autograd; the losses decrease the same way."""
    (tp, tl), (cp, cl) = (_mlp_run(lib, cls, kwargs) for lib in LIBS)
    _assert_params_close(cp, tp, f"{cls} mlp params", rtol=1e-5, ulps_of_scale=32)
    np.testing.assert_allclose(cl, tl, rtol=1e-5)
    assert tl[-1] < tl[0]


def test_params_without_grad_are_skipped():
    for cls in ("SGD", "Adam"):
        kw = dict(lr=0.1, momentum=0.9) if cls == "SGD" else dict(lr=0.1)
        (tp, topt), (cp, copt) = (_run_fixed_grads(lib, cls, kw, steps=3, none_grad_for=(1,)) for lib in LIBS)
        np.testing.assert_array_equal(_numpy(cp[1]), _start_params()[1])
        assert not copt.state.get(cp[1]) and not topt.state.get(tp[1])
        assert sorted(copt.state_dict()["state"]) == sorted(topt.state_dict()["state"]) == [0, 2]
        _assert_params_close(cp, tp, cls)


def test_sgd_without_momentum_keeps_no_state(lib):
    params, opt = _run_fixed_grads(lib, "SGD", dict(lr=0.1), steps=2)
    assert opt.state_dict()["state"] == {}


def test_param_groups_with_different_hyperparameters_match_torch():
    results = []
    for lib in LIBS:
        ps = [lib.tensor(a, requires_grad=True) for a in _start_params()]
        opt = lib.optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.01, "momentum": 0.5}], lr=0.1, momentum=0.9)
        assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
        assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.5
        assert opt.param_groups[1]["nesterov"] is False  # defaults filled in
        for grads in _grad_sequence(10):
            for p, g in zip(ps, grads):
                p.grad = lib.tensor(g)
            opt.step()
        results.append(ps)
    _assert_params_close(results[1], results[0], "groups")


def test_add_param_group_later_matches_torch():
    results = []
    for lib in LIBS:
        ps = [lib.tensor(a, requires_grad=True) for a in _start_params()]
        opt = lib.optim.Adam(ps[:1], lr=0.01)
        for k, grads in enumerate(_grad_sequence(10)):
            if k == 4:
                opt.add_param_group({"params": ps[1:], "lr": 0.05, "amsgrad": True})
                assert opt.param_groups[1]["betas"] == (0.9, 0.999)
            for p, g in zip(ps, grads):
                p.grad = lib.tensor(g)
            opt.step()
        results.append(ps)
    _assert_params_close(results[1], results[0], "added group")


def test_closure_is_evaluated_with_grad_enabled_and_its_loss_returned(lib):
    w = lib.tensor([1.0, -2.0], requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.25)
    calls = []

    def closure():
        calls.append(lib.is_grad_enabled())
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with lib.no_grad():
        loss = opt.step(closure)
    assert calls == [True]
    assert loss.item() == 5.0
    np.testing.assert_allclose(_numpy(w), [0.5, -1.0])
    assert opt.step() is None


def test_step_records_nothing_and_bumps_the_version_counter(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    opt = lib.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    y = (w * w).sum()  # saves w for backward
    opt.step()
    assert w.is_leaf and w.grad_fn is None and w.requires_grad
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_zero_grad_set_to_none_both_ways(lib):
    ps = [lib.tensor(a, requires_grad=True) for a in _start_params()]
    opt = lib.optim.SGD(ps, lr=0.1)
    for p in ps:
        (p * p).sum().backward()
    opt.zero_grad()  # default: set_to_none=True
    assert all(p.grad is None for p in ps)
    for p in ps:
        (p * 3).sum().backward()
    grads = [p.grad for p in ps]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(ps, grads):
        assert p.grad is g, "zeroed in place"
        assert not g.requires_grad
        assert np.all(_numpy(g) == 0)
    (ps[0] * 2).sum().backward()  # accumulates into the zeros
    assert np.all(_numpy(ps[0].grad) == 2)


def test_step_hooks_run_in_order_and_can_be_removed(lib):
    w = lib.tensor([1.0], requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.1)
    log = []
    h1 = opt.register_step_pre_hook(lambda o, args, kwargs: log.append(("pre", o is opt)))
    h2 = opt.register_step_post_hook(lambda o, args, kwargs: log.append(("post", float(w.detach()[0]))))
    w.grad = lib.tensor([1.0])
    opt.step()
    assert log == [("pre", True), ("post", pytest.approx(0.9))]
    h1.remove()
    h2.remove()
    opt.step()
    assert len(log) == 2


def test_custom_optimizer_subclass(lib):
    class SignSGD(lib.optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            with lib.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is not None:
                            p.sub_(p.grad.sign() * group["lr"])

    w = lib.tensor([1.0, -1.0, 0.5], requires_grad=True)
    opt = SignSGD([w], lr=0.25)
    seen = []
    opt.register_step_post_hook(lambda *a: seen.append(1))
    w.grad = lib.tensor([2.0, -3.0, 0.0])
    opt.step()
    np.testing.assert_allclose(_numpy(w), [0.75, -0.75, 0.5])
    assert seen == [1]
    assert opt.state_dict()["param_groups"] == [{"lr": 0.25, "params": [0]}]


# ------------------------------------------------------------------------------------------------
# state dicts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True)),
                                        ("AdamW", dict(lr=0.01)), ("RMSprop", dict(momentum=0.5, centered=True)),
                                        ("Adadelta", dict()), ("Adagrad", dict(lr_decay=0.1))])
def test_state_dict_layout_matches_torch(cls, kwargs):
    (tp, topt), (cp, copt) = (_run_fixed_grads(lib, cls, kwargs, steps=3) for lib in LIBS)
    tsd, csd = topt.state_dict(), copt.state_dict()
    assert sorted(csd) == ["param_groups", "state"]
    assert list(csd["state"]) == list(tsd["state"]) == [0, 1, 2]
    assert csd["param_groups"] == tsd["param_groups"]  # same keys, values and integer ids
    for pid, tstate in tsd["state"].items():
        cstate = csd["state"][pid]
        assert list(cstate) == list(tstate)
        for key, tv in tstate.items():
            cv = cstate[key]
            assert isinstance(cv, cr.Tensor), f"state[{pid}][{key!r}] is a {type(cv)}"
            assert tuple(cv.shape) == tuple(tv.shape) and str(cv.dtype).split(".")[-1] == str(tv.dtype).split(".")[-1]
            if key == "step":
                assert cv.item() == tv.item() == 3.0


def test_state_dict_ids_count_across_groups(lib):
    ps = [lib.tensor(a, requires_grad=True) for a in _start_params()]
    opt = lib.optim.SGD([{"params": [ps[2]]}, {"params": ps[:2], "lr": 0.5}], lr=0.1)
    groups = opt.state_dict()["param_groups"]
    assert [g["params"] for g in groups] == [[0], [1, 2]]
    assert [g["lr"] for g in groups] == [0.1, 0.5]


def _train(opt, params, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = _as_lib_tensor(p, g)
        opt.step()


def _as_lib_tensor(p, g):
    return torch.tensor(g) if isinstance(p, torch.Tensor) else cr.tensor(g)


@pytest.mark.parametrize("cls,kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                        ("Adam", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01)),
                                        ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
                                        ("Adadelta", dict(lr=0.5)), ("Adagrad", dict(lr=0.1, lr_decay=0.1))])
def test_resuming_from_a_state_dict_equals_an_uninterrupted_run(cls, kwargs):
    grads = _grad_sequence(12)
    ps = [cr.tensor(a, requires_grad=True) for a in _start_params()]
    opt = getattr(cr.optim, cls)(ps, **kwargs)
    _train(opt, ps, grads)

    half = [cr.tensor(a, requires_grad=True) for a in _start_params()]
    opt1 = getattr(cr.optim, cls)(half, **kwargs)
    _train(opt1, half, grads[:5])
    saved = copy.deepcopy(opt1.state_dict())
    saved_params = [_numpy(p) for p in half]
    del opt1

    resumed = [cr.tensor(a, requires_grad=True) for a in saved_params]
    opt2 = getattr(cr.optim, cls)(resumed, lr=123.0)  # hyperparameters come from the state dict
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    assert all(a is b for a, b in zip(opt2.param_groups[0]["params"], resumed))
    _train(opt2, resumed, grads[5:])
    for a, b in zip(resumed, ps):
        np.testing.assert_array_equal(_numpy(a), _numpy(b))


def test_torch_and_chainrule_state_dicts_load_into_each_other():
    """The layouts are the same: a torch state dict (tensors converted) resumes a chainrule run."""
    grads = _grad_sequence(8)
    tps = [torch.tensor(a, requires_grad=True) for a in _start_params()]
    topt = torch.optim.Adam(tps, lr=0.01, weight_decay=0.1)
    _train(topt, tps, grads[:4])
    tsd = topt.state_dict()
    converted = {
        "state": {k: {n: cr.tensor(v.numpy().copy()) for n, v in s.items()} for k, s in tsd["state"].items()},
        "param_groups": copy.deepcopy(tsd["param_groups"]),
    }
    cps = [cr.tensor(_numpy(p), requires_grad=True) for p in tps]
    copt = cr.optim.Adam(cps)
    copt.load_state_dict(converted)
    _train(topt, tps, grads[4:])
    _train(copt, cps, grads[4:])
    _assert_params_close(cps, tps, "resumed from torch")


def test_load_state_dict_validates_groups(lib):
    ps = [lib.tensor(a, requires_grad=True) for a in _start_params()]
    one_group = lib.optim.SGD(ps, lr=0.1).state_dict()
    two_groups = lib.optim.SGD([{"params": ps[:1]}, {"params": ps[1:]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        two_groups.load_state_dict(one_group)
    smaller = lib.optim.SGD(ps[:2], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        smaller.load_state_dict(one_group)


@pytest.mark.beyond_torch
def test_load_state_dict_copies_and_checks_shapes():
    ps, opt = _run_fixed_grads(cr, "Adam", dict(lr=0.01), steps=2)
    saved = opt.state_dict()
    before = _numpy(saved["state"][0]["exp_avg"])
    ps2 = [cr.tensor(_numpy(p), requires_grad=True) for p in ps]
    opt2 = cr.optim.Adam(ps2)
    opt2.load_state_dict(saved)
    for p in ps2:
        p.grad = cr.ones_like(p)
    opt2.step()
    np.testing.assert_array_equal(_numpy(saved["state"][0]["exp_avg"]), before)  # not aliased
    assert saved["state"][0]["step"].item() == 2.0

    wrong = [cr.tensor(np.zeros(s[::-1] if len(s) == 2 else s, np.float32), requires_grad=True) for s in SHAPES]
    with pytest.raises(ValueError, match=r"'exp_avg' of shape \[7, 5\] for parameter 0.*shape \[5, 7\]"):
        cr.optim.Adam(wrong).load_state_dict(saved)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt2.load_state_dict({"lr": 0.1})


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
BAD_HYPERPARAMETERS = [
    ("SGD", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("SGD", dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    ("SGD", dict(lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    ("SGD", dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "Nesterov momentum requires a momentum and zero dampening"),
    ("Adam", dict(lr=-1e-3), "Invalid learning rate: -0.001"),
    ("Adam", dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    ("Adam", dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    ("Adam", dict(betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
    ("Adam", dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    ("Adam", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    ("AdamW", dict(lr=-0.5), "Invalid learning rate: -0.5"),
    ("AdamW", dict(betas=(0.9, -0.999)), "Invalid beta parameter at index 1: -0.999"),
    ("AdamW", dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    ("RMSprop", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("RMSprop", dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    ("RMSprop", dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    ("RMSprop", dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    ("Adadelta", dict(rho=1.5), "Invalid rho value: 1.5"),
    ("Adadelta", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    ("Adagrad", dict(lr_decay=-0.1), "Invalid lr_decay value: -0.1"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), "Invalid initial_accumulator_value value: -1.0"),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD_HYPERPARAMETERS, ids=[m for _, _, m in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters_raise_torchs_value_error(cls, kwargs, message, lib):
    w = lib.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(lib.optim, cls)([w], **kwargs)


def test_bad_params_arguments(lib):
    w = lib.tensor([1.0], requires_grad=True)
    v = lib.tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        lib.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        lib.optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        lib.optim.SGD([{"params": [w, v]}, {"params": [v]}], lr=0.1)
    opt = lib.optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": w})
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        lib.optim.SGD([w * 2], lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors"):
        lib.optim.SGD([w, 3.0], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        lib.optim.SGD([{"params": {w}}], lr=0.1)
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([v])


def test_named_parameters_are_kept_in_the_state_dict(lib):
    w = lib.tensor([1.0], requires_grad=True)
    b = lib.tensor([2.0], requires_grad=True)
    opt = lib.optim.SGD([("fc.weight", w), ("fc.bias", b)], lr=0.1)
    assert opt.param_groups[0]["params"][0] is w
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["fc.weight", "fc.bias"]


# ------------------------------------------------------------------------------------------------
# learning-rate schedulers
# ------------------------------------------------------------------------------------------------
class _Halve:
    """A callable object (its __dict__ goes into the scheduler's state dict, unlike a lambda's)."""

    def __init__(self):
        self.every = 4

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


def _warmup_then_cosine(S, opt):
    return S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(opt, T_max=20)],
                          milestones=[5])


SCHEDULERS = {
    "StepLR": lambda S, o: S.StepLR(o, step_size=7, gamma=0.5),
    "StepLR-default-gamma": lambda S, o: S.StepLR(o, step_size=3),
    "MultiStepLR": lambda S, o: S.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3),
    "ExponentialLR": lambda S, o: S.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda S, o: S.CosineAnnealingLR(o, T_max=10),
    "CosineAnnealingLR-eta_min": lambda S, o: S.CosineAnnealingLR(o, T_max=7, eta_min=1e-3),
    "LambdaLR": lambda S, o: S.LambdaLR(o, lr_lambda=lambda e: 0.95**e + 0.01 * (e % 3)),
    "LambdaLR-per-group": lambda S, o: S.LambdaLR(o, lr_lambda=[lambda e: 1 / (e + 1), _Halve()]),
    "MultiplicativeLR": lambda S, o: S.MultiplicativeLR(o, lr_lambda=lambda e: 0.9 if e % 2 else 1.05),
    "LinearLR": lambda S, o: S.LinearLR(o, start_factor=0.25, total_iters=8),
    "LinearLR-decay": lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=30),
    "ConstantLR": lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=4),
    "PolynomialLR": lambda S, o: S.PolynomialLR(o, total_iters=20, power=2.0),
    "SequentialLR-warmup-cosine": _warmup_then_cosine,
    "OneCycleLR": lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=50),
    "OneCycleLR-linear-3phase": lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.2], epochs=5, steps_per_epoch=10,
                                                          anneal_strategy="linear", three_phase=True, pct_start=0.25),
    "CosineAnnealingWarmRestarts": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=1e-3),
    "CosineAnnealingWarmRestarts-T_mult": lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "CyclicLR": lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.5], step_size_up=4),
    "CyclicLR-triangular2": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=5, mode="triangular2"),
    "CyclicLR-exp_range": lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=2, mode="exp_range", gamma=0.95),
    "ChainedScheduler": lambda S, o: S.ChainedScheduler([S.ExponentialLR(o, gamma=0.9), S.StepLR(o, step_size=5)]),
}


def _lr_sequence(lib, make, epochs=50, with_adam=False):
    ws = [lib.tensor([1.0], requires_grad=True), lib.tensor([1.0], requires_grad=True)]
    groups = [{"params": ws[:1]}, {"params": ws[1:], "lr": 0.3}]
    opt = lib.optim.Adam(groups, lr=0.01) if with_adam else lib.optim.SGD(groups, lr=0.1, momentum=0.9)
    sched = make(lib.optim.lr_scheduler, opt)
    seq = [list(sched.get_last_lr())]
    for _ in range(epochs):
        for w in ws:
            w.grad = lib.tensor([0.5])
        opt.step()
        sched.step()
        lrs = list(sched.get_last_lr())
        assert lrs == [g["lr"] for g in opt.param_groups]
        seq.append(lrs)
    return seq


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_learning_rates_equal_torchs(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stepping in the right order warns about nothing
        ref = _lr_sequence(torch, SCHEDULERS[name])
        ours = _lr_sequence(cr, SCHEDULERS[name])
    assert ours == ref  # the same floats: the same recursive formulas in the same order


def test_cosine_annealing_over_several_periods():
    """Six periods of 2*T_max; the recursion stays on the closed-form cosine (including the bottoms,
    where PyTorch's ratio would be 0/0)."""
    make = lambda S, o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.001)  # noqa: E731
    ref, ours = _lr_sequence(torch, make, epochs=60, with_adam=True), _lr_sequence(cr, make, epochs=60, with_adam=True)
    assert ours == ref
    for e, lrs in enumerate(ours):
        for base, lr in zip((0.01, 0.3), lrs):
            closed_form = 0.001 + (base - 0.001) * (1 + math.cos(math.pi * e / 5)) / 2
            assert lr == pytest.approx(closed_form, rel=1e-9, abs=1e-15)


def test_reduce_lr_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.96, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7] + [0.7] * 20
    seqs = []
    for lib in LIBS:
        w = lib.tensor([1.0], requires_grad=True)
        opt = lib.optim.SGD([{"params": [w]}], lr=0.1)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.004)
        seq = []
        for m in metrics:
            opt.step()
            sched.step(m)
            seq.append(list(sched.get_last_lr()))
        seqs.append(seq)
    assert seqs[1] == seqs[0]
    assert seqs[0][-1] == [0.004]


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LambdaLR-per-group", "SequentialLR-warmup-cosine"])
def test_scheduler_state_dict_resumes(name):
    make = SCHEDULERS[name]
    full = _lr_sequence(cr, make, epochs=30)

    ws = [cr.tensor([1.0], requires_grad=True), cr.tensor([1.0], requires_grad=True)]
    opt = cr.optim.SGD([{"params": ws[:1]}, {"params": ws[1:], "lr": 0.3}], lr=0.1, momentum=0.9)
    sched = make(cr.optim.lr_scheduler, opt)
    for _ in range(12):
        opt.step()
        sched.step()
    opt_sd, sched_sd = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    assert "optimizer" not in sched_sd

    ws2 = [cr.tensor([1.0], requires_grad=True), cr.tensor([1.0], requires_grad=True)]
    opt2 = cr.optim.SGD([{"params": ws2[:1]}, {"params": ws2[1:], "lr": 0.3}], lr=0.1, momentum=0.9)
    sched2 = make(cr.optim.lr_scheduler, opt2)
    opt2.load_state_dict(opt_sd)  # after creating the scheduler, as PyTorch's docs say
    sched2.load_state_dict(sched_sd)
    seq = [list(sched2.get_last_lr())]
    for _ in range(18):
        opt2.step()
        sched2.step()
        seq.append(list(sched2.get_last_lr()))
    assert seq == full[12:]


def test_scheduler_warnings_and_errors(lib):
    w = lib.tensor([1.0], requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.1)
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match=re.escape("before `optimizer.step()`")):
        sched.step()
    with pytest.warns(UserWarning, match=re.escape("get_last_lr()")):
        sched.get_lr()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lib.optim.lr_scheduler.StepLR(object(), step_size=2)
    fresh = lib.optim.SGD([lib.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(KeyError, match="initial_lr"):
        lib.optim.lr_scheduler.StepLR(fresh, step_size=2, last_epoch=3)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        lib.optim.lr_scheduler.LambdaLR(fresh, [lambda e: 1.0, lambda e: 1.0])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lib.optim.lr_scheduler.ReduceLROnPlateau(fresh, factor=1.5)


def test_scheduler_sets_initial_lr_and_base_lrs(lib):
    w = lib.tensor([1.0], requires_grad=True)
    opt = lib.optim.SGD([w], lr=0.2)
    sched = lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    assert sched.base_lrs == [0.2] and opt.param_groups[0]["initial_lr"] == 0.2
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.2]
    opt.step()
    sched.step()
    assert sched.last_epoch == 1 and opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("cyclic", [False, True], ids=["OneCycleLR", "CyclicLR"])
@pytest.mark.parametrize("adam", [False, True], ids=["sgd-momentum", "adam-beta1"])
def test_cyclic_schedules_cycle_momentum_like_torch(adam, cyclic):
    def run(lib):
        w = lib.tensor([1.0], requires_grad=True)
        opt = lib.optim.Adam([w], lr=0.01) if adam else lib.optim.SGD([w], lr=0.1, momentum=0.9)
        schedulers = lib.optim.lr_scheduler
        sched = (schedulers.CyclicLR(opt, 0.01, 1.0, step_size_up=3) if cyclic
                 else schedulers.OneCycleLR(opt, max_lr=1.0, total_steps=20))
        seen = []
        for _ in range(20):
            w.grad = lib.tensor([0.5])
            opt.step()
            sched.step()
            group = opt.param_groups[0]
            seen.append((group["lr"], group["betas"] if adam else group["momentum"]))
        return seen

    assert run(cr) == run(torch)


def test_warm_restarts_with_fractional_epochs_like_torch():
    def run(lib):
        opt = lib.optim.SGD([lib.tensor([1.0], requires_grad=True)], lr=0.1)
        sched = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)
        seen = []
        for epoch in range(12):
            for i in range(4):
                opt.step()
                sched.step(epoch + i / 4)
                seen.append(sched.get_last_lr()[0])
        return seen

    assert run(cr) == run(torch)
