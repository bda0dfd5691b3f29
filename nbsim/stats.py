"""Image statistics and the derived 16-bit and 8-bit images, in the reference's order.

nanoBragg.c accumulates its statistics pixel by pixel in slow-major order (single
precision products, double sums); numpy's pairwise sums would round differently, so
these loops are sequential on purpose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._jit import njit


@dataclass
class ImageStats:
    max_I: float
    max_I_x: float
    max_I_y: float
    mean: float
    rms: float
    rmsd: float
    count: int

    def lines(self):
        return ["max_I = %g  at %g %g" % (self.max_I, self.max_I_x, self.max_I_y),
                "mean= %g rms= %g rmsd= %g" % (self.mean, self.rms, self.rmsd)]


@njit
def _accumulate(img, roi, mask, has_mask):
    spixels, fpixels = img.shape
    xmin, xmax, ymin, ymax = roi[0], roi[1], roi[2], roi[3]
    max_I = 0.0
    max_f = -1
    max_s = -1
    total = 0.0
    sumsqr = 0.0
    n = 0
    for s in range(spixels):
        for f in range(fpixels):
            if f < xmin or f > xmax or s < ymin or s > ymax:
                continue
            if has_mask and mask[s, f] == 0:
                continue
            v = img[s, f]
            if v > max_I:
                max_I = np.float64(v)
                max_f = f
                max_s = s
            total += v
            sumsqr += np.float32(v * v)   # float * float stays single precision in C
            n += 1
    return max_I, max_f, max_s, total, sumsqr, n


@njit
def _deviation(img, roi, avg):
    spixels, fpixels = img.shape
    xmin, xmax, ymin, ymax = roi[0], roi[1], roi[2], roi[3]
    sumsqr = 0.0
    n = 0
    for s in range(spixels):
        for f in range(fpixels):
            if f < xmin or f > xmax or s < ymin or s > ymax:
                continue
            d = img[s, f] - avg
            sumsqr += d * d
            n += 1
    return sumsqr, n


def image_stats(img, roi, mask, subpixel_size, oversample) -> ImageStats:
    """Statistics as the reference prints them (masked pixels count only in rmsd)."""
    roi_arr = np.asarray(roi, dtype=np.int64)
    has_mask = mask is not None
    m = mask if has_mask else np.zeros((1, 1), dtype=np.uint16)
    max_I, max_f, max_s, total, sumsqr, n = _accumulate(img, roi_arr, m, has_mask)
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
    dev, n2 = _deviation(img, roi_arr, avg)
    if n2 <= 1:
        n2 = 2
    rmsd = math.sqrt(dev / (n2 - 1))
    return ImageStats(max_I, max_x, max_y, avg, rms, rmsd, n)


@njit
def _to_uint16(img, roi, scale, offset, out):
    spixels, fpixels = img.shape
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            t = img[s, f] * scale + offset
            if t > 65535.0:
                t = 65535.0
            if t < 0.0:
                t = 0.0
            # C rounds through floorf((float)(t + 0.5))
            out[s, f] = np.uint16(math.floor(np.float32(t + 0.5)))


def int_image(img, roi, scale, adc_offset):
    out = np.zeros(img.shape, dtype=np.uint16)
    _to_uint16(img, np.asarray(roi, dtype=np.int64), float(scale), float(adc_offset), out)
    return out


@njit
def _to_uint8(img, roi, scale, out):
    spixels, fpixels = img.shape
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            t = img[s, f] * scale
            if t > 255.0:
                t = 255.0
            if t < 0.0:
                t = 0.0
            out[s, f] = np.uint8(int(t))


def pgm_image(img, roi, scale):
    out = np.zeros(img.shape, dtype=np.uint8)
    _to_uint8(img, np.asarray(roi, dtype=np.int64), float(scale), out)
    return out
