"""nbsim.experiment: the model derived from a Plan, and its frame changes."""
import math

import numpy as np
import pytest

from geometry_cases import CASES, IDS, model_for
from nbsim.experiment import Scan


@pytest.mark.parametrize("extra", [c[1] for c in CASES], ids=IDS)
def test_model_geometry(extra):
    plan, m = model_for(extra)
    g = plan.geom
    # the beam hit lies on the beam and in the detector plane
    hit = m.beam_hit
    assert np.linalg.norm(np.cross(hit, g.beam)) < 1e-15
    assert abs(np.dot(hit - np.array(g.pix0), g.odet)) < 1e-15
    if g.twotheta == 0.0:
        assert m.beam_centre_m == pytest.approx((g.fbeam, g.sbeam), rel=1e-12, abs=1e-15)
        assert m.distance == pytest.approx(g.distance, rel=1e-12)
    assert m.close_distance == pytest.approx(g.close_distance, rel=1e-12)
    # McStas: a proper rotation taking the beam to +z
    M = m.lab_to_mcstas()
    assert np.allclose(M @ M.T, np.eye(3), atol=1e-15) and np.linalg.det(M) == pytest.approx(1)
    assert np.allclose(M @ np.array(g.beam), [0, 0, 1], atol=1e-15)
    # the polarization is horizontal there (along -x)
    p = M @ np.array(g.polar)
    assert abs(p[1]) < 1e-12 and p[0] < 0
    # undoing two-theta and re-applying it gives the placed vectors back
    inner = m.without_twotheta(g.pix0)
    assert np.allclose(np.linalg.norm(inner), np.linalg.norm(g.pix0), rtol=1e-14)
    mm = m.in_frame(M)
    assert np.allclose(mm.pix0, M @ np.array(g.pix0), rtol=0, atol=1e-15)
    assert mm.beam_centre_px == pytest.approx(m.beam_centre_px, rel=1e-12)


def test_mosflm_mcstas_axes():
    _plan, m = model_for(CASES[0][1])
    assert np.allclose(m.lab_to_mcstas(), [[0, 0, -1], [0, 1, 0], [1, 0, 0]], atol=0)
    assert np.allclose(m.lab_to_imgcif(), [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=0)


def test_pixel_centres_and_scan():
    plan, m = model_for(CASES[1][1])
    g = plan.geom
    c = m.pixel_centres([0, 5], [0, 7])
    ps = plan.pixel_size
    assert np.allclose(c[1], np.array(g.pix0) + 5.5 * ps * np.array(g.fdet)
                       + 7.5 * ps * np.array(g.sdet), rtol=0, atol=1e-16)
    scan = m.scan(frames=3)
    assert scan == Scan(start=math.degrees(plan.phi0), increment=math.degrees(plan.osc), frames=3)
    assert scan.starts().tolist() == pytest.approx([-30, -29, -28])
    assert scan.ends().tolist() == pytest.approx([-29, -28, -27])


def test_beam_missing_the_detector():
    _plan, m = model_for(CASES[0][1])
    from dataclasses import replace
    away = replace(m, beam=(-1.0, 0.0, 0.0))          # plane behind the sample
    assert away.beam_hit is None and away.beam_centre_px is None and away.distance is None
    parallel = replace(m, beam=(0.0, 1.0, 0.0), polar=(0.0, 0.0, 1.0))
    assert parallel.beam_hit is None
