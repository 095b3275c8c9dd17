"""The graph view: what a picture shows, independent of where the graph came from and of DOT.

A :class:`GraphView` is a plain list of :class:`ViewNode` and :class:`ViewEdge` records. The walker
of the dynamic graph (:mod:`chainrule.viz.dynamic`) produces one from a tensor's ``grad_fn``
chain; a static graph can produce one from its IR (an object with a ``to_graph_view()`` method is
accepted by :func:`chainrule.viz.draw`). The DOT renderer (:mod:`chainrule.viz.dot`) reads only
this model, so every source of graphs gets the same pictures.

Node kinds (each drawn in its own style):

``op``          a forward op (for the dynamic graph: the op whose backward node is ``grad_fn``)
``leaf``        a leaf tensor that requires grad (a variable, an input being differentiated)
``parameter``   a leaf that is a module parameter
``constant``    an input that needs no gradient (a tensor without grad, a Python number)
``output``      a root of the picture (the tensor passed to ``draw``)
``accumulate``  the ``AccumulateGrad`` node that adds a leaf's gradient into its ``.grad``
``backward``    a node of a generated backward graph (static graphs draw it apart from forward)
``module``      a collapsed module: one box for every node a module call created
``placeholder`` a static graph's input, fed at run time
``fused``       a static program's fused kernel: one box for a chain of elementwise ops
``backward_fused`` a fused kernel of a generated backward graph
"""

from dataclasses import dataclass, field

import numpy as np

KINDS = ("op", "leaf", "parameter", "constant", "output", "accumulate", "backward", "module", "placeholder", "fused",
         "backward_fused")


@dataclass
class ViewNode:
    """One box of the picture.

    ``value`` and ``grad`` are small numpy arrays (only kept when the tensor has at most
    ``max_elements`` elements), or ``None``. ``details`` are extra label lines (op parameters, the
    backward node's name, a collapsed module's parameters). ``group`` names a cluster to draw the
    node in; ``source`` is the object the node stands for (a backward node, a tensor), for
    adapters and tests, never rendered.
    """

    id: str
    kind: str
    title: str
    shape: tuple | None = None
    dtype: str | None = None
    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    details: list = field(default_factory=list)
    tooltip: str | None = None
    group: str | None = None
    source: object = field(default=None, repr=False, compare=False)


@dataclass
class ViewEdge:
    """An arrow from the producer of a value to its consumer (forward direction).

    ``kind`` is ``"data"`` for forward dataflow and ``"grad"`` for gradient flow in a generated
    backward graph; ``label`` is drawn on the arrow (an output number, say).
    """

    src: str
    dst: str
    label: str | None = None
    kind: str = "data"


@dataclass
class GraphView:
    """Nodes (in drawing order) and edges of one picture; see the module docstring.

    ``groups`` maps the ``group`` names used by nodes to the label of their cluster.
    ``default_dtype`` is the dtype labels leave out (``None``: every label names its dtype).
    """

    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    title: str | None = None
    groups: dict = field(default_factory=dict)
    default_dtype: str | None = "float32"

    def add_node(self, node):
        if node.kind not in KINDS:
            raise ValueError(f"unknown node kind {node.kind!r}; expected one of {', '.join(KINDS)}")
        self.nodes.append(node)
        return node

    def add_edge(self, src, dst, label=None, kind="data"):
        edge = ViewEdge(src, dst, label, kind)
        self.edges.append(edge)
        return edge

    def node(self, node_id):
        """The node with this id (linear search: for tests and small views)."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def count(self, kind=None):
        """The number of nodes, or of nodes of one kind."""
        return len(self.nodes) if kind is None else sum(1 for n in self.nodes if n.kind == kind)

    def to_graph_view(self):
        return self


def small_array(data, max_elements):
    """A copy of ``data`` as a numpy array when it has at most ``max_elements`` elements, else None."""
    if data is None:
        return None
    array = np.asarray(data)
    if array.size > max_elements:
        return None
    return array.copy()


def format_number(v, precision=4):
    """A number in few characters: 0.6931, 11.65, -1, 1e-08, nan."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, complex):
        return f"{v:.{precision}g}"
    text = f"{float(v):.{precision}g}"
    return "-0" if text == "-0" else text


def format_array(array, precision=4):
    """A small array as text: a number for scalars, nested brackets otherwise (rows on lines)."""
    array = np.asarray(array)
    if array.ndim == 0:
        return format_number(array.item(), precision)
    return np.array2string(array, separator=", ", formatter={"all": lambda v: format_number(v, precision)},
                           threshold=10**9, max_line_width=10**9)


def format_shape(shape):
    """``(2, 3)``; ``()`` for a scalar."""
    if shape is None:
        return ""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
