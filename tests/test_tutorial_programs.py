"""Small programs in the style of PyTorch's beginner tutorials, run unchanged against chainrule and, as the
oracle, against torch itself (the module is the parameter: ``torch = lib``). Each program prints what a
tutorial prints (format specs, tensors, grad_fn chains, learning rates); the two transcripts must be
the same text once the package name is the same. Weights and data come from numpy, so both libraries
start from the same numbers.
"""

import numpy as np
import pytest
import torch as _torch

import chainrule

LIBS = [pytest.param(_torch, id="torch"), pytest.param(chainrule, id="chainrule")]


def _same_start(torch, model, seed=0):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor((rng.standard_normal(tuple(p.shape)) * 0.3).astype(np.float32)))


def _data(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def quickstart_regression(torch, out):
    """The 'learning PyTorch with examples' polynomial fit, with nn.Sequential, MSELoss and SGD."""
    x = torch.linspace(-3.14, 3.14, 200)
    y = torch.sin(x)
    xx = x.unsqueeze(-1).pow(torch.tensor([1, 2, 3]))
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    _same_start(torch, model)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    for t in range(300):
        loss = loss_fn(model(xx), y)
        if t % 60 == 59:
            out.append(f"{t:3d} {loss.item():.3f}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    layer = model[0]
    c = [round(v, 3) + 0.0 for v in (layer.bias.item(), *layer.weight[0].tolist())]  # + 0.0: no "-0.000"
    out.append(f"Result: y = {c[0]:.3f} + {c[1]:.3f} x + {c[2]:.3f} x^2 + {c[3]:.3f} x^3")
    out.append(str(loss.grad_fn.name()))


def classifier_with_scheduler(torch, out):
    """A small classifier trained in mini-batches with a DataLoader, a scheduler and formatted logs."""
    from_numpy = torch.from_numpy
    features, labels = _data(1, 96, 4), (np.arange(96) % 3).astype(np.int64)
    features[np.arange(96), labels] += 2.0
    dataset = torch.utils.data.TensorDataset(from_numpy(features), from_numpy(labels))
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=False)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    _same_start(torch, model, seed=2)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for epoch in range(5):
        running = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
            optimizer.step()
            running += loss.item()
        scheduler.step()
        with torch.no_grad():
            correct = (model(from_numpy(features)).argmax(dim=1) == from_numpy(labels)).sum()
        out.append(f"epoch {epoch + 1}: loss {running / len(loader):.4f}  acc {correct / len(dataset):.2%}  "
                   f"lr {scheduler.get_last_lr()[0]:.4f}")
    out.append(f"{loss:.4f} {'{:+.2f}'.format(loss)}")  # noqa: UP032 - str.format on a tensor is the point


def autograd_walkthrough(torch, out):
    """The autograd tutorial: printing tensors, grad_fn and walking next_functions."""
    x = torch.ones(5)
    y = torch.zeros(3)
    w = torch.tensor(_data(3, 5, 3), requires_grad=True)
    b = torch.tensor(_data(4, 3), requires_grad=True)
    z = torch.matmul(x, w) + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    out.append(f"Gradient function for z = {z.grad_fn.name()}")
    out.append(f"Gradient function for loss = {loss.grad_fn.name()}")
    loss.backward()
    out.append(repr(w.grad))
    out.append(repr(b.grad))
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    _same_start(torch, net, seed=5)
    output = net(torch.tensor(_data(6, 1, 1, 6, 6)))
    loss = torch.nn.MSELoss()(output, torch.tensor([[0.5, -0.5]]))
    fn = loss.grad_fn
    chain = []
    while fn is not None:
        chain.append(fn.name().replace("torch::autograd::", ""))
        fn = fn.next_functions[0][0] if fn.next_functions else None
    out.append(" -> ".join(chain))
    out.append(repr(loss))
    out.append(repr(torch.tensor([-0.8415, 0.8415])))
    out.append(repr(torch.tensor([[1, -20], [300, 4]])))
    out.append(repr(torch.tensor([1e-5, 1.0, 1e5])))


def legacy_and_gan_steps(torch, out):
    """Older tutorial idioms: legacy constructors, .type(), normal(mean), a saturated BCE, Adadelta/Adagrad."""
    t = torch.FloatTensor([[1, 2], [3, 4]])
    idx = torch.LongTensor([1, 0])
    out.append(f"{t.type()} {idx.type()} {t.type(torch.LongTensor).type()} {t[idx].sum().item()}")
    noise = torch.normal(torch.zeros(3), std=0.0)
    out.append(repr(noise))
    d_out = torch.tensor([0.0, 1.0, 0.5], requires_grad=True)
    bce = torch.nn.BCELoss()(d_out, torch.tensor([1.0, 0.0, 1.0]))
    bce.backward()
    out.append(f"{bce.item():.4f} {d_out.grad}")
    for name, opt in (("Adadelta", torch.optim.Adadelta), ("Adagrad", torch.optim.Adagrad)):
        p = torch.tensor([1.0, -2.0], requires_grad=True)
        optimizer = opt([p], lr=0.5)
        for _ in range(10):
            optimizer.zero_grad()
            (p ** 2).sum().backward()
            optimizer.step()
        out.append(f"{name}: {p.norm():.5f} {p.norm(p=1, dim=0).item():.5f}")


def schedules(torch, out):
    """Learning-rate schedules printed per epoch, as tutorials plot them."""
    w = torch.zeros(1, requires_grad=True)
    for name, make in (("OneCycleLR", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10)),
                       ("CosineAnnealingLR", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5)),
                       ("ExponentialLR", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8))):
        optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        scheduler = make(optimizer)
        lrs = []
        for _ in range(8):
            optimizer.step()
            scheduler.step()
            lrs.append(f"{optimizer.param_groups[0]['lr']:.5f}")
        out.append(f"{name}: {' '.join(lrs)}")


PROGRAMS = [quickstart_regression, classifier_with_scheduler, autograd_walkthrough, legacy_and_gan_steps, schedules]


def _transcript(lib, program):
    lines = []
    program(lib, lines)
    return [line.replace("chainrule", "torch") for line in lines]


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.__name__ for p in PROGRAMS])
@pytest.mark.parametrize("lib", LIBS)
def test_program_runs_and_prints_what_torch_prints(lib, program):
    ours = _transcript(lib, program)
    assert ours == _transcript(_torch, program)
