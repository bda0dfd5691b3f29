"""Which rank this process is, how many there are, and which frames it looks at.

The rank and the number of ranks come from ``--rank/--ranks``, else from the
launcher's environment (Open MPI's mpirun, a PMI launcher such as MPICH's mpiexec or
Intel MPI), else from mpi4py when it is installed, else from Slurm's srun variables,
else one rank. No MPI messages are exchanged: ranks share a job through its output
folder (claims and markers, see :mod:`.claims` and :mod:`.markers`), which also lets
separate runs and job arrays share it.

Schedules:

``dynamic``  every rank walks all frames in order and renders each frame it can
             claim, so a rank that finishes early takes the next frame; frames of
             unequal cost keep every rank busy (the default under MPI or a launcher)
``static``   rank r of N looks only at frames r, r + N, r + 2N, ... (round-robin;
             the default with ``--rank/--ranks``, e.g. for a job array)

Either way a frame is one nanoBragg command line, so its files do not depend on the
schedule. A job that splits frames into row parts (``"split_rows": N``, see
:mod:`.split`) has N units per frame, unit u being part u mod N of frame u // N, and
the schedules deal out units instead of frames (so a job array splits one frame too).
"""
from __future__ import annotations

import os

from ..errors import NbsimError

SCHEDULES = ("dynamic", "static")


def rank_and_size(rank=None, ranks=None):
    """(rank, number of ranks, where they came from)."""
    if rank is not None or ranks is not None:
        if rank is None or ranks is None:
            raise NbsimError("--rank and --ranks go together")
        if ranks < 1 or not 0 <= rank < ranks:
            raise NbsimError("--rank %d --ranks %d: need 0 <= rank < ranks" % (rank, ranks))
        return rank, ranks, "command line"
    # A launcher's own variables first: they are set only by the launcher, and
    # reading them spares every rank mpi4py's import and MPI_Init (0.1 s of a short
    # job; no MPI message is ever sent). Slurm's come after mpi4py: sbatch sets them
    # for a batch script's single process too, which is not a rank of a launch.
    found = _from_environment((("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI"),
                               ("PMI_RANK", "PMI_SIZE", "PMI")))
    if found is not None:
        return found
    try:
        from mpi4py import MPI
    except ImportError:
        MPI = None
    if MPI is not None:
        comm = MPI.COMM_WORLD
        return comm.Get_rank(), comm.Get_size(), "mpi4py"
    found = _from_environment((("SLURM_PROCID", "SLURM_NTASKS", "Slurm"),))
    if found is not None:
        return found
    return 0, 1, "single process"


def _from_environment(keys):
    """(rank, ranks, source) from the first pair of variables set, else None."""
    for r_key, n_key, source in keys:
        r, n = os.environ.get(r_key), os.environ.get(n_key)
        if r is not None and n is not None:
            try:
                r, n = int(r), int(n)
            except ValueError:
                raise NbsimError("%s=%s, %s=%s: not whole numbers" % (r_key, r, n_key, n)) from None
            if n >= 1 and 0 <= r < n:
                return r, n, source
    return None


def leave_launcher(source, timeout=5.0):
    """Tell a PMI launcher (MPICH's or Intel MPI's mpiexec, Slurm's PMI2 agent) that
    this rank is done, as MPI_Finalize would: without it, MPICH's process manager
    spins on the closed connection, taking a core for as long as other ranks still
    render. Two lines of the PMI-1 wire protocol (init, then finalize) on the
    connection the launcher passes in PMI_FD; best effort and bounded by
    ``timeout``: a launcher that does not answer only costs the wait."""
    fd = os.environ.get("PMI_FD")
    if source != "PMI" or fd is None:
        return False
    import sys
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized():
        return False      # MPI owns the connection (nbsim-batch run inside an MPI program)
    import socket
    try:
        conn = socket.socket(fileno=int(fd))
    except (OSError, ValueError):
        return False
    try:
        conn.settimeout(timeout)
        for request, answer in ((b"cmd=init pmi_version=1 pmi_subversion=1\n",
                                 b"cmd=response_to_init"),
                                (b"cmd=finalize\n", b"cmd=finalize_ack")):
            conn.sendall(request)
            reply = b""
            while not reply.endswith(b"\n") and len(reply) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    return False
                reply += chunk
            if not reply.startswith(answer):
                return False
        return True
    except OSError:
        return False
    finally:
        conn.close()


def ranks_on_this_node(source):
    """How many ranks share this machine (1 when nothing says)."""
    if source == "mpi4py":
        from mpi4py import MPI
        return MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    for key in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"):
        try:
            n = int(os.environ.get(key, ""))
        except ValueError:
            continue
        if n >= 1:
            return n
    return 1


def default_threads(local_ranks):
    """Threads per rank when neither the job nor the environment chose: the cores
    shared out among the ranks on this machine (thread counts never change bits)."""
    return max(1, (os.cpu_count() or 1) // max(1, local_ranks))


class Schedule:
    """The frames rank ``rank`` of ``ranks`` verifies (its share), and the units
    (frames, or row parts of frames: ``parts`` per frame) it walks."""

    def __init__(self, kind, rank, ranks, frames, parts=1):
        if kind not in SCHEDULES:
            raise NbsimError("--schedule: '%s' is not one of %s" % (kind, ", ".join(SCHEDULES)))
        self.kind, self.rank, self.ranks, self.frames = kind, rank, ranks, frames
        self.parts = parts

    def share(self):
        """Frames whose old markers this rank checks: round-robin under either
        schedule, so that each old frame is checked by one rank."""
        return range(self.rank, self.frames, self.ranks)

    def walk(self):
        """Units this rank may render, in the order it tries them: frames, or with
        ``parts`` > 1 unit u = part u % parts of frame u // parts."""
        units = self.frames * self.parts
        return range(units) if self.kind == "dynamic" else range(self.rank, units, self.ranks)
