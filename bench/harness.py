"""The benchmark harness: time a step function in rounds, take medians, compare frameworks.

Run single-threaded (``make bench`` sets the thread variables): the machine throttles when both
cores are busy, so multi-threaded timings would not be comparable from run to run.
"""

import statistics
import time
from dataclasses import dataclass


@dataclass
class Workload:
    """A named benchmark: ``make(framework)`` returns a zero-argument step, for 'chainrule' or 'torch'."""

    name: str
    make: object
    unit_count: int = 1  # how many units one step holds (ops, samples), to report time per unit
    unit: str = "step"
    rounds: int = 7
    steps_per_round: int = 50
    frameworks: tuple = ("chainrule", "torch")


def time_step(step, rounds, steps_per_round):
    """Median over rounds of the mean time per step, after one warm-up round."""
    for _ in range(max(1, steps_per_round // 5)):
        step()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps_per_round):
            step()
        samples.append((time.perf_counter() - start) / steps_per_round)
    return statistics.median(samples)


def run(workload):
    """Time every framework of ``workload``; returns {framework: seconds per step}."""
    return {fw: time_step(workload.make(fw), workload.rounds, workload.steps_per_round)
            for fw in workload.frameworks}


def report(workload, timings):
    per_unit = {fw: t / workload.unit_count for fw, t in timings.items()}
    parts = [f"{fw} {_fmt(t)}/{workload.unit}" for fw, t in per_unit.items()]
    line = f"{workload.name:<20} " + "  ".join(parts)
    if "torch" in timings:
        for fw, t in timings.items():
            if fw != "torch":
                line += f"  {fw}/torch = {t / timings['torch']:.2f}x"
    return line


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
