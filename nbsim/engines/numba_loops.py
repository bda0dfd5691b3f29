"""The Numba versions of the sequential loops behind statistics and 8/16-bit images.

Kept apart from :mod:`nbsim.stats` so that a run on the C engine never imports Numba
(the C twins live in ``csrc/nbsim_aux.c``). Sequential on purpose: the reference sums
pixel by pixel (single-precision products, double sums), which numpy would not.
"""
import math

import numpy as np

from .._jit import njit


@njit
def accumulate_stats(img, roi, mask, has_mask):
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
def deviation(img, roi, avg):
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


@njit
def to_uint16(img, roi, scale, offset, out):
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


@njit
def to_uint8(img, roi, scale, out):
    spixels, fpixels = img.shape
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            t = img[s, f] * scale
            if t > 255.0:
                t = 255.0
            # the reference's (unsigned char) of a double has no lower clamp; on x86-64
            # it truncates to a 32-bit int and keeps the low byte, and a NaN or a value
            # beyond the int range becomes 0x80000000, so 0
            if t > -2147483649.0:
                out[s, f] = np.uint8(int(t) & 0xFF)
            else:
                out[s, f] = 0




def noise_loop(image, xmin, xmax, ymin, ymax, adc_offset, idum, state, out):
    from ..noise import _noise_loop
    return _noise_loop(image, xmin, xmax, ymin, ymax, adc_offset, idum, state, out)
