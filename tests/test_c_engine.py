"""The C engine (nbsim._nbsim_c) gives the same bits as the Numba engine.

* the parameter layout in csrc/nbsim_kernel.h equals nbsim/engines/params.py;
* small synthetic plans covering every kernel feature render bit-identically with
  ``engine="c"`` (1 and 2 threads) and ``engine="numba"``, with and without -fast
  (every -fast path, and every SIMD flavour of its lattice sum this CPU has);
* every golden nanoBragg.c case is reproduced through the C engine, with the C
  statistics and noise helpers standing in for the Numba ones (the configuration
  nbsim runs in when Numba is missing);
* the C helpers (statistics, integer images, random numbers, noise) equal their
  Numba counterparts on random data.

Build the extension first: ``python csrc/build_ffi.py``.
"""
import dataclasses
import os
import re
import struct

import numpy as np
import pytest

from nbsim.engines import c_engine
from nbsim.engines import params as P

_OK, _WHY = c_engine.available()
if not _OK:
    pytest.skip("C engine not available (%s); build it with: python csrc/build_ffi.py"
                % _WHY, allow_module_level=True)

from nbsim import api, noise, rng, stats  # noqa: E402
from nbsim._jit import HAVE_NUMBA  # noqa: E402
from nbsim.cli import config_from_args  # noqa: E402
from nbsim.engines import registry  # noqa: E402
from nbsim.plan import make_plan  # noqa: E402

import golden_cases as G  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
CUBIC = os.path.join(G.INPUTS, "cubic.hkl")
WIDE = os.path.join(G.INPUTS, "wide.hkl")
SPARSE = os.path.join(G.INPUTS, "sparse.hkl")

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="the reference here is the Numba "
                                 "engine, and Numba is not installed")


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _same(x, y):
    """Equal values, floats compared by their bits (so NaN == NaN, 0.0 != -0.0)."""
    if isinstance(x, (tuple, list)):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    if isinstance(x, (float, np.floating)):
        if np.asarray(x).dtype == np.float32:
            return np.asarray(y).dtype == np.float32 and \
                struct.pack("<f", x) == struct.pack("<f", y)
        return struct.pack("<d", float(x)) == struct.pack("<d", float(y))
    return x == y


# ---------------------------------------------------------------------------
# the header mirrors params.py

def _header_constants(path):
    with open(path) as fh:
        text = fh.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"\b(NBSIM_[A-Z0-9_]+)\s*=\s*(\d+)", text)}, text


@pytest.mark.skipif(not os.path.isdir(CSRC), reason="no csrc/ next to the tests")
def test_header_layout_matches_params():
    consts, text = _header_constants(os.path.join(CSRC, "nbsim_kernel.h"))
    want = {"NBSIM_I_" + n: i for i, n in enumerate(P.INT_NAMES)}
    want.update({"NBSIM_D_" + n: i for i, n in enumerate(P.REAL_NAMES)})
    want.update(NBSIM_N_INTS=P.N_INTS, NBSIM_N_REALS=P.N_REALS,
                NBSIM_SHAPE_SQUARE=P.SHAPE_SQUARE, NBSIM_SHAPE_ROUND=P.SHAPE_ROUND,
                NBSIM_SHAPE_GAUSS=P.SHAPE_GAUSS, NBSIM_SHAPE_TOPHAT=P.SHAPE_TOPHAT)
    got = {k: v for k, v in consts.items()
           if k.startswith(("NBSIM_I_", "NBSIM_D_", "NBSIM_SHAPE_", "NBSIM_N_"))
           and k not in ("NBSIM_N_VECS",)}
    assert got == want
    # "no such pixel" is int64's maximum on both sides
    assert re.search(r"#define\s+NBSIM_NO_PIXEL\s+INT64_MAX\b", text)
    assert P.NO_PIXEL == np.iinfo(np.int64).max
    # the rows of vecs, as api.pack_plan stacks them
    rows = ["FDET", "SDET", "ODET", "PIX0", "BEAM", "POLAR_AXIS", "A_STAR", "B_STAR", "C_STAR"]
    assert [consts["NBSIM_V_" + r] for r in rows] == list(range(9))
    assert consts["NBSIM_N_VECS"] == 9


@pytest.mark.skipif(not os.path.isdir(CSRC), reason="no csrc/ next to the tests")
def test_aux_header_poisson_slots_match_rng():
    consts, _ = _header_constants(os.path.join(CSRC, "nbsim_aux.h"))
    assert consts == {"NBSIM_POIS_SQ": rng.POIS_SQ, "NBSIM_POIS_LOGMEAN": rng.POIS_LOGMEAN,
                      "NBSIM_POIS_G": rng.POIS_G, "NBSIM_POIS_LASTMEAN": rng.POIS_LASTMEAN}


def test_compiled_layout_matches_params():
    n = c_engine.ffi.new("int64_t[2]")
    c_engine.lib.nbsim_layout(n, n + 1)
    assert (n[0], n[1]) == (P.N_INTS, P.N_REALS)
    assert registry.available()["c"] == (True, "")


# ---------------------------------------------------------------------------
# synthetic plans: C == Numba, bit for bit

TRIC = "-cell 70 80 90 75 85 95 -default_F 100 -lambda 1.0 -pixel 0.1 "
CUBE = "-cell 100 100 100 90 90 90 -lambda 1.0 -pixel 0.1 "

PLANS = {
    "plain": TRIC + "-N 5 -distance 100 -detpixels 48",
    "oversample_omega_polar_thick": TRIC + "-N 5 -distance 80 -detpixels 40 -oversample 2 "
        "-oversample_omega -oversample_polar -oversample_thick -detector_abs 500 "
        "-detector_thick 450 -thicksteps 2",
    "oversample3": TRIC + "-N 5 -distance 100 -detpixels 32 -oversample 3",
    "thicksteps_detector_abs": TRIC + "-N 5 -distance 100 -detpixels 48 -detector_abs 300 "
        "-detector_thick 200 -thicksteps 3 -twotheta 20",
    "curved_det": CUBE + "-default_F 100 -N 4 -curved_det -distance 50 -detpixels 48",
    "point_pixel": CUBE + "-default_F 100 -N 4 -point_pixel -distance 100 -detpixels 48",
    "round_xtal": TRIC + "-N 6 -round_xtal -fudge 1.0 -distance 100 -detpixels 48",
    "gauss_xtal": TRIC + "-N 6 -gauss_xtal -fudge 1.2 -distance 100 -detpixels 48",
    "tophat_spots": TRIC + "-N 6 -tophat_spots -distance 100 -detpixels 48",
    "interpolate_out_of_range": CUBE + "-hkl %s -N 4 -interpolate -distance 60 -detpixels 64"
        % CUBIC,
    "hkl_nearest": CUBE + "-hkl %s -N 3 -distance 80 -detpixels 48" % CUBIC,
    "dmin": CUBE + "-default_F 100 -N 4 -dmin 12.0 -distance 50 -detpixels 48",
    "roi": TRIC + "-N 5 -distance 100 -detpixels 48 -roi 5 40 8 30",
    "mosaic_phi_c_parity": CUBE + "-default_F 100 -N 5 -phi 0 -osc 0.6 -phisteps 4 "
        "-mosaic 0.5 -mosaic_dom 3 -mosaic_seed 7 -distance 100 -detpixels 40 -c_parity",
    "mosaic_phi_dmin_c_parity": CUBE + "-default_F 100 -N 5 -phi 0 -osc 0.6 -phisteps 3 "
        "-mosaic 0.5 -mosaic_dom 2 -mosaic_seed 9 -dmin 20 -distance 50 -detpixels 40 "
        "-c_parity",
    "polar_divergence_dispersion": CUBE + "-default_F 100 -N 5 -polar 0.5 -hdivrange 0.4 "
        "-vdivrange 0.4 -hdivsteps 2 -vdivsteps 2 -dispersion 1.5 -dispsteps 2 "
        "-distance 60 -detpixels 32",
    "nopolar_water_sparse": CUBE + "-hkl %s -N 5 -nopolar -water 100 -fluence 1e24 "
        "-distance 100 -detpixels 40" % SPARSE,
    "tilted_detector": CUBE + "-default_F 100 -N 5 -detector_rotx 5 -detector_roty 3 "
        "-detector_rotz 2 -twotheta 10 -distance 100 -detpixels 48",
}


def _plan(args):
    cfg = config_from_args(args.split(), warn=lambda *a, **k: None)[0]
    return make_plan(cfg)


def _masked(plan, seed=3):
    """The plan with a random mask that also hides the first rows and columns."""
    r = np.random.default_rng(seed)
    m = (r.random((plan.spixels, plan.fpixels)) > 0.3).astype(np.uint16)
    m[:2, :] = 0
    m[:, :3] = 0
    return dataclasses.replace(plan, mask=m)


def _render_all(plan):
    ref = api.render(plan, engine="numba", threads=1)
    got = [api.render(plan, engine="c", threads=t) for t in (1, 2)]
    return ref, got


def _assert_same_render(ref, got):
    img_r, omega_r, msgs_r, name_r = ref
    assert name_r == "numba"
    for img, omega, msgs, name in got:
        assert name == "c"
        assert img.dtype == np.float32 and img.shape == img_r.shape
        diff = np.count_nonzero(_bits(img) != _bits(img_r))
        assert diff == 0, "%d of %d pixels differ" % (diff, img.size)
        assert _same(omega, omega_r)
        assert msgs == msgs_r


@needs_numba
@pytest.mark.parametrize("name", sorted(PLANS))
def test_c_equals_numba(name):
    plan = _plan(PLANS[name])
    ref, got = _render_all(plan)
    _assert_same_render(ref, got)
    img = ref[0]
    assert np.count_nonzero(img) > 0
    if name == "interpolate_out_of_range":
        assert plan.interpolate and ref[2], "the interpolation did not run out of range"
    if "c_parity" in name:
        assert not np.array_equal(plan.lattice_table, plan.first_lattice_table)
    if name == "roi":
        assert not img[:8].any() and not img[:, 41:].any()


@needs_numba
@pytest.mark.parametrize("name", ["plain", "mosaic_phi_c_parity", "interpolate_out_of_range"])
def test_c_equals_numba_with_mask(name):
    plan = _masked(_plan(PLANS[name]))
    ref, got = _render_all(plan)
    _assert_same_render(ref, got)
    assert not ref[0][plan.mask == 0].any()


def test_threads_do_not_change_the_image():
    plan = _plan(PLANS["mosaic_phi_c_parity"])
    images = [api.render(plan, engine="c", threads=t)[0] for t in (1, 2, 3, None, 0)]
    for img in images[1:]:
        assert np.array_equal(_bits(img), _bits(images[0]))


def test_render_rejects_bad_arguments():
    plan = _plan(PLANS["plain"])
    ip, dp, vecs, mask = api.pack_plan(plan)
    s, f = plan.spixels, plan.fpixels
    good = dict(ip=ip, dp=dp, vecs=vecs, sources=plan.sources, lat=plan.lattice_table,
                lat_first=plan.first_lattice_table, Fhkl=plan.Fhkl, mask=mask,
                out=np.zeros((s, f), np.float32), omega_rows=np.zeros(s),
                probe_i=np.full((s, 2), -1, np.int64), probe_d=np.zeros((s, 6)))

    def call(**over):
        kw = dict(good, **over)
        c_engine.render(1, *kw.values())

    call()
    with pytest.raises(TypeError):
        call(out=np.zeros((s, f), np.float64))
    with pytest.raises(ValueError):
        call(out=np.zeros((s, f + 1), np.float32))
    with pytest.raises(ValueError):
        call(out=np.zeros((f, s), np.float32).T)        # not C-contiguous
    with pytest.raises(ValueError):
        call(ip=ip[:-1])
    with pytest.raises(TypeError):
        call(ip=ip.astype(np.int32))


# ---------------------------------------------------------------------------
# the golden corpus through the C engine and the C helpers

@pytest.fixture
def c_helpers(monkeypatch):
    """With -engine c every sequential loop must come from the C helpers too:
    make the Numba loops unusable so any stray use fails the test."""
    from nbsim.engines import numba_loops

    def refuse(*a, **k):
        raise AssertionError("a Numba loop ran on the C engine path")
    for name in ("accumulate_stats", "deviation", "to_uint16", "to_uint8", "noise_loop"):
        monkeypatch.setattr(numba_loops, name, refuse)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", G.case_names())
def test_golden_case_c_engine(name, threads, tmp_path, c_helpers):
    case = G.load_case(name)
    code, out = G.run_in_process(case, str(tmp_path),
                                 extra_args=["-engine", "c", "-threads", str(threads)])
    problems = G.compare(case, str(tmp_path), code, out)
    assert not problems, "\n".join(problems)
    if case["exit_code"] == 0:
        assert registry.active() == "c"


# ---------------------------------------------------------------------------
# helpers: C == Numba on random data

def _images(seed):
    r = np.random.default_rng(seed)
    base = (r.standard_normal((37, 53)) * 1e3 + 200).astype(np.float32)
    tiny = (r.random((20, 31)) * 1e-3).astype(np.float32)
    wild = r.standard_normal((16, 16)).astype(np.float32) * np.float32(1e20)
    wild.flat[:6] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 65535.49]
    return [base, tiny, wild]


ROIS = [(0, 10**9, 0, 10**9), (3, 40, 5, 30), (10, 5, 0, 100), (-5, 7, -1, 2)]


@needs_numba
@pytest.mark.parametrize("seed", [1, 2])
def test_statistics_helpers_match_numba(seed):
    from nbsim.engines import numba_loops
    r = np.random.default_rng(100 + seed)
    for img in _images(seed):
        mask = (r.random(img.shape) > 0.25).astype(np.uint16)
        for roi in ROIS:
            roi_arr = np.asarray(roi, dtype=np.int64)
            for has_mask, m in ((False, np.zeros((1, 1), np.uint16)), (True, mask)):
                want = numba_loops.accumulate_stats(img, roi_arr, m, has_mask)
                got = c_engine.accumulate_stats(img, roi_arr, m, has_mask)
                assert _same(tuple(want), got), (want, got)
            for avg in (0.0, 123.456, float(np.float32(img.flat[7]))):
                assert _same(tuple(numba_loops.deviation(img, roi_arr, avg)),
                             c_engine.deviation(img, roi_arr, avg))
            for scale, offset in ((1.0, 40.0), (55000.0 / 3e3, 0.0), (1e-3, -5.0), (7.3, 1e5)):
                # outside the roi both leave the array as it was
                want16 = np.full(img.shape, 777, np.uint16)
                got16 = np.full(img.shape, 777, np.uint16)
                numba_loops.to_uint16(img, roi_arr, scale, offset, want16)
                c_engine.to_uint16(img, roi_arr, scale, offset, got16)
                assert np.array_equal(want16, got16)
                want8 = np.zeros(img.shape, np.uint8)
                got8 = np.zeros(img.shape, np.uint8)
                numba_loops.to_uint8(img, roi_arr, scale, want8)
                c_engine.to_uint8(img, roi_arr, scale, got8)
                assert np.array_equal(want8, got8)


def _states_equal(a, b):
    return all(np.array_equal(_bits(x) if x.dtype.kind == "f" else x,
                              _bits(y) if y.dtype.kind == "f" else y)
               for x, y in zip(a, b))


def _copy_state(state):
    return rng.RandomState(*(a.copy() for a in state))


def _noise_image(seed):
    """Means in every regime: 0, below 12, 12..1e6, above 1e6, repeats, negatives."""
    r = np.random.default_rng(seed)
    img = np.empty((24, 40), np.float32)
    img[:6] = r.random((6, 40)) * 12
    img[6:12] = 12 + r.random((6, 40)) * 5000
    img[12:16] = 1e6 + r.random((4, 40)) * 1e9
    img[16:18] = 0.0
    img[18:20] = 37.5                        # repeated mean: the cached constants
    img[20, :] = r.random(40) * 3e4
    img[21, :] = -r.random(40) * 20          # negative "means"
    img[22, :] = 70000.0                     # overloads
    img[23, :] = 11.999999
    img[23, ::2] = 12.0
    return img


@needs_numba
@pytest.mark.parametrize("seed,start", [(-101, "fresh"), (-1, "fresh"), (0, "fresh"),
                                        (-7, "warm"), (99, "warm"), (5, "fresh")])
def test_noise_loop_matches_numba(seed, start):
    img = _noise_image(abs(seed) + 1)
    state = rng.new_state()
    if start == "warm":   # the mosaic draws ran first; a positive seed continues them
        rng.mosaic_umats(0.01, 4, rng.new_seed(-777), state)
    s_numba, s_c = _copy_state(state), _copy_state(state)
    i_numba, i_c = rng.new_seed(seed), rng.new_seed(seed)
    for roi in ((0, 39, 0, 23), (3, 30, 2, 22)):
        for adc in (40.0, -10.0):
            want = np.zeros(img.shape, np.uint16)
            got = np.zeros(img.shape, np.uint16)
            w = noise._noise_loop(img, *roi, adc, i_numba, s_numba, want)
            g = c_engine.noise_loop(img, *roi, adc, i_c, s_c, got)
            assert _same(tuple(w), g)
            assert want.tobytes() == got.tobytes()
            assert np.array_equal(i_numba, i_c)
            assert _states_equal(s_numba, s_c)
    assert g[1] > 0 and g[0] > 1e6


@needs_numba
def test_noise_image_through_c_helper_matches(monkeypatch):
    img = _noise_image(11)
    want = noise.noise_image(img, roi=(1, 38, 0, 23), adc_offset=40.0,
                             idum=rng.new_seed(-5), state=rng.new_state())
    monkeypatch.setattr(noise, "_noise_loop", c_engine.noise_loop)
    got = noise.noise_image(img, roi=(1, 38, 0, 23), adc_offset=40.0,
                            idum=rng.new_seed(-5), state=rng.new_state())
    assert want[0].tobytes() == got[0].tobytes()
    assert _same(want[1:], got[1:])


@needs_numba
def test_deviates_match_numba_and_share_state():
    # one sequence alternating Numba and C calls on the same state arrays must equal
    # the all-Numba sequence: the C side reads and writes the Python state in place
    means = [0.5, 3.0, 3.0, 11.9, 12.0, 40.0, 40.0, 250.5, 9e5, 2e6, 5e7, 0.0, 20.0]
    ref_state, ref_idum = rng.new_state(), rng.new_seed(-42)
    mix_state, mix_idum = rng.new_state(), rng.new_seed(-42)
    for i in range(300):
        xm = np.float32(means[i % len(means)])
        kind = i % 4
        if kind == 0:
            want = rng.ran1(ref_idum, ref_state)
        elif kind == 1:
            want = noise.gaussdev(ref_idum, ref_state)
        else:
            want = noise.poidev(xm, ref_idum, ref_state)
        use_c = (i // 3) % 2 == 0
        if kind == 0:
            got = (c_engine.ran1 if use_c else rng.ran1)(mix_idum, mix_state)
        elif kind == 1:
            got = (c_engine.gaussdev if use_c else noise.gaussdev)(mix_idum, mix_state)
        else:
            got = (c_engine.poidev if use_c else noise.poidev)(xm, mix_idum, mix_state)
        assert _same(np.float32(want), np.float32(got)), (i, want, got)
        assert np.array_equal(ref_idum, mix_idum)
        assert _states_equal(ref_state, mix_state)


@needs_numba
def test_gammln_matches_numba():
    r = np.random.default_rng(5)
    xs = np.concatenate([r.random(200) * 20, r.random(200) * 1e6, [1.0, 2.0, 12.0, 1e-3]])
    for x in xs.astype(np.float32):
        assert _same(np.float32(noise.gammln(x)), c_engine.gammln(x))


def test_helpers_reject_bad_arguments():
    img = np.zeros((4, 5), np.float32)
    roi = np.array([0, 4, 0, 3], np.int64)
    with pytest.raises(TypeError):
        c_engine.accumulate_stats(img.astype(np.float64), roi, None, False)
    with pytest.raises(ValueError):
        c_engine.to_uint16(img, roi, 1.0, 0.0, np.zeros((5, 4), np.uint16))
    with pytest.raises(TypeError):
        c_engine.to_uint8(img, roi, 1.0, np.zeros((4, 5), np.uint16))
    state = rng.new_state()
    with pytest.raises(ValueError):
        c_engine.noise_loop(img, 0, 4, 0, 3, 40.0, rng.new_seed(-1), state,
                            np.zeros((4, 5), np.uint16)[:, ::-1])
    with pytest.raises(TypeError):
        c_engine.ran1(np.array([-1], np.int32), state)


# ---------------------------------------------------------------------------
# -fast: C == Numba, bit for bit, on every path of the fast kernel

DIV = "-hdivrange 0.3 -vdivrange 0.3 -hdivsteps 3 -vdivsteps 3 -square_div "
MOSAIC = "-mosaic 0.5 -mosaic_dom 5 -mosaic_seed 42 "

FAST_PLANS = {
    # fast_sum: one F, nothing multiplied per term -> each sub-pixel's sources batched
    "sum_divergence_mosaic": TRIC + "-misset 10 20 30 -N 5 -distance 100 -detpixels 40 "
        "-oversample 2 " + MOSAIC + DIV,
    "sum_dispersion_polar_dmin": CUBE + "-default_F 100 -N 5 -polar 0.5 -dispersion 1.5 "
        "-dispsteps 3 -hdivrange 0.4 -hdivsteps 2 -dmin 12 -distance 50 -detpixels 36",
    "sum_odd_detector_oversample3": CUBE + "-default_F 100 -N 5 -distance 100 "
        "-detpixels 41 -oversample 3 -mosaic 0.3 -mosaic_dom 3 -mosaic_seed 5",
    "sum_nopolar_water_roi": TRIC + "-N 4 -nopolar -water 50 -distance 90 -detpixels 40 "
        "-roi 4 33 2 30 " + MOSAIC,
    # per source: something multiplies I inside the loop
    "oversample_polar": TRIC + "-N 5 -distance 100 -detpixels 32 -oversample 2 "
        "-oversample_polar " + MOSAIC + DIV,
    "oversample_thick": TRIC + "-N 5 -distance 100 -detpixels 32 -oversample 2 "
        "-oversample_thick -detector_thick 100 -detector_abs 300 -thicksteps 2 " + DIV,
    "oversample_omega_water": TRIC + "-N 5 -distance 80 -detpixels 32 -oversample 2 "
        "-oversample_omega -water 80 " + MOSAIC,
    # F from a table: h, k, l per term
    "hkl_nearest": CUBE + "-hkl %s -nointerpolate -N 3 -distance 80 -detpixels 40 " % CUBIC
        + MOSAIC,
    "interpolate_out_of_range": CUBE + "-hkl %s -N 4 -interpolate -distance 60 "
        "-detpixels 48" % CUBIC,
    # -c_parity with phi from 0: one pixel's first loop sees lat_first (use_first)
    "c_parity_sum": CUBE + "-default_F 100 -N 5 -phi 0 -osc 0.6 -phisteps 4 -mosaic 0.5 "
        "-mosaic_dom 3 -mosaic_seed 7 -hdivrange 0.2 -hdivsteps 2 -distance 100 "
        "-detpixels 40 -c_parity",
    "c_parity_per_source": CUBE + "-default_F 100 -N 5 -phi 0 -osc 0.6 -phisteps 3 "
        "-mosaic 0.5 -mosaic_dom 2 -mosaic_seed 9 -oversample_polar -distance 100 "
        "-detpixels 32 -c_parity",
    "c_parity_hkl": CUBE + "-hkl %s -nointerpolate -N 4 -phi 0 -osc 0.6 -phisteps 3 "
        "-distance 80 -detpixels 32 -c_parity" % CUBIC,
    # axes with N = 1 contribute exactly 1
    "unit_axis": TRIC + "-Na 1 -Nb 4 -Nc 3 -distance 100 -detpixels 40 " + MOSAIC + DIV,
    "unit_axes_per_source": TRIC + "-Na 6 -Nb 1 -Nc 1 -distance 100 -detpixels 32 "
        "-oversample_omega",
    # axes on the two-sine path (N > 16), alone and beside Chebyshev axes
    "large_N": TRIC + "-N 20 -distance 100 -detpixels 32 " + MOSAIC,
    "mixed_N": TRIC + "-Na 3 -Nb 17 -Nc 7 -distance 100 -detpixels 32 -oversample_omega "
        + MOSAIC,
    # the other spot shapes, batched and per term
    "round_xtal": TRIC + "-N 6 -round_xtal -fudge 1.0 -distance 100 -detpixels 40 " + MOSAIC,
    "round_xtal_per_source": TRIC + "-N 6 -round_xtal -distance 100 -detpixels 32 "
        "-oversample_polar " + DIV,
    "gauss_xtal": TRIC + "-N 6 -gauss_xtal -fudge 1.2 -distance 100 -detpixels 40",
    "gauss_xtal_hkl": CUBE + "-hkl %s -nointerpolate -N 5 -gauss_xtal -distance 80 "
        "-detpixels 32 " % CUBIC + MOSAIC,
    "tophat_spots": TRIC + "-N 6 -tophat_spots -distance 100 -detpixels 40 " + DIV,
    "tophat_spots_thick": TRIC + "-N 6 -tophat_spots -distance 100 -detpixels 32 "
        "-oversample_thick -detector_thick 100 -detector_abs 300 -thicksteps 2",
    # tricubic interpolation, all the way through the image
    "interpolate_wide": CUBE + "-hkl %s -N 3 -interpolate -distance 400 -detpixels 32 "
        "-pixel 0.4 " % WIDE + MOSAIC,
    "interpolate_round_c_parity": CUBE + "-hkl %s -N 3 -interpolate -round_xtal -phi 0 "
        "-osc 0.4 -phisteps 2 -distance 400 -detpixels 32 -pixel 0.4 -c_parity" % WIDE,
}


def _fast_plan(name):
    return _plan(FAST_PLANS[name] + " -fast")


@needs_numba
@pytest.mark.parametrize("name", sorted(FAST_PLANS))
def test_fast_c_equals_numba(name):
    plan = _fast_plan(name)
    assert plan.config.sampling.fast
    ref, got = _render_all(plan)
    _assert_same_render(ref, got)
    assert np.count_nonzero(ref[0]) > 0
    if name == "interpolate_out_of_range":
        assert plan.interpolate and ref[2], "the interpolation did not run out of range"
    if name.startswith("interpolate_") and name != "interpolate_out_of_range":
        assert plan.interpolate and not ref[2], "the interpolation ran out of range"
    if name.startswith("c_parity"):
        assert not np.array_equal(plan.lattice_table, plan.first_lattice_table)


@needs_numba
def test_fast_c_equals_numba_with_mask():
    plan = _masked(_fast_plan("c_parity_sum"))
    ref, got = _render_all(plan)
    _assert_same_render(ref, got)
    assert not ref[0][plan.mask == 0].any()


def _raw_render(run, plan, fast, N=None):
    """Render through an engine's entry point, with -fast on or off and optionally a
    non-integer N for all three axes (which the command line does not accept)."""
    ip, dp, vecs, mask = api.pack_plan(plan)
    ip[P.I_FAST] = 1 if fast else 0
    if N is not None:
        dp[P.D_NA] = dp[P.D_NB] = dp[P.D_NC] = N
    s, f = plan.spixels, plan.fpixels
    out = np.zeros((s, f), np.float32)
    omega = np.zeros(s)
    run(ip, dp, vecs, np.ascontiguousarray(plan.sources), plan.lattice_table,
        plan.first_lattice_table, plan.Fhkl, mask, out, omega,
        np.full((s, 2), -1, np.int64), np.zeros((s, 6)))
    return out, omega


def _c_run(*a):
    c_engine.render(2, *a)


def test_fast_is_not_the_exact_kernel():
    """-fast really runs the polynomial lattice factor in C.  Its results agree with
    the exact ones to far below float precision for integer N; with N = 2.5 its
    identity sin(pi N x)/sin(pi x) = +-U_{N-1}(cos(pi d)) fails, which makes the two
    paths tell apart.  (tests/test_fast.py shows the other shapes' polynomials at
    work, element by element.)"""
    for name in ("sum_divergence_mosaic", "oversample_polar", "hkl_nearest"):
        plan = _plan(FAST_PLANS[name])
        exact = _raw_render(_c_run, plan, False, N=2.5)[0]
        fast = _raw_render(_c_run, plan, True, N=2.5)[0]
        assert exact.any()
        assert np.count_nonzero(_bits(exact) != _bits(fast)) > exact.size // 4, name


def test_fast_threads_do_not_change_the_image():
    plan = _fast_plan("sum_divergence_mosaic")
    images = [api.render(plan, engine="c", threads=t)[0] for t in (1, 2, 3, 0)]
    for img in images[1:]:
        assert np.array_equal(_bits(img), _bits(images[0]))


def test_fast_on_c_engine_warns_nothing():
    plan = _fast_plan("sum_divergence_mosaic")
    said = []
    img, _, _, name = api.render(plan, engine="c", threads=2, warn=said.append)
    assert name == "c" and said == [] and img.any()


@needs_numba
@pytest.mark.parametrize("N", [None, 2.5])
def test_fast_render_entry_point_equals_numba(N):
    """c_engine.render itself takes ip[I_FAST] (it used to refuse it)."""
    from nbsim.engines import numba_engine

    def numba_run(*a):
        numba_engine.render(2, *a)
    plan = _plan(FAST_PLANS["sum_divergence_mosaic"])
    c_out, c_omega = _raw_render(_c_run, plan, True, N=N)
    n_out, n_omega = _raw_render(numba_run, plan, True, N=N)
    assert np.array_equal(_bits(c_out), _bits(n_out))
    assert np.array_equal(_bits(c_omega), _bits(n_omega))
    assert c_out.any()


# every SIMD flavour of the lattice sum gives the same bits

FLAVOURS = ("scalar", "sse2", "avx2", "avx512")


def _flavours_here():
    best = c_engine.simd_flavour()
    if best in ("generic", "scalar"):
        return ["scalar", best]
    return list(FLAVOURS[:FLAVOURS.index(best) + 1])


def _same_or_nan(a, b):
    """Same bits, except that any NaN equals any NaN (which NaN an operation on two
    NaNs returns depends on the operand order the compiler picked)."""
    a, b = np.asarray(a), np.asarray(b)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return (np.array_equal(nan_a, nan_b)
            and np.array_equal(_bits(np.where(nan_a, 0.0, a)), _bits(np.where(nan_b, 0.0, b))))


def _nasty_tables(seed, M):
    """Transposed lattice tables and scattering vectors whose indices include exact
    integers, half-integers (rounding ties), -0.0, tiny, large and non-finite values."""
    r = np.random.default_rng(seed)
    tT = r.standard_normal((9, M)) * 30.0
    special = np.array([0.0, -0.0, 1.0, -3.0, 0.5, -2.5, 7.5, 1e-310, -5e-324, 1e-17,
                        2.0 ** 40 + 0.5, -(2.0 ** 45), 12345.999999999, np.nan, np.inf,
                        -np.inf, 3.0000000000000004, 0.49999999999999994,
                        # around the ends of C's int (the nearest index becomes INT_MIN)
                        2147483647.6, -2147483648.6, -6755399441055744.0])
    tT[0, :len(special)] = special[:M]
    tT[4, M // 2:M // 2 + len(special)] = special[:M - M // 2]
    tT[8] = np.round(tT[8])                           # whole numbers along c*
    sc = r.standard_normal((5, 3))
    sc[0] = (1.0, 0.0, 0.0)                           # h = tT[0], k = tT[3], l = tT[6]
    sc[1] = (0.0, 1.0, 0.0)
    sc[2] = (0.0, 0.0, 1.0)
    return tT, sc


def _shape_params(shape, N, fudge=1.3):
    """ip, dp, vecs carrying what the -fast shape functions read."""
    ip = np.zeros(P.N_INTS, np.int64)
    dp = np.zeros(P.N_REALS)
    vecs = np.zeros((9, 3))
    ip[P.I_SHAPE] = shape
    dp[P.D_NA], dp[P.D_NB], dp[P.D_NC] = N
    dp[P.D_FUDGE] = fudge
    vecs[6:9] = [[0.0143, 0.001, -0.002], [0.0, 0.0125, 0.003], [0.001, 0.0, 0.0111]]
    return ip, dp, vecs


SHAPES = {"square": P.SHAPE_SQUARE, "round": P.SHAPE_ROUND, "gauss": P.SHAPE_GAUSS,
          "tophat": P.SHAPE_TOPHAT}


@needs_numba
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("N", [(5.0, 5.0, 5.0), (5.0, 7.0, 3.0), (1.0, 4.0, 3.0),
                               (6.0, 1.0, 0.5), (1.0, 1.0, 1.0), (2.5, 20.0, 33.0),
                               (16.0, 17.0, 16.0), (np.nan, 2.0, 1.0)])
@pytest.mark.parametrize("M", [1, 3, 8, 37])
def test_fast_eval_flavours_equal_numba(shape, N, M):
    """Every SIMD flavour of the batch evaluation gives the Numba kernel's bits, on
    indices including ties, signed zeros, tiny, huge and non-finite values."""
    from nbsim.engines import numba_kernel as nk
    import warnings
    tT, sc = _nasty_tables(M, M)
    ip, dp, vecs = _shape_params(SHAPES[shape], N)
    fp = np.zeros(nk._F_N_FP)
    fp[:4] = (*N, dp[P.D_FUDGE])
    fp[nk._F_FP_AS:] = vecs[6:9].ravel()
    for n in (1, 2, len(sc)):
        buf = np.zeros((nk._FAST_ROWS, n * M))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = nk._fast_eval(SHAPES[shape], fp, tT, sc, n, buf, True)
        for flavour in _flavours_here():
            got, out, used = c_engine.fast_eval(ip, dp, vecs, tT, sc[:n], flavour=flavour)
            assert used == flavour
            assert _same_or_nan(np.array([got]), np.array([want])), (flavour, n, got, want)
            assert _same_or_nan(out, buf[:4]), (flavour, n)


@needs_numba
@pytest.mark.parametrize("name", ["sum_divergence_mosaic", "unit_axes_per_source",
                                  "c_parity_sum"])
def test_fast_render_flavours_equal_numba(name, monkeypatch):
    plan = _fast_plan(name)
    ref = api.render(plan, engine="numba", threads=1)
    for flavour in _flavours_here():
        monkeypatch.setenv("NBSIM_SIMD", flavour)
        assert c_engine.simd_flavour() == flavour
        got = api.render(plan, engine="c", threads=2)
        _assert_same_render(ref, [got])


@pytest.mark.parametrize("engine", ["numba", "c"])
def test_pgm_bytes_of_negative_values_follow_the_reference(engine):
    # nanoBragg.c casts the scaled value to unsigned char with no lower clamp. Its
    # x86-64 build truncates to a 32-bit int and keeps the low byte (observed with
    # -fluence -1e24: -1.3056 -> 255, -10.9847 -> 246, -11.0065 -> 245), and a NaN
    # or a value outside the int range gives 0.
    if engine == "numba":
        pytest.importorskip("numba", reason="the Numba loops need Numba")
    vals = [-0.7658, -1.3056, -10.9847, -11.0065, 300.0, 254.9, np.nan, -3e9,
            -2147483648.5, -256.0, -257.5, np.inf, -np.inf]
    img = np.array([vals], dtype=np.float32)
    roi = (0, img.shape[1] - 1, 0, 0)
    got = stats.pgm_image(img, roi, 1.0, engine=engine)
    want = [0, 255, 246, 245, 255, 254, 0, 0, 0, 0, 255, 255, 0]
    assert got[0].tolist() == want
