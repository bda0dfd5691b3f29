"""nbsim.batch.job: bounded, contained job files and each frame's command line."""
import json
import os
import sys
import time

import pytest

from nbsim.batch import job as job_mod
from nbsim.batch.job import MAX_FRAMES, Job, load_job
from nbsim.errors import NbsimError

ARGS = "-cell 60 60 60 90 90 90 -default_F 50 -N 3 -detpixels 16 -noprogress"


def make(tmp_path, allow_outside=False, **spec):
    spec.setdefault("args", ARGS)
    spec.setdefault("frames", 3)
    return Job(spec, str(tmp_path / "scan.json"), allow_outside=allow_outside)


def one_line_error(tmp_path, words, **spec):
    with pytest.raises(NbsimError) as err:
        make(tmp_path, **spec)
    assert words in str(err.value), str(err.value)
    assert "\n" not in str(err.value)
    return str(err.value)


# --- containment ----------------------------------------------------------------

@pytest.mark.parametrize("spec, words", [
    ({"directory": "/tmp/elsewhere"}, "'directory' '/tmp/elsewhere' is outside"),
    ({"directory": "../up"}, "is outside the job's folder"),
    ({"directory": "a/../../up"}, "is outside the job's folder"),
    ({"directory": ".."}, "is outside the job's folder"),
    ({"name": ".."}, "'name' must be a plain file-name prefix"),
    ({"name": "."}, "'name' must be a plain"),
    ({"name": "a/b"}, "'name' must be a plain"),
    ({"name": ""}, "'name' must be a plain"),
    ({"name": "x" * 200}, "'name' must be a plain"),
    ({"outputs": {"-floatfile": "../{frame}.bin"}}, "is outside the output folder"),
    ({"outputs": {"-floatfile": "sub/../../{frame}.bin"}}, "is outside the output folder"),
    ({"outputs": {"-floatfile": "/tmp/{frame}.bin"}}, "is outside the output folder"),
    ({"outputs": {"-floatfile": "{frame:/>4}"}}, "is outside the output folder"),
    ({"outputs": {"-floatfile": "{name}{frame}", "-intfile": "{name}{frame}"}},
     "is also the file of -floatfile"),
    ({"frames": 1, "directory": ".", "outputs": {"-floatfile": "scan.json"}},
     "would overwrite the job file"),
    ({"outputs": {"-floatfile": "{name}_{frame:05d}.log"}}, "would overwrite the frame's log"),
])
def test_outputs_stay_inside_the_output_folder(tmp_path, spec, words):
    one_line_error(tmp_path, words, **spec)


def test_allow_outside_lets_them_out(tmp_path):
    job = make(tmp_path, allow_outside=True, directory=str(tmp_path / "abs"),
               outputs={"-floatfile": "../up_{frame}.bin"})
    assert job.frame_outputs(1) == [("-floatfile", str(tmp_path / "up_1.bin"))]


def test_subfolders_inside_are_fine_and_dashes_are_not_flags(tmp_path):
    job = make(tmp_path, directory=".", outputs={"-floatfile": "-x{frame}.bin",
                                                 "-intfile": "ints/{name}_{frame}.img"})
    argv = job.frame_argv(2)
    assert argv[argv.index("-floatfile") + 1] == os.path.join(".", "-x2.bin")
    assert argv[argv.index("-intfile") + 1] == os.path.join("ints", "scan_2.img")


# --- what every frame writes ------------------------------------------------------

def test_unnamed_images_are_discarded_and_pgm_only_when_asked(tmp_path):
    job = make(tmp_path, outputs={"-floatfile": "{frame}.bin"})
    argv = job.frame_argv(0)
    assert argv[argv.index("-intfile") + 1] == os.devnull
    assert argv[argv.index("-noisefile") + 1] == os.devnull
    assert argv[-1] == "-nopgm" and "-pgmfile" not in argv
    assert any("discarded" in n for n in job.notes)
    with_pgm = make(tmp_path, outputs={"-floatfile": "{frame}.bin", "-pgmfile": "{frame}.pgm"})
    assert "-nopgm" not in with_pgm.frame_argv(0)
    default = make(tmp_path)
    assert default.notes == [] and os.devnull not in default.frame_argv(0)
    assert "-noisefile" not in make(tmp_path, args=ARGS + " -nonoise").frame_argv(0)


def test_nbsim_outputs_are_named_per_frame_too(tmp_path):
    job = make(tmp_path, outputs={"-floatfile": "{frame}.bin", "-cbffile": "{name}_{frame}.cbf",
                                  "-pngfile": "png/{frame:03d}.png"})
    argv = job.frame_argv(2)
    assert argv[argv.index("-cbffile") + 1] == os.path.join("scan", "scan_2.cbf")
    assert argv[argv.index("-pngfile") + 1] == os.path.join("scan", "png", "002.png")
    one_line_error(tmp_path, "args set -nexusfile", args=ARGS + " -nexusfile all.h5")


@pytest.mark.parametrize("spec, words", [
    ({"args": ARGS + " -nonoise", "outputs": {"-noisefile": "{frame}.img"}},
     "outputs name -noisefile but args say -nonoise"),
    ({"args": ARGS + " -nopgm", "outputs": {"-pgmfile": "{frame}.pgm"}},
     "outputs name -pgmfile but args say -nopgm"),
    ({"vary": {"-floatfile": ["a", "b", "c"]}}, "is an output"),
])
def test_outputs_that_could_never_be_complete(tmp_path, spec, words):
    one_line_error(tmp_path, words, **spec)


# --- bounds ---------------------------------------------------------------------

def test_frames_are_bounded(tmp_path):
    one_line_error(tmp_path, "at most %d frames" % MAX_FRAMES, frames=1_000_000_000)
    one_line_error(tmp_path, "'frames' must be a whole number", frames=True)


def test_a_large_job_costs_nothing_up_front(tmp_path):
    start = time.process_time()
    job = make(tmp_path, frames=MAX_FRAMES, vary={"-phi": {"start": 0, "step": 1e-4}})
    assert time.process_time() - start < 0.5
    assert job.frame_argv(MAX_FRAMES - 1)[job.frame_argv(0).index("-phi") + 1] == \
        repr((MAX_FRAMES - 1) * 1e-4)
    assert job.check_frames() == [0, MAX_FRAMES - 1]


@pytest.mark.parametrize("vary, words", [
    ({"-phi": {"start": 1e308, "step": 1e308}}, "frame 2 would get inf"),
    ({"-phi": {"start": -1e308, "step": -1e308}}, "frame 2 would get -inf"),
    ({"-phi": {"start": 10 ** 400, "step": 1}}, "not a finite number"),
    ({"-phi": [1.0, float("inf"), 2.0]}, "inf is not a finite number"),
    ({"-phi": [1.0, float("nan"), 2.0]}, "nan is not a finite number"),
    ({"-phi": [1, 10 ** 400, 2]}, "too large for a number"),
    ({"-phi": [1, None, 2]}, "values must be numbers or words"),
    ({"-phi": [1, True, 2]}, "values must be numbers or words"),
    ({"-phi": ["a\0b", "1", "2"]}, "NUL"),
    ({"-phi": ["x" * 5000, "1", "2"]}, "a word of 5000 characters"),
])
def test_per_frame_values_are_finite_words(tmp_path, vary, words):
    one_line_error(tmp_path, words, vary=vary)


def test_distinct_listed_values_are_checked_up_front(tmp_path):
    job = make(tmp_path, frames=6, vary={"-distance": [80, 80, 90, 80, 90, 100]})
    assert job.check_frames() == [0, 2, 5]


# --- reading job files --------------------------------------------------------------

def test_toml_without_tomllib_uses_tomli(tmp_path, monkeypatch):
    pytest.importorskip("tomli")
    path = tmp_path / "dose.toml"
    path.write_text('args = "%s"\nframes = 2\n[vary."-fluence"]\nstart = 1e20\nstep = 1e20\n'
                    % ARGS)
    monkeypatch.setitem(sys.modules, "tomllib", None)      # as on Python 3.9 and 3.10
    job = load_job(str(path))
    assert job.frame_argv(1)[job.frame_argv(1).index("-fluence") + 1] == "2e+20"


def test_toml_without_either_parser_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "j.toml"
    path.write_text("frames = 1\n")
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(NbsimError, match="pip install tomli"):
        load_job(str(path))


def test_setup_declares_tomli_for_old_pythons():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "setup.py")) as fh:
        assert "tomli; python_version<\"3.11\"" in fh.read().replace("'", '"')


@pytest.mark.parametrize("content, words", [
    ("{ not json", "job file"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    (b"\xff\xfe", "job file"),
    ('["a list"]', "expected a table of keys"),
])
def test_malformed_job_files(tmp_path, content, words):
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(NbsimError, match=words):
        load_job(str(path))


def test_a_fifo_or_a_huge_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    fifo = tmp_path / "job.json"
    os.mkfifo(fifo)
    with pytest.raises(NbsimError, match="not a regular file"):
        load_job(str(fifo))                 # returns at once: nothing writes the FIFO
    monkeypatch.setattr(job_mod, "MAX_JOB_BYTES", 100)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"args": "x" * 200, "frames": 1}))
    with pytest.raises(NbsimError, match="job files are at most"):
        load_job(str(big))
    with pytest.raises(NbsimError, match="cannot read job file"):
        load_job(str(tmp_path / "missing.json"))
