"""The Numba engine: nanoBragg's pixel loop, one slow row per parallel task.

Loop order and floating-point operation order are the reference's:
pixel → sensor layer → sub-pixel (slow, fast) → source → φ step → mosaic domain.
Each pixel is computed from the Plan alone, so the image does not depend on how
many threads run. The two places where the reference carries state from one pixel
to the next are resolved before the loop, in the reference's sequential order:

* ``first_pixel``: with -c_parity, the one pixel whose first φ loop sees the
  unrotated cell (the reference's very first loop); every other loop sees the
  carry-over table.
* ``trig_pixel``/``trig_ord``: the evaluation at which the reference's tricubic
  interpolation first ran out of range and switched itself off for the rest of
  the run (found by a probe pass of this same kernel).

Parameters travel as packed arrays (see ``nbsim.engines.params``) so that the Numba
and C engines share one flat signature.
"""
import math

import numpy as np

from .._jit import njit, prange
from . import params as P


@njit(inline="always")
def _c_int(x):
    """C's (int) of a double as the reference's x86-64 build does it: INT_MIN for NaN
    and for anything outside the int range (the spot shapes then use h - INT_MIN)."""
    if x > -2147483649.0 and x < 2147483648.0:
        return int(x)
    return -2147483648


@njit(inline="always")
def _unit(x, y, z):
    """(x, y, z) divided by its length; the zero vector stays zero."""
    mag = math.sqrt(x * x + y * y + z * z)
    if mag != 0.0:
        return x / mag, y / mag, z / mag
    return 0.0, 0.0, 0.0


@njit
def _polar_frames(sources, ax0, ax1, ax2):
    """Per source: the unit incident direction i, then b = unit(axis x i) and
    e = unit(i x b), the frame of the Kahn polarization factor.

    They depend on the source alone; the reference rebuilds them for every pixel.
    Built once here with the same operations on the same values, they have the
    same bits (both engines build them this way)."""
    n = sources.shape[0]
    frames = np.empty((max(n, 1), 9))
    for source in range(n):
        ix = -sources[source, 0]
        iy = -sources[source, 1]
        iz = -sources[source, 2]
        mag = math.sqrt(ix * ix + iy * iy + iz * iz)
        if mag != 0.0:   # a vector too small to measure is left as it is
            ix = ix / mag
            iy = iy / mag
            iz = iz / mag
        bx, by, bz = _unit(ax1 * iz - ax2 * iy, ax2 * ix - ax0 * iz, ax0 * iy - ax1 * ix)
        ex, ey, ez = _unit(iy * bz - iz * by, iz * bx - ix * bz, ix * by - iy * bx)
        frames[source, 0] = ix
        frames[source, 1] = iy
        frames[source, 2] = iz
        frames[source, 3] = bx
        frames[source, 4] = by
        frames[source, 5] = bz
        frames[source, 6] = ex
        frames[source, 7] = ey
        frames[source, 8] = ez
    return frames


@njit(inline="always")
def _rotate_about(vx, vy, vz, ax, ay, az, phi):
    """Rotate (vx, vy, vz) by phi about the unit axis (ax, ay, az), Rodrigues' form in
    the same operation order as nbsim.vec.rotate_axis."""
    sp = math.sin(phi)
    cp = math.cos(phi)
    dd = (ax * vx + ay * vy + az * vz) * (1.0 - cp)
    return (ax * dd + vx * cp + (-az * vy + ay * vz) * sp,
            ay * dd + vy * cp + (+az * vx - ax * vz) * sp,
            az * dd + vz * cp + (-ay * vx + ax * vy) * sp)


@njit(inline="always")
def _per_term(I, os_thick, capture_fraction, os_polar, polar, os_omega, omega_pixel):
    """The running sum after a term, under -oversample_thick/_polar/_omega: like the
    reference, each flag multiplies the whole sum so far by its factor."""
    if os_thick != 0:
        I *= capture_fraction
    if os_polar != 0:
        I *= polar
    if os_omega != 0:
        I *= omega_pixel
    return I


@njit(inline="always")
def _sincg(x, n):
    if x == 0.0:
        return n
    return math.sin(x * n) / math.sin(x)


@njit(inline="always")
def _sinc3(x):
    if x == 0.0:
        return 1.0
    return 3.0 * (math.sin(x) / x - math.cos(x)) / (x * x)


@njit(inline="always")
def _polint(xa0, xa1, xa2, xa3, y0, y1, y2, y3, x):
    x0 = (x - xa1) * (x - xa2) * (x - xa3) * y0 / ((xa0 - xa1) * (xa0 - xa2) * (xa0 - xa3))
    x1 = (x - xa0) * (x - xa2) * (x - xa3) * y1 / ((xa1 - xa0) * (xa1 - xa2) * (xa1 - xa3))
    x2 = (x - xa0) * (x - xa1) * (x - xa3) * y2 / ((xa2 - xa0) * (xa2 - xa1) * (xa2 - xa3))
    x3 = (x - xa0) * (x - xa1) * (x - xa2) * y3 / ((xa3 - xa0) * (xa3 - xa1) * (xa3 - xa2))
    return x0 + x1 + x2 + x3


@njit
def _tricubic(Fhkl, h_min, k_min, l_min, h, k, l):
    """Lagrange interpolation over the 4x4x4 neighbourhood (l, then k, then h)."""
    hf = math.floor(h)
    kf = math.floor(k)
    lf = math.floor(l)
    h0 = int(hf)
    k0 = int(kf)
    l0 = int(lf)
    ha0, ha1, ha2, ha3 = float(h0 - 1), float(h0), float(h0 + 1), float(h0 + 2)
    ka0, ka1, ka2, ka3 = float(k0 - 1), float(k0), float(k0 + 1), float(k0 + 2)
    la0, la1, la2, la3 = float(l0 - 1), float(l0), float(l0 + 1), float(l0 + 2)
    yh = np.empty(4)
    yk = np.empty(4)
    for i1 in range(4):
        hi = h0 - 1 + i1 - h_min
        for i2 in range(4):
            ki = k0 - 1 + i2 - k_min
            li = l0 - 1 - l_min
            yk[i2] = _polint(la0, la1, la2, la3, Fhkl[hi, ki, li], Fhkl[hi, ki, li + 1],
                             Fhkl[hi, ki, li + 2], Fhkl[hi, ki, li + 3], l)
        yh[i1] = _polint(ka0, ka1, ka2, ka3, yk[0], yk[1], yk[2], yk[3], k)
    return _polint(ha0, ha1, ha2, ha3, yh[0], yh[1], yh[2], yh[3], h)


# ---------------------------------------------------------------------------
# -fast: the spot shapes and the structure-factor interpolation from short
# polynomials. This section *defines* -fast's arithmetic (it lives in this file
# because Numba's cache notices changes to this file only). The C engine
# (csrc/nbsim_fast.c and its SIMD flavours in csrc/nbsim_fast_simd.h) performs the
# same IEEE operations in the same order, so both engines give the same bits at any
# thread count and vector width.
# Hence the rules: no fastmath, no fused multiply-add, every expression grouped as
# written, constants written the same way in both places (csrc/fast_coeffs.py
# derives the fitted polynomial coefficients), and libm only where both engines call
# the very same libm function on the very same argument.
#
# What -fast changes, per inner evaluation (everything else is parity code):
#
# * square crystals: the lattice factor sin(N pi h)/sin(pi h) of each axis comes from
#   the distance d of h to the nearest integer. For N <= _NCHEB it is the Chebyshev
#   polynomial U_{N-1}(cos(pi d)) (a recurrence, no division); for larger N the ratio
#   sin(pi N d)/sin(pi d) with N d reduced again. Both are equal to the exact factor
#   up to its sign, which the square removes.
# * round crystals: 3 (sin x/x - cos x)/x**2 from a series below x = 1 (where the
#   exact formula cancels) and from sine and cosine polynomials after a three-part
#   reduction by pi/2 above it; libm for x >= 1e5.
# * Gaussian crystals: exp from 2**k times a polynomial; libm for arguments outside
#   [-707, 707], so that the result underflows to 0 exactly where libm's does (the
#   kernels skip terms whose F_latt is 0).
# * top-hat crystals: the exact arithmetic (a comparison), evaluated in vectors.
# * tricubic interpolation: the Lagrange weights of each axis once, then 21 weighted
#   sums, instead of 21 four-point interpolations with four divisions each.
# * sums: a sub-pixel's terms with one structure factor and no per-term factor are
#   added in a fixed order (eight interleaved partial sums), not one by one.

# 1.5 * 2**52: (x + _MAGIC) - _MAGIC is x rounded to the nearest integer (ties to
# even) for |x| < 2**51, with pure additions that vectorise on any x86-64.
_MAGIC = 6755399441055744.0

# axes with N up to this use the Chebyshev recurrence (its cost grows with N; the
# two-sine ratio costs about as much as N = 13 and needs a division)
_NCHEB = 16.0

# 2 cos(pi d) = 2 + t*_TWO_COSPI(t), t = d*d, |d| <= 1/2: near-minimax, error < 6e-12
# (1.8e-13 for |d| < 0.1, where the lattice factor peaks)
_TWO_COSPI = (-9.86960440106517, 8.117424245865891, -2.6705252123106424, 0.47065569870377966,
             -0.05157074957681335, 0.0037051805089499557)
# sin r = r + r*t*_SIN_R(t), cos r = 1 + t*_COS_R(t), t = r*r, |r| <= pi/4
_SIN_R = (-0.16666666666666666, 0.008333333333330948, -0.00019841269836758538,
         2.755731610253375e-06, -2.5051131841108444e-08, 1.5918129014234338e-10)
_COS_R = (-0.49999999999999967, 0.04166666666663093, -0.0013888888882127898,
         2.4801582623323947e-05, -2.7555855506093313e-07, 2.066550444965181e-09)
# exp r = 1 + r + r*r*_EXP_R(r), |r| <= ln(2)/2
_EXP_R = (0.5000000000000001, 0.16666666666666669, 0.041666666666624164,
         0.008333333333330065, 0.001388888891719689, 0.00019841269863040675,
         2.480152132210459e-05, 2.7557268480106926e-06, 2.762007600563138e-07,
         2.5100375929185925e-08)
# pi/2 in three parts (the first two of 33 bits: n*P1 and n*P2 are exact for n < 2**20)
_PIO2_1 = 1.5707963267341256
_PIO2_2 = 6.077100506303966e-11
_PIO2_3 = 2.0222662487959506e-21
_TWO_OVER_PI = 0.6366197723675814
# ln 2 in two parts (the first of 32 bits), and 1/ln 2
_LN2_HI = 0.6931471806019545
_LN2_LO = -4.2009150726810846e-11
_LOG2E = 1.4426950408889634
_SINC3_SERIES_BELOW = 1.0
_SINC3_LIBM_ABOVE = 1.0e5
_EXP_POLY_MIN = -707.0
_EXP_POLY_MAX = 707.0
_EXP_ZERO_BELOW = -746.0     # libm's exp is 0 below about -745.13
_ROUND_SCALE = 0.723601254558268
# the shape parameters travel in one array (see shape_params)
_F_FP_NA, _F_FP_NB, _F_FP_NC, _F_FP_FUDGE, _F_FP_AS = 0, 1, 2, 3, 4
_F_N_FP = 13
_SUM_LANES = 8


@njit(inline="always")
def _round_int(x):
    return (x + _MAGIC) - _MAGIC


@njit(inline="always")
def _ceil_int(y):
    """ceil(y) for |y| < 2**51 (exact, as the exact path's ceil)."""
    r = (y + _MAGIC) - _MAGIC
    return r + (1.0 if r < y else 0.0)


@njit(inline="always")
def _nearest_c(x):
    """The exact path's nearest whole index _c_int(ceil(x - 0.5)), as a float: INT_MIN
    for NaN and for indices beyond the int range (where _ceil_int would be inexact)."""
    y = x - 0.5
    if y > -2147483649.0 and y <= 2147483647.0:
        return _ceil_int(y)
    return -2147483648.0


@njit(inline="always")
def _two_cospi(d):
    """2 cos(pi d) for |d| <= 1/2; the polynomial in Estrin's form (short dependency
    chains, which the vector code needs)."""
    t = d * d
    t2 = t * t
    t4 = t2 * t2
    q0 = _TWO_COSPI[0] + _TWO_COSPI[1] * t
    q1 = _TWO_COSPI[2] + _TWO_COSPI[3] * t
    q2 = _TWO_COSPI[4] + _TWO_COSPI[5] * t
    return 2.0 + t * ((q0 + q1 * t2) + q2 * t4)


@njit(inline="always")
def _cheb_u(t, n):
    """U_{n-1}(c) for n > 1 from t = 2c, by the three-term recurrence (one step per
    i = 2, 3, ... below n)."""
    u0 = 1.0
    u1 = t
    i = 2.0
    while i < n:
        u2 = t * u1 - u0
        u0 = u1
        u1 = u2
        i += 1.0
    return u1


@njit(inline="always")
def _sinpi_small(u):
    """sin(pi*u) for |u| <= 1/2 by its Taylor series to x**15 (error below 1e-11)."""
    x = math.pi * u
    x2 = x * x
    p = -1.0 / 1307674368000.0
    p = p * x2 + 1.0 / 6227020800.0
    p = p * x2 - 1.0 / 39916800.0
    p = p * x2 + 1.0 / 362880.0
    p = p * x2 - 1.0 / 5040.0
    p = p * x2 + 1.0 / 120.0
    p = p * x2 - 1.0 / 6.0
    return x + x * x2 * p


@njit(inline="always")
def _axis_parts(x, n):
    """(numerator, denominator) of one axis' lattice factor sin(pi n x)/sin(pi x), up to
    a sign common to all axes' product squared. An axis with n <= 1 gives (1, 1)."""
    if n <= 1.0:
        return 1.0, 1.0
    d = x - _round_int(x)
    if n <= _NCHEB:
        # sin(n t)/sin(t) = U_{n-1}(cos t)
        return _cheb_u(_two_cospi(d), n), 1.0
    # sin(pi n x)/sin(pi x) = +-sin(pi n d)/sin(pi d); n d reduced again
    v = n * d
    v = v - _round_int(v)
    sd = _sinpi_small(d)
    sv = _sinpi_small(v)
    if sd == 0.0:
        return n, 1.0
    return sv, sd


@njit(inline="always")
def _square_latt(h, k, l, Na, Nb, Nc):
    na, da = _axis_parts(h, Na)
    nb, db = _axis_parts(k, Nb)
    nc, dc = _axis_parts(l, Nc)
    return (na * nb * nc) / (da * db * dc)


@njit(inline="always")
def _sinc3_fast(x):
    """3 (sin x/x - cos x)/x**2 for x >= 0 (1 at 0)."""
    if x < _SINC3_SERIES_BELOW:
        # 3 sum_k>=1 (-1)**(k+1) 2k x**(2k-2)/(2k+1)!, to k = 9 (error < 2e-18)
        t = x * x
        p = 1.0 / 2252687044608000.0
        p = p * t - 1.0 / 7410154752000.0
        p = p * t + 1.0 / 31135104000.0
        p = p * t - 1.0 / 172972800.0
        p = p * t + 1.0 / 1330560.0
        p = p * t - 1.0 / 15120.0
        p = p * t + 1.0 / 280.0
        p = p * t - 1.0 / 10.0
        return 1.0 + t * p
    if not x < _SINC3_LIBM_ABOVE:
        return _sinc3(x)
    tt = x * _TWO_OVER_PI + _MAGIC
    n = tt - _MAGIC
    r = ((x - n * _PIO2_1) - n * _PIO2_2) - n * _PIO2_3
    t = r * r
    ps = _SIN_R[5]
    ps = ps * t + _SIN_R[4]
    ps = ps * t + _SIN_R[3]
    ps = ps * t + _SIN_R[2]
    ps = ps * t + _SIN_R[1]
    ps = ps * t + _SIN_R[0]
    pc = _COS_R[5]
    pc = pc * t + _COS_R[4]
    pc = pc * t + _COS_R[3]
    pc = pc * t + _COS_R[2]
    pc = pc * t + _COS_R[1]
    pc = pc * t + _COS_R[0]
    s = r + r * t * ps
    c = 1.0 + t * pc
    q = int(n) & 3
    if q & 1:
        sx = c
        cx = s
    else:
        sx = s
        cx = c
    if q & 2:
        sx = -sx
    if (q + 1) & 2:
        cx = -cx
    return 3.0 * (sx / x - cx) / (x * x)


@njit(inline="always")
def _exp_fast(a):
    if not (a >= _EXP_POLY_MIN and a <= _EXP_POLY_MAX):
        if a < _EXP_ZERO_BELOW:
            return 0.0
        return math.exp(a)
    tt = a * _LOG2E + _MAGIC
    kd = tt - _MAGIC
    r = (a - kd * _LN2_HI) - kd * _LN2_LO
    # the polynomial in Estrin's form (short dependency chains)
    r2 = r * r
    r4 = r2 * r2
    q0 = _EXP_R[0] + _EXP_R[1] * r
    q1 = _EXP_R[2] + _EXP_R[3] * r
    q2 = _EXP_R[4] + _EXP_R[5] * r
    q3 = _EXP_R[6] + _EXP_R[7] * r
    q4 = _EXP_R[8] + _EXP_R[9] * r
    p = ((q0 + q1 * r2) + (q2 + q3 * r2) * r4) + q4 * (r4 * r4)
    p = 1.0 + r + r * r * p
    return math.ldexp(p, int(kd))     # exact: the result is a normal number


@njit(inline="always")
def _fast_latt(shape, h, k, l, fp):
    """F_latt of one evaluation under -fast (the square crystal's up to its sign)."""
    Na = fp[_F_FP_NA]
    Nb = fp[_F_FP_NB]
    Nc = fp[_F_FP_NC]
    if shape == P.SHAPE_SQUARE:
        return _square_latt(h, k, l, Na, Nb, Nc)
    # the exact path's h - h0 with h0 = _c_int(ceil(h - 0.5))
    dh = h - _nearest_c(h)
    dk = k - _nearest_c(k)
    dl = l - _nearest_c(l)
    fudge = fp[_F_FP_FUDGE]
    if shape == P.SHAPE_ROUND:
        hrad_sqr = dh * dh * Na * Na + dk * dk * Nb * Nb + dl * dl * Nc * Nc
        return Na * Nb * Nc * _ROUND_SCALE * _sinc3_fast(math.pi * math.sqrt(hrad_sqr * fudge))
    dhx = dh * fp[_F_FP_AS] + dk * fp[_F_FP_AS + 3] + dl * fp[_F_FP_AS + 6]
    dhy = dh * fp[_F_FP_AS + 1] + dk * fp[_F_FP_AS + 4] + dl * fp[_F_FP_AS + 7]
    dhz = dh * fp[_F_FP_AS + 2] + dk * fp[_F_FP_AS + 5] + dl * fp[_F_FP_AS + 8]
    rad_star_sqr = (dhx * dhx + dhy * dhy + dhz * dhz) * Na * Na * Nb * Nb * Nc * Nc
    if shape == P.SHAPE_GAUSS:
        return Na * Nb * Nc * _exp_fast(-(rad_star_sqr / 0.63 * fudge))
    inside = 0.0
    if rad_star_sqr * fudge < 0.3969:
        inside = 1.0
    return Na * Nb * Nc * inside


# rows of the -fast batch buffer: h, k, l, F_latt, then work space
_FAST_ROWS = 9


@njit
def _fast_eval(shape, fp, tT, sc, n, buf, want_sum):
    """-fast for n scattering vectors sc[n, 3] in every (phi, domain) entry of the
    transposed lattice table tT[9, M]: Miller indices to buf[0:3, :n*M] (source-major,
    the exact loop's order), F_latt to buf[3, :n*M] (buf has _FAST_ROWS rows). Returns
    the sum of F_latt**2 in the fixed order of ``_sum_squares`` when want_sum, else 0.

    The square crystal's factors of a batch of 16 entries or more are built axis by
    axis over the whole batch (the same operations per entry as _square_latt), which
    lets the loops vectorise."""
    M = tT.shape[1]
    for s in range(n):
        sx = sc[s, 0]
        sy = sc[s, 1]
        sz = sc[s, 2]
        base = s * M
        for m in range(M):
            buf[0, base + m] = tT[0, m] * sx + tT[1, m] * sy + tT[2, m] * sz
            buf[1, base + m] = tT[3, m] * sx + tT[4, m] * sy + tT[5, m] * sz
            buf[2, base + m] = tT[6, m] * sx + tT[7, m] * sy + tT[8, m] * sz
    total = n * M
    if shape == P.SHAPE_SQUARE and total >= 16:
        num = buf[4]
        den = buf[5]
        t = buf[6]
        u0 = buf[7]
        u1 = buf[8]
        for j in range(total):
            num[j] = 1.0
            den[j] = 1.0
        for axis in range(3):
            N = fp[_F_FP_NA + axis]
            x = buf[axis]
            if N <= 1.0:
                continue          # a factor (1, 1): the products stay as they are
            if N <= _NCHEB:
                for j in range(total):
                    t[j] = _two_cospi(x[j] - _round_int(x[j]))
                    u0[j] = 1.0
                    u1[j] = t[j]
                i = 2.0
                while i < N:
                    for j in range(total):
                        u2 = t[j] * u1[j] - u0[j]
                        u0[j] = u1[j]
                        u1[j] = u2
                    i += 1.0
                for j in range(total):
                    num[j] = num[j] * u1[j]
            else:
                for j in range(total):
                    a, b = _axis_parts(x[j], N)
                    num[j] = num[j] * a
                    den[j] = den[j] * b
        for j in range(total):
            buf[3, j] = num[j] / den[j]
    else:
        for j in range(total):
            buf[3, j] = _fast_latt(shape, buf[0, j], buf[1, j], buf[2, j], fp)
    if want_sum:
        return _sum_squares(buf[3], total)
    return 0.0


@njit
def _sum_squares(v, n):
    """sum of v[:n]**2: entry j goes to partial sum j % 8, in order; then pairs."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    j = 0
    while j + 8 <= n:
        s0 += v[j] * v[j]
        s1 += v[j + 1] * v[j + 1]
        s2 += v[j + 2] * v[j + 2]
        s3 += v[j + 3] * v[j + 3]
        s4 += v[j + 4] * v[j + 4]
        s5 += v[j + 5] * v[j + 5]
        s6 += v[j + 6] * v[j + 6]
        s7 += v[j + 7] * v[j + 7]
        j += 8
    r = n - j
    if r > 0:
        s0 += v[j] * v[j]
    if r > 1:
        s1 += v[j + 1] * v[j + 1]
    if r > 2:
        s2 += v[j + 2] * v[j + 2]
    if r > 3:
        s3 += v[j + 3] * v[j + 3]
    if r > 4:
        s4 += v[j + 4] * v[j + 4]
    if r > 5:
        s5 += v[j + 5] * v[j + 5]
    if r > 6:
        s6 += v[j + 6] * v[j + 6]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(inline="always")
def _lagrange4(t):
    """Weights of the four-point Lagrange polynomial through nodes -1, 0, 1, 2 at t."""
    a = t + 1.0
    c = t - 1.0
    d = t - 2.0
    return (t * c * d * (-1.0 / 6.0), a * c * d * 0.5, a * t * d * (-0.5),
            a * t * c * (1.0 / 6.0))


@njit
def _tricubic_fast(Fhkl, h_min, k_min, l_min, h, k, l):
    """The exact path's tricubic interpolation (same cube, same order: l, k, h) from
    precomputed weights."""
    hf = float(math.floor(h))
    kf = float(math.floor(k))
    lf = float(math.floor(l))
    wh0, wh1, wh2, wh3 = _lagrange4(h - hf)
    wk0, wk1, wk2, wk3 = _lagrange4(k - kf)
    wl0, wl1, wl2, wl3 = _lagrange4(l - lf)
    h0 = int(hf)
    k0 = int(kf)
    l0 = int(lf)
    li = l0 - 1 - l_min
    y = 0.0
    for i1 in range(4):
        hi = h0 - 1 + i1 - h_min
        yh = 0.0
        for i2 in range(4):
            ki = k0 - 1 + i2 - k_min
            yk = (wl0 * Fhkl[hi, ki, li] + wl1 * Fhkl[hi, ki, li + 1]
                  + wl2 * Fhkl[hi, ki, li + 2] + wl3 * Fhkl[hi, ki, li + 3])
            if i2 == 0:
                yh = wk0 * yk
            elif i2 == 1:
                yh = yh + wk1 * yk
            elif i2 == 2:
                yh = yh + wk2 * yk
            else:
                yh = yh + wk3 * yk
        if i1 == 0:
            y = wh0 * yh
        elif i1 == 1:
            y = y + wh1 * yh
        elif i1 == 2:
            y = y + wh2 * yh
        else:
            y = y + wh3 * yh
    return y

# what _fast_terms leaves for -printout: h, k, l, h0, k0, l0, F_cell, F_latt, a, b, c,
# then whether the row has set the lattice values and F_cell yet (the trace's
# seen_lattice and seen_F); the array lives as long as its row
NF_LAST = 19
_LAST_SEEN_LATTICE = 17
_LAST_SEEN_F = 18


@njit
def _fast_terms(ip, dp, Fhkl, buf, total, tab, I, ordinal, interp_until, capture_fraction,
                polar, omega_pixel, row, fpixel, probe_i, probe_d, last):
    """-fast: the exact loop's per-term steps on the evaluations _fast_eval left in
    buf (indices in rows 0-2, F_latt in row 3, in the exact loop's order): the zero
    skip, the interpolation switch (and its probe), F_cell (from _tricubic_fast), the
    sum and the per-term factors. ``row`` indexes the probe arrays (the row within
    the rendered block). Returns (I, ordinal, probe hit)."""
    probing = ip[P.I_PROBE] == 1
    tracing = ip[P.I_PROBE] == 2
    interpolate = ip[P.I_INTERPOLATE]
    hkls = ip[P.I_HKLS]
    h_min = ip[P.I_H_MIN]
    h_max = ip[P.I_H_MAX]
    k_min = ip[P.I_K_MIN]
    k_max = ip[P.I_K_MAX]
    l_min = ip[P.I_L_MIN]
    l_max = ip[P.I_L_MAX]
    h_range = ip[P.I_H_RANGE]
    k_range = ip[P.I_K_RANGE]
    l_range = ip[P.I_L_RANGE]
    os_thick = ip[P.I_OS_THICK]
    os_polar = ip[P.I_OS_POLAR]
    os_omega = ip[P.I_OS_OMEGA]
    water_size = dp[P.D_WATER_SIZE]
    default_F = dp[P.D_DEFAULT_F]
    M = tab.shape[0]
    for j in range(total):
        h = buf[0, j]
        k = buf[1, j]
        l = buf[2, j]
        F_latt = buf[3, j]
        h0 = int(_nearest_c(h))
        k0 = int(_nearest_c(k))
        l0 = int(_nearest_c(l))
        if tracing:
            last[_LAST_SEEN_LATTICE] = 1.0
            last[0] = h
            last[1] = k
            last[2] = l
            last[3] = h0
            last[4] = k0
            last[5] = l0
            last[7] = F_latt
            for i in range(9):
                last[8 + i] = tab[j % M, i]
        if F_latt == 0.0 and water_size == 0.0:
            continue
        do_interp = False
        if interpolate != 0:
            do_interp = interp_until < 0 or ordinal < interp_until
            if do_interp and probing:
                if ((h - h_min + 3) > h_range or (h - 2 < h_min)
                        or (k - k_min + 3) > k_range or (k - 2 < k_min)
                        or (l - l_min + 3) > l_range or (l - 2 < l_min)):
                    probe_i[row, 0] = fpixel
                    probe_i[row, 1] = ordinal
                    probe_d[row, 0] = h
                    probe_d[row, 1] = k
                    probe_d[row, 2] = l
                    probe_d[row, 3] = h0
                    probe_d[row, 4] = k0
                    probe_d[row, 5] = l0
                    return I, ordinal, True
            ordinal += 1
        if probing:
            continue
        if do_interp:
            F_cell = _tricubic_fast(Fhkl, h_min, k_min, l_min, h, k, l)
        elif (hkls != 0 and h0 <= h_max and h0 >= h_min and k0 <= k_max
                and k0 >= k_min and l0 <= l_max and l0 >= l_min):
            F_cell = Fhkl[h0 - h_min, k0 - k_min, l0 - l_min]
        else:
            F_cell = default_F
        if tracing:
            last[6] = F_cell
            last[_LAST_SEEN_F] = 1.0
        I += F_cell * F_cell * F_latt * F_latt
        I = _per_term(I, os_thick, capture_fraction, os_polar, polar, os_omega, omega_pixel)
    return I, ordinal, False


@njit
def _render_row(spixel, ip, dp, vecs, sources, frames, lat, lat_first, Fhkl, mask, out,
                omega_rows, probe_i, probe_d):
    fpixels = ip[P.I_FPIXELS]
    roi_xmin = ip[P.I_ROI_XMIN]
    roi_xmax = ip[P.I_ROI_XMAX]
    roi_ymin = ip[P.I_ROI_YMIN]
    roi_ymax = ip[P.I_ROI_YMAX]
    oversample = ip[P.I_OVERSAMPLE]
    thicksteps = ip[P.I_THICKSTEPS]
    has_mask = ip[P.I_HAS_MASK]
    curved = ip[P.I_CURVED]
    point_pixel = ip[P.I_POINT_PIXEL]
    os_thick = ip[P.I_OS_THICK]
    os_polar = ip[P.I_OS_POLAR]
    os_omega = ip[P.I_OS_OMEGA]
    nopolar = ip[P.I_NOPOLAR]
    shape = ip[P.I_SHAPE]
    interpolate = ip[P.I_INTERPOLATE]
    hkls = ip[P.I_HKLS]
    h_min = ip[P.I_H_MIN]
    h_max = ip[P.I_H_MAX]
    k_min = ip[P.I_K_MIN]
    k_max = ip[P.I_K_MAX]
    l_min = ip[P.I_L_MIN]
    l_max = ip[P.I_L_MAX]
    h_range = ip[P.I_H_RANGE]
    k_range = ip[P.I_K_RANGE]
    l_range = ip[P.I_L_RANGE]
    first_pixel = ip[P.I_FIRST_PIXEL]
    trig_pixel = ip[P.I_TRIG_PIXEL]
    trig_ord = ip[P.I_TRIG_ORD]
    probe = ip[P.I_PROBE]
    # the per-row outputs hold rows [ROW_START, ROW_STOP) only
    row = spixel - ip[P.I_ROW_START]
    trace_base = row * fpixels
    nsources = sources.shape[0]
    phisteps = lat.shape[0]
    domains = lat.shape[1]
    M = phisteps * domains
    tab_main = lat.reshape(M, 9)
    tab_first = lat_first.reshape(M, 9)
    # PROBE 1: find where interpolation runs out of range; PROBE 2: render and record
    # each pixel's last values for -printout (into probe_d[row * fpixels + fpixel])
    probing = probe == 1
    tracing = probe == 2
    # the nearest whole indices matter for spot shapes, tables and the probe's report
    need_index = (ip[P.I_SHAPE] != P.SHAPE_SQUARE or ip[P.I_HKLS] != 0
                  or ip[P.I_INTERPOLATE] != 0 or tracing)
    # -fast (see _fast_eval): a sub-pixel's sources are evaluated together, unless the
    # polarization factor multiplies each term (it changes from source to source) or
    # the run records per-term values; with one F for every term and no per-term
    # factor, the terms are summed in a fixed order instead of one by one
    fast = ip[P.I_FAST] != 0
    fast_batch = fast and os_polar == 0 and not tracing
    fast_sum = (fast and hkls == 0 and interpolate == 0 and os_thick == 0 and os_polar == 0
                and os_omega == 0 and probe == 0)
    fp = np.zeros(_F_N_FP)
    if fast:
        fp[_F_FP_NA] = dp[P.D_NA]
        fp[_F_FP_NB] = dp[P.D_NB]
        fp[_F_FP_NC] = dp[P.D_NC]
        fp[_F_FP_FUDGE] = dp[P.D_FUDGE]
        for i in range(9):
            fp[_F_FP_AS + i] = vecs[6 + i // 3, i % 3]
    tT_main = np.ascontiguousarray(tab_main.T) if fast else np.empty((9, 1))
    tT_first = np.ascontiguousarray(tab_first.T) if fast else np.empty((9, 1))
    scb = np.empty((max(nsources, 1), 3))
    fbuf = np.empty((_FAST_ROWS, max(nsources * M, 1) if fast else 1))
    last = np.zeros(NF_LAST)

    pixel_size = dp[P.D_PIXEL_SIZE]
    subpixel_size = dp[P.D_SUBPIXEL_SIZE]
    thickstep = dp[P.D_THICKSTEP]
    detector_thick = dp[P.D_THICK]
    mu = dp[P.D_MU]
    distance = dp[P.D_DISTANCE]
    close_distance = dp[P.D_CLOSE_DISTANCE]
    kahn = dp[P.D_POLARIZATION]
    dmin = dp[P.D_DMIN]
    Na = dp[P.D_NA]
    Nb = dp[P.D_NB]
    Nc = dp[P.D_NC]
    fudge = dp[P.D_FUDGE]
    default_F = dp[P.D_DEFAULT_F]
    water_size = dp[P.D_WATER_SIZE]
    I_bg = dp[P.D_I_BG]
    r_e_sqr = dp[P.D_R_E_SQR]
    fluence = dp[P.D_FLUENCE]
    steps = dp[P.D_STEPS]

    f0, f1, f2 = vecs[0, 0], vecs[0, 1], vecs[0, 2]
    s0, s1, s2 = vecs[1, 0], vecs[1, 1], vecs[1, 2]
    o0, o1, o2 = vecs[2, 0], vecs[2, 1], vecs[2, 2]
    p0, p1, p2 = vecs[3, 0], vecs[3, 1], vecs[3, 2]
    bm0, bm1, bm2 = vecs[4, 0], vecs[4, 1], vecs[4, 2]
    ax0, ax1, ax2 = vecs[5, 0], vecs[5, 1], vecs[5, 2]
    as0, as1, as2 = vecs[6, 0], vecs[6, 1], vecs[6, 2]
    bs0, bs1, bs2 = vecs[7, 0], vecs[7, 1], vecs[7, 2]
    cs0, cs1, cs2 = vecs[8, 0], vecs[8, 1], vecs[8, 2]

    omega_row = 0.0
    # values -printout reports; like the reference, they carry over from the previous
    # pixel when a pixel evaluates nothing
    stol = 0.0
    px = py = pz = 0.0
    h = k = l = 0.0
    h0 = k0 = l0 = 0
    F_cell = F_latt = 0.0
    ax = ay = az = bx_ = by_ = bz_ = cx = cy = cz = 0.0
    # whether this row has set them yet (-printout carries older rows' values over)
    seen_lattice = 0.0
    seen_F = 0.0
    for fpixel in range(fpixels):
        if fpixel < roi_xmin or fpixel > roi_xmax or spixel < roi_ymin or spixel > roi_ymax:
            continue
        imgidx = spixel * fpixels + fpixel
        if has_mask != 0:
            if mask[spixel, fpixel] == 0:
                continue
        I = I_bg
        polar = 0.0
        if nopolar != 0:
            polar = 1.0
        omega_pixel = 0.0
        capture_fraction = 0.0
        use_first = imgidx == first_pixel
        ordinal = 0
        if imgidx < trig_pixel:
            interp_until = -1          # interpolate throughout this pixel
        elif imgidx == trig_pixel:
            interp_until = trig_ord    # interpolate up to this evaluation
        else:
            interp_until = 0           # nearest neighbour throughout
        for thick_tic in range(thicksteps):
            Odet = thick_tic * thickstep
            capture_fraction = 0.0
            if detector_thick == 0.0:
                capture_fraction = 1.0
            for subS in range(oversample):
                for subF in range(oversample):
                    Fdet = subpixel_size * (fpixel * oversample + subF) + subpixel_size / 2.0
                    Sdet = subpixel_size * (spixel * oversample + subS) + subpixel_size / 2.0
                    px = Fdet * f0 + Sdet * s0 + Odet * o0 + p0
                    py = Fdet * f1 + Sdet * s1 + Odet * o1 + p1
                    pz = Fdet * f2 + Sdet * s2 + Odet * o2 + p2
                    if curved != 0:
                        # pixel coordinates become angles about the detector axes
                        # (both angles are read before the position is replaced)
                        phi_s = py / distance
                        phi_f = pz / distance
                        nx, ny, nz = _rotate_about(distance * bm0, distance * bm1,
                                                   distance * bm2, s0, s1, s2, phi_s)
                        px, py, pz = _rotate_about(nx, ny, nz, f0, f1, f2, phi_f)
                    airpath = math.sqrt(px * px + py * py + pz * pz)
                    dx = px
                    dy = py
                    dz = pz
                    if airpath != 0.0:
                        dx = px / airpath
                        dy = py / airpath
                        dz = pz / airpath
                    else:
                        dx = 0.0
                        dy = 0.0
                        dz = 0.0
                    if omega_pixel == 0.0 or os_omega != 0:
                        omega_pixel = pixel_size * pixel_size / airpath / airpath * close_distance / airpath
                        if point_pixel != 0:
                            omega_pixel = 1.0 / airpath / airpath
                    omega_row += omega_pixel
                    if capture_fraction == 0.0 or os_thick != 0:
                        parallax = dx * o0 + dy * o1 + dz * o2
                        capture_fraction = (math.exp(-thick_tic * thickstep * mu / parallax)
                                            - math.exp(-(thick_tic + 1) * thickstep * mu / parallax))
                    nbatch = 0
                    for source in range(nsources):
                        ix = -sources[source, 0]
                        iy = -sources[source, 1]
                        iz = -sources[source, 2]
                        lam = sources[source, 3]
                        scx = (dx - ix) / lam
                        scy = (dy - iy) / lam
                        scz = (dz - iz) / lam
                        stol = 0.5 * math.sqrt(scx * scx + scy * scy + scz * scz)
                        if dmin > 0.0 and stol > 0.0:
                            if dmin > 0.5 / stol:
                                continue
                        if polar == 0.0 or os_polar != 0:
                            # Kahn polarization. Like the reference, the diffracted
                            # direction is re-normalised in place first; the incident
                            # one and its frame come from _polar_frames.
                            mag = math.sqrt(dx * dx + dy * dy + dz * dz)
                            if mag != 0.0:
                                dx = dx / mag
                                dy = dy / mag
                                dz = dz / mag
                            cos2theta = (frames[source, 0] * dx + frames[source, 1] * dy
                                         + frames[source, 2] * dz)
                            cos2theta_sqr = cos2theta * cos2theta
                            sin2theta_sqr = 1 - cos2theta_sqr
                            psi = 0.0
                            if kahn != 0.0:
                                e_out = (dx * frames[source, 6] + dy * frames[source, 7]
                                         + dz * frames[source, 8])
                                b_out = (dx * frames[source, 3] + dy * frames[source, 4]
                                         + dz * frames[source, 5])
                                psi = -math.atan2(b_out, e_out)
                            polar = 0.5 * (1.0 + cos2theta_sqr - kahn * math.cos(2 * psi) * sin2theta_sqr)
                        if use_first:
                            tab = tab_first
                        else:
                            tab = tab_main
                        if fast:
                            if fast_batch and not use_first:
                                # with the sub-pixel's other sources, after this loop
                                scb[nbatch, 0] = scx
                                scb[nbatch, 1] = scy
                                scb[nbatch, 2] = scz
                                nbatch += 1
                                continue
                            # this source alone (nbatch is 0 here)
                            scb[0, 0] = scx
                            scb[0, 1] = scy
                            scb[0, 2] = scz
                            sq = _fast_eval(shape, fp, tT_first if use_first else tT_main,
                                               scb, 1, fbuf, fast_sum)
                            if fast_sum:
                                I += default_F * default_F * sq
                            else:
                                I, ordinal, hit = _fast_terms(
                                    ip, dp, Fhkl, fbuf, M, tab, I, ordinal, interp_until,
                                    capture_fraction, polar, omega_pixel, row, fpixel,
                                    probe_i, probe_d, last)
                                if hit:
                                    return 0.0
                                if tracing:
                                    h, k, l = last[0], last[1], last[2]
                                    h0, k0, l0 = int(last[3]), int(last[4]), int(last[5])
                                    F_cell, F_latt = last[6], last[7]
                                    ax, ay, az = last[8], last[9], last[10]
                                    bx_, by_, bz_ = last[11], last[12], last[13]
                                    cx, cy, cz = last[14], last[15], last[16]
                                    seen_lattice = last[_LAST_SEEN_LATTICE]
                                    seen_F = last[_LAST_SEEN_F]
                            use_first = False
                            continue
                        for m in range(M):
                            ax = tab[m, 0]
                            seen_lattice = 1.0
                            ay = tab[m, 1]
                            az = tab[m, 2]
                            bx_ = tab[m, 3]
                            by_ = tab[m, 4]
                            bz_ = tab[m, 5]
                            cx = tab[m, 6]
                            cy = tab[m, 7]
                            cz = tab[m, 8]
                            h = ax * scx + ay * scy + az * scz
                            k = bx_ * scx + by_ * scy + bz_ * scz
                            l = cx * scx + cy * scy + cz * scz
                            h0 = 0
                            k0 = 0
                            l0 = 0
                            if need_index:
                                h0 = _c_int(math.ceil(h - 0.5))
                                k0 = _c_int(math.ceil(k - 0.5))
                                l0 = _c_int(math.ceil(l - 0.5))
                            F_latt = 1.0
                            rad_star_sqr = 0.0
                            if shape == P.SHAPE_SQUARE:
                                if Na > 1:
                                    F_latt *= _sincg(math.pi * h, Na)
                                if Nb > 1:
                                    F_latt *= _sincg(math.pi * k, Nb)
                                if Nc > 1:
                                    F_latt *= _sincg(math.pi * l, Nc)
                            else:
                                # the reference uses the unrotated reciprocal cell here
                                dhx = (h - h0) * as0 + (k - k0) * bs0 + (l - l0) * cs0
                                dhy = (h - h0) * as1 + (k - k0) * bs1 + (l - l0) * cs1
                                dhz = (h - h0) * as2 + (k - k0) * bs2 + (l - l0) * cs2
                                rad_star_sqr = (dhx * dhx + dhy * dhy + dhz * dhz) * Na * Na * Nb * Nb * Nc * Nc
                            if shape == P.SHAPE_ROUND:
                                hrad_sqr = (h - h0) * (h - h0) * Na * Na + (k - k0) * (k - k0) * Nb * Nb + (l - l0) * (l - l0) * Nc * Nc
                                F_latt = Na * Nb * Nc * 0.723601254558268 * _sinc3(math.pi * math.sqrt(hrad_sqr * fudge))
                            if shape == P.SHAPE_GAUSS:
                                F_latt = Na * Nb * Nc * math.exp(-(rad_star_sqr / 0.63 * fudge))
                            if shape == P.SHAPE_TOPHAT:
                                inside = 0.0
                                if rad_star_sqr * fudge < 0.3969:
                                    inside = 1.0
                                F_latt = Na * Nb * Nc * inside
                            if F_latt == 0.0 and water_size == 0.0:
                                continue
                            do_interp = False
                            if interpolate != 0:
                                do_interp = interp_until < 0 or ordinal < interp_until
                                if do_interp and probing:
                                    if ((h - h_min + 3) > h_range or (h - 2 < h_min)
                                            or (k - k_min + 3) > k_range or (k - 2 < k_min)
                                            or (l - l_min + 3) > l_range or (l - 2 < l_min)):
                                        probe_i[row, 0] = fpixel
                                        probe_i[row, 1] = ordinal
                                        probe_d[row, 0] = h
                                        probe_d[row, 1] = k
                                        probe_d[row, 2] = l
                                        probe_d[row, 3] = h0
                                        probe_d[row, 4] = k0
                                        probe_d[row, 5] = l0
                                        return 0.0
                                ordinal += 1
                            if probing:
                                continue
                            if do_interp:
                                F_cell = _tricubic(Fhkl, h_min, k_min, l_min, h, k, l)
                            elif (hkls != 0 and h0 <= h_max and h0 >= h_min and k0 <= k_max
                                    and k0 >= k_min and l0 <= l_max and l0 >= l_min):
                                F_cell = Fhkl[h0 - h_min, k0 - k_min, l0 - l_min]
                            else:
                                F_cell = default_F
                            seen_F = 1.0
                            I += F_cell * F_cell * F_latt * F_latt
                            I = _per_term(I, os_thick, capture_fraction, os_polar, polar,
                                          os_omega, omega_pixel)
                        # after the first complete φ loop the carry-over table applies
                        use_first = False
                    if nbatch > 0:
                        # np.int64: typed as the literal 0 on one path, nbatch would
                        # otherwise compile _fast_eval a second time
                        sq = _fast_eval(shape, fp, tT_main, scb, np.int64(nbatch), fbuf, fast_sum)
                        if fast_sum:
                            I += default_F * default_F * sq
                        else:
                            I, ordinal, hit = _fast_terms(
                                ip, dp, Fhkl, fbuf, nbatch * M, tab_main, I, ordinal,
                                interp_until, capture_fraction, polar, omega_pixel, row,
                                fpixel, probe_i, probe_d, last)
                            if hit:
                                return 0.0
        if probing:
            continue
        test = r_e_sqr * fluence * I / steps
        if os_thick == 0:
            test *= capture_fraction
        if os_polar == 0:
            test *= polar
        if os_omega == 0:
            test *= omega_pixel
        # float image += double, rounded back to float as C does
        out[row, fpixel] = np.float32(np.float64(out[row, fpixel]) + test)
        if tracing:
            t = probe_d[trace_base + fpixel]
            t[0] = stol
            t[1] = px
            t[2] = py
            t[3] = pz
            t[4] = h
            t[5] = k
            t[6] = l
            t[7] = h0
            t[8] = k0
            t[9] = l0
            t[10] = F_cell
            t[11] = F_latt
            t[12] = I
            t[13] = polar
            t[14] = omega_pixel
            t[15] = capture_fraction
            t[16] = ax
            t[17] = ay
            t[18] = az
            t[19] = bx_
            t[20] = by_
            t[21] = bz_
            t[22] = cx
            t[23] = cy
            t[24] = cz
            t[25] = out[row, fpixel]
            t[26] = seen_lattice
            t[27] = seen_F
    omega_rows[row] = omega_row
    return omega_row


@njit(parallel=True)
def render(ip, dp, vecs, sources, lat, lat_first, Fhkl, mask, out, omega_rows, probe_i, probe_d):
    """Fill ``out`` (rows, fpixels) float32 with the slow rows [ROW_START, ROW_STOP);
    one row per task, any thread count. ``mask`` covers the whole detector."""
    row_start = ip[P.I_ROW_START]
    frames = _polar_frames(sources, vecs[5, 0], vecs[5, 1], vecs[5, 2])
    for row in prange(ip[P.I_ROW_STOP] - row_start):
        # np.int64: prange may hand out uint64 indices, and int64 + uint64 is a float in
        # Numba; the row index stays an int64 (and _render_row is compiled once)
        _render_row(row_start + np.int64(row), ip, dp, vecs, sources, frames, lat, lat_first,
                    Fhkl, mask, out, omega_rows, probe_i, probe_d)
