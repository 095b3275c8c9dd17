"""Tests of chainrule.viz: graph pictures (DOT structure, rendering, module collapse) and the
step-by-step chain rule (explain_backward)."""

import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("graphviz")
viz = pytest.importorskip("chainrule.viz")  # skipped, not broken, in the torch-oracle mode

import chainrule as cr  # noqa: E402

pytestmark = pytest.mark.beyond_torch  # chainrule's own feature: PyTorch has no viz module

SRC = Path(__file__).resolve().parents[1] / "src"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="the Graphviz 'dot' program is not installed")

X1, X2 = 2.0, 5.0
DF_DX1 = 1 / X1 + X2  # 5.5
DF_DX2 = X1 - math.cos(X2)  # 1.7163...


def node_lines(source):
    """The node statements of DOT text (``n12 [label=...]``), not the attribute defaults."""
    return [line for line in source.splitlines() if re.match(r"\s*[nm]\d+ \[", line)]


def edge_lines(source):
    return [line for line in source.splitlines() if "->" in line]


def label_of(source, node_id):
    for line in node_lines(source):
        if line.strip().startswith(f"{node_id} ["):
            return line
    raise KeyError(node_id)


def example():
    x1 = cr.tensor(X1, dtype=cr.float64, requires_grad=True)
    x2 = cr.tensor(X2, dtype=cr.float64, requires_grad=True)
    y = cr.log(x1) + x1 * x2 - cr.sin(x2)
    return x1, x2, y


# --- the graph view and its DOT text ----------------------------------------------------------------
def test_small_graph_nodes_edges_and_labels():
    a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.tensor([4.0, 5.0, 6.0], requires_grad=True)
    c = (a * b).sum()
    pic = viz.draw(c, params={"a": a, "b": b})
    view = pic.graph_view
    kinds = [n.kind for n in view.nodes]
    assert sorted(kinds) == sorted(["leaf", "leaf", "accumulate", "accumulate", "op", "op", "output"])
    assert len(node_lines(pic.source)) == 7
    assert len(edge_lines(pic.source)) == 6  # a->acc, b->acc, acc->mul (x2), mul->sum, sum->output
    mul = next(n for n in view.nodes if n.title == "mul")
    total = next(n for n in view.nodes if n.title == "sum")
    assert mul.shape == (3,) and mul.tooltip == "MulBackward0"
    assert total.shape == ()
    assert "<B>mul</B>" in label_of(pic.source, mul.id) and "(3,)" in label_of(pic.source, mul.id)
    assert "<B>sum</B>" in label_of(pic.source, total.id)
    assert "= 32" in label_of(pic.source, total.id)  # 1*4 + 2*5 + 3*6
    assert "<B>a</B>" in pic.source and "<B>b</B>" in pic.source
    # edges follow the data: the leaves feed their AccumulateGrad, which feeds mul
    ids = {n.title: n.id for n in view.nodes if n.kind in ("leaf", "op", "output")}
    pairs = {(e.src, e.dst) for e in view.edges}
    assert (ids["sum"], ids["output"]) in pairs and (ids["mul"], ids["sum"]) in pairs


def test_values_and_grads_after_backward():
    a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.tensor([4.0, 5.0, 6.0], requires_grad=True)
    c = (a * b).sum()
    before = viz.draw(c, params={"a": a, "b": b})
    assert all(n.grad is None for n in before.graph_view.nodes) and "grad [" not in before.source
    c.backward(retain_graph=True)
    view = viz.graph_view(c, params={"a": a, "b": b})
    leaf_a = next(n for n in view.nodes if n.title == "a")
    np.testing.assert_array_equal(leaf_a.value, [1, 2, 3])
    np.testing.assert_array_equal(leaf_a.grad, [4, 5, 6])
    src = viz.draw(c, params={"a": a, "b": b}).source
    assert "= [1, 2, 3]" in src and "grad [4, 5, 6]" in src and "grad [1, 2, 3]" in src


def test_max_elements_and_show_flags():
    x = cr.arange(10.0).requires_grad_()
    y = (x * x).sum()
    y.backward(retain_graph=True)
    view = viz.graph_view(y, max_elements=6)
    leaf = next(n for n in view.nodes if n.kind == "leaf")
    assert leaf.shape == (10,) and leaf.value is None and leaf.grad is None  # 10 > max_elements
    view = viz.graph_view(y, max_elements=10)
    leaf = next(n for n in view.nodes if n.kind == "leaf")
    np.testing.assert_array_equal(leaf.grad, 2 * np.arange(10.0))
    view = viz.graph_view(y, show_values=False, show_grads=False, max_elements=100)
    assert all(n.value is None and n.grad is None for n in view.nodes)


def test_constants_accumulate_and_parameters_have_their_own_kinds():
    class Parameter(cr.Tensor):  # recognized by its class name, like nn.Parameter
        pass

    w = Parameter([1.0, -1.0], requires_grad=True)
    mask = cr.tensor([1.0, 0.0])
    y = ((w * 2) * mask).sum()
    view = viz.graph_view(y, params={"weight": w})
    by_kind = {}
    for n in view.nodes:
        by_kind.setdefault(n.kind, []).append(n)
    assert [n.title for n in by_kind["parameter"]] == ["weight"]
    assert len(by_kind["accumulate"]) == 1
    assert sorted(n.title for n in by_kind["constant"]) == ["2", "constant"]
    assert len(by_kind["output"]) == 1
    src = viz.draw(y, params={"weight": w}).source
    # each kind's style is declared once: outputs green and bold, constants dashed
    assert 'fillcolor="#d9ead3"' in src and "style=dashed" in src and "penwidth=2" in src
    bare = viz.graph_view(y, show_accumulate=False, show_constants=False)
    assert bare.count("accumulate") == 0 and bare.count("constant") == 0
    assert bare.count() == view.count() - 3


def test_several_roots_share_one_graph_and_rankdir():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    a, b = h.sum(), (h * h).mean()
    pic = viz.draw([a, b], rankdir="LR")
    view = pic.graph_view
    assert view.count("output") == 2
    assert [n.title for n in view.nodes].count("exp") == 1
    assert "rankdir=LR" in pic.source


def test_tensor_without_graph_and_custom_function():
    assert viz.graph_view(cr.ones(2)).count() == 1  # just the output

    class Twice(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * 2 + g2 * 3

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a, b = Twice.apply(x)
    view = viz.graph_view((a * b).sum())
    fn = next(n for n in view.nodes if n.title == "Twice")
    assert fn.kind == "op" and fn.shape == (2,) and fn.details == ["out 1: (2,)"]
    assert sorted(e.label for e in view.edges if e.src == fn.id) == ["out 0", "out 1"]


def test_intermediate_values_survive_a_backward_that_freed_the_graph():
    x1, x2, y = example()
    y.backward()  # no retain_graph: saved tensors are freed
    view = viz.graph_view(y)
    values = {n.title: float(n.value) for n in view.nodes if n.kind == "op"}
    assert values["log"] == pytest.approx(math.log(X1))
    assert values["mul"] == pytest.approx(X1 * X2)
    assert values["sin"] == pytest.approx(math.sin(X2))
    assert values["sub"] == pytest.approx(math.log(X1) + X1 * X2 - math.sin(X2))


def test_adjoints_show_every_intermediate_gradient():
    x1, x2, y = example()
    view = viz.graph_view(y, params={"x1": x1, "x2": x2}, adjoints=True)
    grads = {n.title: float(n.grad) for n in view.nodes if n.grad is not None}
    assert grads == pytest.approx({"log": 1, "mul": 1, "add": 1, "sin": -1, "sub": 1, "output": 1,
                                   "x1": DF_DX1, "x2": DF_DX2})
    assert x1.grad is None and x2.grad is None  # observing did not accumulate anything


def test_ten_thousand_op_chain_draws_without_recursion():
    x = cr.tensor(0.5, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y.sin()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(min(limit, 1000))  # nothing may recurse along the chain
    try:
        start = time.perf_counter()
        pic = viz.draw(y)
        steps = viz.explain_backward(y)
        elapsed = time.perf_counter() - start
    finally:
        sys.setrecursionlimit(limit)
    assert len(node_lines(pic.source)) == 10_000 + 3  # ops, leaf, AccumulateGrad, output
    assert len(edge_lines(pic.source)) == 10_000 + 2
    assert len(steps) == 10_001
    assert elapsed < 20


def test_a_static_graph_can_hand_in_its_own_view():
    view = viz.GraphView(title="f and its gradient")
    view.add_node(viz.ViewNode("x", "leaf", "x", shape=(3,)))
    view.add_node(viz.ViewNode("f", "op", "tanh", shape=(3,)))
    view.add_node(viz.ViewNode("df", "backward", "tanh_grad", shape=(3,)))
    view.add_edge("x", "f")
    view.add_edge("f", "df", kind="grad")

    class Static:
        def to_graph_view(self):
            return view

    src = viz.draw(Static()).source
    assert src == viz.draw(view).source
    assert "<B>tanh_grad</B>" in src and 'label="f and its gradient"' in src
    assert re.search(r"f -> df \[.*style=dashed", src)
    with pytest.raises(ValueError, match="kind"):
        view.add_node(viz.ViewNode("y", "weird", "y"))


# --- collapsing modules -------------------------------------------------------------------------------
class FakeModule:
    """The least a module needs for collapse: children, parameters, PyTorch's forward hooks
    (without ``with_kwargs``, to exercise the fallback)."""

    def __init__(self, **children):
        self._children = children
        self._params = {}
        self._pre, self._post = [], []

    def named_children(self):
        return list(self._children.items())

    def parameters(self):
        out = list(self._params.values())
        for child in self._children.values():
            out.extend(child.parameters())
        return out

    def named_parameters(self):
        out = list(self._params.items())
        for name, child in self._children.items():
            out.extend((f"{name}.{k}", v) for k, v in child.named_parameters())
        return out

    def register_forward_pre_hook(self, hook):
        return _Handle(self._pre, hook)

    def register_forward_hook(self, hook):
        return _Handle(self._post, hook)

    def __call__(self, *args):
        for hook in list(self._pre):
            hook(self, args)
        out = self.forward(*args)
        for hook in list(self._post):
            hook(self, args, out)
        return out


class _Handle:
    def __init__(self, hooks, fn):
        hooks.append(fn)
        self.hooks, self.fn = hooks, fn

    def remove(self):
        self.hooks.remove(self.fn)


class Linear(FakeModule):
    def __init__(self, n_in, n_out):
        super().__init__()
        self._params = {"weight": cr.randn(n_out, n_in).requires_grad_(), "bias": cr.zeros(n_out).requires_grad_()}

    def forward(self, x):
        return x @ self._params["weight"].T + self._params["bias"]


class Tanh(FakeModule):
    def forward(self, x):
        return cr.tanh(x)


class MLP(FakeModule):
    def __init__(self):
        super().__init__(fc1=Linear(4, 8), act=Tanh(), fc2=Linear(8, 3))

    def forward(self, x):
        c = self._children
        return c["fc2"](c["act"](c["fc1"](x)))


def test_collapse_a_tracked_model_gives_one_box_per_child():
    model = MLP()
    x = cr.randn(5, 4)
    with viz.track_modules(model) as scopes:
        loss = model(x).sum()
    params = dict(model.named_parameters())
    full = viz.graph_view(loss, params=params)
    boxed = viz.graph_view(loss, params=params, collapse=scopes)
    assert boxed.count() < full.count()
    modules = [n for n in boxed.nodes if n.kind == "module"]
    assert [n.title for n in modules] == ["fc1: Linear", "act: Tanh", "fc2: Linear"]
    assert modules[0].details[0].endswith("ops") and "weight (8, 4)" in modules[0].details
    assert modules[2].shape == (5, 3)
    assert boxed.count("parameter") + boxed.count("leaf") + boxed.count("accumulate") == 0
    # fc1 -> act -> fc2 -> sum -> output, and the input x feeds fc1
    ids = {n.title: n.id for n in boxed.nodes}
    pairs = {(e.src, e.dst) for e in boxed.edges}
    assert (ids["fc1: Linear"], ids["act: Tanh"]) in pairs and (ids["act: Tanh"], ids["fc2: Linear"]) in pairs
    assert any(dst == ids["fc1: Linear"] for src, dst in pairs)
    # collapse=model finds the tracking; the hooks are gone after the block
    assert viz.graph_view(loss, params=params, collapse=model).count() == boxed.count()
    assert all(not m._pre and not m._post for m in model._children.values())


def test_collapse_without_tracking_uses_the_parameters():
    model = MLP()
    loss = model(cr.randn(5, 4)).sum()
    full = viz.graph_view(loss)
    boxed = viz.graph_view(loss, collapse=model)
    titles = [n.title for n in boxed.nodes if n.kind == "module"]
    assert titles == ["fc1: Linear", "fc2: Linear"]  # the parameter-free Tanh stays an op
    assert boxed.count() == full.count() - 2 * (3 + 4) + 2  # 3 ops, 2 leaves, 2 AccumulateGrad per Linear
    assert "tanh" in [n.title for n in boxed.nodes]


def test_collapse_as_clusters_and_from_a_mapping():
    model = MLP()
    with viz.track_modules(model):
        loss = model(cr.randn(2, 4)).sum()
    pic = viz.draw(loss, collapse=model, collapse_mode="cluster")
    assert pic.source.count("subgraph cluster_") == 3 and 'label="act: Tanh"' in pic.source
    assert len(node_lines(pic.source)) == viz.graph_view(loss).count()
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    g = h * 2
    out = g.sum()
    view = viz.graph_view(out, collapse={"block": [h, g]})
    assert [n.title for n in view.nodes if n.kind == "module"] == ["block"]
    assert view.count("op") == 1  # only sum is left outside


def test_collapse_with_chainrule_nn_if_available():
    nn = pytest.importorskip("chainrule.nn")
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with viz.track_modules(model):
        loss = model(cr.randn(3, 4)).sum()
    view = viz.graph_view(loss, params=dict(model.named_parameters()), collapse=model)
    assert [n.title for n in view.nodes if n.kind == "module"] == ["0: Linear", "1: ReLU", "2: Linear"]
    assert view.count() < viz.graph_view(loss).count()


# --- rendering --------------------------------------------------------------------------------------
@needs_dot
def test_render_svg_and_png(tmp_path):
    x1, x2, y = example()
    y.backward(retain_graph=True)
    svg = tmp_path / "f.svg"
    viz.draw(y, params={"x1": x1, "x2": x2}).render(outfile=str(svg), cleanup=True)
    text = svg.read_text()
    assert "<svg" in text and "x1" in text and "5.5" in text
    png = viz.save(y, tmp_path / "f.png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "f.svg"]  # cleanup removed the .gv


def test_save_dot_text_needs_no_dot_program(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    x1, x2, y = example()
    for name in ("g.dot", "g.gv"):
        path = viz.save(y, tmp_path / name)
        assert Path(path).read_text().startswith("digraph")
    with pytest.raises(ValueError, match="suffix"):
        viz.save(y, tmp_path / "noext")


def test_render_without_dot_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` anywhere
    x1, x2, y = example()
    pic = viz.draw(y)
    assert pic.source.startswith("digraph")  # the DOT text needs no program
    with pytest.raises(viz.GraphvizNotFoundError) as info:
        pic.render(outfile=str(tmp_path / "g.svg"), cleanup=True)
    message = str(info.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(viz.GraphvizNotFoundError):
        viz.save(y, tmp_path / "g.png")
    with pytest.raises(viz.GraphvizNotFoundError):
        pic.pipe(format="svg")


def test_missing_graphviz_package_says_pip_install(monkeypatch):
    from chainrule.viz import dot

    monkeypatch.setitem(sys.modules, "graphviz", None)
    monkeypatch.setattr(dot, "_PICTURE", None)
    with pytest.raises(ImportError, match="pip install graphviz"):
        viz.draw(cr.ones(1))


@needs_dot
def test_expr_cli_writes_an_svg(tmp_path):
    out = tmp_path / "out.svg"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "expr", "ln(x1)+x1*x2-sin(x2)", "--at", "x1=2", "x2=5",
         "--graph", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"graph written to {out}" in result.stdout
    text = out.read_text()
    assert "<svg" in text
    for op in ("log", "mul", "sin", "add", "sub"):
        assert f">{op}<" in text
    assert not (tmp_path / "out.gv").exists()


# --- explain_backward ---------------------------------------------------------------------------------
def test_explain_650_times_1_1():
    a = cr.tensor(650.0, requires_grad=True)
    b = cr.tensor(1.1, requires_grad=True)
    steps = viz.explain_backward(a * b)
    assert [s.node for s in steps] == ["MulBackward0", "AccumulateGrad", "AccumulateGrad"]
    mul = steps[0]
    assert mul.computes == "v1 = 650 * 1.1" and float(mul.value) == pytest.approx(715)
    assert float(mul.received) == 1
    assert mul.rules == ["d/d650 = 1.1", "d/d1.1 = 650"]
    sent = {g.to: float(g.grad) for g in mul.sends}
    assert sent == pytest.approx({"650": 1.1, "1.1": 650})
    received = {s.name: float(s.received) for s in steps if s.is_leaf}
    assert received == pytest.approx({"650": 1.1, "1.1": 650})  # the 650 node receives 1.1, and vice versa
    assert steps.grads == pytest.approx({"650": 1.1, "1.1": 650})
    assert a.grad is None and b.grad is None


def test_explain_the_classic_adjoint_table(capsys):
    x1, x2, y = example()
    steps = viz.explain_backward(y, names={"x1": x1, "x2": x2})
    by_op = {s.op: s for s in steps if not s.is_leaf}
    assert [s.node for s in steps][0] == "SubBackward0"
    assert set(by_op) == {"sub", "add", "sin", "mul", "log"}
    # forward values (v1..v5 in evaluation order)
    assert by_op["log"].computes == "v1 = log(x1)" and float(by_op["log"].value) == pytest.approx(math.log(2))
    assert by_op["mul"].computes == "v2 = x1 * x2" and float(by_op["mul"].value) == pytest.approx(10)
    assert by_op["sin"].computes == "v4 = sin(x2)"
    assert by_op["sub"].computes == "v5 = v3 - v4"
    # reverse sweep: what each node received and sent
    assert float(by_op["sub"].received) == 1
    assert {g.to: float(g.grad) for g in by_op["sub"].sends} == {"v3": 1, "v4": -1}
    assert float(by_op["sin"].received) == -1
    assert float(by_op["sin"].sends[0].grad) == pytest.approx(-math.cos(5))
    assert by_op["sin"].rules == ["d/dx2 = cos(x2)"]
    assert {g.to: float(g.grad) for g in by_op["mul"].sends} == pytest.approx({"x1": 5, "x2": 2})
    assert float(by_op["log"].sends[0].grad) == pytest.approx(0.5)
    leaves = {s.name: float(s.received) for s in steps if s.is_leaf}
    assert leaves == pytest.approx({"x1": DF_DX1, "x2": DF_DX2})
    assert steps.grads == pytest.approx({"x1": DF_DX1, "x2": DF_DX2})
    # the leaves are reached only after every contribution arrived; each node runs once
    assert len(steps) == 7 and steps[-1].is_leaf
    print(steps)
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].split() == ["step", "node", "computes", "value", "received", "local", "derivative", "sends"]
    assert "x1 <- 5" in table and "x2 <- 2" in table and "x1 <- 0.5" in table
    assert "gradients: x1 = 5.5, x2 = 1.71634" in table
    column = lines[0].index("received")  # aligned: every row's "received" cell starts at the header's column
    for s_line in lines[2:9]:
        if s_line.strip() and s_line[:4].strip():
            assert s_line[column - 1] == " " and s_line[column] != " "


def test_explain_through_the_expression_parser():
    f = cr.expr.parse("ln(x1)+x1*x2-sin(x2)")
    x1 = cr.tensor(X1, dtype=cr.float64, requires_grad=True)
    x2 = cr.tensor(X2, dtype=cr.float64, requires_grad=True)
    steps = viz.explain_backward(f(x1=x1, x2=x2), inputs={"x1": x1, "x2": x2})
    assert steps.grads == pytest.approx({"x1": DF_DX1, "x2": DF_DX2})


def test_explain_leaves_every_grad_untouched():
    x1, x2, y = example()
    x1.grad = cr.tensor(100.0, dtype=cr.float64)
    before = x1.grad
    h = x1 * x2
    h.retain_grad()
    z = h.sin() + y
    steps = viz.explain_backward(z)
    assert x1.grad is before and x1.grad.item() == 100.0
    assert x2.grad is None and h.grad is None
    assert len(steps) > 0
    z.backward()  # the graph is still whole: a real backward works afterwards, and retains h's grad
    assert h.grad.item() == pytest.approx(math.cos(10))
    assert x2.grad.item() == pytest.approx(math.cos(10) * X1 + DF_DX2)


def test_explain_with_respect_to_some_inputs_runs_only_what_they_need():
    x1, x2, y = example()
    steps = viz.explain_backward(y, inputs={"x1": x1})
    assert list(steps.grads) == ["x1"] and steps.grads["x1"] == pytest.approx(DF_DX1)
    assert "sin" not in [s.op for s in steps]  # sin leads only to x2
    assert [s.name for s in steps if s.is_leaf] == ["x1"]


def test_explain_broadcast_gradients_are_sent_unbroadcast():
    w = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = cr.tensor([10.0, 20.0], requires_grad=True)
    steps = viz.explain_backward((w + b).sum(), names={"w": w, "b": b})
    add = next(s for s in steps if s.op == "add")
    sent = {g.to: g.grad for g in add.sends}
    np.testing.assert_array_equal(sent["b"], [2, 2])  # summed over the broadcast rows, as the engine sends it
    np.testing.assert_array_equal(sent["w"], np.ones((2, 2)))


def test_explain_errors():
    x1, x2, y = example()
    y.backward()
    with pytest.raises(cr.GraphError, match="retain_graph=True"):
        viz.explain_backward(y)
    with pytest.raises(cr.GraphError, match="does not require grad"):
        viz.explain_backward(cr.ones(()))
    v = cr.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(cr.GraphError, match="scalar"):
        viz.explain_backward(v)
    steps = viz.explain_backward(v, gradient=cr.tensor([1.0, -1.0]))
    assert [float(g) for g in steps[-1].received] == [2, -2]


def test_every_differentiable_op_explains_its_rule():
    from chainrule.autograd.graph import OpNode
    from chainrule.ops.op import OPS
    from chainrule.viz.explain import describe_rule

    for name, op in OPS.items():
        if op.vjp is not None:
            assert op.explain, f"{name} declares no explain text"
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.tensor([3.0, 4.0], requires_grad=True)
    assert describe_rule((x * y).grad_fn, ["x", "y"]) == ["d/dx = y", "d/dy = x"]
    node = (x * y).grad_fn
    assert isinstance(node, OpNode)
    node.op = type(node.op)("frobnicate", None, None)  # an op without an explanation gets a generic one
    assert describe_rule(node, ["x"]) == ["vjp 0 of frobnicate"]
