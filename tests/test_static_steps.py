"""Whole training steps compiled by ``chainrule.compile`` (the bench's static_lenet_step and
static_mlp_mnist_module_step recipes, small): equal to the eager step after several steps, serial and
threaded, with every parameter and optimizer-state update written in place by its kernel."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.models
import chainrule.nn as nn
from chainrule import static

STEPS = 3
TOL = dict(rtol=2e-5, atol=2e-6)


def _lenet_adam():
    model = chainrule.models.LeNet5(input_size=28)
    return model, cr.optim.Adam(model.parameters(), lr=1e-3)


def _mlp_sgd():
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10))
    return model, cr.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def _batch(build):
    rng = np.random.default_rng(1)
    shape = (8, 1, 28, 28) if build is _lenet_adam else (8, 20)
    return cr.from_numpy(rng.standard_normal(shape).astype(np.float32)), cr.from_numpy(rng.integers(0, 10, 8))


def _stepper(build, compile_kwargs):
    """(model, optimizer, step): the bench's recipe, zero-argument (the batch is captured), compiled
    when ``compile_kwargs`` is not None."""
    cr.manual_seed(0)
    model, opt = build()
    x, y = _batch(build)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step if compile_kwargs is None else cr.compile(step, **compile_kwargs)


@pytest.mark.parametrize("threads", [None, 2], ids=["serial", "threads2"])
@pytest.mark.parametrize("build", [_lenet_adam, _mlp_sgd], ids=["lenet_adam", "mlp_sgd_momentum"])
def test_compiled_whole_step_equals_the_eager_step(build, threads):
    model, opt, step = _stepper(build, {"threads": threads})
    eager, eager_opt, eager_step = _stepper(build, None)
    for _ in range(STEPS):
        np.testing.assert_allclose(step().numpy(), eager_step().detach().numpy(), **TOL)
    assert step.trace_count == 1
    for p, e in zip(model.parameters(), eager.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), e.detach().numpy(), **TOL)
        np.testing.assert_allclose(p.grad.numpy(), e.grad.numpy(), **TOL)
        for key, value in opt.state[p].items():
            np.testing.assert_allclose(value.numpy(), eager_opt.state[e][key].numpy(), **TOL)
    initial = [p.detach().numpy() for p in _stepper(build, None)[0].parameters()]
    moved = max(float(np.abs(p.detach().numpy() - q).max()) for p, q in zip(model.parameters(), initial))
    assert moved > 1e-5  # the steps changed the parameters (so equality above means something)


@pytest.mark.parametrize("build", [_lenet_adam, _mlp_sgd], ids=["lenet_adam", "mlp_sgd_momentum"])
def test_every_update_of_a_compiled_step_is_written_in_place(build):
    """Adam's exp_avg kernel reads exp_avg in its first and last steps; the last one writes it (no copy)."""
    _, _, step = _stepper(build, {})
    step()
    program = step.program()
    assert program.stats()["memory"]["updates_in_place"] == len(program.updates)
    assert "np.copyto" not in program.source()


@pytest.mark.parametrize("direct", [False, True], ids=["view_only", "view_and_variable"])
def test_an_update_reading_its_variable_through_a_view_is_not_written_in_place(direct):
    """w <- (w^T * x [+ w]) * 1.5: one kernel; writing into w while its transpose is still being read
    would be wrong."""
    w = cr.tensor(np.arange(9, dtype=np.float32).reshape(3, 3))
    expected = w.numpy().copy()
    x = np.full((3, 3), 0.5, np.float32)
    with static.Graph():
        xs = static.placeholder((3, 3), name="x", requires_grad=False)
        update = (w.t() * xs + w if direct else w.t() * xs) * 1.5
    program = static.compile([], updates={w: update})
    for _ in range(2):
        program.run({"x": x})
        expected = (expected.T * x + expected if direct else expected.T * x) * 1.5
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)


def test_an_error_in_a_parallel_task_reaches_the_caller_and_the_program_keeps_working():
    w = cr.ones(3, 3)
    with static.Graph():
        a = static.placeholder((None, 3), name="a", requires_grad=False)
        b = static.placeholder((None, 3), name="b", requires_grad=False)
        out = (a @ w + b @ w).sum()
    program = static.compile(out, threads=2)
    ones = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="broadcast"):
        program.run({"a": ones, "b": np.ones((4, 3), np.float32)})  # batch sizes disagree at run time
    np.testing.assert_allclose(program.run({"a": ones, "b": ones}).numpy(), 36, rtol=1e-6)
    assert len(program._tasks) == 3  # the two matmuls, then the add and the sum chained
    program.close()
