"""Generating a program's Python source: one line per node, numpy calls writing into planned buffers.

The serial form is one function ``_program(p0, p1, ...)`` with locals ``v12``; the threaded form is
one function per node reading and writing ``E[12]``, for the scheduler. An op is written as its
declared ``lower`` expression when it has one, else as a call of its forward (a numpy ufunc by
name); a fused kernel's steps pass ``out=`` so each writes into the kernel's one buffer.
On a device (:mod:`.cuda`) ``np`` in the generated code is the device's array module, the ops'
forwards are called (lowerings are numpy spellings) and each fused kernel is one launch.
"""

import numpy as np

from .. import _device
from ..tensor import _wrap
from . import cuda
from .node import Dim, type_text
from .passes import fusable_op
from .plan import size_source
from .printing import format_node, node_expr


def load(source, namespace, filename):
    """Execute generated ``source`` in a copy of ``namespace``; returns the filled namespace."""
    namespace = dict(namespace)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace


class CodeGen:
    """Emits the program as Python: serial (one function, locals ``v12``) or per node (``E[12]``)."""

    def __init__(self, prog, threaded):
        self.prog = prog
        self.plan = prog.plan
        self.threaded = threaded
        self.backend = prog.backend
        self.host = cuda.host_scalars(prog)  # a device program's scalars of hyperparameters: numpy, on the host
        self.globals = {"np": prog.backend.xp, "_wrap": _wrap}
        self._k = 0
        self._consts = {n.id: self.const(n.data, "C") for n in prog.nodes if n.kind == "constant"}
        for k, (t, _) in enumerate(prog.updates):
            self.globals[f"T{k}"] = t
        self.source = self._threaded() if threaded else self._serial()

    # --- names and constants ---
    def const(self, value, hint="K"):
        if isinstance(value, bool) or value is None or type(value) is int:
            return repr(value)
        if isinstance(value, float) and np.isfinite(value):
            return repr(value)
        if isinstance(value, np.dtype):
            hint = "DT"
        name = f"{hint}{self._k}"
        self._k += 1
        self.globals[name] = cuda.on_device(self.backend, value)
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

    def size_expr(self, b):
        nid, axis, is_ph = size_source(self.prog, b)
        if self.threaded:
            return f"E[{nid}].shape[{axis}]"
        return f"d{nid}_{axis}" if is_ph else f"v{nid}.shape[{axis}]"

    def param(self, v):
        """Source for a parameter value: literals inline, symbolic sizes as expressions, the rest named."""
        if isinstance(v, Dim):
            parts = ([str(v.coef)] if v.coef != 1 else []) + [self.size_expr(b) for b in v.bases]
            return f"({' * '.join(parts)})"
        if isinstance(v, tuple) and (any(isinstance(x, Dim) for x in v) or all(type(x) is int for x in v)):
            return "(" + ", ".join(self.param(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        return self.const(v)

    # --- whole program ---
    def _serial(self):
        prog, plan = self.prog, self.plan
        args = ", ".join(f"p{p.id}" for p in prog.placeholders)
        header, body = [], [f"def _program({args}):"]
        for p in prog.placeholders:
            body += [f"    d{p.id}_{axis} = p{p.id}.shape[{axis}]" for axis, s in enumerate(p.shape)
                     if isinstance(s, Dim)]
        for n in prog.nodes:
            if n.kind == "variable":
                self.globals[f"V{n.id}"] = n.data
                body.append(f"    w{n.id} = {cuda.variable_source(self, n)}{'':<28}"
                            f"# {format_node(n).split('  :', 1)[1].strip()}")
        slot_names = self._buffers(header, body)
        tag = None
        for n in prog.nodes:
            if n.kind not in ("op", "fused"):
                continue
            if n.tag != tag:
                tag = n.tag
                body.append(f"    # --- {tag} ---")
            out = last_out = None
            if n.id in plan.var_out:
                out = f"T{plan.var_out[n.id]}._data"
            elif n.id in plan.assign:
                out = slot_names[plan.assign[n.id]]
                if n.id in plan.var_last:
                    last_out = f"T{plan.var_last[n.id]}._data"
            lines = self.emit(n, out, last_out)
            lines[-1] += f"  # {node_expr(n)} : {type_text(n.shape, n.dtype)}"
            body.extend("    " + line for line in lines)
        body.extend("    " + line for line in self._finish())
        return "\n".join(header + body) + "\n"

    def _buffers(self, header, body):
        """Names of the planned buffers: allocated once (static shapes), or per symbolic sizes (cached)."""
        slots = self.plan.slots
        if not slots:
            return {}
        if all(all(type(s) is int for s in shape) for shape, _ in slots):
            for k, (shape, dt) in enumerate(slots):
                self.globals[f"B{k}"] = self.backend.xp.empty(tuple(shape), np.dtype(dt))
            return {k: f"B{k}" for k in range(len(slots))}
        keys = sorted({(p.id, axis) for p in self.prog.placeholders for axis, s in enumerate(p.shape)
                       if isinstance(s, Dim)})
        sizes = ", ".join(f"d{i}_{a}" for i, a in keys)
        header += ["def _alloc(key):", f"    {sizes}, = key",
                   "    return [" + ", ".join(f"np.empty({self.param(tuple(shape))}, np.{np.dtype(dt).name})"
                                          for shape, dt in slots) + "]", ""]
        self.globals["_BUFS"] = {}
        names = [f"b{k}" for k in range(len(slots))]
        body += [f"    _key = ({sizes},)", "    _bufs = _BUFS.get(_key)", "    if _bufs is None:",
                 "        if len(_BUFS) > 8:", "            _BUFS.clear()",
                 "        _bufs = _BUFS[_key] = _alloc(_key)",
                 "    " + ", ".join(names) + (", = _bufs" if len(names) == 1 else " = _bufs")]
        return dict(enumerate(names))

    def _finish(self):
        """Lines writing the updates into their tensors and returning fresh output arrays."""
        prog, plan = self.prog, self.plan
        lines = ["# --- updates ---"] if prog.updates else []
        for k, (t, v) in enumerate(prog.updates):
            if self.threaded or (v.id not in plan.var_out and v.id not in plan.var_last):
                lines.append(cuda.update_source(self, k, t, v))
            lines.append(f"T{k}._version[0] += 1")
        outs = []
        seen = set()
        for o in prog.outputs:
            fresh = (plan.fresh.get(o.id, False) and plan.roots[o.id] == {o.id}
                     and o.id not in plan.assign and o.id not in plan.var_out and o.id not in self.host)
            outs.append(self.ref(o) if fresh and o.id not in seen else f"np.array({self.ref(o)})")
            seen.add(o.id)
        return lines + ["return (" + ", ".join(outs) + ("," if len(outs) == 1 else "") + ")"]

    def _threaded(self):
        prog = self.prog
        lines = ["def _init(E, " + ", ".join(f"p{p.id}" for p in prog.placeholders) + "):"]
        lines += [f"    E[{p.id}] = p{p.id}" for p in prog.placeholders]
        for n in prog.nodes:
            if n.kind == "variable":
                self.globals[f"V{n.id}"] = n.data
                lines.append(f"    E[{n.id}] = {cuda.variable_source(self, n)}")
            elif n.kind == "constant":
                lines.append(f"    E[{n.id}] = {self._consts[n.id]}")
        lines += ["    return E", ""]
        for n in prog.nodes:
            if n.kind in ("op", "fused"):
                lines.append(f"def _n{n.id}(E):  # {format_node(n).split('  #')[0].strip()}")
                lines.extend("    " + line for line in self.emit(n, None))
                lines.append("")
        lines.append("def _finish(E):")
        lines.extend("    " + line for line in self._finish())
        return "\n".join(lines) + "\n"

    # --- one node ---
    def emit(self, n, out, last_out=None):
        """Lines computing node ``n`` into ``out`` (a planned buffer or a variable's array) or a new array."""
        target = self.ref(n)
        if n.id in self.host:
            return [f"{target} = {self.call(n.op, [self.ref(i) for i in n.inputs], n.params, n.dtype, host=True)}"]
        args = [cuda.operand(self, i, n) for i in n.inputs]
        if n.kind == "fused" and self.backend is not _device.HOST:
            return cuda.emit_kernel(self, n, args, last_out or out, target)
        if n.kind == "fused":
            steps = n.steps
        elif fusable_op(n.op):
            steps = [(n.op, n.params, [("x", k) for k in range(len(args))])]
        else:
            return [f"{target} = {self.call(n.op, args, n.params, n.dtype, out)}"]
        inplace = self.plan.inplace.get(n.id) if out is not None else None
        alias = n.inputs.index(inplace) if inplace is not None and inplace.id not in self.host else None
        return self.emit_steps(steps, args, n.dtype, out, target, alias, last_out)

    def call(self, op, args, params, dtype, out=None, host=False):
        """Source applying ``op`` (result ``dtype``): its declared lowering, else a call of its forward
        (``out=`` when given; ``host``: numpy's own, in a device program)."""
        rendered = {k: self.param(v) for k, v in params.items()}
        if op.lower is not None and out is None and self.backend is _device.HOST:
            return op.lower(args, rendered, f"np.{dtype.name}" if hasattr(np, dtype.name) else self.const(dtype))
        f = op.forward
        named = not host and isinstance(f, np.ufunc) and getattr(np, f.__name__, None) is f
        fn = f"np.{f.__name__}" if named else self.const(f, "F")
        kwargs = [f"{k}={v}" for k, v in rendered.items()] + ([f"out={out}"] if out is not None else [])
        return f"{fn}({', '.join(args + kwargs)})"

    def emit_steps(self, steps, args, dtype, out, target, alias=None, last_out=None):
        """Lines evaluating kernel ``steps``: into ``out`` (a planned buffer) or a fresh array. ``alias``:
        the input index whose buffer ``out`` is (read by the first step only); ``last_out``: the last step
        writes there instead (a variable updated in place)."""
        lines = []
        buf = out
        for s, (op, params, operands) in enumerate(steps):
            if s == 0 and alias is not None:
                operands = [("buf",) if o == ("x", alias) else o for o in operands]
            ops = [buf if o[0] == "buf" else args[o[1]] if o[0] == "x" else self.const(o[1]) for o in operands]
            if last_out is not None and s == len(steps) - 1:
                buf = last_out
            if buf is None:  # the first step allocates the kernel's buffer
                buf = target
                lines.append(f"{buf} = {self.call(op, ops, params, dtype)}")
            else:
                lines.append(self.call(op, ops, params, dtype, out=buf))
        if out is not None or target != buf:
            lines.append(f"{target} = {buf}")
        return lines
