"""The nearest whole index of a Miller index is a C int in the reference: (int) of a
double beyond the int range (or of NaN) is INT_MIN on x86-64, and the round, Gaussian
and top-hat spot shapes then use h - INT_MIN. Tiny wavelengths make |h| > 2^31."""
import math

import numpy as np
import pytest

import refpair
from nbsim.cli import config_from_args
from nbsim.engines.numba_kernel import _c_int
from nbsim.io.cparse import c_double_to_int

ARGS = ("-cell 70 80 90 90 90 90 -default_F 5 -N 3 -detpixels 8 -lambda 1e-10 -oversample 1 "
        "-noprogress -seed 1 -nonoise -nopgm").split()


@pytest.mark.parametrize("x", [0.0, -0.5, 2147483647.0, 2147483647.9, 2147483648.0, -2147483648.0,
                               -2147483648.9, -2147483649.0, 7e9, -7e9, math.inf, -math.inf,
                               math.nan])
def test_c_int_is_the_references_conversion(x):
    # nbsim.io.cparse.c_double_to_int models cvttsd2si; the kernel's helper must agree
    assert _c_int(x) == c_double_to_int(x)


@pytest.mark.parametrize("shape", ["-round_xtal", "-gauss_xtal", "-tophat_spots"])
def test_engines_agree_with_indices_beyond_int(shape):
    from nbsim.api import simulate
    cfg, _ = config_from_args(ARGS + [shape], warn=lambda m: None)
    images = [simulate(cfg, engine=e, threads=1).float_image for e in ("numba", "c")]
    assert np.array_equal(images[0], images[1], equal_nan=True)
    assert images[0].any()


@pytest.mark.skipif(not refpair.REF, reason=refpair.SKIP_REASON)
@pytest.mark.parametrize("engine", ["numba", "c"])
@pytest.mark.parametrize("shape", ["-round_xtal", "-gauss_xtal", "-tophat_spots"])
def test_indices_beyond_int_match_reference(shape, engine, tmp_path):
    ref, nb, ref_dir, nb_dir = refpair.run_both(tmp_path, ARGS + [shape], ["-engine", engine])
    assert ref.returncode == nb.returncode == 0, nb.stderr
    assert refpair.differing_files(ref_dir, nb_dir) == []


def test_tophat_spots_vanish_when_an_index_leaves_the_int_range():
    """At 1e-12 A every pixel has an index beyond 2^31 (the ones across the beam); the
    reference's nearest index is then INT_MIN, h - INT_MIN is huge and the top hat is 0
    everywhere. Nearest indices in 64 bits would light up spots instead."""
    from nbsim.api import simulate
    args = [a if a != "1e-10" else "1e-12" for a in ARGS] + ["-tophat_spots"]
    cfg, _ = config_from_args(args, warn=lambda m: None)
    for engine in ("numba", "c"):
        assert not simulate(cfg, engine=engine, threads=1).float_image.any()
