"""nbsim.io.cbf: miniCBF files read back with fabio, header read as DIALS reads it."""
import math
import sys

import numpy as np
import pytest

from geometry_cases import CASES, IDS, model_for
from nbsim.errors import NbsimError

fabio = pytest.importorskip("fabio", reason="fabio is a declared dependency of nbsim")

from nbsim.io import cbf  # noqa: E402


def dials_header_dictionary(path):
    """The header as dxtbx's FormatCBFMini._start files it: for each '#' line,
    '=' and ':' are dropped and the second word keys the rest of the line; a short
    line with two ':' is the time stamp. (Rule read from cctbx/dxtbx
    src/dxtbx/format/FormatCBFMini.py; written here, not copied.)"""
    text = fabio.open(str(path)).header["_array_data.header_contents"]
    out = {}
    for record in text.splitlines():
        if not record.startswith("#"):
            continue
        if len(record[1:].split()) <= 2 and record.count(":") == 2:
            out["timestamp"] = record[1:].strip()
            continue
        words = record.replace("=", "").replace(":", "").split()
        out[words[1]] = " ".join(words[2:])
    return out


def dials_detector(path):
    """The flat detector DIALS's FormatCBFMiniPilatus builds from a miniCBF header.

    dxtbx (src/dxtbx/format/FormatCBFMini.py, _detector, and
    src/dxtbx/model/detector.py, DetectorFactory.simple): Beam_xy (pixels) times the
    pixel size is the beam centre in mm; the panel is perpendicular to the beam, which
    runs along -z of the imgCIF frame, at Detector_distance; the fast axis is +x, the
    slow axis -y, and the panel origin (outer corner of the first pixel) is
    distance·(0, 0, -1) - fast·beam_x - slow·beam_y. Returns imgCIF vectors in mm."""
    h = dials_header_dictionary(path)
    distance = float(h["Detector_distance"].split()[0]) * 1000.0
    bx, by = (float(x) for x in h["Beam_xy"].replace("(", "").replace(")", "")
              .replace(",", "").split()[:2])
    px, py = (float(x) * 1000.0 for x in h["Pixel_size"].replace("m", "").replace("x", "").split())
    fast, slow = np.array([1.0, 0, 0]), np.array([0, -1.0, 0])
    origin = distance * np.array([0, 0, -1.0]) - fast * (bx * px) - slow * (by * py)
    return {"origin": origin, "fast": fast, "slow": slow, "pixel": (px, py),
            "beam_xy": (bx, by), "distance": distance,
            "wavelength": float(h["Wavelength"].split()[0]),
            "start": float(h["Start_angle"].split()[0]),
            "increment": float(h["Angle_increment"].split()[0]),
            "cutoff": int(h["Count_cutoff"].split()[0]),
            "size": (int(fabio.open(str(path)).header["X-Binary-Size-Fastest-Dimension"]),
                     int(fabio.open(str(path)).header["X-Binary-Size-Second-Dimension"])),
            "timestamp": h.get("timestamp")}


@pytest.mark.parametrize("extra", [c[1] for c in CASES], ids=IDS)
def test_fabio_reads_identical_ints_and_dials_finds_the_beam_centre(tmp_path, extra):
    plan, model = model_for(extra)
    rng = np.random.default_rng(7)
    counts = rng.integers(-1, cbf.CBF_MAX + 1, (plan.spixels, plan.fpixels), dtype=np.int64)
    counts[0, :4] = [0, cbf.CBF_MAX, -1, cbf.CBF_MAX]
    counts = counts.astype(np.int32)
    path = tmp_path / "a.cbf"
    cbf.write_minicbf(path, counts, model, count_cutoff=1000)
    back = fabio.open(str(path))
    assert back.data.dtype == np.int32 and np.array_equal(back.data, counts)
    assert back.header["_array_data.header_convention"] == "PILATUS_1.2"
    det = dials_detector(path)
    g = plan.geom
    ps = plan.pixel_size
    assert det["size"] == (plan.fpixels, plan.spixels)
    assert det["pixel"] == (ps * 1000.0, ps * 1000.0)
    assert det["timestamp"] is not None
    # the beam centre DIALS derives is the true one, in the Plan's pixel convention
    centre = model.beam_centre_px
    assert det["beam_xy"] == centre
    if g.twotheta == 0.0:
        assert abs(det["beam_xy"][0] - g.fbeam / ps) <= 1e-9 * abs(g.fbeam / ps)
        assert abs(det["beam_xy"][1] - g.sbeam / ps) <= 1e-9 * abs(g.sbeam / ps)
        assert abs(det["distance"] / (g.distance * 1000.0) - 1) < 1e-9
    # where the beam meets the panel, in the panel's own coordinates (mm)
    hit = np.array([0, 0, -det["distance"]]) - det["origin"]
    assert abs(np.dot(hit, det["fast"]) / det["pixel"][0] - centre[0]) < 1e-9 * max(1, centre[0])
    assert abs(np.dot(hit, det["slow"]) / det["pixel"][1] - centre[1]) < 1e-9 * max(1, centre[1])
    assert abs(det["wavelength"] * 1e-10 / plan.lambda0 - 1) < 1e-12
    assert det["start"] == math.degrees(plan.phi0)
    assert abs(det["increment"] - math.degrees(plan.osc)) < 1e-12
    assert det["cutoff"] == 1000


def test_mosflm_panel_is_the_plans_panel_in_imgcif(tmp_path):
    """For an untilted MOSFLM detector the panel DIALS builds is nbsim's: same
    origin and axes in the imgCIF frame."""
    plan, model = model_for(CASES[0][1])
    path = tmp_path / "m.cbf"
    cbf.write_minicbf(path, np.zeros((plan.spixels, plan.fpixels), np.int32), model)
    det = dials_detector(path)
    M = model.lab_to_imgcif()
    assert np.allclose(det["origin"], M @ np.array(plan.geom.pix0) * 1000.0, rtol=0, atol=1e-9)
    assert np.allclose(det["fast"], M @ np.array(plan.geom.fdet), rtol=0, atol=1e-12)
    assert np.allclose(det["slow"], M @ np.array(plan.geom.sdet), rtol=0, atol=1e-12)


def test_counts_from_noise_image_and_from_photons():
    noise = np.array([[40, 41, 65535], [0, 45, 40]], dtype=np.uint16)
    rendered = np.array([[True, True, True], [False, True, True]])
    counts, cutoff = cbf.counts_for_cbf(None, noise, 40.0, rendered)
    assert counts.tolist() == [[0, 1, 65495], [-1, 5, 0]] and cutoff == 65495
    photons = np.array([[0.4, 0.6, 3e10], [np.nan, -2.0, 7.5]], dtype=np.float32)
    counts, cutoff = cbf.counts_for_cbf(photons, None, 40.0)
    assert counts.tolist() == [[0, 1, 2**31 - 128], [0, 0, 8]] and cutoff == 2**31 - 128


def test_detector_too_large_for_cbf_is_a_one_line_error():
    with pytest.raises(NbsimError, match=r"-cbffile: a 65536x32768 detector .* more than a CBF"):
        cbf.check_cbf_size(65536, 32768)
    cbf.check_cbf_size(46340, 46340)


def test_values_outside_int32_are_refused(tmp_path):
    _plan, model = model_for(CASES[0][1])
    for bad in ([[0, 2**31]], [[-1, 2**31 - 1]]):
        with pytest.raises(NbsimError, match="32-bit steps"):
            cbf.write_minicbf(tmp_path / "a.cbf", np.array(bad, np.int64), model)
    assert list(tmp_path.iterdir()) == []


def test_same_inputs_same_bytes(tmp_path):
    plan, model = model_for(CASES[0][1])
    counts = np.arange(plan.spixels * plan.fpixels, dtype=np.int32).reshape(plan.spixels, -1)
    cbf.write_minicbf(tmp_path / "a.cbf", counts, model)
    cbf.write_minicbf(tmp_path / "b.cbf", counts, model)
    # the CIF data block is named after the file; everything else is identical
    a = (tmp_path / "a.cbf").read_bytes().replace(b"data_a\r\n", b"data_b\r\n")
    assert a == (tmp_path / "b.cbf").read_bytes()


def test_missing_fabio_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "fabio", None)
    monkeypatch.setitem(sys.modules, "fabio.cbfimage", None)
    with pytest.raises(NbsimError, match=r"-cbffile: needs the fabio package.*pip install fabio"):
        cbf.require_fabio()
