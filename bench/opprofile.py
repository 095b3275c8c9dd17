"""``python -m bench.opprofile NAME [STEPS]``: where a chainrule workload's step spends its time, op by op.

Wraps every primitive op's numpy ``forward`` (``chainrule.ops.op.OPS``: the ops of the forward pass
and the ones the vjp rules run in backward) with a timer, runs ``STEPS`` steps of the workload's
chainrule step, and prints per (op, input shapes, phase) the calls per step and milliseconds per step,
plus the time outside the ops (Python dispatch, autograd engine, optimizer loops). Compare with the
workload's numpy floor to see which op costs more than its bare numpy call.
"""

import sys
import time
from collections import defaultdict

from .workloads import WORKLOADS


def profile(name, steps=20):
    from chainrule.ops.op import OPS

    workload = WORKLOADS[name]
    step = workload.make(workload.frameworks[0])
    for _ in range(3):
        step()
    totals = defaultdict(float)
    counts = defaultdict(int)
    originals = {}

    def wrap(op, forward):
        def timed(*arrays, **params):
            start = time.perf_counter()
            out = forward(*arrays, **params)
            key = (op.name, tuple(tuple(getattr(a, "shape", ())) for a in arrays[:2]))
            totals[key] += time.perf_counter() - start
            counts[key] += 1
            return out

        return timed

    for op in OPS.values():
        originals[op] = op.forward
        op.forward = wrap(op, op.forward)
    try:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - start) / steps
    finally:
        for op, forward in originals.items():
            op.forward = forward
    in_ops = sum(totals.values()) / steps
    print(f"{name}: {wall * 1e3:.2f} ms/step, {in_ops * 1e3:.2f} ms in op forwards, "
          f"{(wall - in_ops) * 1e3:.2f} ms outside them")
    for key, t in sorted(totals.items(), key=lambda kv: -kv[1])[:25]:
        op, shapes = key
        print(f"  {t / steps * 1e3:7.3f} ms  {counts[key] / steps:4.1f}x  {op:<18} {shapes}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] not in WORKLOADS:
        sys.exit(f"usage: python -m bench.opprofile NAME [STEPS]; NAME one of {list(WORKLOADS)}")
    profile(args[0], int(args[1]) if len(args) > 1 else 20)
