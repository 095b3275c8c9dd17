"""``python -m bench.distributed``: data-parallel LeNet-5 on MNIST over MPI (chainrule only).

Three measurements, each in jobs started with ``chainrule run`` (one BLAS thread per rank):

- **scaling**: training throughput (samples/s) of 2 ranks x 1 thread (DistributedDataParallel, batch 64
  per rank) over 1 rank x 1 thread (no DDP, batch 64); the jobs alternate for ``--rounds`` rounds and
  the medians are compared. Target: at least 1.7x.
- **allreduce**: ``chainrule.distributed.all_reduce`` against mpi4py's ``Allreduce`` on the same
  buffers (LeNet-5's gradient bucket, and a 25 MiB one), interleaved, medians. Target: at most 10% more.
- **overlap**: of the time the same buckets take to reduce with blocking calls, the share that DDP's
  non-blocking allreduce keeps off the critical path of a training step: the time a step spends inside
  DDP's communication calls (launch, progress, final wait), counted from the outside, with a barrier
  before backward so that one rank waiting for a slower rank's forward does not count as communication.

Real MNIST is read from ``$CHAINRULE_MNIST_DIR`` or ../shared/data/mnist (random images of the same
shape otherwise: throughput does not depend on the pixels).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from .nn_workloads import MNIST_DIR

BATCH = 64


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating 1-rank / 2-rank throughput jobs")
    parser.add_argument("--steps", type=int, default=150, help="timed training steps per throughput job")
    parser.add_argument("--worker", choices=("throughput", "comm"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.steps)
    print(f"load average: {_load()}", flush=True)
    rates, cpu = {1: [], 2: []}, {1: [], 2: []}
    for _ in range(args.rounds):
        for ranks in (1, 2):
            result = job(ranks, "throughput", args.steps)
            rates[ranks].append(result["samples_per_s"])
            cpu[ranks].append(result["cpu_share"])
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"scaling     1 rank x 1 thread {one:.0f} samples/s, 2 ranks x 1 thread {two:.0f} samples/s: "
          f"{two / one:.2f}x (target >= 1.7x)  [rounds: {_list(rates[1])} | {_list(rates[2])}; rank 0's CPU "
          f"time / wall time: {_list(cpu[1], 2)} | {_list(cpu[2], 2)}, below ~0.95: other processes took the core]",
          flush=True)
    comm = job(2, "comm", args.steps)
    for name, r in comm["allreduce"].items():
        print(f"allreduce   {name}: chainrule {_us(r['chainrule'])}, mpi4py {_us(r['mpi4py'])}, "
              f"overhead {100 * (r['chainrule'] / r['mpi4py'] - 1):+.1f}% (target <= +10%); "
              f"async {_us(r['chainrule_async'])} vs {_us(r['mpi4py_async'])}")
    for name, r in comm["overlap"].items():
        hidden = max(0.0, 1 - r["exposed"] / r["blocking"])
        print(f"overlap     {name}: step {_ms(r['step'])} (no communication: {_ms(r['step_no_sync'])}); "
              f"blocking allreduce of its buckets {_us(r['blocking'])}, exposed in the step {_us(r['exposed'])}: "
              f"{100 * hidden:.0f}% hidden behind backward by time; {100 * r['completed_in_backward']:.0f}% of the "
              "gradient bytes reduced before backward ended")
    print(model_table(BATCH / one, LENET_GRADIENT_BYTES, comm["overlap"][OVERLAP_CONFIG]["completed_in_backward"]))
    print(f"load average: {_load()}")
    return 0


LENET_GRADIENT_BYTES = 61706 * 4
OVERLAP_CONFIG = "4 buckets (bucket_cap_mb=0.005)"
NETWORKS = {"10 GbE (1.25 GB/s, 20 us)": (1.25e9, 20e-6), "100 Gb/s InfiniBand (12.5 GB/s, 2 us)": (12.5e9, 2e-6)}


def allreduce_seconds(p, nbytes, bandwidth, latency, algorithm):
    """Time of one allreduce of ``nbytes`` over ``p`` workers: every algorithm below sends 2 (p-1)/p of the
    data per worker; the ring takes 2 (p-1) latency-bound steps, recursive halving/doubling 2 log2(p)."""
    steps = 2 * (p - 1) if algorithm == "ring" else 2 * np.log2(p)
    return 2 * (p - 1) / p * nbytes / bandwidth + steps * latency


def model_table(compute_s, nbytes, hidden, workers=(8, 64, 256, 1024)):
    """Step time T = compute + (1 - hidden) x allreduce, per network and algorithm; efficiency = compute / T."""
    lines = [f"model       step time from measured compute {_ms(compute_s)}/step (1 thread, batch {BATCH}), "
             f"{nbytes / 1e3:.0f} kB of gradients, {100 * hidden:.0f}% of the allreduce hidden (the share of bytes "
             f"reduced during backward, {OVERLAP_CONFIG}):"]
    for network, (bandwidth, latency) in NETWORKS.items():
        for algorithm in ("ring", "halving-doubling"):
            cells = []
            for p in workers:
                step = compute_s + (1 - hidden) * allreduce_seconds(p, nbytes, bandwidth, latency, algorithm)
                cells.append(f"p={p}: {_ms(step)} ({100 * compute_s / step:.0f}%)")
            lines.append(f"            {network}, {algorithm}: " + ", ".join(cells))
    return "\n".join(lines)


def job(ranks, mode, steps):
    """Run this module's worker on ``ranks`` ranks; rank 0's JSON result."""
    from chainrule.distributed.run import THREAD_VARIABLES, mpiexec_command

    command = mpiexec_command(ranks, ["-m", "bench.distributed", "--worker", mode, "--steps", str(steps)])
    env = dict(os.environ, **{name: "1" for name in THREAD_VARIABLES})
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    results = [line[len("RESULT "):] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode or not results:
        raise SystemExit(f"bench.distributed: the {ranks}-rank {mode} job failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(results[0])


# --- in the ranks ----------------------------------------------------------------------------------------

def worker(mode, steps):
    import chainrule.distributed as dist

    dist.init_process_group("mpi")
    result = throughput(steps) if mode == "throughput" else {"allreduce": allreduce(), "overlap": overlap(steps)}
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()
    return 0


def _training(world, bucket_cap_mb=None):
    """LeNet-5, Adam, the MNIST loader (this rank's shard), and the module to call: DDP when world > 1."""
    import chainrule as cr
    from chainrule.models import LeNet5
    from chainrule.nn.parallel import DistributedDataParallel
    from chainrule.utils.data import DataLoader, DistributedSampler, TensorDataset

    cr.manual_seed(0)
    model = LeNet5(input_size=28)
    data = TensorDataset(*map(cr.from_numpy, _mnist()))
    sampler = DistributedSampler(data, seed=0) if world > 1 else None
    loader = DataLoader(data, batch_size=BATCH, shuffle=sampler is None, sampler=sampler, drop_last=True)
    forward = DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb) if world > 1 else model
    return model, forward, cr.optim.Adam(model.parameters(), lr=1e-3), _forever(loader, sampler)


def _step(forward, optimizer, batch, aligned=False):
    """One training step; ``aligned``: all ranks start backward together (a barrier before it), so that
    waiting for a slower rank's forward is not counted as communication."""
    import chainrule.distributed as dist
    import chainrule.nn.functional as F

    optimizer.zero_grad()
    loss = F.cross_entropy(forward(batch[0]), batch[1])
    if aligned:
        dist.barrier()
    loss.backward()
    optimizer.step()


def throughput(steps):
    import chainrule.distributed as dist

    world = dist.get_world_size()
    _, forward, optimizer, batches = _training(world)
    for _ in range(10):
        _step(forward, optimizer, next(batches))
    dist.barrier()
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        _step(forward, optimizer, next(batches))
    dist.barrier()
    wall = time.perf_counter() - began
    return {"samples_per_s": world * BATCH * steps / wall, "cpu_share": (time.process_time() - cpu) / wall}


def allreduce(reps=100, rounds=15):
    """Medians of chainrule's all_reduce and mpi4py's Allreduce on the same arrays, taking turns."""
    from mpi4py import MPI

    import chainrule as cr
    import chainrule.distributed as dist

    comm = MPI.COMM_WORLD
    results = {}
    for name, n in (("LeNet-5 bucket, 61,706 float32 (241 KiB)", 61706), ("25 MiB bucket", 25 * 2**20 // 4)):
        t = cr.zeros(n)
        a = t._data  # the very buffer chainrule hands to MPI
        calls = {
            "chainrule": lambda t=t: dist.all_reduce(t),
            "mpi4py": lambda a=a: comm.Allreduce(MPI.IN_PLACE, a, MPI.SUM),
            "chainrule_async": lambda t=t: dist.all_reduce(t, async_op=True).wait(),
            "mpi4py_async": lambda a=a: comm.Iallreduce(MPI.IN_PLACE, a, MPI.SUM).Wait(),
        }
        count = reps if n < 2**20 else max(3, reps // 10)
        times = {k: [] for k in calls}
        for r in range(rounds):
            for k in list(calls)[r % 4:] + list(calls)[:r % 4]:
                comm.Barrier()
                began = time.perf_counter()
                for _ in range(count):
                    calls[k]()
                times[k].append((time.perf_counter() - began) / count)
        results[name] = {k: statistics.median(v) for k, v in times.items()}
    return results


def overlap(steps, rounds=5):
    """Per configuration of buckets: step time with and without communication, the blocking time of its
    allreduces, the time a step spends inside DDP's communication calls (launch, progress, final wait), and
    the share of gradient bytes whose allreduce DDP saw complete before backward ended (in its progress
    calls): a measure of the hidden share that a slower rank or a busy core does not blur."""
    import chainrule.distributed as dist
    from chainrule.distributed.c10d import Work
    from chainrule.nn.parallel import DistributedDataParallel

    spent = [0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - began
        return wrapper

    originals = {(Work, "wait"): Work.wait, (Work, "is_completed"): Work.is_completed,
                 (DistributedDataParallel, "_start_full_buckets"): DistributedDataParallel._start_full_buckets}
    results = {}
    per_round = max(5, steps // (2 * rounds))
    for name, cap in ((OVERLAP_CONFIG, 0.005), ("1 bucket (bucket_cap_mb=25, the default)", 25)):
        _, ddp, optimizer, batches = _training(dist.get_world_size(), bucket_cap_mb=cap)
        buckets = ddp._buckets
        completed = []

        def probe(finish=ddp._finish, buckets=buckets, completed=completed):
            done = sum(b.flat.nbytes for b in buckets if b.work._finish is None)
            completed.append(done / sum(b.flat.nbytes for b in buckets))
            finish()

        ddp._finish = probe  # DDP calls it when the last gradient of backward is in
        for _ in range(5):
            _step(ddp, optimizer, next(batches))
        step, local, exposed, blocking, overlapped = [], [], [], [], []
        for _ in range(rounds):
            dist.barrier()
            began = time.perf_counter()
            with ddp.no_sync():
                for _ in range(per_round):
                    _step(ddp, optimizer, next(batches), aligned=True)
            local.append((time.perf_counter() - began) / per_round)
            for (owner, attr), fn in originals.items():
                setattr(owner, attr, timed(fn))
            spent[0] = 0.0
            completed.clear()
            dist.barrier()
            began = time.perf_counter()
            for _ in range(per_round):
                _step(ddp, optimizer, next(batches), aligned=True)
            step.append((time.perf_counter() - began) / per_round)
            exposed.append(spent[0] / per_round)
            overlapped.append(statistics.mean(completed))
            for (owner, attr), fn in originals.items():
                setattr(owner, attr, fn)
            dist.barrier()
            began = time.perf_counter()
            for _ in range(per_round):
                for bucket in buckets:
                    dist.all_reduce(bucket.tensor, dist.ReduceOp.AVG)
            blocking.append((time.perf_counter() - began) / per_round)
        assert len(buckets) == (4 if cap < 1 else 1), [b.indices for b in buckets]
        results[name] = {"step": statistics.median(step), "step_no_sync": statistics.median(local),
                         "exposed": statistics.median(exposed), "blocking": statistics.median(blocking),
                         "completed_in_backward": statistics.median(overlapped)}
    return results


def _mnist():
    try:
        from chainrule.datasets import MNIST

        images, labels = MNIST(MNIST_DIR).arrays()
        return (images - 0.1307) / 0.3081, labels
    except (OSError, ValueError):
        rng = np.random.default_rng(0)
        return rng.standard_normal((60000, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 60000)


def _forever(loader, sampler):
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _list(values, digits=0):
    return " ".join(f"{v:.{digits}f}" for v in values)


def _us(seconds):
    return f"{seconds * 1e6:.0f} us"


def _ms(seconds):
    return f"{seconds * 1e3:.1f} ms"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
