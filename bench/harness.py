"""The benchmark harness: time step functions in interleaved rounds, take medians, compare frameworks.

Run single-threaded (``make bench`` sets the thread variables, and ``python -m bench`` sets them when
they are unset): the machine throttles when both cores are busy, so multi-threaded timings would not
be comparable from run to run. The frameworks of a workload take turns round by round (the order
rotating each round), so a slow stretch of the machine hits all of them alike.
"""

import os
import statistics
import time
from dataclasses import dataclass


@dataclass
class Workload:
    """A named benchmark: ``make(framework)`` returns a zero-argument step, for each of ``frameworks``.

    ``floor(None)``, when given, returns the same step as hand-written numpy (the "numpy" column).
    ``target`` is the largest acceptable ratio ``frameworks[0] / baseline`` (None: no target).
    """

    name: str
    make: object
    unit_count: int = 1  # how many units one step holds (ops, samples), to report time per unit
    unit: str = "step"
    rounds: int = 7
    steps_per_round: int = 50
    frameworks: tuple = ("chainrule", "torch")
    baseline: str = "torch"
    target: float = None
    floor: object = None
    note: str = ""


def _clock():
    """Wall time; ``BENCH_CLOCK=thread``: the calling thread's CPU time, steadier than wall time when other
    processes load the machine (one-thread steps only: a thread pool's work is not counted)."""
    return time.thread_time() if os.environ.get("BENCH_CLOCK") == "thread" else time.perf_counter()


def time_step(step, rounds, steps_per_round):
    """Median over rounds of the mean time per step, after one warm-up round."""
    return time_steps({"step": step}, rounds, steps_per_round)["step"]


def time_steps(steps, rounds, steps_per_round):
    """{name: median over rounds of the mean time per step} for the steps in ``steps``, each warmed up
    first; in every round each step runs ``steps_per_round`` times in turn, the order rotating."""
    for step in steps.values():
        for _ in range(max(1, steps_per_round // 5)):
            step()
    names = list(steps)
    samples = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            step = steps[name]
            start = _clock()
            for _ in range(steps_per_round):
                step()
            samples[name].append((_clock() - start) / steps_per_round)
    return {name: statistics.median(s) for name, s in samples.items()}


def run(workload, floor=None):
    """Time every framework of ``workload`` (and its numpy floor, ``floor`` or ``workload.floor``,
    under "numpy"), interleaved; returns {framework: seconds per step}."""
    steps = {fw: workload.make(fw) for fw in workload.frameworks}
    floor = floor or workload.floor
    if floor is not None:
        steps["numpy"] = floor(None)
    return time_steps(steps, workload.rounds, workload.steps_per_round)


def report(workload, timings):
    per_unit = {fw: t / workload.unit_count for fw, t in timings.items()}
    parts = [f"{fw} {_fmt(t)}/{workload.unit}" for fw, t in per_unit.items()]
    line = f"{workload.name:<20} " + "  ".join(parts)
    base = workload.baseline
    if base in timings:
        for fw, t in timings.items():
            if fw != base:
                line += f"  {fw}/{base} = {t / timings[base]:.2f}x"
    return line


def summary(results):
    """The closing table: one row per (workload, timings) in ``results``."""
    header = ("workload", "chainrule", "torch", "numpy", "ratio", "target", "result", "vs numpy")
    rows, notes = [], []
    for w, t in results:
        subject = w.frameworks[0]
        ratio = t[subject] / t[w.baseline] if w.baseline in t else None
        if w.target is None or ratio is None:
            verdict = "-"
        else:
            verdict = "PASS" if ratio <= w.target else "MISS"
        cells = []
        for fw, default in ((subject, "chainrule"), (w.baseline, "torch")):
            cell = _fmt(t[fw] / w.unit_count) if fw in t else "-"
            cells.append(cell if fw == default else f"{cell} [{fw}]")
        rows.append((w.name, *cells,
                     _fmt(t["numpy"] / w.unit_count) if "numpy" in t else "-",
                     f"{ratio:.2f}x" if ratio is not None else "-",
                     f"<= {w.target:g}x" if w.target is not None else "-",
                     verdict,
                     f"{t[subject] / t['numpy']:.2f}x" if "numpy" in t else "-"))
        if w.note:
            notes.append(f"  {w.name}: {w.note}")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(n) for c, n in zip(r, widths)).rstrip() for r in [header] + rows]
    lines.insert(1, "  ".join("-" * n for n in widths))
    lines.append("times are per unit (op_overhead: per op; else per step / epoch); ratio = chainrule / torch; "
                 "vs numpy = chainrule / hand-written numpy floor")
    return "\n".join(lines + notes)


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
