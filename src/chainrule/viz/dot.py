"""Render a :class:`GraphView` as a ``graphviz.Digraph`` (DOT text; SVG/PNG/PDF through ``dot``).

The ``graphviz`` Python package only writes DOT text and calls the Graphviz ``dot`` program to
lay it out. Without the program, ``.source`` still works and rendering raises
:class:`GraphvizNotFoundError`, which says how to install it.
"""

import html

from ..errors import ChainruleError
from .view import format_array, format_shape

INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "`conda install graphviz`, or see https://graphviz.org/download/"
)


class GraphvizNotFoundError(ChainruleError, RuntimeError):
    """The Graphviz ``dot`` program is needed to render a picture and is not on PATH."""

    def __init__(self, detail=""):
        super().__init__(
            "rendering a picture needs the Graphviz 'dot' program, which was not found on PATH; "
            f"{INSTALL_HINT}. The DOT text is available without it: picture.source, or save to a "
            ".dot/.gv file." + (f" ({detail})" if detail else "")
        )


def import_graphviz():
    try:
        import graphviz
    except ImportError:
        raise ImportError(
            "chainrule.viz needs the 'graphviz' Python package: pip install graphviz (and, to render "
            f"SVG/PNG/PDF, the Graphviz programs: {INSTALL_HINT})"
        ) from None
    return graphviz


_PICTURE = None


def picture_class():
    """``Picture``: a ``graphviz.Digraph`` whose render/pipe errors say how to install ``dot``."""
    global _PICTURE
    if _PICTURE is None:
        graphviz = import_graphviz()

        class Picture(graphviz.Digraph):
            """A ``graphviz.Digraph`` drawn by chainrule.viz; ``graph_view`` is the model it was drawn from."""

            graph_view = None

            def render(self, *args, **kwargs):
                try:
                    return super().render(*args, **kwargs)
                except graphviz.ExecutableNotFound as exc:
                    raise GraphvizNotFoundError(str(exc)) from None

            def pipe(self, *args, **kwargs):
                try:
                    return super().pipe(*args, **kwargs)
                except graphviz.ExecutableNotFound as exc:
                    raise GraphvizNotFoundError(str(exc)) from None

        _PICTURE = Picture
    return _PICTURE


# Node styles by kind. Blue: what gradients flow to; green: outputs; grey: ops; dashed: constants.
STYLES = {
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#f2f2f2", "color": "#555555"},
    "leaf": {"shape": "box", "style": "filled", "fillcolor": "#cfe2f3", "color": "#1f4e79"},
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#9fc5e8", "color": "#1f4e79",
                  "penwidth": "2"},
    "constant": {"shape": "box", "style": "dashed", "color": "#888888", "fontcolor": "#555555"},
    "output": {"shape": "box", "style": "filled,bold", "fillcolor": "#d9ead3", "color": "#38761d"},
    "accumulate": {"shape": "box", "style": "filled", "fillcolor": "#e6e6e6", "color": "#999999",
                   "fontsize": "10", "margin": "0.05,0.02", "height": "0.3"},
    "backward": {"shape": "box", "style": "rounded,filled,dashed", "fillcolor": "#fce5cd", "color": "#b45f06"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#fff2cc", "color": "#7f6000"},
    "placeholder": {"shape": "box", "style": "filled,bold", "fillcolor": "#d0e0e3", "color": "#134f5c"},
}
# A fused kernel: its unfused kind's style, drawn with a double border.
STYLES["fused"] = {**STYLES["op"], "peripheries": "2"}
STYLES["backward_fused"] = {**STYLES["backward"], "peripheries": "2"}
EDGE_STYLES = {
    "data": {"color": "#555555"},
    "grad": {"color": "#cc0000", "style": "dashed"},
}
GRAD_COLOR = "#cc0000"


def _esc(text):
    return html.escape(str(text), quote=True)


def _array_lines(array, precision):
    return [_esc(line) for line in format_array(array, precision).split("\n")]


def node_label(node, precision=4, default_dtype="float32"):
    """The HTML-like label of a node: title, details, shape (and dtype unless ``default_dtype``), value,
    gradient (in that order)."""
    lines = [f"<B>{_esc(node.title)}</B>"]
    small = '<FONT POINT-SIZE="9">{}</FONT>'
    for d in node.details:
        lines.append(small.format(_esc(d)))
    if node.shape is not None:
        text = format_shape(node.shape) if len(node.shape) else "scalar"
        if node.dtype is not None and node.dtype != default_dtype:
            text += f" {node.dtype}"
        lines.append(small.format(_esc(text)))
    if node.value is not None:
        value = _array_lines(node.value, precision)
        lines.append("= " + value[0])
        lines.extend(value[1:])
    if node.grad is not None:
        grad = _array_lines(node.grad, precision)
        lines.append(f'<FONT COLOR="{GRAD_COLOR}">grad {grad[0]}</FONT>')
        lines.extend(f'<FONT COLOR="{GRAD_COLOR}">{g}</FONT>' for g in grad[1:])
    return "<" + "<BR/>".join(lines) + ">"


def to_digraph(view, *, rankdir="BT", precision=4, name=None, format="svg", graph_attr=None, node_attr=None,
               edge_attr=None):
    """A ``Picture`` (a ``graphviz.Digraph``) of ``view``.

    Each kind's style is declared once, as node defaults of an unnamed subgraph holding the
    nodes of that kind (unnamed subgraphs do not change the layout), so a node line carries only
    its label: large graphs stay fast to write and small to store.
    """
    attrs = {"rankdir": rankdir, "nodesep": "0.25", "ranksep": "0.35", "fontname": "Helvetica", "fontsize": "12"}
    if view.title:
        attrs.update(label=view.title, labelloc="t")
    attrs.update(graph_attr or {})
    nattrs = {"fontname": "Helvetica", "fontsize": "11", "margin": "0.12,0.06"}
    nattrs.update(node_attr or {})
    eattrs = {"arrowsize": "0.7"}
    eattrs.update(EDGE_STYLES["data"])
    eattrs.update(edge_attr or {})
    dot = picture_class()(name=name or "chainrule", format=format, graph_attr=attrs, node_attr=nattrs,
                          edge_attr=eattrs)
    dot.graph_view = view
    clusters = {}
    free = []
    for node in view.nodes:
        (clusters.setdefault(node.group, []) if node.group is not None else free).append(node)
    _emit_nodes(dot, free, precision, view.default_dtype)
    for k, (group, members) in enumerate(clusters.items(), 1):
        with dot.subgraph(name=f"cluster_{k}") as sub:
            sub.attr(label=str(view.groups.get(group, group)), style="rounded,dashed", color="#7f6000",
                     fontname="Helvetica", fontsize="11")
            _emit_nodes(sub, members, precision, view.default_dtype)
    for edge in view.edges:
        attrs = {} if edge.kind == "data" else dict(EDGE_STYLES.get(edge.kind, {}))
        if edge.label:
            attrs.update(label=edge.label, fontsize="9")
        dot.edge(edge.src, edge.dst, **attrs)
    return dot


def _emit_nodes(target, nodes, precision, default_dtype):
    by_kind = {}
    for node in nodes:
        by_kind.setdefault(node.kind, []).append(node)
    for kind, members in by_kind.items():
        with target.subgraph() as sub:
            sub.attr("node", **STYLES.get(kind, STYLES["op"]))
            for node in members:
                if node.tooltip:
                    sub.node(node.id, node_label(node, precision, default_dtype), tooltip=node.tooltip)
                else:
                    sub.node(node.id, node_label(node, precision, default_dtype))
