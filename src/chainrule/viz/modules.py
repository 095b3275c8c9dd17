"""Which backward nodes each module created: what ``draw(..., collapse=model)`` boxes together.

A forward pre-hook on each top-level child notes the graph nodes behind the call's inputs; the
forward hook then walks back from the call's outputs and stops at those (and at nodes an earlier
call already claimed): everything in between was created by the call. This needs nothing from
the module but PyTorch's hook methods, and costs one walk over the call's own nodes::

    with cr.viz.track_modules(model) as scopes:
        loss = criterion(model(x), y)
    cr.viz.draw(loss, collapse=scopes)      # or collapse=model: the last tracking of model is used

Without a tracking, ``collapse=model`` falls back on the graph's structure: a child owns the
nodes that consumed one of its parameters and every node on a path between two of those (exact
for Linear and Conv layers; parameter-free children such as activations then stay
uncollapsed). A mapping ``{name: nodes_or_tensors}`` may also be given. Leaves that are
parameters go into the box of the module that owns them.
"""

import contextlib
import weakref
from collections.abc import Mapping

from ..autograd.graph import AccumulateGrad, Node
from ..tensor import Tensor
from .view import GraphView, ViewNode, format_shape

_TRACKED = weakref.WeakKeyDictionary()  # module -> its latest ModuleScopes
_TRACKED_BY_ID = {}  # modules that cannot be weakly referenced: id -> (module, scopes)


def top_level_children(model):
    """``[(name, module)]`` of the model's direct children (duck-typed: named_children or named_modules)."""
    if hasattr(model, "named_children"):
        return list(model.named_children())
    if hasattr(model, "named_modules"):
        return [(n, m) for n, m in model.named_modules() if n and "." not in n]
    raise TypeError(f"collapse expects a module (with named_children() or named_modules()), a mapping "
                    f"{{name: nodes}} or the result of track_modules(); got {type(model).__name__}")


def _tensors_of(module, method):
    """``module.parameters()`` or ``module.buffers()`` as a list (empty if the module has none)."""
    fn = getattr(module, method, None)
    if fn is None:
        return []
    try:
        return [t for t in fn() if isinstance(t, Tensor)]
    except TypeError:
        return []


def _tensors_in(obj):
    """The tensors in a (nested) tuple/list/dict of call arguments or outputs."""
    found = []
    stack = [obj]
    while stack:
        a = stack.pop()
        if isinstance(a, Tensor):
            found.append(a)
        elif isinstance(a, (tuple, list)):
            stack.extend(a)
        elif isinstance(a, dict):
            stack.extend(a.values())
    return found


class ModuleScopes:
    """The groups of a collapsed picture: the backward nodes and parameters of each group.

    Nodes are held weakly, so a remembered tracking does not keep an old graph alive.
    """

    def __init__(self, model=None):
        self.labels = {}  # group name -> label drawn in its box
        self.owner = {}  # id(parameter or tensor) -> group name
        self._keep = []  # the tensors behind the ids in owner stay alive
        self._nodes = weakref.WeakKeyDictionary()  # backward node -> group name
        if model is not None:
            for name, child in top_level_children(model):
                self.add_group(name, f"{name}: {type(child).__name__}",
                               _tensors_of(child, "parameters") + _tensors_of(child, "buffers"))

    def add_group(self, name, label=None, tensors=()):
        self.labels.setdefault(name, label or str(name))
        for t in tensors:
            if id(t) not in self.owner:
                self.owner[id(t)] = name
                self._keep.append(t)

    def add_nodes(self, name, nodes):
        """Put backward nodes in a group (a node already in one stays there)."""
        self.labels.setdefault(name, str(name))
        for node in nodes:
            if node not in self._nodes:
                self._nodes[node] = name

    def __contains__(self, node):
        return node in self._nodes

    def __len__(self):
        return len(self._nodes)

    def group_of_node(self, node):
        """The group a backward node belongs to (an AccumulateGrad: its leaf's), or None."""
        if isinstance(node, AccumulateGrad):
            return self.group_of_tensor(node.variable)
        return self._nodes.get(node)

    def group_of_tensor(self, tensor):
        """The group a leaf tensor belongs to (a parameter: its module's), or None."""
        return self.owner.get(id(tensor))

    def nodes(self, name):
        """The backward nodes of one group."""
        return [n for n, g in self._nodes.items() if g == name]

    # --- building from the graph alone ---------------------------------------------------------
    @classmethod
    def from_parameters(cls, model, nodes):
        """Guess each child's nodes from the graph: its parameters' consumers and what lies between."""
        scopes = cls(model)
        consumers = {}
        for node in nodes:
            for edge in node.edges:
                if edge is not None:
                    consumers.setdefault(edge[0], []).append(node)
        seeds = {}
        for node in nodes:
            for edge in node.edges:
                if edge is not None and isinstance(edge[0], AccumulateGrad):
                    name = scopes.owner.get(id(edge[0].variable))
                    if name is not None:
                        seeds.setdefault(name, []).append(node)
        for name, group_seeds in seeds.items():
            below = _reach(group_seeds, lambda n: (e[0] for e in n.edges if e is not None))
            above = _reach(group_seeds, lambda n: consumers.get(n, ()))
            scopes.add_nodes(name, [n for n in nodes if n in below and n in above
                                    and not isinstance(n, AccumulateGrad)])
        return scopes

    @classmethod
    def from_mapping(cls, mapping):
        """``{name: iterable of backward nodes or tensors}`` (a tensor stands for its grad_fn, a leaf
        for itself)."""
        scopes = cls()
        for name, objects in mapping.items():
            nodes, leaves = [], []
            for obj in objects:
                if isinstance(obj, Tensor):
                    (nodes.append(obj.grad_fn) if obj.grad_fn is not None else leaves.append(obj))
                elif isinstance(obj, Node):
                    nodes.append(obj)
                else:
                    raise TypeError(f"collapse mapping: group {name!r} holds a {type(obj).__name__}; expected "
                                    "backward nodes or tensors")
            scopes.add_group(name, str(name), leaves)
            scopes.add_nodes(name, nodes)
        return scopes


def _reach(starts, neighbours):
    seen = set(starts)
    stack = list(starts)
    while stack:
        for nxt in neighbours(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _claim(scopes, name, outputs, inputs_nodes):
    """Give ``name`` the nodes behind ``outputs`` down to the inputs' nodes (or already claimed ones)."""
    stop = set(inputs_nodes)
    new = []
    seen = set()
    stack = [t.grad_fn for t in _tensors_in(outputs) if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node in seen or node in stop or isinstance(node, AccumulateGrad) or node in scopes:
            continue
        seen.add(node)
        new.append(node)
        stack.extend(e[0] for e in node.edges if e is not None)
    scopes.add_nodes(name, new)


@contextlib.contextmanager
def track_modules(model):
    """Record which backward nodes each top-level child of ``model`` creates during the block.

    Uses ``register_forward_pre_hook`` and ``register_forward_hook`` (PyTorch's names), removed
    when the block ends. Yields a :class:`ModuleScopes` for ``draw(..., collapse=...)``; it is also
    remembered for ``collapse=model``.
    """
    scopes = ModuleScopes(model)
    handles = []
    try:
        for name, child in top_level_children(model):
            if not hasattr(child, "register_forward_hook"):
                raise TypeError(f"track_modules: child {name!r} ({type(child).__name__}) has no "
                                "register_forward_hook")
            calls = []  # the input nodes of the calls in progress (a child may be re-entered)

            def pre_hook(module, args, kwargs=None, _calls=calls):
                _calls.append([t.grad_fn for t in _tensors_in((args, kwargs)) if t.grad_fn is not None])

            def post_hook(module, args, output, _calls=calls, _name=name):
                inputs = _calls.pop() if _calls else [t.grad_fn for t in _tensors_in(args) if t.grad_fn is not None]
                try:
                    _claim(scopes, _name, output, inputs)
                except Exception:  # noqa: BLE001 - a picture helper must never break the user's forward
                    pass

            if hasattr(child, "register_forward_pre_hook"):
                try:  # with keyword arguments too, where the module supports it (PyTorch >= 2.0 does)
                    handles.append(child.register_forward_pre_hook(pre_hook, with_kwargs=True))
                except TypeError:
                    handles.append(child.register_forward_pre_hook(pre_hook))
            handles.append(child.register_forward_hook(post_hook))
        _remember(model, scopes)
        yield scopes
    finally:
        for h in handles:
            h.remove()


def _remember(model, scopes):
    try:
        _TRACKED[model] = scopes
    except TypeError:
        _TRACKED_BY_ID[id(model)] = (model, scopes)


def scopes_for(collapse, nodes):
    """A :class:`ModuleScopes` for the ``collapse`` argument of ``draw`` (given the graph's nodes).

    A module's remembered tracking is used only if it covers some of these nodes (it may be
    from another forward pass); otherwise the graph's structure tells.
    """
    if isinstance(collapse, ModuleScopes):
        return collapse
    is_module = hasattr(collapse, "named_children") or hasattr(collapse, "named_modules")
    if not is_module and isinstance(collapse, Mapping):
        return ModuleScopes.from_mapping(collapse)
    try:
        tracked = _TRACKED.get(collapse)
    except TypeError:
        tracked = None
    if tracked is None:
        entry = _TRACKED_BY_ID.get(id(collapse))
        tracked = entry[1] if entry is not None and entry[0] is collapse else None
    if tracked is not None and any(n in tracked for n in nodes):
        return tracked
    return ModuleScopes.from_parameters(collapse, nodes)


def collapse_view(view, scopes, mode="box"):
    """Group the view's nodes by module: one ``module`` node per group (``"box"``), or clusters."""
    if mode not in ("box", "cluster"):
        raise ValueError(f"collapse_mode must be 'box' or 'cluster', got {mode!r}")
    group = {}
    for n in view.nodes:
        if n.kind in ("op", "accumulate"):
            g = scopes.group_of_node(n.source) if n.source is not None else None
        elif n.kind in ("leaf", "parameter"):
            g = scopes.group_of_tensor(n.source)
        else:
            continue
        if g is not None:
            group[n.id] = g
    consumers = {}
    for e in view.edges:
        consumers.setdefault(e.src, []).append(e.dst)
    for n in view.nodes:  # a module's buffer, and a number used only inside one group, go into it
        if n.kind == "constant":
            g = scopes.group_of_tensor(n.source) if isinstance(n.source, Tensor) else None
            if g is None and n.source is None:
                gs = {group.get(d) for d in consumers.get(n.id, ())}
                g = gs.pop() if len(gs) == 1 else None
            if g is not None:
                group[n.id] = g
    if mode == "cluster":
        for n in view.nodes:
            n.group = group.get(n.id)
        view.groups = {g: scopes.labels.get(g, g) for g in set(group.values())}
        return view

    members = {}
    for n in view.nodes:
        if n.id in group:
            members.setdefault(group[n.id], []).append(n)
    box_id = {g: f"m{k}" for k, g in enumerate(members, 1)}
    leaving = {}  # group -> ids of its nodes whose values leave it
    for e in view.edges:
        g = group.get(e.src)
        if g is not None and group.get(e.dst) != g:
            leaving.setdefault(g, []).append(e.src)
    new = GraphView(title=view.title)
    by_id = {n.id: n for n in view.nodes}
    # a box stands where its first op runs (its parameters may be visited earlier: Addmm takes the bias first)
    anchor = {g: next((m.id for m in ms if m.kind == "op"), ms[0].id) for g, ms in members.items()}
    for n in view.nodes:
        g = group.get(n.id)
        if g is None:
            new.add_node(n)
        elif anchor[g] == n.id:
            new.add_node(_module_node(box_id[g], scopes.labels.get(g, g), g, members[g],
                                      [by_id[i] for i in dict.fromkeys(leaving.get(g, ()))]))
    seen = set()
    for e in view.edges:
        src = box_id[group[e.src]] if e.src in group else e.src
        dst = box_id[group[e.dst]] if e.dst in group else e.dst
        if src == dst:
            continue
        label = e.label if (src, dst) == (e.src, e.dst) else None
        key = (src, dst, label, e.kind)
        if key not in seen:
            seen.add(key)
            new.add_edge(src, dst, label, e.kind)
    return new


def _module_node(vid, label, name, members, exits):
    ops = sum(1 for n in members if n.kind == "op")
    details = [f"{ops} op{'s' if ops != 1 else ''}"]
    for n in members:
        if n.kind in ("parameter", "leaf"):
            title = n.title[len(name) + 1:] if n.title.startswith(f"{name}.") else n.title
            details.append(f"{title} {format_shape(n.shape)}")
    node = ViewNode(id=vid, kind="module", title=label, details=details, tooltip=label,
                    source=[m.source for m in members])
    if len(exits) == 1:
        node.shape, node.dtype, node.value, node.grad = exits[0].shape, exits[0].dtype, exits[0].value, exits[0].grad
    return node
