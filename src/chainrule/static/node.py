"""The graph IR: nodes, the symbolic sizes their shapes may hold, and walks over them.

A static graph records :class:`Node` values; a compiled program works on copies of them (the same
class), which its passes rewrite. A :class:`Dim` is a size unknown until run time.
"""

import os

import numpy as np

from ..errors import ChainruleError
from ..ops.infer import known


class TracingError(ChainruleError, TypeError, RuntimeError):
    """A Python-level use of a tensor's *value* (``if``, ``.item()``, ``float()``, ``.numpy()``)
    while the value is symbolic, i.e. unknown until ``program.run``."""


# --- symbolic sizes ---------------------------------------------------------------------------------
class _Base:
    """One unknown size: axis ``axis`` of IR node ``node``; union-find links sizes proven equal."""

    __slots__ = ("node", "axis", "parent")

    def __init__(self, node, axis):
        self.node = node
        self.axis = axis
        self.parent = None

    def find(self):
        b = self
        while b.parent is not None:
            b = b.parent
        return b

    def key(self):
        r = self.find()
        return (r.node.id, r.axis)


def _union(a, b):
    ra, rb = a.find(), b.find()
    if ra is rb:
        return
    # prefer a placeholder's size as representative: it is known as soon as the feed arrives
    a_ph, b_ph = ra.node.kind == "placeholder", rb.node.kind == "placeholder"
    if (b_ph and not a_ph) or (a_ph == b_ph and (rb.node.id, rb.axis) < (ra.node.id, ra.axis)):
        ra, rb = rb, ra
    rb.parent = ra


class Dim:
    """A size unknown until run time: ``coef`` times the product of unknown base sizes.

    ``Dim(node, axis)`` is the size of IR value ``node`` along ``axis``. Products with ints and
    other Dims, and exact floor division by ints, stay symbolic (so ``flatten`` and
    ``reshape(-1, n)`` over a batch dim keep a resolvable size). ``int(dim)`` raises: the value is
    not known while building. Compares equal to ``None`` (how a symbolic ``.shape`` reads).
    """

    __slots__ = ("coef", "bases")

    def __init__(self, node=None, axis=None, *, coef=1, bases=None):
        if bases is None:
            bases = (_Base(node, axis),)
        self.coef = coef
        self.bases = bases

    # arithmetic --------------------------------------------------------------------------------
    def __mul__(self, other):
        if isinstance(other, Dim):
            return Dim(coef=self.coef * other.coef, bases=self.bases + other.bases)
        if isinstance(other, (int, np.integer)):
            other = int(other)
            if other == 0:
                return 0
            return Dim(coef=self.coef * other, bases=self.bases)
        return NotImplemented

    __rmul__ = __mul__

    def __floordiv__(self, other):
        if isinstance(other, (int, np.integer)) and int(other) != 0 and self.coef % int(other) == 0:
            coef = self.coef // int(other)
            return Dim(coef=coef, bases=self.bases)
        if isinstance(other, Dim):
            mine = list(self.bases)
            keys = [b.key() for b in mine]
            for b in other.bases:
                k = b.key()
                if k not in keys:
                    break
                i = keys.index(k)
                del keys[i], mine[i]
            else:
                if self.coef % other.coef == 0:
                    coef = self.coef // other.coef
                    return Dim(coef=coef, bases=tuple(mine)) if mine else coef
        raise TracingError(f"cannot divide the symbolic size {self!r} by {other!r} exactly while building a graph")

    def _key(self):
        return (self.coef, tuple(sorted(b.key() for b in self.bases)))

    def __eq__(self, other):
        if other is None:
            return True
        if isinstance(other, Dim):
            return self._key() == other._key()
        return False

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(("Dim", self.coef, len(self.bases)))

    def unify(self, other):
        """Record that this size and ``other`` are one size (an op required them equal)."""
        if isinstance(other, Dim) and _simple(self) and _simple(other):
            _union(self.bases[0], other.bases[0])

    def __int__(self):
        raise _size_error(self)

    __index__ = __int__

    def __float__(self):
        raise _size_error(self)

    def __repr__(self):
        return "None" if self.coef == 1 and len(self.bases) == 1 else str(self)

    def __str__(self):
        parts = [f"{b.find().node.label()}.{b.find().axis}" for b in self.bases]
        text = "*".join(parts)
        return text if self.coef == 1 else f"{self.coef}*{text}"


def _simple(d):
    return d.coef == 1 and len(d.bases) == 1


def _size_error(dim):
    return TracingError(
        f"the size {dim} is unknown while building a static graph (a dimension declared None in a "
        "placeholder, known only when data is fed); it cannot be used as a Python int. Use -1 in "
        "reshape/view (e.g. x.reshape(-1, n) or x.flatten(1)), or give the placeholder a concrete size."
    )


def dim_bases(shape_or_params):
    """All base sizes referenced by Dims inside a (nested) parameter value."""
    out = []

    def visit(v):
        if isinstance(v, Dim):
            out.extend(b.find() for b in v.bases)
        elif isinstance(v, (tuple, list)):
            for x in v:
                visit(x)
        elif isinstance(v, dict):
            for x in v.values():
                visit(x)

    visit(shape_or_params)
    return out


def shape_text(shape):
    return "[" + ",".join(str(int(s)) if known(s) else "None" for s in shape) + "]"


_SHORT = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64", "int32": "i32", "bool": "bool",
          "int16": "i16", "int8": "i8", "uint8": "u8"}


def type_text(shape, dtype):
    return f"{_SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)}{shape_text(shape)}"


# --- IR nodes -----------------------------------------------------------------------------------------
class Node:
    """One IR value: a placeholder, a variable (a concrete tensor read at run time by reference), a
    constant, an op applied to other nodes, or (in a program) a fused kernel of elementwise ``steps``:
    ``[(op, params, operands)]``, an operand being ``("x", input index)``, ``("buf",)`` (the kernel's
    buffer) or ``("c", scalar)``.

    A graph numbers and lists the nodes it records; a program works on :meth:`copy` of them.
    """

    __slots__ = ("id", "kind", "op", "inputs", "params", "shape", "dtype", "site", "tag", "data", "name", "steps",
                 "graph", "__weakref__")

    def __init__(self, graph, kind, op, inputs, params, shape, dtype, site, tag, data=None, name=None):
        self.graph = graph
        self.id = len(graph.nodes)
        self.kind = kind
        self.op = op
        self.inputs = inputs
        self.params = params
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.site = site
        self.tag = tag
        self.data = data
        self.name = name
        self.steps = None
        graph.nodes.append(self)

    def copy(self, **changes):
        """This node with ``changes`` (field=value) applied: the same value, or a rewrite of it."""
        new = object.__new__(Node)
        for field in _FIELDS:
            setattr(new, field, changes[field] if field in changes else getattr(self, field))
        return new

    def derive(self, op=None, inputs=None, params=None):
        """A new op node of this one's type computed another way (numbered when a program adopts it)."""
        return self.copy(id=None, kind="op", op=op or self.op, inputs=list(self.inputs if inputs is None else inputs),
                         params=dict(self.params if params is None else params), steps=None)

    def label(self):
        return f"%{self.id}"

    def __repr__(self):
        op = self.op.name if self.op else ""
        return f"<Node {self.label()} {self.kind} {op} {type_text(self.shape, self.dtype)}>"


_FIELDS = tuple(f for f in Node.__slots__ if f != "__weakref__")


def reachable(roots, resolve=None):
    """Ids of the nodes ``roots`` depend on: their inputs, and the nodes whose run-time sizes their
    symbolic shapes and parameters read (``resolve(node)``: the node standing for it, or None)."""
    seen = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        stack.extend(n.inputs)
        for b in dim_bases(n.params) + dim_bases(n.shape):
            ref = b.node if resolve is None else resolve(b.node)
            if ref is not None:
                stack.append(ref)
    return seen


def site_text(site, full=False):
    if site is None:
        return "?"
    filename, line, code = site
    name = filename if full else os.path.basename(filename)
    return f"{name}:{line}: {code}" if code else f"{name}:{line}"


