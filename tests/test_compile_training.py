"""``@cr.compile`` of a whole PyTorch-style training step (zero_grad, forward, backward, optimizer step):
traced once, its parameters and optimizer state equal eager chainrule and PyTorch after N steps, and
hyperparameters a scheduler changes reach the compiled program without retracing."""

import numpy as np
import pytest
import torch

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F

TOL = dict(rtol=2e-5, atol=2e-6)
STEPS = 4

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.25, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.95), weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, maximize=True)),
    ("Adadelta", dict(lr=1.0, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]


def _data():
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((6, 5)).astype(np.float32), rng.integers(0, 3, 6)) for _ in range(STEPS)]


def _model(seed=0):
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _torch_twin(model):
    twin = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for q, p in zip(twin.parameters(), model.parameters()):
            q.copy_(torch.from_numpy(p.detach().numpy()))
    return twin


def training_step(model, opt, compiled):
    """One classifier training step (zero_grad, cross-entropy, backward, step), compiled or eager."""
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return cr.compile(step) if compiled else step


def _train(name, kwargs, compiled, schedule=False):
    model = _model()
    opt = getattr(cr.optim, name)(model.parameters(), **kwargs)
    sched = cr.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5) if schedule else None
    step = training_step(model, opt, compiled)
    losses = []
    for x, y in _data():
        losses.append(step(cr.tensor(x), cr.tensor(y)).item())
        if sched is not None:
            sched.step()
    return model, opt, step, losses


def _train_torch(name, kwargs, schedule=False):
    twin = _torch_twin(_model())
    opt = getattr(torch.optim, name)(twin.parameters(), **kwargs)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5) if schedule else None
    losses = []
    for x, y in _data():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if sched is not None:
            sched.step()
    return twin, opt, losses


@pytest.mark.parametrize("schedule", [False, True], ids=["constant_lr", "steplr"])
@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{'-'.join(k)}" for n, k in OPTIMIZERS])
def test_compiled_training_step_matches_eager_and_torch(name, kwargs, schedule):
    model, opt, step, losses = _train(name, kwargs, compiled=True, schedule=schedule)
    eager, eager_opt, _, eager_losses = _train(name, kwargs, compiled=False, schedule=schedule)
    twin, torch_opt, torch_losses = _train_torch(name, kwargs, schedule=schedule)
    assert step.trace_count == 1
    np.testing.assert_allclose(losses, eager_losses, **TOL)
    np.testing.assert_allclose(losses, torch_losses, rtol=1e-5, atol=1e-6)
    for p, e, q in zip(model.parameters(), eager.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), e.detach().numpy(), **TOL)
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p.grad.numpy(), e.grad.numpy(), **TOL)  # zero_grad inside: not accumulated
        state, eager_state = opt.state[p], eager_opt.state[e]
        assert state.keys() == eager_state.keys() == torch_opt.state[q].keys()
        for key in state:
            assert isinstance(state[key], cr.Tensor)
            np.testing.assert_allclose(state[key].numpy(), eager_state[key].numpy(), **TOL)
    assert opt.param_groups[0]["lr"] == eager_opt.param_groups[0]["lr"]


def _sgd_compiled_and_stepped_once():
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    step = training_step(model, opt, compiled=True)
    x, y = _data()[0]
    step(cr.tensor(x), cr.tensor(y))
    return model, opt, step, x, y


def test_lr_change_between_calls_needs_no_retrace():
    model, opt, step, x, y = _sgd_compiled_and_stepped_once()
    before = [p.detach().numpy().copy() for p in model.parameters()]
    opt.param_groups[0]["lr"] = 0.0  # set by hand, as a scheduler does
    step(cr.tensor(x), cr.tensor(y))
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, p.detach().numpy())
    assert step.trace_count == 1


def test_zero_grad_keeping_tensors_overwrites_grad_in_place():
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)

    @cr.compile
    def step(x, y):
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()

    x, y = _data()[0]
    for p in model.parameters():
        p.grad = cr.ones(p.shape)  # stale gradients that must not leak into the result
    grads = [p.grad for p in model.parameters()]
    step(cr.tensor(x), cr.tensor(y))
    step(cr.tensor(x), cr.tensor(y))
    twin = _model()
    F.cross_entropy(twin(cr.tensor(x)), cr.tensor(y)).backward()
    for g, p, q in zip(grads, model.parameters(), twin.parameters()):
        assert p.grad is g
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **TOL)


def test_backward_without_zero_grad_accumulates_like_eager():
    model, twin = _model(), _model()

    @cr.compile
    def step(x, y):
        F.cross_entropy(model(x), y).backward()

    x, y = _data()[0]
    for _ in range(2):
        step(cr.tensor(x), cr.tensor(y))
        F.cross_entropy(twin(cr.tensor(x)), cr.tensor(y)).backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **TOL)


def test_changing_a_traced_branch_refuses_to_run():
    _, opt, step, x, y = _sgd_compiled_and_stepped_once()
    opt.param_groups[0]["momentum"] = 0.9  # momentum was off when the step was traced
    with pytest.raises(RuntimeError, match=r"SGD: param_groups\[0\] changed a setting"):
        step(cr.tensor(x), cr.tensor(y))


def test_optimizer_step_inside_a_static_graph_matches_eager():
    """``opt.step()`` while building a graph records the updates; each run is one training step, and the
    learning rate a scheduler sets between runs is read at run time."""
    model, twin = _model(), _model()
    opt = cr.optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
    twin_opt = cr.optim.Adam(twin.parameters(), lr=0.05, amsgrad=True)
    scheds = [cr.optim.lr_scheduler.ExponentialLR(o, gamma=0.7) for o in (opt, twin_opt)]
    with cr.static.Graph():
        x = cr.static.placeholder((None, 5), name="x", requires_grad=False)
        y = cr.static.placeholder((None,), dtype=cr.int64, name="y")
        loss = F.cross_entropy(model(x), y)
        grads = cr.static.gradients(loss, list(model.parameters()))
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        opt.step()
    for p in model.parameters():
        p.grad = None
    program = cr.static.compile(loss)
    for xa, ya in _data():
        value = program.run({"x": xa, "y": ya})
        twin_opt.zero_grad()
        ref = F.cross_entropy(twin(cr.tensor(xa)), cr.tensor(ya))
        ref.backward()
        twin_opt.step()
        for s in scheds:
            s.step()
        np.testing.assert_allclose(value.item(), ref.item(), **TOL)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), **TOL)
        np.testing.assert_allclose(opt.state[p]["max_exp_avg_sq"].numpy(), twin_opt.state[q]["max_exp_avg_sq"].numpy(),
                                   **TOL)
        assert opt.state[p]["step"].item() == STEPS


def test_eager_step_keeps_the_in_place_contract():
    """Eager steps write into the parameters' and buffers' own arrays, record no graph, bump versions."""
    model = _model()
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _data()[0]
    arrays = [p._data for p in model.parameters()]
    versions = [p._version[0] for p in model.parameters()]
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(cr.tensor(x)), cr.tensor(y)).backward()
        opt.step()
    buffers = [opt.state[p]["momentum_buffer"] for p in model.parameters()]
    for p, a, v in zip(model.parameters(), arrays, versions):
        assert p._data is a and p.grad_fn is None and p._version[0] == v + 2
    assert all(b.grad_fn is None and not b.requires_grad for b in buffers)


def test_step_with_gradients_from_outside_the_trace_is_refused():
    model = _model()
    opt = cr.optim.Adam(model.parameters())
    x, y = _data()[0]
    F.cross_entropy(model(cr.tensor(x)), cr.tensor(y)).backward()  # eager: .grad is concrete
    with pytest.raises(RuntimeError, match=r"call loss.backward\(\) inside the compiled function"):
        cr.compile(opt.step)()
