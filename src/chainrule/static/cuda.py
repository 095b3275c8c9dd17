"""Compiled programs on a GPU: the program's device, and each fused elementwise chain as one kernel.

A program runs where its data lives: :func:`common_device` reads the device off the tensors it was
traced with and its variables, and the generated code then calls the ops' forwards with that
device's array module. A fused chain of elementwise steps (:func:`~.passes.elementwise_fusion`)
becomes one :class:`FusedKernel`: on CuPy one generated ``ElementwiseKernel`` (one launch instead of
one per step, no intermediate arrays), its C body made of the C expressions the ops declare
(``OpDef.cuda``). The simulated GPU of CPU-only CI has no CUDA compiler: its backend runs the same
chain step by step with its own array module (:meth:`FusedKernel.evaluate`), so the program's
structure, buffers and devices are tested everywhere, and the kernel text is tested as text.
"""

import math

import numpy as np

from .. import _device

CTYPES = {"float16": "float16", "float32": "float", "float64": "double", "bool": "bool", "int8": "signed char",
          "uint8": "unsigned char", "int16": "short", "int32": "int", "int64": "long long"}


def common_device(feeds, variables=(), device=None):
    """Where a program runs: the one device of its ``feeds``, of ``device`` when given and of its
    ``variables`` beside the host (host ones join any device, see :func:`variable_source`); None when
    none of them tells. Arrays on two devices raise PyTorch's error."""
    devices = [_device.indexed(device)] if device is not None else []
    devices += [_device.device_of(a) for a in feeds]
    devices = list(dict.fromkeys(devices + [_device.device_of(a) for a in variables if type(a) is not np.ndarray]))
    if len(devices) > 1:
        raise RuntimeError(f"compile: Expected all tensors to be on the same device, but found at least two devices, "
                           f"{devices[0]} and {devices[1]}!")
    return devices[0] if devices else None


def _host_on_device(backend, tensor):
    return backend is not _device.HOST and type(tensor._data) is np.ndarray


def host_scalars(prog):
    """Ids of the values a device program computes on the host with numpy: 0-d ones made only of host
    scalars and numbers (an optimizer's hyperparameters, step counts, bias corrections). On the GPU each
    would be a kernel launch; as numpy scalars they cost none, and kernels and ufuncs take them as
    scalar arguments (:func:`operand`)."""
    host = set()
    if prog.backend is _device.HOST:
        return host
    for n in prog.nodes:
        if n.kind == "variable":
            scalar = type(n.data._data) is np.ndarray and n.data._data.ndim == 0
        elif n.kind == "constant":
            scalar = not isinstance(n.data, np.ndarray)
        else:
            scalar = n.kind == "op" and n.op.pure and len(n.shape) == 0 and all(i.id in host for i in n.inputs)
        if scalar:
            host.add(n.id)
    return host


def operand(codegen, node, consumer):
    """Source of ``node`` read by ``consumer``: a host scalar of a device program goes to a kernel or a
    ufunc as a numpy scalar (no copy), to any other forward as a device array."""
    ref = codegen.ref(node)
    if node.id not in codegen.host or node.kind == "constant":
        return ref
    scalar = consumer.kind == "fused" or isinstance(consumer.op.forward, np.ufunc)
    return f"{ref}[()]" if scalar else f"np.asarray({ref})"


def variable_source(codegen, node):
    """Source reading variable ``node``'s array at run time. A device program copies host arrays onto its
    device (what tracing made on the host: a symbolic tensor has no device, so ``full_like`` of one is a
    host tensor), except the scalars it computes with on the host (:func:`host_scalars`)."""
    read = f"V{node.id}._data"
    return f"np.asarray({read})" if _host_on_device(codegen.backend, node.data) and node.id not in codegen.host \
        else read


def update_source(codegen, k, target, value):
    """The line writing update ``k`` (node ``value``) into ``target``'s array, across the host boundary
    where a device program updates a host tensor (an optimizer's step count, kept on the host as PyTorch
    keeps it) or a device tensor from a host scalar."""
    ref = codegen.ref(value)
    if _host_on_device(codegen.backend, target):
        codegen.globals["_to_host"] = _device.to_host
        return f"T{k}._data[...] = _to_host({ref})"
    return f"np.copyto(T{k}._data, {'np.asarray(' + ref + ')' if value.id in codegen.host else ref})"


def on_device(backend, value):
    """A constant of the program (host data) on the program's device; numbers and the rest unchanged."""
    if backend is _device.HOST or not isinstance(value, np.ndarray):
        return value
    return backend.from_host(value, 0)


def literal(value):
    """A Python number as C source (exact: repr round-trips; infinities and NaN as expressions)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not math.isfinite(value):
        return "(0.0 / 0.0)" if math.isnan(value) else f"({'-' if value < 0 else ''}1.0 / 0.0)"
    return repr(value)


def expression(op, operands, params):
    """The C expression of ``op`` on the C ``operands``, its parameters rendered as C literals."""
    rule = op.cuda
    if rule is None:
        raise NotImplementedError(f"compile: op {op.name} declares no CUDA expression (OpDef.cuda)")
    rendered = {k: None if v is None else literal(v) for k, v in params.items()}
    return rule(*operands, **rendered) if callable(rule) else rule.format(*operands, **rendered)


class FusedKernel:
    """One fused chain of elementwise ``steps`` (``[(op, params, operands)]``, see :class:`~.node.Node`)
    reading inputs of ``in_dtypes`` and producing ``dtype``: called ``kernel(*inputs)`` or
    ``kernel(*inputs, out)``, as CuPy calls an ElementwiseKernel."""

    def __init__(self, steps, in_dtypes, dtype):
        self.steps = steps
        self.in_dtypes = [np.dtype(d) for d in in_dtypes]
        self.dtype = np.dtype(dtype)
        self.name = "chainrule_fused_" + "_".join(op.name for op, _, _ in steps)

    def source(self):
        """(in_params, out_params, body, name): the arguments of ``cupy.ElementwiseKernel``. Every step is
        one local of the kernel's type (rounded per step as numpy rounds), the last one is the output."""
        params = ", ".join(f"{d.name} x{k}" for k, d in enumerate(self.in_dtypes))
        ctype = CTYPES[self.dtype.name]
        lines = []
        for s, (op, step_params, operands) in enumerate(self.steps):
            lines.append(f"const {ctype} s{s} = {expression(op, self._c_operands(s, operands), step_params)};")
        lines.append(f"out = s{len(self.steps) - 1};")
        return params, f"{self.dtype.name} out", "\n".join(lines), self.name

    def _c_operands(self, s, operands):
        """C source of a step's operands; a constant is cast to the type the step computes in (that of
        its non-bool array operands), so ``x * 2`` on floats stays in float as numpy's does."""
        dtypes = [self.dtype if o[0] == "buf" else self.in_dtypes[o[1]] for o in operands if o[0] != "c"]
        numeric = [d for d in dtypes if d.kind != "b"] or dtypes
        cast = CTYPES[np.result_type(*numeric).name] if numeric else None
        return [f"s{s - 1}" if o[0] == "buf" else f"x{o[1]}" if o[0] == "x"
                else f"(({cast}){literal(o[1])})" if cast else literal(o[1]) for o in operands]

    def evaluate(self, *arrays):
        """The chain run step by step with the arrays' own module, each op's forward writing into one fresh
        buffer, then copied into ``out`` when given (which may be an input a later step reads: a kernel
        reads every input before it writes): how a backend without a CUDA compiler runs the kernel."""
        inputs, out = (arrays[:-1], arrays[-1]) if len(arrays) > len(self.in_dtypes) else (arrays, None)
        buf = None
        for op, params, operands in self.steps:
            values = [buf if o[0] == "buf" else inputs[o[1]] if o[0] == "x" else o[1] for o in operands]
            buf = op.forward(*values, **params) if buf is None else op.forward(*values, **params, out=buf)
        if out is None:
            return buf
        out[...] = buf
        return out


def emit_kernel(codegen, node, args, out, target):
    """Lines launching fused ``node`` as one kernel of the program's backend, into ``out`` or a fresh array."""
    kernel = FusedKernel(node.steps, [i.dtype for i in node.inputs], node.dtype)
    name = codegen.const(codegen.prog.backend.fused_kernel(kernel), "cuda_kernel")
    if out is None:
        return [f"{target} = {name}({', '.join(args)})"]
    return [f"{name}({', '.join(args + [out])})", f"{target} = {out}"]
