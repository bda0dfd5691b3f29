"""nbsim.batch: job files, frames as command lines, ranks and restarts."""
import os
import re
import types

import pytest

from batch_jobs import mpiexec as _mpiexec, run, write_job
from children import default_sigint
from nbsim import batch, cli
from nbsim.errors import NbsimError

BASE = ("-cell 60 60 60 90 90 90 -default_F 50 -N 3 -lambda 1.2 -distance 80 "
        "-detpixels 24 -pixel 0.2 -noprogress -engine c")


def two_folders_with_job(tmp_path, spec, a, b):
    """Folders a and b under tmp_path, each with the job file of ``spec``; returns
    (folder a, folder b, job path in b) after rendering a's job on one rank."""
    first, second = tmp_path / a, tmp_path / b
    first.mkdir()
    second.mkdir()
    assert run(write_job(first, spec)) == 0
    return first, second, write_job(second, spec)


def outputs_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.suffix in (".bin", ".img")}


def test_frames_are_the_command_lines_they_say(tmp_path):
    job = batch.Job({"args": BASE, "frames": 3, "vary": {"-phi": {"start": 0, "step": 0.25}}},
                    str(tmp_path / "rot.json"))
    argv = job.frame_argv(2)
    assert argv[:len(BASE.split())] == BASE.split()
    assert argv[argv.index("-phi") + 1] == "0.5"
    assert argv[argv.index("-seed") + 1] == "3"       # seed 1 + frame 2
    assert argv[argv.index("-floatfile") + 1] == os.path.join("rot", "rot_00002.bin")
    assert argv[argv.index("-noisefile") + 1] == os.path.join("rot", "rot_noise_00002.img")
    assert job.frame_outputs(2)[0] == ("-floatfile", str(tmp_path / "rot" / "rot_00002.bin"))


def test_float_steps_are_written_to_read_back_exactly(tmp_path):
    job = batch.Job({"args": "-nonoise", "frames": 4, "vary": {"-phi": {"start": 0.1, "step": 0.1}}},
                    str(tmp_path / "j.json"))
    words = [job.frame_argv(f)[job.frame_argv(f).index("-phi") + 1] for f in range(4)]
    assert [float(w) for w in words] == [0.1 + f * 0.1 for f in range(4)]
    assert "-noisefile" not in job.frame_argv(0)      # -nonoise: no noise image named


def test_a_frame_renders_what_the_command_renders(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE, "frames": 2,
                                    "vary": {"-phi": [0, 7.5]}, "name": "s"})
    assert run(job_path) == 0
    # the same command line typed by hand, in another folder
    by_hand = tmp_path / "hand"
    by_hand.mkdir()
    old = os.getcwd()
    os.chdir(by_hand)
    try:
        assert cli.main(BASE.split() + ["-phi", "7.5", "-seed", "2", "-floatfile", "f.bin",
                                        "-intfile", "i.img", "-noisefile", "n.img"]) == 0
    finally:
        os.chdir(old)
    frames = tmp_path / "s"
    assert (frames / "s_00001.bin").read_bytes() == (by_hand / "f.bin").read_bytes()
    assert (frames / "s_00001.img").read_bytes() == (by_hand / "i.img").read_bytes()
    assert (frames / "s_noise_00001.img").read_bytes() == (by_hand / "n.img").read_bytes()
    assert (frames / "s_00000.bin").read_bytes() != (frames / "s_00001.bin").read_bytes()
    log = (frames / "s_00001.log").read_text()
    assert log.startswith("# nanoBragg ")
    assert "writing" in log and "rendered by the c engine" in log


def test_results_do_not_depend_on_the_number_of_ranks(tmp_path):
    spec = {"args": BASE, "frames": 5, "vary": {"-phi": {"start": 0, "step": 3}}}
    one, many, job = two_folders_with_job(tmp_path, spec, "one", "many")
    for rank in range(3):
        assert run(job, "--rank", str(rank), "--ranks", "3") == 0
    assert outputs_of(one / "scan") == outputs_of(many / "scan")
    assert len(outputs_of(one / "scan")) == 15


def test_ranks_split_frames_round_robin(tmp_path, capsys):
    job = write_job(tmp_path, {"args": BASE, "frames": 5})
    opts = batch.build_parser().parse_args([job, "--dry-run", "--rank", "1", "--ranks", "2"])
    assert batch.run(opts) == 0
    listed = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()
              if line.startswith("frame ")]
    assert listed == ["frame 1", "frame 3"]
    assert not (tmp_path / "scan").exists()            # a dry run writes nothing


def test_restart_renders_only_what_is_missing(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE, "frames": 3})
    assert run(job_path) == 0
    frames = tmp_path / "scan"
    before = outputs_of(frames)
    stamps = {n: (frames / n).stat().st_mtime_ns for n in before}
    (frames / "scan_00001.img").unlink()
    with open(frames / "scan_00002.bin", "r+b") as fh:   # a damaged file: wrong size
        fh.truncate(10)
    assert run(job_path) == 0
    after = outputs_of(frames)
    assert after == before
    assert (frames / "scan_00000.bin").stat().st_mtime_ns == stamps["scan_00000.bin"]
    assert (frames / "scan_00001.bin").stat().st_mtime_ns != stamps["scan_00001.bin"]
    assert (frames / "scan_00002.img").stat().st_mtime_ns != stamps["scan_00002.img"]


def test_a_moved_dataset_is_still_done(tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    assert run(write_job(first, {"args": BASE, "frames": 2})) == 0
    moved = tmp_path / "moved"
    os.rename(first, moved)
    job = batch.load_job(str(moved / "scan.json"))
    assert batch.is_done(job, 0) and batch.is_done(job, 1)


def test_a_changed_job_rerenders_its_frames(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE, "frames": 1})
    assert run(job_path) == 0
    first = outputs_of(tmp_path / "scan")
    write_job(tmp_path, {"args": BASE.replace("-N 3", "-N 4"), "frames": 1})
    assert run(job_path) == 0
    assert outputs_of(tmp_path / "scan") != first
    assert batch.is_done(batch.load_job(job_path), 0)


def test_a_failing_frame_is_reported_and_not_marked_done(tmp_path):
    (tmp_path / "bad.hkl").write_text("1 2 3 4\nnot a line\n")
    job_path = write_job(tmp_path, {"args": BASE + " -hkl bad.hkl", "frames": 2})
    assert run(job_path) == 1
    job = batch.load_job(job_path)
    assert not batch.is_done(job, 0)
    log = (tmp_path / "scan" / "scan_00000.log").read_text()
    assert log.splitlines()[-1].startswith("nanoBragg: error:") and "bad.hkl" in log


def test_toml_job_files(tmp_path):
    path = tmp_path / "dose.toml"
    path.write_text('args = "%s"\nframes = 2\nname = "d"\n[vary."-fluence"]\n'
                    'start = 1e20\nstep = 1e20\n' % BASE)
    job = batch.load_job(str(path))
    assert job.frame_argv(1)[job.frame_argv(1).index("-fluence") + 1] == "2e+20"
    assert job.directory == str(tmp_path / "d")


@pytest.mark.parametrize("spec, words", [
    ({"args": BASE}, "'frames'"),
    ({"args": BASE, "frames": 0}, "'frames'"),
    ({"args": BASE, "frames": 2, "colour": 1}, "unknown key colour"),
    ({"args": BASE, "frames": 2, "vary": {"-phi": [1]}}, "1 values for 2 frames"),
    ({"args": BASE, "frames": 2, "vary": {"phi": [1, 2]}}, "not a flag"),
    ({"args": BASE, "frames": 2, "vary": {"-phi": {"start": 0}}}, "start"),
    ({"args": BASE, "frames": 2, "outputs": {"-floatfile": "same.bin"}}, "no {frame} field"),
    ({"args": BASE, "frames": 2, "outputs": {"-floatfile": "{frme}.bin"}}, "field {frme}"),
    ({"args": BASE, "frames": 2, "outputs": {"-hkl": "x{frame}"}}, "not one of"),
    ({"args": BASE + " -floatfile x.bin", "frames": 2}, "args set -floatfile"),
])
def test_bad_job_files_are_one_line_errors(tmp_path, spec, words):
    with pytest.raises(NbsimError, match="job file") as err:
        batch.Job(spec, str(tmp_path / "j.json"))
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_command_errors_name_the_job_file_and_frame(tmp_path, capsys):
    bad_json = tmp_path / "broken.json"
    bad_json.write_text("{ not json")
    assert batch.main([str(bad_json), "--rank", "0", "--ranks", "1"]) == 2
    assert "broken.json" in capsys.readouterr().err
    job = write_job(tmp_path, {"args": BASE, "frames": 3,
                               "vary": {"-distance": [80, 80, "far"]}})
    assert batch.main([job, "--rank", "0", "--ranks", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nbsim-batch: error: frame 2: ") and "-distance" in err
    assert not (tmp_path / "scan").exists()             # nothing rendered before the check


def test_rank_sources(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "mpi4py", None)   # as on a machine without mpi4py
    for key in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE",
                "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    assert batch.rank_and_size() == (0, 1, "single process")
    monkeypatch.setenv("SLURM_PROCID", "2")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert batch.rank_and_size() == (2, 4, "Slurm")
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "3")
    assert batch.rank_and_size() == (1, 3, "PMI")
    assert batch.rank_and_size(0, 2) == (0, 2, "command line")
    # with mpi4py installed, a launcher's variables still come first (no MPI_Init),
    # mpi4py before Slurm's (sbatch sets those for a single process too)
    fake = types.ModuleType("mpi4py")
    fake.MPI = types.SimpleNamespace(COMM_WORLD=types.SimpleNamespace(
        Get_rank=lambda: 5, Get_size=lambda: 9))
    monkeypatch.setitem(sys.modules, "mpi4py", fake)
    assert batch.rank_and_size() == (1, 3, "PMI")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert batch.rank_and_size() == (0, 2, "Open MPI")
    for key in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(key)
    assert batch.rank_and_size() == (5, 9, "mpi4py")
    with pytest.raises(NbsimError):
        batch.rank_and_size(2, 2)
    with pytest.raises(NbsimError):
        batch.rank_and_size(1, None)


def test_threads_are_shared_out_among_ranks_on_a_node(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert batch.default_threads(3) == 2
    assert batch.default_threads(16) == 1
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")
    assert batch.ranks_on_this_node("Open MPI") == 4


@pytest.mark.skipif(_mpiexec() is None,
                    reason="needs mpi4py and an mpiexec (pip install mpi4py mpich)")
def test_under_mpiexec_two_ranks_give_the_single_process_files(tmp_path):
    import subprocess
    import sys
    spec = {"args": BASE, "frames": 4, "vary": {"-phi": {"start": 0, "step": 2}}}
    single, parallel, job = two_folders_with_job(tmp_path, spec, "single", "mpi")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NBSIM_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "nbsim.batch", job],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    # (the launcher's variables name the ranks: PMI for MPICH's mpiexec)
    for rank in (0, 1):
        assert re.search(r"rank %d of 2 \((PMI|Open MPI)\), dynamic schedule" % rank,
                         done.stdout), done.stdout
    rendered = [int(line.split(": ")[2].split()[0]) for line in done.stdout.splitlines()
                if " rendered, " in line]
    assert len(rendered) == 2 and sum(rendered) == 4     # each frame once, by one rank
    assert outputs_of(parallel / "scan") == outputs_of(single / "scan")


def test_structure_factors_are_read_once_per_batch(tmp_path, monkeypatch):
    from nbsim.io import hkl as hkl_io
    (tmp_path / "p1.hkl").write_text("".join("%d %d %d %g\n" % (h, k, 1, 10 + h * h + k)
                                             for h in range(-3, 4) for k in range(-3, 4)))
    reads = []
    real = hkl_io.read_hkl
    monkeypatch.setattr(hkl_io, "read_hkl", lambda *a: reads.append(a) or real(*a))
    args = BASE.replace("-default_F 50", "-hkl p1.hkl")
    job = write_job(tmp_path, {"args": args, "frames": 3, "vary": {"-phi": [0, 1, 2]},
                               "outputs": {"-floatfile": "f{frame}.bin"}})
    assert run(job) == 0
    assert len(reads) == 1
    assert any("-intfile" in n for n in batch.load_job(job).notes)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:       # frame 2 by hand, reading the file itself
        assert cli.main(args.split() + ["-phi", "2", "-seed", "3", "-floatfile", "hand.bin"]) == 0
    finally:
        os.chdir(old)
    assert (tmp_path / "scan" / "f2.bin").read_bytes() == (tmp_path / "hand.bin").read_bytes()


# ---------------------------------------------------------------------------
# the command as a process: signals, concurrency, progress
# ---------------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# about 0.3 s per frame on one thread: long enough to be caught mid-job
SLOW = ("-cell 60 60 60 90 90 90 -default_F 50 -N 10 -lambda 1.2 -distance 80 "
        "-detpixels 384 -pixel 0.2 -oversample 2 -noprogress -engine c -threads 1")


def start_batch(job, *extra, **popen):
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    popen.setdefault("preexec_fn", default_sigint)
    return subprocess.Popen([sys.executable, "-m", "nbsim.batch", job, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def leftovers(folder):
    """Temporary files and claims: a stopped run must leave none."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".claim")))


def wait_for_line(stream, words, limit=300):
    lines = []
    for line in stream:
        lines.append(line)
        if words in line or len(lines) > limit:
            break
    return lines


@pytest.mark.parametrize("sig, status, word", [("SIGINT", 130, "interrupted"),
                                                ("SIGTERM", 143, "terminated")])
def test_a_signal_stops_the_run_cleanly(tmp_path, sig, status, word):
    import signal
    job = write_job(tmp_path, {"args": SLOW, "frames": 40, "vary": {"-phi": {"start": 0, "step": 1}}})
    proc = start_batch(job, "--rank", "0", "--ranks", "1")
    seen = wait_for_line(proc.stderr, "frame 0 done")
    assert "frame 0 done" in seen[-1], "".join(seen)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    err = "".join(seen) + err
    assert proc.returncode == status, err
    assert "Traceback" not in err and "Traceback" not in out
    assert err.strip().splitlines()[-1].startswith("nbsim-batch: %s; " % word)
    frames = tmp_path / "scan"
    assert leftovers(frames) == []
    job_obj = batch.load_job(job)
    done = [f for f in range(40) if batch.is_done(job_obj, f)]
    assert 1 <= len(done) < 40 and done == list(range(len(done)))
    # the frame that was running has a complete log that says so, and no marker
    cut = frames / ("scan_%05d.log" % len(done))
    if cut.exists():
        assert cut.read_text().rstrip().endswith("the frame is not marked done")


def test_a_killed_run_is_finished_by_the_next_one(tmp_path):
    import signal
    spec = {"args": SLOW.replace("-detpixels 384", "-detpixels 256"), "frames": 6,
            "vary": {"-phi": {"start": 0, "step": 1}}}
    whole, killed, job = two_folders_with_job(tmp_path, spec, "whole", "killed")
    proc = start_batch(job, "--rank", "0", "--ranks", "1")
    seen = wait_for_line(proc.stderr, "frame 1 done")
    proc.send_signal(signal.SIGKILL)          # no chance to clean up: its claim stays
    proc.communicate(timeout=60)
    assert "frame 1 done" in seen[-1]
    assert run(job) == 0                      # the dead process's claim is taken over
    assert outputs_of(killed / "scan") == outputs_of(whole / "scan")
    assert leftovers(killed / "scan") == []


def test_two_concurrent_runs_share_the_frames(tmp_path):
    spec = {"args": SLOW.replace("-detpixels 384", "-detpixels 256"), "frames": 8,
            "vary": {"-phi": {"start": 0, "step": 1}}}
    alone, shared, job = two_folders_with_job(tmp_path, spec, "alone", "shared")
    procs = [start_batch(job, "--schedule", "dynamic", "--rank", "0", "--ranks", "1"),
             start_batch(job, "--rank", "0", "--ranks", "2")]   # a job array's rank too
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    rendered = [int(out.split(": rank 0: ")[1].split()[0]) for out, _err in results]
    assert sum(rendered) == 8                 # every frame rendered once, by one of them
    assert outputs_of(shared / "scan") == outputs_of(alone / "scan")
    assert leftovers(shared / "scan") == []


def test_progress_lines_and_summary(tmp_path, capsys):
    job = write_job(tmp_path, {"args": BASE, "frames": 3})
    assert batch.main([job, "--rank", "0", "--ranks", "1"]) == 0
    captured = capsys.readouterr()
    lines = [l for l in captured.err.splitlines() if " done in " in l]
    assert [l.split(" done")[0] for l in lines] == ["nbsim-batch: frame %d" % f for f in range(3)]
    assert all("elapsed 0:0" in l and ", ETA " in l for l in lines)
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith("nbsim-batch: rank 0: 3 rendered, 0 already done, 0 failed")
    assert summary.endswith("job: 3 of 3 frames done")
    assert batch.main([job, "--rank", "0", "--ranks", "1", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert " done in " not in captured.err and "0 rendered, 3 already done" in captured.out


def test_no_pgm_in_the_job_folder_unless_asked(tmp_path):
    job = write_job(tmp_path, {"args": BASE, "frames": 2})
    assert run(job) == 0
    assert not list(tmp_path.rglob("*.pgm"))
    asked = write_job(tmp_path, {"args": BASE, "frames": 2, "name": "p", "outputs": {
        "-floatfile": "{frame}.bin", "-pgmfile": "{name}_{frame}.pgm"}})
    assert run(asked) == 0
    assert sorted(p.name for p in tmp_path.rglob("*.pgm")) == ["p_0.pgm", "p_1.pgm"]
    assert not list(tmp_path.glob("*.img"))  # the unnamed int/noise images were discarded


def test_a_failed_frame_is_tried_once_per_run_and_again_next_run(tmp_path):
    (tmp_path / "a.hkl").write_text("1 2 3 4\nnot a line\n")
    job_path = write_job(tmp_path, {"args": BASE.replace("-default_F 50", "-hkl a.hkl"),
                                    "frames": 2})
    assert run(job_path) == 1
    frames = tmp_path / "scan"
    assert sorted(p.name for p in frames.glob(".*.failed")) == [".scan_00000.failed",
                                                                 ".scan_00001.failed"]
    (tmp_path / "a.hkl").write_text("1 2 3 4\n")
    assert run(job_path) == 0
    assert not list(frames.glob(".*.failed"))
    job = batch.load_job(job_path)
    assert batch.is_done(job, 0) and batch.is_done(job, 1)


def test_force_renders_everything_again(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE, "frames": 2})
    assert run(job_path) == 0
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "scan").glob("*.bin")}
    assert run(job_path, "--rank", "0", "--ranks", "1", "--force") == 0
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "scan").glob("*.bin")}
    assert all(after[n] != before[n] for n in before)


# ---------------------------------------------------------------------------
# checks before and instead of rendering
# ---------------------------------------------------------------------------

def test_dry_run_catches_what_would_fail(tmp_path, capsys):
    (tmp_path / "a.hkl").write_text("1 2 3 4\n")
    job = write_job(tmp_path, {"args": BASE.replace("-default_F 50", ""), "frames": 3,
                               "vary": {"-hkl": ["a.hkl", "a.hkl", "missing.hkl"]}})
    assert batch.main([job, "--dry-run", "--rank", "0", "--ranks", "1"]) == 2
    err = capsys.readouterr().err
    assert "nbsim-batch: error: frame 2: -hkl: cannot read 'missing.hkl' (no such file)" in err
    assert not (tmp_path / "scan").exists()
    (tmp_path / "taken").write_text("a file where the output folder should go")
    job = write_job(tmp_path, {"args": BASE, "frames": 2, "directory": "taken/sub"})
    assert batch.main([job, "--dry-run", "--rank", "0", "--ranks", "1"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_dry_run_says_what_is_done_and_what_it_would_create(tmp_path, capsys):
    job = write_job(tmp_path, {"args": BASE, "frames": 2,
                               "outputs": {"-floatfile": "deep/{frame}.bin"}})
    assert batch.main([job, "--dry-run", "--rank", "0", "--ranks", "1"]) == 0
    out = capsys.readouterr().out
    assert "frame 0: to render (no marker): nanoBragg " in out
    assert "; would create %s, %s\n" % (tmp_path / "scan", tmp_path / "scan" / "deep") in out
    assert run(job) == 0
    assert batch.main([job, "--dry-run", "--rank", "0", "--ranks", "1"]) == 0
    out = capsys.readouterr().out
    assert "frame 1: done: nanoBragg" in out and "2 checked, 2 done, 0 to render" in out


def test_a_run_checks_the_first_frame_before_rendering(tmp_path, capsys):
    job = write_job(tmp_path, {"args": BASE + " -hkl nowhere.hkl", "frames": 2})
    assert batch.main([job, "--rank", "0", "--ranks", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "nbsim-batch: error: frame 0: -hkl: cannot read 'nowhere.hkl' (no such file)"
    assert not (tmp_path / "scan").exists()


def test_a_long_job_starts_without_checking_every_frame(tmp_path, monkeypatch):
    from nbsim.batch import runner
    checked = []
    real = cli.config_from_args
    monkeypatch.setattr(cli, "config_from_args", lambda a, w=None: checked.append(1) or real(a, w))

    def first_render(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "render_frame", first_render)
    job = write_job(tmp_path, {"args": BASE, "frames": 100000,
                               "vary": {"-phi": {"start": 0, "step": 0.01}}})
    with pytest.raises(KeyboardInterrupt):
        run(job)
    assert len(checked) == 2                 # the first and the last frame
    assert leftovers(tmp_path / "scan") == []
