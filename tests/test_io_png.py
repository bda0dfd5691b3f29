"""nbsim.io.png: the preview read back with Pillow."""
import math

import numpy as np
import pytest

from nbsim.io import png

Image = pytest.importorskip("PIL.Image", reason="Pillow is a declared dependency of nbsim")


def read(path):
    with Image.open(path) as im:
        im.load()
        return im.mode, np.asarray(im), im.getpalette(), dict(im.text)


def test_levels_follow_the_log_scale(tmp_path):
    top = 1000.0
    img = np.array([[0.0, 1.0, 10.0, 100.0], [1000.0, 5000.0, -3.0, np.nan]], np.float32)
    png.write_preview_png(tmp_path / "a.png", img, top=top)
    mode, idx, palette, text = read(tmp_path / "a.png")
    assert mode == "P" and idx.shape == (2, 4)
    expect = [round(254 * math.log1p(1000 * v / top) / math.log1p(1000))
              for v in (0, 1, 10, 100, 1000)]
    assert idx[0].tolist() == expect[:4] and idx[1, 0] == 254
    assert idx[1, 1] == 254 and idx[1, 2] == 0 and idx[1, 3] == 0      # clipped, NaN black
    grey = np.array(palette[:255 * 3]).reshape(255, 3)
    assert (grey[:, 0] == grey[:, 1]).all() and (np.diff(grey[:, 0]) > 0).all()
    assert "top = 1000.0" in text["Description"]


def test_beam_centre_is_marked_in_red(tmp_path):
    img = np.random.default_rng(2).random((300, 400)).astype(np.float32)
    top = png.write_preview_png(tmp_path / "b.png", img, beam_centre_px=(250.5, 120.5))
    mode, idx, palette, text = read(tmp_path / "b.png")
    rgb = np.array(palette).reshape(-1, 3)[idx]
    red = (rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 0)
    rows, cols = np.nonzero(red)
    # a cross centred on pixel (fast 250, slow 120), open in the middle
    assert rows.min() < 120 < rows.max() and cols.min() < 250 < cols.max()
    assert set(rows[cols != 250]) == {120} and set(cols[rows != 120]) == {250}
    assert not red[118:123, 248:253].any()
    assert text["Beam centre (fast, slow) px"] == "250.5 120.5"
    # the automatic white level: 99.9th percentile of the pixels
    assert abs(top - np.percentile(img, 99.9)) < 1e-6


def test_auto_scale_ignores_unrendered_pixels_and_handles_blank_images():
    img = np.zeros((100, 100), np.float32)
    assert png.auto_top(img) == 0.0
    img[5, 5] = 7.0
    assert png.auto_top(img) == 7.0             # percentile 0, maximum used
    keep = np.ones((100, 100), bool)
    keep[5, 5] = False
    assert png.auto_top(img, keep) == 0.0
    data, top = png.preview_png(img, top=None)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and top == 7.0


def test_marker_outside_the_image_is_skipped(tmp_path):
    png.write_preview_png(tmp_path / "c.png", np.ones((20, 30), np.float32),
                          beam_centre_px=(-500.0, 9000.0))
    _mode, idx, _pal, _text = read(tmp_path / "c.png")
    assert (idx != png.MARK).all()


def test_large_images_are_reduced_keeping_the_brightest_pixel(tmp_path):
    img = np.zeros((2050, 1500), np.float32)
    img[2049, 1499] = 100.0                      # in the last, partial block
    img[1000, 3] = 50.0
    png.write_preview_png(tmp_path / "r.png", img, beam_centre_px=(750.0, 1025.0), top=100.0)
    mode, idx, palette, text = read(tmp_path / "r.png")
    assert idx.shape == (684, 500)               # 2050 and 1500 over k = 3, rounded up
    assert idx[683, 499] == 254 and idx[333, 1] > 0
    assert text["Reduction"].startswith("3 ")
    rgb = np.array(palette).reshape(-1, 3)[idx]
    red = (rgb[..., 0] == 255) & (rgb[..., 1] == 0)
    rows, cols = np.nonzero(red)
    assert set(rows[cols != 250]) == {341} and set(cols[rows != 341]) == {250}
