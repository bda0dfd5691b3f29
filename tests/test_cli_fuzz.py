"""Seeded fuzzing of the nanoBragg command line (issue 13, "Keep it true").

Each case is a random command line: a soup of the reference's flags and nbsim's own,
with values drawn from good numbers, garbage words, non-ASCII digits, huge and
non-finite numbers, and odd files (empty, binary, truncated SMV, a FIFO nobody writes,
a directory, a device, a missing path). Every run must end by itself (a timeout is a
failure), not by a signal, without a traceback, and either succeed (exit 0) or fail
with one error line as the last line of stderr, leaving no file behind in its working
folder and its input files untouched.

NBSIM_FUZZ_RUNS sets the number of command lines (default 120, under a minute here);
NBSIM_FUZZ_SEED shifts the seeds so that repeated runs try new lines; NBSIM_FUZZ_NUMBA=1
adds the Numba engine and -printout. A failure message
gives the exact command line to replay.
"""
import hashlib
import os
import random
import shlex
import signal
import subprocess
import sys

import pytest

from nbsim.flags import REFERENCE_RULES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_INPUTS = os.path.join(ROOT, "tests", "golden", "inputs")
RUNS = int(os.environ.get("NBSIM_FUZZ_RUNS", "120"))
SEED0 = int(os.environ.get("NBSIM_FUZZ_SEED", "0"))
TIMEOUT = float(os.environ.get("NBSIM_FUZZ_TIMEOUT", "60"))

REFERENCE_FLAGS = sorted({n for rule in REFERENCE_RULES for n in rule.names})
# nbsim-only flags; -engine numba and -printout are left out by default: they compile
# Numba kernels, minutes on a fresh machine (tests/test_engines.py and test_printout.py
# cover them)
NBSIM_FLAGS = ["-engine", "-threads", "-c_parity", "-fast", "-tifffile", "-version", "-h"]
# NBSIM_FUZZ_NUMBA=1 adds them (after a first run has compiled and cached the kernels)
WITH_NUMBA = bool(os.environ.get("NBSIM_FUZZ_NUMBA"))
if WITH_NUMBA:
    NBSIM_FLAGS += ["-printout"]
# flags whose value multiplies the work: drawn from values that stay small or that
# nbsim refuses at once, so that a run never legitimately takes minutes
COUNTS = {"-oversample", "-phisteps", "-mosaic_dom", "-mosaic_domains", "-dispsteps",
          "-hdivsteps", "-vdivsteps", "-divsteps", "-thicksteps", "-detector_thicksteps",
          "-detpixels", "-detpixels_f", "-detpixels_s", "-detpixels_x", "-detpixels_y"}
SIZES = {"-detsize", "-detsize_f", "-detsize_s", "-xtalsize", "-xtal_size", "-samplesize",
         "-sample_size", "-sample_x", "-sample_y", "-sample_z", "-xtal_x", "-xtal_y",
         "-xtal_z", "-width", "-height", "-sample_thick", "-sample_width",
         "-sample_height", "-xtal_thick", "-xtal_width", "-xtal_height", "-pixel",
         "-hdivstep", "-vdivstep", "-phistep", "-N", "-Na", "-Nb", "-Nc"}

GOOD_NUMBERS = ["0", "1", "2", "3", "-1", "0.5", "1.5", "10", "90", "100", "-3", "1e-3",
                "12398.42", "0.1", "45", "-45", "7"]
GARBAGE = ["abc", "", "-", "--", "+", ".", "e5", "1e", "1e999", "-1e999", "nan", "-nan",
           "inf", "-inf", "infinity", "NaN(123)", "0x1p3", "0x", "1,5", " 5", "5 ",
           "\uff11\uff16", "\u0664\u0665", "\u00b2", "1\u00a0", "9" * 40, "-0", "1.2.3",
           "random", "sample", "beam", "--help", "-", "\U0001f600", "\t", "a b"]
SMALL_COUNTS = ["0", "1", "2", "3", "-1", "-7", "10000000", "2147483648", "-2147483649",
                "x", "1.5", "nan"]
# output flags never get the FIFO: writing into a FIFO nobody reads waits, in the
# reference as in nbsim (a use: a reader streams the image), so it is no fuzz finding
OUTPUT_FLAGS = {"-floatfile", "-floatimage", "-intfile", "-intimage", "-pgmfile", "-pgmimage",
                "-noisefile", "-noiseimage", "-tifffile", "-dump", "-dumpfile", "-nexusfile",
                "-cbffile", "-geomfile", "-pngfile"}
SMALL_SIZES = ["0.1", "0.5", "1", "-1", "0", "1e-300", "nan", "inf", "1e9", "x", "0.05"]


def _odd_files(folder):
    """Odd input files, made fresh for each run; returns {name: path}."""
    os.makedirs(folder, exist_ok=True)
    files = {}

    def put(name, data):
        path = os.path.join(folder, name)
        with open(path, "wb") as fh:
            fh.write(data)
        files[name] = path

    put("empty", b"")
    put("binary", bytes(range(256)) * 8)
    put("text", b"hello world\n")
    put("nul", b"\0" * 600)
    header = (b"{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
              b"SIZE1=8;\nSIZE2=8;\nPIXEL_SIZE=0.1;\nDISTANCE=100;\n}\f")
    put("smv_truncated", header + b" " * (512 - len(header)) + b"\1\0" * 10)
    put("smv_header_only", header[:40])
    put("smv_ok", header + b" " * (512 - len(header)) + b"\1\0" * 64)
    put("hkl_ok", b"0 0 0 10\n1 0 0 20\n0 1 0 30\n")
    put("hkl_bad", b"1 2 3\n4 5 6 7 8\n")
    put("mat_short", b"0.01 0 0\n0 0.01\n")
    put("src_ok", b"-10 0 0 1 1e-10\n")
    put("src_bad", b"# a comment\n1 2 3\n")
    put("dump_bad", b"1 2 3 4 5 6\n\f\1\2")
    fifo = os.path.join(folder, "fifo")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    files["fifo"] = fifo
    directory = os.path.join(folder, "dir")
    os.makedirs(directory, exist_ok=True)
    files["dir"] = directory
    files["missing"] = os.path.join(folder, "does_not_exist")
    files["devzero"] = "/dev/zero"
    # copies, never the repository's own files: a run may write its outputs over them
    for name in ("cubic.hkl", "tetra.mat", "sources.txt", "mask.img", "header.img"):
        with open(os.path.join(GOLDEN_INPUTS, name), "rb") as fh:
            put(name, fh.read())
    return files


_ARITY = {}
for _rule in REFERENCE_RULES:
    for _name in _rule.names:
        _ARITY.setdefault(_name, (_rule.nvals, _rule.kinds))
FINITE_ODD = ["1e-300", "1e300", "-0", "0.0001", "360", "-720", "1e-9", "2147483647",
              "nan", "inf", "-inf", "1e999"]


def _paths(flag, files):
    return [p for name, p in files.items() if not (name == "fifo" and flag in OUTPUT_FLAGS)]


def _typed_value(r, flag, kind, files):
    """A value of the kind the flag expects (mostly well formed, sometimes extreme)."""
    if kind == "s":
        return r.choice(_paths(flag, files) + ["out.bin", "sample", "beam", "random"])
    if flag in COUNTS:
        return r.choice(SMALL_COUNTS[:7] if kind == "i" else SMALL_SIZES)
    if flag in SIZES:
        return r.choice(SMALL_SIZES if kind == "f" else SMALL_COUNTS[:7])
    if kind == "i":
        return r.choice(["0", "1", "2", "-1", "3", "12", "-5", "2147483647", "99"])
    return r.choice(GOOD_NUMBERS + FINITE_ODD)


def _value(r, flag, files):
    roll = r.random()
    if roll < 0.25:
        return r.choice(_paths(flag, files))
    if flag in COUNTS:
        return r.choice(SMALL_COUNTS if roll < 0.85 else GARBAGE)
    if flag in SIZES:
        return r.choice(SMALL_SIZES if roll < 0.85 else GARBAGE)
    if roll < 0.7:
        return r.choice(GOOD_NUMBERS)
    return r.choice(GARBAGE)


def command_line(seed, files):
    r = random.Random(seed)
    args = []
    if r.random() < 0.8:     # mostly something that can render, then the soup
        args += r.choice([["-cell", "70", "80", "90", "90", "90", "90"],
                          ["-mat", files["tetra.mat"]], []])
        args += r.choice([["-default_F", "10"], ["-hkl", files["cubic.hkl"]], []])
        args += ["-N", str(r.randint(1, 4)), "-noprogress"]
    for _ in range(r.randint(1, 8)):
        flag = r.choice(REFERENCE_FLAGS if r.random() < 0.85 else NBSIM_FLAGS)
        if flag == "-engine":
            args += [flag, r.choice(["c", "auto", "warp", "", "-threads"]
                                    + (["numba"] * 3 if WITH_NUMBA else []))]
            continue
        if flag in OUTPUT_FLAGS and r.random() < 0.8:
            args += [flag, r.choice(_paths(flag, files) + ["out.bin", "o.img", "sub/x.bin"])]
            continue
        if flag == "-threads":
            args += [flag, r.choice(["1", "2", "0", "-1", "1024", "x", "\uff14"])]
            continue
        args.append(flag)
        nvals, kinds = _ARITY.get(flag, (0, ""))
        if r.random() < 0.8 and flag in _ARITY:
            # well formed: the flag's own number of values, of its kinds
            for j in range(nvals if kinds[:1] != "f" or "?" not in kinds else r.choice([3, 6])):
                args.append(_typed_value(r, flag, (kinds + "f" * 6)[j], files))
        else:
            for _ in range(r.choice([0, 1, 1, 1, 2, 3, 4])):
                args.append(_value(r, flag, files))
    # keep the detector small (the last -detpixels wins) unless the soup ends mid-flag
    if r.random() < 0.9 or "-printout" in args:     # -printout prints 14 lines a pixel
        args += ["-detpixels", str(r.randint(1, 12))]
    return args


def _snapshot(files):
    out = {}
    for name, path in files.items():
        if os.path.isfile(path) and not path.startswith("/dev/"):
            with open(path, "rb") as fh:
                out[name] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _check(proc, args, workdir, before, files):
    replay = "replay: nanoBragg " + " ".join(shlex.quote(a) for a in args)
    assert proc.returncode >= 0, "killed by signal %d; %s" % (-proc.returncode, replay)
    err = proc.stderr
    assert "Traceback" not in err, err[-3000:] + "\n" + replay
    lines = [line for line in err.splitlines() if line.strip()]
    if proc.returncode == 0:
        assert not any(line.startswith("nanoBragg: error") for line in lines), replay
        return
    assert lines, "failed without a word; " + replay
    last = lines[-1]
    assert last.startswith("nanoBragg: "), "last stderr line %r; %s" % (last, replay)
    others = [line for line in lines[:-1] if not line.startswith("nbsim: ")]
    assert not others, "extra stderr lines %r; %s" % (others, replay)
    left = sorted(os.listdir(workdir))
    assert left == [], "files left behind after a failure: %s; %s" % (left, replay)
    assert _snapshot(files) == before, "an input file changed; " + replay


@pytest.mark.parametrize("case", range(RUNS))
def test_command_line_fuzz(case, tmp_path):
    seed = 1000003 * (SEED0 + case) + 17
    files = _odd_files(str(tmp_path / "inputs"))
    args = command_line(seed, files)
    workdir = tmp_path / "run"
    workdir.mkdir()
    before = _snapshot(files)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NBSIM_THREADS="1")
    env.pop("NBSIM_ENGINE", None)
    try:
        proc = subprocess.run([sys.executable, "-m", "nbsim"] + args, cwd=workdir,
                              stdin=subprocess.DEVNULL, capture_output=True, env=env,
                              timeout=TIMEOUT, start_new_session=True,
                              encoding="utf-8", errors="replace")
    except subprocess.TimeoutExpired:
        pytest.fail("no answer within %g s; replay: nanoBragg %s"
                    % (TIMEOUT, " ".join(shlex.quote(a) for a in args)))
    _check(proc, args, workdir, before, files)


def test_fuzz_checks_catch_failures(tmp_path):
    """The checks above fail on what they must catch (so that a green run means it)."""
    files = _odd_files(str(tmp_path / "inputs"))
    before = _snapshot(files)
    (tmp_path / "run").mkdir()

    class P:
        def __init__(self, code, err):
            self.returncode, self.stderr = code, err
    with pytest.raises(AssertionError, match="signal"):
        _check(P(-signal.SIGSEGV, ""), ["-x"], tmp_path / "run", before, files)
    with pytest.raises(AssertionError, match="Traceback"):
        _check(P(1, "Traceback (most recent call last):\n"), ["-x"], tmp_path / "run", before, files)
    with pytest.raises(AssertionError, match="extra stderr"):
        _check(P(2, "oops\nnanoBragg: error: x\n"), ["-x"], tmp_path / "run", before, files)
    (tmp_path / "run" / "floatimage.bin").write_bytes(b"1")
    with pytest.raises(AssertionError, match="left behind"):
        _check(P(2, "nanoBragg: error: x\n"), ["-x"], tmp_path / "run", before, files)
    os.remove(tmp_path / "run" / "floatimage.bin")
    with open(files["text"], "ab") as fh:
        fh.write(b"!")
    with pytest.raises(AssertionError, match="input file changed"):
        _check(P(2, "nanoBragg: error: x\n"), ["-x"], tmp_path / "run", before, files)
