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
 * -fast (ip[NBSIM_I_FAST]): a sub-pixel's sources are evaluated as one batch by
 * nbsim_fast.c (the Numba kernel's -fast section, operation by operation, in SIMD
 * vectors chosen at run time), and fast_source_terms below takes the exact loop's
 * per-term steps on the batch's F_latt, in the exact loop's order.
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
#include "nbsim_fast.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

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
    int fast;           /* -fast: the -fast shapes and interpolation */
    int fast_batch;     /* a sub-pixel's sources are evaluated as one batch */
    int fast_sum;       /* one F and nothing multiplied per term: the batch's
                         * terms are summed in a fixed order */
    int64_t M;          /* phisteps * domains */
    int64_t cap;        /* row stride of a thread's batch buffer */
    fast_table_t T_main, T_first;       /* lat (batches of up to nsources) and
                                         * lat_first (one source) for fast_eval */
    fast_shape_t fshape;
    fast_eval_fn fast_eval;             /* the SIMD flavour in use */
} kernel_t;

/* Per-thread work space of the -fast path. */
typedef struct {
    double *scb;        /* [nsources][3] batched scattering vectors */
    double *buf;        /* [4][cap]: h, k, l and F_latt of a batch */
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

/* -interpolate's switch for one term (the Numba kernel's _interp_switch): 1 when it
 * interpolates, else 0, counting it in *ordinal when interpolation is on.  With
 * K->probe, the first term whose interpolation would read outside the table is
 * recorded in the probe arrays' row out_row instead, and -1 returned (the row
 * stops there). */
static inline int interp_switch(const kernel_t *K, int64_t interp_until, int64_t *ordinal,
                                double h, double k, double l,
                                int64_t h0, int64_t k0, int64_t l0,
                                int64_t out_row, int64_t fpixel)
{
    int do_interp;
    if (K->interpolate == 0)
        return 0;
    do_interp = interp_until < 0 || *ordinal < interp_until;
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
            pi[1] = *ordinal;
            pd[0] = h;
            pd[1] = k;
            pd[2] = l;
            pd[3] = (double)h0;
            pd[4] = (double)k0;
            pd[5] = (double)l0;
            return -1;
        }
    }
    *ordinal += 1;
    return do_interp;
}

/* F_cell of the nearest node (h0, k0, l0): from the table where it holds one, else
 * the default F (the Numba kernel's _table_F) */
static inline double table_F(const kernel_t *K, int64_t h0, int64_t k0, int64_t l0)
{
    if (K->hkls != 0 && h0 <= K->h_max && h0 >= K->h_min
            && k0 <= K->k_max && k0 >= K->k_min && l0 <= K->l_max && l0 >= K->l_min)
        return K->Fhkl[((h0 - K->h_min) * K->fk + (k0 - K->k_min)) * K->fl + (l0 - K->l_min)];
    return K->default_F;
}


/* -fast: one batch of n scattering vectors W->scb[n][3] over the lattice table
 * tT (the Numba kernel's eval_batch and then its sum or its _fast_terms): the
 * exact loop's per-term steps on the -fast F_latt, in the exact loop's order.
 * Updates *I and *ordinal; returns 1 when the probe found its evaluation (the row
 * stops there), else 0. */
static int fast_source_terms(const kernel_t *K, const scratch_t *W, const fast_table_t *T,
                             int64_t n, double *I, int64_t *ordinal, int64_t interp_until,
                             double capture_fraction, double polar, double omega_pixel,
                             int64_t spixel, int64_t fpixel)
{
    const int64_t total = n * K->M;
    const int64_t cap = K->cap;
    const double *buf = W->buf;
    double sum = K->fast_eval(&K->fshape, T, W->scb, n, W->buf, cap, K->fast_sum);
    int64_t j;

    if (K->fast_sum) {
        *I += K->default_F * K->default_F * sum;
        return 0;
    }
    for (j = 0; j < total; j++) {
        const double h = buf[j], k = buf[cap + j], l = buf[2 * cap + j];
        const double F_latt = buf[3 * cap + j];
        const int64_t h0 = (int64_t)fast_nearest_c(h);
        const int64_t k0 = (int64_t)fast_nearest_c(k);
        const int64_t l0 = (int64_t)fast_nearest_c(l);
        double F_cell;
        int do_interp;

        if (F_latt == 0.0 && K->water_size == 0.0)
            continue;
        /* the probe arrays hold rows [row_start, row_stop) only */
        do_interp = interp_switch(K, interp_until, ordinal, h, k, l, h0, k0, l0,
                                  spixel - K->row_start, fpixel);
        if (do_interp < 0)
            return 1;
        if (K->probe != 0)
            continue;
        if (do_interp)
            F_cell = fast_tricubic(K->Fhkl, K->fk, K->fl, K->h_min, K->k_min, K->l_min, h, k, l);
        else
            F_cell = table_F(K, h0, k0, l0);
        *I += F_cell * F_cell * F_latt * F_latt;
        *I = per_term(K, *I, capture_fraction, polar, omega_pixel);
    }
    return 0;
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

                        if (K->fast) {
                            if (K->fast_batch && !use_first) {
                                /* with the sub-pixel's other sources, after this loop */
                                W->scb[3 * nbatch] = scx;
                                W->scb[3 * nbatch + 1] = scy;
                                W->scb[3 * nbatch + 2] = scz;
                                nbatch += 1;
                                continue;
                            }
                            /* this source alone (nbatch is 0 here) */
                            W->scb[0] = scx;
                            W->scb[1] = scy;
                            W->scb[2] = scz;
                            if (fast_source_terms(K, W, use_first ? &K->T_first : &K->T_main, 1,
                                                  &I, &ordinal, interp_until, capture_fraction,
                                                  polar, omega_pixel, spixel, fpixel))
                                return;
                            use_first = 0;
                            continue;
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

                                if (K->shape == NBSIM_SHAPE_SQUARE) {
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

                                do_interp = interp_switch(K, interp_until, &ordinal, h, k, l,
                                                          h0, k0, l0, out_row, fpixel);
                                if (do_interp < 0)
                                    return;
                                if (K->probe != 0)
                                    continue;

                                if (do_interp)
                                    F_cell = tricubic(K, h, k, l);
                                else
                                    F_cell = table_F(K, h0, k0, l0);

                                I += F_cell * F_cell * F_latt * F_latt;
                                I = per_term(K, I, capture_fraction, polar, omega_pixel);
                            }
                        }
                        /* only the pixel's first complete phi loop may use lat_first */
                        use_first = 0;
                    }
                    if (nbatch > 0
                            && fast_source_terms(K, W, &K->T_main, nbatch, &I, &ordinal,
                                                 interp_until, capture_fraction, polar,
                                                 omega_pixel, spixel, fpixel))
                        return;
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


/* the Numba kernel's -fast parameters: the shape, N, fudge and the unrotated a*, b*, c* */
static void fast_shape_from(const int64_t *ip, const double *dp, const double *vecs,
                            fast_shape_t *P)
{
    int i;
    P->shape = ip[NBSIM_I_SHAPE];
    P->Na = dp[NBSIM_D_NA];
    P->Nb = dp[NBSIM_D_NB];
    P->Nc = dp[NBSIM_D_NC];
    P->fudge = dp[NBSIM_D_FUDGE];
    for (i = 0; i < 9; i++)
        P->rs[i] = vecs[NBSIM_V_A_STAR * 3 + i];
}


/* dst[9][M] = src[M][9] transposed. */
static void transpose_table(const double *src, int64_t M, double *dst)
{
    int64_t m, j;
    for (m = 0; m < M; m++)
        for (j = 0; j < 9; j++)
            dst[j * M + m] = src[m * 9 + j];
}

/* Carve one thread's block (3 ns + 4 cap doubles, or NULL) into its buffers. */
static void set_scratch(scratch_t *W, double *block, int64_t nsources)
{
    const int64_t ns = nsources > 0 ? nsources : 1;
    W->scb = block;
    W->buf = block ? block + 3 * ns : NULL;
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
    double *tables = NULL, *work = NULL, *frames = NULL, *transposed = NULL;
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
    K.fast = ip[NBSIM_I_FAST] != 0;
    K.fast_batch = K.fast && K.os_polar == 0;
    K.fast_sum = K.fast && K.hkls == 0 && K.interpolate == 0 && K.os_thick == 0
                 && K.os_polar == 0 && K.os_omega == 0 && K.probe == 0;
    K.cap = 0;
    fast_shape_from(ip, dp, vecs, &K.fshape);
    K.fast_eval = NULL;

#ifdef _OPENMP
    if (nthreads <= 0)
        nthreads = omp_get_max_threads();
#endif
    if (nthreads <= 0)
        nthreads = 1;

    if (K.fast) {
        /* the lattice tables laid out for batches (shared) and each thread's work
         * space, all allocated before any pixel is written */
        const uint64_t M = (uint64_t)K.M;
        const uint64_t M1 = M > 0 ? M : 1;
        const uint64_t ns = nsources > 0 ? (uint64_t)nsources : 1;
        const uint64_t limit = (uint64_t)(SIZE_MAX / sizeof(double) / 8);
        size_t main_size, first_size;
        if (M1 > limit / 18 || ns > limit / 20 / M1)
            return -3;
        K.cap = fast_capacity((int64_t)(ns * M1));
        per_thread = (size_t)(3 * ns + 4 * (uint64_t)K.cap);
        if ((uint64_t)nthreads > limit / per_thread)
            return -3;
        main_size = (size_t)K.cap;
        first_size = (size_t)fast_capacity((int64_t)M1);
        tables = (double *)malloc(sizeof(double) * 10 * (main_size + first_size));
        work = (double *)malloc(sizeof(double) * per_thread * (size_t)nthreads);
        transposed = (double *)malloc(sizeof(double) * 9 * (size_t)M1);
        if (tables == NULL || work == NULL || transposed == NULL) {
            free(tables);
            free(work);
            free(transposed);
            return -3;
        }
        /* (int64_t and double have the same size: the source indices share the block) */
        transpose_table(lat, K.M, transposed);
        fast_table_fill(&K.T_main, transposed, K.M, (int64_t)ns, tables,
                        (int64_t *)(tables + 9 * main_size));
        transpose_table(lat_first, K.M, transposed);
        fast_table_fill(&K.T_first, transposed, K.M, 1, tables + 10 * main_size,
                        (int64_t *)(tables + 10 * main_size + 9 * first_size));
        free(transposed);
        K.fast_eval = fast_choose(getenv("NBSIM_SIMD"), &simd);
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
                    nsources);
#pragma omp for schedule(dynamic)
        for (spixel = row_start; spixel < row_stop; spixel++)
            render_row(&K, &W, spixel);
    }
#else
    {
        scratch_t W;
        set_scratch(&W, work, nsources);
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
    (void)fast_choose(getenv("NBSIM_SIMD"), &name);
    return name;
}


double nbsim_fast_eval(const int64_t *ip, const double *dp, const double *vecs,
                       const double *tT, int64_t M, const double *sc, int64_t n,
                       double *out, const char *flavour, const char **used)
{
    const char *name;
    fast_eval_fn fn = fast_choose(flavour, &name);
    fast_shape_t P;
    fast_table_t T;
    int64_t cap, j, r;
    double *buf, *x, sum;
    int64_t *src;
    if (M < 0 || n < 0 || (M > 0 && n > INT64_MAX / 16 / M))
        return NAN;
    cap = fast_capacity(n * M);
    buf = (double *)malloc(sizeof(double) * (4 * (size_t)cap + 1));
    x = (double *)malloc(sizeof(double) * (9 * (size_t)cap + 1));
    src = (int64_t *)malloc(sizeof(int64_t) * ((size_t)cap + 1));
    if (buf == NULL || x == NULL || src == NULL) {
        free(buf);
        free(x);
        free(src);
        return NAN;
    }
    fast_shape_from(ip, dp, vecs, &P);
    fast_table_fill(&T, tT, M, n, x, src);
    /* the indices are returned, so they are asked for (no sum); then the sum */
    (void)fn(&P, &T, sc, n, buf, cap, 0);
    for (r = 0; r < 4; r++)
        for (j = 0; j < n * M; j++)
            out[r * n * M + j] = buf[r * cap + j];
    sum = n > 0 ? fn(&P, &T, sc, n, buf, cap, 1) : 0.0;
    free(buf);
    free(x);
    free(src);
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
