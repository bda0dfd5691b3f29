/*
 * nbsim C engine: the same pixel loop as nbsim/engines/numba_kernel.py, written
 * so that every floating-point operation happens in the same order and the same
 * precision as there.  It is the fallback when Numba is not installed, and must
 * produce an image with exactly the same bits.
 *
 * Rules that keep the bits (see also csrc/build_ffi.py):
 *   - compile without -ffast-math and with -ffp-contract=off (no fused multiply-add);
 *   - every expression keeps the Python kernel's left-to-right grouping;
 *   - integer arithmetic stays in int64 and is converted to double exactly where
 *     the Python kernel mixes an int with a float;
 *   - the libm functions are the double versions (sin, cos, exp, sqrt, atan2,
 *     floor, ceil), which are the ones Numba calls as well.
 *
 * -fast (ip[NBSIM_I_FAST]) follows the Numba kernel's -fast helpers operation by
 * operation too: the polynomial sines, the rounding by adding and subtracting
 * 1.5 * 2**52 (which the compiler may not fold without -ffast-math), and sums in a
 * fixed order.  Its one costly element-wise loop runs in explicit SIMD vectors
 * (nbsim_fast_simd.h, one flavour per instruction set, chosen at run time); lane-
 * wise IEEE arithmetic without FMA gives the scalar code's bits at any width.
 *
 * Parallelism: one OpenMP task per slow row.  A row depends only on the inputs,
 * never on another row, so any thread count gives the same image.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nbsim_kernel.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict
#endif

/* -fast: the lattice sum of a batch of scattering vectors (see fast_lattice_sum_scalar) */
typedef double (*fast_sum_fn)(const double *restrict, int64_t, const double *restrict, int64_t,
                              double, double, double, double *restrict, double *restrict);

/* Everything a row needs, unpacked once. */
typedef struct {
    int64_t fpixels, spixels;
    int64_t roi_xmin, roi_xmax, roi_ymin, roi_ymax;
    int64_t oversample, thicksteps;
    int64_t has_mask, curved, point_pixel;
    int64_t os_thick, os_polar, os_omega, nopolar, shape, interpolate, hkls;
    int64_t h_min, h_max, k_min, k_max, l_min, l_max, h_range, k_range, l_range;
    int64_t first_pixel, trig_pixel, trig_ord, probe;
    int64_t row_start, row_stop;    /* rows rendered; outputs start at row_start */

    double pixel_size, subpixel_size, thickstep, detector_thick, mu;
    double distance, close_distance, kahn, dmin, Na, Nb, Nc, fudge;
    double default_F, water_size, I_bg, r_e_sqr, fluence, steps;

    double f0, f1, f2, s0, s1, s2, o0, o1, o2, p0, p1, p2;
    double bm0, bm1, bm2, ax0, ax1, ax2;
    double as0, as1, as2, bs0, bs1, bs2, cs0, cs1, cs2;

    const double *sources;
    int64_t nsources, source_stride;
    double *frames;     /* [nsources][9]: see polar_frames */
    const double *lat, *lat_first;
    int64_t phisteps, domains;
    const double *Fhkl;
    int64_t fk, fl;
    const uint16_t *mask;
    float *out;
    double *omega_rows;
    int64_t *probe_i;
    double *probe_d;

    /* -fast (see the Numba kernel's _render_row for the same switches) */
    int fast_sq;        /* -fast and a square crystal: polynomial lattice factor */
    int need_hkl;       /* h, k, l (and F_cell) needed per table entry */
    int fast_sum;       /* one F for everything and nothing multiplied per term:
                         * a sub-pixel's sources are summed as one batch */
    int64_t M;          /* phisteps * domains */
    const double *tT_main, *tT_first;   /* lat, lat_first transposed: [9][M] */
    fast_sum_fn fast_lattice_sum;       /* the SIMD flavour in use */
} kernel_t;

/* Per-thread work space of the -fast path. */
typedef struct {
    double *scb;        /* [nsources][3] batched scattering vectors */
    double *hkl;        /* [3][nsources * M] Miller indices */
    double *lsq;        /* [nsources * M] squared lattice factors (fl2: the first M) */
} scratch_t;


/* sin(n x) / sin(x), with its limit n at x == 0. */
/* Divide (x, y, z) by its length in place; a zero vector becomes (0, 0, 0).
 * Returns the length. */
static inline double unit3(double *x, double *y, double *z)
{
    double mag = sqrt(*x * *x + *y * *y + *z * *z);
    if (mag != 0.0) {
        *x = *x / mag;
        *y = *y / mag;
        *z = *z / mag;
    } else {
        *x = 0.0;
        *y = 0.0;
        *z = 0.0;
    }
    return mag;
}


/* Per source: the unit incident direction i, then b = unit(axis x i) and
 * e = unit(i x b), the frame of the Kahn polarization factor.  They depend on the
 * source alone (the reference rebuilds them for every pixel); built once, with the
 * Numba kernel's _polar_frames operations, they have the same bits. */
static void polar_frames(const kernel_t *K, double *frames)
{
    int64_t source;
    for (source = 0; source < K->nsources; source++) {
        const double *src = K->sources + source * K->source_stride;
        double *fr = frames + 9 * source;
        double ix = -src[0], iy = -src[1], iz = -src[2];
        double bx, by, bz, ex, ey, ez;
        double mag = sqrt(ix * ix + iy * iy + iz * iz);
        if (mag != 0.0) {   /* a vector too small to measure is left as it is */
            ix = ix / mag;
            iy = iy / mag;
            iz = iz / mag;
        }
        bx = K->ax1 * iz - K->ax2 * iy;
        by = K->ax2 * ix - K->ax0 * iz;
        bz = K->ax0 * iy - K->ax1 * ix;
        unit3(&bx, &by, &bz);
        ex = iy * bz - iz * by;
        ey = iz * bx - ix * bz;
        ez = ix * by - iy * bx;
        unit3(&ex, &ey, &ez);
        fr[0] = ix; fr[1] = iy; fr[2] = iz;
        fr[3] = bx; fr[4] = by; fr[5] = bz;
        fr[6] = ex; fr[7] = ey; fr[8] = ez;
    }
}

/* The running sum after a term, under -oversample_thick/_polar/_omega: like the
 * reference, each flag multiplies the whole sum so far by its factor. */
static inline double per_term(const kernel_t *K, double I, double capture_fraction,
                              double polar, double omega_pixel)
{
    if (K->os_thick != 0)
        I *= capture_fraction;
    if (K->os_polar != 0)
        I *= polar;
    if (K->os_omega != 0)
        I *= omega_pixel;
    return I;
}

/* The reference keeps the nearest whole index in a C int: (int) of a double outside
 * the int range, or of NaN, is INT_MIN on x86-64 (cvttsd2si), and the spot shapes then
 * use h - INT_MIN. Applied to the 64-bit conversion (which gives INT64_MIN for those):
 * any value that is not an int becomes INT_MIN. */
static inline int64_t as_c_int(int64_t v)
{
    return v == (int64_t)(int32_t)v ? v : INT32_MIN;
}

static inline double sincg(double x, double n)
{
    if (x == 0.0)
        return n;
    return sin(x * n) / sin(x);
}

/* 3 (sin x / x - cos x) / x^2, with its limit 1 at x == 0. */
static inline double sinc3(double x)
{
    if (x == 0.0)
        return 1.0;
    return 3.0 * (sin(x) / x - cos(x)) / (x * x);
}

/* Four-point Lagrange polynomial through (xa_i, y_i), evaluated at x. */
static inline double polint(double xa0, double xa1, double xa2, double xa3,
                            double y0, double y1, double y2, double y3, double x)
{
    double x0 = (x - xa1) * (x - xa2) * (x - xa3) * y0 / ((xa0 - xa1) * (xa0 - xa2) * (xa0 - xa3));
    double x1 = (x - xa0) * (x - xa2) * (x - xa3) * y1 / ((xa1 - xa0) * (xa1 - xa2) * (xa1 - xa3));
    double x2 = (x - xa0) * (x - xa1) * (x - xa3) * y2 / ((xa2 - xa0) * (xa2 - xa1) * (xa2 - xa3));
    double x3 = (x - xa0) * (x - xa1) * (x - xa2) * y3 / ((xa3 - xa0) * (xa3 - xa1) * (xa3 - xa2));
    return x0 + x1 + x2 + x3;
}

/* Tricubic interpolation of the structure factor over the 4x4x4 cube around
 * (h, k, l): first along l, then k, then h. */
static double tricubic(const kernel_t *K, double h, double k, double l)
{
    double hf = floor(h);
    double kf = floor(k);
    double lf = floor(l);
    int64_t h0 = (int64_t)hf;
    int64_t k0 = (int64_t)kf;
    int64_t l0 = (int64_t)lf;
    double ha0 = (double)(h0 - 1), ha1 = (double)h0, ha2 = (double)(h0 + 1), ha3 = (double)(h0 + 2);
    double ka0 = (double)(k0 - 1), ka1 = (double)k0, ka2 = (double)(k0 + 1), ka3 = (double)(k0 + 2);
    double la0 = (double)(l0 - 1), la1 = (double)l0, la2 = (double)(l0 + 1), la3 = (double)(l0 + 2);
    double yh[4], yk[4];
    int i1, i2;

    for (i1 = 0; i1 < 4; i1++) {
        int64_t hi = h0 - 1 + i1 - K->h_min;
        for (i2 = 0; i2 < 4; i2++) {
            int64_t ki = k0 - 1 + i2 - K->k_min;
            int64_t li = l0 - 1 - K->l_min;
            const double *F = K->Fhkl + (hi * K->fk + ki) * K->fl + li;
            yk[i2] = polint(la0, la1, la2, la3, F[0], F[1], F[2], F[3], l);
        }
        yh[i1] = polint(ka0, ka1, ka2, ka3, yk[0], yk[1], yk[2], yk[3], k);
    }
    return polint(ha0, ha1, ha2, ha3, yh[0], yh[1], yh[2], yh[3], h);
}


/* ------------------------------------------------------------------------
 * -fast (square crystals): the squared lattice factor from short polynomials.
 *
 * These are the Numba kernel's _sinpi_small, _grating_parts, _lattice_sq,
 * _ordered_sum, _fast_lattice_sq and _fast_batch_sum, with the same operations in
 * the same order, so the results have the same bits.  Every element-wise step is
 * independent of its neighbours and the sums run in a fixed order, so
 * vectorising the loops (any width, any ISA without FMA) changes nothing.
 * ------------------------------------------------------------------------ */

/* 1.5 * 2**52: (x + M) - M rounds x to the nearest integer (ties to even) for
 * |x| < 2**51.  Not folded away: no -ffast-math, and x86-64 has no excess
 * precision (FLT_EVAL_METHOD 0). */
#define ROUND_MAGIC 6755399441055744.0

/* doubles per vector of each SIMD flavour (a vector wider than the unit is split
 * by the compiler; these widths measured best) */
#ifndef NBSIM_SSE2_LANES
#define NBSIM_SSE2_LANES 2
#endif
#ifndef NBSIM_AVX2_LANES
#define NBSIM_AVX2_LANES 4
#endif
#ifndef NBSIM_AVX512_LANES
#define NBSIM_AVX512_LANES 8
#endif

/* sin(pi u) for |u| <= 1/2: Taylor series to x**15. */
static inline double sinpi_small(double u)
{
    double x = M_PI * u;
    double x2 = x * x;
    double p = -1.0 / 1307674368000.0;
    p = p * x2 + 1.0 / 6227020800.0;
    p = p * x2 - 1.0 / 39916800.0;
    p = p * x2 + 1.0 / 362880.0;
    p = p * x2 - 1.0 / 5040.0;
    p = p * x2 + 1.0 / 120.0;
    p = p * x2 - 1.0 / 6.0;
    return x + x * x2 * p;
}

/* sin(pi n x) and sin(pi x) up to a common sign, both from arguments reduced to
 * [-1/2, 1/2]; (n, 1) in the limit where sin(pi x) vanishes. */
static inline void grating_parts(double x, double n, double *num, double *den)
{
    double d = x - ((x + ROUND_MAGIC) - ROUND_MAGIC);
    double v = n * d;
    double sd, sv;
    v = v - ((v + ROUND_MAGIC) - ROUND_MAGIC);
    sd = sinpi_small(d);
    sv = sinpi_small(v);
    *num = (sd == 0.0) ? n : sv;
    *den = (sd == 0.0) ? 1.0 : sd;
}

/* The squared lattice factor; an axis with N <= 1 contributes 1. */
static inline double lattice_sq(double h, double k, double l, double Na, double Nb, double Nc)
{
    double na, da, nb, db, nc, dc, r;
    grating_parts(h, Na, &na, &da);
    grating_parts(k, Nb, &nb, &db);
    grating_parts(l, Nc, &nc, &dc);
    r = (na * nb * nc) / (da * db * dc);
    return r * r;
}

/* Indices of axes with N <= 1 are set to 0 and their N to 1: such an axis must
 * contribute exactly 1 (the Numba kernel overwrites its parts with (1, 1)), and
 * grating_parts(0, 1) is (1, 1) too.  So the element-wise loops need no branch. */
static inline void unit_axes(double *hkl, int64_t total, double *Na, double *Nb, double *Nc)
{
    double *N[3];
    int axis;
    N[0] = Na;
    N[1] = Nb;
    N[2] = Nc;
    for (axis = 0; axis < 3; axis++) {
        if (*N[axis] <= 1.0) {
            double *x = hkl + axis * total;
            int64_t j;
            for (j = 0; j < total; j++)
                x[j] = 0.0;
            *N[axis] = 1.0;
        }
    }
}

/* Sum of buf[0..n) in a fixed order: four interleaved partial sums, then pairs. */
static inline double ordered_sum(const double *buf, int64_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t j = 0;
    while (j + 4 <= n) {
        s0 += buf[j];
        s1 += buf[j + 1];
        s2 += buf[j + 2];
        s3 += buf[j + 3];
        j += 4;
    }
    while (j < n) {
        s0 += buf[j];
        j += 1;
    }
    return (s0 + s1) + (s2 + s3);
}

/* Miller indices of n scattering vectors sc[n][3] in every table entry of
 * tT[9][M] (the lattice table transposed): hkl[3][n*M], source-major. */
static inline void fast_indices(const double *restrict tT, int64_t M,
                                const double *restrict sc, int64_t n, double *restrict hkl)
{
    const int64_t total = n * M;
    int64_t s, m;
    for (s = 0; s < n; s++) {
        const double sx = sc[3 * s], sy = sc[3 * s + 1], sz = sc[3 * s + 2];
        double *restrict hh = hkl + s * M;
        double *restrict kk = hkl + total + s * M;
        double *restrict ll = hkl + 2 * total + s * M;
        for (m = 0; m < M; m++) {
            hh[m] = tT[m] * sx + tT[M + m] * sy + tT[2 * M + m] * sz;
            kk[m] = tT[3 * M + m] * sx + tT[4 * M + m] * sy + tT[5 * M + m] * sz;
            ll[m] = tT[6 * M + m] * sx + tT[7 * M + m] * sy + tT[8 * M + m] * sz;
        }
    }
}

/* _fast_lattice_sq (n == 1, out = fl2) and _fast_batch_sum (n sources): the
 * squared lattice factors of n scattering vectors sc[n][3] in every (phi, domain)
 * of tT, written to out[n*M], and their ordered sum.  hkl[3][n*M] is work space.
 * This is the scalar flavour; the SIMD ones below give the same bits. */
static double fast_lattice_sum_scalar(const double *restrict tT, int64_t M,
                                      const double *restrict sc, int64_t n,
                                      double Na, double Nb, double Nc,
                                      double *restrict hkl, double *restrict out)
{
    const int64_t total = n * M;
    int64_t j;
    fast_indices(tT, M, sc, n, hkl);
    unit_axes(hkl, total, &Na, &Nb, &Nc);
    for (j = 0; j < total; j++)
        out[j] = lattice_sq(hkl[j], hkl[total + j], hkl[2 * total + j], Na, Nb, Nc);
    return ordered_sum(out, total);
}

/* SIMD flavours.  The scalar loop above is not vectorised by the compiler (it
 * moves the numerator's sine into a branch, as it is unused where
 * sin(pi d) == 0, and cannot vectorise that), so the vector code is explicit.
 * On x86-64 the widest flavour the CPU supports is chosen at run time; the
 * environment variable NBSIM_SIMD=scalar|sse2|avx2 asks for a narrower one, for
 * testing that they all agree.  Elsewhere one "generic" flavour of 2 lanes is
 * built (-DNBSIM_GENERIC_SIMD builds that one on x86-64 too; -DNBSIM_NO_SIMD none). */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(NBSIM_NO_SIMD)
#define NBSIM_HAVE_SIMD 1
#if defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 8) || defined(__clang__)) \
    && !defined(NBSIM_GENERIC_SIMD)
#define NBSIM_X86_SIMD 1

#define FS_SUFFIX avx512
#define FS_LANES NBSIM_AVX512_LANES
#define FS_TARGET __attribute__((target("avx512f")))
#include "nbsim_fast_simd.h"
#undef FS_SUFFIX
#undef FS_LANES
#undef FS_TARGET

#define FS_SUFFIX avx2
#define FS_LANES NBSIM_AVX2_LANES
#define FS_TARGET __attribute__((target("avx2")))
#include "nbsim_fast_simd.h"
#undef FS_SUFFIX
#undef FS_LANES
#undef FS_TARGET

#define FS_SUFFIX sse2
#define FS_LANES NBSIM_SSE2_LANES
#define FS_TARGET
#include "nbsim_fast_simd.h"
#undef FS_SUFFIX
#undef FS_LANES
#undef FS_TARGET

#else   /* other architectures: the baseline vector unit */

#define FS_SUFFIX generic
#define FS_LANES 2
#define FS_TARGET
#include "nbsim_fast_simd.h"
#undef FS_SUFFIX
#undef FS_LANES
#undef FS_TARGET

#endif
#endif

/* The flavour to use: the one called want if given and usable here (a narrower
 * one than the best), else the best one; *name gets its name. */
static fast_sum_fn choose_fast_sum(const char *want, const char **name)
{
    if (want != NULL && strcmp(want, "scalar") == 0) {
        *name = "scalar";
        return fast_lattice_sum_scalar;
    }
#ifdef NBSIM_X86_SIMD
    __builtin_cpu_init();
    if (want != NULL && strcmp(want, "sse2") == 0) {
        *name = "sse2";
        return fast_lattice_sum_sse2;
    }
    if (want != NULL && strcmp(want, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        *name = "avx2";
        return fast_lattice_sum_avx2;
    }
    if (__builtin_cpu_supports("avx512f")) {
        *name = "avx512";
        return fast_lattice_sum_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        *name = "avx2";
        return fast_lattice_sum_avx2;
    }
    *name = "sse2";
    return fast_lattice_sum_sse2;
#elif defined(NBSIM_HAVE_SIMD)
    *name = "generic";
    return fast_lattice_sum_generic;
#else
    *name = "scalar";
    return fast_lattice_sum_scalar;
#endif
}


/* One slow row.  With K->probe set, stops at the row's first out-of-range
 * interpolation and records it (and then leaves omega_rows alone). */
static void render_row(const kernel_t *K, const scratch_t *W, int64_t spixel)
{
    const int64_t fpixels = K->fpixels;
    const int64_t oversample = K->oversample;
    const double subpixel_size = K->subpixel_size;
    const double thickstep = K->thickstep;
    const double distance = K->distance;
    const double Na = K->Na, Nb = K->Nb, Nc = K->Nc;
    const double fudge = K->fudge;
    const double kahn = K->kahn;
    const double dmin = K->dmin;
    const double f0 = K->f0, f1 = K->f1, f2 = K->f2;
    const double s0 = K->s0, s1 = K->s1, s2 = K->s2;
    const double o0 = K->o0, o1 = K->o1, o2 = K->o2;
    const double ax0 = K->ax0, ax1 = K->ax1, ax2 = K->ax2;
    double omega_row = 0.0;
    int64_t fpixel;
    /* the outputs hold rows [row_start, row_stop) only */
    const int64_t out_row = spixel - K->row_start;

    for (fpixel = 0; fpixel < fpixels; fpixel++) {
        int64_t imgidx, ordinal, interp_until, thick_tic;
        double I, polar, omega_pixel, capture_fraction, test;
        int use_first;

        if (fpixel < K->roi_xmin || fpixel > K->roi_xmax
                || spixel < K->roi_ymin || spixel > K->roi_ymax)
            continue;
        imgidx = spixel * fpixels + fpixel;
        if (K->has_mask != 0 && K->mask[imgidx] == 0)
            continue;

        I = K->I_bg;
        polar = 0.0;
        if (K->nopolar != 0)
            polar = 1.0;
        omega_pixel = 0.0;
        capture_fraction = 0.0;
        use_first = (imgidx == K->first_pixel);
        ordinal = 0;
        if (imgidx < K->trig_pixel)
            interp_until = -1;              /* interpolation allowed everywhere */
        else if (imgidx == K->trig_pixel)
            interp_until = K->trig_ord;     /* allowed before this evaluation */
        else
            interp_until = 0;               /* never */

        for (thick_tic = 0; thick_tic < K->thicksteps; thick_tic++) {
            double Odet = (double)thick_tic * thickstep;
            int64_t subS, subF;

            capture_fraction = 0.0;
            if (K->detector_thick == 0.0)
                capture_fraction = 1.0;

            for (subS = 0; subS < oversample; subS++) {
                for (subF = 0; subF < oversample; subF++) {
                    double Fdet = subpixel_size * (double)(fpixel * oversample + subF) + subpixel_size / 2.0;
                    double Sdet = subpixel_size * (double)(spixel * oversample + subS) + subpixel_size / 2.0;
                    double px = Fdet * f0 + Sdet * s0 + Odet * o0 + K->p0;
                    double py = Fdet * f1 + Sdet * s1 + Odet * o1 + K->p1;
                    double pz = Fdet * f2 + Sdet * s2 + Odet * o2 + K->p2;
                    double airpath, dx, dy, dz;
                    int64_t source;
                    int64_t nbatch = 0;     /* -fast: sources batched so far */

                    if (K->curved != 0) {
                        /* swing the flat-detector position onto the sphere: rotate
                         * distance*beam about sdet by py/distance, then about fdet
                         * by pz/distance */
                        double vx = distance * K->bm0;
                        double vy = distance * K->bm1;
                        double vz = distance * K->bm2;
                        double phi = py / distance;
                        double sp = sin(phi);
                        double cp = cos(phi);
                        double dd = (s0 * vx + s1 * vy + s2 * vz) * (1.0 - cp);
                        double nx = s0 * dd + vx * cp + (-s2 * vy + s1 * vz) * sp;
                        double ny = s1 * dd + vy * cp + (+s2 * vx - s0 * vz) * sp;
                        double nz = s2 * dd + vz * cp + (-s1 * vx + s0 * vy) * sp;
                        phi = pz / distance;
                        sp = sin(phi);
                        cp = cos(phi);
                        dd = (f0 * nx + f1 * ny + f2 * nz) * (1.0 - cp);
                        px = f0 * dd + nx * cp + (-f2 * ny + f1 * nz) * sp;
                        py = f1 * dd + ny * cp + (+f2 * nx - f0 * nz) * sp;
                        pz = f2 * dd + nz * cp + (-f1 * nx + f0 * ny) * sp;
                    }

                    airpath = sqrt(px * px + py * py + pz * pz);
                    if (airpath != 0.0) {
                        dx = px / airpath;
                        dy = py / airpath;
                        dz = pz / airpath;
                    } else {
                        dx = 0.0;
                        dy = 0.0;
                        dz = 0.0;
                    }

                    if (omega_pixel == 0.0 || K->os_omega != 0) {
                        omega_pixel = K->pixel_size * K->pixel_size / airpath / airpath
                                      * K->close_distance / airpath;
                        if (K->point_pixel != 0)
                            omega_pixel = 1.0 / airpath / airpath;
                    }
                    omega_row += omega_pixel;

                    if (capture_fraction == 0.0 || K->os_thick != 0) {
                        double parallax = dx * o0 + dy * o1 + dz * o2;
                        /* the negations are integer ones, as in the Python kernel */
                        capture_fraction =
                            exp((double)(-thick_tic) * thickstep * K->mu / parallax)
                            - exp((double)(-(thick_tic + 1)) * thickstep * K->mu / parallax);
                    }

                    for (source = 0; source < K->nsources; source++) {
                        const double *src = K->sources + source * K->source_stride;
                        double ix = -src[0];
                        double iy = -src[1];
                        double iz = -src[2];
                        double lam = src[3];
                        double scx = (dx - ix) / lam;
                        double scy = (dy - iy) / lam;
                        double scz = (dz - iz) / lam;
                        int64_t phi_tic;

                        if (dmin > 0.0) {
                            /* stol only matters here (the Python kernel computes it
                             * for every source; it has no side effect) */
                            double stol = 0.5 * sqrt(scx * scx + scy * scy + scz * scz);
                            if (stol > 0.0 && dmin > 0.5 / stol)
                                continue;
                        }

                        if (polar == 0.0 || K->os_polar != 0) {
                            /* Kahn polarization factor.  The diffracted direction
                             * is normalised in place first (and stays normalised for
                             * the following sources); the incident one and its
                             * frame come from polar_frames. */
                            const double *fr = K->frames + 9 * source;
                            double mag, cos2theta, cos2theta_sqr, sin2theta_sqr, psi;
                            mag = sqrt(dx * dx + dy * dy + dz * dz);
                            if (mag != 0.0) {   /* a vector too small to measure is left as it is */
                                dx = dx / mag;
                                dy = dy / mag;
                                dz = dz / mag;
                            }
                            cos2theta = fr[0] * dx + fr[1] * dy + fr[2] * dz;
                            cos2theta_sqr = cos2theta * cos2theta;
                            sin2theta_sqr = 1.0 - cos2theta_sqr;
                            psi = 0.0;
                            if (kahn != 0.0) {
                                double e_out = dx * fr[6] + dy * fr[7] + dz * fr[8];
                                double b_out = dx * fr[3] + dy * fr[4] + dz * fr[5];
                                psi = -atan2(b_out, e_out);
                            }
                            polar = 0.5 * (1.0 + cos2theta_sqr - kahn * cos(2.0 * psi) * sin2theta_sqr);
                        }

                        if (K->fast_sum && !use_first) {
                            /* batch this source with the others of the sub-pixel */
                            W->scb[3 * nbatch] = scx;
                            W->scb[3 * nbatch + 1] = scy;
                            W->scb[3 * nbatch + 2] = scz;
                            nbatch += 1;
                            continue;
                        }
                        if (K->fast_sq) {
                            double sc[3];
                            double fl2_sum;
                            sc[0] = scx;
                            sc[1] = scy;
                            sc[2] = scz;
                            fl2_sum = K->fast_lattice_sum(use_first ? K->tT_first : K->tT_main,
                                                       K->M, sc, 1, Na, Nb, Nc, W->hkl, W->lsq);
                            if (K->fast_sum) {
                                I += K->default_F * K->default_F * fl2_sum;
                                use_first = 0;
                                continue;
                            }
                            if (!K->need_hkl) {
                                /* one F for every hkl: only the lattice factor varies */
                                const double *fl2 = W->lsq;
                                int64_t m;
                                for (m = 0; m < K->M; m++) {
                                    double F_latt = fl2[m];
                                    if (F_latt == 0.0 && K->water_size == 0.0)
                                        continue;
                                    I += K->default_F * K->default_F * F_latt;
                                    I = per_term(K, I, capture_fraction, polar, omega_pixel);
                                }
                                use_first = 0;
                                continue;
                            }
                        }

                        for (phi_tic = 0; phi_tic < K->phisteps; phi_tic++) {
                            const double *row = (use_first ? K->lat_first : K->lat)
                                                + phi_tic * K->domains * 9;
                            int64_t mos;
                            for (mos = 0; mos < K->domains; mos++) {
                                const double *L = row + mos * 9;
                                double h = L[0] * scx + L[1] * scy + L[2] * scz;
                                double k = L[3] * scx + L[4] * scy + L[5] * scz;
                                double l = L[6] * scx + L[7] * scy + L[8] * scz;
                                int64_t h0 = as_c_int((int64_t)ceil(h - 0.5));
                                int64_t k0 = as_c_int((int64_t)ceil(k - 0.5));
                                int64_t l0 = as_c_int((int64_t)ceil(l - 0.5));
                                double F_latt = 1.0;
                                double rad_star_sqr = 0.0;
                                double F_cell;
                                int do_interp;

                                if (K->fast_sq) {
                                    /* the square from the polynomial path (W->lsq
                                     * holds this source's fl2) */
                                    F_latt = W->lsq[phi_tic * K->domains + mos];
                                } else if (K->shape == NBSIM_SHAPE_SQUARE) {
                                    if (Na > 1)
                                        F_latt *= sincg(M_PI * h, Na);
                                    if (Nb > 1)
                                        F_latt *= sincg(M_PI * k, Nb);
                                    if (Nc > 1)
                                        F_latt *= sincg(M_PI * l, Nc);
                                } else {
                                    /* distance from the nearest node in the fixed
                                     * (unrotated) reciprocal cell */
                                    double dh = h - (double)h0;
                                    double dk = k - (double)k0;
                                    double dl = l - (double)l0;
                                    double dhx = dh * K->as0 + dk * K->bs0 + dl * K->cs0;
                                    double dhy = dh * K->as1 + dk * K->bs1 + dl * K->cs1;
                                    double dhz = dh * K->as2 + dk * K->bs2 + dl * K->cs2;
                                    rad_star_sqr = (dhx * dhx + dhy * dhy + dhz * dhz)
                                                   * Na * Na * Nb * Nb * Nc * Nc;
                                }
                                if (K->shape == NBSIM_SHAPE_ROUND) {
                                    double dh = h - (double)h0;
                                    double dk = k - (double)k0;
                                    double dl = l - (double)l0;
                                    double hrad_sqr = dh * dh * Na * Na + dk * dk * Nb * Nb + dl * dl * Nc * Nc;
                                    F_latt = Na * Nb * Nc * 0.723601254558268
                                             * sinc3(M_PI * sqrt(hrad_sqr * fudge));
                                }
                                if (K->shape == NBSIM_SHAPE_GAUSS)
                                    F_latt = Na * Nb * Nc * exp(-(rad_star_sqr / 0.63 * fudge));
                                if (K->shape == NBSIM_SHAPE_TOPHAT) {
                                    double inside = 0.0;
                                    if (rad_star_sqr * fudge < 0.3969)
                                        inside = 1.0;
                                    F_latt = Na * Nb * Nc * inside;
                                }
                                if (F_latt == 0.0 && K->water_size == 0.0)
                                    continue;

                                do_interp = 0;
                                if (K->interpolate != 0) {
                                    do_interp = interp_until < 0 || ordinal < interp_until;
                                    if (do_interp && K->probe != 0) {
                                        if ((h - (double)K->h_min + 3.0) > (double)K->h_range
                                                || (h - 2.0 < (double)K->h_min)
                                                || (k - (double)K->k_min + 3.0) > (double)K->k_range
                                                || (k - 2.0 < (double)K->k_min)
                                                || (l - (double)K->l_min + 3.0) > (double)K->l_range
                                                || (l - 2.0 < (double)K->l_min)) {
                                            int64_t *pi = K->probe_i + out_row * 2;
                                            double *pd = K->probe_d + out_row * 6;
                                            pi[0] = fpixel;
                                            pi[1] = ordinal;
                                            pd[0] = h;
                                            pd[1] = k;
                                            pd[2] = l;
                                            pd[3] = (double)h0;
                                            pd[4] = (double)k0;
                                            pd[5] = (double)l0;
                                            return;
                                        }
                                    }
                                    ordinal += 1;
                                }
                                if (K->probe != 0)
                                    continue;

                                if (do_interp)
                                    F_cell = tricubic(K, h, k, l);
                                else if (K->hkls != 0 && h0 <= K->h_max && h0 >= K->h_min
                                         && k0 <= K->k_max && k0 >= K->k_min
                                         && l0 <= K->l_max && l0 >= K->l_min)
                                    F_cell = K->Fhkl[((h0 - K->h_min) * K->fk + (k0 - K->k_min)) * K->fl
                                                     + (l0 - K->l_min)];
                                else
                                    F_cell = K->default_F;

                                if (K->fast_sq)
                                    I += F_cell * F_cell * F_latt;   /* F_latt is squared */
                                else
                                    I += F_cell * F_cell * F_latt * F_latt;
                                I = per_term(K, I, capture_fraction, polar, omega_pixel);
                            }
                        }
                        /* only the pixel's first complete phi loop may use lat_first */
                        use_first = 0;
                    }
                    if (nbatch > 0)
                        I += K->default_F * K->default_F
                             * K->fast_lattice_sum(K->tT_main, K->M, W->scb, nbatch, Na, Nb, Nc,
                                                W->hkl, W->lsq);
                }
            }
        }
        if (K->probe != 0)
            continue;

        test = K->r_e_sqr * K->fluence * I / K->steps;
        if (K->os_thick == 0)
            test *= capture_fraction;
        if (K->os_polar == 0)
            test *= polar;
        if (K->os_omega == 0)
            test *= omega_pixel;
        /* the image is float; the sum is formed in double and rounded once */
        K->out[out_row * fpixels + fpixel] = (float)((double)K->out[out_row * fpixels + fpixel] + test);
    }
    K->omega_rows[out_row] = omega_row;
}


/* dst[9][M] = src[M][9] transposed. */
static void transpose_table(const double *src, int64_t M, double *dst)
{
    int64_t m, j;
    for (m = 0; m < M; m++)
        for (j = 0; j < 9; j++)
            dst[j * M + m] = src[m * 9 + j];
}

/* Carve one thread's block (3 ns + 4 ns M doubles, or NULL) into its buffers. */
static void set_scratch(scratch_t *W, double *block, int64_t nsources, int64_t M)
{
    const int64_t ns = nsources > 0 ? nsources : 1;
    const int64_t M1 = M > 0 ? M : 1;
    W->scb = block;
    W->hkl = block ? block + 3 * ns : NULL;
    W->lsq = block ? block + 3 * ns + 3 * ns * M1 : NULL;
}


int nbsim_render(const int64_t *ip, const double *dp, const double *vecs,
                 const double *sources, int64_t nsources, int64_t source_stride,
                 const double *lat, const double *lat_first,
                 int64_t phisteps, int64_t domains,
                 const double *Fhkl, int64_t fh, int64_t fk, int64_t fl,
                 const uint16_t *mask, float *out, double *omega_rows,
                 int64_t *probe_i, double *probe_d, int nthreads)
{
    kernel_t K;
    int64_t spixel, row_start, row_stop;
    double *tables = NULL, *work = NULL, *frames = NULL;
    const char *simd;
    size_t per_thread = 0;

    if (nsources < 0 || source_stride < 4 || phisteps < 0 || domains < 0
            || fh < 0 || fk < 0 || fl < 0)
        return -1;
    if (ip[NBSIM_I_FPIXELS] < 0 || ip[NBSIM_I_SPIXELS] < 0)
        return -1;
    K.fpixels = ip[NBSIM_I_FPIXELS];
    K.spixels = ip[NBSIM_I_SPIXELS];
    K.roi_xmin = ip[NBSIM_I_ROI_XMIN];
    K.roi_xmax = ip[NBSIM_I_ROI_XMAX];
    K.roi_ymin = ip[NBSIM_I_ROI_YMIN];
    K.roi_ymax = ip[NBSIM_I_ROI_YMAX];
    K.oversample = ip[NBSIM_I_OVERSAMPLE];
    K.thicksteps = ip[NBSIM_I_THICKSTEPS];
    K.has_mask = ip[NBSIM_I_HAS_MASK];
    K.curved = ip[NBSIM_I_CURVED];
    K.point_pixel = ip[NBSIM_I_POINT_PIXEL];
    K.os_thick = ip[NBSIM_I_OS_THICK];
    K.os_polar = ip[NBSIM_I_OS_POLAR];
    K.os_omega = ip[NBSIM_I_OS_OMEGA];
    K.nopolar = ip[NBSIM_I_NOPOLAR];
    K.shape = ip[NBSIM_I_SHAPE];
    K.interpolate = ip[NBSIM_I_INTERPOLATE];
    K.hkls = ip[NBSIM_I_HKLS];
    K.h_min = ip[NBSIM_I_H_MIN];
    K.h_max = ip[NBSIM_I_H_MAX];
    K.k_min = ip[NBSIM_I_K_MIN];
    K.k_max = ip[NBSIM_I_K_MAX];
    K.l_min = ip[NBSIM_I_L_MIN];
    K.l_max = ip[NBSIM_I_L_MAX];
    K.h_range = ip[NBSIM_I_H_RANGE];
    K.k_range = ip[NBSIM_I_K_RANGE];
    K.l_range = ip[NBSIM_I_L_RANGE];
    K.first_pixel = ip[NBSIM_I_FIRST_PIXEL];
    K.trig_pixel = ip[NBSIM_I_TRIG_PIXEL];
    K.trig_ord = ip[NBSIM_I_TRIG_ORD];
    K.probe = ip[NBSIM_I_PROBE];
    K.row_start = ip[NBSIM_I_ROW_START];
    K.row_stop = ip[NBSIM_I_ROW_STOP];
    if (K.row_start < 0 || K.row_start > K.row_stop || K.row_stop > K.spixels)
        return -1;

    K.pixel_size = dp[NBSIM_D_PIXEL_SIZE];
    K.subpixel_size = dp[NBSIM_D_SUBPIXEL_SIZE];
    K.thickstep = dp[NBSIM_D_THICKSTEP];
    K.detector_thick = dp[NBSIM_D_THICK];
    K.mu = dp[NBSIM_D_MU];
    K.distance = dp[NBSIM_D_DISTANCE];
    K.close_distance = dp[NBSIM_D_CLOSE_DISTANCE];
    K.kahn = dp[NBSIM_D_POLARIZATION];
    K.dmin = dp[NBSIM_D_DMIN];
    K.Na = dp[NBSIM_D_NA];
    K.Nb = dp[NBSIM_D_NB];
    K.Nc = dp[NBSIM_D_NC];
    K.fudge = dp[NBSIM_D_FUDGE];
    K.default_F = dp[NBSIM_D_DEFAULT_F];
    K.water_size = dp[NBSIM_D_WATER_SIZE];
    K.I_bg = dp[NBSIM_D_I_BG];
    K.r_e_sqr = dp[NBSIM_D_R_E_SQR];
    K.fluence = dp[NBSIM_D_FLUENCE];
    K.steps = dp[NBSIM_D_STEPS];

#define VEC(row, i) vecs[(row) * 3 + (i)]
    K.f0 = VEC(NBSIM_V_FDET, 0); K.f1 = VEC(NBSIM_V_FDET, 1); K.f2 = VEC(NBSIM_V_FDET, 2);
    K.s0 = VEC(NBSIM_V_SDET, 0); K.s1 = VEC(NBSIM_V_SDET, 1); K.s2 = VEC(NBSIM_V_SDET, 2);
    K.o0 = VEC(NBSIM_V_ODET, 0); K.o1 = VEC(NBSIM_V_ODET, 1); K.o2 = VEC(NBSIM_V_ODET, 2);
    K.p0 = VEC(NBSIM_V_PIX0, 0); K.p1 = VEC(NBSIM_V_PIX0, 1); K.p2 = VEC(NBSIM_V_PIX0, 2);
    K.bm0 = VEC(NBSIM_V_BEAM, 0); K.bm1 = VEC(NBSIM_V_BEAM, 1); K.bm2 = VEC(NBSIM_V_BEAM, 2);
    K.ax0 = VEC(NBSIM_V_POLAR_AXIS, 0); K.ax1 = VEC(NBSIM_V_POLAR_AXIS, 1);
    K.ax2 = VEC(NBSIM_V_POLAR_AXIS, 2);
    K.as0 = VEC(NBSIM_V_A_STAR, 0); K.as1 = VEC(NBSIM_V_A_STAR, 1); K.as2 = VEC(NBSIM_V_A_STAR, 2);
    K.bs0 = VEC(NBSIM_V_B_STAR, 0); K.bs1 = VEC(NBSIM_V_B_STAR, 1); K.bs2 = VEC(NBSIM_V_B_STAR, 2);
    K.cs0 = VEC(NBSIM_V_C_STAR, 0); K.cs1 = VEC(NBSIM_V_C_STAR, 1); K.cs2 = VEC(NBSIM_V_C_STAR, 2);
#undef VEC

    K.sources = sources;
    K.nsources = nsources;
    K.source_stride = source_stride;
    K.lat = lat;
    K.lat_first = lat_first;
    K.phisteps = phisteps;
    K.domains = domains;
    K.Fhkl = Fhkl;
    K.fk = fk;
    K.fl = fl;
    K.mask = mask;
    K.out = out;
    K.omega_rows = omega_rows;
    K.probe_i = probe_i;
    K.probe_d = probe_d;

    /* -fast: the same switches as the Numba kernel */
    K.M = phisteps * domains;
    K.fast_sq = ip[NBSIM_I_FAST] != 0 && K.shape == NBSIM_SHAPE_SQUARE;
    K.need_hkl = !K.fast_sq || K.hkls != 0 || K.interpolate != 0;
    K.fast_sum = K.fast_sq && !K.need_hkl && K.os_thick == 0 && K.os_polar == 0
                 && K.os_omega == 0;
    K.tT_main = NULL;
    K.tT_first = NULL;
    K.fast_lattice_sum = fast_lattice_sum_scalar;

#ifdef _OPENMP
    if (nthreads <= 0)
        nthreads = omp_get_max_threads();
#endif
    if (nthreads <= 0)
        nthreads = 1;

    if (K.fast_sq) {
        /* the transposed lattice tables (shared) and each thread's work space,
         * all allocated before any pixel is written */
        const uint64_t M = (uint64_t)K.M;
        const uint64_t M1 = M > 0 ? M : 1;
        const uint64_t ns = nsources > 0 ? (uint64_t)nsources : 1;
        const uint64_t limit = (uint64_t)(SIZE_MAX / sizeof(double) / 8);
        if (M1 > limit / 18 || ns > limit / 8 / M1)
            return -3;
        per_thread = (size_t)(3 * ns + 4 * ns * M1);
        if ((uint64_t)nthreads > limit / per_thread)
            return -3;
        tables = (double *)malloc(sizeof(double) * 18 * (size_t)M1);
        work = (double *)malloc(sizeof(double) * per_thread * (size_t)nthreads);
        if (tables == NULL || work == NULL) {
            free(tables);
            free(work);
            return -3;
        }
        transpose_table(lat, K.M, tables);
        transpose_table(lat_first, K.M, tables + 9 * M1);
        K.tT_main = tables;
        K.tT_first = tables + 9 * M1;
        K.fast_lattice_sum = choose_fast_sum(getenv("NBSIM_SIMD"), &simd);
    }

    frames = (double *)malloc(sizeof(double) * 9 * (size_t)(nsources > 0 ? nsources : 1));
    if (frames == NULL) {
        free(tables);
        free(work);
        return -3;
    }
    K.frames = frames;
    polar_frames(&K, frames);

    row_start = K.row_start;
    row_stop = K.row_stop;
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads)
    {
        scratch_t W;
        set_scratch(&W, work ? work + per_thread * (size_t)omp_get_thread_num() : NULL,
                    nsources, K.M);
#pragma omp for schedule(dynamic)
        for (spixel = row_start; spixel < row_stop; spixel++)
            render_row(&K, &W, spixel);
    }
#else
    {
        scratch_t W;
        set_scratch(&W, work, nsources, K.M);
        for (spixel = row_start; spixel < row_stop; spixel++)
            render_row(&K, &W, spixel);
    }
#endif
    free(frames);
    free(tables);
    free(work);
    return 0;
}


void nbsim_layout(int64_t *n_ints, int64_t *n_reals)
{
    *n_ints = NBSIM_N_INTS;
    *n_reals = NBSIM_N_REALS;
}


const char *nbsim_simd_flavour(void)
{
    const char *name;
    (void)choose_fast_sum(getenv("NBSIM_SIMD"), &name);
    return name;
}


double nbsim_fast_lattice_sum(const double *tT, int64_t M, const double *sc, int64_t n,
                              double Na, double Nb, double Nc, double *out,
                              const char *flavour, const char **used)
{
    const char *name;
    fast_sum_fn fn = choose_fast_sum(flavour, &name);
    double *hkl, sum;
    if (M < 0 || n < 0)
        return NAN;
    hkl = (double *)malloc(sizeof(double) * (3 * (size_t)(n * M) + 1));
    if (hkl == NULL)
        return NAN;
    sum = fn(tT, M, sc, n, Na, Nb, Nc, hkl, out);
    free(hkl);
    if (used != NULL)
        *used = name;
    return sum;
}


int nbsim_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
