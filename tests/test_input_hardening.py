"""Bad command-line input: one-line errors naming the flag or file, no traceback, no
output left behind; odd input the reference renders keeps rendering."""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from nbsim import cli

BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-lambda", "6.2", "-N", "2",
        "-distance", "100", "-detpixels", "8", "-pixel", "0.1", "-seed", "1", "-noprogress"]
DF = ["-default_F", "100"]
OUTPUTS = ("floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img")


def smv(width=8, height=8, extra=""):
    text = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            "SIZE1=%s;\nSIZE2=%s;\nPIXEL_SIZE=0.1;\nDISTANCE=100;\nWAVELENGTH=6.2;\n%s}\f"
            % (width, height, extra)).encode("latin-1")
    return text + b" " * (512 - len(text)) + b"\x01\x00" * (8 * 8)


def run_in(tmp_path, monkeypatch, capsys, args, files=()):
    for name, data in dict(files).items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(code, err, *fragments, tmp_path=None):
    assert code not in (0, None), err
    assert "Traceback" not in err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("nanoBragg: error:"), err
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    if tmp_path is not None:
        left = sorted(p.name for p in tmp_path.iterdir()
                      if p.name in OUTPUTS or p.name.endswith((".tmp", ".bin", ".pgm")))
        assert left == [], left


@pytest.mark.parametrize("content, fragments", [
    (b"0 0 0 10\n\x00\x00\x00\n", ["t.hkl' line 2", r"'\x00\x00\x00' is not a number"]),
    (b"0 0 0 10\n\xff\xfe 1 1 1\n", ["t.hkl' line 2", r"'\xff\xfe' is not a number"]),
    (bytes(range(256)) * 2, ["t.hkl' line 1", "is not a number"]),
])
def test_hkl_garbage_is_shown_escaped(tmp_path, monkeypatch, capsys, content, fragments):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + ["-hkl", "t.hkl"],
                          {"t.hkl": content})
    assert_error(code, err, *fragments, tmp_path=tmp_path)
    assert "\x00" not in err and "\xff" not in err


def test_hkl_directory_is_not_called_missing(tmp_path, monkeypatch, capsys):
    (tmp_path / "d").mkdir()
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + ["-hkl", "d"])
    assert_error(code, err, "-hkl", "'d'", "directory", tmp_path=tmp_path)


@pytest.mark.parametrize("matrix", [b"0 0 0\n0 0 0\n0 0 0\n", b"nan 0 0\n0 .01 0\n0 0 .01\n",
                                    b"1e300 0 0\n0 1e300 0\n0 0 1e300\n"])
def test_degenerate_matrix(tmp_path, monkeypatch, capsys, matrix):
    args = BASE[7:] + DF + ["-mat", "a.mat"]
    code, _, err = run_in(tmp_path, monkeypatch, capsys, args, {"a.mat": matrix})
    assert_error(code, err, "-mat", "a.mat", "unit cell", tmp_path=tmp_path)


def test_source_file_garbage(tmp_path, monkeypatch, capsys):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + ["-sourcefile", "s.txt"],
                          {"s.txt": b"-10 0 0 1 6.2e-10\n\xff\xfe\n"})
    assert_error(code, err, "s.txt' line 2", r"\xff\xfe", tmp_path=tmp_path)


@pytest.mark.parametrize("flag", ["-img", "-mask"])
@pytest.mark.parametrize("extra, fragments", [
    ("BEAM_CENTER_X=inf;\n", ["BEAM_CENTER_X=inf"]),
    ("OSC_RANGE=inf;\n", ["OSC_RANGE=inf"]),
])
def test_smv_header_infinities(tmp_path, monkeypatch, capsys, flag, extra, fragments):
    # the reference's image is NaN everywhere; the error names the header value
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + [flag, "x.img"],
                          {"x.img": smv(extra=extra)})
    assert_error(code, err, "NaN", "the %s header of 'x.img'" % flag, *fragments,
                 tmp_path=tmp_path)


@pytest.mark.parametrize("flag", ["-img", "-mask"])
def test_smv_header_cut_before_size(tmp_path, monkeypatch, capsys, flag):
    data = smv().replace(b"HEADER_BYTES=512", b"HEADER_BYTES=2  ")
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + [flag, "x.img"],
                          {"x.img": data})
    assert_error(code, err, flag + ":", "x.img", "no SIZE1", tmp_path=tmp_path)


def test_missing_img_names_the_flag(tmp_path, monkeypatch, capsys):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + ["-img", "nope.img"])
    assert_error(code, err, "-img:", "nope.img", tmp_path=tmp_path)


@pytest.mark.parametrize("args, fragments", [
    (["-distance", "nan"], ["-distance: every pixel", "NaN", "-distance nan"]),
    (["-distance", "0"], ["-distance", "passes through the sample"]),
    (["-distance", "1e400"], ["-distance inf"]),
    (["-close_distance", "0"], ["-close_distance", "passes through the sample"]),
    (["-Xbeam", "inf"], ["-Xbeam inf", "NaN"]),
    (["-twotheta", "nan"], ["-twotheta nan", "NaN"]),
    (["-detector_rotx", "inf"], ["-detector_rotx inf"]),
    (["-phi", "inf"], ["-phi inf"]),
    (["-osc", "inf", "-phisteps", "2"], ["-osc inf"]),
    (["-osc", "1", "-phistep", "nan"], ["-phistep", "no phi step"]),
    (["-osc", "1", "-phistep", "1e-300"], ["-phistep", "no phi step"]),
    (["-mosaic", "inf"], ["-mosaic inf"]),
    (["-misset", "nan", "0", "0"], ["-misset nan 0 0"]),
    (["-misset", "inf", "0", "0"], ["-misset inf 0 0"]),
    (["-cell", "inf", "100", "100", "90", "90", "90"], ["-cell inf 100 100 90 90 90"]),
    (["-cell", "100", "100", "100", "180", "90", "90"], ["-cell", "NaN"]),
    (["-xtalsize", "inf"], ["-sample_x inf"]),
    (["-polar", "nan"], ["-polar nan"]),
    (["-fluence", "nan"], ["-fluence", "NaN"]),
    (["-water", "nan"], ["-water", "NaN"]),
    (["-default_F", "nan"], ["-default_F nan"]),
    (["-dispersion", "nan"], ["-dispersion nan"]),
    (["-divergence", "nan"], ["-hdivrange nan"]),
    (["-flux", "1e12", "-beamsize", "0"], ["-beamsize", "NaN"]),
    (["-detsize", "nan", "-detpixels", "0"], ["-detsize", "not a number of pixels"]),
    (["-detsize", "1e9", "-detpixels", "0"], ["-detsize", "1e+09 mm", "more than"]),
    (["-oversample", "5000"], ["-oversample", "1000 at most"]),
    (["-N", "2000000000"], ["-oversample", "auto-selected"]),
    (["-divergence", "1", "-divsteps", "100000"], ["-divsteps", "sources"]),
    (["-threads", "100000"], ["-threads", "at most"]),
    (["-tifffile", ""], ["-tifffile", "empty"]),
])
def test_bad_numbers(tmp_path, monkeypatch, capsys, args, fragments):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + args)
    assert_error(code, err, *fragments, tmp_path=tmp_path)


@pytest.mark.parametrize("flag, name", [("-intfile", "i.img"), ("-pgmfile", "p.pgm"),
                                        ("-noisefile", "n.img"), ("-tifffile", "t.tif")])
@pytest.mark.parametrize("where", ["missing", "isdir"])
def test_unwritable_output_leaves_nothing(tmp_path, monkeypatch, capsys, flag, name, where):
    if where == "isdir":
        (tmp_path / "dd").mkdir()
        path = "dd"
    else:
        path = "nodir/" + name
    code, out, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + [flag, path])
    assert_error(code, err, flag, path, tmp_path=tmp_path)
    assert "writing" not in out      # refused before anything was rendered or written


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + ["-floatfile", "ro/f.bin"])
        assert_error(code, err, "-floatfile", "not writable", tmp_path=tmp_path)
    finally:
        ro.chmod(stat.S_IRWXU)


def test_output_through_symlink_keeps_the_link(tmp_path, monkeypatch, capsys):
    (tmp_path / "real.bin").write_bytes(b"old")
    os.symlink("real.bin", tmp_path / "link.bin")
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + ["-floatfile", "link.bin"])
    assert code == 0, err
    assert os.path.islink(tmp_path / "link.bin")
    assert (tmp_path / "real.bin").stat().st_size == 8 * 8 * 4


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_output_to_a_device_is_written_into_not_replaced(tmp_path, monkeypatch, capsys):
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + ["-floatfile", "null"])
    assert code == 0, err
    assert stat.S_ISCHR(os.stat(node).st_mode)


def _floats(path):
    return np.fromfile(path, dtype=np.float32)


@pytest.mark.parametrize("odd", [["-lambda", "1e-300"], ["-xtalsize", "1e10"],
                                 ["-hdivrange", "1", "-hdivstep", "nan"]])
def test_values_c_turns_into_int_min_still_render(tmp_path, monkeypatch, capsys, odd):
    """The reference's (int) of a NaN or huge double is INT_MIN, which it then treats as
    "not set"; these inputs render a real image there, and must here too."""
    code, out, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + odd + ["-nonoise", "-nopgm"])
    assert code == 0, err
    assert "Traceback" not in err
    img = _floats(tmp_path / "floatimage.bin")
    assert img.size == 64 and np.isfinite(img).all()
    if odd[0] != "-xtalsize":
        assert "auto-selected 1-fold oversampling" in out


def test_module_entry_point_one_line_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-m", "nbsim"] + BASE + DF + ["-distance", "nan"],
                       cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert p.stderr.rstrip("\n").splitlines()[-1].startswith("nanoBragg: error: -distance")
    assert not any((tmp_path / n).exists() for n in OUTPUTS)


# --- issue 13: unbounded reads, flags as values, non-ASCII digits, limits -----------------

FILE_FLAGS = ["-img", "-mask", "-dump", "-hkl", "-mat", "-sourcefile", "-stol"]


def _file_args(flag, path):
    # -dump is read only without -hkl; -hkl/-dump need no -default_F to be read
    return BASE + ([] if flag in ("-hkl", "-dump") else DF) + [flag, path]


@pytest.mark.parametrize("flag", FILE_FLAGS)
def test_device_is_refused_not_read(tmp_path, monkeypatch, capsys, flag):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, _file_args(flag, "/dev/zero"))
    assert_error(code, err, flag, "/dev/zero", "character device", "not a regular file",
                 tmp_path=tmp_path)


@pytest.mark.parametrize("flag", FILE_FLAGS)
def test_fifo_is_refused_without_blocking(tmp_path, flag):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # nobody ever writes to the FIFO: opening it for reading must not wait
    p = subprocess.run([sys.executable, "-m", "nbsim"] + _file_args(flag, "pipe"),
                       cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode not in (0, None)
    last = p.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("nanoBragg: error: ") and flag in last and "FIFO" in last, last


@pytest.mark.parametrize("flag", FILE_FLAGS)
def test_directory_is_refused(tmp_path, monkeypatch, capsys, flag):
    (tmp_path / "d").mkdir()
    code, _, err = run_in(tmp_path, monkeypatch, capsys, _file_args(flag, "d"))
    assert_error(code, err, flag, "'d'", "directory", tmp_path=tmp_path)


def _sparse(path, head, size):
    """``head`` followed by zeros up to ``size`` bytes, without writing them (sparse)."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)


@pytest.mark.parametrize("flag", ["-img", "-mask"])
def test_smv_read_stops_where_the_header_says(tmp_path, monkeypatch, capsys, flag):
    # 8x8 pixels promised, then 8 GiB more: only header and 64 pixels may be read
    _sparse(tmp_path / "big.img", smv(), 8 << 30)
    import nbsim.io.inputs as inputs
    asked = []
    real_read = inputs.InputFile.read

    def counting(self, nbytes):
        asked.append(nbytes)
        return real_read(self, nbytes)
    monkeypatch.setattr(inputs.InputFile, "read", counting)
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + [flag, "big.img"])
    assert code == 0, err
    assert sum(asked) <= 512 + 2 * 8 * 8 + 512


def test_smv_promising_more_than_the_file_is_refused_before_reading(tmp_path, monkeypatch, capsys):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + ["-img", "x.img"],
                          {"x.img": smv(width=100000, height=100000)[:700]})
    assert_error(code, err, "-img", "truncated", "expected 20000000512", tmp_path=tmp_path)


def test_dump_read_stops_where_its_header_says(tmp_path, monkeypatch, capsys):
    from nbsim.io import hkl
    table = hkl.read_hkl(os.path.join(os.path.dirname(__file__), "golden", "inputs", "cubic.hkl"), 0.0)
    hkl.write_fdump(str(tmp_path / "Fdump.bin"), table)
    size = (tmp_path / "Fdump.bin").stat().st_size
    with open(tmp_path / "Fdump.bin", "r+b") as fh:
        fh.truncate(size + (8 << 30))          # 8 GiB of (sparse) zeros after the table
    code, out, err = run_in(tmp_path, monkeypatch, capsys, BASE)
    assert code == 0, err
    assert "reading Fs from Fdump.bin" in out


def test_dump_promising_a_huge_table_is_refused(tmp_path, monkeypatch, capsys):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE,
                          {"Fdump.bin": b"-100000 100000 -100000 100000 -100000 100000\n\f\0\0\0"})
    assert_error(code, err, "-dump", "Fdump.bin", "truncated")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Fdump.bin"]


def test_more_than_a_million_sources_refused(tmp_path, monkeypatch, capsys):
    line = b"-10 0 0 1 6.2e-10\n"
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + ["-sourcefile", "s.txt"],
                          {"s.txt": line * (10 ** 6 + 1)})
    assert_error(code, err, "-sourcefile", "s.txt", "1000001 entries", "1000000 at most",
                 tmp_path=tmp_path)


@pytest.mark.parametrize("args, fragments", [
    (["-engine", "-threads"], ["-engine: missing value (got the flag -threads instead)"]),
    (["-tifffile", "-engine"], ["-tifffile: missing value (got the flag -engine instead)"]),
    (["-engine", "c", "-threads"], ["-threads: missing value"]),
    (["-threads", "-engine", "c"], ["-threads: missing value (got the flag -engine"]),
    (["-tifffile", "-distance", "100"], ["-tifffile: missing value (got the flag -distance"]),
    (["-engine"], ["-engine: missing value"]),
])
def test_nbsim_flag_missing_its_value(tmp_path, monkeypatch, capsys, args, fragments):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + args)
    assert_error(code, err, *fragments, tmp_path=tmp_path)


@pytest.mark.parametrize("args, fragments", [
    (["-detpixels", "\uff11\uff16"], ["-detpixels: expected an integer", r"\uff11\uff16", "ASCII"]),
    (["-phi", "\u0664\u0665"], ["-phi: expected a number", r"\u0664\u0665", "ASCII"]),
    (["-distance", "1\u0660"], ["-distance: expected a number", "ASCII"]),
    (["-cell", "70", "80", "\uff19\uff10"], ["-cell: expected a number", "ASCII"]),
    (["-threads", "\uff14"], ["-threads: expected an integer", r"\uff14"]),
    (["-N", "\u00b2"], ["-N: expected an integer"]),          # superscript two
    (["-lambda", "1\u00a0"], ["-lambda: expected a number"]),   # a no-break space
])
def test_non_ascii_digits_are_not_numbers(tmp_path, monkeypatch, capsys, args, fragments):
    code, _, err = run_in(tmp_path, monkeypatch, capsys, BASE + DF + args)
    assert_error(code, err, *fragments, tmp_path=tmp_path)


def test_threads_beyond_a_memory_limit_fall_back(tmp_path):
    """Under ulimit -v, 1024 OpenMP threads cannot all start (libgomp would abort the
    process); nbsim starts what it can, says so, and renders the same image."""
    import resource
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = [sys.executable, "-m", "nbsim"] + BASE + DF + ["-engine", "c", "-nonoise", "-nopgm"]

    def cap():
        # 1024 default thread stacks of 8 MiB cannot fit in 3 GiB of address space
        resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, 8 << 20))
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    p = subprocess.run(args + ["-threads", "1024"], cwd=tmp_path / "a", capture_output=True,
                       text=True, env=env, timeout=120, preexec_fn=cap)
    assert p.returncode == 0, p.stderr
    assert "-threads: only" in p.stderr and "libgomp" not in p.stderr
    q = subprocess.run(args + ["-threads", "1"], cwd=tmp_path / "b", capture_output=True,
                       text=True, env=env, timeout=120)
    assert q.returncode == 0
    assert (tmp_path / "a" / "floatimage.bin").read_bytes() == \
        (tmp_path / "b" / "floatimage.bin").read_bytes()
