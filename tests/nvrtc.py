"""Compiling CuPy ElementwiseKernel sources to PTX with NVRTC, without a GPU or a driver.

NVRTC (the ``nvidia-cuda-nvrtc`` wheel's ``libnvrtc.so``) compiles CUDA C++ on the CPU. A kernel's
body is wrapped the way CuPy wraps it: each parameter is a local of its element's type (a reference
for outputs, an indexable array for ``raw`` ones), ``i`` is the element index, type placeholders
(``T``) are typedefs. So a body that NVRTC accepts here is one CuPy can compile on a GPU, up to
CuPy's own headers (which these kernels do not use).
"""

import ctypes
import glob
import site

import numpy as np

CTYPES = {"float32": "float", "float64": "double", "bool": "bool", "int8": "signed char", "uint8": "unsigned char",
          "int16": "short", "int32": "int", "int64": "long long"}
PRELUDE = """
typedef decltype((char*)0 - (char*)0) ptrdiff_t;
template <typename V> struct Raw {
    V* data;
    __device__ V& operator[](ptrdiff_t k) const { return data[k]; }
};
"""


def library():
    """The NVRTC shared library, or None where it is not installed."""
    for path in sorted(sum((glob.glob(f"{d}/nvidia/cu*/lib/libnvrtc.so*") + glob.glob(f"{d}/nvidia/*/lib/libnvrtc.so*")
                            for d in site.getsitepackages()), [])):
        if "builtins" not in path and "alt" not in path:
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    return None


def _parse(params, types):
    """[(is_raw, C type, name)] of a CuPy parameter list; ``types`` binds placeholders (``T``) to dtypes."""
    parsed = []
    for param in (p.strip() for p in params.split(",") if p.strip()):
        words = param.split()
        raw = words[0] == "raw"
        kind, name = words[-2], words[-1]
        ctype = CTYPES[np.dtype(types[kind]).name] if kind in types else CTYPES[np.dtype(kind).name]
        parsed.append((raw, ctype, name))
    return parsed


def translation_unit(params, out, body, name, types):
    """The CUDA source of an ElementwiseKernel over contiguous arrays, as CuPy would launch it."""
    ins, outs = _parse(params, types), _parse(out, types)
    typedefs = "".join(f"typedef {CTYPES[np.dtype(d).name]} {k};\n" for k, d in types.items())
    args = [f"Raw<{c}> {n}" if raw else f"const {c}* _{n}" for raw, c, n in ins]
    args += [f"Raw<{c}> {n}" if raw else f"{c}* _{n}" for raw, c, n in outs] + ["ptrdiff_t _size"]
    locals_ = [f"const {c} {n} = _{n}[i];" for raw, c, n in ins if not raw]
    locals_ += [f"{c} &{n} = _{n}[i];" for raw, c, n in outs if not raw]
    return (PRELUDE + typedefs + f'extern "C" __global__ void {name}({", ".join(args)}) {{\n'
            "  for (ptrdiff_t i = blockIdx.x * (ptrdiff_t)blockDim.x + threadIdx.x; i < _size;"
            " i += (ptrdiff_t)blockDim.x * gridDim.x) {\n    " + "\n    ".join(locals_) + f"\n{body}\n  }}\n}}\n")


def compile_ptx(lib, source, name="kernel.cu"):
    """PTX of ``source`` for sm_90 (an H100/H200); raises with NVRTC's log when it does not compile."""
    program = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(), 0, None, None))
    try:
        options = (ctypes.c_char_p * 2)(b"--gpu-architecture=compute_90", b"--std=c++17")
        status = lib.nvrtcCompileProgram(program, 2, options)
        if status != 0:
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(program, log)
            raise RuntimeError(f"NVRTC could not compile {name}:\n{log.value.decode()}\n--- source:\n{source}")
        size = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetPTXSize(program, ctypes.byref(size)))
        ptx = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetPTX(program, ptx))
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def _check(lib, status):
    if status != 0:
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise RuntimeError(f"NVRTC error {status}: {lib.nvrtcGetErrorString(status).decode()}")
