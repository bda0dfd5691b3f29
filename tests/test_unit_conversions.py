"""Every unit conversion of the command line and of SMV headers is nanoBragg.c's own
expression, operation for operation.

``x/1000.0`` and ``x*(1/1000.0)`` differ in the last bit for about one two-decimal
value in seven (109.85 mm is 0.10984999999999999 m by division, 0.10985 by the
reciprocal); with sharp lattice factors (N = 1000) that bit shows in the float image.
The values below are chosen so that the reciprocal form would give a different double,
and each test says so first: the tests cannot pass by accident.

The first part needs no reference: it evaluates the reference's expression in Python
(the same IEEE double operations) and compares with the Config/Plan value. The second
part renders against the reference binary when NB_C_BIN is set.
"""
import math

import pytest

import refpair
from nbsim.cli import config_from_args
from nbsim.plan import make_plan

RTD = 180.0 * (1.0 / math.pi)   # the reference's 180.0*M_1_PI (M_1_PI is 1/pi rounded)
BASE = ["-cell", "70", "80", "90", "90", "90", "90", "-default_F", "50"]


def cfg(args):
    return config_from_args(BASE + list(args), warn=lambda m: None)[0]


# (flag words, where the value lands, the reference's divisor: value = atof(word) / divisor)
DIVIDED = [
    (["-distance", "109.85"], lambda c: c.detector.distance, 1000.0),
    (["-close_distance", "109.85"], lambda c: c.detector.close_distance, 1000.0),
    (["-Xbeam", "0.21"], lambda c: c.detector.xbeam, 1000.0),
    (["-Ybeam", "0.39"], lambda c: c.detector.ybeam, 1000.0),
    (["-Xclose", "0.42"], lambda c: c.detector.xclose, 1000.0),
    (["-Yclose", "0.45"], lambda c: c.detector.yclose, 1000.0),
    (["-twotheta", "0.21"], lambda c: c.detector.twotheta, RTD),
    (["-detector_rotx", "0.39"], lambda c: c.detector.rotx, RTD),
    (["-detector_roty", "0.42"], lambda c: c.detector.roty, RTD),
    (["-detector_rotz", "0.75"], lambda c: c.detector.rotz, RTD),
    (["-detsize", "0.21"], lambda c: c.detector.detsize_s, 1000.0),
    (["-detsize_f", "0.24"], lambda c: c.detector.detsize_f, 1000.0),
    (["-detsize_s", "0.39"], lambda c: c.detector.detsize_s, 1000.0),
    (["-pixel", "0.12"], lambda c: c.detector.pixel_size, 1000.0),
    (["-lambda", "0.29"], lambda c: c.beam.lambda0, 1.0e10),
    (["-beamsize", "0.21"], lambda c: c.beam.beamsize, 1000),
    (["-dispersion", "0.13"], lambda c: c.beam.dispersion, 100.0),
    (["-divergence", "0.21"], lambda c: c.beam.vdivrange, 1000.0),
    (["-hdivrange", "0.24"], lambda c: c.beam.hdivrange, 1000.0),
    (["-vdivrange", "0.39"], lambda c: c.beam.vdivrange, 1000.0),
    (["-hdivstep", "0.42"], lambda c: c.beam.hdivstep, 1000.0),
    (["-vdivstep", "0.45"], lambda c: c.beam.vdivstep, 1000.0),
    (["-mosaic", "0.21"], lambda c: c.crystal.mosaic_spread, RTD),
    (["-phi", "0.39"], lambda c: c.crystal.phi0, RTD),
    (["-osc", "0.42"], lambda c: c.crystal.osc, RTD),
    (["-phistep", "0.78"], lambda c: c.crystal.phistep, RTD),
    (["-water", "0.05"], lambda c: c.crystal.water_size, 1e6),
    (["-xtalsize", "0.21"], lambda c: c.crystal.sample_z, 1000),
    (["-sample_size", "0.21"], lambda c: c.crystal.sample_x, 1000),
    (["-sample_x", "0.24"], lambda c: c.crystal.sample_x, 1000),
    (["-sample_y", "0.39"], lambda c: c.crystal.sample_y, 1000),
    (["-sample_z", "0.42"], lambda c: c.crystal.sample_z, 1000),
    (["-xtal_x", "0.24"], lambda c: c.crystal.sample_x, 1000),
    (["-xtal_y", "0.39"], lambda c: c.crystal.sample_y, 1000),
    (["-xtal_z", "0.42"], lambda c: c.crystal.sample_z, 1000),
    (["-misset", "0.21", "0", "0"], lambda c: c.crystal.misset[0], RTD),
]
IDS = [c[0][0] for c in DIVIDED]


@pytest.mark.parametrize("words, where, divisor", DIVIDED, ids=IDS)
def test_flag_value_is_divided_as_the_reference_divides(words, where, divisor):
    x = float(words[1])
    # the chosen value exposes the difference: multiplying by the reciprocal differs
    assert x * (1 / divisor) != x / divisor, words
    assert where(cfg(words)) == x / divisor


@pytest.mark.parametrize("words, where, expr", [
    (["-detector_thick", "0.29"], lambda c: c.detector.thick, lambda x: x * 1e-6),
    (["-detector_abs", "0.29"], lambda c: c.detector.mu, lambda x: 1.0 / (x * 1e-6)),
    (["-dmin", "0.29"], lambda c: c.detector.dmin, lambda x: x * 1e-10),
    (["-energy", "12398.43"], lambda c: c.beam.lambda0, lambda x: (12398.42 / x) / 1.0e10),
], ids=["-detector_thick", "-detector_abs", "-dmin", "-energy"])
def test_other_conversions_are_the_references_expressions(words, where, expr):
    x = float(words[1])
    assert where(cfg(words)) == expr(x)


def test_cell_angles_are_divided_by_rtd():
    c = cfg(["-cell", "70", "80", "90", "0.21", "0.39", "0.42"])
    assert c.crystal.cell[3:] == (0.21 / RTD, 0.39 / RTD, 0.42 / RTD)
    assert 0.21 * (1 / RTD) != 0.21 / RTD


def test_rtd_is_180_times_m_1_pi():
    # M_1_PI printed with 21 digits by glibc's <math.h>; its double is 1/pi rounded
    assert RTD == 180.0 * float("0.318309886183790671537767526745028724")


def _smv(extra):
    text = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            "SIZE1=8;\nSIZE2=6;\n%s}\f" % extra).encode("latin-1")
    return text + b" " * (512 - len(text)) + b"\x01\x00" * 48


@pytest.mark.parametrize("flag", ["-img", "-mask"])
def test_smv_header_values_are_converted_as_the_reference(flag, tmp_path):
    path = tmp_path / "h.img"
    # (DISTANCE after CLOSE_DISTANCE: the reference takes the last match of a keyword,
    # and "DISTANCE" also matches inside "CLOSE_DISTANCE")
    path.write_bytes(_smv("PIXEL_SIZE=0.12;\nCLOSE_DISTANCE=0.21;\nDISTANCE=109.85;\n"
                          "WAVELENGTH=0.29;\nBEAM_CENTER_X=0.39;\nBEAM_CENTER_Y=0.42;\n"
                          "PHI=0.39;\nOSC_RANGE=0.42;\nORGX=3.5;\nORGY=2.25;\n"))
    d = config_from_args(BASE + [flag, str(path)], warn=lambda m: None)[0]
    det, beam, cr = d.detector, d.beam, d.crystal
    assert det.pixel_size == 0.12 / 1000.0
    assert (det.detsize_f, det.detsize_s) == ((0.12 / 1000.0) * 8, (0.12 / 1000.0) * 6)
    assert det.distance == 109.85 / 1000.0
    assert det.close_distance == 0.21 / 1000.0
    assert beam.lambda0 == 0.29 / 1e10
    assert det.xbeam == 0.39 / 1000.0
    # a mask's Y centre is measured from the other edge, an image's is not
    want_y = (0.12 / 1000.0) * 6 - 0.42 / 1000.0 if flag == "-mask" else 0.42 / 1000.0
    assert det.ybeam == want_y
    assert (det.orgx, det.orgy) == (3.5, 2.25)
    assert cr.phi0 == 0.39 / RTD and cr.osc == 0.42 / RTD


def test_derived_scalars_are_the_references_expressions():
    c = cfg(["-flux", "1.3e12", "-exposure", "0.7", "-beamsize", "0.21", "-water", "0.05",
             "-N", "3", "-lambda", "1.1", "-distance", "109.85", "-pixel", "0.12",
             "-detpixels", "16", "-oversample", "3", "-nonoise"])
    p = make_plan(c)
    beamsize = 0.21 / 1000
    assert p.fluence == 1.3e12 * 0.7 / beamsize / beamsize
    w = 0.05 / 1e6
    assert p.I_bg == 2.57 * 2.57 * 7.94079248018965e-30 * p.fluence * w * w * w * 1e6 \
        * 6.02214179e23 / 18.0
    assert p.subpixel_size == (0.12 / 1000.0) / 3
    assert p.geom.orgx == p.geom.fclose / (0.12 / 1000.0) + 0.5


# --- against the reference binary -------------------------------------------------------

SHARP = ["-Na", "1000", "-Nb", "1000", "-Nc", "1000", "-detpixels", "32", "-oversample", "1",
         "-seed", "1", "-noprogress", "-floatfile", "float.bin", "-intfile", "int.img",
         "-noisefile", "noise.img", "-pgmfile", "image.pgm"]


@pytest.mark.skipif(not refpair.REF, reason=refpair.SKIP_REASON)
@pytest.mark.parametrize("words", [c[0] for c in DIVIDED] + [
    ["-detector_thick", "0.29", "-detector_abs", "0.29"], ["-dmin", "0.29"],
    ["-energy", "12398.43"], ["-distance", "109.85", "-Xbeam", "1.8", "-Ybeam", "1.81"],
    ["-flux", "1.3e12", "-exposure", "0.7", "-beamsize", "0.21"]],
    ids=IDS + ["-detector_thick", "-dmin", "-energy", "beam-centre", "-flux"])
def test_sharp_render_matches_reference(words, tmp_path):
    """Sharp lattice peaks (N = 1000) make a last-bit difference in a length or angle
    visible in the float image; every output file must be identical."""
    ref, nb, ref_dir, nb_dir = refpair.run_both(tmp_path, BASE + words + SHARP,
                                                ["-engine", "c", "-c_parity"])
    assert nb.returncode == ref.returncode, nb.stderr
    assert refpair.differing_files(ref_dir, nb_dir) == []
