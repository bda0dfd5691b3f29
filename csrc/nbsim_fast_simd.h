/*
 * nbsim C engine: one SIMD flavour of the -fast batch evaluation (a template).
 *
 * nbsim_fast.c includes this file once per flavour, after defining
 *
 *   FS_SUFFIX   name suffix of this flavour (avx512, avx2, sse2, generic)
 *   FS_LANES    doubles per vector (a divisor of FAST_PAD)
 *   FS_TARGET   function attribute selecting the instruction set, or nothing
 *   FS_ILP      vectors the square crystal's loop works on side by side (their
 *               dependency chains overlap; more than the registers hold spills)
 *   FS_NATIVE, FS_SQRT(v)
 *               optional: lanes of the machine's vector and its square root
 *
 * and gets  static double fast_eval_<FS_SUFFIX>(...)  with the interface of
 * fast_eval_scalar (the parameters are undefined again at the end of this file).
 * Vectors are GCC/Clang vector extensions: lane-wise IEEE arithmetic, the very
 * operations of the scalar functions in nbsim_fast.c, so every flavour gives the
 * same bits (the build forbids contraction into FMA).  Branches of the scalar code
 * become computations of both sides and a selection by bit masks.  Vectors travel
 * by pointer between the helpers, which are always inlined.
 */

#define FS_CAT2(a, b) a##_##b
#define FS_CAT(a, b) FS_CAT2(a, b)
#define FS(name) FS_CAT(name, FS_SUFFIX)
#define FS_INLINE FS_TARGET static inline __attribute__((always_inline))

typedef double FS(vd) __attribute__((vector_size(8 * FS_LANES)));
typedef int64_t FS(vi) __attribute__((vector_size(8 * FS_LANES)));
#ifdef FS_SQRT
typedef double FS(vn) __attribute__((vector_size(8 * FS_NATIVE)));
#endif

/* a where the mask is set (all ones), else b */
FS_INLINE FS(vd) FS(sel)(FS(vi) mask, FS(vd) a, FS(vd) b)
{
    return (FS(vd))((mask & (FS(vi))a) | (~mask & (FS(vi))b));
}

/* x in every lane (an initializer list, which compilers turn into one broadcast;
 * a loop over the lanes becomes one masked insertion per lane) */
#if FS_LANES == 2
#define FS_SPLAT(x) {x, x}
#elif FS_LANES == 4
#define FS_SPLAT(x) {x, x, x, x}
#elif FS_LANES == 8
#define FS_SPLAT(x) {x, x, x, x, x, x, x, x}
#else
#error "FS_LANES must be 2, 4 or 8"
#endif

/* nonzero when any lane of the mask is set */
FS_INLINE int64_t FS(any)(FS(vi) mask)
{
    int64_t any = 0;
    int i;
    for (i = 0; i < FS_LANES; i++)
        any |= mask[i];
    return any;
}

FS_INLINE FS(vd) FS(bcast)(double x)
{
    FS(vd) v = FS_SPLAT(x);
    return v;
}

FS_INLINE FS(vd) FS(vsqrt)(FS(vd) x)
{
#ifdef FS_SQRT
    /* FS_NATIVE lanes at a time */
    int i;
    for (i = 0; i < FS_LANES; i += FS_NATIVE) {
        FS(vn) part;
        memcpy(&part, (char *)&x + 8 * i, sizeof part);
        part = FS_SQRT(part);
        memcpy((char *)&x + 8 * i, &part, sizeof part);
    }
    return x;
#else
    int i;
    for (i = 0; i < FS_LANES; i++)
        x[i] = sqrt(x[i]);
    return x;
#endif
}

FS_INLINE FS(vd) FS(round_int)(FS(vd) x)
{
    return (x + MAGIC) - MAGIC;
}

FS_INLINE FS(vd) FS(ceil_int)(FS(vd) y)
{
    FS(vd) r = (y + MAGIC) - MAGIC;
    return r + FS(sel)(r < y, FS(bcast)(1.0), FS(bcast)(0.0));
}

FS_INLINE FS(vd) FS(two_cospi)(FS(vd) d)
{
    FS(vd) t = d * d;
    FS(vd) t2 = t * t;
    FS(vd) t4 = t2 * t2;
    FS(vd) q0 = TWO_COSPI[0] + TWO_COSPI[1] * t;
    FS(vd) q1 = TWO_COSPI[2] + TWO_COSPI[3] * t;
    FS(vd) q2 = TWO_COSPI[4] + TWO_COSPI[5] * t;
    return 2.0 + t * ((q0 + q1 * t2) + q2 * t4);
}

/* sinpi_small restated on vectors, like every helper here (C has no function generic
 * over double and vector types) */
FS_INLINE FS(vd) FS(sinpi_small)(FS(vd) u)
{
    FS(vd) x = M_PI * u;
    FS(vd) x2 = x * x;
    FS(vd) p = FS(bcast)(-1.0 / 1307674368000.0);
    p = p * x2 + 1.0 / 6227020800.0;
    p = p * x2 - 1.0 / 39916800.0;
    p = p * x2 + 1.0 / 362880.0;
    p = p * x2 - 1.0 / 5040.0;
    p = p * x2 + 1.0 / 120.0;
    p = p * x2 - 1.0 / 6.0;
    return x + x * x2 * p;
}

/* axis_parts for an axis on the two-sine path (n > NCHEB or NaN) */
FS_INLINE void FS(axis_parts)(FS(vd) x, double n, FS(vd) *num, FS(vd) *den)
{
    FS(vd) d = x - FS(round_int)(x);
    FS(vd) v = n * d;
    FS(vd) sd, sv;
    FS(vi) zero;
    v = v - FS(round_int)(v);
    sd = FS(sinpi_small)(d);
    sv = FS(sinpi_small)(v);
    zero = (sd == 0.0);
    *num = FS(sel)(zero, FS(bcast)(n), sv);
    *den = FS(sel)(zero, FS(bcast)(1.0), sd);
}

/* square_latt; (x / 1.0 is x, so the division is skipped when every axis's
 * denominator is 1).  Axes on the Chebyshev path run their recurrences in one
 * loop, so that the three dependency chains overlap. */
FS_INLINE FS(vd) FS(square_latt)(const fast_shape_t *P, const int64_t *steps,
                                 FS(vd) h, FS(vd) k, FS(vd) l, int divide)
{
    const FS(vd) one = FS(bcast)(1.0);
    const double N[3] = {P->Na, P->Nb, P->Nc};
    FS(vd) x[3], num[3], den[3], t[3], u0[3];
    int64_t i, most = 0;
    int a;
    x[0] = h;
    x[1] = k;
    x[2] = l;
    for (a = 0; a < 3; a++) {
        num[a] = one;
        den[a] = one;
        t[a] = one;
        u0[a] = one;
        if (N[a] <= 1.0)
            continue;
        if (N[a] <= NCHEB) {
            t[a] = FS(two_cospi)(x[a] - FS(round_int)(x[a]));
            num[a] = t[a];
            if (steps[a] > most)
                most = steps[a];
        } else {
            FS(axis_parts)(x[a], N[a], &num[a], &den[a]);
        }
    }
    if (steps[0] == most && steps[1] == most && steps[2] == most) {
        /* the common case (-N): three chains side by side */
        for (i = 0; i < most; i++) {
            FS(vd) u2a = t[0] * num[0] - u0[0];
            FS(vd) u2b = t[1] * num[1] - u0[1];
            FS(vd) u2c = t[2] * num[2] - u0[2];
            u0[0] = num[0];
            u0[1] = num[1];
            u0[2] = num[2];
            num[0] = u2a;
            num[1] = u2b;
            num[2] = u2c;
        }
    } else {
        for (a = 0; a < 3; a++)
            for (i = 0; i < steps[a]; i++) {
                FS(vd) u2 = t[a] * num[a] - u0[a];
                u0[a] = num[a];
                num[a] = u2;
            }
    }
    if (divide)
        return (num[0] * num[1] * num[2]) / (den[0] * den[1] * den[2]);
    return num[0] * num[1] * num[2];
}

/* square_latt of two vectors when all three axes take the Chebyshev path with the
 * same number of steps (the usual -N): six independent chains written side by
 * side, which the processor overlaps. */
FS_INLINE void FS(square_latt_cheb2)(int64_t steps, const FS(vd) *x, FS(vd) *f)
{
    FS(vd) t[3 * FS_ILP], u0[3 * FS_ILP], u1[3 * FS_ILP];
    int64_t i;
    int a;
    for (a = 0; a < 3 * FS_ILP; a++) {
        t[a] = FS(two_cospi)(x[a] - FS(round_int)(x[a]));
        u0[a] = FS(bcast)(1.0);
        u1[a] = t[a];
    }
    for (i = 0; i < steps; i++)
        for (a = 0; a < 3 * FS_ILP; a++) {
            FS(vd) u2 = t[a] * u1[a] - u0[a];
            u0[a] = u1[a];
            u1[a] = u2;
        }
    for (a = 0; a < FS_ILP; a++)
        f[a] = u1[3 * a] * u1[3 * a + 1] * u1[3 * a + 2];
}

/* sinc3_fast; lanes at or above SINC3_LIBM_ABOVE (or NaN) are wrong and flagged
 * in *redo */
FS_INLINE FS(vd) FS(sinc3)(FS(vd) x, FS(vi) *redo)
{
    FS(vd) t, p, series, tt, n, r, ps, pc, s, c, sx, cx, direct;
    FS(vi) q, odd;
    int i;

    tt = x * TWO_OVER_PI + MAGIC;
    n = tt - MAGIC;
    r = ((x - n * PIO2_1) - n * PIO2_2) - n * PIO2_3;
    t = r * r;
    ps = FS(bcast)(SIN_R[5]);
    pc = FS(bcast)(COS_R[5]);
    for (i = 4; i >= 0; i--) {
        ps = ps * t + SIN_R[i];
        pc = pc * t + COS_R[i];
    }
    s = r + r * t * ps;
    c = 1.0 + t * pc;
    /* n & 3 from the low bits of tt = 1.5 * 2**52 + n */
    q = (FS(vi))tt & 3;
    odd = (q & 1) != 0;
    sx = FS(sel)(odd, c, s);
    cx = FS(sel)(odd, s, c);
    sx = FS(sel)((q & 2) != 0, -sx, sx);
    cx = FS(sel)(((q + 1) & 2) != 0, -cx, cx);
    direct = 3.0 * (sx / x - cx) / (x * x);

    *redo = ~(x < SINC3_LIBM_ABOVE);     /* (NaN included) */
    if (!FS(any)(x < SINC3_SERIES_BELOW))
        return direct;
    t = x * x;
    p = FS(bcast)(SINC3_SERIES[0]);
    for (i = 1; i < 8; i++)
        p = p * t + SINC3_SERIES[i];
    series = 1.0 + t * p;
    return FS(sel)(x < SINC3_SERIES_BELOW, series, direct);
}

/* exp_fast on [EXP_POLY_MIN, EXP_POLY_MAX]; other lanes are flagged in *redo */
FS_INLINE FS(vd) FS(exp)(FS(vd) a, FS(vi) *redo)
{
    const FS(vd) magic = FS(bcast)(MAGIC);
    FS(vd) tt = a * LOG2E + MAGIC;
    FS(vd) kd = tt - MAGIC;
    FS(vd) r = (a - kd * LN2_HI) - kd * LN2_LO;
    FS(vd) r2 = r * r;
    FS(vd) r4 = r2 * r2;
    FS(vd) q0 = EXP_R[0] + EXP_R[1] * r;
    FS(vd) q1 = EXP_R[2] + EXP_R[3] * r;
    FS(vd) q2 = EXP_R[4] + EXP_R[5] * r;
    FS(vd) q3 = EXP_R[6] + EXP_R[7] * r;
    FS(vd) q4 = EXP_R[8] + EXP_R[9] * r;
    FS(vd) p = ((q0 + q1 * r2) + (q2 + q3 * r2) * r4) + q4 * (r4 * r4);
    FS(vi) scale;
    p = 1.0 + r + r * r * p;
    /* 2**k from k = bits(tt) - bits(1.5 * 2**52): exact, as ldexp for normal results */
    scale = (((FS(vi))tt - (FS(vi))magic) + 1023) << 52;
    *redo = ~((a >= EXP_POLY_MIN) & (a <= EXP_POLY_MAX));
    return p * (FS(vd))(scale & ~*redo);
}

/* fast_nearest_c lane-wise (NaN fails both comparisons: INT_MIN) */
FS_INLINE FS(vd) FS(nearest_c)(FS(vd) x)
{
    FS(vd) y = x - 0.5;
    FS(vi) in_int = (y > -2147483649.0) & (y <= 2147483647.0);
    return FS(sel)(in_int, FS(ceil_int)(y), FS(bcast)(-2147483648.0));
}

/* h - h0 with the exact path's nearest whole indices, for the three indices */
FS_INLINE void FS(offsets)(FS(vd) h, FS(vd) k, FS(vd) l, FS(vd) *dh, FS(vd) *dk, FS(vd) *dl)
{
    *dh = h - FS(nearest_c)(h);
    *dk = k - FS(nearest_c)(k);
    *dl = l - FS(nearest_c)(l);
}

FS_INLINE FS(vd) FS(rad_star_sqr)(const fast_shape_t *P, FS(vd) dh, FS(vd) dk, FS(vd) dl)
{
    const double *rs = P->rs;
    FS(vd) dhx = dh * rs[0] + dk * rs[3] + dl * rs[6];
    FS(vd) dhy = dh * rs[1] + dk * rs[4] + dl * rs[7];
    FS(vd) dhz = dh * rs[2] + dk * rs[5] + dl * rs[8];
    return (dhx * dhx + dhy * dhy + dhz * dhz) * P->Na * P->Na * P->Nb * P->Nb
           * P->Nc * P->Nc;
}

/* Miller indices of the entries j .. j + FS_LANES - 1 (fast_hkl, lane-wise).  The
 * entries of one source are consecutive, so a vector holds few sources: each
 * one's scattering vector is broadcast to its lanes. */
FS_INLINE void FS(hkl)(const fast_table_t *T, const double *sc, int64_t n, int64_t j,
                       FS(vd) *h, FS(vd) *k, FS(vd) *l)
{
    const double *x = T->x + (j / FAST_BLOCK) * 9 * FAST_BLOCK + j % FAST_BLOCK;
    const int64_t st = FAST_BLOCK;
    int64_t s = T->src[j], last = T->src[j + FS_LANES - 1];
    FS(vd) sx = FS(bcast)(sc[3 * s]), sy = FS(bcast)(sc[3 * s + 1]);
    FS(vd) sz = FS(bcast)(sc[3 * s + 2]);
    FS(vd) a0, a1, a2;
    if (last > n - 1)
        last = n - 1;       /* lanes past the batch: any finite values will do */
    if (T->M >= FS_LANES) {
        /* at most two sources: choose without branching */
        const int64_t next = s + 1 <= last ? s + 1 : s;
        FS(vi) srcv, later;
        memcpy(&srcv, T->src + j, sizeof srcv);
        later = (srcv > s);
        sx = FS(sel)(later, FS(bcast)(sc[3 * next]), sx);
        sy = FS(sel)(later, FS(bcast)(sc[3 * next + 1]), sy);
        sz = FS(sel)(later, FS(bcast)(sc[3 * next + 2]), sz);
    } else if (last > s) {
        FS(vi) srcv;
        memcpy(&srcv, T->src + j, sizeof srcv);
        for (s = s + 1; s <= last; s++) {
            FS(vi) here = (srcv == s);
            sx = FS(sel)(here, FS(bcast)(sc[3 * s]), sx);
            sy = FS(sel)(here, FS(bcast)(sc[3 * s + 1]), sy);
            sz = FS(sel)(here, FS(bcast)(sc[3 * s + 2]), sz);
        }
    }
    memcpy(&a0, x, sizeof a0);
    memcpy(&a1, x + st, sizeof a1);
    memcpy(&a2, x + 2 * st, sizeof a2);
    *h = a0 * sx + a1 * sy + a2 * sz;
    memcpy(&a0, x + 3 * st, sizeof a0);
    memcpy(&a1, x + 4 * st, sizeof a1);
    memcpy(&a2, x + 5 * st, sizeof a2);
    *k = a0 * sx + a1 * sy + a2 * sz;
    memcpy(&a0, x + 6 * st, sizeof a0);
    memcpy(&a1, x + 7 * st, sizeof a1);
    memcpy(&a2, x + 8 * st, sizeof a2);
    *l = a0 * sx + a1 * sy + a2 * sz;
}

/* sum_squares' eight partial sums: entry j into sum j % 8, in the order of j.
 * acc holds them as FAST_SUMS / FS_LANES vectors; entries from `total` on add
 * +0.0, which changes no sum. */
#define FS_ACCS (8 / FS_LANES)

FS_INLINE void FS(accumulate)(FS(vd) *acc, FS(vd) f, int64_t j, int64_t total)
{
    f = f * f;
    if (j + FS_LANES > total) {
        FS(vd) lane;
        int i;
        for (i = 0; i < FS_LANES; i++)
            lane[i] = (double)i;
        f = FS(sel)(lane < (double)(total - j), f, FS(bcast)(0.0));
    }
    acc[(j / FS_LANES) % FS_ACCS] = acc[(j / FS_LANES) % FS_ACCS] + f;
}

FS_INLINE double FS(sum_of)(const FS(vd) *acc)
{
    double part[8];
    int a;
    for (a = 0; a < FS_ACCS; a++)
        memcpy(part + a * FS_LANES, &acc[a], sizeof acc[a]);
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

FS_TARGET
static double FS(fast_eval)(const fast_shape_t *P, const fast_table_t *T,
                            const double *sc, int64_t n, double *buf, int64_t cap,
                            int want_sum)
{
    const int64_t total = n * T->M;
    const int64_t padded = fast_capacity(total);
    double *restrict flat = buf + 3 * cap;
    const double Na = P->Na, Nb = P->Nb, Nc = P->Nc;
    const double N3 = Na * Nb * Nc;
    /* the square crystal's division is needed only with a two-sine axis */
    const int divide = !(Na <= NCHEB) || !(Nb <= NCHEB) || !(Nc <= NCHEB);
    /* recurrence steps of each axis on the Chebyshev path (0 elsewhere) */
    const int64_t steps[3] = {Na > 1.0 && Na <= NCHEB ? cheb_steps(Na) : 0,
                              Nb > 1.0 && Nb <= NCHEB ? cheb_steps(Nb) : 0,
                              Nc > 1.0 && Nc <= NCHEB ? cheb_steps(Nc) : 0};
    FS(vd) acc[FS_ACCS];
    int64_t j;
    int i;

    for (i = 0; i < FS_ACCS; i++)
        acc[i] = FS(bcast)(0.0);

    if (P->shape == NBSIM_SHAPE_SQUARE && Na > 1.0 && Na <= NCHEB
            && Nb > 1.0 && Nb <= NCHEB && Nc > 1.0 && Nc <= NCHEB
            && steps[1] == steps[0] && steps[2] == steps[0]) {
        /* two vectors at a time (padded is a multiple of FAST_PAD) */
        int v;
        for (j = 0; j < padded; j += FS_ILP * FS_LANES) {
            FS(vd) x[3 * FS_ILP], f[FS_ILP];
            for (v = 0; v < FS_ILP; v++)
                FS(hkl)(T, sc, n, j + v * FS_LANES, &x[3 * v], &x[3 * v + 1], &x[3 * v + 2]);
            for (v = 0; v < FS_ILP; v++) {
                const int64_t jv = j + v * FS_LANES;
                if (!want_sum) {
                    memcpy(buf + jv, &x[3 * v], sizeof x[0]);
                    memcpy(buf + cap + jv, &x[3 * v + 1], sizeof x[0]);
                    memcpy(buf + 2 * cap + jv, &x[3 * v + 2], sizeof x[0]);
                }
            }
            FS(square_latt_cheb2)(steps[0], x, f);
            for (v = 0; v < FS_ILP; v++) {
                const int64_t jv = j + v * FS_LANES;
                if (want_sum)
                    FS(accumulate)(acc, f[v], jv, total);
                else
                    memcpy(flat + jv, &f[v], sizeof f[v]);
            }
        }
        return want_sum ? FS(sum_of)(acc) : 0.0;
    }

    for (j = 0; j < padded; j += FS_LANES) {
        FS(vd) h, k, l, f, dh, dk, dl;
        FS(vi) redo = {0};
        FS(hkl)(T, sc, n, j, &h, &k, &l);
        if (!want_sum) {
            memcpy(buf + j, &h, sizeof h);
            memcpy(buf + cap + j, &k, sizeof k);
            memcpy(buf + 2 * cap + j, &l, sizeof l);
        }
        switch (P->shape) {
        case NBSIM_SHAPE_SQUARE:
            f = FS(square_latt)(P, steps, h, k, l, divide);
            break;
        case NBSIM_SHAPE_ROUND: {
            FS(vd) hrad_sqr;
            FS(offsets)(h, k, l, &dh, &dk, &dl);
            hrad_sqr = dh * dh * Na * Na + dk * dk * Nb * Nb + dl * dl * Nc * Nc;
            f = N3 * ROUND_SCALE * FS(sinc3)(M_PI * FS(vsqrt)(hrad_sqr * P->fudge), &redo);
            break;
        }
        case NBSIM_SHAPE_GAUSS:
            FS(offsets)(h, k, l, &dh, &dk, &dl);
            f = N3 * FS(exp)(-(FS(rad_star_sqr)(P, dh, dk, dl) / 0.63 * P->fudge), &redo);
            break;
        default: {
            FS(vd) rss;
            FS(offsets)(h, k, l, &dh, &dk, &dl);
            rss = FS(rad_star_sqr)(P, dh, dk, dl);
            f = N3 * FS(sel)(rss * P->fudge < 0.3969, FS(bcast)(1.0), FS(bcast)(0.0));
            break;
        }
        }
        /* lanes whose argument is outside the polynomials' range: libm, as scalar */
        if (FS(any)(redo))
            for (i = 0; i < FS_LANES; i++)
                if (redo[i])
                    f[i] = shape_latt(P, h[i], k[i], l[i]);
        if (want_sum)
            FS(accumulate)(acc, f, j, total);
        else
            memcpy(flat + j, &f, sizeof f);
    }
    return want_sum ? FS(sum_of)(acc) : 0.0;
}

/* this flavour's parameters too, so that the next inclusion defines its own */
#undef FS_SUFFIX
#undef FS_LANES
#undef FS_TARGET
#undef FS_ILP
#undef FS_SQRT
#undef FS_NATIVE
#undef FS_ACCS
#undef FS_SPLAT
#undef FS_INLINE
#undef FS
#undef FS_CAT
#undef FS_CAT2
