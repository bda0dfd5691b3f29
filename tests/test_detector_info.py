"""Result.detector: the placed detector in mm, for every convention."""
import pytest

from nbsim.config import Config
from nbsim.detector_info import detector_info
from nbsim.plan import make_plan


@pytest.mark.parametrize("flags", ["-mosflm", "-xds", "-adxv", "-denzo", "-dials",
                                   "-twotheta 10 -detector_rotx 3", "-xds -ORGX 40 -ORGY 30"])
def test_the_beam_centre_is_where_the_direct_beam_meets_the_detector(flags):
    cfg = Config.from_args("-cell 100 -default_F 1 -detpixels_s 64 -detpixels_f 80 -pixel 0.1 "
                           "-distance 90 -seed 1 " + flags, warn=lambda m: None)
    plan = make_plan(cfg)
    det = detector_info(plan)
    assert det.shape == (64, 80) and det.convention in flags + " -mosflm"
    s, f = det.direct_beam_mm
    if "twotheta" not in flags:
        assert det.beam_center_mm == pytest.approx(det.direct_beam_mm)
    # pix0 + s * sdet + f * fdet lies on the beam line
    point = [det.pix0_mm[i] + s * det.sdet[i] + f * det.fdet[i] for i in range(3)]
    along = sum(point[i] * det.beam[i] for i in range(3))
    off = [point[i] - along * det.beam[i] for i in range(3)]
    assert max(abs(x) for x in off) < 1e-9
    if "twotheta" not in flags:
        assert along == pytest.approx(det.distance_mm)
    assert det.as_dict()["wavelength_A"] == pytest.approx(1.0)


def test_pixel_centres_step_by_one_pixel_along_the_axes():
    plan = make_plan(Config.from_args("-cell 100 -default_F 1 -detpixels 16 -pixel 0.2 -seed 1"))
    det = detector_info(plan)
    a, b = det.pixel_center_mm(3, 4), det.pixel_center_mm(3, 5)
    assert [b[i] - a[i] for i in range(3)] == pytest.approx([0.2 * x for x in det.fdet])
    corner = det.pixel_center_mm(-0.5, -0.5)
    assert corner == pytest.approx(det.pix0_mm)
