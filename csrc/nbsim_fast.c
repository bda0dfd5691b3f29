/*
 * nbsim C engine, -fast: the -fast section of nbsim/engines/numba_kernel.py, operation by
 * operation.
 *
 * Every function below has a namesake there and performs the same IEEE
 * operations in the same order; the build forbids contraction into FMA and
 * fast-math, and x86-64 has no excess precision, so the results have the same
 * bits.  The constants are written as there (csrc/fast_coeffs.py derives the
 * fitted ones).  libm is called only where the Numba kernel calls the same function on
 * the same argument.
 *
 * The batch evaluation (fast_eval_fn) comes in a scalar flavour, written here, and
 * in SIMD flavours (nbsim_fast_simd.h, included once per instruction set and
 * chosen at run time): lane-wise IEEE arithmetic, so every width gives the scalar
 * flavour's bits.  Lanes that need libm (huge or invalid arguments) are redone
 * with the scalar functions.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nbsim_kernel.h"
#include "nbsim_fast.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict
#endif

/* the Numba kernel's -fast constants (_MAGIC, _NCHEB, ...) */
#define MAGIC 6755399441055744.0
#define NCHEB 16.0
#define PIO2_1 1.5707963267341256
#define PIO2_2 6.077100506303966e-11
#define PIO2_3 2.0222662487959506e-21
#define TWO_OVER_PI 0.6366197723675814
#define LN2_HI 0.6931471806019545
#define LN2_LO (-4.2009150726810846e-11)
#define LOG2E 1.4426950408889634
#define SINC3_SERIES_BELOW 1.0
#define SINC3_LIBM_ABOVE 1.0e5
#define EXP_POLY_MIN (-707.0)
#define EXP_POLY_MAX 707.0
#define EXP_ZERO_BELOW (-746.0)
#define ROUND_SCALE 0.723601254558268

static const double TWO_COSPI[6] = {
    -9.86960440106517, 8.117424245865891, -2.6705252123106424, 0.47065569870377966,
    -0.05157074957681335, 0.0037051805089499557};
static const double SIN_R[6] = {
    -0.16666666666666666, 0.008333333333330948, -0.00019841269836758538,
    2.755731610253375e-06, -2.5051131841108444e-08, 1.5918129014234338e-10};
static const double COS_R[6] = {
    -0.49999999999999967, 0.04166666666663093, -0.0013888888882127898,
    2.4801582623323947e-05, -2.7555855506093313e-07, 2.066550444965181e-09};
static const double EXP_R[10] = {
    0.5000000000000001, 0.16666666666666669, 0.041666666666624164,
    0.008333333333330065, 0.001388888891719689, 0.00019841269863040675,
    2.480152132210459e-05, 2.7557268480106926e-06, 2.762007600563138e-07,
    2.5100375929185925e-08};
/* the series of 3 (sin x/x - cos x)/x**2 below x = 1, highest term first */
static const double SINC3_SERIES[8] = {
    1.0 / 2252687044608000.0, -1.0 / 7410154752000.0, 1.0 / 31135104000.0,
    -1.0 / 172972800.0, 1.0 / 1330560.0, -1.0 / 15120.0, 1.0 / 280.0, -1.0 / 10.0};

static inline double round_int(double x)
{
    return (x + MAGIC) - MAGIC;
}

/* 2 cos(pi d), |d| <= 1/2, the polynomial in Estrin's form (short dependency chains) */
static inline double two_cospi(double d)
{
    double t = d * d;
    double t2 = t * t;
    double t4 = t2 * t2;
    double q0 = TWO_COSPI[0] + TWO_COSPI[1] * t;
    double q1 = TWO_COSPI[2] + TWO_COSPI[3] * t;
    double q2 = TWO_COSPI[4] + TWO_COSPI[5] * t;
    return 2.0 + t * ((q0 + q1 * t2) + q2 * t4);
}

/* steps of cheb_u's recurrence: one per i = 2, 3, ... below n */
static inline int64_t cheb_steps(double n)
{
    int64_t steps = 0;
    double i;
    for (i = 2.0; i < n; i += 1.0)
        steps++;
    return steps;
}

/* U_{n-1}(c) from t = 2c */
static inline double cheb_u(double t, double n)
{
    double u0 = 1.0, u1 = t;
    int64_t i, steps = cheb_steps(n);
    for (i = 0; i < steps; i++) {
        double u2 = t * u1 - u0;
        u0 = u1;
        u1 = u2;
    }
    return u1;
}

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

static inline void axis_parts(double x, double n, double *num, double *den)
{
    double d, v, sd, sv;
    if (n <= 1.0) {
        *num = 1.0;
        *den = 1.0;
        return;
    }
    d = x - round_int(x);
    if (n <= NCHEB) {
        *num = cheb_u(two_cospi(d), n);
        *den = 1.0;
        return;
    }
    v = n * d;
    v = v - round_int(v);
    sd = sinpi_small(d);
    sv = sinpi_small(v);
    *num = (sd == 0.0) ? n : sv;
    *den = (sd == 0.0) ? 1.0 : sd;
}

static inline double square_latt(double h, double k, double l, double Na, double Nb, double Nc)
{
    double na, da, nb, db, nc, dc;
    axis_parts(h, Na, &na, &da);
    axis_parts(k, Nb, &nb, &db);
    axis_parts(l, Nc, &nc, &dc);
    return (na * nb * nc) / (da * db * dc);
}

static inline double sinc3_exact(double x)
{
    if (x == 0.0)
        return 1.0;
    return 3.0 * (sin(x) / x - cos(x)) / (x * x);
}

static double sinc3_fast(double x)
{
    double tt, n, r, t, ps, pc, s, c, sx, cx;
    int64_t q;
    int i;
    if (x < SINC3_SERIES_BELOW) {
        double p;
        t = x * x;
        p = SINC3_SERIES[0];
        for (i = 1; i < 8; i++)
            p = p * t + SINC3_SERIES[i];
        return 1.0 + t * p;
    }
    if (!(x < SINC3_LIBM_ABOVE))
        return sinc3_exact(x);
    tt = x * TWO_OVER_PI + MAGIC;
    n = tt - MAGIC;
    r = ((x - n * PIO2_1) - n * PIO2_2) - n * PIO2_3;
    t = r * r;
    ps = SIN_R[5];
    pc = COS_R[5];
    for (i = 4; i >= 0; i--) {
        ps = ps * t + SIN_R[i];
        pc = pc * t + COS_R[i];
    }
    s = r + r * t * ps;
    c = 1.0 + t * pc;
    q = (int64_t)n & 3;
    sx = (q & 1) ? c : s;
    cx = (q & 1) ? s : c;
    if (q & 2)
        sx = -sx;
    if ((q + 1) & 2)
        cx = -cx;
    return 3.0 * (sx / x - cx) / (x * x);
}

static double exp_fast(double a)
{
    double tt, kd, r, p;
    if (!(a >= EXP_POLY_MIN && a <= EXP_POLY_MAX)) {
        if (a < EXP_ZERO_BELOW)
            return 0.0;
        return exp(a);
    }
    tt = a * LOG2E + MAGIC;
    kd = tt - MAGIC;
    r = (a - kd * LN2_HI) - kd * LN2_LO;
    {   /* the polynomial in Estrin's form (short dependency chains) */
        double r2 = r * r;
        double r4 = r2 * r2;
        double q0 = EXP_R[0] + EXP_R[1] * r;
        double q1 = EXP_R[2] + EXP_R[3] * r;
        double q2 = EXP_R[4] + EXP_R[5] * r;
        double q3 = EXP_R[6] + EXP_R[7] * r;
        double q4 = EXP_R[8] + EXP_R[9] * r;
        p = ((q0 + q1 * r2) + (q2 + q3 * r2) * r4) + q4 * (r4 * r4);
    }
    p = 1.0 + r + r * r * p;
    return ldexp(p, (int)kd);   /* exact: the result is a normal number */
}

/* _fast_latt */
static double shape_latt(const fast_shape_t *P, double h, double k, double l)
{
    const double Na = P->Na, Nb = P->Nb, Nc = P->Nc;
    double dh, dk, dl, dhx, dhy, dhz, rad_star_sqr, inside;
    if (P->shape == NBSIM_SHAPE_SQUARE)
        return square_latt(h, k, l, Na, Nb, Nc);
    dh = h - fast_nearest_c(h);
    dk = k - fast_nearest_c(k);
    dl = l - fast_nearest_c(l);
    if (P->shape == NBSIM_SHAPE_ROUND) {
        double hrad_sqr = dh * dh * Na * Na + dk * dk * Nb * Nb + dl * dl * Nc * Nc;
        return Na * Nb * Nc * ROUND_SCALE * sinc3_fast(M_PI * sqrt(hrad_sqr * P->fudge));
    }
    dhx = dh * P->rs[0] + dk * P->rs[3] + dl * P->rs[6];
    dhy = dh * P->rs[1] + dk * P->rs[4] + dl * P->rs[7];
    dhz = dh * P->rs[2] + dk * P->rs[5] + dl * P->rs[8];
    rad_star_sqr = (dhx * dhx + dhy * dhy + dhz * dhz) * Na * Na * Nb * Nb * Nc * Nc;
    if (P->shape == NBSIM_SHAPE_GAUSS)
        return Na * Nb * Nc * exp_fast(-(rad_star_sqr / 0.63 * P->fudge));
    inside = 0.0;
    if (rad_star_sqr * P->fudge < 0.3969)
        inside = 1.0;
    return Na * Nb * Nc * inside;
}

/* where entry j's row r is in fast_table_t.x */
#define FAST_ENTRY(j, r) (((j) / FAST_BLOCK) * 9 * FAST_BLOCK + (r) * FAST_BLOCK + (j) % FAST_BLOCK)

void fast_table_fill(fast_table_t *T, const double *tT, int64_t M, int64_t nmax,
                     double *x, int64_t *src)
{
    int64_t r, s, m, j;
    T->M = M;
    T->nmax = nmax;
    T->stride = fast_capacity(nmax * M);
    T->x = x;
    T->src = src;
    for (j = 0; j < 9 * T->stride; j++)
        x[j] = 0.0;
    for (j = 0; j < T->stride; j++)       /* padding: the last source */
        src[j] = nmax > 0 ? nmax - 1 : 0;
    for (s = 0; s < nmax; s++)
        for (m = 0; m < M; m++) {
            for (r = 0; r < 9; r++)
                x[FAST_ENTRY(s * M + m, r)] = tT[r * M + m];
            src[s * M + m] = s;
        }
}

/* Miller indices of entry j (the exact loop's h = a . s, with a from the table) */
static inline void fast_hkl(const fast_table_t *T, const double *sc, int64_t j,
                            double *h, double *k, double *l)
{
    const double *x = T->x + FAST_ENTRY(j, 0);
    const int64_t st = FAST_BLOCK;
    const double sx = sc[3 * T->src[j]], sy = sc[3 * T->src[j] + 1], sz = sc[3 * T->src[j] + 2];
    *h = x[0] * sx + x[st] * sy + x[2 * st] * sz;
    *k = x[3 * st] * sx + x[4 * st] * sy + x[5 * st] * sz;
    *l = x[6 * st] * sx + x[7 * st] * sy + x[8 * st] * sz;
}

/* _sum_squares: entry j into partial sum j % 8, then pairs */
static double sum_squares(const double *v, int64_t n)
{
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t j;
    for (j = 0; j < n; j++)
        acc[j % 8] += v[j] * v[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static double fast_eval_scalar(const fast_shape_t *P, const fast_table_t *T,
                               const double *sc, int64_t n, double *buf, int64_t cap,
                               int want_sum)
{
    const int64_t total = n * T->M;
    double *flat = buf + 3 * cap;
    int64_t j;
    for (j = 0; j < total; j++) {
        double h, k, l;
        fast_hkl(T, sc, j, &h, &k, &l);
        buf[j] = h;
        buf[cap + j] = k;
        buf[2 * cap + j] = l;
        flat[j] = shape_latt(P, h, k, l);
    }
    return want_sum ? sum_squares(flat, total) : 0.0;
}

/* _lagrange4 */
static inline void lagrange4(double t, double w[4])
{
    double a = t + 1.0;
    double c = t - 1.0;
    double d = t - 2.0;
    w[0] = t * c * d * (-1.0 / 6.0);
    w[1] = a * c * d * 0.5;
    w[2] = a * t * d * (-0.5);
    w[3] = a * t * c * (1.0 / 6.0);
}

double fast_tricubic(const double *Fhkl, int64_t fk, int64_t fl,
                     int64_t h_min, int64_t k_min, int64_t l_min,
                     double h, double k, double l)
{
    double hf = floor(h), kf = floor(k), lf = floor(l);
    double wh[4], wk[4], wl[4], y = 0.0;
    int64_t h0 = (int64_t)hf, k0 = (int64_t)kf, l0 = (int64_t)lf;
    int64_t li = l0 - 1 - l_min;
    int i1, i2;
    lagrange4(h - hf, wh);
    lagrange4(k - kf, wk);
    lagrange4(l - lf, wl);
    for (i1 = 0; i1 < 4; i1++) {
        int64_t hi = h0 - 1 + i1 - h_min;
        double yh = 0.0;
        for (i2 = 0; i2 < 4; i2++) {
            int64_t ki = k0 - 1 + i2 - k_min;
            const double *F = Fhkl + (hi * fk + ki) * fl + li;
            double yk = wl[0] * F[0] + wl[1] * F[1] + wl[2] * F[2] + wl[3] * F[3];
            yh = (i2 == 0) ? wk[0] * yk : yh + wk[i2] * yk;
        }
        y = (i1 == 0) ? wh[0] * yh : y + wh[i1] * yh;
    }
    return y;
}


/* SIMD flavours (see nbsim_fast_simd.h).  On x86-64 the widest one the CPU has is
 * chosen at run time; NBSIM_SIMD=scalar|sse2|avx2 asks for a narrower one, for
 * testing that they all agree.  Elsewhere one "generic" flavour of 2 lanes is
 * built (-DNBSIM_GENERIC_SIMD builds that one on x86-64 too; -DNBSIM_NO_SIMD none). */
/* doubles per vector of each flavour: the register width (wider vectors passed
 * between the helpers spill); at most 8, a divisor of FAST_PAD / 2 */
#ifndef NBSIM_SSE2_LANES
#define NBSIM_SSE2_LANES 2
#endif
#ifndef NBSIM_AVX2_LANES
#define NBSIM_AVX2_LANES 4
#endif
#ifndef NBSIM_AVX512_LANES
#define NBSIM_AVX512_LANES 8
#endif

#if (defined(__GNUC__) || defined(__clang__)) && !defined(NBSIM_NO_SIMD)
#define NBSIM_HAVE_SIMD 1
#if defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 8) || defined(__clang__)) \
    && !defined(NBSIM_GENERIC_SIMD)
#define NBSIM_X86_SIMD 1
#include <immintrin.h>

#define FS_SUFFIX avx512
#define FS_LANES NBSIM_AVX512_LANES
#define FS_ILP 2
#define FS_TARGET __attribute__((target("avx512f")))
#define FS_NATIVE 8
#define FS_SQRT(v) ((FS(vn))_mm512_sqrt_pd((__m512d)(v)))
#include "nbsim_fast_simd.h"

#define FS_SUFFIX avx2
#define FS_LANES NBSIM_AVX2_LANES
#define FS_ILP 1
#define FS_TARGET __attribute__((target("avx2")))
#define FS_NATIVE 4
#define FS_SQRT(v) ((FS(vn))_mm256_sqrt_pd((__m256d)(v)))
#include "nbsim_fast_simd.h"

#define FS_SUFFIX sse2
#define FS_LANES NBSIM_SSE2_LANES
#define FS_ILP 1
#define FS_TARGET
#define FS_NATIVE 2
#define FS_SQRT(v) ((FS(vn))_mm_sqrt_pd((__m128d)(v)))
#include "nbsim_fast_simd.h"

#else   /* other architectures: the baseline vector unit */

#define FS_SUFFIX generic
#define FS_LANES 2
#define FS_ILP 1
#define FS_TARGET
#include "nbsim_fast_simd.h"

#endif
#endif

fast_eval_fn fast_choose(const char *want, const char **name)
{
    if (want != NULL && strcmp(want, "scalar") == 0) {
        *name = "scalar";
        return fast_eval_scalar;
    }
#ifdef NBSIM_X86_SIMD
    __builtin_cpu_init();
    if (want != NULL && strcmp(want, "sse2") == 0) {
        *name = "sse2";
        return fast_eval_sse2;
    }
    if (want != NULL && strcmp(want, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        *name = "avx2";
        return fast_eval_avx2;
    }
    if (__builtin_cpu_supports("avx512f")) {
        *name = "avx512";
        return fast_eval_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        *name = "avx2";
        return fast_eval_avx2;
    }
    *name = "sse2";
    return fast_eval_sse2;
#elif defined(NBSIM_HAVE_SIMD)
    *name = "generic";
    return fast_eval_generic;
#else
    *name = "scalar";
    return fast_eval_scalar;
#endif
}
