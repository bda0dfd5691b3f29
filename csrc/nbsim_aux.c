/*
 * Sequential helpers, each a line-by-line mirror of a Numba function in nbsim
 * (stats.py, rng.py, noise.py).  Where the Python code rounds to float32
 * (np.float32(...) or float32 * float32), this code has a float; everything else
 * is double.  Built with the flags of csrc/build_ffi.py (no fast-math, no
 * contraction), so the bits are the same.
 */
#include <math.h>
#include <stdint.h>

#include "nbsim_aux.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ------------------------------------------------------------------------- */
/* statistics and integer images                                              */

void nbsim_accumulate(const float *img, int64_t spixels, int64_t fpixels,
                      const int64_t *roi, const uint16_t *mask, int has_mask,
                      double *max_I_out, int64_t *max_f_out, int64_t *max_s_out,
                      double *total_out, double *sumsqr_out, int64_t *n_out)
{
    const int64_t xmin = roi[0], xmax = roi[1], ymin = roi[2], ymax = roi[3];
    double max_I = 0.0, total = 0.0, sumsqr = 0.0;
    int64_t max_f = -1, max_s = -1, n = 0, s, f;

    for (s = 0; s < spixels; s++) {
        for (f = 0; f < fpixels; f++) {
            float v;
            if (f < xmin || f > xmax || s < ymin || s > ymax)
                continue;
            if (has_mask && mask[s * fpixels + f] == 0)
                continue;
            v = img[s * fpixels + f];
            if ((double)v > max_I) {
                max_I = (double)v;
                max_f = f;
                max_s = s;
            }
            total += (double)v;
            sumsqr += (double)(float)(v * v);   /* single-precision square */
            n += 1;
        }
    }
    *max_I_out = max_I;
    *max_f_out = max_f;
    *max_s_out = max_s;
    *total_out = total;
    *sumsqr_out = sumsqr;
    *n_out = n;
}

void nbsim_deviation(const float *img, int64_t spixels, int64_t fpixels,
                     const int64_t *roi, double avg, double *sumsqr_out, int64_t *n_out)
{
    const int64_t xmin = roi[0], xmax = roi[1], ymin = roi[2], ymax = roi[3];
    double sumsqr = 0.0;
    int64_t n = 0, s, f;

    for (s = 0; s < spixels; s++) {
        for (f = 0; f < fpixels; f++) {
            double d;
            if (f < xmin || f > xmax || s < ymin || s > ymax)
                continue;
            d = (double)img[s * fpixels + f] - avg;
            sumsqr += d * d;
            n += 1;
        }
    }
    *sumsqr_out = sumsqr;
    *n_out = n;
}

void nbsim_to_uint16(const float *img, int64_t spixels, int64_t fpixels,
                     const int64_t *roi, double scale, double offset, uint16_t *out)
{
    /* only the roi is visited; the rest of out is left as it is */
    const int64_t f_lo = roi[0] > 0 ? roi[0] : 0;
    const int64_t f_hi = roi[1] < fpixels - 1 ? roi[1] : fpixels - 1;
    const int64_t s_lo = roi[2] > 0 ? roi[2] : 0;
    const int64_t s_hi = roi[3] < spixels - 1 ? roi[3] : spixels - 1;
    int64_t s, f;
    for (s = s_lo; s <= s_hi; s++) {
        const float *row = img + s * fpixels;
        uint16_t *orow = out + s * fpixels;
        for (f = f_lo; f <= f_hi; f++) {
            double t = (double)row[f] * scale + offset;
            float r;
            if (t > 65535.0)
                t = 65535.0;
            if (t < 0.0)
                t = 0.0;
            if (t != t) {           /* NaN: 0, as in the Numba version */
                orow[f] = 0;
                continue;
            }
            /* r >= 0.5 here, so truncation is floor (and needs no libm call) */
            r = (float)(t + 0.5);
            orow[f] = (uint16_t)(int64_t)r;
        }
    }
}

void nbsim_to_uint8(const float *img, int64_t spixels, int64_t fpixels,
                    const int64_t *roi, double scale, uint8_t *out)
{
    int64_t s, f;
    for (s = 0; s < spixels; s++) {
        for (f = 0; f < fpixels; f++) {
            double t;
            if (f < roi[0] || f > roi[1] || s < roi[2] || s > roi[3])
                continue;
            t = (double)img[s * fpixels + f] * scale;
            if (t > 255.0)
                t = 255.0;
            /* the reference's (unsigned char) of a double has no lower clamp; on
             * x86-64 it truncates to a 32-bit int and keeps the low byte, and a NaN
             * or a value beyond the int range becomes 0x80000000, so 0 */
            if (t > -2147483649.0)
                out[s * fpixels + f] = (uint8_t)((uint64_t)(int64_t)t & 0xFF);
            else
                out[s * fpixels + f] = 0;
        }
    }
}

/* ------------------------------------------------------------------------- */
/* random numbers (nbsim.rng)                                                  */

#define LEHMER_MULT 16807
#define LEHMER_MOD 2147483647
#define SCHRAGE_Q 127773
#define SCHRAGE_R 2836
#define SHUFFLE_TABLE 32
#define SHUFFLE_WARMUP 8
#define SHUFFLE_BUCKET (1 + (LEHMER_MOD - 1) / SHUFFLE_TABLE)

static const double INV_MOD = 1.0 / 2147483647.0;
static const double UNIFORM_CAP = 1.0 - 1.2e-7;

/* Python's floor division by a positive divisor (C's truncates toward zero).
 * Operands are only negative for seeds outside the generator's range, but the
 * Numba code divides that way, so this does too. */
static inline int64_t floordiv(int64_t x, int64_t d)
{
    int64_t q = x / d;
    if (x % d < 0)
        q -= 1;
    return q;
}

static inline int64_t lehmer_step(int64_t x)
{
    int64_t hi = floordiv(x, SCHRAGE_Q);
    x = LEHMER_MULT * (x - hi * SCHRAGE_Q) - SCHRAGE_R * hi;
    if (x < 0)
        x += LEHMER_MOD;
    return x;
}

float nbsim_ran1(int64_t *idum, int64_t *iy, int64_t *iv)
{
    int64_t slot;
    float value;
    if (idum[0] <= 0 || iy[0] == 0) {
        int j;
        if (-idum[0] < 1)
            idum[0] = 1;
        else
            idum[0] = -idum[0];
        for (j = SHUFFLE_TABLE + SHUFFLE_WARMUP - 1; j >= 0; j--) {
            idum[0] = lehmer_step(idum[0]);
            if (j < SHUFFLE_TABLE)
                iv[j] = idum[0];
        }
        iy[0] = iv[0];
    }
    idum[0] = lehmer_step(idum[0]);
    slot = floordiv(iy[0], SHUFFLE_BUCKET);
    if (slot < 0)                /* negative indices count from the end, as in numpy */
        slot += SHUFFLE_TABLE;
    iy[0] = iv[slot];
    iv[slot] = idum[0];
    value = (float)((double)iy[0] * INV_MOD);
    if ((double)value > UNIFORM_CAP)
        return (float)UNIFORM_CAP;
    return value;
}

/* ------------------------------------------------------------------------- */
/* deviates (nbsim.noise)                                                      */

static const double LANCZOS[6] = {76.18009172947146, -86.50532032941677, 24.01409824083091,
                                  -1.231739572450155, 0.1208650973866179e-2,
                                  -0.5395239384953e-5};
static const double LANCZOS_C0 = 1.000000000190015;
static const double SQRT_2PI = 2.5066282746310005;

float nbsim_gammln(float xx)
{
    double x = (double)xx;
    double shifted = x + 5.5;
    double series = LANCZOS_C0;
    double y = x;
    int j;
    shifted = shifted - (x + 0.5) * log(shifted);
    for (j = 0; j < 6; j++) {
        y = y + 1.0;
        series = series + LANCZOS[j] / y;
    }
    return (float)(-shifted + log(SQRT_2PI * series / x));
}

float nbsim_gaussdev(int64_t *idum, int64_t *iy, int64_t *iv,
                     int64_t *gauss_iset, float *gauss_gset)
{
    float v1, v2, rsq, fac;
    double r;
    if (gauss_iset[0] != 0) {
        gauss_iset[0] = 0;
        return gauss_gset[0];
    }
    for (;;) {
        v1 = (float)(2.0 * (double)nbsim_ran1(idum, iy, iv) - 1.0);
        v2 = (float)(2.0 * (double)nbsim_ran1(idum, iy, iv) - 1.0);
        rsq = (float)(v1 * v1) + (float)(v2 * v2);
        if (!(rsq >= 1.0 || rsq == 0.0))
            break;
    }
    r = (double)rsq;
    fac = (float)sqrt(-2.0 * log(r) / r);
    gauss_gset[0] = v1 * fac;
    gauss_iset[0] = 1;
    return v2 * fac;
}

float nbsim_poidev(float xm, int64_t *idum, int64_t *iy, int64_t *iv, float *ps,
                   int64_t *gauss_iset, float *gauss_gset)
{
    float sq, alxm, g, em, t, y, lg, expo;

    if (xm > 1.0e6) {
        double xd = (double)xm;
        return (float)(xd + sqrt(xd) * (double)nbsim_gaussdev(idum, iy, iv, gauss_iset, gauss_gset));
    }
    if (xm < 12.0) {
        if (xm != ps[NBSIM_POIS_LASTMEAN]) {
            ps[NBSIM_POIS_LASTMEAN] = xm;
            ps[NBSIM_POIS_G] = (float)exp(-(double)xm);
        }
        g = ps[NBSIM_POIS_G];
        em = -1.0f;
        t = 1.0f;
        for (;;) {
            em = em + 1.0f;
            t = t * nbsim_ran1(idum, iy, iv);
            if (!(t > g))
                break;
        }
        return em;
    }
    if (xm != ps[NBSIM_POIS_LASTMEAN]) {
        ps[NBSIM_POIS_LASTMEAN] = xm;
        ps[NBSIM_POIS_SQ] = (float)sqrt(2.0 * (double)xm);
        ps[NBSIM_POIS_LOGMEAN] = (float)log((double)xm);
        ps[NBSIM_POIS_G] = (xm * ps[NBSIM_POIS_LOGMEAN])
                           - nbsim_gammln((float)((double)xm + 1.0));
    }
    sq = ps[NBSIM_POIS_SQ];
    alxm = ps[NBSIM_POIS_LOGMEAN];
    g = ps[NBSIM_POIS_G];
    for (;;) {
        for (;;) {
            y = (float)tan(M_PI * (double)nbsim_ran1(idum, iy, iv));
            em = (sq * y) + xm;
            if (!(em < 0.0))
                break;
        }
        em = (float)floor((double)em);
        lg = nbsim_gammln((float)((double)em + 1.0));
        expo = ((em * alxm) - lg) - g;
        t = (float)(0.9 * (1.0 + (double)(y * y)) * exp((double)expo));
        if (!(nbsim_ran1(idum, iy, iv) > t))
            break;
    }
    return em;
}

/* C's (unsigned short) of a double as x86-64 compilers do it: truncate to a
 * 32-bit int (anything out of that range, or NaN, gives INT_MIN), keep 16 bits. */
static inline uint16_t to_ushort(double value)
{
    if (!(value > -2147483649.0 && value < 2147483648.0))
        return 0;
    return (uint16_t)((int64_t)value & 0xFFFF);
}

void nbsim_noise_loop(const float *image, int64_t spixels, int64_t fpixels,
                      int64_t xmin, int64_t xmax, int64_t ymin, int64_t ymax,
                      double adc_offset, int64_t *idum, int64_t *iy, int64_t *iv,
                      float *poisson, int64_t *gauss_iset, float *gauss_gset,
                      uint16_t *out, double *photons_out, int64_t *overloads_out)
{
    double photons = 0.0;
    int64_t overloads = 0, s, f;
    for (s = 0; s < spixels; s++) {
        for (f = 0; f < fpixels; f++) {
            double value;
            if (f < xmin || f > xmax || s < ymin || s > ymax)
                continue;
            value = (double)nbsim_poidev(image[s * fpixels + f], idum, iy, iv, poisson,
                                         gauss_iset, gauss_gset);
            photons += value;
            value += adc_offset;
            if (value > 65535.0) {
                value = 65535.0;
                overloads += 1;
            }
            out[s * fpixels + f] = to_ushort(value);
        }
    }
    *photons_out = photons;
    *overloads_out = overloads;
}
