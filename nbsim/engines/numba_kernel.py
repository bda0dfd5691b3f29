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


# -fast helpers. No fast-math anywhere: the results are fixed by the operation order
# written here, so the C engine reproduces them bit for bit, and the element-wise
# loops still vectorise. Rounding to the nearest integer uses the 1.5*2**52 trick
# (pure adds, ties to even) instead of floor(), which plain SSE2 cannot vectorise.
_ROUND_MAGIC = 6755399441055744.0


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
def _grating_parts(x, n):
    """sin(pi*n*x) and sin(pi*x) up to a common sign, from small arguments only.

    With x = x0 + d (x0 integer, |d| <= 1/2) and integer n,
    sin(pi*n*x)/sin(pi*x) = +-sin(pi*n*d)/sin(pi*d); reducing n*d the same way keeps
    both sines on |argument| <= pi/2, so no libm call or range reduction is needed.
    Returns (numerator, denominator) with the d = 0 limit (n, 1) built in. Valid
    for |x| < 2**51 (always true for Miller indices).
    """
    d = x - ((x + _ROUND_MAGIC) - _ROUND_MAGIC)
    v = n * d
    v = v - ((v + _ROUND_MAGIC) - _ROUND_MAGIC)
    sd = _sinpi_small(d)
    sv = _sinpi_small(v)
    if sd == 0.0:
        return n, 1.0
    return sv, sd


@njit(inline="always")
def _lattice_sq(h, k, l, Na, Nb, Nc):
    """-fast squared lattice factor; axes with N <= 1 contribute 1 as in the exact path."""
    na, da = _grating_parts(h, Na)
    nb, db = _grating_parts(k, Nb)
    nc, dc = _grating_parts(l, Nc)
    if Na <= 1.0:
        na = 1.0
        da = 1.0
    if Nb <= 1.0:
        nb = 1.0
        db = 1.0
    if Nc <= 1.0:
        nc = 1.0
        dc = 1.0
    r = (na * nb * nc) / (da * db * dc)
    return r * r


@njit
def _ordered_sum(buf, n):
    """Sum of buf[:n] in a fixed order: four interleaved partial sums, then pairs."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    j = 0
    while j + 4 <= n:
        s0 += buf[j]
        s1 += buf[j + 1]
        s2 += buf[j + 2]
        s3 += buf[j + 3]
        j += 4
    while j < n:
        s0 += buf[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@njit
def _fast_lattice_sq(tT, sx, sy, sz, Na, Nb, Nc, out):
    """-fast: squared lattice factor of every (phi, domain) for one scattering vector
    (written to ``out``), and their ordered sum."""
    M = out.shape[0]
    for m in range(M):
        h = tT[0, m] * sx + tT[1, m] * sy + tT[2, m] * sz
        k = tT[3, m] * sx + tT[4, m] * sy + tT[5, m] * sz
        l = tT[6, m] * sx + tT[7, m] * sy + tT[8, m] * sz
        out[m] = _lattice_sq(h, k, l, Na, Nb, Nc)
    return _ordered_sum(out, M)


@njit
def _fast_batch_sum(tT, scb, n, Na, Nb, Nc, hkl):
    """-fast: ordered sum of squared lattice factors over n batched sources and every
    (phi, domain). Indices go to a flat buffer first so the costly part is one long
    element-wise loop however few domains there are."""
    M = tT.shape[1]
    for s in range(n):
        sx = scb[s, 0]
        sy = scb[s, 1]
        sz = scb[s, 2]
        base = s * M
        for m in range(M):
            hkl[0, base + m] = tT[0, m] * sx + tT[1, m] * sy + tT[2, m] * sz
            hkl[1, base + m] = tT[3, m] * sx + tT[4, m] * sy + tT[5, m] * sz
            hkl[2, base + m] = tT[6, m] * sx + tT[7, m] * sy + tT[8, m] * sz
    total = n * M
    for j in range(total):
        hkl[3, j] = _lattice_sq(hkl[0, j], hkl[1, j], hkl[2, j], Na, Nb, Nc)
    return _ordered_sum(hkl[3], total)


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
    fast_sq = ip[P.I_FAST] != 0 and ip[P.I_SHAPE] == P.SHAPE_SQUARE
    fl2 = np.empty(M if fast_sq else 1)
    # h, k, l are needed unless -fast renders a square crystal with one F for all hkl
    need_hkl = not fast_sq or ip[P.I_HKLS] != 0 or ip[P.I_INTERPOLATE] != 0
    # the nearest whole indices matter for spot shapes, tables and the probe's report
    # PROBE 1: find where interpolation runs out of range; PROBE 2: render and record
    # each pixel's last values for -printout (into probe_d[row * fpixels + fpixel])
    probing = probe == 1
    tracing = probe == 2
    need_index = (ip[P.I_SHAPE] != P.SHAPE_SQUARE or ip[P.I_HKLS] != 0
                  or ip[P.I_INTERPOLATE] != 0 or tracing)
    # ... and when nothing multiplies I per term, one sum per source will do
    fast_sum = (fast_sq and not need_hkl and ip[P.I_OS_THICK] == 0 and ip[P.I_OS_POLAR] == 0
                and ip[P.I_OS_OMEGA] == 0)
    tT_main = np.ascontiguousarray(tab_main.T) if fast_sq else np.empty((9, 1))
    tT_first = np.ascontiguousarray(tab_first.T) if fast_sq else np.empty((9, 1))
    scb = np.empty((nsources, 3))
    hklb = np.empty((4, nsources * M if fast_sq else 1))

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
                        if fast_sum and not use_first:
                            # batch this source with the others of the sub-pixel
                            scb[nbatch, 0] = scx
                            scb[nbatch, 1] = scy
                            scb[nbatch, 2] = scz
                            nbatch += 1
                            continue
                        if fast_sq:
                            if use_first:
                                fl2_sum = _fast_lattice_sq(tT_first, scx, scy, scz, Na, Nb, Nc, fl2)
                            else:
                                fl2_sum = _fast_lattice_sq(tT_main, scx, scy, scz, Na, Nb, Nc, fl2)
                            if fast_sum:
                                I += default_F * default_F * fl2_sum
                                use_first = False
                                continue
                        for m in range(M):
                            if not need_hkl:
                                # -fast with a constant F_cell: only the lattice factor varies
                                F_latt = fl2[m]
                                if F_latt == 0.0 and water_size == 0.0:
                                    continue
                                I += default_F * default_F * F_latt
                                I = _per_term(I, os_thick, capture_fraction, os_polar, polar,
                                              os_omega, omega_pixel)
                                continue
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
                            if fast_sq:
                                # -fast: only F_latt**2 is used below; see _fast_lattice_sq
                                F_latt = fl2[m]
                            elif shape == P.SHAPE_SQUARE:
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
                            if fast_sq:
                                I += F_cell * F_cell * F_latt   # F_latt holds the square here
                            else:
                                I += F_cell * F_cell * F_latt * F_latt
                            I = _per_term(I, os_thick, capture_fraction, os_polar, polar,
                                          os_omega, omega_pixel)
                        # after the first complete φ loop the carry-over table applies
                        use_first = False
                    if nbatch > 0:
                        # np.int64: typed as the literal 0 on one path, nbatch would
                        # otherwise compile _fast_batch_sum a second time
                        I += default_F * default_F * _fast_batch_sum(tT_main, scb, np.int64(nbatch), Na, Nb, Nc, hklb)
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
