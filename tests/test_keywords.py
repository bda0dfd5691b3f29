"""Keyword checks: every bad value is one NbsimError naming the keyword and its unit."""
import math

import numpy as np
import pytest

import golden_cases as gc
import nbsim
from nbsim import NbsimError
from nbsim.keywords import KEYWORDS, describe, in_keyword_terms, keyword_words

IN = gc.INPUTS
BASE = dict(cell=(70, 80, 90, 75, 85, 95), default_F=10, detpixels=24, seed=1)

# one valid value for every keyword (with what it needs beside it)
GOOD = {
    "cell": (50, 60, 70, 90, 95, 100), "A_matrix": np.diag([0.02, 0.02, 0.02]),
    "mat_file": IN + "/tric.mat", "misset_deg": (1, 2, 3), "misset_seed": 4,
    "N_cells": (2, 3, 4), "crystal_size_mm": 0.001, "crystal_shape": "gauss", "fudge": 1.5,
    "Fhkl": {(1, 2, 3): 4.0}, "hkl_file": IN + "/cubic.hkl", "default_F": 3,
    "dump_file": "never_written.bin", "mosaic_spread_deg": 0.2, "mosaic_domains": 3,
    "mosaic_seed": 9, "phi_deg": 5, "osc_deg": 1, "phistep_deg": 0.5, "phisteps": 2,
    "spindle_axis": (0, 1, 0), "interpolate": False, "water_size_um": 10,
    "wavelength_A": 1.5, "energy_eV": 9000, "dispersion_pct": 1, "dispsteps": 2,
    "divergence_mrad": 0.2, "hdivrange_mrad": 0.2, "vdivrange_mrad": 0.1,
    "hdivstep_mrad": 0.05, "vdivstep_mrad": 0.05, "hdivsteps": 2, "vdivsteps": 2,
    "divsteps": 2, "round_div": False, "source_file": IN + "/sources.txt", "fluence": 1e25,
    "flux": 1e12, "exposure_s": 0.5, "beamsize_mm": 0.05, "polarization": 0.9,
    "nopolar": True, "beam_vector": (1, 0, 0), "polar_vector": (0, 0, 1), "detpixels": (20, 30),
    "detsize_mm": (2.0, 3.0), "pixel_size_mm": 0.1, "distance_mm": 90,
    "close_distance_mm": 90, "convention": "dials", "pivot": "sample", "xbeam_mm": 1.0,
    "ybeam_mm": 1.2, "xclose_mm": 1.0, "yclose_mm": 1.0, "orgx_px": 10, "orgy_px": 11,
    "fdet_vector": (0, 0, 1), "sdet_vector": (0, -1, 0), "odet_vector": (1, 0, 0),
    "twotheta_axis": (0, 1, 0), "pix0_vector_mm": (100, 1, -1), "detector_rot_deg": (1, 2, 3),
    "twotheta_deg": 5, "curved_detector": True, "point_pixel": True, "detector_thick_um": 100,
    "detector_abs_um": math.inf, "detector_thicksteps": 2, "roi": ((0, 10), (2, 12)),
    "mask": np.ones((24, 24), dtype=bool), "mask_file": IN + "/mask.img", "dmin_A": 2.0,
    "oversample": 2, "oversample_thick": True, "oversample_polar": True,
    "oversample_omega": True, "seed": 12, "noise": False, "adc_offset_adu": 10,
    "int_scale": 2.0, "pgm": False, "pgm_scale": 3.0, "c_parity": True, "fast": True,
}
NEEDS = {
    "A_matrix": {"cell": None}, "mat_file": {"cell": None}, "misset_seed": {"misset_deg": "random"},
    "crystal_size_mm": {}, "energy_eV": {}, "spindle_axis": {"convention": "custom"},
    "beam_vector": {"convention": "custom"}, "polar_vector": {"convention": "custom"},
    "fdet_vector": {"convention": "custom"}, "sdet_vector": {"convention": "custom"},
    "odet_vector": {"convention": "custom"}, "twotheta_axis": {"convention": "custom"},
    "pix0_vector_mm": {"convention": "custom"}, "pivot": {"convention": "custom"},
    "detsize_mm": {"detpixels": None}, "mask_file": {"detpixels": None},
    "divergence_mrad": {}, "hdivrange_mrad": {},
}

# a wrong value for every keyword, and what the message must say
BAD = [
    ("cell", (100, 100, 100), "expected 6 values"), ("cell", (0, 1, 1, 90, 90, 90), "positive"),
    ("cell", (10, 10, 10, 90, 90, 200), "between 0 and 180"),
    ("cell", (10, 10, 10, 30, 30, 100), "do not form a unit cell"),
    ("A_matrix", np.ones((3, 2)), "3x3"), ("A_matrix", np.ones((3, 3)), "singular"),
    ("A_matrix", [[1, 0, 0], [0, 1, 0], [0, 0, math.nan]], "finite"),
    ("mat_file", "/nonexistent.mat", "no such file"), ("misset_deg", "sideways", "'random'"),
    ("misset_deg", (1, 2), "expected 3 values"), ("misset_seed", 1.5, "whole number"),
    ("N_cells", 0, "at least 1"), ("N_cells", 2.5, "whole number"), ("N_cells", (1, 2), "3 values"),
    ("crystal_size_mm", -1, "> 0"), ("crystal_shape", "cube", "'square'"), ("fudge", 0, "> 0"),
    ("Fhkl", {(1, 2): 3.0}, "(h, k, l) tuples"), ("Fhkl", (np.ones((4, 2)), np.ones(4)), "(n, 3)"),
    ("Fhkl", (np.ones((4, 3), dtype=int), np.ones(3)), "one amplitude per h k l"),
    ("Fhkl", (np.full((1, 3), 0.5), [1.0]), "whole numbers"), ("Fhkl", 42, "expected a dict"),
    ("Fhkl", "/nonexistent.hkl", "no such file"), ("hkl_file", 5, "file name"),
    ("default_F", "ten", "expected a number"), ("default_F", math.nan, "finite"),
    ("mosaic_spread_deg", -0.1, ">= 0"), ("mosaic_domains", 0, "at least 1"),
    ("mosaic_seed", 2**40, "32-bit"), ("phi_deg", math.inf, "finite"), ("osc_deg", -1, ">= 0"),
    ("phistep_deg", 0, "> 0"), ("phisteps", True, "whole number"),
    ("spindle_axis", (0, 0, 0), "zero vector"), ("interpolate", "yes", "True or False"),
    ("water_size_um", -5, ">= 0"), ("wavelength_A", 0, "> 0"), ("wavelength_A", "1", "number"),
    ("energy_eV", -9000, "> 0"), ("dispersion_pct", -1, ">= 0"), ("dispsteps", 0, "at least 1"),
    ("divergence_mrad", -1, ">= 0"), ("hdivstep_mrad", 0, "> 0"), ("divsteps", 0, "at least 1"),
    ("round_div", 1, "True or False"), ("source_file", "/nonexistent", "no such file"),
    ("fluence", 0, "> 0"), ("flux", -1, ">= 0"), ("exposure_s", 0, "> 0"),
    ("beamsize_mm", 0, "> 0"), ("polarization", 1.5, "<= 1"), ("nopolar", "no", "True or False"),
    ("beam_vector", (1, 0), "3 values"), ("detpixels", 0, "at least 1"),
    ("detpixels", (10, 10, 10), "expected 2 values"), ("detpixels", 12.5, "whole number"),
    ("detsize_mm", (0, 10), "> 0"), ("pixel_size_mm", -0.1, "> 0"),
    ("distance_mm", 0, "> 0"), ("distance_mm", [100], "expected a number"),
    ("close_distance_mm", -5, "> 0"), ("convention", "ccp4", "'mosflm'"),
    ("pivot", "detector", "'beam'"), ("xbeam_mm", math.nan, "finite"),
    ("orgx_px", "x", "number"), ("pix0_vector_mm", (1, 2), "3 values"),
    ("detector_rot_deg", 5, "3 values"), ("twotheta_deg", None, "number"),
    ("curved_detector", None, "True or False"), ("detector_thick_um", -1, ">= 0"),
    ("detector_abs_um", 0, "> 0"), ("detector_thicksteps", 0, "at least 1"),
    ("roi", (0, 10, 0, 10), "expected 2 values"), ("roi", ((5, 1), (0, 3)), "min <= max"),
    ("roi", ((-1, 1), (0, 3)), "at least 0"), ("mask", np.ones(5), "2-D"),
    ("mask", [["a"]], "2-D"), ("mask_file", IN, "directory"), ("dmin_A", -1, ">= 0"),
    ("oversample", 0, "at least 1"), ("oversample", 5000, "<= 1000"),
    ("oversample_thick", 2, "True or False"), ("seed", "x", "whole number"),
    ("noise", 0, "True or False"), ("adc_offset_adu", math.inf, "finite"),
    ("int_scale", -1, "> 0"), ("pgm", None, "True or False"), ("pgm_scale", 0, "> 0"),
    ("c_parity", "on", "True or False"), ("fast", 1.0, "True or False"),
    ("dump_file", "", "file name"), ("exposure_s", np.array([1.0, 2.0]), "expected a number"),
    ("fdet_vector", (0, 0, math.nan), "finite"), ("sdet_vector", "y", "3 values"),
    ("odet_vector", (0, 0, 0), "zero vector"), ("polar_vector", [0, 0], "3 values"),
    ("twotheta_axis", (0, math.inf, 0), "finite"), ("hdivrange_mrad", -0.1, ">= 0"),
    ("vdivrange_mrad", "wide", "number"), ("vdivstep_mrad", -1, "> 0"),
    ("hdivsteps", -2, "at least 1"), ("vdivsteps", 1.5, "whole number"),
    ("orgy_px", math.nan, "finite"), ("xclose_mm", None, "number"), ("yclose_mm", (1,), "number"),
    ("ybeam_mm", "centre", "number"), ("oversample_polar", "yes", "True or False"),
    ("oversample_omega", None, "True or False"), ("point_pixel", 1, "True or False"),
]


def test_every_keyword_has_a_good_and_a_bad_example():
    assert set(GOOD) == set(KEYWORDS)
    assert {name for name, _, _ in BAD} == set(KEYWORDS)


@pytest.mark.parametrize("name", sorted(KEYWORDS))
def test_a_good_value_builds(name, workdir):
    kw = dict(BASE)
    kw.update(NEEDS.get(name, {}))
    kw[name] = GOOD[name]
    kw = {k: v for k, v in kw.items() if v is not None}
    sim = nbsim.Simulation(**kw)
    assert sim.keywords[name] is GOOD[name]
    assert not (workdir / "never_written.bin").exists()


@pytest.mark.parametrize("name,value,says", BAD,
                         ids=["%s-%d" % (b[0], i) for i, b in enumerate(BAD)])
def test_a_bad_value_is_one_error_naming_keyword_and_unit(name, value, says):
    kw = dict(BASE)
    kw.update(NEEDS.get(name, {}))
    kw[name] = value
    kw = {k: v for k, v in kw.items() if v is not None or k == name}
    with pytest.raises(NbsimError) as info:
        nbsim.Simulation(**kw)
    message = str(info.value)
    unit = KEYWORDS[name].unit
    prefix = name + (" (%s)" % unit if unit else "")
    assert message.startswith(prefix), message
    assert says in message, message
    assert "\n" not in message


def test_unknown_keywords_and_pairs_that_clash():
    with pytest.raises(NbsimError, match="unknown keyword 'distance'.*did you mean distance_mm"):
        nbsim.Simulation(distance=100, **BASE)
    with pytest.raises(NbsimError, match="wavelength_A and energy_eV: give one"):
        nbsim.Simulation(wavelength_A=1, energy_eV=9000, **BASE)
    with pytest.raises(NbsimError, match="cell and A_matrix"):
        nbsim.Simulation(A_matrix=np.eye(3) * 0.01, **BASE)
    with pytest.raises(NbsimError, match="misset_seed: used only with misset_deg='random'"):
        nbsim.Simulation(misset_seed=3, **BASE)


def test_no_traceback_from_the_kernels_for_odd_array_types():
    """Arrays of unusual dtypes are converted or refused before anything renders."""
    hkl = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.uint8)
    F = np.array([3, 4], dtype=np.int16)
    res = nbsim.simulate(Fhkl=(hkl, F), N_cells=2, **dict(BASE, default_F=0))
    assert res.float_image.dtype == np.float32 and np.isfinite(res.float_image).all()
    with pytest.raises(NbsimError, match="Fhkl.*F must be real numbers"):
        nbsim.Simulation(Fhkl=(hkl, np.array(["a", "b"])), **BASE)
    with pytest.raises(NbsimError, match="Fhkl.*integers"):
        nbsim.Simulation(Fhkl=(np.array([["a", "b", "c"]]), [1.0]), **BASE)


def test_twotheta_axis_sets_only_the_axis():
    """-twotheta_axis is also read as -twotheta by the reference; the keyword is not."""
    kw = dict(BASE, convention="custom", distance_mm=100)
    sim = nbsim.Simulation(twotheta_axis=(1, 0, 0), **kw)
    assert sim.config.detector.twotheta == 0.0 and sim.detector.pivot == "beam"
    assert sim.config.detector.twotheta_axis == (1.0, 0.0, 0.0)
    tilted = nbsim.Simulation(twotheta_axis=(0, 0, -1), twotheta_deg=7, **kw)
    from nbsim.config import Config
    from nbsim.config_args import differing_fields
    back = Config.from_args(tilted.to_args(), warn=lambda m: None)
    assert differing_fields(back, tilted.config) == []


def test_words_keep_the_callers_order_and_seeds_go_last():
    words, extras = keyword_words({"seed": 3, "distance_mm": 100, "twotheta_deg": 5,
                                   "misset_deg": "random", "misset_seed": 8})
    assert words == ["-distance", "100", "-twotheta", "5", "-misset", "random"]
    assert extras["_tail"] == ["-seed", "3", "-misset_seed", "8"]


def test_plan_errors_are_reworded_and_keywords_are_described():
    assert in_keyword_terms("-distance: must be finite") == \
        "distance_mm (-distance): must be finite"
    assert in_keyword_terms("something else: x") == "something else: x"
    lines = describe()
    assert len(lines) == len(KEYWORDS)
    assert any(line.startswith("distance_mm") and "[mm]" in line for line in lines)
    assert nbsim.keywords_help().count("\n") == len(KEYWORDS) - 1
