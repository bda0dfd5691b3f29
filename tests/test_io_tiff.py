"""nbsim.io.tiff: float32 TIFF written atomically, read back identically."""
import numpy as np
import pytest
import tifffile

from nbsim.errors import NbsimError
from nbsim.io.tiff import write_float_tiff


def test_round_trip(tmp_path):
    img = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    img[0, 0], img[1, 1], img[2, 2] = np.inf, -0.0, np.float32(1e-45)
    write_float_tiff(tmp_path / "a.tif", img)
    back = tifffile.imread(tmp_path / "a.tif")
    assert back.dtype == np.float32 and back.shape == (7, 5)
    assert back.tobytes() == img.tobytes()
    # the same image gives the same file (no timestamps)
    write_float_tiff(tmp_path / "b.tif", img)
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_float64_converted(tmp_path):
    write_float_tiff(tmp_path / "a.tif", np.array([[0.1, 2.0]]))
    assert tifffile.imread(tmp_path / "a.tif").tolist() == \
        np.array([[0.1, 2.0]], dtype=np.float32).tolist()


def test_errors(tmp_path):
    with pytest.raises(ValueError):
        write_float_tiff(tmp_path / "a.tif", np.zeros(4, np.float32))
    with pytest.raises(NbsimError, match="nodir"):
        write_float_tiff(tmp_path / "nodir" / "a.tif", np.zeros((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_geometry_metadata_read_with_tifffile(tmp_path):
    from geometry_cases import CASES, model_for
    plan, model = model_for(CASES[0][1])
    img = np.arange(plan.spixels * plan.fpixels, dtype=np.float32).reshape(plan.spixels, -1)
    write_float_tiff(tmp_path / "g.tif", img, model)
    with tifffile.TiffFile(tmp_path / "g.tif") as tif:
        meta = tif.shaped_metadata[0]
        page = tif.pages[0]
        assert np.array_equal(page.asarray(), img)
        # resolution tags: pixels per centimetre
        assert page.resolutionunit == tifffile.RESUNIT.CENTIMETER
        assert page.resolution == pytest.approx((0.01 / plan.pixel_size,) * 2, rel=1e-6)
    g = plan.geom
    ps = plan.pixel_size
    assert meta["pixel_size_m"] == ps
    assert meta["wavelength_A"] == plan.lambda0 * 1e10
    assert meta["distance_m"] == pytest.approx(g.distance, rel=1e-12)
    assert meta["beam_center_fast_slow_px"] == pytest.approx([g.fbeam / ps, g.sbeam / ps], rel=1e-12)
    assert meta["pix0_m"] == list(g.pix0) and meta["fast_axis"] == list(g.fdet)
    assert meta["phi_start_deg"] == pytest.approx(10.0) and meta["osc_range_deg"] == pytest.approx(0.5)
