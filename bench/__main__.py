"""``python -m bench [NAME ...]``: run the workloads (all by default), print ratios to PyTorch and a summary."""

import os
import sys
import time

from .epoch_workloads import EPOCH_WORKLOADS
from .gpu_workloads import GPU_WORKLOADS
from .harness import report, run, summary
from .workloads import NUMPY_FLOORS, WORKLOADS

EVERY = {**WORKLOADS, **GPU_WORKLOADS, **EPOCH_WORKLOADS}
GROUPS = {"gpu": GPU_WORKLOADS, "epoch": EPOCH_WORKLOADS}  # run only when named: a GPU; minutes per epoch


def main(argv):
    """All CPU step workloads by default; ``gpu`` runs the GPU workloads (a CUDA GPU, CuPy and CUDA PyTorch),
    ``epoch`` the whole-epoch ones."""
    names = [n for arg in argv for n in GROUPS.get(arg, [arg])] or list(WORKLOADS)
    unknown = [n for n in names if n not in EVERY]
    if unknown:
        print(f"unknown workload(s) {unknown}; choose from {list(EVERY)}, 'gpu' or 'epoch'", file=sys.stderr)
        return 2
    threads = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print("threads: " + " ".join(f"{k}={v}" for k, v in threads.items()) + f"  load average: {_load()}", flush=True)
    start = time.perf_counter()
    results = []
    for name in names:
        workload = EVERY[name]
        timings = run(workload, floor=NUMPY_FLOORS.get(name))
        results.append((workload, timings))
        print(report(workload, timings), flush=True)
    print(f"\n{summary(results)}\ntotal {time.perf_counter() - start:.0f} s, load average: {_load()}", flush=True)
    return 0


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
