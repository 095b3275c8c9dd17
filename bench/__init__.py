"""Benchmarks: each workload runs on chainrule and on PyTorch in the same process; ratios are reported.

Importing the package pins numpy's and PyTorch's thread pools to one thread unless the variables are
already set (numpy reads them when first imported, which happens after this), as ``make bench`` does.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
