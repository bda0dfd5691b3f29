"""Helpers the nbsim-batch tests share: write a job file, run it in-process on one rank,
find an MPI launcher."""
import json
import os
import shutil
import sys

from nbsim import batch


def write_job(folder, spec, name="scan.json"):
    """Write ``spec`` as the JSON job file ``folder/name`` (folders made); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(spec))
    return str(path)


def run(job, *extra, out=None, quiet=False):
    """Run ``job`` in this process; the exit status. One rank unless told otherwise,
    spelt out so that the test process itself never starts MPI (the mpiexec tests
    cover mpi4py). stdout goes to ``out`` (default: nowhere); stderr stays the
    process's unless ``quiet``."""
    extra = list(extra) or ["--rank", "0", "--ranks", "1"]
    with open(os.devnull, "w") as sink:
        return batch.run(batch.build_parser().parse_args([job] + extra), out=out or sink,
                         err=sink if quiet else None)


def mpiexec():
    """The launcher of this interpreter's MPI (else one on PATH), or None without mpi4py."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")
