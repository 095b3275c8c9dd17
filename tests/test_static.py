"""The static graph (chainrule.static): building, build-time errors, gradients as a pass over the
one IR, every optimisation pass on/off against eager, memory plan, scheduler, cr.compile."""

import itertools
import threading

import numpy as np
import pytest

import chainrule as cr
import chainrule.static as static
from chainrule.errors import ShapeError
from chainrule.ops.elementwise import where_op

pytestmark = pytest.mark.beyond_torch

RNG = np.random.default_rng(0)
TOL = dict(rtol=2e-5, atol=2e-6)
ALL_PASSES = static.PASS_ORDER


def arr(*shape, positive=False):
    a = RNG.standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.5 if positive else a


def param(*shape):
    return cr.tensor(arr(*shape) * 0.3, requires_grad=True)


def eager_grads(fn, arrays, params=()):
    ts = [cr.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    wrt = ts + list(params)
    grads = cr.autograd.grad(out.sum(), wrt, allow_unused=True)
    return out.detach().numpy(), [g.numpy() if g is not None else np.zeros(w.shape, np.float32)
                                  for g, w in zip(grads, wrt)]


def static_grads(fn, arrays, params=(), optimize=True, batch_none=False):
    with static.Graph():
        phs = [static.placeholder((None,) + a.shape[1:] if batch_none and a.ndim else a.shape, name=f"in{k}")
               for k, a in enumerate(arrays)]
        out = fn(*phs)
        grads = static.gradients(out.sum(), phs + list(params))
    program = static.compile([out] + grads, optimize=optimize)
    values = program.run({f"in{k}": a for k, a in enumerate(arrays)})
    return values[0].numpy(), [v.numpy() for v in values[1:]], program


# --- building -------------------------------------------------------------------------------------------
def test_placeholder_shapes_and_symbolic_sizes():
    with static.Graph() as g:
        x = static.placeholder((None, 4), name="x")
        y = x.reshape(-1, 2)
        z = x.flatten()
    assert x.shape == (None, 4) and "None" in repr(x.shape)
    assert isinstance(x.shape[0], static.Dim)
    assert y.shape[0] == x.shape[0] * 2  # reshape(-1, n) keeps a resolvable symbolic size
    assert z.shape[0] == x.shape[0] * 4
    with pytest.raises(static.TracingError, match="unknown while building"):
        int(x.shape[0])
    assert len(g.nodes) >= 3 and "placeholder 'x'" in g.ir()


def test_build_time_shape_error_names_op_shapes_and_user_line():
    w = cr.tensor(arr(5, 3))
    with static.Graph():
        x = static.placeholder((None, 4), name="x")
        with pytest.raises(ShapeError) as info:
            x @ w  # the offending line
    message = str(info.value)
    assert "matmul" in message and "4" in message and "5" in message
    assert "test_static.py:" in message and "x @ w  # the offending line" in message


def test_broadcast_error_at_build_time():
    with static.Graph():
        a = static.placeholder((None, 3))
        b = static.placeholder((4,))
        with pytest.raises(ShapeError, match=r"test_static\.py:\d+: a \+ b"):
            a + b


def test_data_dependent_control_flow_raises_clear_error():
    with static.Graph():
        x = static.placeholder((3,))
        for action in (lambda: bool(x.sum() > 0), lambda: x.sum().item(), lambda: float(x.sum()),
                       lambda: x.numpy(), lambda: np.asarray(x)):
            with pytest.raises(static.TracingError, match="where"):
                action()

    @static.trace_compile
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(static.TracingError, match="values are unknown"):
        f(cr.tensor(arr(3)))


# --- results and gradients equal eager, op family by op family --------------------------------------------
CONV_W = cr.tensor(arr(3, 2, 3, 3))
FAMILIES = {
    "unary": (lambda x: x.exp() + x.sin() * x.cos() + x.tanh() + x.sigmoid() + x.relu() + x.abs() - x.neg(), [(4, 5)]),
    "log_sqrt_pow": (lambda x: x.log() + x.sqrt() + x ** 2.5 + x.rsqrt(), [((4, 5), True)]),
    "binary": (lambda a, b: a * b + a / (b * b + 1) - cr.maximum(a, b) + cr.minimum(a, b) * 2, [(3, 4), (4,)]),
    "where_clamp": (lambda a, b: cr.where(a > b, a * 2, b) + a.clamp(-0.5, 0.5), [(3, 4), (3, 4)]),
    "reduce": (lambda x: x.sum(1, keepdim=True) * x.mean(0) + x.amax(1, keepdim=True) + x.logsumexp(1, keepdim=True)
               + x.var(1, keepdim=True), [(4, 6)]),
    "softmax": (lambda x: x.softmax(1) * 3 + x.log_softmax(0), [(4, 6)]),
    "shape": (lambda x: x.reshape(6, 4).t().permute(1, 0).reshape(2, 12)[:, 3:9].unsqueeze(0).expand(3, 2, 6).flatten(),
              [(4, 6)]),
    "cat_stack_pad": (lambda a, b: cr.cat([a, b * 2], 1)
                      + cr.pad(cr.stack([a, b], 0).sum(0), (1, 1))[:, 1:-1].repeat(1, 2),
                      [(3, 4), (3, 4)]),
    "indexing": (lambda x: x[np.array([0, 2, 2])] * 2 + x.gather(1, cr.tensor(np.array([[0, 1, 1, 0]] * 3)))[:, :1]
                 + x.narrow(0, 1, 2).sum(0), [(3, 5)]),
    "linalg": (lambda a, b: (a @ b).relu() @ b.transpose(-1, -2) + cr.bmm(a, b).sum(), [(2, 3, 4), (2, 4, 5)]),
    "conv_pool": (lambda x: cr.max_pool2d(cr.conv2d(x, CONV_W, padding=1), 2), [(2, 2, 6, 6)]),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("optimize", [True, False])
def test_op_family_matches_eager(family, optimize):
    fn, specs = FAMILIES[family]
    arrays = [arr(*s[0], positive=True) if isinstance(s[0], tuple) else arr(*s) for s in specs]
    ref_out, ref_grads = eager_grads(fn, arrays)
    out, grads, _ = static_grads(fn, arrays, optimize=optimize)
    np.testing.assert_allclose(out, ref_out, **TOL)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, **TOL)


def test_unknown_batch_size_resolved_at_run_time():
    w, b = param(4, 3), param(3)

    def fn(x):
        return ((x @ w + b).relu() ** 2).mean() + x.reshape(-1, 2).sum(1).mean()

    with static.Graph():
        x = static.placeholder((None, 4), name="x")
        loss = fn(x)
        gw, gx = static.gradients(loss, [w, x])
    program = static.compile([loss, gw, gx])
    for n in (5, 9):  # two batch sizes through one program
        xa = arr(n, 4)
        ref_out, (ref_gx, ref_gw, _) = eager_grads(fn, [xa], [w, b])
        out, ggw, ggx = program.run({x: xa})
        np.testing.assert_allclose(out.numpy(), ref_out, **TOL)
        np.testing.assert_allclose(ggw.numpy(), ref_gw, **TOL)
        np.testing.assert_allclose(ggx.numpy(), ref_gx, **TOL)


# --- every pass on/off gives the same numbers -----------------------------------------------------------
def _mlp_graph():
    w1, b1, w2 = param(6, 8), param(8), param(8, 3)
    x_a, t_a = arr(5, 6), np.eye(3, dtype=np.float32)[[0, 2, 1, 1, 0]]

    def loss_fn(x, t):
        h = (x @ w1 + b1).tanh() * 1.0 + 0.0
        logits = (h.t().t() @ w2).reshape(5, 3).reshape(5, 3)
        return -(logits.log_softmax(1) * t).sum(1).mean() + (x * 2 * 3).sum() * 0.0

    return loss_fn, [x_a, t_a], [w1, b1, w2]


@pytest.mark.parametrize("combo", range(2 ** len(ALL_PASSES)))
def test_every_pass_combination_preserves_results(combo):
    loss_fn, arrays, params = _mlp_graph()
    enabled = {p for k, p in enumerate(ALL_PASSES) if combo >> k & 1}
    ref_out, ref_grads = eager_grads(loss_fn, arrays, params)
    out, grads, _ = static_grads(loss_fn, arrays, params, optimize=enabled)
    np.testing.assert_allclose(out, ref_out, **TOL)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, **TOL)


# --- pass statistics on small graphs ----------------------------------------------------------------------
def test_cse_dce_folding_simplify_fusion_counts():
    with static.Graph():
        x = static.placeholder((4, 4), name="x")
        a = x.exp()
        b = x.exp()  # the same expression: CSE merges it
        unused = x.sin() * 3  # noqa: F841 - dead code
        c = cr.tensor(2.0).reshape(1) * 3  # a constant subgraph? (tensors are variables: not folded)
        k = static.full((2,), 3.0, np.float32) * 2.0  # folded at compile time
        y = ((a + b) * 1.0 + 0.0).relu().tanh() * k.sum()
        y = y.t().t()
    program = static.compile(y)
    stats = program.stats()
    assert stats["cse"]["merged"] >= 1
    assert stats["dce"]["removed"] >= 2  # sin and its mul (and the unused variable chain)
    assert stats["fold"]["folded"] >= 2  # full, mul, sum
    assert stats["simplify"]["simplified"] >= 3  # *1, +0, double transpose
    assert stats["fuse"]["fused_nodes"] >= 2
    assert "fused[" in program.ir()
    xa = arr(4, 4)
    ref = np.tanh(np.maximum(2 * np.exp(xa), 0)) * 12
    np.testing.assert_allclose(program.run({"x": xa}).numpy(), ref, rtol=1e-5)
    assert c is not None
    report = program.passes_report()
    assert "== pass cse" in report and "-- before:" in report and "-- after:" in report


def test_fusion_writes_one_buffer_without_intermediates():
    with static.Graph():
        x = static.placeholder((None, 8), name="x")
        y = ((x * 2 + 1).exp() - 3).tanh()
    program = static.compile(y)
    kernels = [n for n in program.nodes if n.kind == "fused"]
    assert len(kernels) == 1 and [s[0].name for s in kernels[0].steps] == ["mul", "add", "exp", "sub", "tanh"]
    src = program.source()
    assert src.count("out=") >= 4  # every step after the first writes into the kernel's buffer
    xa = arr(3, 8)
    np.testing.assert_allclose(program.run({"x": xa}).numpy(), np.tanh(np.exp(xa * 2 + 1) - 3), rtol=1e-5)


@pytest.mark.parametrize("into", ["x", "y", "both", "condition", "neither"])
def test_where_forward_writes_into_one_of_its_inputs(into):
    """A kernel step may write into the buffer holding one of the op's own inputs (in-place reuse)."""
    rng = np.random.default_rng(0)
    c = rng.random(7) > 0.5
    x, y = (rng.random(7) > 0.5, rng.random(7) > 0.5) if into == "condition" else (rng.random(7), rng.random(7))
    y = x if into == "both" else y
    expected = np.where(c, x, y)
    out = {"x": x, "y": y, "both": x, "condition": c, "neither": np.empty_like(x)}[into]
    assert where_op.forward(c, x, y, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_where_in_fused_kernels_and_in_place_buffers_matches_eager():
    def fn(x):
        h = (x * 2).exp()
        return cr.where(h > 1.5, h, (x + 1).sigmoid()).clamp(0.2, 5.0) * 3 + cr.where(x > 0, 1.0, x)

    xa = arr(6, 5)
    expected = fn(cr.tensor(xa)).numpy()
    with static.Graph():
        x = static.placeholder((None, 5), name="x")
        y = fn(x)
    program = static.compile(y)
    assert any(op.name == "where" for n in program.nodes if n.kind == "fused" for op, _, _ in n.steps)
    np.testing.assert_allclose(program.run({"x": xa}).numpy(), expected, rtol=1e-6)


def test_optimize_takes_a_comma_separated_string_of_passes():
    with static.Graph():
        x = static.placeholder((3,), name="x")
        y = (x * 1.0).exp().exp()
    program = static.compile(y, optimize="simplify, fold,cse,dce")
    assert [e["pass"] for e in program.pass_log] == ["simplify", "fold", "cse", "dce"]
    assert not any(n.kind == "fused" for n in program.nodes)
    xa = arr(3)
    np.testing.assert_allclose(program.run({"x": xa}).numpy(), np.exp(np.exp(xa)), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown pass"):
        static.compile(y, optimize="simplify,fusion")


def test_memory_plan_peak_below_naive_sum():
    ws = [param(16, 16) for _ in range(6)]
    with static.Graph():
        x = static.placeholder((None, 16), name="x")
        h = x
        for w in ws:
            h = (h @ w).tanh()
        grads = static.gradients(h.sum(), ws)
    program = static.compile(grads)
    plan = program.memory_plan({"x": (32, 16)})
    assert plan["planned_peak_bytes"] < plan["naive_bytes"]
    assert plan["bytes_saved"] > 0 and plan["buffers"] > 0
    program.run({"x": arr(32, 16)})
    assert program.memory_plan() == plan  # sizes from the last run
    no_plan = static.compile(grads, optimize=set(ALL_PASSES) - {"memory"})
    for a, b in zip(program.run({"x": arr(7, 16)}), no_plan.run({"x": arr(7, 16)})):
        assert a.shape == b.shape


def test_run_returns_fresh_tensors():
    w = param(3, 3)
    with static.Graph():
        x = static.placeholder((2, 3), name="x")
        y = (x @ w).relu() + 1
    program = static.compile([y, w])
    first = program.run({"x": arr(2, 3)})
    kept = first[0].numpy().copy()
    program.run({"x": arr(2, 3)})
    np.testing.assert_array_equal(first[0].numpy(), kept)
    assert not np.shares_memory(first[1].numpy(), w.detach().numpy())


def test_feed_errors_name_the_placeholder():
    with static.Graph():
        x = static.placeholder((None, 3), name="images")
        y = x * 2
    program = static.compile(y)
    with pytest.raises(static.FeedError, match="images.*shape"):
        program.run({"images": np.zeros((2, 4), np.float32)})
    with pytest.raises(static.FeedError, match="images.*dtype"):
        program.run({"images": np.zeros((2, 3), np.float64)})
    with pytest.raises(static.FeedError, match="images.*not fed"):
        program.run({})
    np.testing.assert_array_equal(program(images=np.ones((2, 3), np.float32)).numpy(), 2 * np.ones((2, 3)))


def test_variables_are_read_by_reference():
    w = param(3, 2)
    with static.Graph():
        x = static.placeholder((1, 3), name="x")
        y = x @ w
    program = static.compile(y)
    xa = arr(1, 3)
    before = program.run({"x": xa}).numpy()
    with cr.no_grad():
        w.mul_(2)  # an optimizer-style in-place update
    np.testing.assert_allclose(program.run({"x": xa}).numpy(), 2 * before, rtol=1e-6)


def test_ir_and_source_are_readable():
    w = param(4, 2)
    with static.Graph():
        x = static.placeholder((None, 4), name="x")
        loss = (x @ w).sum()
        gw = static.gradients(loss, w)
    program = static.compile([loss, gw])
    text = str(program)
    assert "matmul(%" in text and "f32[None,2]" in text and "test_static.py:" in text and "(backward)" in text
    src = program.source()
    assert src.startswith("def _program(") or "def _program(" in src
    assert "# --- forward ---" in src and "# --- backward ---" in src and "np.matmul" in src
    assert "before" in program.ir("before") or program.ir("before")


# --- training steps ------------------------------------------------------------------------------------------
def test_compiled_training_step_with_momentum_matches_eager_sgd():
    loss_fn, arrays, params = _mlp_graph()
    mirror = [p.detach().clone().requires_grad_(True) for p in params]
    with static.Graph():
        x = static.placeholder(arrays[0].shape, name="x", requires_grad=False)
        t = static.placeholder(arrays[1].shape, name="t", requires_grad=False)
        loss = loss_fn(x, t)
        grads = static.gradients(loss, params)
        updates = static.sgd_updates(params, grads, lr=0.1, momentum=0.9)
    program = static.compile(loss, updates=updates)
    opt = cr.optim.SGD(mirror, lr=0.1, momentum=0.9) if hasattr(cr, "optim") else None
    if opt is None:
        import chainrule.optim as optim

        opt = optim.SGD(mirror, lr=0.1, momentum=0.9)
    _, eager_params = _mlp_graph_with(mirror)
    for _ in range(3):
        value = program.run({"x": arrays[0], "t": arrays[1]})
        opt.zero_grad()
        ref = eager_params(cr.tensor(arrays[0]), cr.tensor(arrays[1]))
        ref.backward()
        opt.step()
        np.testing.assert_allclose(value.numpy(), ref.detach().numpy(), **TOL)
        for p, m in zip(params, mirror):
            np.testing.assert_allclose(p.detach().numpy(), m.detach().numpy(), **TOL)
    assert all(p._version[0] >= 3 for p in params)


def _mlp_graph_with(params):
    w1, b1, w2 = params

    def loss_fn(x, t):
        h = (x @ w1 + b1).tanh() * 1.0 + 0.0
        logits = (h.t().t() @ w2).reshape(5, 3).reshape(5, 3)
        return -(logits.log_softmax(1) * t).sum(1).mean() + (x * 2 * 3).sum() * 0.0

    return None, loss_fn


@pytest.mark.filterwarnings("ignore:Using a target size")  # two placeholders' batch sizes are distinct symbols
def test_nn_mlp_step_matches_eager():
    nn = pytest.importorskip("chainrule.nn")
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))
    params = list(model.parameters())
    xa, ta = arr(4, 6), arr(4, 3)
    with static.Graph():
        x = static.placeholder((None, 6), name="x")
        t = static.placeholder((None, 3), name="t")
        loss = nn.functional.mse_loss(model(x), t)
        grads = static.gradients(loss, params)
    program = static.compile([loss] + grads)
    out = program.run({"x": xa, "t": ta})
    ref = nn.functional.mse_loss(model(cr.tensor(xa)), cr.tensor(ta))
    ref.backward()
    np.testing.assert_allclose(out[0].numpy(), ref.detach().numpy(), **TOL)
    for g, p in zip(out[1:], params):
        np.testing.assert_allclose(g.numpy(), p.grad.numpy(), **TOL)


def test_gradients_of_gradients():
    with static.Graph():
        x = static.placeholder((5,), name="x")
        y = (x ** 3).sum()
        g = static.gradients(y, x)  # 3 x^2
        h = static.gradients(g.sum(), x)  # 6 x
        k = static.gradients((g * g).sum(), x)  # d/dx 9x^4 = 36 x^3
    program = static.compile([g, h, k])
    xa = arr(5)
    g_v, h_v, k_v = program.run({"x": xa})
    np.testing.assert_allclose(g_v.numpy(), 3 * xa ** 2, rtol=1e-5)
    np.testing.assert_allclose(h_v.numpy(), 6 * xa, rtol=1e-5)
    np.testing.assert_allclose(k_v.numpy(), 36 * xa ** 3, rtol=1e-4, atol=1e-5)


def test_unused_inputs_get_zero_gradients():
    w = param(3)
    with static.Graph():
        x = static.placeholder((3,), name="x")
        other = static.placeholder((2,), name="other")
        gx, gw, go = static.gradients((x * 2).sum(), [x, w, other])
    program = static.compile([gx, gw, go])
    vx, vw, vo = program.run({"x": arr(3), "other": arr(2)})
    np.testing.assert_array_equal(vx.numpy(), [2, 2, 2])
    np.testing.assert_array_equal(vw.numpy(), np.zeros(3))
    np.testing.assert_array_equal(vo.numpy(), np.zeros(2))


# --- parallel scheduler ---------------------------------------------------------------------------------------
def test_parallel_scheduler_overlaps_independent_branches():
    n = 512  # matmuls of a few ms each, so that two threads running them at once overlap in time
    w = [cr.tensor(arr(n, n) / 23) for _ in range(4)]
    with static.Graph():
        a = static.placeholder((n, n), name="a")
        b = static.placeholder((n, n), name="b")
        out = ((a @ w[0]).tanh() @ w[1]) + ((b @ w[2]).tanh() @ w[3])
    serial = static.compile(out)
    parallel = static.compile(out, threads=2)
    feed = {"a": arr(n, n), "b": arr(n, n)}
    np.testing.assert_allclose(parallel.run(feed).numpy(), serial.run(feed).numpy(), rtol=1e-4, atol=1e-4)
    overlapped = False
    for _ in range(50):  # overlap shows in the timestamps of the two branches' matmuls
        parallel.run(feed, profile=True)
        mm = [r for r in parallel.last_profile if r["op"] == "matmul"]
        assert len(mm) == 4
        overlapped = any(x["start"] < y["end"] and y["start"] < x["end"] and x["thread"] != y["thread"]
                         for x, y in itertools.combinations(mm, 2))
        if overlapped:
            break
    assert overlapped
    serial.run(feed, profile=True)  # threads=1: the serial order, one thread, no overlap
    recs = serial.last_profile
    assert len({r["thread"] for r in recs}) == 1 and threading.get_ident() in {r["thread"] for r in recs}
    assert all(x["end"] <= y["start"] for x, y in zip(recs, recs[1:]))
    parallel.close()


# --- chainrule.compile -----------------------------------------------------------------------------------------
def test_trace_compile_caches_and_retraces_on_new_shape():
    w = param(4, 3)

    @static.trace_compile
    def f(x, scale=2.0):
        return (x @ w).relu() * scale

    xa = arr(5, 4)
    for _ in range(3):
        np.testing.assert_allclose(f(cr.tensor(xa)).numpy(), np.maximum(xa @ w.detach().numpy(), 0) * 2, rtol=1e-5)
    assert f.trace_count == 1
    f(cr.tensor(arr(7, 4)))
    assert f.trace_count == 2  # a new shape retraces
    f(cr.tensor(xa), scale=3.0)
    assert f.trace_count == 3  # a new Python constant too
    f(cr.tensor(arr(5, 4)))
    assert f.trace_count == 3


def test_trace_compile_backward_writes_grads():
    nn = pytest.importorskip("chainrule.nn")
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    twin = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    twin.load_state_dict(model.state_dict())

    @static.trace_compile
    def step(m, x, t):
        loss = ((m(x) - t) ** 2).mean()
        loss.backward()
        return loss

    xa, ta = arr(6, 4), arr(6, 2)
    for _ in range(2):
        for p in list(model.parameters()) + list(twin.parameters()):
            p.grad = None
        loss = step(model, cr.tensor(xa), cr.tensor(ta))
        ref = ((twin(cr.tensor(xa)) - cr.tensor(ta)) ** 2).mean()
        ref.backward()
        np.testing.assert_allclose(loss.numpy(), ref.detach().numpy(), **TOL)
        for p, q in zip(model.parameters(), twin.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **TOL)
        with cr.no_grad():
            for p, q in zip(model.parameters(), twin.parameters()):
                p -= 0.1 * p.grad
                q -= 0.1 * q.grad
    assert step.trace_count == 1


def test_lenet_compiled_step_matches_eager():
    nn = pytest.importorskip("chainrule.nn")
    cr.manual_seed(0)

    def lenet():
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    model, twin = lenet(), lenet()
    twin.load_state_dict(model.state_dict())
    loss_fn = nn.CrossEntropyLoss()

    @static.trace_compile
    def step(m, x, y):
        loss = loss_fn(m(x), y)
        loss.backward()
        return loss

    xa = cr.tensor(arr(4, 1, 28, 28))
    ya = cr.tensor(np.eye(10, dtype=np.float32)[[1, 5, 0, 9]])  # class-probability targets
    loss = step(model, xa, ya)
    ref = loss_fn(twin(xa), ya)
    ref.backward()
    np.testing.assert_allclose(loss.numpy(), ref.detach().numpy(), **TOL)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_inplace_update_of_captured_tensor_becomes_program_update():
    counter = cr.zeros(3)
    with static.Graph():
        x = static.placeholder((3,), name="x")
        with cr.no_grad():
            counter.add_(x)
        y = counter * 2  # sees the new value
    program = static.compile(y)
    out = program.run({"x": np.ones(3, np.float32)})
    np.testing.assert_array_equal(out.numpy(), [2, 2, 2])
    program.run({"x": np.ones(3, np.float32)})
    np.testing.assert_array_equal(counter.numpy(), [2, 2, 2])


def test_dropout_draws_a_new_mask_on_every_run_of_a_compiled_program():
    nn = pytest.importorskip("chainrule.nn")
    with cr.static.Graph():
        x = cr.static.placeholder((None, 64), name="x")
        y = nn.functional.dropout(x, p=0.5) + nn.functional.dropout(x, p=0.5)  # two masks, not one
    program = cr.static.compile(y)
    ones = np.ones((8, 64), np.float32)
    first, second = program.run({"x": ones}).numpy(), program.run({"x": ones}).numpy()
    assert not np.array_equal(first, second)  # a fresh draw per run
    assert set(np.unique(first)) <= {0.0, 2.0, 4.0} and (first == 2.0).any()  # two independent masks


def test_var_and_std_over_an_unknown_batch_size_match_torch():
    torch = pytest.importorskip("torch")
    xs = (np.arange(12, dtype=np.float32).reshape(4, 3) ** 1.5)
    with cr.static.Graph():
        x = cr.static.placeholder((None, 3), name="x", requires_grad=True)
        v, s = x.var(0), x.std(0, correction=0)
        (g,) = cr.static.gradients((v + s).sum(), [x])
    v_run, s_run, g_run = cr.static.compile([v, s, g]).run({"x": xs})
    t = torch.tensor(xs, requires_grad=True)
    (t.var(0) + t.std(0, correction=0)).sum().backward()
    np.testing.assert_allclose(v_run.numpy(), t.var(0).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(s_run.numpy(), t.std(0, correction=0).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(g_run.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_inplace_through_views_is_refused_in_a_static_graph():
    with cr.static.Graph():
        x = cr.static.placeholder((None, 3), name="x")
        h = x * 1
        view = h[0]
        with pytest.raises(cr.GraphError, match="mul_ inside a static graph on a tensor that is a view"):
            view.mul_(2)
        with pytest.raises(cr.GraphError, match="add_ inside a static graph on a tensor that is viewed"):
            h.add_(1)
        fresh = x * 2
        fresh.add_(1)  # nothing shares its memory: rebinding is exact
    program = cr.static.compile(fresh)
    np.testing.assert_allclose(program.run({"x": np.ones((2, 3), np.float32)}).numpy(), np.full((2, 3), 3.0))


ALL_ANY_INPUTS = [
    np.array([[1, 0, 2], [3, 4, 5]], np.uint8),  # PyTorch keeps uint8 for all/any of uint8
    np.array([[1.0, np.nan, 0.0], [2.0, -1.0, 3.0]], np.float32),  # nan counts as nonzero
    np.array([[True, False, True], [True, True, True]]),
    np.zeros((0, 3), np.int64),  # all() of nothing is True, any() False
]


@pytest.mark.parametrize("fn", ["all", "any"])
@pytest.mark.parametrize("kwargs", [{}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 1)}])
@pytest.mark.parametrize("array", ALL_ANY_INPUTS, ids=["uint8", "float_nan", "bool", "empty"])
def test_all_and_any_match_torch_eagerly_and_in_a_static_graph(fn, kwargs, array):
    torch = pytest.importorskip("torch")
    expected = getattr(torch, fn)(torch.from_numpy(array), **kwargs)
    eager = getattr(cr, fn)(cr.tensor(array), **kwargs)
    with cr.static.Graph():
        x = cr.static.placeholder((None, 3), dtype=cr.tensor(array).dtype, name="x")
        traced = getattr(x, fn)(**kwargs)
    compiled = cr.static.compile(traced).run({"x": array})
    for got in (eager, compiled):
        assert got.dtype.name == str(expected.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
