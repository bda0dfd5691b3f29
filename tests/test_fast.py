"""-fast: accuracy against parity mode as the README states, on mixes of every feature,
and the polynomial pieces (which the engines share bit for bit, see
tests/test_c_engine.py) element by element."""
import math
import os
from fractions import Fraction

import numpy as np
import pytest

from nbsim.api import render
from nbsim.cli import config_from_args
from nbsim.engines import params as P
from nbsim.plan import make_plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDE = os.path.join(ROOT, "tests", "golden", "inputs", "wide.hkl")
CUBIC = os.path.join(ROOT, "tests", "golden", "inputs", "cubic.hkl")

BASE = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -default_F 100 "
        "-detpixels 32 -pixel 0.4 -distance 100 -noprogress -seed 1").split()
MOSAIC = "-mosaic 0.5 -mosaic_dom 4 -mosaic_seed 42 "
DIV = "-hdivrange 0.3 -vdivrange 0.3 -hdivsteps 2 -vdivsteps 2 -square_div "
THICK = "-detector_thick 100 -detector_abs 300 -thicksteps 2 "

# every spot shape with the features that change how -fast evaluates and sums
# (batches, per-term factors, tables, interpolation, the -c_parity first loop)
MIXES = {
    "square-W2-like": "-N 5 -oversample 2 " + MOSAIC + DIV,
    "square-hkl-thick": "-N 4 -hkl %s -nointerpolate -oversample_thick " % WIDE + THICK + MOSAIC,
    "square-interpolate-phi-c_parity": "-N 5 -hkl %s -interpolate -phi 0 -osc 2 -phisteps 3 "
                                       "-c_parity " % WIDE + MOSAIC,
    "square-large-and-unit-N": "-Na 1 -Nb 20 -Nc 7 -dispersion 2 -dispsteps 3 " + MOSAIC,
    "round-divergence-dispersion": "-N 6 -round_xtal -dispersion 1 -dispsteps 2 " + DIV,
    "round-interpolate-polar": "-N 5 -round_xtal -hkl %s -interpolate -oversample 2 "
                               "-oversample_polar " % WIDE + MOSAIC,
    "round-large-N-fudge": "-N 40 -round_xtal -fudge 0.3 " + MOSAIC,
    "gauss-hkl-omega-water": "-N 5 -gauss_xtal -hkl %s -nointerpolate -oversample 2 "
                             "-oversample_omega -water 50 " % CUBIC + MOSAIC,
    "gauss-interpolate-thick": "-N 6 -gauss_xtal -fudge 2 -hkl %s -interpolate "
                               "-oversample_thick " % WIDE + THICK + DIV,
    "tophat-divergence-dmin": "-N 6 -tophat_spots -dmin 8 " + MOSAIC + DIV,
    "tophat-interpolate-curved": "-N 5 -tophat_spots -hkl %s -interpolate -curved_det "
                                 "-oversample 2 " % WIDE + MOSAIC,
}


def _image(args, engine):
    return render(make_plan(config_from_args(args)[0]), engine=engine, threads=2)


@pytest.mark.parametrize("name", sorted(MIXES))
def test_fast_matches_parity_within_stated_accuracy(name):
    args = BASE + MIXES[name].split()
    exact = _image(args, "auto")
    fast = _image(args + ["-fast"], "auto")
    assert exact.messages == fast.messages == []   # interpolation never switched off
    e = exact.image.astype(np.float64)
    f = fast.image.astype(np.float64)
    assert np.count_nonzero(e) > e.size // 8     # (top-hat spots leave dark pixels)
    r = np.corrcoef(e.ravel(), f.ravel())[0, 1]
    assert r >= 1.0 - 1e-9, r
    assert abs(f.sum() - e.sum()) <= 1e-9 * e.sum()
    # every pixel within a part in a million of its parity value (zeros stay zeros)
    assert np.all(np.abs(f - e) <= 1e-6 * np.abs(e)), np.max(np.abs(f - e) / np.abs(e))


# ---------------------------------------------------------------------------
# the pieces, element by element (the Numba kernel's functions define them; the C
# engine's flavours reproduce them bit for bit)

nk = pytest.importorskip("nbsim.engines.numba_kernel")


def _fp(N, fudge, recip):
    fp = np.zeros(nk._F_N_FP)
    fp[nk._F_FP_NA], fp[nk._F_FP_NB], fp[nk._F_FP_NC] = N
    fp[nk._F_FP_FUDGE] = fudge
    fp[nk._F_FP_AS:] = np.asarray(recip).ravel()
    return fp


def _c_nearest(x):
    """The exact path's nearest whole index: (int)ceil(x - 0.5) as the reference's
    x86-64 build converts it (INT_MIN for NaN and outside the int range)."""
    if x != x:
        return -2147483648
    c = math.ceil(x - 0.5) if math.isfinite(x) else 2 ** 63
    return c if -2147483648 <= c <= 2147483647 else -2147483648


def _exact_latt(shape, h, k, l, N, fudge, recip):
    """F_latt as the exact path computes it (libm)."""
    Na, Nb, Nc = N
    if shape == P.SHAPE_SQUARE:
        f = 1.0
        for x, n in ((h, Na), (k, Nb), (l, Nc)):
            if n > 1:
                f *= nk._sincg(math.pi * x, n)
        return f
    h0, k0, l0 = (_c_nearest(v) for v in (h, k, l))
    dh, dk, dl = h - h0, k - k0, l - l0
    if shape == P.SHAPE_ROUND:
        hrad_sqr = dh * dh * Na * Na + dk * dk * Nb * Nb + dl * dl * Nc * Nc
        return Na * Nb * Nc * 0.723601254558268 * nk._sinc3(math.pi * math.sqrt(hrad_sqr * fudge))
    a, b, c = recip
    d = [dh * a[i] + dk * b[i] + dl * c[i] for i in range(3)]
    rad_star_sqr = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]) * Na * Na * Nb * Nb * Nc * Nc
    if shape == P.SHAPE_GAUSS:
        return Na * Nb * Nc * math.exp(-(rad_star_sqr / 0.63 * fudge))
    return Na * Nb * Nc * (1.0 if rad_star_sqr * fudge < 0.3969 else 0.0)


RECIP = [[0.0143, 0.001, -0.002], [0.0, 0.0125, 0.003], [0.001, 0.0, 0.0111]]


@pytest.mark.parametrize("shape,N,fudge", [
    (P.SHAPE_SQUARE, (5.0, 5.0, 5.0), 1.0), (P.SHAPE_SQUARE, (2.0, 16.0, 9.0), 1.0),
    (P.SHAPE_SQUARE, (17.0, 1.0, 40.0), 1.0), (P.SHAPE_ROUND, (5.0, 6.0, 7.0), 1.0),
    (P.SHAPE_ROUND, (40.0, 40.0, 40.0), 0.3), (P.SHAPE_GAUSS, (5.0, 5.0, 5.0), 1.0),
    (P.SHAPE_GAUSS, (12.0, 9.0, 15.0), 0.2), (P.SHAPE_TOPHAT, (6.0, 6.0, 6.0), 1.0)])
def test_fast_lattice_factor_elementwise(shape, N, fudge):
    r = np.random.default_rng(7)
    hkl = np.concatenate([r.uniform(-30, 30, (4000, 3)),
                          np.round(r.uniform(-30, 30, (500, 3))) + r.normal(0, 0.02, (500, 3))])
    fp = _fp(N, fudge, RECIP)
    fast = np.array([nk._fast_latt(shape, h, k, l, fp) for h, k, l in hkl])
    exact = np.array([_exact_latt(shape, h, k, l, N, fudge, RECIP) for h, k, l in hkl])
    peak = N[0] * N[1] * N[2]
    if shape == P.SHAPE_SQUARE:
        fast, exact = fast ** 2, exact ** 2     # -fast's square factor is exact up to sign
        peak = peak ** 2
    if shape == P.SHAPE_TOPHAT:
        # a comparison: the exact arithmetic, so the exact bits
        assert np.array_equal(fast, exact)
        return
    # within 1e-9 of each value, or of the peak for values near a zero of the factor
    assert np.all(np.abs(fast - exact) <= 1e-9 * np.maximum(np.abs(exact), 1e-3 * peak))
    # ... and computed another way (not the libm path under another name)
    assert np.count_nonzero(fast != exact) > len(hkl) // 20


# indices around and beyond the ends of C's int, where the reference's nearest index
# becomes INT_MIN (and -1.5 * 2**52, where rounding by adding 1.5 * 2**52 fails)
BEYOND_INT = [2147483647.4, 2147483647.5, 2147483647.6, -2147483648.4, -2147483648.5,
              -2147483648.6, 3.0e9 + 0.25, -3.0e9, -6755399441055744.0, 1.0e300, float("nan")]


@pytest.mark.parametrize("shape", [P.SHAPE_ROUND, P.SHAPE_GAUSS, P.SHAPE_TOPHAT])
def test_fast_lattice_factor_uses_the_references_int_indices(shape):
    """Far from any real spot, but the exact path's arithmetic all the same: h - INT_MIN
    where the nearest index leaves the int range."""
    N, fudge = (5.0, 6.0, 7.0), 0.8
    fp = _fp(N, fudge, RECIP)
    for h in BEYOND_INT:
        for hkl in ((h, 0.2, 0.1), (0.1, h, 0.2), (0.2, 0.1, h)):
            fast = nk._fast_latt(shape, *hkl, fp)
            exact = _exact_latt(shape, *hkl, N, fudge, RECIP)
            if exact != exact:
                assert fast != fast, hkl
            else:
                assert abs(fast - exact) <= 1e-9 * max(abs(exact), 1e-3 * 210.0), (hkl, fast, exact)
    # inside the int range the index is the nearest integer (the factor near its peak)
    peak = nk._fast_latt(shape, 2147483000.0, 0.0, 0.0, fp)
    assert peak == pytest.approx(210.0 * (0.723601254558268 if shape == P.SHAPE_ROUND else 1.0))
    for h in BEYOND_INT[:-1]:
        assert nk._nearest_c(h) == _c_nearest(h), h
    assert nk._nearest_c(float("nan")) == -2147483648.0


def _sinc3_series(x):
    """3 (sin x/x - cos x)/x**2 from its series in exact rational arithmetic."""
    X = Fraction(x)
    total, term_sign = Fraction(0), 1
    for kk in range(1, 15):
        total += term_sign * Fraction(6 * kk, math.factorial(2 * kk + 1)) * X ** (2 * kk - 2)
        term_sign = -term_sign
    return float(total)


def test_sinc3_fast_series_polynomials_and_libm_ranges():
    xs = np.concatenate([[0.0, 1e-300, 1e-8, 0.3, 0.999999, 1.0, 1.5, 4.4934094579, 50.0],
                         np.random.default_rng(1).uniform(0, 300, 2000)])
    for x in xs:
        got = nk._sinc3_fast(x)
        if x < 2.0:
            want = _sinc3_series(x)
        else:
            want = nk._sinc3(x)    # accurate here: no cancellation
        scale = 3.0 / (x * x) if x > 3.0 else 1.0   # the function's envelope
        assert abs(got - want) <= 1e-13 * scale, (x, got, want)
    # beyond the reduction's range, and for NaN, libm's own formula (same bits)
    for x in (1e5, 3.7e7, float("inf")):
        assert nk._sinc3_fast(x) == nk._sinc3(x) or (math.isnan(nk._sinc3(x))
                                                       and math.isnan(nk._sinc3_fast(x)))
    assert math.isnan(nk._sinc3_fast(float("nan")))


def test_exp_fast_accuracy_and_underflow_as_libm():
    xs = np.concatenate([np.linspace(-707.0, 707.0, 20001), [0.0, -0.0, 1e-300, -0.5]])
    for x in xs:
        got, want = nk._exp_fast(x), math.exp(x)
        assert abs(got - want) <= 4e-16 * want, (x, got, want)
    # outside the polynomial's range: libm's bits, and 0 exactly where libm gives 0
    for x in np.concatenate([np.linspace(-760.0, -707.001, 5001), [708.0, 709.7, 710.0]]):
        try:
            want = math.exp(x)
        except OverflowError:
            want = float("inf")
        assert nk._exp_fast(x) == want, x
    assert nk._exp_fast(-746.0) == 0.0 == math.exp(-746.0)
    assert math.isnan(nk._exp_fast(float("nan")))


@pytest.mark.parametrize("n", [2.0, 3.0, 5.0, 10.0, 16.0, 17.0, 25.0])
def test_axis_factor_equals_the_sine_ratio(n):
    xs = np.random.default_rng(int(n)).uniform(-40, 40, 3000)
    for x in xs:
        num, den = nk._axis_parts(x, n)
        want = (math.sin(math.pi * x * n) / math.sin(math.pi * x)) ** 2
        assert abs((num / den) ** 2 - want) <= 1e-9 * max(want, 1e-3 * n * n), (x, n)


def test_tricubic_fast_equals_the_exact_interpolation():
    r = np.random.default_rng(3)
    F = r.uniform(10, 300, (12, 12, 12))
    for h, k, l in r.uniform(-3.9, 4.9, (2000, 3)):
        fast = nk._tricubic_fast(F, -5, -5, -5, h, k, l)
        exact = nk._tricubic(F, -5, -5, -5, h, k, l)
        assert abs(fast - exact) <= 1e-12 * 300, (h, k, l, fast, exact)
    # at the nodes, the table's own values
    assert nk._tricubic_fast(F, -5, -5, -5, 1.0, 2.0, -3.0) == F[6, 7, 2]


def test_fast_sum_order_is_fixed():
    """Eight interleaved partial sums, then pairs (the C flavours add them so too)."""
    v = np.random.default_rng(2).standard_normal(21)
    acc = [0.0] * 8
    for j, x in enumerate(v):
        acc[j % 8] += x * x
    want = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    assert nk._sum_squares(v, len(v)) == want


def test_polynomial_constants_are_the_derived_ones():
    """csrc/fast_coeffs.py derives the constants both engines hold (needs mpmath, a
    development tool that nbsim itself does not depend on)."""
    pytest.importorskip("mpmath", reason="csrc/fast_coeffs.py computes in mpmath")
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "fast_coeffs", os.path.join(ROOT, "csrc", "fast_coeffs.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, value in mod.derive().items():
        assert getattr(nk, "_" + name) == value, name


@pytest.mark.parametrize("extra", ["", "-round_xtal -hkl %s -interpolate" % WIDE])
def test_printout_under_fast_shows_the_pixels_last_evaluation(extra):
    """-printout's values under -fast: the same indices and cell as parity mode, and
    the F_latt of -fast (equal up to its sign and far below float precision)."""
    from nbsim.api import TRACE_FIELDS
    args = BASE + ("-N 5 " + MOSAIC + extra).split()
    got = {}
    for mode in ("parity", "fast"):
        plan = make_plan(config_from_args(args + (["-fast"] if mode == "fast" else []))[0])
        got[mode] = dict(zip(TRACE_FIELDS, render(plan, trace=True).trace[12 * 32 + 10]))
    for name in ("h", "k", "l", "h0", "k0", "l0", "ax", "by", "cz", "polar", "omega"):
        assert got["fast"][name] == got["parity"][name], name
    assert got["parity"]["F_latt"] != 0.0 and got["parity"]["I"] > 0.0
    assert abs(abs(got["fast"]["F_latt"]) - abs(got["parity"]["F_latt"])) \
        <= 1e-9 * abs(got["parity"]["F_latt"])
    assert got["fast"]["F_cell"] == pytest.approx(got["parity"]["F_cell"], rel=1e-12)


def test_printout_under_fast_equals_parity_with_culled_pixels(capsys, tmp_path, monkeypatch):
    """A top-hat crystal's -fast arithmetic is the exact one, so -printout under -fast
    prints what parity mode prints, line for line, also where -dmin culls whole pixels
    and rows (their values carry over from the pixels before, across rows and blocks)."""
    from nbsim import cli
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBSIM_BLOCK_ROWS", "3")
    args = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -default_F 100 -N 6 "
            "-tophat_spots -dmin 14 -detpixels 14 -pixel 0.5 -distance 40 -seed 1 "
            "-floatfile f.bin -nonoise -nopgm -printout " + MOSAIC).split()
    out = {}
    for mode in ("parity", "fast"):
        assert cli.main(args + (["-fast"] if mode == "fast" else [])) == 0
        out[mode] = capsys.readouterr().out
    hkl = [line for line in out["fast"].splitlines() if line.startswith("hkl=")]
    assert len(hkl) == 14 * 14
    # -dmin 14 culls rows 0 and 1 whole and the ends of the rows below; the centre is
    # rendered. Pixel (0, 3) is culled and shows what row 2 left.
    stol = [float(line.split("stol = ")[1].split()[0])
            for line in out["fast"].splitlines() if " : stol = " in line]
    culled = [x > 0.5 / 14e-10 for x in stol]
    assert all(culled[:28]) and culled[3 * 14] and not culled[7 * 14 + 7]
    assert hkl[3 * 14] == hkl[3 * 14 - 1] and hkl[3 * 14] != "hkl= 0.000000 0.000000 0.000000" \
        "  hkl0= 0 0 0"
    assert out["fast"] == out["parity"]
