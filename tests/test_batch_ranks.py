"""nbsim.batch.ranks: shares and walks, and what the dynamic schedule buys."""
import io
import json
import os
import threading
import time

import pytest

from nbsim import batch
from nbsim.batch import runner
from nbsim.batch.ranks import Schedule
from nbsim.errors import NbsimError
from batch_jobs import mpiexec as _mpiexec
from test_batch import BASE, outputs_of, run, two_folders_with_job, write_job


def test_shares_and_walks():
    static = Schedule("static", 1, 3, 8)
    assert list(static.share()) == [1, 4, 7] and list(static.walk()) == [1, 4, 7]
    dynamic = Schedule("dynamic", 1, 3, 8)
    assert list(dynamic.share()) == [1, 4, 7] and list(dynamic.walk()) == list(range(8))
    with pytest.raises(NbsimError, match="--schedule"):
        Schedule("greedy", 0, 1, 8)


def test_frames_split_into_row_parts_are_dealt_out_as_units():
    # 3 frames of 4 parts: unit u is part u % 4 of frame u // 4
    static = Schedule("static", 1, 2, 3, parts=4)
    assert [divmod(u, 4) for u in static.walk()] == [(0, 1), (0, 3), (1, 1), (1, 3),
                                                     (2, 1), (2, 3)]
    assert list(static.share()) == [1]           # markers stay per frame
    assert list(Schedule("dynamic", 1, 2, 3, parts=4).walk()) == list(range(12))


def test_the_default_schedule_follows_where_the_ranks_came_from(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    for key in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    job = write_job(tmp_path, {"args": BASE, "frames": 1})
    assert batch.main([job]) == 0
    assert "rank 0 of 1 (Slurm), dynamic schedule" in capsys.readouterr().out
    assert batch.main([job, "--rank", "0", "--ranks", "1"]) == 0
    assert "(command line), static schedule" in capsys.readouterr().out


def test_dynamic_ranks_of_a_job_array_give_the_same_files(tmp_path):
    spec = {"args": BASE, "frames": 4, "vary": {"-phi": {"start": 0, "step": 3}}}
    single, arrayed, job = two_folders_with_job(tmp_path, spec, "single", "array")
    for rank in (1, 0):
        assert run(job, "--rank", str(rank), "--ranks", "2", "--schedule", "dynamic") == 0
    assert outputs_of(arrayed / "scan") == outputs_of(single / "scan")


def _two_ranks_with_fake_frames(tmp_path, kind, costs):
    """Run ranks 0 and 1 of a job side by side in threads, with frames that only sleep
    for their cost; returns {rank: [frames it rendered]}."""
    tmp_path.mkdir()
    job_path = write_job(tmp_path, {"args": BASE, "frames": len(costs)})
    rendered = {0: [], 1: []}
    both_started = threading.Barrier(2, timeout=60)
    first = {}

    def fake_render(job, frame, *_a, **_k):
        rank = int(threading.current_thread().name)
        if rank not in first:
            first[rank] = frame
            both_started.wait()              # both ranks hold a frame before either goes on
        rendered[rank].append(frame)
        time.sleep(costs[frame])
        with open(job.marker_path(frame), "w") as fh:
            json.dump({"frame": frame}, fh)
        return 0, costs[frame]

    old, old_cwd = runner.render_frame, os.getcwd()
    runner.render_frame = fake_render
    os.makedirs(tmp_path / "scan")
    statuses = {}

    def rank_main(rank):
        opts = batch.build_parser().parse_args(
            [job_path, "--rank", str(rank), "--ranks", "2", "--schedule", kind])
        statuses[rank] = runner.run(opts, out=io.StringIO(), err=io.StringIO())

    try:
        threads = [threading.Thread(target=rank_main, args=(r,), name=str(r)) for r in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        runner.render_frame = old
        os.chdir(old_cwd)        # both threads changed into the job folder and back
    assert statuses == {0: 0, 1: 0}
    return rendered


def test_dynamic_scheduling_keeps_both_ranks_busy_with_frames_of_mixed_cost(tmp_path):
    costs = [0.2, 0.0] * 4          # round-robin gives rank 0 every slow frame
    static = _two_ranks_with_fake_frames(tmp_path / "static", "static", costs)
    assert static == {0: [0, 2, 4, 6], 1: [1, 3, 5, 7]}
    dynamic = _two_ranks_with_fake_frames(tmp_path / "dynamic", "dynamic", costs)
    assert sorted(dynamic[0] + dynamic[1]) == list(range(8))     # each frame once
    work = [sum(costs[f] for f in dynamic[r]) for r in (0, 1)]
    assert max(work) <= 0.6 + 1e-9, dynamic                      # not 0.8 as round-robin


def _pmi_server(sock, said, replies):
    """A PMI launcher's end of the connection: records what the rank says."""
    with sock:
        for reply in replies:
            line = b""
            while not line.endswith(b"\n"):
                chunk = sock.recv(1024)
                if not chunk:
                    return
                line += chunk
            said.append(line.decode())
            sock.sendall(reply)


def test_a_rank_says_finalize_to_a_pmi_launcher(monkeypatch):
    import socket
    from nbsim.batch.ranks import leave_launcher
    ours, theirs = socket.socketpair()
    said = []
    server = threading.Thread(target=_pmi_server, args=(theirs, said, [
        b"cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=2\n",
        b"cmd=finalize_ack rc=0\n"]))
    server.start()
    monkeypatch.setenv("PMI_FD", str(ours.detach()))
    assert leave_launcher("PMI") is True
    server.join(10)
    assert said == ["cmd=init pmi_version=1 pmi_subversion=1\n", "cmd=finalize\n"]
    assert leave_launcher("Open MPI") is False        # only PMI launchers are told


def test_a_silent_launcher_costs_only_the_timeout(monkeypatch):
    import socket
    from nbsim.batch.ranks import leave_launcher
    ours, theirs = socket.socketpair()
    monkeypatch.setenv("PMI_FD", str(ours.detach()))
    t0 = time.monotonic()
    assert leave_launcher("PMI", timeout=0.2) is False
    assert time.monotonic() - t0 < 5
    theirs.close()


@pytest.mark.skipif(_mpiexec() is None,
                    reason="needs mpi4py and an mpiexec (pip install mpi4py mpich)")
def test_a_rank_done_early_leaves_no_launcher_spinning(tmp_path):
    """MPICH's process manager spins (system time) while a rank that has exited
    without finalizing waits for the others; leave_launcher spares that core."""
    import resource
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import os, time\n"
            "from nbsim.batch.ranks import leave_launcher\n"
            "if os.environ.get('PMI_RANK') == '0':\n"
            "    time.sleep(2.0)\n"
            "leave_launcher('PMI')\n")
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-c", code], env=env,
                   check=True, timeout=120, cwd=str(tmp_path))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = (after.ru_stime - before.ru_stime) + (after.ru_utime - before.ru_utime)
    assert spent < 1.0, "the launcher and ranks used %.2f s of CPU in 2 s" % spent


def test_inside_an_mpi_program_the_connection_is_left_to_mpi(monkeypatch):
    import socket
    import sys
    import types
    from nbsim.batch.ranks import leave_launcher
    fake = types.SimpleNamespace(Is_initialized=lambda: True)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", fake)
    ours, theirs = socket.socketpair()
    monkeypatch.setenv("PMI_FD", str(ours.fileno()))
    assert leave_launcher("PMI", timeout=0.2) is False
    theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        theirs.recv(1024)                          # nothing was said on MPI's connection
    ours.close()
    theirs.close()
