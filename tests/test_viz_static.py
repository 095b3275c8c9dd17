"""Pictures of static graphs: a ``cr.static.Graph``, a compiled ``Program`` and symbolic tensors are
read into the same GraphView as eager graphs and rendered by the same DOT writer."""

import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("graphviz")
viz = pytest.importorskip("chainrule.viz")

import chainrule as cr  # noqa: E402
import chainrule.viz.static as static_view  # noqa: E402
from chainrule import nn, static  # noqa: E402
from chainrule.ops.elementwise import add_op, mul_op  # noqa: E402

pytestmark = pytest.mark.beyond_torch  # chainrule's own feature: PyTorch has no viz module

BACKWARD_FILL = 'fillcolor="#fce5cd"'


def dot_nodes(source):
    """``{node id: (label line, node defaults in force, cluster label or None)}`` from DOT text.

    The renderer writes each kind's style once, as the node defaults of the block holding the
    nodes of that kind, so a node's style is the ``node [...]`` line of its innermost block."""
    nodes = {}
    stack = [("", None)]
    for line in source.splitlines():
        text = line.strip()
        if text.endswith("{"):
            stack.append(stack[-1])
        elif text == "}":
            stack.pop()
        elif text.startswith("node ["):
            stack[-1] = (text, stack[-1][1])
        elif re.match(r"\w+=", text) and len(stack) > 1:  # a cluster's attributes
            stack[-1] = (stack[-1][0], re.search(r'label=("[^"]*"|\S+)', text).group(1).strip('"'))
        elif re.match(r"[no]\d+ \[", text):
            nodes[text.split(" ", 1)[0]] = (text, *stack[-1])
    return nodes


def edges(source):
    return [line.strip() for line in source.splitlines() if "->" in line]


def mlp_graph():
    cr.manual_seed(0)
    w = nn.Parameter(cr.randn(3, 2))
    with static.Graph() as g:
        x = static.placeholder((None, 3), name="x")
        loss = (x @ w).tanh().sum()
        gw = static.gradients(loss, w)
    return g, w, x, loss, gw


# --- a graph with its gradients -----------------------------------------------------------------------
def test_graph_draws_every_ir_node_with_backward_nodes_framed_apart():
    g, w, x, loss, gw = mlp_graph()
    pic = viz.draw(g, params={"w": w})
    nodes = dot_nodes(pic.source)
    assert sorted(nodes) == sorted(f"n{n.id}" for n in g.nodes)  # one box per IR node, no output marks
    assert len(edges(pic.source)) == sum(len(n.inputs) for n in g.nodes)
    backward = [n for n in g.nodes if n.tag == "backward"]
    forward_ops = [n for n in g.nodes if n.kind == "op" and n.tag != "backward"]
    assert len(backward) >= 3 and [n.op.name for n in forward_ops] == ["matmul", "tanh", "sum"]
    for n in backward:
        label, style, cluster = nodes[f"n{n.id}"]
        assert BACKWARD_FILL in style and "dashed" in style
        assert "backward" in cluster and f"<B>{n.op.name}</B>" in label
    for n in forward_ops:
        label, style, cluster = nodes[f"n{n.id}"]
        assert BACKWARD_FILL not in style and cluster == "forward"
    # inputs: outside both frames, each kind in its own style
    x_label, x_style, x_cluster = nodes[f"n{x.value.id}"]
    w_label, w_style, w_cluster = nodes[f"n{g.nodes[1].id}"]
    assert "<B>x</B>" in x_label and 'fillcolor="#d0e0e3"' in x_style and x_cluster is None
    assert "<B>w</B>" in w_label and 'fillcolor="#9fc5e8"' in w_style and w_cluster is None
    # gradient flow between generated nodes is drawn as gradient edges; forward values read by them are data
    ids = {n.id: n for n in g.nodes}
    for line in edges(pic.source):
        src, dst = (int(s) for s in re.match(r"n(\d+) -> n(\d+)", line).groups())
        both_backward = ids[src].tag == "backward" and ids[dst].tag == "backward"
        assert ("style=dashed" in line) == both_backward


def test_graph_shapes_name_symbolic_sizes_and_show_dtypes():
    g, w, x, loss, gw = mlp_graph()
    nodes = dot_nodes(viz.draw(g).source)
    matmul = next(n for n in g.nodes if n.kind == "op")  # x @ w, the first op recorded
    assert "(x.0, 2) float32" in nodes[f"n{matmul.id}"][0]  # the batch size by name, not None
    assert "(x.0, 3) float32" in nodes[f"n{x.value.id}"][0]
    assert "(3, 2) float32" in nodes[f"n{gw.value.id}"][0]  # the gradient has w's shape
    assert "scalar float32" in nodes[f"n{loss.value.id}"][0]
    assert not any("None" in line.split(" tooltip=")[0] for line, _, _ in nodes.values())  # the tooltip has code


def test_symbolic_sizes_through_reshape_and_op_attributes():
    with static.Graph():
        x = static.placeholder((None, 4), name="pixels")
        y = x.reshape(-1, 2)
        s = static.full(x.shape, 1.0, np.float32)
    assert static_view.named_shape(y.value.shape) == ("2*pixels.0", 2)
    nodes = dot_nodes(viz.draw(s).source)
    assert "shape=(pixels.0, 4)" in nodes[f"n{s.value.id}"][0]  # sizes inside an op's attributes too
    assert "<B>pixels</B>" in nodes[f"n{x.value.id}"][0]  # what the size depends on is drawn


# --- a compiled program ----------------------------------------------------------------------------------
def compiled_program():
    cr.manual_seed(0)
    w = nn.Parameter(cr.randn(8, 4))
    with static.Graph():
        x = static.placeholder((None, 8), name="x")
        y = ((x @ w) * 2 + 1).tanh().sum()
        gw = static.gradients(y, w)
    return static.compile([y, gw]), w


def test_program_draws_its_optimised_ir_with_fused_kernels():
    program, w = compiled_program()
    pic = viz.draw(program, params={"w": w})
    nodes = dot_nodes(pic.source)
    ir_boxes = [k for k in nodes if k.startswith("n")]
    assert sorted(ir_boxes) == sorted(f"n{n.id}" for n in program.nodes)
    assert "<B>output 0</B>" in nodes["o0"][0] and "scalar float32" in nodes["o0"][0]
    assert "<B>output 1</B>" in nodes["o1"][0] and "(8, 4) float32" in nodes["o1"][0]
    kernels = [n for n in program.nodes if n.kind == "fused"]
    assert len(kernels) == 2
    forward, backward = sorted(kernels, key=lambda n: n.tag != "forward")
    f_label, f_style, f_cluster = nodes[f"n{forward.id}"]
    b_label, b_style, b_cluster = nodes[f"n{backward.id}"]
    assert "fused kernel (3 ops)" in f_label and "mul → add → tanh" in f_label and "(x.0, 4) float32" in f_label
    assert "peripheries=2" in f_style and BACKWARD_FILL not in f_style and f_cluster == "forward"
    # tanh's gradient, g * (1 - t*t) * 2: one kernel (how many steps depends on how far the seed simplifies)
    assert f"fused kernel ({len(backward.steps)} ops)" in b_label and "mul → sub → mul" in b_label
    assert "peripheries=2" in b_style and BACKWARD_FILL in b_style and "backward" in b_cluster
    # the weight gradient x^T @ g: one GEMM node reading x transposed, no transpose node
    weight_grad = next(label for label, _, _ in nodes.values() if "<B>weight_grad</B>" in label)
    assert "(8, 4) float32" in weight_grad and "gradients(y, w)" in weight_grad
    assert not any("<B>permute</B>" in label for label, _, _ in nodes.values())


def test_long_kernels_wrap_their_op_list():
    with static.Graph():
        x = static.placeholder((None, 8), name="x")
        y = ((x * 2 + 1).exp() - 3).tanh().neg()
    program = static.compile(y)
    (kernel,) = [n for n in program.nodes if n.kind == "fused"]
    view = viz.graph_view(program)
    assert view.node(f"n{kernel.id}").details == ["mul → add → exp → sub", "tanh → neg"]
    assert view.node(f"n{kernel.id}").title == "fused kernel (6 ops)"


def test_fused_op_names_reads_the_op_records():
    kernel = SimpleNamespace(steps=[(mul_op, {}, [("x", 0), ("c", 2)]), (add_op, {}, [("buf",), ("c", 1)])])
    assert static_view.fused_op_names(kernel) == ["mul", "add"]


def test_program_updates_are_marked():
    w = cr.tensor(np.ones((2, 2), np.float32))
    with static.Graph():
        x = static.placeholder((2, 2), name="x")
        new = w + x
    program = static.compile([], updates={w: new})
    nodes = dot_nodes(viz.draw(program).source)
    assert "<B>update</B>" in nodes["o0"][0]
    assert "= [[1, 1]" in nodes["n1"][0]  # a small variable shows its value


# --- symbolic tensors -----------------------------------------------------------------------------------
def test_symbolic_tensor_draws_only_what_it_depends_on():
    with static.Graph() as g:
        x = static.placeholder((None, 3), name="x")
        unused = x.sin()  # noqa: F841 - in the graph, not needed by y
        y = (x * 2).sum()
    pic = viz.draw(y)
    titles = sorted(n.title for n in pic.graph_view.nodes)
    assert titles == ["2", "mul", "output", "sum", "x"]
    assert len(g.nodes) == 5  # sin is in the graph, not in the picture
    assert len(edges(pic.source)) == 4  # x->mul, 2->mul, mul->sum, sum->output
    label = next(line for line, _, _ in dot_nodes(pic.source).values() if "<B>mul</B>" in line)
    assert "(x.0, 3) float32" in label
    no_constants = viz.draw(y, show_constants=False).graph_view
    assert sorted(n.title for n in no_constants.nodes) == ["mul", "output", "sum", "x"]


def test_several_symbolic_tensors_and_their_errors():
    g, w, x, loss, gw = mlp_graph()
    view = viz.graph_view([loss, gw])
    assert [n.title for n in view.nodes if n.kind == "output"] == ["output 0", "output 1"]
    with static.Graph():
        other = static.placeholder((2,), name="other")
    with pytest.raises(ValueError, match="different static graphs"):
        viz.draw([loss, other])
    with pytest.raises(ValueError, match="collapse and adjoints"):
        viz.draw(loss, adjoints=True)


def test_save_writes_dot_text_without_the_dot_program(tmp_path):
    g, w, x, loss, gw = mlp_graph()
    path = viz.save(g, tmp_path / "g.dot", params={"w": w})
    assert open(path, encoding="utf-8").read() == viz.draw(g, params={"w": w}).source


@pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz 'dot' program is not installed")
def test_program_renders_to_svg(tmp_path):
    program, w = compiled_program()
    svg = open(viz.save(program, tmp_path / "p.svg", params={"w": w}), encoding="utf-8").read()
    assert svg.startswith("<?xml") and "mul → add → tanh" in svg and "x.0" in svg
