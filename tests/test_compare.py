"""Tests of nb-compare (nbsim.compare, nbsim.compare_images).

The command-line tests use fake "reference" and "nbsim" programs: small Python
scripts written into tmp_path that record how they were called, write chosen files
and print chosen text.  Tests against a real reference run only when NB_C_BIN or
NB_C_SOURCE points at the user's own nanoBragg.
"""
import base64
import json
import math
import os
import shlex
import stat
import struct
import sys
import zlib

import numpy as np
import pytest

from nbsim import compare
from nbsim import compare_images as ci

TINY = ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 6.2 -distance 100 "
        "-detpixels 64 -pixel 0.1 -seed 1").split()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def smv_bytes(data, byte_order="little_endian", extra=""):
    """An SMV file (512-byte header) holding a 2-D uint16 array [slow, fast]."""
    slow, fast = data.shape
    header = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=%s;\nTYPE=unsigned_short;\n"
              "SIZE1=%d;\nSIZE2=%d;\n%s}\f" % (byte_order, fast, slow, extra)).encode()
    header = header.ljust(512, b" ")
    dtype = "<u2" if byte_order == "little_endian" else ">u2"
    return header + np.asarray(data, dtype=dtype).tobytes()


def pgm_bytes(data):
    slow, fast = data.shape
    return b"P5\n%d %d\n# a comment\n255\n" % (fast, slow) + np.asarray(data, np.uint8).tobytes()


def stats_text(max_i="154.652", scale="355.636", pixels=(4, 3)):
    return (f"  distance=0.1 detsize=0.0004x0.0003  pixel=0.0001 meters "
            f"({pixels[0]}x{pixels[1]} pixels)\n"
            f"writing floatimage.bin as 12 4-byte floats\n"
            f"max_I = {max_i}  at 0.00325 0.00325\n"
            f"mean= 5.93262 rms= 20.5941 rmsd= 19.7209\n"
            f"intfile_scale = {scale}\n"
            f"writing intimage.img as 2-byte integers\n")


FAKE_SCRIPT = """\
#!{python}
import base64, json, os, sys
SPEC = json.loads(base64.b64decode({spec!r}))
with open(SPEC["log"], "a") as fh:
    fh.write(json.dumps({{"role": SPEC["role"], "argv": sys.argv[1:], "cwd": os.getcwd(),
                         "listing": sorted(os.listdir(".")),
                         "omp": os.environ.get("OMP_NUM_THREADS"),
                         "numba": os.environ.get("NUMBA_NUM_THREADS")}}) + "\\n")
for name, blob in SPEC["files"].items():
    with open(name, "wb") as out:
        out.write(base64.b64decode(blob))
sys.stdout.write(SPEC["stdout"])
sys.stdout.flush()
sys.exit(SPEC["exit"])
"""


def make_fake(tmp_path, role, files=None, stdout="", exit_code=0):
    """Write an executable fake program; returns its path."""
    spec = {
        "role": role,
        "log": str(tmp_path / "calls.jsonl"),
        "files": {k: base64.b64encode(v).decode() for k, v in (files or {}).items()},
        "stdout": stdout,
        "exit": exit_code,
    }
    blob = base64.b64encode(json.dumps(spec).encode()).decode()
    path = tmp_path / f"fake_{role}.py"
    path.write_text(FAKE_SCRIPT.format(python=sys.executable, spec=blob))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def calls(tmp_path):
    log = tmp_path / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


FLOAT = np.arange(12, dtype=np.float32).reshape(3, 4)  # slow=3, fast=4
INT = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100


def default_files(float_img=FLOAT, int_img=INT):
    return {"floatimage.bin": np.asarray(float_img, np.float32).tobytes(),
            "intimage.img": smv_bytes(int_img)}


def run_cli(tmp_path, ref_files, new_files, *extra, ref_stdout=None, new_stdout=None,
            ref_exit=0, new_exit=0, nb_args=("-detpixels_f", "4", "-detpixels_s", "3")):
    ref = make_fake(tmp_path, "reference", ref_files,
                    stats_text() if ref_stdout is None else ref_stdout, ref_exit)
    new = make_fake(tmp_path, "nbsim", new_files,
                    stats_text() if new_stdout is None else new_stdout, new_exit)
    out = tmp_path / "out"
    code = compare.main(["--c-bin", str(ref), "--nbsim", shlex.quote(str(new)),
                         "--out", str(out), *extra, "--", *nb_args])
    summary = None
    if (out / "summary.json").exists():
        summary = json.loads((out / "summary.json").read_text())
    return code, summary, out


def check_figures(out, size, identical, ref=None, new=None):
    """nb-compare's PNGs, read with Pillow: the picture (where its "image_box" text
    says, enlarged by a whole factor) is exactly the preview of the image, with a
    title and a colour bar around it; the difference picture is black when the runs
    agree."""
    Image = pytest.importorskip("PIL.Image", reason="Pillow is a declared dependency")
    w, h = size
    expect = {}
    if ref is not None:
        pa, pb = ci.preview_pair(ref, new)
        expect = {"reference.png": np.stack([pa] * 3, -1), "nbsim.png": np.stack([pb] * 3, -1),
                  "diff.png": ci.preview_diff(ref, new)}
    for name in ("reference.png", "nbsim.png", "diff.png"):
        with Image.open(out / name) as im:
            arr = np.asarray(im.convert("RGB"))
            left, top, iw, ih, zoom = (int(x) for x in im.text["image_box"].split())
            assert im.text["Title"].startswith({"reference.png": "reference: ",
                                                "nbsim.png": "nbsim: ",
                                                "diff.png": "nbsim - reference: "}[name])
        assert (iw, ih) == (w * zoom, h * zoom) and zoom >= 1
        assert arr.shape[0] > top + ih and arr.shape[1] > left + iw + 10   # room for the bar
        picture = arr[top:top + ih, left:left + iw][::zoom, ::zoom]
        if name in expect:
            assert np.array_equal(picture, expect[name])
        if name == "diff.png" and identical:
            assert not picture.any()


def read_png(data):
    """Minimal PNG reader for our own files: (width, height, color_type, pixels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    chunks = []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, ctype, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, comp, filt, inter) == (8, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    channels = {0: 1, 2: 3}[ctype]
    rows = np.frombuffer(raw, np.uint8).reshape(height, width * channels + 1)
    assert np.all(rows[:, 0] == 0)  # filter type none
    return width, height, ctype, rows[:, 1:].reshape(height, width, channels)


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------

def test_metrics_on_hand_computed_arrays():
    a = np.array([[0, 1], [2, 4]], dtype=np.float32)
    b = np.array([[0, 1], [2, 5]], dtype=np.float32)
    m = ci.image_metrics(a, b)
    assert m["n_pixels"] == 4
    assert m["n_differing"] == 1
    assert m["max_abs_diff"] == 1.0
    assert m["max_rel_diff"] == pytest.approx(1 / 5)
    assert m["rmse"] == pytest.approx(0.5)          # sqrt(1/4)
    assert m["sum_reference"] == 7.0 and m["sum_nbsim"] == 8.0
    assert m["sum_ratio"] == pytest.approx(8 / 7)
    # deviations a: -1.75 -0.75 0.25 2.25, b: -2 -1 0 3 -> 11 / sqrt(8.75 * 14)
    assert m["pearson_r"] == pytest.approx(11 / math.sqrt(122.5))
    assert m["roi"] is None


def test_metrics_identical_constant_and_zero_images():
    z = np.zeros((2, 3))
    m = ci.image_metrics(z, z)
    assert m["n_differing"] == 0 and m["pearson_r"] == 1.0 and m["sum_ratio"] == 1.0
    assert m["max_rel_diff"] == 0.0
    m = ci.image_metrics(np.full((2, 2), 3.0), np.full((2, 2), 4.0))
    assert m["pearson_r"] is None  # undefined for two different constant images
    assert m["max_rel_diff"] == pytest.approx(0.25)
    m = ci.image_metrics(np.zeros(3), np.array([0.0, 0.0, 2.0]))
    assert m["sum_ratio"] is None  # reference sums to zero, nbsim does not


def test_metrics_nonfinite_values():
    a = np.array([1.0, np.nan, np.inf, 2.0])
    b = np.array([1.0, np.nan, 5.0, 2.0])
    m = ci.image_metrics(a, b)
    assert m["n_differing"] == 1             # NaN equals NaN; inf vs 5 differs
    assert m["n_nonfinite_mismatch"] == 1
    assert m["nonfinite_reference"] == 2 and m["nonfinite_nbsim"] == 1
    assert m["max_abs_diff"] == 0.0          # over pixels finite in both
    json.dumps(m, allow_nan=False)           # JSON-ready


def test_metrics_roi_is_inclusive_x_fast_y_slow():
    a = np.zeros((3, 4))
    b = np.zeros((3, 4))
    b[2, 3] = 1.0           # slow 2, fast 3
    assert ci.image_metrics(a, b, roi=(0, 2, 0, 2))["n_differing"] == 0
    m = ci.image_metrics(a, b, roi=(3, 3, 2, 2))
    assert m["n_pixels"] == 1 and m["n_differing"] == 1 and m["roi"] == [3, 3, 2, 2]
    m = ci.image_metrics(a, b, roi=(1, 99, -5, 1))   # clipped to the image
    assert m["roi"] == [1, 3, 0, 1] and m["n_pixels"] == 6
    with pytest.raises(ValueError):
        ci.image_metrics(a, b, roi=(10, 20, 0, 1))
    with pytest.raises(ValueError):
        ci.image_metrics(a, b[:, :2])


def test_relative_difference_definition():
    r = ci.relative_difference([0.0, 2.0, -1.0], [0.0, 1.0, 1.0])
    assert list(r) == [0.0, 0.5, 2.0]


# ---------------------------------------------------------------------------
# readers, stats lines
# ---------------------------------------------------------------------------

def test_read_smv_and_pgm():
    data = np.array([[1, 2, 3], [400, 500, 65535]], dtype=np.uint16)
    header, arr, fields = ci.read_smv(smv_bytes(data))
    assert len(header) == 512 and fields["SIZE1"] == "3" and fields["SIZE2"] == "2"
    assert np.array_equal(arr, data)
    _h, arr_be, _f = ci.read_smv(smv_bytes(data, "big_endian"))
    assert np.array_equal(arr_be, data)
    assert ci.read_smv(b"not an smv file") is None
    assert ci.read_smv(smv_bytes(data)[:-2]) is None  # truncated
    header, arr = ci.read_pgm(pgm_bytes(np.array([[0, 7], [8, 255]])))
    assert header.endswith(b"255\n") and arr.tolist() == [[0, 7], [8, 255]]
    assert ci.read_pgm(b"P6\n1 1\n255\nabc") is None


def test_parse_stats_lines():
    text = ("noise\nmax_I = 1.5e+06  at 0.00325 -0.001\n"
            "mean= 5.93262 rms= 20.5941 rmsd= 19.7209\n"
            "intfile_scale = 355.636\npgm_scale = inf\n"
            "24306 photons on noise image (7 overloads)\n"
            "max_I is not a stats line\n")
    s = ci.parse_stats(text)
    assert set(s) == set(ci.STAT_NAMES)
    assert s["max_I"]["values"] == [1.5e6, 0.00325, -0.001]
    assert s["mean_rms_rmsd"]["values"] == [5.93262, 20.5941, 19.7209]
    assert s["intfile_scale"]["values"] == [355.636]
    assert s["pgm_scale"]["values"] == [math.inf]
    assert s["noise_photons"]["values"] == [24306.0, 7.0]
    assert s["noise_photons"]["line"] == "24306 photons on noise image (7 overloads)"
    assert math.isnan(ci.parse_stats("max_I = -nan  at 0 0")["max_I"]["values"][0])
    assert ci.parse_stats("nothing here") == {}


def test_compare_stats_threshold_and_missing():
    a = "max_I = 100  at 1 2\nintfile_scale = 10\n"
    b = "max_I = 101  at 1 2\nintfile_scale = 10\npgm_scale = 3\n"
    items = {s["name"]: s for s in compare.compare_stats(a, b, threshold=0)}
    assert items["max_I"]["status"] == "mismatch"
    assert items["max_I"]["max_rel_diff"] == pytest.approx(1 / 101)
    assert items["intfile_scale"]["status"] == "identical"
    assert items["pgm_scale"]["status"] == "missing"
    assert items["noise_photons"]["status"] == "absent"
    items = {s["name"]: s for s in compare.compare_stats(a, b, threshold=0.01)}
    assert items["max_I"]["status"] == "within_threshold"
    # same numbers printed differently are not "identical" text but are within 0
    items = {s["name"]: s for s in compare.compare_stats("pgm_scale = 1e+06", "pgm_scale = 1000000")}
    assert items["pgm_scale"]["status"] == "within_threshold"


def test_pixel_count_and_shape_from_args():
    assert ci.parse_pixel_count("pixel=0.0001 meters (128x64 pixels)\n") == (128, 64)
    assert ci.parse_pixel_count("no such line") is None
    assert compare.shape_from_args(["-detpixels", "64"]) == (64, 64)
    assert compare.shape_from_args(["-detpixels_x", "5", "-detpixels_y", "7"]) == (7, 5)
    assert compare.shape_from_args(["-detpixels_f", "5"]) is None
    assert compare.float_image_names(["-floatfile", "f.bin"]) == {"f.bin"}
    assert compare.float_image_names(["-N", "1"]) == {"floatimage.bin"}


def test_shape_priority_smv_then_stdout_then_args(tmp_path):
    (tmp_path / "int.img").write_bytes(smv_bytes(np.zeros((2, 6), np.uint16)))
    args = ["-detpixels", "9"]
    assert compare._shape_for_run(["int.img"], "(4x3 pixels)", args, str(tmp_path)) == (2, 6)
    assert compare._shape_for_run([], "(4x3 pixels)", args, str(tmp_path)) == (3, 4)
    assert compare._shape_for_run([], "", args, str(tmp_path)) == (9, 9)
    assert compare._shape_for_run([], "", [], str(tmp_path)) is None


def test_absolutize_inputs(tmp_path):
    (tmp_path / "in.hkl").write_text("0 0 0 1\n")
    (tmp_path / "100").write_text("a file named like a number")
    (tmp_path / "out.bin").write_text("an existing output name")
    args = ["-hkl", "in.hkl", "-N", "100", "-floatfile", "out.bin", "-mat", "missing.mat",
            "-distance", "-5"]
    out = compare.absolutize_inputs(args, cwd=tmp_path)
    assert out[1] == str(tmp_path / "in.hkl")
    assert out[3] == "100"            # numbers are never paths
    assert out[5] == "out.bin"        # output names stay relative
    assert out[7] == "missing.mat"    # only existing paths are rewritten
    assert out[9] == "-5"


# ---------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------

def test_png_writer_grey_and_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "g.png"
    ci.write_png(path, grey)
    w, h, ctype, px = read_png(path.read_bytes())
    assert (w, h, ctype) == (4, 3, 0) and np.array_equal(px[..., 0], grey)
    rgb = np.zeros((2, 5, 3), np.uint8)
    rgb[1, 4] = (255, 0, 9)
    w, h, ctype, px = read_png(ci.encode_png(rgb))
    assert (w, h, ctype) == (5, 2, 2) and np.array_equal(px, rgb)
    with pytest.raises(ValueError):
        ci.encode_png(np.zeros((2, 2), np.float32))


def test_previews_scale_and_diff_colours():
    ref = np.array([[0.0, 1.0], [10.0, 1000.0]])
    new = np.array([[0.0, 2.0], [5.0, 1000.0]])
    pa, pb = ci.preview_pair(ref, new)
    assert pa.dtype == np.uint8 and pa[0, 0] == 0 and pa[1, 1] == 255
    assert pb[0, 1] > pa[0, 1]  # brighter pixel, shared scale
    d = ci.preview_diff(ref, new)
    assert d[0, 1, 0] > 0 and d[0, 1, 2] == 0      # nbsim higher: red
    assert d[1, 0, 2] > 0 and d[1, 0, 0] == 0      # nbsim lower: blue
    assert not d[1, 1].any() and not d[0, 0].any()  # equal: black


# ---------------------------------------------------------------------------
# the command, with fake programs
# ---------------------------------------------------------------------------

def test_identical_runs_exit_0_and_summary_schema(tmp_path, capsys):
    code, s, out = run_cli(tmp_path, default_files(), default_files())
    assert code == compare.EXIT_OK == 0
    assert s["schema_version"] == compare.SCHEMA_VERSION == 1
    assert s["verdict"] == "identical" and s["exit_code"] == 0
    for key in ("tool", "nbsim_version", "messages", "threshold", "roi", "threads", "args",
                "reference", "nbsim", "exit_codes_match", "stdout_identical", "files",
                "stats", "previews"):
        assert key in s, key
    for key in ("kind", "path", "command", "exit_code", "error", "wall_seconds", "files",
                "workdir"):
        assert key in s["reference"] and key in s["nbsim"], key
    assert s["reference"]["kind"] == "binary" and s["nbsim"]["kind"] == "command"
    assert s["reference"]["files"] == ["floatimage.bin", "intimage.img"]
    files = {f["name"]: f for f in s["files"]}
    assert files["floatimage.bin"]["kind"] == "float"
    assert files["floatimage.bin"]["shape"] == [3, 4]
    assert files["intimage.img"]["kind"] == "smv"
    assert files["intimage.img"]["header_identical"] is True
    for f in s["files"]:
        assert f["identical"] and f["status"] == "identical"
        assert f["metrics"]["n_differing"] == 0 and f["metrics"]["pearson_r"] == 1.0
        for key in ("in_reference", "in_nbsim", "size_reference", "size_nbsim",
                    "sha256_reference", "sha256_nbsim", "note"):
            assert key in f
    stats = {x["name"]: x["status"] for x in s["stats"]}
    assert stats == {"max_I": "identical", "mean_rms_rmsd": "identical",
                     "intfile_scale": "identical", "pgm_scale": "absent",
                     "noise_photons": "absent"}
    assert (out / "reference_stdout.txt").read_text() == stats_text()
    assert (out / "nbsim_stdout.txt").read_text() == stats_text()
    assert s["previews"]["file"] == "floatimage.bin"
    check_figures(out, (4, 3), identical=True)
    printed = capsys.readouterr().out
    assert "floatimage.bin" in printed and "verdict: identical (exit 0)" in printed


def test_pixel_difference_exit_4_then_threshold_exit_0(tmp_path):
    changed = FLOAT.copy()
    changed[1, 2] = 7.0  # was 6
    code, s, _out = run_cli(tmp_path, default_files(), default_files(float_img=changed))
    assert code == compare.EXIT_MISMATCH == 4 and s["verdict"] == "mismatch"
    f = {x["name"]: x for x in s["files"]}["floatimage.bin"]
    assert f["status"] == "mismatch" and not f["identical"]
    m = f["metrics"]
    assert m["n_differing"] == 1 and m["max_abs_diff"] == 1.0
    assert m["max_rel_diff"] == pytest.approx(1 / 7)
    assert m["sum_reference"] == 66.0 and m["sum_nbsim"] == 67.0
    assert any("floatimage.bin" in msg for msg in s["messages"])

    code, s, _out = run_cli(tmp_path, default_files(), default_files(float_img=changed),
                            "--threshold", "0.15")
    assert code == 0 and s["verdict"] == "within_threshold"
    code, _s, _out = run_cli(tmp_path, default_files(), default_files(float_img=changed),
                             "--threshold", "0.1")
    assert code == 4


def test_negative_zero_is_a_mismatch_only_in_strict_mode(tmp_path):
    ref = FLOAT.copy()
    new = FLOAT.copy()
    new[0, 0] = -0.0  # equal value, different bytes
    code, s, _ = run_cli(tmp_path, default_files(float_img=ref), default_files(float_img=new))
    assert code == 4
    assert {x["name"]: x for x in s["files"]}["floatimage.bin"]["metrics"]["n_differing"] == 0
    code, s, _ = run_cli(tmp_path, default_files(float_img=ref), default_files(float_img=new),
                         "--threshold", "1e-9")
    assert code == 0


def test_roi_restricts_the_verdict(tmp_path):
    changed = FLOAT.copy()
    changed[2, 3] = 100.0                       # slow 2, fast 3
    int_changed = INT.copy()
    int_changed[2, 3] += 1
    ref, new = default_files(), default_files(float_img=changed, int_img=int_changed)
    code, s, _ = run_cli(tmp_path, ref, new, "--roi", "0", "2", "0", "2")
    assert code == 0 and s["roi"] == [0, 2, 0, 2]
    f = {x["name"]: x for x in s["files"]}["floatimage.bin"]
    assert f["metrics"]["roi"] == [0, 2, 0, 2] and f["metrics"]["n_pixels"] == 9
    assert f["status"] == "within_threshold" and not f["identical"]
    code, s, _ = run_cli(tmp_path, ref, new, "--roi", "3", "3", "0", "2")
    assert code == 4
    code, s, _ = run_cli(tmp_path, ref, new, "--roi", "50", "60", "0", "2")
    assert code == compare.EXIT_USAGE and s["verdict"] == "usage_error"


def test_smv_header_difference_is_a_mismatch(tmp_path):
    new = default_files()
    new["intimage.img"] = smv_bytes(INT, extra="DISTANCE=100;\n")
    code, s, _ = run_cli(tmp_path, default_files(), new, "--threshold", "0.5")
    assert code == 4
    f = {x["name"]: x for x in s["files"]}["intimage.img"]
    assert f["header_identical"] is False and f["metrics"]["n_differing"] == 0


def test_stats_line_difference_exit_4(tmp_path):
    code, s, _ = run_cli(tmp_path, default_files(), default_files(),
                         new_stdout=stats_text(max_i="154.653"))
    assert code == 4
    item = {x["name"]: x for x in s["stats"]}["max_I"]
    assert item["status"] == "mismatch"
    assert item["reference_values"][0] == 154.652 and item["nbsim_values"][0] == 154.653
    code, s, _ = run_cli(tmp_path, default_files(), default_files(), "--threshold", "1e-4",
                         new_stdout=stats_text(max_i="154.653"))
    assert code == 0


def test_stats_line_missing_exit_4(tmp_path):
    code, s, _ = run_cli(tmp_path, default_files(), default_files(),
                         new_stdout=stats_text().replace("intfile_scale = 355.636\n", ""))
    assert code == 4
    assert {x["name"]: x for x in s["stats"]}["intfile_scale"]["status"] == "missing"


def test_file_set_difference_exit_5(tmp_path):
    new = default_files()
    new["image.pgm"] = pgm_bytes(np.zeros((3, 4)))
    code, s, _ = run_cli(tmp_path, default_files(), new)
    assert code == compare.EXIT_SIZE == 5 and s["verdict"] == "size_mismatch"
    f = {x["name"]: x for x in s["files"]}["image.pgm"]
    assert f["status"] == "missing" and f["in_nbsim"] and not f["in_reference"]
    assert f["kind"] == "pgm"


def test_image_size_difference_exit_5(tmp_path):
    new = default_files(float_img=np.zeros((3, 5), np.float32),
                        int_img=np.zeros((3, 5), np.uint16))
    code, s, _ = run_cli(tmp_path, default_files(), new)
    assert code == 5
    statuses = {x["name"]: x["status"] for x in s["files"]}
    assert statuses == {"floatimage.bin": "size_mismatch", "intimage.img": "size_mismatch"}


def test_exit_status_mismatch_is_runner_failure_3(tmp_path):
    code, s, out = run_cli(tmp_path, default_files(), {}, new_exit=1,
                           new_stdout="Traceback: something broke\n")
    assert code == compare.EXIT_RUNNER == 3 and s["verdict"] == "runner_failed"
    assert s["exit_codes_match"] is False
    assert s["reference"]["exit_code"] == 0 and s["nbsim"]["exit_code"] == 1
    assert any("something broke" in m for m in s["messages"])
    assert (out / "nbsim_stdout.txt").read_text() == "Traceback: something broke\n"
    code, s, _ = run_cli(tmp_path, {}, {}, ref_exit=9, new_exit=2,
                         ref_stdout="usage\n", new_stdout="usage\n")
    assert code == 3


def test_same_error_exit_on_both_sides_is_a_match(tmp_path):
    code, s, _ = run_cli(tmp_path, {}, {}, ref_exit=9, new_exit=9,
                         ref_stdout="usage text\n", new_stdout="usage text\n")
    assert code == 0 and s["verdict"] == "identical"
    assert s["exit_codes_match"] and s["files"] == [] and s["previews"] is None


def test_missing_reference_binary_exit_3(tmp_path):
    new = make_fake(tmp_path, "nbsim", default_files(), stats_text())
    out = tmp_path / "out"
    code = compare.main(["--c-bin", str(tmp_path / "no-such-nanoBragg"), "--nbsim", str(new),
                         "--out", str(out), "--", "-N", "1"])
    assert code == 3
    s = json.loads((out / "summary.json").read_text())
    assert "not found" in s["reference"]["error"]


def test_missing_nbsim_command_exit_3(tmp_path):
    ref = make_fake(tmp_path, "reference", default_files(), stats_text())
    code = compare.main(["--c-bin", str(ref), "--nbsim", str(tmp_path / "nope"),
                         "--out", str(tmp_path / "out"), "--", "-N", "1"])
    assert code == 3


@pytest.mark.parametrize("argv", [
    ["--c-bin", "x", "-N", "1"],                                 # no "--"
    ["--c-bin", "x", "--c-source", "y", "--", "-N", "1"],        # both references
    ["--c-bin", "x", "--threshold", "-1", "--", "-N", "1"],
    ["--c-bin", "x", "--roi", "5", "1", "0", "0", "--", "-N", "1"],
    ["--c-bin", "x", "--roi", "1", "2", "--", "-N", "1"],
    ["--c-bin", "x", "--threads", "0", "--", "-N", "1"],
    ["--c-bin", "x", "--bogus", "--", "-N", "1"],
    ["--c-bin", "x", "--", "-floatfile", "/tmp/abs.bin"],       # absolute output name
    ["--c-bin", "x", "--", "-intfile", "../up.img"],
])
def test_usage_errors_exit_2(tmp_path, argv, capsys):
    assert compare.main(argv + []) == compare.EXIT_USAGE == 2
    assert "nb-compare" in capsys.readouterr().err


def test_no_reference_configured_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NB_C_BIN", raising=False)
    monkeypatch.delenv("NB_C_SOURCE", raising=False)
    assert compare.main(["--out", str(tmp_path / "o"), "--", "-N", "1"]) == 2
    assert "NB_C_BIN" in capsys.readouterr().err


def test_help_documents_exit_codes(capsys):
    assert compare.main(["--help"]) == 0
    text = capsys.readouterr().out
    for code in ("0 ", "2 ", "3 ", "4 ", "5 "):
        assert "\n  " + code in text
    assert "schema_version" in text


def test_env_nb_c_bin_is_used(tmp_path, monkeypatch):
    ref = make_fake(tmp_path, "reference", default_files(), stats_text())
    new = make_fake(tmp_path, "nbsim", default_files(), stats_text())
    monkeypatch.setenv("NB_C_BIN", str(ref))
    monkeypatch.delenv("NB_C_SOURCE", raising=False)
    code = compare.main(["--nbsim", str(new), "--out", str(tmp_path / "o"), "--",
                         "-detpixels_f", "4", "-detpixels_s", "3"])
    assert code == 0
    assert [c["role"] for c in calls(tmp_path)] == ["reference", "nbsim"]


def test_argument_forwarding_folders_and_threads(tmp_path, monkeypatch):
    work = tmp_path / "here"
    work.mkdir()
    (work / "in.hkl").write_text("0 0 0 100\n")
    monkeypatch.chdir(work)
    files = {"f.bin": FLOAT.tobytes()}
    args = ["-hkl", "in.hkl", "-floatfile", "f.bin", "-distance", "-5", "-detpixels_f", "4",
            "-detpixels_s", "3", "-N", "2"]
    code, s, _ = run_cli(tmp_path, files, files, "--threads", "3", nb_args=args)
    assert code == 0
    rec = calls(tmp_path)
    assert [c["role"] for c in rec] == ["reference", "nbsim"]
    expected = list(args)
    expected[1] = str(work / "in.hkl")
    # nbsim gets -c_parity on top, so that it reproduces the reference's phi=0 carry-over
    assert rec[0]["argv"] == rec[1]["argv"][:-1] == expected == s["args"]
    assert rec[1]["argv"][-1] == "-c_parity"
    assert rec[0]["cwd"] != rec[1]["cwd"]
    for c in rec:
        assert c["listing"] == []                       # fresh, empty folder
        assert os.path.realpath(c["cwd"]) != os.path.realpath(str(work))
        assert not os.path.exists(c["cwd"])             # removed afterwards
        assert c["omp"] == "3" and c["numba"] == "3"
    f = {x["name"]: x for x in s["files"]}["f.bin"]
    assert f["kind"] == "float" and f["shape"] == [3, 4]  # shape from stdout note
    assert s["threads"] == 3


def test_physics_flag_compares_the_corrected_physics(tmp_path):
    code, s, _ = run_cli(tmp_path, default_files(), default_files(), "--physics",
                         nb_args=["-N", "1"])
    assert code == 0
    rec = {c["role"]: c["argv"] for c in calls(tmp_path)}
    assert rec["reference"] == rec["nbsim"] == ["-N", "1"]


def test_nbsim_only_arguments(tmp_path):
    code, s, _ = run_cli(tmp_path, default_files(), default_files(),
                         "--nbsim-arg=-c_parity", "--nbsim-arg=-engine", "--nbsim-arg", "c",
                         nb_args=["-N", "1"])
    assert code == 0
    rec = {c["role"]: c["argv"] for c in calls(tmp_path)}
    assert rec["reference"] == ["-N", "1"]
    assert rec["nbsim"] == ["-N", "1", "-c_parity", "-engine", "c"]
    assert s["args"] == ["-N", "1"] and s["nbsim_extra_args"] == ["-c_parity", "-engine", "c"]


def test_keep_runs_keeps_folders(tmp_path):
    code, s, _ = run_cli(tmp_path, default_files(), default_files(), "--keep-runs")
    assert code == 0
    for side in ("reference", "nbsim"):
        kept = s[side]["workdir"]
        assert kept and os.path.isfile(os.path.join(kept, "floatimage.bin"))


def test_stale_outputs_are_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "diff.png").write_bytes(b"stale")
    code, s, out = run_cli(tmp_path, {}, {}, ref_exit=9, new_exit=9)
    assert code == 0 and s["previews"] is None
    assert not (out / "diff.png").exists()


FAKE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
    float img[6] = {0, 1, 2, 3, 4, 5};
    FILE *f;
    if (argc > 1 && strcmp(argv[1], "-bad") == 0) { printf("usage\n"); exit(9); }
    f = fopen("floatimage.bin", "wb");
    fwrite(img, sizeof(float), 6, f);
    fclose(f);
    printf("  pixel=0.0001 meters (3x2 pixels)\n");
    printf("max_I = 5  at 0.0002 0.0001\n");
    return 0;
}
"""


def test_c_source_reference_end_to_end(tmp_path, monkeypatch):
    """--c-source builds the (fake) C program with nbsim.reference and runs it in-process."""
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "fake_nanoBragg.c"
    src.write_text(FAKE_C)
    same = np.arange(6, dtype=np.float32).tobytes()
    new = make_fake(tmp_path, "nbsim", {"floatimage.bin": same},
                    "  pixel=0.0001 meters (3x2 pixels)\nmax_I = 5  at 0.0002 0.0001\n")
    out = tmp_path / "out"
    code = compare.main(["--c-source", str(src), "--nbsim", str(new), "--out", str(out),
                         "--", "-N", "1"])
    s = json.loads((out / "summary.json").read_text())
    assert code == 0, s["messages"]
    assert s["reference"]["kind"] == "source" and s["reference"]["path"] == str(src)
    assert s["files"][0]["shape"] == [2, 3]
    assert {x["name"]: x["status"] for x in s["stats"]}["max_I"] == "identical"
    # an error exit (exit(9) inside the C program) does not kill nb-compare
    code = compare.main(["--c-source", str(src), "--nbsim", str(new), "--out", str(out),
                         "--", "-bad"])
    assert code == 3
    s = json.loads((out / "summary.json").read_text())
    assert s["reference"]["exit_code"] == 9 and s["nbsim"]["exit_code"] == 0


def test_c_source_build_failure_exit_3(tmp_path, monkeypatch):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "broken.c"
    src.write_text("int main(int argc, char **argv) { this is not C; }\n")
    new = make_fake(tmp_path, "nbsim", {}, "")
    out = tmp_path / "out"
    code = compare.main(["--c-source", str(src), "--nbsim", str(new), "--out", str(out),
                         "--", "-N", "1"])
    assert code == 3
    s = json.loads((out / "summary.json").read_text())
    assert "failed" in s["reference"]["error"]


# ---------------------------------------------------------------------------
# against the user's real reference (opt-in)
# ---------------------------------------------------------------------------

@pytest.mark.skipif(not os.environ.get("NB_C_BIN"),
                    reason="NB_C_BIN is not set: point it at your own nanoBragg binary "
                           "to compare nbsim against it")
def test_real_reference_binary_matches_nbsim(tmp_path):
    out = tmp_path / "out"
    code = compare.main(["--c-bin", os.environ["NB_C_BIN"], "--out", str(out), "--", *TINY])
    s = json.loads((out / "summary.json").read_text())
    assert code == 0, s["messages"]
    assert s["files"] and all(f["identical"] for f in s["files"])


@pytest.mark.skipif(not os.environ.get("NB_C_SOURCE"),
                    reason="NB_C_SOURCE is not set: point it at your own nanoBragg.c "
                           "to compare nbsim against it")
def test_real_reference_source_matches_nbsim(tmp_path):
    out = tmp_path / "out"
    code = compare.main(["--c-source", os.environ["NB_C_SOURCE"], "--out", str(out), "--", *TINY])
    s = json.loads((out / "summary.json").read_text())
    assert code == 0, s["messages"]
    assert s["files"] and all(f["identical"] for f in s["files"])


def test_figures_hold_the_previews_with_title_and_colour_bar(tmp_path):
    rng = np.random.default_rng(4)
    ref = rng.random((30, 50)) * 100
    new = ref.copy()
    new[3, 4] += 5
    new[20, 40] -= 7
    for name, data in ci.preview_figures(ref, new, "floatimage.bin").items():
        (tmp_path / name).write_bytes(data)
    check_figures(tmp_path, (50, 30), identical=False, ref=ref, new=new)
