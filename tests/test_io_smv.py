"""nbsim.io.smv: SMV headers and images, byte for byte like nanoBragg.c.

Every int/noise image of the golden runs is re-created: its header values are
parsed back and re-formatted (formatting must give the same 512 bytes), and
header plus pixels are written again (same file).  One header is also built from
values computed from the run's command line.  The reader is checked on the
vendored ``-img``/``-mask`` inputs and on hand-made headers for every rule of the
reference's keyword lookup and every error.

Optional: with ``NB_C_BIN`` set to a nanoBragg binary, a run with values long
enough to push the header past 512 bytes is reproduced, and a tricky ``-img``
header is fed to the binary to check that the values it takes from it are the
ones ``read_smv`` finds.
"""
import glob
import gzip
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nbsim.errors import NbsimError
from nbsim.io.cparse import c_atof
from nbsim.io.smv import (NATIVE_BYTE_ORDER, format_smv_header, read_smv, smv_value_of,
                          write_smv)

GOLDEN = Path(__file__).parent / "golden"
IMAGES = sorted(glob.glob(str(GOLDEN / "cases" / "*" / "*.img.gz")))
NB_C_BIN = os.environ.get("NB_C_BIN")
needs_c = pytest.mark.skipif(not NB_C_BIN, reason="set NB_C_BIN to a nanoBragg binary "
                             "to compare with live reference runs")


def _fields(header):
    """KEY -> value text of a written header (DIALS_ORIGIN has no ';')."""
    text = header[:header.index(b"}\f")].decode("latin-1")
    out = {}
    for line in text.split("\n")[1:-1]:
        key, value = line.split("=", 1)
        out[key] = value[:-1] if value.endswith(";") else value
    return out


def _header_from_fields(f):
    v = lambda key: c_atof(f[key])  # noqa: E731
    return format_smv_header(
        fpixels=int(f["SIZE1"]), spixels=int(f["SIZE2"]), pixel_size_mm=v("PIXEL_SIZE"),
        distance_mm=v("DISTANCE"), wavelength_A=v("WAVELENGTH"),
        beam_center_x_mm=v("BEAM_CENTER_X"), beam_center_y_mm=v("BEAM_CENTER_Y"),
        adxv_x_mm=v("ADXV_CENTER_X"), adxv_y_mm=v("ADXV_CENTER_Y"),
        mosflm_x_mm=v("MOSFLM_CENTER_X"), mosflm_y_mm=v("MOSFLM_CENTER_Y"),
        denzo_x_mm=v("DENZO_X_BEAM"), denzo_y_mm=v("DENZO_Y_BEAM"),
        dials_origin=[c_atof(x) for x in f["DIALS_ORIGIN"].split(",")],
        xds_orgx=v("XDS_ORGX"), xds_orgy=v("XDS_ORGY"), close_distance_mm=v("CLOSE_DISTANCE"),
        phi_deg=v("PHI"), osc_start_deg=v("OSC_START"), osc_range_deg=v("OSC_RANGE"),
        twotheta_deg=v("TWOTHETA"), byte_order=f["BYTE_ORDER"])


def _header_end(raw):
    return max(512, raw.index(b"}\f") + 2)


@pytest.mark.parametrize("path", IMAGES, ids=[os.path.relpath(p, GOLDEN / "cases")
                                              for p in IMAGES])
def test_golden_image_reproduced(path, tmp_path):
    raw = gzip.open(path).read()
    end = _header_end(raw)
    header = _header_from_fields(_fields(raw))
    assert header == raw[:end]
    pixels = np.frombuffer(raw, dtype="=u2", offset=end)
    write_smv(tmp_path / "x.img", header, pixels)
    assert (tmp_path / "x.img").read_bytes() == raw
    frame = read_smv(tmp_path / "x.img")
    assert frame.data.shape == (frame.height, frame.width)
    assert np.array_equal(frame.data.ravel(), pixels)


def test_header_from_computed_values():
    """cubic_default_F: -detpixels 128 -pixel 0.1 -distance 100 -lambda 6.2, MOSFLM
    convention, beam centred: Xbeam = Ybeam = (128*0.1 mm + 0.1 mm)/2."""
    pixel, distance, lam = 0.1e-3, 100e-3, 6.2e-10
    detsize = 128 * pixel
    xbeam = ybeam = (detsize + pixel) / 2
    fbeam, sbeam = ybeam + 0.5 * pixel, xbeam + 0.5 * pixel      # MOSFLM convention
    header = format_smv_header(
        fpixels=128, spixels=128, pixel_size_mm=pixel * 1000.0, distance_mm=distance * 1000.0,
        wavelength_A=lam * 1e10, beam_center_x_mm=xbeam * 1000.0, beam_center_y_mm=ybeam * 1000,
        adxv_x_mm=fbeam * 1000.0, adxv_y_mm=(detsize - sbeam) * 1000,
        mosflm_x_mm=(sbeam - 0.5 * pixel) * 1000.0, mosflm_y_mm=(fbeam - 0.5 * pixel) * 1000,
        denzo_x_mm=(sbeam - 0.0 * pixel) * 1000.0, denzo_y_mm=(fbeam - 0.0 * pixel) * 1000,
        dials_origin=(-fbeam * 1000, sbeam * 1000, -distance * 1000),
        xds_orgx=fbeam / pixel + 0.5, xds_orgy=sbeam / pixel + 0.5,
        close_distance_mm=distance * 1000.0, phi_deg=0.0, osc_start_deg=0.0,
        osc_range_deg=0.0, twotheta_deg=0.0)
    golden = gzip.open(GOLDEN / "cases" / "cubic_default_F" / "int.img.gz").read()[:512]
    assert header == golden


def _example(**changes):
    values = dict(fpixels=3, spixels=2, pixel_size_mm=0.1, distance_mm=100, wavelength_A=1,
                  beam_center_x_mm=0.15, beam_center_y_mm=0.1, adxv_x_mm=0.15,
                  adxv_y_mm=0.1, mosflm_x_mm=0.1, mosflm_y_mm=0.15, denzo_x_mm=0.1,
                  denzo_y_mm=0.15, dials_origin=(-0.15, 0.1, -100), xds_orgx=1.5,
                  xds_orgy=1, close_distance_mm=100, phi_deg=0, osc_start_deg=0,
                  osc_range_deg=0, twotheta_deg=0)
    values.update(changes)
    return format_smv_header(**values)


def test_header_layout_and_special_values():
    header = _example(distance_mm=-math.nan, wavelength_A=math.inf, phi_deg=-0.0,
                      byte_order="big_endian")
    assert len(header) == 512 and header.startswith(b"{\nHEADER_BYTES=512;\nDIM=2;\n")
    text = header.decode("latin-1")
    assert "\nBYTE_ORDER=big_endian;\n" in text
    assert "\nDISTANCE=-nan;\n" in text and "\nWAVELENGTH=inf;\n" in text
    assert "\nPHI=-0;\n" in text
    assert "\nDIALS_ORIGIN=-0.15,0.1,-100\nXDS_ORGX=1.5;\n" in text
    assert text.rstrip(" ").endswith("BEAMLINE=fake;\n}\f")
    with pytest.raises(TypeError):
        _example(fpixels=3.0)


def test_header_longer_than_512_is_not_padded(tmp_path):
    long = -1.23456789e-100
    header = _example(**{k: long for k in ("pixel_size_mm", "distance_mm", "wavelength_A",
                                           "beam_center_x_mm", "beam_center_y_mm",
                                           "adxv_x_mm", "adxv_y_mm", "xds_orgx")})
    assert len(header) > 512 and header.endswith(b"BEAMLINE=fake;\n}\f")
    write_smv(tmp_path / "x.img", header, np.arange(6, dtype=np.uint16))
    raw = (tmp_path / "x.img").read_bytes()
    assert raw == header + np.arange(6, dtype="=u2").tobytes()


def test_write_smv_rejects_other_dtypes(tmp_path):
    with pytest.raises(TypeError):
        write_smv(tmp_path / "x.img", _example(), np.zeros(6, dtype=np.int32))
    assert not (tmp_path / "x.img").exists()


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "missing_folder" / "x.img"
    with pytest.raises(NbsimError, match="missing_folder"):
        write_smv(target, _example(), np.zeros(6, dtype=np.uint16))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- reading


def test_read_vendored_inputs():
    for name in ("header.img", "mask.img"):
        path = GOLDEN / "inputs" / name
        frame = read_smv(path)
        raw = path.read_bytes()
        assert (frame.width, frame.height, frame.header_size) == (128, 112, 512)
        assert frame.byte_order == "little_endian"
        assert frame.byte_order_mismatch == (NATIVE_BYTE_ORDER != "little_endian")
        assert frame.data.dtype == np.uint16 and frame.data.shape == (112, 128)
        assert np.array_equal(frame.data.ravel(), np.frombuffer(raw[512:], dtype="=u2"))
        assert frame.header == raw[:512].decode("latin-1")
    frame = read_smv(GOLDEN / "inputs" / "header.img")
    assert frame.value_of("PIXEL_SIZE") == 0.11
    assert frame.value_of("TWOTHETA") == 3.0
    assert frame.value_of("ORGX") == 63.7273
    # the last "DISTANCE" is the one inside CLOSE_DISTANCE
    assert frame.value_of("DISTANCE") == frame.value_of("CLOSE_DISTANCE") == 89.8767
    assert math.isnan(frame.value_of("NO_SUCH_KEY"))


def test_value_of_rules():
    text = ("{\nHEADER_BYTES=512;\nDISTANCE=150;\nCLOSE_DISTANCE=120;\nPHI= +1.5e1xyz;\n"
            "OSC_RANGE=abc;\nAAA=7;\nTAIL_KEY\n}")
    assert smv_value_of(text, "DISTANCE") == 120.0      # last match, inside CLOSE_DISTANCE
    assert smv_value_of(text, "PHI") == 15.0            # atof prefix parse
    assert smv_value_of(text, "OSC_RANGE") == 0.0       # garbage after '=' -> 0
    assert smv_value_of(text, "TAIL_KEY") == 0.0        # no '=' after the match
    assert math.isnan(smv_value_of(text, "MISSING"))
    # matches do not overlap: "AA" is found at "AAA" start only, then the next '='
    assert smv_value_of(text, "AA") == 7.0
    # the next '=' may belong to a later key
    assert smv_value_of("KEY;\nOTHER=3;", "KEY") == 3.0
    with pytest.raises(ValueError):
        smv_value_of(text, "")


def _smv(header_text, pixels, header_size=512):
    head = header_text.encode("latin-1")
    return head + b" " * (header_size - len(head)) + np.asarray(pixels, dtype="=u2").tobytes()


def test_read_fallbacks_and_quirks(tmp_path):
    path = tmp_path / "a.img"
    # DETECTOR_DIMENSIONS when SIZE1 is missing; other-endian data is not swapped
    other = "big_endian" if NATIVE_BYTE_ORDER == "little_endian" else "little_endian"
    path.write_bytes(_smv(f"{{\nHEADER_BYTES=512;\nBYTE_ORDER={other};\n"
                          "DETECTOR_DIMENSIONS=2;\n}\f", [1, 2, 3, 256]))
    frame = read_smv(path)
    assert (frame.width, frame.height) == (2, 2)
    assert frame.byte_order == other and frame.byte_order_mismatch
    assert frame.data.tolist() == [[1, 2], [3, 256]]
    # a 1024-byte header: keys beyond byte 512 count, pixels start at 1024
    head = "{\nHEADER_BYTES=1024;\nSIZE1=3;\nSIZE2=1;\n" + " " * 600 + "PIXEL_SIZE=0.2;\n}\f"
    path.write_bytes(_smv(head, [5, 6, 7], header_size=1024))
    frame = read_smv(path)
    assert frame.header_size == 1024 and frame.value_of("PIXEL_SIZE") == 0.2
    assert frame.data.tolist() == [[5, 6, 7]] and frame.byte_order is None
    # a NUL byte ends the header text as C sees it
    path.write_bytes(_smv("{\nHEADER_BYTES=512;\nSIZE1=1;\nSIZE2=1;\n\0PHI=5;\n", [9]))
    assert math.isnan(read_smv(path).value_of("PHI"))
    # an odd header size: the reference indexes pixels from header_size/2 shorts
    raw = _smv("{\nHEADER_BYTES=513;\nSIZE1=2;\nSIZE2=1;\n", [0], header_size=512)
    path.write_bytes(raw[:512] + b"\x01\x00\x02\x00")
    assert read_smv(path).data.tolist() == [[1, 2]]
    # a SIZE1 of zero falls back too; a SIZE value like 3.9 truncates like (int)
    path.write_bytes(_smv("{\nHEADER_BYTES=512;\nSIZE1=0;\nSIZE2=5;\n"
                          "DETECTOR_DIMENSIONS=1.9;\n", [4]))
    assert read_smv(path).data.tolist() == [[4]]


@pytest.mark.parametrize("content,match", [
    (b"", "truncated"),
    (b"{\nHEADER_BYTES=512;\n" + b" " * 100, "truncated"),
    (b"P5\n" + b" " * 600, "does not look like an SMV"),
    (_smv("{\nHEADER_BYTES=512;\nSIZE1=4;\nSIZE2=4;\n", [0] * 15), "truncated"),
    (_smv("{\nHEADER_BYTES=4096;\nSIZE1=1;\nSIZE2=1;\n", [0] * 10), "truncated"),
    (_smv("{\nHEADER_BYTES=0;\nSIZE1=1;\nSIZE2=1;\n", [0]), "not positive"),
    (_smv("{\nHEADER_BYTX=512;\nSIZE1=1;\nSIZE2=1;\n", [0]), "HEADER_BYTES"),
    (_smv("{\nHEADER_BYTES=512;\nSIZE2=1;\n", [0]), "not positive"),
    (_smv("{\nHEADER_BYTES=512;\nSIZE1=2;\nSIZE2=-1;\n", [0]), "not positive"),
    (_smv("{\nHEADER_BYTES=512;\nSIZE1=2;\n", [0]), "SIZE2"),
    (_smv("{\nHEADER_BYTES=512;\nSIZE1=1e300;\nSIZE2=1;\n", [0]), "SIZE1"),
])
def test_read_errors(tmp_path, content, match):
    path = tmp_path / "bad.img"
    path.write_bytes(content)
    with pytest.raises(NbsimError, match=match) as info:
        read_smv(path)
    assert "bad.img" in str(info.value) and "\n" not in str(info.value)


def test_read_missing_file(tmp_path):
    with pytest.raises(NbsimError, match="nothere.img"):
        read_smv(tmp_path / "nothere.img")


# ---------------------------------------------------------------- live reference


def _run(tmp_path, *args):
    return subprocess.run([NB_C_BIN, *args], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), check=True).stdout


BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1", "-N", "1",
        "-nonoise", "-nopgm", "-noprogress", "-floatfile", "f.bin", "-intfile", "i.img"]


@needs_c
def test_live_long_header(tmp_path):
    _run(tmp_path, *BASE, "-detpixels", "5", "-pixel", "0.0987654321", "-distance",
         "123.456789", "-lambda", "1.23456789", "-Xbeam", "0.1234567", "-Ybeam", "-0.1234567",
         "-twotheta", "12.3456789", "-phi", "33.333333", "-osc", "0.7777777",
         "-detector_rotx", "1.234567", "-detector_roty", "2.345678")
    raw = (tmp_path / "i.img").read_bytes()
    end = raw.index(b"}\f") + 2
    assert end > 512                          # the reference overran its 512 bytes
    header = _header_from_fields(_fields(raw))
    assert header == raw[:end]
    write_smv(tmp_path / "x.img", header, np.frombuffer(raw, dtype="=u2", offset=end))
    assert (tmp_path / "x.img").read_bytes() == raw


@needs_c
def test_live_img_header_values(tmp_path):
    head = ("{\nHEADER_BYTES=1024;\nDIM=2;\nBYTE_ORDER=little_endian;\nSIZE1=7;\nSIZE2=3;\n"
            "PIXEL_SIZE=0.5;\nWAVELENGTH=9;\nDISTANCE=80;\nCLOSE_DISTANCE=70;\n"
            + " " * 500 + "WAVELENGTH= 1.25e0junk;\nPIXEL_SIZE=0.25;\nTWOTHETA=0;\n}\f")
    (tmp_path / "in.img").write_bytes(_smv(head, np.arange(21), header_size=1024))
    frame = read_smv(tmp_path / "in.img")
    _run(tmp_path, *BASE, "-img", "in.img")
    out = _fields((tmp_path / "i.img").read_bytes())
    assert (int(out["SIZE1"]), int(out["SIZE2"])) == (frame.width, frame.height) == (7, 3)
    assert c_atof(out["PIXEL_SIZE"]) == frame.value_of("PIXEL_SIZE") == 0.25
    assert c_atof(out["WAVELENGTH"]) == frame.value_of("WAVELENGTH") == 1.25
    assert c_atof(out["CLOSE_DISTANCE"]) == frame.value_of("DISTANCE") == 70.0
