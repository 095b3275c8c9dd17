"""Pictures of graphs and the chain rule step by step.

    import chainrule as cr
    x1 = cr.tensor(2.0, requires_grad=True); x2 = cr.tensor(5.0, requires_grad=True)
    y = cr.log(x1) + x1 * x2 - cr.sin(x2)
    y.backward(retain_graph=True)            # keep the saved values for the picture
    pic = cr.viz.draw(y, params={"x1": x1, "x2": x2})
    pic.source                               # DOT text
    pic.render(outfile="graph.svg", cleanup=True)   # needs Graphviz's `dot`
    print(cr.viz.explain_backward(y, names={"x1": x1, "x2": x2}))

Pictures are built in two steps: the graph is read into a :class:`GraphView` (nodes and edges
with kinds, shapes, small values and gradients), which is rendered as DOT by the ``graphviz``
package. Static graphs are read into the same model (:mod:`chainrule.viz.static`): ``draw`` accepts a
``cr.static.Graph``, a compiled ``Program`` and symbolic tensors, as well as anything with a
``to_graph_view()`` method.
"""

import os

import numpy as np

from ..tensor import Tensor
from .dot import GraphvizNotFoundError, node_label, to_digraph
from .dynamic import view_of_tensors, walk
from .explain import BackwardExplanation, BackwardStep, GradientSent, explain_backward
from .modules import ModuleScopes, collapse_view, scopes_for, track_modules
from .static import is_static, static_view
from .view import GraphView, ViewEdge, ViewNode

__all__ = [
    "BackwardExplanation", "BackwardStep", "GradientSent", "GraphView", "GraphvizNotFoundError", "ModuleScopes",
    "ViewEdge", "ViewNode", "draw", "explain_backward", "graph_view", "node_label", "save",
    "track_modules",
]

_TEXT_FORMATS = (".dot", ".gv")


def graph_view(root, *, params=None, show_values=True, show_grads=True, max_elements=6, collapse=None,
               collapse_mode="box", show_accumulate=True, show_constants=True, adjoints=False, precision=4,
               title=None):
    """The :class:`GraphView` that :func:`draw` renders (same arguments, minus the DOT styling)."""
    static = is_static(root)
    if static or hasattr(root, "to_graph_view"):
        if collapse is not None or adjoints:
            raise ValueError("draw: collapse and adjoints apply to eager graphs (tensors with grad_fn), not to a "
                             "static graph or a prebuilt graph view")
        view = static_view(root, params=params, show_values=show_values, max_elements=max_elements,
                           show_constants=show_constants, precision=precision) if static else root.to_graph_view()
        if title is not None:
            view.title = title
        return view
    roots = [root] if isinstance(root, Tensor) else list(root)
    if not roots:
        raise ValueError("draw() needs at least one tensor")
    adjoint_map = _adjoints(roots, max_elements) if adjoints else None
    view = view_of_tensors(roots, params=params, show_values=show_values, show_grads=show_grads,
                           max_elements=max_elements, show_accumulate=show_accumulate,
                           show_constants=show_constants, adjoints=adjoint_map, precision=precision)
    if collapse is not None:
        nodes = walk([t.grad_fn for t in roots if isinstance(t, Tensor)])
        view = collapse_view(view, scopes_for(collapse, nodes), collapse_mode)
    view.title = title
    return view


def draw(root, *, params=None, show_values=True, show_grads=True, max_elements=6, collapse=None,
         collapse_mode="box", show_accumulate=True, show_constants=True, adjoints=False, rankdir="BT",
         precision=4, title=None, format="svg", graph_attr=None, node_attr=None, edge_attr=None):
    """Draw the graph behind ``root`` as a ``graphviz.Digraph`` (``.source`` is the DOT text).

    ``root``: a tensor (its ``grad_fn`` graph is walked), a list of tensors, a
    :class:`GraphView`, or any object with ``to_graph_view()``; or a static graph: a
    ``cr.static.Graph``, a compiled ``Program`` (its optimised IR, fused kernels as one box) or
    symbolic tensors (what they depend on). Static pictures frame the nodes ``cr.static.gradients``
    generated apart from the forward ones and name symbolic sizes (``x.0``: placeholder ``x``, axis 0).

    - ``params``: ``{name: tensor}`` naming leaves, e.g. ``dict(model.named_parameters())``.
    - ``show_values`` / ``show_grads``: print values and gradients of tensors with at most
      ``max_elements`` elements (values of intermediate results need the saved tensors: draw
      before ``backward()`` or after ``backward(retain_graph=True)``).
    - ``adjoints=True``: also show the gradient of the (scalar) output with respect to every
      intermediate result, observed in a real backward pass (see :func:`explain_backward`).
    - ``collapse``: draw each top-level child of a module as one box: pass the module (best with
      its forward run inside :func:`track_modules`), a :class:`ModuleScopes`, or a mapping
      ``{name: nodes or tensors}``. ``collapse_mode="cluster"`` draws frames instead of boxes.
    - ``show_accumulate``: draw the ``AccumulateGrad`` node between each leaf and its uses.
    - ``show_constants``: draw inputs that need no gradient (tensors, Python numbers).
    - ``rankdir``: ``"BT"`` (inputs at the bottom), ``"TB"``, ``"LR"`` or ``"RL"``.
    - ``precision``: significant digits of the numbers shown; ``title``: a caption on top.

    Rendering (``.render(outfile="g.svg")``, :func:`save`) needs the Graphviz ``dot`` program;
    without it the error says how to install it.
    """
    view = graph_view(root, params=params, show_values=show_values, show_grads=show_grads,
                      max_elements=max_elements, collapse=collapse, collapse_mode=collapse_mode,
                      show_accumulate=show_accumulate, show_constants=show_constants, adjoints=adjoints,
                      precision=precision, title=title)
    return to_digraph(view, rankdir=rankdir, precision=precision, format=format, graph_attr=graph_attr,
                      node_attr=node_attr, edge_attr=edge_attr)


def save(root, path, **kwargs):
    """Draw ``root`` and write it to ``path``: DOT text for ``.dot``/``.gv``, else rendered by its suffix
    (``.svg``, ``.png``, ``.pdf``, ...). Keyword arguments go to :func:`draw`. Returns ``path``."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if not suffix:
        raise ValueError(f"save: cannot tell the format of {path!r}; use a suffix such as .svg, .png, .pdf or .dot")
    picture = draw(root, **kwargs)
    if suffix in _TEXT_FORMATS:
        with open(path, "w", encoding="utf-8") as f:
            f.write(picture.source)
    else:
        picture.render(outfile=path, format=suffix[1:], cleanup=True)
    return path


def _adjoints(roots, max_elements):
    """``{backward node: gradient of the output w.r.t. its output 0}``, observed in a real backward."""
    if len(roots) != 1 or not isinstance(roots[0], Tensor):
        raise ValueError("adjoints=True needs exactly one (scalar) output tensor")
    root = roots[0]
    if not root.requires_grad:
        return {}
    steps = explain_backward(root, max_elements=max_elements)
    adj = {("root", id(root)): np.ones_like(root._data)}
    for step in steps:
        received = step.received[0] if isinstance(step.received, tuple) else step.received
        if received is not None:
            adj[step.source] = received
    return adj
