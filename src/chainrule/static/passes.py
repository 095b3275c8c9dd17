"""Optimisation passes over a program's IR (a list of :class:`PNode` in schedule order).

Each pass is a function ``pass(prog) -> stats dict`` that rewrites ``prog.nodes`` (and redirects
``prog.outputs`` / ``prog.updates``); :func:`run_passes` runs the enabled ones in a fixed order and
records the IR before and after each with its statistics. Every pass preserves results: the tests
run each on/off combination against eager execution.
"""

import numpy as np

from ..ops.op import ELEMENTWISE as _ELEMENTWISE_JVP
from ..ops.op import LINEAR as _LINEAR_JVP
from ..ops.op import OPS
from .ir import Dim, dim_bases

PASS_ORDER = ("simplify", "fold", "cse", "dce", "fuse", "memory")

FOLD_LIMIT = 1 << 16  # fold constants up to this many elements (larger ones are cheaper to compute than to keep)

# Elementwise ops that fused kernels and out= buffers evaluate, read off the op table: those whose
# forward is a numpy ufunc (generated code calls it by name), plus those whose forward takes ``out=``.
UFUNCS = {name: f"np.{op.forward.__name__}" for name, op in OPS.items()
          if isinstance(op.forward, np.ufunc) and op.jvp in (_ELEMENTWISE_JVP, _LINEAR_JVP)}
OUT_FORWARDS = frozenset({"relu", "sigmoid", "clamp"})
ELEMENTWISE = frozenset(UFUNCS) | OUT_FORWARDS | {"where"}
VIEW_OPS = frozenset({"reshape", "permute", "expand", "getitem", "alias"})


class PNode:
    """A node of a program's IR (a copy of a graph node that passes may rewrite)."""

    __slots__ = ("id", "kind", "op", "inputs", "params", "shape", "dtype", "site", "tag", "data", "name", "steps",
                 "merged")

    def __init__(self, id, kind, op, inputs, params, shape, dtype, site, tag, data=None, name=None):
        self.id = id
        self.kind = kind
        self.op = op
        self.inputs = inputs
        self.params = params
        self.shape = shape
        self.dtype = dtype
        self.site = site
        self.tag = tag
        self.data = data
        self.name = name
        self.steps = None  # fused kernels: [(op name, params, operands)], operand ('x', k) | ('buf',) | ('c', v)
        self.merged = 1

    @property
    def opname(self):
        return self.op.name if self.op is not None else self.kind

    def label(self):
        return f"%{self.id}"

    def __repr__(self):
        return f"<PNode %{self.id} {self.opname}>"


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
    ids = set()
    for n in prog.nodes:
        for b in dim_bases(n.params):
            ids.add(b.node.id)
        for b in dim_bases(n.shape):
            ids.add(b.node.id)
    return ids


def _substitute(prog, subst):
    """Redirect every use of a replaced node to its replacement (following chains)."""
    if not subst:
        return

    def final(n):
        while n.id in subst:
            n = subst[n.id]
        return n

    for n in prog.nodes:
        n.inputs = [final(i) for i in n.inputs]
    prog.outputs = [final(o) for o in prog.outputs]
    prog.updates = [(t, final(v)) for t, v in prog.updates]
    for old, new in subst.items():
        prog.forward_ids[old] = final(new).id


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


def _broadcast(shapes):
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dims = [s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0]
        chosen = 1
        for d in dims:
            if not (isinstance(d, (int, np.integer)) and d == 1):
                chosen = d
        out.append(chosen)
    return tuple(out)


def _same_shape(a, b):
    return len(a) == len(b) and all((x == y) if not (x is None or y is None) else False for x, y in zip(a, b))


# --- passes ----------------------------------------------------------------------------------------------
def dead_code_elimination(prog):
    """Remove nodes that no output, update or symbolic size depends on."""
    live = set()
    by_id = {n.id: n for n in prog.nodes}
    stack = [o for o in prog.outputs] + [v for _, v in prog.updates]
    while stack:
        n = stack.pop()
        if n.id in live:
            continue
        live.add(n.id)
        stack.extend(n.inputs)
        for b in dim_bases(n.params) + dim_bases(n.shape):
            ref = by_id.get(prog.forward_ids.get(b.node.id, b.node.id))
            if ref is not None:
                stack.append(ref)
    before = len(prog.nodes)
    prog.nodes = [n for n in prog.nodes if n.id in live or n.kind == "placeholder"]
    return {"removed": before - len(prog.nodes)}


def constant_folding(prog):
    """Evaluate ops whose inputs are all constants (calling the op's own ``forward``) at compile time."""
    subst = {}
    folded = 0
    for k, n in enumerate(prog.nodes):
        n.inputs = [subst.get(i.id, i) for i in n.inputs]  # folded inputs are constants now
        if n.kind != "op" or not n.op.pure or any(i.kind != "constant" for i in n.inputs):
            continue
        if any(not isinstance(s, (int, np.integer)) for s in n.shape) or any(dim_bases(n.params)):
            continue
        if int(np.prod(n.shape)) > FOLD_LIMIT:
            continue
        try:
            value = np.asarray(n.op.forward(*[i.data for i in n.inputs], **n.params))
        except Exception:  # noqa: BLE001 - leave it to run time, where it reports properly
            continue
        new = PNode(prog.new_id(), "constant", None, [], {}, n.shape, value.dtype, n.site, n.tag, data=value)
        prog.nodes[k] = new
        subst[n.id] = new
        folded += 1
    _substitute(prog, subst)
    return {"folded": folded}


def common_subexpression_elimination(prog):
    """Hash-consing: nodes with the same op, inputs and parameters are computed once."""
    seen = {}
    subst = {}
    kept = []
    for n in prog.nodes:
        n.inputs = [subst.get(i.id, i) for i in n.inputs]
        if n.kind == "op" and not n.op.pure:  # two random draws are two different values
            key = None
        elif n.kind == "op":
            key = ("op", n.op.name, tuple(i.id for i in n.inputs), freeze(n.params))
        elif n.kind == "constant":
            v = n.data
            hashable = isinstance(v, (np.ndarray, int, float, bool, np.generic))
            key = ("const", freeze(v), np.dtype(n.dtype).str) if hashable else None
        else:
            key = None
        if key is not None:
            other = seen.get(key)
            if other is not None:
                subst[n.id] = other
                other.merged += n.merged
                continue
            seen[key] = n
        kept.append(n)
    merged = len(prog.nodes) - len(kept)
    prog.nodes = kept
    _substitute(prog, subst)
    return {"merged": merged}


def algebraic_simplification(prog):
    """x*1, x+0, x-0, x/1, x**1, double negation, permute/reshape chains, expand to the same shape,
    expands of scalars feeding broadcasting ops, casts to the same dtype, sum+reshape."""
    subst = {}
    rules = {}
    users = users_of(prog)
    new_nodes = []
    for n in prog.nodes:
        n.inputs = [_final(subst, i) for i in n.inputs]
        if n.kind != "op":
            new_nodes.append(n)
            continue
        name = n.op.name
        ins = n.inputs
        replacement = None
        if name in ("mul", "add", "sub", "div", "pow") and len(ins) == 2:
            identity = {"mul": 1.0, "add": 0.0, "sub": 0.0, "div": 1.0, "pow": 1.0}[name]
            for k, (x, c) in enumerate(((ins[0], ins[1]), (ins[1], ins[0]))):
                if k == 1 and name in ("sub", "div", "pow"):
                    break
                if _const_value(c) == identity and _same_shape(x.shape, n.shape) and x.dtype == n.dtype \
                        and _shape_covers(c, n.shape) and (x.kind != "constant" or isinstance(x.data, np.ndarray)):
                    replacement = x
                    rule = f"x {'*+-/^'['mul add sub div pow'.split().index(name)]} {identity:g}"
                    break
        elif name == "neg" and ins[0].kind == "op" and ins[0].op.name == "neg":
            replacement, rule = ins[0].inputs[0], "neg(neg(x))"
        elif name == "permute" and ins[0].kind == "op" and ins[0].op.name == "permute":
            inner = ins[0].params["axes"]
            axes = tuple(inner[j] for j in n.params["axes"])
            source = ins[0].inputs[0]
            if axes == tuple(range(len(axes))):
                replacement, rule = source, "permute(permute(x)) = x"
            else:
                replacement = _new_op(prog, n, [source], {"axes": axes})
                rule = "permute chain"
        elif name == "reshape":
            source = ins[0]
            if source.kind == "op" and source.op.name == "reshape":
                replacement = _new_op(prog, n, [source.inputs[0]], dict(n.params))
                source = source.inputs[0]
                rule = "reshape chain"
            if _same_shape(source.shape, n.shape):
                replacement, rule = source, "reshape to the same shape"
            elif (source.kind == "op" and source.op.name == "sum" and source.params["keepdim"]
                  and source.params["dim"] is not None and len(users.get(source.id, ())) == 1
                  and _same_shape(tuple(s for k, s in enumerate(source.shape) if k not in source.params["dim"]),
                                  n.shape)):
                replacement = _new_op(prog, n, [source.inputs[0]], {"dim": source.params["dim"], "keepdim": False},
                                      op=source.op)
                rule = "sum(keepdim) + reshape = sum"
        elif name == "expand" and _same_shape(ins[0].shape, n.shape):
            replacement, rule = ins[0], "expand to the same shape"
        elif name == "cast" and ins[0].dtype == n.params["dtype"]:
            replacement, rule = ins[0], "cast to the same dtype"
        elif name in ELEMENTWISE and name not in ("clamp",):
            changed = False
            new_inputs = list(ins)
            for k, x in enumerate(ins):
                if x.kind == "op" and x.op.name == "expand":
                    src = x.inputs[0]
                    shapes = [i.shape for j, i in enumerate(new_inputs) if j != k] + [src.shape]
                    if _same_shape(_broadcast(shapes), n.shape) and len(_broadcast(shapes)) == len(n.shape):
                        new_inputs[k] = src
                        changed = True
            if changed:
                n.inputs = new_inputs
                rules["expand of a broadcast operand"] = rules.get("expand of a broadcast operand", 0) + 1
        if replacement is not None:
            subst[n.id] = replacement
            rules[rule] = rules.get(rule, 0) + 1
            if replacement is not n and replacement.id not in {m.id for m in new_nodes} and replacement.kind == "op" \
                    and replacement not in prog.nodes:
                new_nodes.append(replacement)
            continue
        new_nodes.append(n)
    prog.nodes = new_nodes
    _substitute(prog, subst)
    return {"simplified": sum(rules.values()), **{f"rule: {k}": v for k, v in rules.items()}}


def _final(subst, n):
    while n.id in subst:
        n = subst[n.id]
    return n


def _shape_covers(c, shape):
    """A constant broadcasts into ``shape`` without enlarging it."""
    cs = c.shape
    return len(cs) <= len(shape) and all(
        (isinstance(a, (int, np.integer)) and a == 1) or a == b for a, b in zip(cs, shape[len(shape) - len(cs):]))


def _new_op(prog, like, inputs, params, op=None):
    return PNode(prog.new_id(), "op", op or like.op, inputs, params, like.shape, like.dtype, like.site, like.tag)


def elementwise_fusion(prog):
    """Chains of elementwise ops whose intermediates have no other users become one kernel that
    writes every step into one output buffer (numpy ``out=``): no intermediate arrays."""
    users = users_of(prog)
    keep_out = {o.id for o in prog.outputs} | {v.id for _, v in prog.updates} | _dim_ref_ids(prog)
    removed = set()
    fused_kernels = 0
    absorbed = 0
    for n in prog.nodes:
        if not _fusable(n):
            continue
        producer = None
        for x in n.inputs:
            if (_fusable(x) and x.id not in keep_out and x.id not in removed and x.dtype == n.dtype
                    and _same_shape(x.shape, n.shape) and all(u is n for u in users.get(x.id, ()))):
                producer = x
                break
        if producer is None:
            continue
        if producer.steps is None:
            _to_kernel(producer)
        ext = list(producer.inputs)
        operands = []
        for x in n.inputs:
            if x is producer:
                operands.append(("buf",))
            elif x.kind == "constant" and _is_scalar_const(x):
                operands.append(("c", x.data))
            else:
                if x in ext:
                    operands.append(("x", ext.index(x)))
                else:
                    ext.append(x)
                    operands.append(("x", len(ext) - 1))
        steps = producer.steps + [(n.op.name, dict(n.params), operands)]
        if n.steps is None:
            fused_kernels += 1
        absorbed += 1
        fused_kernels -= 0
        n.steps = steps
        n.inputs = ext
        n.kind = "fused"
        n.merged += producer.merged
        removed.add(producer.id)
        if producer.kind == "fused" and producer.id in getattr(prog, "_kernel_ids", set()):
            pass
    before = len(prog.nodes)
    prog.nodes = [n for n in prog.nodes if n.id not in removed]
    kernels = sum(1 for n in prog.nodes if n.kind == "fused")
    return {"fused_nodes": before - len(prog.nodes), "kernels": kernels}


def _fusable(n):
    if len(n.shape) == 0:  # numpy returns scalars, not arrays, for 0-d results: nothing to write into
        return False
    return (n.kind == "fused") or (n.kind == "op" and n.op.name in ELEMENTWISE and np.dtype(n.dtype).kind == "f")


def _is_scalar_const(x):
    return isinstance(x.data, (int, float, np.floating, np.integer)) and not isinstance(x.data, bool)


def _to_kernel(n):
    """Turn a single elementwise op node into a one-step kernel."""
    operands = []
    ext = []
    for x in n.inputs:
        if x.kind == "constant" and _is_scalar_const(x):
            operands.append(("c", x.data))
        elif x in ext:
            operands.append(("x", ext.index(x)))
        else:
            ext.append(x)
            operands.append(("x", len(ext) - 1))
    n.steps = [(n.op.name, dict(n.params), operands)]
    n.inputs = ext
    n.kind = "fused"


PASSES = {
    "dce": dead_code_elimination,
    "fold": constant_folding,
    "cse": common_subexpression_elimination,
    "simplify": algebraic_simplification,
    "fuse": elementwise_fusion,
}
