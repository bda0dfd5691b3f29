"""nbsim.batch: job files, frames as command lines, ranks and restarts."""
import json
import os

import pytest

from nbsim import batch, cli
from nbsim.errors import NbsimError

BASE = ("-cell 60 60 60 90 90 90 -default_F 50 -N 3 -lambda 1.2 -distance 80 "
        "-detpixels 24 -pixel 0.2 -noprogress -engine c")


def write_job(folder, spec, name="scan.json"):
    path = folder / name
    path.write_text(json.dumps(spec))
    return str(path)


def run(job, *extra):
    # one rank unless told otherwise; spelt out so that the test process itself never
    # starts MPI (the mpiexec test below covers mpi4py)
    extra = list(extra) or ["--rank", "0", "--ranks", "1"]
    with open(os.devnull, "w") as sink:
        return batch.run(batch.build_parser().parse_args([job] + extra), out=sink)


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


def _mpiexec():
    import shutil
    import sys
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    # the launcher that belongs to this interpreter's MPI, else one on PATH
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


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
    assert "rank 0 of 2 (mpi4py), dynamic schedule" in done.stdout
    assert "rank 1 of 2 (mpi4py), dynamic schedule" in done.stdout
    rendered = [int(line.split(": ")[2].split()[0]) for line in done.stdout.splitlines()
                if " rendered, " in line]
    assert sorted(rendered) != [0, 0] and sum(rendered) == 4     # each frame once
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
