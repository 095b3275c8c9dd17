"""Memory planning: which results share memory, when each dies, and which buffers ops write into.

Every result has *roots*: the fresh arrays whose memory it may hold (a view shares its input's; an
op declared ``fresh`` is its own). A root lives until its last reader. An op whose forward takes
``out=`` writes into a planned buffer, reused once the previous holder is dead; an elementwise one
may overwrite a dying input in place, and an update may be written straight into its variable.
"""

import numpy as np

from .. import _device
from ..errors import GraphError
from ..ops.infer import known
from .node import Dim, dim_bases


def size_source(prog, base):
    """(program node id, axis, is a placeholder) whose run-time size gives the unknown size ``base``."""
    r = base.find()
    return prog.forward_ids.get(r.node.id, r.node.id), r.axis, r.node.kind == "placeholder"


def writes_out(n):
    """Whether node ``n`` can write its result into a given array."""
    return n.kind == "fused" or (n.kind == "op" and n.op.takes_out)


def _only_first_step(n, x):
    """Whether kernel ``n`` reads ``x`` only in its first step (so its output may overwrite x)."""
    if n.kind != "fused":
        return True
    k = n.inputs.index(x) if x in n.inputs else -1
    return all(("x", k) not in operands for _, _, operands in n.steps[1:])


def _last_step_may_write(n, x, roots):
    """Whether kernel ``n`` may write its last step into ``x`` although earlier steps read it: they
    write the kernel's own buffer, and every step reads ``x`` itself (no view of it), element by
    element, so the last step reads each element of ``x`` just before it overwrites it."""
    if n.kind != "fused" or len(n.steps) < 2:
        return False
    return all(i is x or x.id not in roots[i.id] for i in n.inputs)


def _start_resolvable(shape):
    """Whether the sizes of ``shape`` are known when the run starts (from the feed, not from results)."""
    return all(b.find().node.kind == "placeholder" for s in shape if isinstance(s, Dim) for b in s.bases)


def _elsewhere(t, backend):
    """Whether tensor ``t`` lives off the program's device (a host step count of a GPU program): not written into."""
    return _device.backend_of(t._data) is not backend


class MemoryPlan:
    """``roots``/``fresh``/``end`` per node id; ``slots`` (shape, dtype) of the planned buffers and
    ``assign`` (node id -> slot); ``var_out``/``var_last`` (node id -> update index: the kernel, or
    only its last step, writes into the variable); ``inplace`` (node id -> the input it overwrites)."""

    def __init__(self, prog, reuse):
        self.prog = prog
        self.roots, self.fresh = self._roots(prog.nodes)
        self.end = self._last_uses(prog)
        self.slots, self.assign, self.var_out, self.var_last, self.inplace = [], {}, {}, {}, {}
        if reuse:
            self._updates_in_place(prog)
            self._assign_buffers(prog)

    @staticmethod
    def _roots(nodes):
        roots, fresh = {}, {}
        for n in nodes:
            if n.kind == "fused" or (n.kind == "op" and n.op.fresh):
                roots[n.id], fresh[n.id] = {n.id}, True
            elif n.kind == "op" and n.op.view:
                roots[n.id] = set(roots[n.inputs[0].id])
            elif n.kind == "op":  # neither fresh nor a view: it may hold any input's memory
                roots[n.id] = {n.id}.union(*(roots[i.id] for i in n.inputs))
                fresh[n.id] = False
            else:
                roots[n.id] = {n.id}
        return roots, fresh

    def _last_uses(self, prog):
        roots = self.roots
        end = {n.id: k for k, n in enumerate(prog.nodes)}
        for k, n in enumerate(prog.nodes):
            read = [i.id for i in n.inputs] + [size_source(prog, b)[0] for b in dim_bases(n.params)]
            for i in read:
                for r in roots.get(i, ()):
                    end[r] = max(end[r], k)
        for o in prog.outputs + [v for _, v in prog.updates]:
            for r in roots[o.id]:
                end[r] = len(prog.nodes)
        return end

    def _updates_in_place(self, prog):
        """Updates whose kernel may write into the variable's own array (all steps, or the last)."""
        index = {n.id: k for k, n in enumerate(prog.nodes)}
        var_nodes = {id(n.data): n for n in prog.nodes if n.kind == "variable"}
        readers = {}
        for k, n in enumerate(prog.nodes):
            for i in n.inputs:
                for r in self.roots[i.id]:
                    readers.setdefault(r, []).append((k, n))
        out_ids = {o.id for o in prog.outputs}
        for u, (t, v) in enumerate(prog.updates):
            if v.id in out_ids or not writes_out(v) or v.dtype != t._data.dtype or _elsewhere(t, prog.backend) \
                    or tuple(v.shape) != tuple(t._data.shape) or any(v is w for _, w in prog.updates[:u]):
                continue
            w = var_nodes.get(id(t))
            mode = "all"
            for k, reader in readers.get(w.id, ()) if w is not None else ():
                if reader is v:
                    if not _only_first_step(v, w) or w not in v.inputs:
                        mode = "last" if _last_step_may_write(v, w, self.roots) and mode == "all" else None
                elif k >= index[v.id]:
                    mode = None
                if mode is None:
                    break
            if mode == "all":
                self.var_out[v.id] = u
            elif mode == "last" and _start_resolvable(v.shape):
                self.var_last[v.id] = u

    def _assign_buffers(self, prog):
        roots, end, slots, assign = self.roots, self.end, self.slots, self.assign
        escaping = set().union(*(roots[o.id] for o in prog.outputs))
        free = {}
        owners = {}  # slot -> node id currently holding it
        for k, n in enumerate(prog.nodes):
            if n.id not in self.var_out and writes_out(n) and n.id not in escaping and len(n.shape) >= 1 \
                    and _start_resolvable(n.shape):
                key = (tuple(n.shape), n.dtype.str)
                chosen = None
                if n.kind == "fused" or n.op.elementwise:
                    for x in n.inputs:
                        if x.id in assign and end[x.id] == k and roots[x.id] == {x.id} \
                                and (tuple(x.shape), x.dtype.str) == key and _only_first_step(n, x):
                            chosen = assign[x.id]
                            self.inplace[n.id] = x
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
                if n.id in self.var_last:  # the buffer only holds the kernel's intermediate
                    free.setdefault(key, []).append(chosen)
                    owners[chosen] = None
            # release the buffers whose last use is this node
            for i in {x.id for x in n.inputs} | {n.id}:
                for r in roots.get(i, ()):
                    if end[r] == k and r in assign and owners.get(assign[r]) == r:
                        free.setdefault(slots[assign[r]], []).append(assign[r])
                        owners[assign[r]] = None

    def stats(self):
        return {"buffers": len(self.slots), "nodes_in_buffers": len(self.assign), "in_place": len(self.inplace),
                "updates_in_place": len(self.var_out) + len(self.var_last)}

    # --- bytes ---------------------------------------------------------------------------------------------
    def report(self, dims):
        """Bytes of one run's arrays, the run-time sizes given as ``dims``: {(node id, axis): size}."""

        def nbytes(shape, dtype):
            total = 1
            for s in shape:
                total *= self._size_value(s, dims)
            return total * np.dtype(dtype).itemsize

        sizes = {n.id: nbytes(n.shape, n.dtype) for n in self.prog.nodes if self.fresh.get(n.id)}
        naive = sum(sizes.values())
        planned = self._planned_peak(sizes, [nbytes(shape, dt) for shape, dt in self.slots])
        return {"naive_bytes": naive, "peak_without_reuse": self._peak(sizes), "planned_peak_bytes": planned,
                "bytes_saved": naive - planned, "buffer_bytes": sum(nbytes(shape, dt) for shape, dt in self.slots),
                "buffers": len(self.slots), "in_place_nodes": len(self.inplace),
                "updates_in_place": len(self.var_out) + len(self.var_last),
                "update_bytes_in_place": sum(sizes.get(nid, 0) for nid in self.var_out)}

    def _size_value(self, s, dims):
        if known(s):
            return int(s)
        value = s.coef
        for b in s.bases:
            nid, axis, _ = size_source(self.prog, b)
            if (nid, axis) not in dims:
                raise GraphError("memory_plan: symbolic sizes are unknown; pass feed_shapes={placeholder: shape} "
                                 "or run the program once first")
            value *= dims[(nid, axis)]
        return value

    def _planned_peak(self, sizes, slot_sizes):
        """Peak of live bytes in one run: each buffer from its first writer to its last reader's end,
        plus the arrays not planned (fresh, freed after their last use)."""
        first, last = {}, {}
        for k, n in enumerate(self.prog.nodes):
            slot = self.assign.get(n.id)
            if slot is not None:
                first.setdefault(slot, k)
                last[slot] = max(last.get(slot, k), self.end.get(n.id, k))
        starts = {}
        for slot, k in first.items():
            starts.setdefault(k, []).append((slot_sizes[slot], last[slot]))
        unplanned = {nid: b for nid, b in sizes.items() if nid not in self.assign and nid not in self.var_out}
        return self._peak(unplanned, starts)

    def _peak(self, sizes, starts=None):
        """The most bytes live at once: ``sizes`` of node results, each live from its node to its last
        use, plus ``starts``: {node index: [(bytes, last node index)]} of buffers."""
        live = peak = 0
        frees = {}
        for k, n in enumerate(self.prog.nodes):
            for nbytes, last in (starts or {}).get(k, ()):
                live += nbytes
                frees.setdefault(last, []).append(nbytes)
            if n.id in sizes:
                live += sizes[n.id]
                frees.setdefault(self.end.get(n.id, k), []).append(sizes[n.id])
            peak = max(peak, live)
            for b in frees.pop(k, ()):
                live -= b
        return peak
