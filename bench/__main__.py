"""``python -m bench [NAME ...]``: run the workloads (all by default) and print ratios to PyTorch."""

import sys

from .harness import report, run, time_step
from .workloads import NUMPY_FLOORS, WORKLOADS


def main(argv):
    names = argv or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}", file=sys.stderr)
        return 2
    for name in names:
        workload = WORKLOADS[name]
        timings = run(workload)
        if name in NUMPY_FLOORS:
            timings["numpy"] = time_step(NUMPY_FLOORS[name](None), workload.rounds, workload.steps_per_round)
        print(report(workload, timings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
