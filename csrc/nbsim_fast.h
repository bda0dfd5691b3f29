/*
 * nbsim C engine, -fast: the spot shapes and the structure-factor interpolation
 * from short polynomials (internal interface between nbsim_kernel.c and
 * nbsim_fast.c).
 *
 * The -fast section of nbsim/engines/numba_kernel.py defines this arithmetic; nbsim_fast.c performs the
 * same IEEE operations in the same order (scalar and in SIMD vectors), so both
 * engines give the same bits.
 */
#ifndef NBSIM_FAST_H
#define NBSIM_FAST_H

#include <stdint.h>

/* What the -fast shape functions need (the Numba kernel's -fast parameters). */
typedef struct {
    int64_t shape;          /* NBSIM_SHAPE_* */
    double Na, Nb, Nc, fudge;
    double rs[9];           /* unrotated a*, b*, c* */
} fast_shape_t;

/* Entries of a batch are padded to a multiple of this (the widest vector). */
#define FAST_PAD 16

static inline int64_t fast_capacity(int64_t n)
{
    return (n + FAST_PAD - 1) / FAST_PAD * FAST_PAD;
}

/* A lattice table laid out for batches of up to nmax sources (built once per
 * render): entry j = source * M + m of a batch takes row r of the transposed
 * table from x[(j / FAST_BLOCK) * 9 * FAST_BLOCK + r * FAST_BLOCK + j % FAST_BLOCK]
 * (blocks of FAST_BLOCK entries, row after row) and its source's scattering
 * vector from sc[3 * src[j]], so that whole vectors of entries load without
 * gathering the table.  stride = fast_capacity(nmax * M) entries; padding entries
 * read zeros and the last source. */
#define FAST_BLOCK 8

typedef struct {
    int64_t M, nmax, stride;
    double *x;          /* [stride / FAST_BLOCK][9][FAST_BLOCK] */
    int64_t *src;       /* [stride] */
} fast_table_t;

/* Fill T for the transposed table tT[9][M]; x and src must hold 9 * stride and
 * stride elements, stride = fast_capacity(nmax * M). */
void fast_table_fill(fast_table_t *T, const double *tT, int64_t M, int64_t nmax,
                     double *x, int64_t *src);

/*
 * One batch (numba_kernel._fast_eval): for n <= T->nmax scattering vectors sc[n][3]
 * in every entry of the table, F_latt goes to buf[3][j] and, unless want_sum, the
 * Miller indices to buf[0..2][j] (row stride cap >= fast_capacity(n * M)),
 * j = source * M + entry.  Returns the sum of F_latt**2 in _sum_squares'
 * order when want_sum, else 0.
 */
typedef double (*fast_eval_fn)(const fast_shape_t *P, const fast_table_t *T,
                               const double *sc, int64_t n, double *buf, int64_t cap,
                               int want_sum);

/* The flavour called want ("scalar", "sse2", "avx2") if usable here, else the best;
 * *name gets the name of the one returned. */
fast_eval_fn fast_choose(const char *want, const char **name);

/* _ceil_int: ceil(y) for |y| < 2**51, from additions only. */
static inline double fast_ceil_int(double y)
{
    double r = (y + 6755399441055744.0) - 6755399441055744.0;
    return r + (r < y ? 1.0 : 0.0);
}

/* _nearest_c: the exact path's nearest whole index as_c_int(ceil(x - 0.5)), as a
 * double: INT_MIN for NaN and for indices beyond the int range (where
 * fast_ceil_int would be inexact). */
static inline double fast_nearest_c(double x)
{
    const double y = x - 0.5;
    if (y > -2147483649.0 && y <= 2147483647.0)
        return fast_ceil_int(y);
    return -2147483648.0;
}

/* _tricubic_fast over Fhkl[.][fk][fl] offset by (h_min, k_min, l_min). */
double fast_tricubic(const double *Fhkl, int64_t fk, int64_t fl,
                     int64_t h_min, int64_t k_min, int64_t l_min,
                     double h, double k, double l);

#endif /* NBSIM_FAST_H */
