"""Poisson noise image, bit-exact with the reference.

The reference turns its float image into an SMV noise image by drawing one
Poisson deviate per pixel from the shared generator of :mod:`nbsim.rng`, in
slow-major pixel order, skipping pixels outside the region of interest (they stay
0 and draw nothing).  The deviates here repeat its Numerical-Recipes style
algorithms with the same mixture of single and double precision: every value the
reference keeps in a C ``float`` is rounded to ``np.float32`` at the same point,
and every libm call gets a float64 argument as the C promotion rules dictate.

The Poisson and Gaussian deviates have static variables in the reference (last
mean and its derived constants; the spare Box-Muller deviate).  They live in the
:class:`nbsim.rng.RandomState` passed to every call, so a fresh state must be used
per run and shared by all the run's draws.
"""
import math

import numpy as np

from . import rng as _rng
from ._jit import njit
from .rng import POIS_G, POIS_LASTMEAN, POIS_LOGMEAN, POIS_SQ, new_seed, new_state  # noqa: F401

# the generator itself is plain Python in nbsim.rng; compiled here for the pixel loop
ran1 = njit(_rng.ran1)

# Above this mean the Poisson deviate is taken as a Gaussian one.
GAUSSIAN_ABOVE = 1.0e6
# Below this mean: multiply uniforms; otherwise: Lorentzian rejection.
DIRECT_BELOW = 12.0
# Lanczos series for log-gamma (Numerical Recipes' six-term version).
_LANCZOS = (76.18009172947146, -86.50532032941677, 24.01409824083091,
            -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5)
_LANCZOS_C0 = 1.000000000190015
_SQRT_2PI = 2.5066282746310005


@njit
def gammln(xx):
    """log(Gamma(xx)) for float ``xx`` > 0, computed in double and returned as float32."""
    x = np.float64(np.float32(xx))
    shifted = x + 5.5
    shifted = shifted - (x + 0.5) * math.log(shifted)
    series = _LANCZOS_C0
    y = x
    for c in _LANCZOS:
        y = y + 1.0
        series = series + c / y
    return np.float32(-shifted + math.log(_SQRT_2PI * series / x))


@njit
def gaussdev(idum, state):
    """A unit-variance normal deviate (polar Box-Muller) as ``np.float32``.

    Deviates come in pairs: the first call draws two and keeps one in ``state``
    for the next call.
    """
    if state.gauss_iset[0] != 0:
        state.gauss_iset[0] = 0
        return state.gauss_gset[0]
    while True:
        v1 = np.float32(2.0 * np.float64(ran1(idum, state)) - 1.0)
        v2 = np.float32(2.0 * np.float64(ran1(idum, state)) - 1.0)
        rsq = np.float32(np.float32(v1 * v1) + np.float32(v2 * v2))
        if not (rsq >= 1.0 or rsq == 0.0):
            break
    r = np.float64(rsq)
    fac = np.float32(math.sqrt(-2.0 * math.log(r) / r))
    state.gauss_gset[0] = np.float32(v1 * fac)
    state.gauss_iset[0] = 1
    return np.float32(v2 * fac)


@njit
def poidev(xm, idum, state):
    """A Poisson deviate of mean ``xm`` (a C float), as ``np.float32``.

    Three regimes, as in the reference: mean > 1e6 uses ``xm + sqrt(xm) * normal``
    (not rounded to an integer); mean < 12 multiplies uniforms until the product
    drops below ``exp(-xm)``; otherwise Lorentzian rejection sampling.  The
    constants derived from the mean are cached in ``state`` and recomputed only
    when the mean changes from the previous call.
    """
    xm = np.float32(xm)
    if xm > GAUSSIAN_ABOVE:
        xd = np.float64(xm)
        return np.float32(xd + math.sqrt(xd) * np.float64(gaussdev(idum, state)))
    ps = state.poisson
    if xm < DIRECT_BELOW:
        if xm != ps[POIS_LASTMEAN]:
            ps[POIS_LASTMEAN] = xm
            ps[POIS_G] = np.float32(math.exp(-np.float64(xm)))
        g = ps[POIS_G]
        em = np.float32(-1.0)
        t = np.float32(1.0)
        while True:
            em = np.float32(em + np.float32(1.0))
            t = np.float32(t * ran1(idum, state))
            if not (t > g):
                break
        return em
    if xm != ps[POIS_LASTMEAN]:
        ps[POIS_LASTMEAN] = xm
        ps[POIS_SQ] = np.float32(math.sqrt(2.0 * np.float64(xm)))
        ps[POIS_LOGMEAN] = np.float32(math.log(np.float64(xm)))
        ps[POIS_G] = np.float32(
            np.float32(xm * ps[POIS_LOGMEAN])
            - gammln(np.float32(np.float64(xm) + 1.0)))
    sq = ps[POIS_SQ]
    alxm = ps[POIS_LOGMEAN]
    g = ps[POIS_G]
    while True:
        while True:
            y = np.float32(math.tan(math.pi * np.float64(ran1(idum, state))))
            em = np.float32(np.float32(sq * y) + xm)
            if not (em < 0.0):
                break
        em = np.float32(np.floor(np.float64(em)))
        lg = gammln(np.float32(np.float64(em) + 1.0))
        expo = np.float32(np.float32(np.float32(em * alxm) - lg) - g)
        t = np.float32(0.9 * (1.0 + np.float64(np.float32(y * y)))
                       * math.exp(np.float64(expo)))
        if not (ran1(idum, state) > t):
            break
    return em


@njit
def _to_ushort(value):
    # C's (unsigned short) of a double as x86-64 gcc does it: truncate to a 32-bit
    # int (out of range or NaN gives INT_MIN), keep the low 16 bits.
    if not (value > -2147483649.0 and value < 2147483648.0):
        return np.uint16(0)
    return np.uint16(np.int64(value) & 0xFFFF)


@njit
def _noise_loop(image, xmin, xmax, ymin, ymax, adc_offset, idum, state, out):
    spixels, fpixels = image.shape
    photons = 0.0
    overloads = 0
    for s in range(spixels):
        for f in range(fpixels):
            if f < xmin or f > xmax or s < ymin or s > ymax:
                continue
            value = np.float64(poidev(image[s, f], idum, state))
            photons += value
            value += adc_offset
            if value > 65535.0:
                value = 65535.0
                overloads += 1
            out[s, f] = _to_ushort(value)
    return photons, overloads


def noise_image(float_image, roi=None, adc_offset=40.0, idum=None, state=None):
    """The reference's noise image from a float image.

    Parameters
    ----------
    float_image : array (spixels, fpixels), float32 (other dtypes are rounded to
        float32, which is what the reference's ``float`` image holds).
    roi : ``(xmin, xmax, ymin, ymax)`` inclusive pixel bounds, x fast and y slow,
        or None for the whole image.  Pixels with ``f < xmin or f > xmax or
        s < ymin or s > ymax`` are left 0 and draw no random numbers.
    adc_offset : added to each deviate before clipping (double).
    idum : the int64[1] seed array (:func:`nbsim.rng.new_seed`); for ``-seed N``
        the reference uses ``-N``.  Required.
    state : the run's :class:`nbsim.rng.RandomState`, already advanced by any
        misset/mosaic draws (a positive seed continues from its table).

    Returns
    -------
    (image, photons, overloads): uint16 array of the same shape; the sum of the
    deviates (before the offset, a float, printed by the reference with
    ``%.0f``); the number of pixels clipped at 65535.
    """
    if idum is None:
        raise ValueError("noise_image needs the seed array idum")
    if state is None:
        state = new_state()
    img = np.ascontiguousarray(float_image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError("float_image must be 2-D (spixels, fpixels)")
    if roi is None:
        roi = (0, img.shape[1], 0, img.shape[0])
    xmin, xmax, ymin, ymax = (int(v) for v in roi)
    out = np.zeros(img.shape, dtype=np.uint16)
    photons, overloads = _noise_loop(img, xmin, xmax, ymin, ymax,
                                     float(adc_offset), idum, state, out)
    return out, float(photons), int(overloads)


__all__ = ["noise_image", "poidev", "gaussdev", "gammln", "new_seed", "new_state",
           "GAUSSIAN_ABOVE", "DIRECT_BELOW"]
