/*
 * nbsim C engine: one SIMD flavour of the -fast lattice sum (a template).
 *
 * nbsim_kernel.c includes this file once per flavour, after defining
 *
 *   FS_SUFFIX   name suffix of this flavour (avx512, avx2, sse2, generic)
 *   FS_LANES    doubles per vector
 *   FS_TARGET   function attribute selecting the instruction set, or nothing
 *
 * and gets  static double fast_lattice_sum_<FS_SUFFIX>(...)  with the interface
 * of fast_lattice_sum_scalar (see there).  Vectors are GCC/Clang vector
 * extensions: lane-wise IEEE arithmetic, the very operations of the scalar code,
 * so every flavour gives the same bits (the build forbids contraction into FMA).
 * Vectors travel by pointer between the helpers, which are always inlined.
 */

#define FS_CAT2(a, b) a##_##b
#define FS_CAT(a, b) FS_CAT2(a, b)
#define FS(name) FS_CAT(name, FS_SUFFIX)
#define FS_INLINE FS_TARGET static inline __attribute__((always_inline))

typedef double FS(vd) __attribute__((vector_size(8 * FS_LANES)));
typedef int64_t FS(vi) __attribute__((vector_size(8 * FS_LANES)));

/* *res = sinpi_small(*u), lane-wise */
FS_INLINE void FS(sinpi_small_v)(const FS(vd) *u, FS(vd) *res)
{
    FS(vd) x = M_PI * *u;
    FS(vd) x2 = x * x;
    FS(vd) p;
    int i;
    for (i = 0; i < FS_LANES; i++)
        p[i] = -1.0 / 1307674368000.0;
    p = p * x2 + 1.0 / 6227020800.0;
    p = p * x2 - 1.0 / 39916800.0;
    p = p * x2 + 1.0 / 362880.0;
    p = p * x2 - 1.0 / 5040.0;
    p = p * x2 + 1.0 / 120.0;
    p = p * x2 - 1.0 / 6.0;
    *res = x + x * x2 * p;
}

/* grating_parts, lane-wise; the (n, 1) limit selected with bit masks */
FS_INLINE void FS(grating_parts_v)(const FS(vd) *xp, const FS(vd) *np, const FS(vd) *one,
                                   FS(vd) *num, FS(vd) *den)
{
    const FS(vd) x = *xp, n = *np;
    const FS(vd) zerov = {0};
    FS(vd) d = x - ((x + ROUND_MAGIC) - ROUND_MAGIC);
    FS(vd) v = n * d;
    FS(vd) sd, sv;
    FS(vi) zero;
    v = v - ((v + ROUND_MAGIC) - ROUND_MAGIC);
    FS(sinpi_small_v)(&d, &sd);
    FS(sinpi_small_v)(&v, &sv);
    zero = (sd == zerov);                       /* all ones where sd == 0 */
    *num = (FS(vd))((zero & (FS(vi))n) | (~zero & (FS(vi))sv));
    *den = (FS(vd))((zero & (FS(vi))*one) | (~zero & (FS(vi))sd));
}

FS_TARGET
static double FS(fast_lattice_sum)(const double *restrict tT, int64_t M,
                                   const double *restrict sc, int64_t n,
                                   double Na, double Nb, double Nc,
                                   double *restrict hkl, double *restrict out)
{
    const int64_t total = n * M;
    const double *restrict hh = hkl;
    const double *restrict kk = hkl + total;
    const double *restrict ll = hkl + 2 * total;
    FS(vd) va, vb, vc, one;
    int64_t j = 0;
    int i;

    fast_indices(tT, M, sc, n, hkl);
    unit_axes(hkl, total, &Na, &Nb, &Nc);
    for (i = 0; i < FS_LANES; i++) {
        va[i] = Na;
        vb[i] = Nb;
        vc[i] = Nc;
        one[i] = 1.0;
    }
    for (; j + FS_LANES <= total; j += FS_LANES) {
        FS(vd) h, k, l, na, da, nb, db, nc, dc, r;
        memcpy(&h, hh + j, sizeof h);
        memcpy(&k, kk + j, sizeof k);
        memcpy(&l, ll + j, sizeof l);
        FS(grating_parts_v)(&h, &va, &one, &na, &da);
        FS(grating_parts_v)(&k, &vb, &one, &nb, &db);
        FS(grating_parts_v)(&l, &vc, &one, &nc, &dc);
        r = (na * nb * nc) / (da * db * dc);
        r = r * r;
        memcpy(out + j, &r, sizeof r);
    }
    for (; j < total; j++)
        out[j] = lattice_sq(hh[j], kk[j], ll[j], Na, Nb, Nc);
    return ordered_sum(out, total);
}

#undef FS_INLINE
#undef FS
#undef FS_CAT
#undef FS_CAT2
