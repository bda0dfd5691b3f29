"""Image statistics and the derived 16-bit and 8-bit images, in the reference's order.

nanoBragg.c accumulates its statistics pixel by pixel in slow-major order (single
precision products, double sums); numpy's pairwise sums would round differently, so
these loops are sequential on purpose.
"""
from __future__ import annotations

import math
from .records import record

import numpy as np



@record
class ImageStats:
    max_I: float
    max_I_x: float
    max_I_y: float
    mean: float
    rms: float
    rmsd: float
    count: int

    def lines(self):
        from .io.cparse import fmt_g as g   # C's %g, including "-nan"
        return ["max_I = %s  at %s %s" % (g(self.max_I), g(self.max_I_x), g(self.max_I_y)),
                "mean= %s rms= %s rmsd= %s" % (g(self.mean), g(self.rms), g(self.rmsd))]


def loops_for(engine):
    """The sequential loops of ``engine`` ("numba" or "c"): both give the same bits."""
    if engine == "c":
        from .engines import c_engine
        return c_engine
    from .engines import numba_loops
    return numba_loops


def image_stats(img, roi, mask, subpixel_size, oversample, engine="numba") -> ImageStats:
    """Statistics as the reference prints them (masked pixels count only in rmsd)."""
    loops = loops_for(engine)
    roi_arr = np.asarray(roi, dtype=np.int64)
    has_mask = mask is not None
    m = mask if has_mask else np.zeros((1, 1), dtype=np.uint16)
    max_I, max_f, max_s, total, sumsqr, n = loops.accumulate_stats(img, roi_arr, m, has_mask)
    # the reference reports the position of the last sub-pixel it visited in that pixel
    if max_f >= 0:
        max_x = subpixel_size * (max_f * oversample + oversample - 1) + subpixel_size / 2.0
        max_y = subpixel_size * (max_s * oversample + oversample - 1) + subpixel_size / 2.0
    else:
        max_x = max_y = 0.0
    sumn = n if n > 0 else 1
    avg = total / sumn
    if sumn <= 1:
        sumn = 2
    rms = math.sqrt(sumsqr / (sumn - 1))
    dev, n2 = loops.deviation(img, roi_arr, avg)
    if n2 <= 1:
        n2 = 2
    rmsd = math.sqrt(dev / (n2 - 1))
    return ImageStats(max_I, max_x, max_y, avg, rms, rmsd, n)


def int_image(img, roi, scale, adc_offset, engine="numba"):
    """The SMV image: scaled, offset, clipped to 0..65535, rounded as the reference does."""
    out = np.zeros(img.shape, dtype=np.uint16)
    loops_for(engine).to_uint16(img, np.asarray(roi, dtype=np.int64), float(scale),
                                float(adc_offset), out)
    return out


def pgm_image(img, roi, scale, engine="numba"):
    """The 8-bit PGM image: scaled, clipped at 255, truncated."""
    out = np.zeros(img.shape, dtype=np.uint8)
    loops_for(engine).to_uint8(img, np.asarray(roi, dtype=np.int64), float(scale), out)
    return out


def noise_image(img, roi, adc_offset, seed, state, engine="numba"):
    """(uint16 noise image, photons, overloads) drawn as the reference draws them."""
    from .rng import new_seed
    out = np.zeros(img.shape, dtype=np.uint16)
    xmin, xmax, ymin, ymax = (int(v) for v in roi)
    photons, overloads = loops_for(engine).noise_loop(
        img, xmin, xmax, ymin, ymax, float(adc_offset), new_seed(seed), state, out)
    return out, float(photons), int(overloads)
