"""Map OpenBLAS's GEMM packing buffer into memory once, at import, so that later GEMMs run at full speed.

OpenBLAS packs GEMM operands into a 32 MiB buffer that it maps once and pages in on first touch. A
GEMM with a short output dimension (a convolution's with 64 output channels, say) touches only its
first ~100 KiB (resident set of the mapping: 88 KiB; 360 KiB after one wider GEMM). Most likely the
micro-kernel prefetches further ahead into pages that are not mapped yet, each such prefetch costing
a page walk that finds nothing (inferred: this VM exposes no hardware counters). Measured
on a 2-core AMD EPYC, one thread, OpenBLAS 0.3.31: ``(1024 x 576) @ (576 x 64)`` takes 4.4 ms while
only such GEMMs have run, and 2.2 ms for the rest of the process once any wider GEMM (here 512 x 512
x 512, ~10 ms once) has paged the buffer in; conv_fwd_bwd ran 1.8x faster. PyTorch does not see this:
its GEMMs are MKL's and oneDNN's. Set ``CHAINRULE_BLAS_WARMUP=0`` to skip it.
"""

import os

import numpy as np

_WARMUP_SIZE = 512  # a square float32 GEMM this wide packs panels across the whole working part of the buffer


def warm_up():
    """Run one GEMM wide enough to page in the packing buffer (of every BLAS thread); False when disabled."""
    if os.environ.get("CHAINRULE_BLAS_WARMUP", "1") == "0":
        return False
    a = np.ones((_WARMUP_SIZE, _WARMUP_SIZE), np.float32)
    np.matmul(a, a)
    return True
