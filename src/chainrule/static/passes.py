"""Optimisation passes over a program's IR (a list of :class:`~.node.Node` copies in schedule order).

Each pass is a function ``pass(prog) -> stats dict`` that rewrites ``prog.nodes`` (and redirects
``prog.outputs`` / ``prog.updates``); :func:`run_passes` runs the enabled ones in a fixed order and
records the IR before and after each with its statistics. Passes know no op by name: they read
the ops' declarations (``pure``, ``identity``, ``simplify``, ``elementwise``, ``takes_out``). Every
pass preserves results: the tests run each on/off combination against eager execution.
"""

import numpy as np

from ..ops.infer import broadcast_shapes, known, same_shape
from .node import Dim, dim_bases, reachable
from .printing import format_nodes

PASS_ORDER = ("simplify", "fold", "cse", "dce", "fuse", "memory")

FOLD_LIMIT = 1 << 16  # fold constants up to this many elements (larger ones are cheaper to compute than to keep)


# --- helpers --------------------------------------------------------------------------------------------
def freeze(v):
    """A hashable key for a parameter value (tuples, arrays by bytes, Dims structurally)."""
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, (tuple, list)):
        return (type(v).__name__,) + tuple(freeze(x) for x in v)
    if isinstance(v, np.ndarray):
        return ("nd", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, slice):
        return ("slice", freeze(v.start), freeze(v.stop), freeze(v.step))
    if isinstance(v, Dim):
        return ("dim", v._key())
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    if isinstance(v, (bool, int, float, complex, str, type(None), type(Ellipsis), np.generic)):
        return (type(v).__name__, v)
    return ("id", id(v))


def users_of(prog):
    users = {n.id: [] for n in prog.nodes}
    for n in prog.nodes:
        for i in n.inputs:
            users.setdefault(i.id, []).append(n)
    return users


def _dim_ref_ids(prog):
    return {b.node.id for n in prog.nodes for b in dim_bases(n.params) + dim_bases(n.shape)}


def _final(subst, n):
    while n.id in subst:
        n = subst[n.id]
    return n


def _substitute(prog, subst):
    """Redirect every use of a replaced node to its replacement (following chains)."""
    if not subst:
        return
    for n in prog.nodes:
        n.inputs = [_final(subst, i) for i in n.inputs]
    prog.outputs = [_final(subst, o) for o in prog.outputs]
    prog.updates = [(t, _final(subst, v)) for t, v in prog.updates]
    for old, new in subst.items():
        prog.forward_ids[old] = _final(subst, new).id


def _const_value(n):
    """The constant scalar value of node ``n`` (a constant node holding a number or a uniform array)."""
    if n.kind != "constant":
        return None
    v = n.data
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and v.size and v.size <= FOLD_LIMIT:
        first = v.flat[0]
        if np.all(v == first):
            return float(first)
    return None


def _shape_covers(c, shape):
    """A constant broadcasts into ``shape`` without enlarging it."""
    cs = c.shape
    return len(cs) <= len(shape) and all(
        (known(a) and a == 1) or a == b for a, b in zip(cs, shape[len(shape) - len(cs):]))


# --- passes ----------------------------------------------------------------------------------------------
def dead_code_elimination(prog):
    """Remove nodes that no output, update or symbolic size depends on."""
    by_id = {n.id: n for n in prog.nodes}
    live = reachable(prog.outputs + [v for _, v in prog.updates],
                     resolve=lambda node: by_id.get(prog.forward_ids.get(node.id, node.id)))
    before = len(prog.nodes)
    prog.nodes = [n for n in prog.nodes if n.id in live or n.kind == "placeholder"]
    return {"removed": before - len(prog.nodes)}


def constant_folding(prog):
    """Evaluate ops whose inputs are all constants (calling the op's own ``forward``) at compile time."""
    subst = {}
    for k, n in enumerate(prog.nodes):
        n.inputs = [subst.get(i.id, i) for i in n.inputs]  # folded inputs are constants now
        if n.kind != "op" or not n.op.pure or any(i.kind != "constant" for i in n.inputs):
            continue
        if not all(known(s) for s in n.shape) or any(dim_bases(n.params)) or int(np.prod(n.shape)) > FOLD_LIMIT:
            continue
        try:
            value = np.asarray(n.op.forward(*[i.data for i in n.inputs], **n.params))
        except Exception:  # noqa: BLE001 - leave it to run time, where it reports properly
            continue
        prog.nodes[k] = subst[n.id] = n.copy(id=prog.new_id(), kind="constant", op=None, inputs=[], params={},
                                             dtype=value.dtype, data=value)
    _substitute(prog, subst)
    return {"folded": len(subst)}


def common_subexpression_elimination(prog):
    """Hash-consing: nodes with the same op, inputs and parameters are computed once."""
    seen = {}
    subst = {}
    kept = []
    for n in prog.nodes:
        n.inputs = [subst.get(i.id, i) for i in n.inputs]
        key = _value_key(n)
        if key is not None:
            other = seen.setdefault(key, n)
            if other is not n:
                subst[n.id] = other
                continue
        kept.append(n)
    merged = len(prog.nodes) - len(kept)
    prog.nodes = kept
    _substitute(prog, subst)
    return {"merged": merged}


def _value_key(n):
    """What makes two nodes the same value, or None when nothing does (placeholders, random draws)."""
    if n.kind == "op":  # two random draws are two different values
        return ("op", n.op, tuple(i.id for i in n.inputs), freeze(n.params)) if n.op.pure else None
    if n.kind == "constant" and isinstance(n.data, (np.ndarray, int, float, bool, np.generic)):
        return ("const", freeze(n.data), np.dtype(n.dtype).str)
    return None


def algebraic_simplification(prog):
    """Rewrites each op declares: identity elements (x*1, x+0, x-0, x/1, x**1), its own ``simplify``
    rule (double negation, permute/reshape chains, expand to the same shape, cast to the same dtype,
    reshape of a keepdim sum), and expands feeding an elementwise op that broadcasts them anyway."""
    subst = {}
    rules = {}
    users = users_of(prog)

    def uses(n):
        return len(users.get(n.id, ()))

    def count(rule):
        rules[rule] = rules.get(rule, 0) + 1

    new_nodes = []
    for n in prog.nodes:
        n.inputs = [_final(subst, i) for i in n.inputs]
        if n.kind != "op":
            new_nodes.append(n)
            continue
        replacement, rule = _identity_operand(n)
        if replacement is None and n.op.simplify is not None:
            replacement, rule = n.op.simplify(n, uses), f"{n.op.name} rewrite"
        if replacement is None:
            if n.op.elementwise and _drop_broadcast_expands(n):
                count("expand of a broadcast operand")
            new_nodes.append(n)
            continue
        subst[n.id] = replacement
        count(rule)
        if replacement.id is None:  # a new node: it takes the place of the one it replaces
            replacement.id = prog.new_id()
            new_nodes.append(replacement)
    prog.nodes = new_nodes
    _substitute(prog, subst)
    return {"simplified": sum(rules.values()), **{f"rule: {k}": v for k, v in rules.items()}}


def _identity_operand(n):
    """(the input a binary op returns unchanged because the other is its identity element, the rule)."""
    if n.op.identity and len(n.inputs) == 2:
        for k, value in n.op.identity.items():
            c, x = n.inputs[k], n.inputs[1 - k]
            if _const_value(c) == value and same_shape(x.shape, n.shape) and x.dtype == n.dtype \
                    and _shape_covers(c, n.shape) and (x.kind != "constant" or isinstance(x.data, np.ndarray)):
                return x, f"x {n.op.infix or n.op.name} {value:g}"
    return None, None


def _drop_broadcast_expands(n):
    """Feed an elementwise op the sources of its expanded inputs where broadcasting gives the same shape."""
    changed = False
    for k, x in enumerate(n.inputs):
        if x.op is not None and x.op.broadcasts:
            source = x.inputs[0]
            shapes = [i.shape for j, i in enumerate(n.inputs) if j != k] + [source.shape]
            if same_shape(broadcast_shapes(n.op.name, *shapes), n.shape):
                n.inputs[k] = source
                changed = True
    return changed


def elementwise_fusion(prog):
    """Chains of elementwise ops whose intermediates have no other users become one kernel that
    writes every step into one output buffer (``out=``): no intermediate arrays."""
    users = users_of(prog)
    keep_out = {o.id for o in prog.outputs} | {v.id for _, v in prog.updates} | _dim_ref_ids(prog)
    removed = set()
    for n in prog.nodes:
        if not _fusable(n):
            continue
        producer = next((x for x in n.inputs if _fusable(x) and x.id not in keep_out and x.id not in removed
                         and x.dtype == n.dtype and same_shape(x.shape, n.shape)
                         and all(u is n for u in users.get(x.id, ()))), None)
        if producer is None:
            continue
        if producer.kind != "fused":
            _to_kernel(producer)
        inputs = list(producer.inputs)
        operands = [("buf",) if x is producer else _operand(x, inputs) for x in n.inputs]
        n.steps = producer.steps + [(n.op, dict(n.params), operands)]
        n.inputs = inputs
        n.kind = "fused"
        removed.add(producer.id)
    before = len(prog.nodes)
    prog.nodes = [n for n in prog.nodes if n.id not in removed]
    return {"fused_nodes": before - len(prog.nodes), "kernels": sum(1 for n in prog.nodes if n.kind == "fused")}


def fusable_op(op):
    """An op a kernel can run as one of its steps: elementwise, writing into the kernel's buffer."""
    return op.elementwise and op.takes_out


def _fusable(n):
    if len(n.shape) == 0:  # numpy returns scalars, not arrays, for 0-d results: nothing to write into
        return False
    return n.kind == "fused" or (n.kind == "op" and fusable_op(n.op) and n.dtype.kind == "f")


def _operand(x, inputs):
    """How a kernel step reads node ``x``: a scalar constant inline, else by its index in ``inputs``."""
    if x.kind == "constant" and isinstance(x.data, (int, float, np.floating, np.integer)) \
            and not isinstance(x.data, bool):
        return ("c", x.data)
    if x not in inputs:
        inputs.append(x)
    return ("x", inputs.index(x))


def _to_kernel(n):
    """Turn a single elementwise op node into a one-step kernel."""
    inputs = []
    n.steps = [(n.op, dict(n.params), [_operand(x, inputs) for x in n.inputs])]
    n.inputs = inputs
    n.kind = "fused"


PASSES = {
    "dce": dead_code_elimination,
    "fold": constant_folding,
    "cse": common_subexpression_elimination,
    "simplify": algebraic_simplification,
    "fuse": elementwise_fusion,
}


# --- scheduling ------------------------------------------------------------------------------------------
SCHEDULE = ("simplify", "fold", "cse", "simplify", "cse", "dce", "fuse")  # simplify and CSE feed each other


def parse_optimize(optimize):
    """``{pass name: enabled}`` from ``compile``'s ``optimize``: True, False, a dict, names, or one
    comma-separated string of names (``"simplify,fold,cse,dce"``)."""
    if isinstance(optimize, str):
        optimize = [name.strip() for name in optimize.split(",") if name.strip()]
    if optimize is True or optimize is None:
        return {p: True for p in PASS_ORDER}
    if optimize is False:
        return {p: False for p in PASS_ORDER}
    names = set(optimize)
    unknown = names - set(PASS_ORDER)
    if unknown:
        raise ValueError(f"compile: unknown pass(es) {sorted(unknown)}; choose from {list(PASS_ORDER)}")
    if isinstance(optimize, dict):
        return {p: bool(optimize.get(p, True)) for p in PASS_ORDER}
    return {p: p in names for p in PASS_ORDER}


def run_passes(prog, enabled):
    """Run the enabled passes in schedule order; returns the log: per pass its statistics and the IR
    before and after (a second round is logged only when it changed something)."""
    log = []
    done = set()
    for name in SCHEDULE:
        if not enabled[name]:
            continue
        before_text = format_nodes(prog.nodes)
        before = len(prog.nodes)
        stats = PASSES[name](prog)
        label = name if name not in done else name + " (round 2)"
        done.add(name)
        if label != name and len(prog.nodes) == before and not any(stats.values()):
            continue
        log.append({"pass": label, "stats": {"nodes_before": before, "nodes_after": len(prog.nodes), **stats},
                    "before": before_text, "after": format_nodes(prog.nodes)})
    return log
