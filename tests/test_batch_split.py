"""nbsim.batch.split: frames split into row parts rendered separately (by one process,
several, or mpiexec ranks) give the files of a plain ``nanoBragg`` run, byte for byte."""
import contextlib
import io
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import golden_cases as gc
from batch_jobs import mpiexec as _mpiexec, write_job
from batch_jobs import run as _run
from nbsim import batch, cli
from nbsim.batch import split
from nbsim.errors import NbsimError


def run(job, *extra, out=None):
    """The job in this process, on one rank unless told, stderr discarded."""
    return _run(job, *extra, out=out, quiet=True)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT_FLAGS = ("-floatfile", "-intfile", "-noisefile", "-pgmfile")
# interpolation runs out of range only in rows far from the beam: in row 48 of 64, so
# the parts before, around and after that row are all exercised
MIDFRAME = ("-cell 100 100 100 90 90 90 -hkl %s/cubic.hkl -interpolate -N 4 -lambda 1.0 "
            "-detpixels 64 -distance 120 -Xbeam 0 -Ybeam 3.2 -seed 1 -noprogress" % gc.INPUTS)


def plain_run(folder, argv, fdump=None):
    """``nanoBragg argv`` in ``folder`` (as the batch runs a frame: output folders made
    first); returns its stdout and stderr as one text, in the order written."""
    folder.mkdir(parents=True, exist_ok=True)
    if fdump is not None:
        (folder / "Fdump.bin").write_bytes(fdump)
    for i, word in enumerate(argv[:-1]):
        if word in OUTPUT_FLAGS + ("-nexusfile",) and os.path.dirname(argv[i + 1]):
            (folder / os.path.dirname(argv[i + 1])).mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    old = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            assert cli.main(argv) == 0
    finally:
        os.chdir(old)
    return without_addresses(text.getvalue())


def without_addresses(text):
    """The mmap line of -img/-mask prints a buffer address, different in every run."""
    return gc.ADDRESS.sub("= ADDRESS", text)


def files_of(folder):
    """Every file a frame wrote (not the batch's own logs, markers and parts)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and
            p.suffix not in (".log", ".json")}


def log_text(path):
    """A frame's log without the batch's comment lines: what nanoBragg printed."""
    return without_addresses("".join(line for line in open(path).read().splitlines(True)
                                     if not line.startswith("# ")))


def golden_spec(case, engine, parts):
    """A one-frame job of golden case ``case``: its flags, its output names."""
    args, outputs = [], {}
    words = gc.args_for_mode(case)
    i = 0
    while i < len(words):
        if words[i] in OUTPUT_FLAGS:
            outputs[words[i]] = words[i + 1]
            i += 2
            continue
        args.append(words[i])
        i += 1
    return {"args": args + ["-engine", engine], "frames": 1, "directory": ".",
            "outputs": outputs, "split_rows": parts}


def leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*")
                  if p.name.endswith((".npz", ".tmp", ".claim")) or ".probe" in p.name)


GOLDEN = ["phi_from_zero_carryover", "interpolate_forced_out_of_range", "mask",
          "noise_scale_adc"]


@pytest.mark.parametrize("engine", ["numba", "c"])
@pytest.mark.parametrize("name", GOLDEN)
def test_split_golden_frames_are_the_reference_files(tmp_path, name, engine):
    """-c_parity's carry-over, interpolation switched off, a mask, -scale/-adc: the
    frame in 3 row parts has the reference's bytes and statistics lines, and the
    plain command's files and output."""
    case = gc.load_case(name)
    assert not case["flags"].get("pre_fdump")
    job_path = write_job(tmp_path / "split", golden_spec(case, engine, 3))
    assert run(job_path) == 0
    split_dir = tmp_path / "split"
    for fname in case["files"]:
        assert (split_dir / fname).read_bytes() == gc.golden_file(name, fname), fname
    log = log_text(split_dir / "scan_00000.log")
    assert gc.stat_lines(log) == gc.stat_lines(case["stdout"])
    job = batch.load_job(job_path)
    plain = plain_run(tmp_path / "plain", job.frame_argv(0))
    assert log == plain
    assert files_of(split_dir) == files_of(tmp_path / "plain")
    assert leftovers(split_dir) == []


@pytest.mark.parametrize("engine", ["numba", "c"])
@pytest.mark.parametrize("parts", [2, 5, 100])
def test_interpolation_cut_off_mid_frame(tmp_path, engine, parts):
    """The cut-off in row 48 of 64: parts before it interpolate, the one holding it
    switches off there, the ones after never interpolate; more parts than rows too.
    With the other outputs (TIFF, NXmx, PNG) and the PGM."""
    outputs = {"-floatfile": "{name}.bin", "-intfile": "{name}.img",
               "-noisefile": "{name}_noise.img", "-pgmfile": "{name}.pgm",
               "-tifffile": "{name}.tif", "-nexusfile": "{name}.h5", "-pngfile": "{name}.png"}
    # with the progress lines, which the warning interrupts
    spec = {"args": MIDFRAME.replace(" -noprogress", "") + " -engine " + engine, "frames": 1,
            "outputs": outputs, "split_rows": parts}
    job_path = write_job(tmp_path / "split", spec)
    assert run(job_path) == 0
    job = batch.load_job(job_path)
    plain = plain_run(tmp_path / "plain", job.frame_argv(0))
    assert "WARNING: out of range for three point interpolation" in plain
    assert "90% done" in plain
    assert log_text(job.log_path(0)) == plain
    got, want = files_of(tmp_path / "split"), files_of(tmp_path / "plain")
    assert sorted(got) == sorted(want) and len(want) == 8       # with Fdump.bin
    for fname in want:
        assert got[fname] == want[fname], fname
    assert leftovers(tmp_path / "split") == []


@pytest.mark.skipif(_mpiexec() is None,
                    reason="needs mpi4py and an mpiexec (pip install mpi4py mpich)")
def test_under_mpiexec_two_ranks_share_one_frame(tmp_path):
    """Rank r takes parts r and r + 2 (static schedule), so each renders two parts
    and rank 1 needs the interpolation probes of parts rank 0 has not reached yet."""
    spec = {"args": MIDFRAME + " -engine c", "frames": 2, "split_rows": 4,
            "vary": {"-phi": {"start": 0, "step": 1}},
            "nexus": {"data": "noise"}}
    spec["args"] += " -osc 1"
    job_path = write_job(tmp_path / "mpi", spec)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NBSIM_THREADS", None)
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "nbsim.batch", job_path,
                           "--schedule", "static"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"frames in 4 row parts; rank 1 of 2 \((PMI|Open MPI)\), static "
                     r"schedule", done.stdout), done.stdout
    parts = sorted(int(line.split(" rendered (")[1].split()[0]) for line in
                   done.stdout.splitlines() if " row parts), " in line)
    assert parts == [4, 4], done.stdout                  # 2 frames x 2 parts each
    assert done.stdout.count("wrote 2 frames") == 1
    job = batch.load_job(job_path)
    for frame in range(2):
        argv = job.frame_argv(frame)
        plain = plain_run(tmp_path / ("plain%d" % frame), argv)
        assert log_text(job.log_path(frame)) == plain
        for flag, rel in job.frame_outputs(frame, absolute=False):
            assert (tmp_path / "mpi" / rel).read_bytes() == \
                (tmp_path / ("plain%d" % frame) / rel).read_bytes(), rel
    assert leftovers(tmp_path / "mpi") == []


BASE = "-cell 60 60 60 90 90 90 -default_F 50 -N 3 -detpixels 24 -noprogress -engine c"
# about 0.3 s per part on one thread: long enough to be caught mid-frame
SLOW = ("-cell 60 60 60 90 90 90 -default_F 50 -N 10 -lambda 1.2 -distance 80 "
        "-detpixels 384 -pixel 0.2 -oversample 10 -noprogress -engine c -threads 1")


def test_a_killed_part_is_rendered_by_the_next_run(tmp_path):
    job_path = write_job(tmp_path / "killed", {"args": SLOW, "frames": 1, "split_rows": 6})
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "nbsim.batch", job_path, "--rank", "0",
                             "--ranks", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "part 2/6 done" in line or len(seen) > 50:
            break
    proc.send_signal(signal.SIGKILL)       # no chance to clean up: its claim stays
    proc.communicate(timeout=60)
    assert "part 2/6 done" in seen[-1], "".join(seen)
    folder = tmp_path / "killed" / "scan"
    saved = [p.name for p in folder.glob(".scan_00000.part*.npz")]
    assert 2 <= len(saved) < 6
    # the part being rendered was killed (its claim stays, for the next run to take over)
    assert len(list(folder.glob(".*.claim"))) <= 1
    assert not batch.is_done(batch.load_job(job_path), 0)
    text = io.StringIO()
    assert run(job_path, out=text) == 0
    assert "1 rendered (%d row parts)" % (6 - len(saved)) in text.getvalue()
    job = batch.load_job(job_path)
    plain_run(tmp_path / "plain", job.frame_argv(0))
    assert files_of(tmp_path / "killed") == files_of(tmp_path / "plain")
    assert leftovers(tmp_path / "killed") == []


def _render_parts(job, frame, parts_to_render):
    """Save some parts of a frame as a rank would, without assembling it."""
    old = os.getcwd()
    os.chdir(job.folder)
    try:
        os.makedirs(job.directory, exist_ok=True)
        claims = batch.Claims(job.directory)
        fp = split.FrameParts(job, frame, batch.Digests())
        renderer = fp.renderer()
        for part in parts_to_render:
            fp.render_part(part, renderer, claims)
        claims.release_all()
        return fp
    finally:
        os.chdir(old)


def test_parts_agree_on_the_cut_off_whoever_probes(tmp_path):
    """Part 3 (rows 48-63, holding the cut-off) rendered first computes the probes of
    parts 0-2 itself; part 2 then waits for part 1's probe while part 1's claim is held,
    and uses it once published; the frame assembles to the plain command's files."""
    import threading
    spec = {"args": MIDFRAME + " -engine c", "frames": 1, "split_rows": 4}
    job_path = write_job(tmp_path / "split", spec)
    job = batch.load_job(job_path)
    fp = _render_parts(job, 0, [3])
    assert all(fp.read_probe(q)[0] for q in range(4))
    assert [fp.read_probe(q)[1] is None for q in range(4)] == [True, True, True, False]
    trigger = fp.read_probe(3)[1]
    assert trigger.pixel // 64 == 48
    os.unlink(fp.probe_path(1))
    old = os.getcwd()
    os.chdir(job.folder)
    try:
        holder = batch.Claims(job.directory)
        held = holder.take(fp.claim_key(1))          # "another process" probing part 1
        renderer = fp.renderer()

        def publish():
            fp.write_probe(1, renderer.probe(16, 32))
            holder.release(held)

        timer = threading.Timer(0.5, publish)
        timer.start()
        claims = batch.Claims(job.directory)
        import time
        start = time.monotonic()
        assert fp.trigger_for(2, renderer, claims) is None
        assert time.monotonic() - start >= 0.4                    # it waited for part 1
        timer.join()
        assert fp.trigger_for(3, renderer, claims) == trigger
        claims.release_all()
        holder.release_all()
    finally:
        os.chdir(old)
    assert run(job_path) == 0
    plain_run(tmp_path / "plain", job.frame_argv(0))
    assert files_of(tmp_path / "split" / "scan") == files_of(tmp_path / "plain" / "scan")


def test_damaged_and_foreign_parts_are_not_used(tmp_path):
    spec = {"args": MIDFRAME + " -engine c", "frames": 1, "split_rows": 3}
    job_path = write_job(tmp_path / "split", spec)
    job = batch.load_job(job_path)
    fp = _render_parts(job, 0, range(3))
    # a damaged part: same size, one byte changed inside the image
    path = fp.part_path(1)
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2] ^= 0x40
    open(path, "wb").write(bytes(raw))
    assert fp.load(1, fp.renderer().plan) is None
    # parts of another version of the job are not this job's parts
    other = dict(spec, args=spec["args"].replace("-N 4", "-N 5"))
    old_job = batch.load_job(write_job(tmp_path / "split", other, "old.json"))
    old_job.name, old_job.directory = job.name, job.directory
    stale = _render_parts(old_job, 0, [2])
    assert stale.ident != fp.ident and os.path.exists(stale.part_path(2))
    assert run(job_path) == 0
    plain_run(tmp_path / "plain", job.frame_argv(0))
    assert files_of(tmp_path / "split" / "scan") == files_of(tmp_path / "plain" / "scan")
    assert leftovers(tmp_path / "split") == []


def test_parts_left_behind_a_done_frame_are_removed_by_the_next_run(tmp_path):
    """An assembler stopped between the frame's marker and removing its parts."""
    job_path = write_job(tmp_path, {"args": BASE, "frames": 2, "split_rows": 3})
    assert run(job_path) == 0
    folder = tmp_path / "scan"
    left = [folder / ".scan_00001.part002of003-0123456789abcdef.npz",
            folder / ".scan_00001.probe000of003-0123456789abcdef.json"]
    for path in left:
        path.write_bytes(b"left behind")
    (folder / ".scan_00001.claims-are-not-parts.npz").write_bytes(b"not ours")
    text = io.StringIO()
    assert run(job_path, out=text) == 0
    assert "0 rendered (0 row parts), 2 already done" in text.getvalue()
    assert not any(p.exists() for p in left)
    assert (folder / ".scan_00001.claims-are-not-parts.npz").exists()


def test_a_part_that_fails_fails_the_frame(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE + " -pixel 0", "frames": 2, "split_rows": 2})
    assert run(job_path) == 1
    job = batch.load_job(job_path)
    log = open(job.log_path(0)).read()
    assert "# row part 0 of 2" in log and "nanoBragg: error: frame 0: -pixel" in log
    assert os.path.exists(job.failed_path(0)) and not batch.is_done(job, 0)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("value", [0, 257, "2", True, 1.5])
def test_bad_split_rows_is_a_one_line_error(tmp_path, value):
    with pytest.raises(NbsimError, match="'split_rows' must be a whole number") as err:
        batch.Job({"args": BASE, "frames": 1, "split_rows": value}, str(tmp_path / "j.json"))
    assert "\n" not in str(err.value)


def test_part_rows_cover_the_frame_once():
    for spixels in (1, 7, 64, 1000):
        for parts in (1, 2, 3, 7, 64, 256):
            rows = [split.part_rows(spixels, p, parts) for p in range(parts)]
            assert rows[0][0] == 0 and rows[-1][1] == spixels
            assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
            sizes = [b - a for a, b in rows]
            assert max(sizes) - min(sizes) <= 1
    assert np.sum([b - a for a, b in (split.part_rows(10, p, 3) for p in range(3))]) == 10
