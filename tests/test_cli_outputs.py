"""The nbsim-only geometry outputs through the command line: -nexusfile, -cbffile,
-geomfile, -pngfile, -png_scale, -nexus_data, and the TIFF's geometry metadata."""
import os
import sys

import numpy as np
import pytest

from nbsim import cli

h5py = pytest.importorskip("h5py", reason="h5py is a declared dependency of nbsim")
fabio = pytest.importorskip("fabio", reason="fabio is a declared dependency of nbsim")

BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-lambda", "6.2",
        "-N", "5", "-distance", "100", "-detpixels_f", "40", "-detpixels_s", "32", "-pixel",
        "0.1", "-seed", "1", "-noprogress", "-phi", "3", "-osc", "0.5", "-Xbeam", "1.5",
        "-Ybeam", "2.5"]
OUTS = ["-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "n.img", "-pgmfile", "p.pgm"]
NEW = ["-nexusfile", "a.nxs", "-cbffile", "a.cbf", "-geomfile", "a.geom", "-pngfile", "a.png",
       "-tifffile", "a.tif"]


def run(args, capsys):
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err, *fragments):
    lines = [ln for ln in err.splitlines()
             if ln.strip() and not ln.startswith("nbsim: warning:")]
    assert len(lines) == 1 and lines[0].startswith("nanoBragg: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_every_output_written_and_reference_files_unchanged(capsys, workdir):
    code, plain_out, _ = run(BASE + OUTS, capsys)
    assert code == 0
    plain = {name: open(name, "rb").read() for name in ("f.bin", "i.img", "n.img", "p.pgm")}
    code, out, err = run(BASE + OUTS + NEW, capsys)
    assert code == 0
    # the reference's files are byte for byte what they are without the new flags
    for name, data in plain.items():
        assert open(name, "rb").read() == data, name
    # stdout: the same lines, plus one per new file
    extra = [ln for ln in out.splitlines() if ln not in plain_out.splitlines()]
    assert len(extra) == 5 and all(ln.startswith("writing a.") for ln in extra), extra
    img = np.fromfile("f.bin", dtype=np.float32).reshape(32, 40)
    noise = np.frombuffer(plain["n.img"][512:], dtype=np.uint16).reshape(32, 40)
    with h5py.File("a.nxs", "r") as f:
        assert f["/entry/definition"][()] == b"NXmx"
        assert np.array_equal(f["/entry/data/data"][0], img)
        det = f["/entry/instrument/detector"]
        # MOSFLM: Fbeam = Ybeam + half a pixel, Sbeam = Xbeam + half a pixel
        assert det["beam_center_x"][()] == pytest.approx(25.5, rel=1e-12)
        assert det["beam_center_y"][()] == pytest.approx(15.5, rel=1e-12)
        assert f["/entry/sample/transformations/phi"][()] == pytest.approx([3.0])
    cbf = fabio.open("a.cbf")
    assert np.array_equal(cbf.data, noise.astype(np.int32) - 40)
    header = cbf.header["_array_data.header_contents"]
    beam_xy = header.split("Beam_xy (")[1].split(")")[0].split(",")
    assert [float(x) for x in beam_xy] == pytest.approx([25.5, 15.5], rel=1e-12)
    assert "data = /entry/data/data" in open("a.geom").read()
    assert open("a.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    import tifffile
    with tifffile.TiffFile("a.tif") as tif:
        assert tif.shaped_metadata[0]["beam_center_fast_slow_px"] == pytest.approx([25.5, 15.5])


@pytest.mark.parametrize("kind", ["int", "noise"])
def test_nexus_data_int_or_noise(capsys, workdir, kind):
    code, _out, _err = run(BASE + OUTS + ["-nexusfile", "a.h5", "-nexus_data", kind,
                                          "-geomfile", "a.geom"], capsys)
    assert code == 0
    smv = open("i.img" if kind == "int" else "n.img", "rb").read()
    with h5py.File("a.h5", "r") as f:
        data = f["/entry/data/data"][0]
        assert data.dtype == np.uint16
        assert np.array_equal(data, np.frombuffer(smv[512:], np.uint16).reshape(32, 40))
        assert f["/entry/data/data_offset"][()] == -40.0
        assert f["/entry/instrument/detector/saturation_value"][()] == 65535
    assert "max_adu = 65535" in open("a.geom").read()


def test_cbf_without_noise_holds_rounded_photons(capsys, workdir):
    code, _o, _e = run(BASE + ["-nonoise", "-floatfile", "f.bin", "-cbffile", "a.cbf",
                               "-roi", "0", "9", "0", "31"], capsys)
    assert code == 0
    img = np.fromfile("f.bin", dtype=np.float32).reshape(32, 40)
    data = fabio.open("a.cbf").data
    assert np.array_equal(data[:, :10], np.rint(img[:, :10]).astype(np.int32))
    assert (data[:, 10:] == -1).all()            # outside -roi: not rendered


def test_png_scale(capsys, workdir):
    code, out, _e = run(BASE + ["-pngfile", "a.png", "-png_scale", "5"], capsys)
    assert code == 0 and "white = 5 photons" in out
    for bad in ("0", "-1", "nan", "x", "\uff15"):   # (a full-width 5: ASCII digits only)
        code, _o, err = run(BASE + ["-pngfile", "a.png", "-png_scale", bad], capsys)
        assert code == 2
        one_line_error(err, "-png_scale")


@pytest.mark.parametrize("flag", ["-nexusfile", "-cbffile", "-geomfile", "-pngfile", "-tifffile"])
def test_unwritable_paths_refused_before_rendering(capsys, workdir, flag):
    code, _o, err = run(BASE + [flag, "nodir/x"], capsys)
    assert code == 2
    one_line_error(err, flag, "nodir/x", "does not exist")
    assert os.listdir(".") == []                 # nothing rendered, nothing written
    os.mkdir("adir")
    code, _o, err = run(BASE + [flag, "adir"], capsys)
    one_line_error(err, flag, "is a directory")
    assert os.listdir(".") == ["adir"]


def test_existing_files_are_overwritten_like_the_reference(capsys, workdir):
    for name in ("a.nxs", "a.cbf", "a.geom", "a.png"):
        open(name, "w").write("old")
    code, _o, _e = run(BASE + NEW, capsys)
    assert code == 0
    for name in ("a.nxs", "a.cbf", "a.geom", "a.png"):
        assert open(name, "rb").read() != b"old"


def test_bad_choices_and_missing_noise(capsys, workdir):
    code, _o, err = run(BASE + ["-nexusfile", "a.h5", "-nexus_data", "photons"], capsys)
    one_line_error(err, "-nexus_data", "photons")
    code, _o, err = run(BASE + ["-nonoise", "-nexusfile", "a.h5", "-nexus_data", "noise"], capsys)
    one_line_error(err, "-nexus_data noise", "-nonoise")
    code, _o, err = run(BASE + ["-cbffile"], capsys)
    one_line_error(err, "-cbffile", "missing value")
    assert os.listdir(".") == []


def test_detector_too_large_for_cbf(capsys, workdir):
    big = [a for a in BASE]
    big[big.index("-detpixels_f") + 1] = "65536"
    big[big.index("-detpixels_s") + 1] = "32768"
    code, _o, err = run(big + ["-cbffile", "a.cbf"], capsys)
    assert code == 2
    one_line_error(err, "-cbffile", "65536x32768", "more than a CBF file can hold")
    assert os.listdir(".") == []


@pytest.mark.parametrize("flag,module,package", [("-nexusfile", "h5py", "h5py"),
                                                  ("-cbffile", "fabio.cbfimage", "fabio")])
def test_missing_package_is_a_one_line_error(capsys, workdir, monkeypatch, flag, module, package):
    monkeypatch.setitem(sys.modules, module, None)
    if module == "fabio.cbfimage":
        monkeypatch.setitem(sys.modules, "fabio", None)
    code, _o, err = run(BASE + [flag, "x"], capsys)
    assert code == 2
    one_line_error(err, flag, "needs the %s package" % package, "pip install %s" % package)
    assert os.listdir(".") == []


def test_tilted_detector_cbf_warns(capsys, workdir):
    code, _o, err = run(BASE + ["-twotheta", "10", "-cbffile", "a.cbf"], capsys)
    assert code == 0 and "cannot describe a detector that is not perpendicular" in err


def test_beam_missing_the_detector_refused_for_cbf_before_rendering(capsys, workdir):
    code, _o, err = run(BASE + ["-xds", "-twotheta", "100", "-cbffile", "a.cbf"], capsys)
    assert code == 2
    one_line_error(err, "-cbffile", "does not meet the detector plane")
    assert os.listdir(".") == []
