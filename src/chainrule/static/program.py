"""Compiling a static graph into a program, and running it.

``compile(outputs)`` copies the graph nodes the outputs (and updates) need into a program IR, runs
the enabled passes (:mod:`.passes`), plans buffers (:mod:`.plan`) and generates one Python function
with one line per node (:mod:`.codegen`, ``program.source()``). The serial executor runs that
function: no per-node dispatch, numpy calls writing into planned buffers. ``threads=N`` runs
independent chains of nodes concurrently on a thread pool instead (numpy releases the GIL in BLAS
and ufuncs); it pays where branches hold large GEMMs, while a step of many small ops runs faster
serially.
"""

import concurrent.futures
import queue
import threading
import time

import numpy as np

from .. import _device, _dtype
from ..autograd.grad_mode import no_grad
from ..errors import ChainruleError, GraphError, ShapeError
from ..tensor import Tensor, _wrap
from .codegen import CodeGen, load
from .cuda import common_device
from .ir import SymbolicTensor
from .node import Dim, dim_bases, reachable, shape_text, type_text
from .passes import parse_optimize, run_passes
from .plan import MemoryPlan, size_source
from .printing import format_nodes, op_title


class FeedError(ChainruleError, ValueError, TypeError):
    """A feed that does not match a placeholder (missing, wrong shape or dtype)."""


def compile(outputs, inputs=None, optimize=True, threads=None, updates=None, device=None):  # noqa: A001
    """Compile symbolic ``outputs`` (a tensor or a sequence) into a runnable :class:`Program`.

    ``inputs``: the placeholders the feed must provide (default: those the outputs need).
    ``optimize``: True (all passes), False (none), a set/dict of pass names
    (``"simplify", "fold", "cse", "dce", "fuse", "memory"``) or one comma-separated string of them.
    ``threads``: run independent nodes on that many threads (default 1: the generated serial
    function). ``updates``: ``{tensor: symbolic new value}`` written into each tensor's array after
    every run (a compiled training step); in-place ops on concrete tensors while building are added
    automatically. ``device``: where the program runs (default: where its variables live, else the CPU);
    feeds must be on it.
    """
    return Program(outputs, inputs, optimize, threads, updates, device)


class Program:
    """A compiled static graph: ``run(feed)`` / ``program(**feed)``, ``ir()``, ``source()``, ``memory_plan()``."""

    def __init__(self, outputs, inputs=None, optimize=True, threads=None, updates=None, device=None):
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
        self.passes = parse_optimize(optimize)
        self._id_counter = len(graph.nodes)
        self.forward_ids = {}
        self._lock = threading.Lock()
        self._pool = None
        self.last_profile = None
        self._last_dims = None
        self._build(outs, inputs, all_updates)
        self.device = common_device((), [n.data._data for n in self.nodes if n.kind == "variable"], device) \
            or _device.CPU
        self.backend = _device.backend_for(self.device)
        self.ir_before = format_nodes(self.nodes)
        self.pass_log = run_passes(self, self.passes)
        self.plan = MemoryPlan(self, reuse=self.passes["memory"] and self.threads == 1)
        if self.passes["memory"]:
            self.pass_log.append({"pass": "memory", "stats": self.plan.stats(), "before": None, "after": None})
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
        needed = reachable(out_nodes + [v for _, v in upd_nodes])
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
        for n in graph.nodes:
            if runnable[n.id]:
                pnodes[n.id] = n.copy(inputs=[pnodes[i.id] for i in n.inputs], params=dict(n.params))
        self.nodes = list(pnodes.values())
        self.placeholders = [pnodes[p.id] for p in ph]
        self.outputs = [pnodes[n.id] for n in out_nodes]
        self.updates = [(t, pnodes[v.id]) for t, v in upd_nodes]
        self._by_name = {p.name: p for p in self.placeholders}
        self._dim_slots = [(p.id, axis, k) for k, p in enumerate(self.placeholders)
                           for axis, s in enumerate(p.shape) if isinstance(s, Dim)]
        # what a host array fed by name must match, for run's fast path: (name, dtype, ndim, fixed sizes)
        self._feed_specs = [(p.name, p.dtype, len(p.shape), tuple(s if type(s) is int else -1 for s in p.shape))
                            for p in self.placeholders]

    # code generation ------------------------------------------------------------------------------------
    def _generate(self):
        serial = CodeGen(self, threaded=False)
        self._source = serial.source
        self._fn = load(serial.source, serial.globals, "<chainrule.static program>")["_program"]
        threaded = CodeGen(self, threaded=True)
        namespace = load(threaded.source, threaded.globals, "<chainrule.static program (per node)>")
        self._node_fns = [(n, namespace[f"_n{n.id}"]) for n in self.nodes if f"_n{n.id}" in namespace]
        self._tinit, self._tfinish = namespace["_init"], namespace["_finish"]
        self._deps, self._users = self._dependencies()
        self._tasks, self._waits, self._wakes = self._chains()

    def _dependencies(self):
        """For the scheduler: per op node the op nodes it waits for, and per op node those waiting for it."""
        op_ids = {n.id for n, _ in self._node_fns}
        deps, users = {}, {}
        for n, _ in self._node_fns:
            ds = {i.id for i in n.inputs if i.id in op_ids}
            ds |= {size_source(self, b)[0] for b in dim_bases(n.params)} & op_ids - {n.id}
            deps[n.id] = ds
            for d in ds:
                users.setdefault(d, []).append(n.id)
        return deps, users

    def _chains(self):
        """The parallel scheduler's tasks: chains of op nodes, a node joining its only dependency's
        chain when it is that dependency's only dependent (nothing could run between the two, so one
        task loses no parallelism and saves a hand-off between threads). Returns the tasks (node ids),
        per task the tasks it waits for and those waiting for it."""
        task_of, tasks = {}, []
        for n, _ in self._node_fns:
            ds = self._deps[n.id]
            single = next(iter(ds)) if len(ds) == 1 else None
            if single is not None and len(self._users[single]) == 1:
                task_of[n.id] = task_of[single]
            else:
                task_of[n.id] = len(tasks)
                tasks.append([])
            tasks[task_of[n.id]].append(n.id)
        waits = [{task_of[d] for d in self._deps[t[0]]} for t in tasks]
        wakes = [sorted({task_of[u] for u in self._users.get(t[-1], ())}) for t in tasks]
        return tasks, waits, wakes

    # running ------------------------------------------------------------------------------------------
    def _feed_arrays(self, feed):
        if feed is not None and len(feed) == len(self._feed_specs) and self.device is _device.CPU:
            arrays = self._fed_host_arrays(feed)
            if arrays is not None:
                return arrays
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
            elif type(value) is np.ndarray or _device.is_device_array(value):
                a = value
            else:
                a = np.asarray(value, dtype=p.dtype if not isinstance(value, np.ndarray) else None)
            if (type(a) is not np.ndarray or self.device is not _device.CPU) and _device.device_of(a) != self.device:
                raise FeedError(f"run: placeholder {p.name!r} was fed data on {_device.device_of(a)}; this program "
                                f"runs on {self.device} (move it with .to('{self.device}'))")
            if a.dtype != p.dtype:
                raise FeedError(f"run: placeholder {p.name!r} expects dtype {_dtype.from_numpy_dtype(p.dtype).name}, "
                                f"got {a.dtype.name} (convert it first, e.g. .astype(np.{p.dtype.name}))")
            shape = p.shape
            if a.ndim != len(shape) or any(type(s) is int and s != d for s, d in zip(shape, a.shape)):
                raise FeedError(f"run: placeholder {p.name!r} expects shape {shape_text(shape)}, got {list(a.shape)}")
            arrays.append(a)
        return arrays

    def _fed_host_arrays(self, feed):
        """The fed arrays when every placeholder is fed by name with a numpy array of its dtype and shape
        (the usual training loop), checked with as little work as possible; else None (the general path
        then checks the feed and names what is wrong)."""
        arrays = []
        for name, dtype, ndim, sizes in self._feed_specs:
            a = feed.get(name)
            if type(a) is not np.ndarray or a.dtype != dtype or a.ndim != ndim:
                return None
            for size, actual in zip(sizes, a.shape):
                if size != actual and size != -1:
                    return None
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
        names = {n.id: op_title(n) for n, _ in self._node_fns}

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
            self._run_tasks(call)
        if records is not None:
            t0 = min((r["start"] for r in records), default=0.0)
            for r in records:
                r["start"] -= t0
                r["end"] -= t0
            self.last_profile = sorted(records, key=lambda r: r["start"])
        return self._tfinish(E)

    def _run_tasks(self, call):
        """Run the chains on the thread pool as their dependencies finish (``call(node id)`` runs one node)."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="chainrule-static")
        finished = queue.SimpleQueue()

        def run(task):
            try:
                for nid in self._tasks[task]:
                    call(nid)
                finished.put((task, None))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
                finished.put((task, exc))

        remaining = [len(w) for w in self._waits]
        running = 0
        for task, count in enumerate(remaining):
            if count == 0:
                self._pool.submit(run, task)
                running += 1
        while running:
            task, exc = finished.get()
            running -= 1
            if exc is not None:
                raise exc
            for u in self._wakes[task]:
                remaining[u] -= 1
                if remaining[u] == 0:
                    self._pool.submit(run, u)
                    running += 1

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
        return self.plan.report(self._dims_for(feed_shapes))

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

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


_MISSING = object()
