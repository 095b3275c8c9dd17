"""Compiling a static graph into a program: passes, memory plan, generated Python, executors.

``compile(outputs)`` copies the graph nodes the outputs (and updates) need into a program IR,
runs the enabled passes (see :mod:`.passes`), plans buffers, and generates one Python function
with one line per node (``program.source()``). The serial executor runs that function: no
per-node dispatch, numpy calls writing into planned buffers. ``threads=N`` runs independent nodes
concurrently on a thread pool instead (numpy releases the GIL in BLAS and ufuncs).
"""

import concurrent.futures
import threading
import time

import numpy as np

from .. import _dtype
from ..autograd.grad_mode import no_grad
from ..errors import ChainruleError, GraphError, ShapeError
from ..ops.op import OPS
from ..tensor import Tensor, _wrap
from . import passes as _passes
from .ir import Dim, SymbolicTensor, dim_bases, shape_text, site_text, type_text
from .passes import ELEMENTWISE, PASS_ORDER, UFUNCS, VIEW_OPS, PNode


class FeedError(ChainruleError, ValueError, TypeError):
    """A feed that does not match a placeholder (missing, wrong shape or dtype)."""


# --- IR text ------------------------------------------------------------------------------------------
def _param_text(v):
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, np.ndarray):
        text = np.array2string(v, threshold=6, separator=",")
        return text if len(text) < 40 else f"array({v.dtype.name}{list(v.shape)})"
    if isinstance(v, Dim):
        return str(v) if not (v.coef == 1 and len(v.bases) == 1) else repr(v)
    if isinstance(v, tuple):
        inner = ", ".join(_param_text(x) for x in v)
        return f"({inner}{',' if len(v) == 1 else ''})"
    text = repr(v)
    return text if len(text) < 60 else text[:57] + "..."


def format_node(n):
    if n.kind == "placeholder":
        head = f"{n.label()} = placeholder {n.name!r}"
    elif n.kind == "variable":
        head = f"{n.label()} = variable"
    elif n.kind == "constant":
        small = not isinstance(n.data, np.ndarray) or n.data.size <= 4
        head = f"{n.label()} = constant {_param_text(n.data) if small else 'array'}"
    elif n.kind == "fused":
        names = ",".join(s[0] for s in n.steps)
        head = f"{n.label()} = fused[{names}]({', '.join(i.label() for i in n.inputs)})"
    else:
        args = [i.label() for i in n.inputs] + [f"{k}={_param_text(v)}" for k, v in n.params.items()]
        head = f"{n.label()} = {n.op.name}({', '.join(args)})"
    line = f"{head}  : {type_text(n.shape, n.dtype)}"
    comment = []
    if n.site is not None:
        comment.append(site_text(n.site))
    if n.tag == "backward":
        comment.append("(backward)")
    if comment:
        line = f"{line:<58}  # " + " ".join(comment)
    return line


def format_nodes(nodes):
    return "\n".join(format_node(n) for n in nodes)


# --- compile --------------------------------------------------------------------------------------------
def _parse_optimize(optimize):
    if optimize is True or optimize is None:
        return {p: True for p in PASS_ORDER}
    if optimize is False:
        return {p: False for p in PASS_ORDER}
    if isinstance(optimize, dict):
        unknown = set(optimize) - set(PASS_ORDER)
        if unknown:
            raise ValueError(f"compile: unknown pass(es) {sorted(unknown)}; choose from {list(PASS_ORDER)}")
        return {p: bool(optimize.get(p, True)) for p in PASS_ORDER}
    names = set(optimize)
    unknown = names - set(PASS_ORDER)
    if unknown:
        raise ValueError(f"compile: unknown pass(es) {sorted(unknown)}; choose from {list(PASS_ORDER)}")
    return {p: p in names for p in PASS_ORDER}


def compile(outputs, inputs=None, optimize=True, threads=None, updates=None):  # noqa: A001 - API name
    """Compile symbolic ``outputs`` (a tensor or a sequence) into a runnable :class:`Program`.

    ``inputs``: the placeholders the feed must provide (default: those the outputs need).
    ``optimize``: True (all passes), False (none), or a set/dict of pass names
    (``"simplify", "fold", "cse", "dce", "fuse", "memory"``). ``threads``: run independent nodes on
    that many threads (default 1: the generated serial function). ``updates``: ``{tensor: symbolic new
    value}`` written into each tensor's array after every run (a compiled training step); in-place
    ops on concrete tensors while building are added automatically.
    """
    return Program(outputs, inputs, optimize, threads, updates)


class Program:
    """A compiled static graph: ``run(feed)`` / ``program(**feed)``, ``ir()``, ``source()``, ``memory_plan()``."""

    def __init__(self, outputs, inputs=None, optimize=True, threads=None, updates=None):
        self.single = isinstance(outputs, Tensor)
        outs = [outputs] if self.single else list(outputs)
        graph = None
        for t in list(outs) + list((updates or {}).values()):
            if isinstance(t, SymbolicTensor):
                graph = t._data.node.graph
                break
        if graph is None:
            raise TypeError("compile: expected symbolic tensors of a static graph as outputs")
        self.graph = graph
        all_updates = dict(graph.updates)
        all_updates.update(updates or {})
        for t, v in all_updates.items():
            if not isinstance(t, Tensor) or isinstance(t, SymbolicTensor):
                raise TypeError("compile: update targets must be concrete tensors (parameters, buffers)")
            if not isinstance(v, SymbolicTensor):
                raise TypeError("compile: update values must be symbolic tensors of the graph")
            if tuple(v._data.shape) != tuple(t._data.shape):
                raise ShapeError(f"compile: update of a tensor of shape {list(t.shape)} with a value of shape "
                                 f"{shape_text(v._data.shape)}")
        self.threads = int(threads) if threads else 1
        self.passes = _parse_optimize(optimize)
        self._id_counter = len(graph.nodes)
        self.forward_ids = {}
        self.pass_log = []
        self._lock = threading.Lock()
        self._pool = None
        self.last_profile = None
        self._last_dims = None
        self._build(outs, inputs, all_updates)
        self._optimize()
        self._plan()
        self._generate()

    def new_id(self):
        self._id_counter += 1
        return self._id_counter - 1

    # building the program IR ---------------------------------------------------------------------------
    def _build(self, outs, inputs, updates):
        graph = self.graph
        with graph.activate(), no_grad():  # concrete outputs become variable nodes of the graph
            out_nodes = [graph._node_of(o) if isinstance(o, Tensor) else None for o in outs]
        if any(n is None for n in out_nodes):
            raise TypeError("compile: outputs must be tensors")
        upd_nodes = [(t, v._data.node) for t, v in updates.items()]
        for n in out_nodes + [v for _, v in upd_nodes]:
            if n.graph is not graph:
                raise GraphError("compile: all outputs and updates must come from the same static graph")
        # which placeholders are needed
        needed = set()
        stack = out_nodes + [v for _, v in upd_nodes]
        while stack:
            n = stack.pop()
            if n.id in needed:
                continue
            needed.add(n.id)
            stack.extend(n.inputs)
            stack.extend(b.node for b in dim_bases(n.params) + dim_bases(n.shape))
        needed_ph = [p for p in graph.placeholders if p.id in needed]
        if inputs is None:
            ph = needed_ph
        else:
            ph = []
            for t in ([inputs] if isinstance(inputs, Tensor) else list(inputs)):
                if not isinstance(t, SymbolicTensor) or t._data.node.kind != "placeholder":
                    raise TypeError("compile: inputs must be placeholders")
                ph.append(t._data.node)
            missing = [p for p in needed_ph if p not in ph]
            if missing:
                raise GraphError(f"compile: the outputs need placeholder {missing[0].name!r}, which is not among "
                                 "the inputs")
        allowed = {p.id for p in ph}
        runnable = {}
        for n in graph.nodes:
            if n.kind == "placeholder":
                runnable[n.id] = n.id in allowed
            else:
                deps = list(n.inputs) + [b.node for b in dim_bases(n.params) + dim_bases(n.shape) if b.node is not n]
                runnable[n.id] = all(runnable.get(d.id, False) for d in deps)
        pnodes = {}
        nodes = []
        for n in graph.nodes:
            if not runnable[n.id]:
                continue
            p = PNode(n.id, n.kind, n.op, [pnodes[i.id] for i in n.inputs], dict(n.params), n.shape, n.dtype, n.site,
                      n.tag, data=n.data, name=n.name)
            pnodes[n.id] = p
            nodes.append(p)
        self.nodes = nodes
        self.placeholders = [pnodes[p.id] for p in ph]
        self.outputs = [pnodes[n.id] for n in out_nodes]
        self.updates = [(t, pnodes[v.id]) for t, v in upd_nodes]
        self._by_name = {p.name: p for p in self.placeholders}
        self._dim_slots = [(p.id, axis, k) for k, p in enumerate(self.placeholders)
                           for axis, s in enumerate(p.shape) if isinstance(s, Dim)]

    def _optimize(self):
        self.ir_before = format_nodes(self.nodes)
        sequence = ["simplify", "fold", "cse", "simplify", "cse", "dce", "fuse"]
        done = set()
        for name in sequence:
            if not self.passes[name]:
                continue
            before_text = format_nodes(self.nodes)
            before = len(self.nodes)
            stats = _passes.PASSES[name](self)
            changed = len(self.nodes) != before or any(v for v in stats.values())
            label = name if name not in done else name + " (round 2)"
            done.add(name)
            if label != name and not changed:
                continue
            stats = {"nodes_before": before, "nodes_after": len(self.nodes), **stats}
            self.pass_log.append({"pass": label, "stats": stats, "before": before_text,
                                  "after": format_nodes(self.nodes)})

    # the memory plan ------------------------------------------------------------------------------------
    def _resolve_base(self, b):
        """The program node whose run-time shape gives base size ``b`` (after merges), or None."""
        r = b.find()
        return self.forward_ids.get(r.node.id, r.node.id), r.axis, r.node.kind == "placeholder"

    def _start_resolvable(self, shape):
        for s in shape:
            if isinstance(s, Dim):
                for b in s.bases:
                    if b.find().node.kind != "placeholder":
                        return False
        return True

    def _plan(self):
        nodes = self.nodes
        index = {n.id: k for k, n in enumerate(nodes)}
        roots = {}
        fresh = {}
        for n in nodes:
            if n.kind == "fused" or (n.kind == "op" and (n.op.name in ELEMENTWISE or n.op.name in _FRESH_OPS)):
                roots[n.id] = {n.id}
                fresh[n.id] = True
            elif n.kind == "op" and n.op.name in VIEW_OPS:
                roots[n.id] = set(roots[n.inputs[0].id])
            elif n.kind == "op":
                rs = {n.id}
                for i in n.inputs:
                    rs |= roots[i.id]
                roots[n.id] = rs
                fresh[n.id] = False
            else:
                roots[n.id] = {n.id}
        end = {n.id: k for k, n in enumerate(nodes)}
        for k, n in enumerate(nodes):
            for i in n.inputs:
                for r in roots[i.id]:
                    end[r] = max(end[r], k)
            for b in dim_bases(n.params):
                nid, _, _ = self._resolve_base(b)
                if nid in roots:
                    for r in roots[nid]:
                        end[r] = max(end[r], k)
        last = len(nodes)
        escaping = set()
        for o in self.outputs:
            escaping |= roots[o.id]
        for o in self.outputs + [v for _, v in self.updates]:
            for r in roots[o.id]:
                end[r] = last
        self._roots, self._end, self._index, self._fresh = roots, end, index, fresh
        slots = []  # (shape, dtype)
        assign = {}  # node id -> slot
        var_out = {}  # node id -> update index: the kernel writes straight into the variable's array
        var_last = {}  # node id -> update index: only the kernel's last step writes into the variable
        inplace = {}  # node id -> the input whose (dying) buffer it overwrites
        use_memory = self.passes["memory"] and self.threads == 1
        if use_memory:
            var_nodes = {id(n.data): n for n in nodes if n.kind == "variable"}
            readers = {}
            for k, n in enumerate(nodes):
                for i in n.inputs:
                    for r in roots[i.id]:
                        readers.setdefault(r, []).append((k, n))
            out_ids = {o.id for o in self.outputs}
            for u, (t, v) in enumerate(self.updates):
                if v.id in out_ids or not self._out_capable(v) or v.dtype != t._data.dtype \
                        or tuple(v.shape) != tuple(t._data.shape) or any(v is w for _, w in self.updates[:u]):
                    continue
                w = var_nodes.get(id(t))
                mode = "all"
                if w is not None:
                    for k, reader in readers.get(w.id, ()):
                        if reader is v:
                            if not self._only_first_step(v, w):
                                mode = "last" if self._only_last_step(v, w) and mode == "all" else None
                        elif k >= index[v.id]:
                            mode = None
                        if mode is None:
                            break
                if mode == "all":
                    var_out[v.id] = u
                elif mode == "last" and self._start_resolvable(v.shape):
                    var_last[v.id] = u
            free = {}
            owners = {}  # slot -> node id currently holding it
            for k, n in enumerate(nodes):
                if n.id not in var_out and self._out_capable(n) and n.id not in escaping and len(n.shape) >= 1 \
                        and self._start_resolvable(n.shape):
                    key = (tuple(n.shape), np.dtype(n.dtype).str)
                    chosen = None
                    if n.kind == "fused" or n.op.name in ELEMENTWISE:
                        for x in n.inputs:
                            if x.id in assign and end[x.id] == k and roots[x.id] == {x.id} \
                                    and (tuple(x.shape), np.dtype(x.dtype).str) == key \
                                    and self._only_first_step(n, x):
                                chosen = assign[x.id]
                                inplace[n.id] = x
                                owners[chosen] = n.id
                                break
                    if chosen is None:
                        pool = free.get(key)
                        if pool:
                            chosen = pool.pop()
                        else:
                            chosen = len(slots)
                            slots.append(key)
                        owners[chosen] = n.id
                    assign[n.id] = chosen
                    if n.id in var_last:  # the buffer only holds the kernel's intermediate
                        free.setdefault(key, []).append(chosen)
                        owners[chosen] = None
                # release the buffers whose last use is this node
                for i in set(x.id for x in n.inputs) | {n.id}:
                    for r in roots.get(i, ()):
                        if end[r] == k and r in assign and owners.get(assign[r]) == r:
                            free.setdefault(slots[assign[r]], []).append(assign[r])
                            owners[assign[r]] = None
        self.slots, self.assign, self.var_out, self.var_last, self.inplace = slots, assign, var_out, var_last, inplace
        if self.passes["memory"]:
            self.pass_log.append({"pass": "memory", "stats": {
                "buffers": len(slots), "nodes_in_buffers": len(assign), "in_place": len(inplace),
                "updates_in_place": len(var_out) + len(var_last)}, "before": None, "after": None})

    def _out_capable(self, n):
        if n.kind == "fused":
            return True
        return n.kind == "op" and (n.op.name in ELEMENTWISE or n.op.name == "matmul")

    def _only_first_step(self, n, x):
        """Whether kernel ``n`` reads ``x`` only in its first step (so its output may overwrite x)."""
        if n.kind != "fused":
            return not (n.op.name == "where" and n.inputs[0] is x)
        if n.steps[0][0] == "where" and n.steps[0][2][0] == ("x", n.inputs.index(x) if x in n.inputs else -1):
            return False
        k = n.inputs.index(x) if x in n.inputs else -1
        for s, (_, _, operands) in enumerate(n.steps):
            if s > 0 and ("x", k) in operands:
                return False
        return True

    def _only_last_step(self, n, x):
        """Whether kernel ``n`` reads ``x`` only as an operand of its last step, a binary ufunc."""
        if n.kind != "fused" or len(n.steps) < 2 or x not in n.inputs:
            return False
        k = n.inputs.index(x)
        name, _, operands = n.steps[-1]
        if name not in UFUNCS or ("buf",) not in operands:
            return False
        return all(("x", k) not in ops for _, _, ops in n.steps[:-1])

    # code generation ------------------------------------------------------------------------------------
    def _generate(self):
        gen = _CodeGen(self, threaded=False)
        self._source = gen.source
        namespace = dict(gen.globals)
        exec(compile_source(gen.source, "<chainrule.static program>"), namespace)  # noqa: S102
        self._fn = namespace["_program"]
        self._globals = namespace
        tgen = _CodeGen(self, threaded=True)
        self._tsource = tgen.source
        tns = dict(tgen.globals)
        exec(compile_source(tgen.source, "<chainrule.static program (per node)>"), tns)  # noqa: S102
        self._node_fns = [(n, tns[f"_n{n.id}"]) for n in self.nodes if f"_n{n.id}" in tns]
        self._tglobals = tns
        self._tinit = tns["_init"]
        self._tfinish = tns["_finish"]
        deps = {}
        users = {}
        op_ids = {n.id for n, _ in self._node_fns}
        for n, _ in self._node_fns:
            ds = {i.id for i in n.inputs if i.id in op_ids}
            for b in dim_bases(n.params):
                nid, _, _ = self._resolve_base(b)
                if nid in op_ids and nid != n.id:
                    ds.add(nid)
            deps[n.id] = ds
            for d in ds:
                users.setdefault(d, []).append(n.id)
        self._deps, self._users = deps, users

    # running ------------------------------------------------------------------------------------------
    def _feed_arrays(self, feed):
        arrays = []
        if feed is None:
            feed = {}
        by_node = {}
        for key, value in feed.items():
            if isinstance(key, str):
                p = self._by_name.get(key)
                if p is None:
                    if any(q.name == key for q in self.graph.placeholders):
                        continue  # a placeholder of the graph that this program does not need
                    raise FeedError(f"run: no placeholder named {key!r} in this program (placeholders: "
                                    f"{[q.name for q in self.placeholders]})")
            elif isinstance(key, SymbolicTensor):
                p = key._data.node
            else:
                raise FeedError(f"run: feed keys must be placeholders or their names, got {type(key).__name__}")
            by_node[p.id] = value
        for p in self.placeholders:
            value = by_node.get(p.id, _MISSING)
            if value is _MISSING:
                raise FeedError(f"run: placeholder {p.name!r} ({type_text(p.shape, p.dtype)}) was not fed")
            if isinstance(value, Tensor):
                if isinstance(value, SymbolicTensor):
                    raise FeedError(f"run: placeholder {p.name!r} was fed a symbolic tensor; feed data")
                a = value._data
            elif type(value) is np.ndarray:
                a = value
            else:
                a = np.asarray(value, dtype=p.dtype if not isinstance(value, np.ndarray) else None)
            if a.dtype != p.dtype:
                raise FeedError(f"run: placeholder {p.name!r} expects dtype {_dtype.from_numpy_dtype(p.dtype).name}, "
                                f"got {a.dtype.name} (convert it first, e.g. .astype(np.{p.dtype.name}))")
            shape = p.shape
            if a.ndim != len(shape) or any(type(s) is int and s != d for s, d in zip(shape, a.shape)):
                raise FeedError(f"run: placeholder {p.name!r} expects shape {shape_text(shape)}, got {list(a.shape)}")
            arrays.append(a)
        return arrays

    def run(self, feed=None, profile=False, **feed_by_name):
        """Run the program on ``feed`` (placeholders or names -> arrays/tensors); returns fresh tensors
        in the order of the outputs (one tensor when compiled from one). ``profile=True`` records
        per-node (start, end, thread) in ``program.last_profile``."""
        if feed_by_name:
            feed = dict(feed or {}, **feed_by_name)
        arrays = self._feed_arrays(feed)
        if self._dim_slots:
            self._last_dims = {(pid, axis): arrays[k].shape[axis] for pid, axis, k in self._dim_slots}
        with self._lock:
            if self.threads > 1 or profile:
                outs = self._run_nodes(arrays, profile)
            else:
                outs = self._fn(*arrays)
        if self.single:
            return _wrap(outs[0])
        return [_wrap(a) for a in outs]

    def __call__(self, feed=None, **feed_by_name):
        return self.run(feed, **feed_by_name)

    def _run_nodes(self, arrays, profile):
        E = [None] * (self._id_counter + 1)
        self._tinit(E, *arrays)
        records = [] if profile else None
        fns = dict((n.id, f) for n, f in self._node_fns)
        names = {n.id: (n.opname if n.kind != "fused" else "fused[" + ",".join(s[0] for s in n.steps) + "]")
                 for n, _ in self._node_fns}

        def call(nid):
            if records is None:
                fns[nid](E)
                return nid
            t0 = time.perf_counter()
            fns[nid](E)
            t1 = time.perf_counter()
            records.append({"node": nid, "op": names[nid], "start": t0, "end": t1, "thread": threading.get_ident()})
            return nid

        if self.threads <= 1:
            for n, _ in self._node_fns:
                call(n.id)
        else:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="chainrule-static")
            remaining = {nid: len(ds) for nid, ds in self._deps.items()}
            pending = {self._pool.submit(call, nid) for nid, c in remaining.items() if c == 0}
            while pending:
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for f in done:
                    nid = f.result()
                    for u in self._users.get(nid, ()):
                        remaining[u] -= 1
                        if remaining[u] == 0:
                            pending.add(self._pool.submit(call, u))
        if records is not None:
            t0 = min((r["start"] for r in records), default=0.0)
            for r in records:
                r["start"] -= t0
                r["end"] -= t0
            self.last_profile = sorted(records, key=lambda r: r["start"])
        return self._tfinish(E)

    # reading ------------------------------------------------------------------------------------------
    def ir(self, stage="after"):
        """The program's IR text (``stage='before'``: as copied from the graph, before any pass)."""
        return self.ir_before if stage == "before" else format_nodes(self.nodes)

    def __str__(self):
        return self.ir()

    def __repr__(self):
        return f"<static Program: {len(self.nodes)} nodes, {len(self.outputs)} outputs, {len(self.updates)} updates>"

    def passes_report(self):
        """Per-pass statistics and the IR before/after each pass, as text."""
        lines = []
        for entry in self.pass_log:
            stats = ", ".join(f"{k}={v}" for k, v in entry["stats"].items())
            lines.append(f"== pass {entry['pass']}: {stats}")
            if entry.get("after") is not None and entry.get("before") is not None:
                lines.append("-- before:")
                lines.append(entry["before"])
                lines.append("-- after:")
                lines.append(entry["after"])
        return "\n".join(lines)

    def stats(self):
        return {e["pass"]: e["stats"] for e in self.pass_log}

    def source(self):
        """The generated Python source the serial executor runs (one line per node)."""
        return self._source

    def memory_plan(self, feed_shapes=None):
        """Bytes of the run's intermediate arrays: ``naive_bytes`` (every node its own array, none
        freed), ``peak_without_reuse`` (fresh arrays freed after their last use), ``planned_peak_bytes``
        (planned buffers, held for the whole run, plus fresh arrays at their peak), ``bytes_saved``.

        Symbolic sizes are taken from ``feed_shapes`` ({placeholder or name: shape}) or the last run.
        """
        dims = self._dims_for(feed_shapes)

        def nbytes(shape, dtype):
            total = 1
            for s in shape:
                total *= self._size_value(s, dims)
            return total * np.dtype(dtype).itemsize

        nodes = self.nodes
        sizes = {}
        for n in nodes:
            if n.kind in ("op", "fused") and self._fresh.get(n.id, n.kind == "op" and n.op.name not in VIEW_OPS):
                sizes[n.id] = nbytes(n.shape, n.dtype)
        naive = sum(sizes.values())
        # fresh arrays, freed after their last use
        peak_fresh = self._peak(sizes, exclude=())
        slot_bytes = sum(nbytes(shape, dt) for shape, dt in self.slots)
        in_var = sum(sizes.get(nid, 0) for nid in self.var_out)
        planned = self._planned_peak(sizes, [nbytes(shape, dt) for shape, dt in self.slots])
        return {"naive_bytes": naive, "peak_without_reuse": peak_fresh, "planned_peak_bytes": planned,
                "bytes_saved": naive - planned, "buffer_bytes": slot_bytes, "buffers": len(self.slots),
                "in_place_nodes": len(self.inplace), "updates_in_place": len(self.var_out) + len(self.var_last),
                "update_bytes_in_place": in_var}

    def _planned_peak(self, sizes, slot_sizes):
        """Peak of live bytes in one run: each buffer from its first writer to its last reader's end,
        plus the arrays not planned (fresh, freed after their last use)."""
        first, last = {}, {}
        for k, n in enumerate(self.nodes):
            slot = self.assign.get(n.id)
            if slot is not None:
                first.setdefault(slot, k)
                last[slot] = max(last.get(slot, k), self._end.get(n.id, k))
        live = 0
        peak = 0
        frees = {}
        starts = {}
        for slot, k in first.items():
            starts.setdefault(k, []).append(slot)
        for k, n in enumerate(self.nodes):
            for slot in starts.get(k, ()):
                live += slot_sizes[slot]
                frees.setdefault(last[slot], []).append(slot_sizes[slot])
            if n.id in sizes and n.id not in self.assign and n.id not in self.var_out:
                live += sizes[n.id]
                frees.setdefault(self._end.get(n.id, k), []).append(sizes[n.id])
            peak = max(peak, live)
            for b in frees.pop(k, ()):
                live -= b
        return peak

    def _peak(self, sizes, exclude):
        live = 0
        peak = 0
        frees = {}
        for k, n in enumerate(self.nodes):
            if n.id in sizes and n.id not in exclude:
                live += sizes[n.id]
                frees.setdefault(self._end.get(n.id, k), []).append(sizes[n.id])
            peak = max(peak, live)
            for b in frees.pop(k, ()):
                live -= b
        return peak

    def _dims_for(self, feed_shapes):
        if feed_shapes is None:
            return self._last_dims or {}
        dims = {}
        for key, shape in feed_shapes.items():
            p = self._by_name[key] if isinstance(key, str) else key._data.node
            shape = shape.shape if hasattr(shape, "shape") else tuple(shape)
            for axis, s in enumerate(shape):
                dims[(p.id, axis)] = int(s)
        return dims

    def _size_value(self, s, dims):
        if isinstance(s, (int, np.integer)):
            return int(s)
        value = s.coef
        for b in s.bases:
            nid, axis, _ = self._resolve_base(b)
            if (nid, axis) not in dims:
                raise GraphError("memory_plan: symbolic sizes are unknown; pass feed_shapes={placeholder: shape} "
                                 "or run the program once first")
            value *= dims[(nid, axis)]
        return value

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


_MISSING = object()
_FRESH_OPS = frozenset({"matmul", "static_full", "sum", "cast", "clone", "mean", "amax", "amin", "logsumexp", "cat",
                        "index_add_zeros", "index_put", "pad", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
                        "logical_or", "logical_xor", "logical_not", "sign", "floor", "ceil", "round", "trunc",
                        "isnan", "isinf", "isfinite", "floor_divide", "argmax", "argmin", "copy", "scatter",
                        "scatter_add", "gather"})


# Ops without gradients whose forward is a numpy ufunc: called by name in the generated source.
_DIRECT = {name: f"np.{op.forward.__name__}" for name, op in OPS.items()
           if isinstance(op.forward, np.ufunc) and op.vjp is None}


def compile_source(source, filename):
    import builtins

    return builtins.compile(source, filename, "exec")


# --- the code generator --------------------------------------------------------------------------------
class _CodeGen:
    """Emits the program as Python: serial (one function, locals ``v12``) or per node (``E[12]``)."""

    def __init__(self, prog, threaded):
        self.prog = prog
        self.threaded = threaded
        self.globals = {"np": np, "_wrap": _wrap}
        self.lines = []
        self._k = 0
        self.source = self._emit_all()

    def const(self, value, hint="K"):
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, int) and not isinstance(value, np.integer):
            return repr(value)
        if isinstance(value, float) and np.isfinite(value):
            return repr(value)
        name = f"{hint}{self._k}"
        self._k += 1
        self.globals[name] = value
        return name

    def ref(self, n):
        if self.threaded:
            return f"E[{n.id}]"
        if n.kind == "placeholder":
            return f"p{n.id}"
        if n.kind == "variable":
            return f"w{n.id}"
        if n.kind == "constant":
            return self._consts[n.id]
        return f"v{n.id}"

    def base_expr(self, b):
        nid, axis, is_ph = self.prog._resolve_base(b)
        if self.threaded:
            return f"E[{nid}].shape[{axis}]"
        if is_ph:
            return f"d{nid}_{axis}"
        return f"v{nid}.shape[{axis}]"

    def dim_expr(self, d):
        parts = [self.base_expr(b) for b in d.bases]
        if d.coef != 1:
            parts.insert(0, str(d.coef))
        return " * ".join(parts) if len(parts) > 1 else parts[0]

    def param(self, v):
        if isinstance(v, Dim):
            return f"({self.dim_expr(v)})"
        if isinstance(v, tuple) and any(isinstance(x, Dim) for x in v):
            return "(" + ", ".join(self.param(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        if isinstance(v, tuple) and all(type(x) is int for x in v):
            return repr(v)
        if isinstance(v, (bool, int, float, type(None))) and not isinstance(v, np.generic):
            return self.const(v)
        return self.const(v)

    def shape_expr(self, shape):
        return self.param(tuple(shape))

    # --- whole program ---
    def _emit_all(self):
        prog = self.prog
        self._consts = {}
        header = []
        for n in prog.nodes:
            if n.kind == "constant":
                self._consts[n.id] = self.const(n.data, "C")
        if self.threaded:
            return self._emit_threaded()
        args = ", ".join(f"p{p.id}" for p in prog.placeholders)
        body = []
        body.append(f"def _program({args}):")
        for p in prog.placeholders:
            for axis, s in enumerate(p.shape):
                if isinstance(s, Dim):
                    body.append(f"    d{p.id}_{axis} = p{p.id}.shape[{axis}]")
        for k, t in enumerate(prog.updates):
            self.globals[f"T{k}"] = t[0]
        for n in prog.nodes:
            if n.kind == "variable":
                self.globals[f"V{n.id}"] = n.data
                body.append(f"    w{n.id} = V{n.id}._data{'':<28}# {format_node(n).split('  :')[1].strip()}")
        # buffers
        slot_names = {}
        if prog.slots:
            dynamic = any(not all(type(s) is int for s in shape) for shape, _ in prog.slots)
            if dynamic:
                keys = sorted({(p.id, axis) for p in prog.placeholders for axis, s in enumerate(p.shape)
                               if isinstance(s, Dim)})
                key = "(" + ", ".join(f"d{i}_{a}" for i, a in keys) + ",)"
                alloc_lines = ["def _alloc(key):"]
                alloc_lines.append("    " + ", ".join(f"d{i}_{a}" for i, a in keys) + ", = key")
                alloc_lines.append("    return [" + ", ".join(
                    f"np.empty({self.shape_expr(shape)}, np.{np.dtype(dt).name})" for shape, dt in prog.slots) + "]")
                header.extend(alloc_lines)
                header.append("")
                self.globals["_BUFS"] = {}
                body.append(f"    _key = {key}")
                body.append("    _bufs = _BUFS.get(_key)")
                body.append("    if _bufs is None:")
                body.append("        if len(_BUFS) > 8:")
                body.append("            _BUFS.clear()")
                body.append("        _bufs = _BUFS[_key] = _alloc(_key)")
                names = [f"b{k}" for k in range(len(prog.slots))]
                body.append("    " + ", ".join(names) + (", = _bufs" if len(names) == 1 else " = _bufs"))
                for k in range(len(prog.slots)):
                    slot_names[k] = f"b{k}"
            else:
                for k, (shape, dt) in enumerate(prog.slots):
                    self.globals[f"B{k}"] = np.empty(tuple(shape), np.dtype(dt))
                    slot_names[k] = f"B{k}"
        self.slot_names = slot_names
        tag = None
        for n in prog.nodes:
            if n.kind not in ("op", "fused"):
                continue
            if n.tag != tag:
                tag = n.tag
                body.append(f"    # --- {tag} ---")
            out = last_out = None
            if n.id in prog.var_out:
                out = f"T{prog.var_out[n.id]}._data"
            elif n.id in prog.assign:
                out = slot_names[prog.assign[n.id]]
                if n.id in prog.var_last:
                    last_out = f"T{prog.var_last[n.id]}._data"
            lines = self.emit(n, out, last_out)
            comment = f"  # {format_node(n).split('  :', 1)[0].split(' = ', 1)[1]} : {type_text(n.shape, n.dtype)}"
            lines[-1] = lines[-1] + comment
            body.extend("    " + line for line in lines)
        body.extend("    " + line for line in self._finish_lines())
        return "\n".join(header + body) + "\n"

    def _finish_lines(self):
        prog = self.prog
        lines = []
        if prog.updates:
            lines.append("# --- updates ---")
        for k, (_t, v) in enumerate(prog.updates):
            if self.threaded or (v.id not in prog.var_out and v.id not in prog.var_last):
                lines.append(f"np.copyto(T{k}._data, {self.ref(v)})")
            lines.append(f"T{k}._version[0] += 1")
        outs = []
        seen = set()
        for o in prog.outputs:
            fresh = (o.kind in ("op", "fused") and prog._fresh.get(o.id, False) and prog._roots[o.id] == {o.id}
                     and o.id not in prog.assign and o.id not in prog.var_out)
            if fresh and o.id not in seen:
                outs.append(self.ref(o))
            else:
                outs.append(f"np.array({self.ref(o)})")
            seen.add(o.id)
        lines.append("return (" + ", ".join(outs) + ("," if len(outs) == 1 else "") + ")")
        return lines

    def _emit_threaded(self):
        prog = self.prog
        for k, t in enumerate(prog.updates):
            self.globals[f"T{k}"] = t[0]
        self.slot_names = {}
        lines = ["def _init(E, " + ", ".join(f"p{p.id}" for p in prog.placeholders) + "):"]
        for p in prog.placeholders:
            lines.append(f"    E[{p.id}] = p{p.id}")
        for n in prog.nodes:
            if n.kind == "variable":
                self.globals[f"V{n.id}"] = n.data
                lines.append(f"    E[{n.id}] = V{n.id}._data")
            elif n.kind == "constant":
                lines.append(f"    E[{n.id}] = {self._consts[n.id]}")
        lines.append("    return E")
        lines.append("")
        for n in prog.nodes:
            if n.kind not in ("op", "fused"):
                continue
            lines.append(f"def _n{n.id}(E):  # {format_node(n).split('  #')[0].strip()}")
            lines.extend("    " + line for line in self.emit(n, None))
            lines.append("")
        lines.append("def _finish(E):")
        lines.extend("    " + line for line in self._finish_lines())
        return "\n".join(lines) + "\n"

    # --- one node ---
    def emit(self, n, out, last_out=None):
        target = self.ref(n)
        alias = None
        if out is not None and n.id in self.prog.inplace:
            alias = n.inputs.index(self.prog.inplace[n.id])
        if n.kind == "fused":
            return self.emit_steps(n.steps, [self.ref(i) for i in n.inputs], out, target, alias, last_out)
        name = n.op.name
        args = [self.ref(i) for i in n.inputs]
        p = n.params
        if name in ELEMENTWISE:
            steps = [(name, p, [("x", k) for k in range(len(args))])]
            return self.emit_steps(steps, args, out, target, alias)
        if name == "matmul":
            if out is not None:
                return [f"{target} = np.matmul({args[0]}, {args[1]}, out={out})"]
            return [f"{target} = np.matmul({args[0]}, {args[1]})"]
        if name == "reshape":
            return [f"{target} = {args[0]}.reshape({self.param(tuple(p['shape']))})"]
        if name == "permute":
            return [f"{target} = {args[0]}.transpose({p['axes']!r})"]
        if name == "expand":
            return [f"{target} = np.broadcast_to({args[0]}, {self.param(tuple(p['shape']))})"]
        if name == "cast":
            return [f"{target} = {args[0]}.astype({self.const(p['dtype'], 'DT')})"]
        if name == "sum" and np.dtype(n.dtype).kind == "f":
            return [f"{target} = np.add.reduce({args[0]}, axis={self.param(p['dim'])}, keepdims={p['keepdim']!r})"]
        if name in _DIRECT:
            return [f"{target} = {_DIRECT[name]}({', '.join(args)})"]
        if name == "static_full":
            return [f"{target} = np.full({self.param(tuple(p['shape']))}, {self.param(p['value'])}, "
                    f"{self.const(p['dtype'], 'DT')})"]
        fn = self.const(n.op.forward, "F")
        kwargs = ", ".join(f"{k}={self.param(v)}" for k, v in p.items())
        return [f"{target} = {fn}({', '.join(args + ([kwargs] if kwargs else []))})"]

    def emit_steps(self, steps, args, out, target, alias=None, last_out=None):
        """Lines evaluating kernel ``steps``: into ``out`` (a planned buffer) or a fresh array. ``alias``:
        the input index whose buffer ``out`` is (read by the first step only); ``last_out``: the last step
        writes there instead (a variable updated in place)."""
        lines = []
        buf = out
        for s, (name, params, operands) in enumerate(steps):
            if s == 0 and alias is not None:
                operands = [("buf",) if o == ("x", alias) else o for o in operands]
            if last_out is not None and s == len(steps) - 1:
                ops = [buf if o[0] == "buf" else args[o[1]] if o[0] == "x" else self.const(o[1]) for o in operands]
                lines.append(f"{UFUNCS[name]}({', '.join(ops)}, out={last_out})")
                buf = last_out
                continue
            ops = []
            for o in operands:
                if o[0] == "x":
                    ops.append(args[o[1]])
                elif o[0] == "buf":
                    ops.append(buf)
                else:
                    ops.append(self.const(o[1]))
            if buf is None:  # first step allocates the kernel's buffer
                buf = target
                lines.extend(self.step(name, params, ops, operands, buf, allocate=True))
            else:
                lines.extend(self.step(name, params, ops, operands, buf, allocate=False))
        if out is not None or target != buf:
            lines.append(f"{target} = {buf}")
        return lines

    def step(self, name, params, ops, operands, buf, allocate):
        """One fused elementwise step: allocate ``buf`` on the first step, write into it with out= after.
        It calls the op's own forward (a ufunc by name, or the OpDef's forward with ``out=``)."""
        if name != "where":
            fn = UFUNCS[name] if name in UFUNCS else self.const(OPS[name].forward, "F")
            args = ", ".join(ops + [f"{k}={self.const(v)}" for k, v in params.items()])
            return [f"{buf} = {fn}({args})"] if allocate else [f"{fn}({args}, out={buf})"]
        if name == "where":
            if allocate:
                return [f"{buf} = np.where({', '.join(ops)})"]
            c, x, y = ops
            x_is, y_is = operands[1][0] == "buf", operands[2][0] == "buf"
            if x_is and y_is:
                return []
            if y_is:
                return [f"np.copyto({buf}, {x}, where={c})"]
            if x_is:
                return [f"np.copyto({buf}, {y}, where=np.logical_not({c}))"]
            return [f"np.copyto({buf}, {y})", f"np.copyto({buf}, {x}, where={c})"]
        raise AssertionError(name)
