"""The C engine: ``nbsim._nbsim_c``, built from csrc/ with cffi.

It renders with the same packed arrays as the Numba engine (see
``nbsim.engines.params``) and gives the same bits.  It also carries C versions of
the sequential helpers (statistics, 16/8-bit images, the noise image), so nbsim
runs at full speed without Numba:

===============================================  ===================================
here                                             mirrors
===============================================  ===================================
``render(threads, ip, dp, vecs, ...)``           ``numba_engine.render``
``accumulate_stats(img, roi, mask, has_mask)``   ``nbsim.stats._accumulate``
``deviation(img, roi, avg)``                     ``nbsim.stats._deviation``
``to_uint16(img, roi, scale, offset, out)``      ``nbsim.stats._to_uint16``
``to_uint8(img, roi, scale, out)``               ``nbsim.stats._to_uint8``
``noise_loop(image, xmin, xmax, ymin, ymax,``    ``nbsim.noise._noise_loop``
``           adc_offset, idum, state, out)``
``ran1(idum, state)``                            ``nbsim.rng.ran1``
``gammln(xx)``, ``gaussdev(idum, state)``,       ``nbsim.noise.gammln``, ``gaussdev``,
``poidev(xm, idum, state)``                      ``poidev``
===============================================  ===================================

Arguments are checked (dtype, shape, C order, writability) before any pointer is
handed to C; a wrong one raises ``TypeError``/``ValueError`` instead of corrupting
memory.  Images must be float32, as they are everywhere in nbsim (converting a
float64 image would change the statistics' rounding, so that is refused).
"""
from __future__ import annotations

import os

import numpy as np

from . import params as P

try:
    from .. import _nbsim_c
    _IMPORT_ERROR = None
except ImportError as exc:  # not built (or built for another Python)
    _nbsim_c = None
    _IMPORT_ERROR = exc

_LAYOUT_ERROR = None
if _nbsim_c is not None:
    ffi = _nbsim_c.ffi
    lib = _nbsim_c.lib
    _n = ffi.new("int64_t[2]")
    lib.nbsim_layout(_n, _n + 1)
    if (_n[0], _n[1]) != (P.N_INTS, P.N_REALS):
        _LAYOUT_ERROR = ("nbsim._nbsim_c is out of date (parameter layout %d/%d, "
                         "nbsim expects %d/%d); rebuild it with python csrc/build_ffi.py"
                         % (_n[0], _n[1], P.N_INTS, P.N_REALS))
    del _n
else:
    ffi = lib = None


def available():
    """(True, "") when the extension can run, else (False, reason)."""
    if _nbsim_c is None:
        return False, "nbsim._nbsim_c was not built: %s" % _IMPORT_ERROR
    if _LAYOUT_ERROR:
        return False, _LAYOUT_ERROR
    return True, ""


def have_openmp():
    """True when the extension was compiled with OpenMP (else it renders serially)."""
    _require()
    return bool(lib.nbsim_have_openmp())


def simd_flavour():
    """The instruction set of -fast's batch evaluation: "avx512", "avx2", "sse2",
    "generic" or "scalar" (``NBSIM_SIMD`` may ask for a narrower one; same bits)."""
    _require()
    return ffi.string(lib.nbsim_simd_flavour()).decode("ascii")


def _require():
    ok, why = available()
    if not ok:
        raise ImportError(why)


# ---------------------------------------------------------------------------
# argument checks

_CTYPES = {np.dtype(np.float64): "double[]", np.dtype(np.float32): "float[]",
           np.dtype(np.int64): "int64_t[]", np.dtype(np.uint16): "uint16_t[]",
           np.dtype(np.uint8): "uint8_t[]"}


def _check(a, name, dtype, shape=None, ndim=None, out=False):
    """``a`` as a C-ordered array of ``dtype``; outputs must already be one."""
    dtype = np.dtype(dtype)
    if not isinstance(a, np.ndarray):
        if out:
            raise TypeError("%s: expected a numpy array, got %s" % (name, type(a).__name__))
        a = np.asarray(a)
    if a.dtype != dtype:
        raise TypeError("%s: expected dtype %s, got %s" % (name, dtype, a.dtype))
    if ndim is not None and a.ndim != ndim:
        raise ValueError("%s: expected %d dimensions, got shape %s" % (name, ndim, a.shape))
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError("%s: expected shape %s, got %s" % (name, tuple(shape), a.shape))
    if out:
        if not a.flags.c_contiguous:
            raise ValueError("%s: output array must be C-contiguous" % name)
        if not a.flags.writeable:
            raise ValueError("%s: output array is read-only" % name)
    elif not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a


def _ptr(a, writable=False):
    return ffi.from_buffer(_CTYPES[a.dtype], a, require_writable=writable)


def _roi(roi):
    r = np.ascontiguousarray(roi, dtype=np.int64).ravel()
    if r.size < 4:
        raise ValueError("roi: expected (xmin, xmax, ymin, ymax), got %r" % (roi,))
    return r


def _image(img, name="img"):
    return _check(img, name, np.float32, ndim=2)


def _threads(threads):
    if threads is None or int(threads) <= 0:
        return os.cpu_count() or 1
    return int(threads)


# ---------------------------------------------------------------------------
# the pixel loop

def render(threads, ip, dp, vecs, sources, lat, lat_first, Fhkl, mask, out, omega_rows,
           probe_i, probe_d):
    """Fill ``out`` (rows, fpixels) float32 with the slow rows [ip[I_ROW_START],
    ip[I_ROW_STOP]), like ``numba_kernel.render`` (with ``ip[I_FAST]`` too: the -fast
    path gives the same bits as Numba's). ``mask`` covers the whole detector.

    ``threads`` None or 0 means every core (``os.cpu_count()``).
    """
    _require()
    ip = _check(ip, "ip", np.int64, shape=(P.N_INTS,))
    dp = _check(dp, "dp", np.float64, shape=(P.N_REALS,))
    fpixels, spixels = int(ip[P.I_FPIXELS]), int(ip[P.I_SPIXELS])
    if fpixels < 0 or spixels < 0:
        raise ValueError("ip: negative detector size %dx%d" % (fpixels, spixels))
    row_start, row_stop = P.row_range(ip)
    rows = row_stop - row_start
    vecs = _check(vecs, "vecs", np.float64, shape=(9, 3))
    sources = _check(sources, "sources", np.float64, ndim=2)
    if sources.shape[1] < 4:
        raise ValueError("sources: expected (n, 4+) rows of x, y, z, wavelength, got %s"
                         % (sources.shape,))
    lat = _check(lat, "lat", np.float64, ndim=3)
    if lat.shape[2] != 9:
        raise ValueError("lat: expected shape (phisteps, domains, 9), got %s" % (lat.shape,))
    lat_first = _check(lat_first, "lat_first", np.float64, shape=lat.shape)
    Fhkl = _check(Fhkl, "Fhkl", np.float64, ndim=3)
    if ip[P.I_HKLS] != 0 or ip[P.I_INTERPOLATE] != 0:
        need = (int(ip[P.I_H_RANGE]), int(ip[P.I_K_RANGE]), int(ip[P.I_L_RANGE]))
        if any(have < want for have, want in zip(Fhkl.shape, need)):
            raise ValueError("Fhkl: shape %s is smaller than the hkl ranges %s"
                             % (Fhkl.shape, need))
    mask = _check(mask, "mask", np.uint16, ndim=2)
    if ip[P.I_HAS_MASK] != 0 and mask.shape != (spixels, fpixels):
        raise ValueError("mask: expected shape %s, got %s" % ((spixels, fpixels), mask.shape))
    out = _check(out, "out", np.float32, shape=(rows, fpixels), out=True)
    omega_rows = _check(omega_rows, "omega_rows", np.float64, shape=(rows,), out=True)
    probe_i = _check(probe_i, "probe_i", np.int64, shape=(rows, 2), out=True)
    probe_d = _check(probe_d, "probe_d", np.float64, shape=(rows, 6), out=True)

    rc = lib.nbsim_render(
        _ptr(ip), _ptr(dp), _ptr(vecs), _ptr(sources), sources.shape[0], sources.shape[1],
        _ptr(lat), _ptr(lat_first), lat.shape[0], lat.shape[1],
        _ptr(Fhkl), Fhkl.shape[0], Fhkl.shape[1], Fhkl.shape[2],
        _ptr(mask), _ptr(out, True), _ptr(omega_rows, True), _ptr(probe_i, True),
        _ptr(probe_d, True), _threads(threads))
    if rc == -3:
        raise MemoryError("nbsim_render: no memory for the -fast work space")
    if rc != 0:
        raise ValueError("nbsim_render rejected its arguments (code %d)" % rc)


def fast_eval(ip, dp, vecs, tT, sc, flavour=None):
    """-fast's batch evaluation on its own, for tests: h, k, l and F_latt of the
    scattering vectors ``sc`` (n, 3) over the transposed lattice table ``tT`` (9, M)
    with the shape parameters of the packed ``ip``, ``dp``, ``vecs``, as the Numba
    engine's ``numba_kernel._fast_eval``.  Returns (sum of F_latt**2, array (4, n*M),
    flavour used); ``flavour`` as ``NBSIM_SIMD`` (None: the best here)."""
    _require()
    ip = _check(ip, "ip", np.int64, shape=(P.N_INTS,))
    dp = _check(dp, "dp", np.float64, shape=(P.N_REALS,))
    vecs = _check(vecs, "vecs", np.float64, shape=(9, 3))
    tT = _check(tT, "tT", np.float64, ndim=2)
    if tT.shape[0] != 9:
        raise ValueError("tT: expected shape (9, M), got %s" % (tT.shape,))
    sc = _check(sc, "sc", np.float64, ndim=2)
    if sc.shape[1] != 3:
        raise ValueError("sc: expected shape (n, 3), got %s" % (sc.shape,))
    out = np.zeros((4, sc.shape[0] * tT.shape[1]), dtype=np.float64)
    used = ffi.new("const char **")
    name = ffi.new("char[]", flavour.encode("ascii")) if flavour else ffi.NULL
    total = lib.nbsim_fast_eval(_ptr(ip), _ptr(dp), _ptr(vecs), _ptr(tT), tT.shape[1],
                                _ptr(sc), sc.shape[0], _ptr(out, True), name, used)
    return total, out, ffi.string(used[0]).decode("ascii")


# ---------------------------------------------------------------------------
# statistics and integer images (nbsim.stats)

def accumulate_stats(img, roi, mask, has_mask):
    """``nbsim.stats._accumulate``: (max_I, max_f, max_s, total, sumsqr, n)."""
    _require()
    img = _image(img)
    roi = _roi(roi)
    if has_mask:
        mask = np.asarray(mask)
        if mask.shape != img.shape:
            raise ValueError("mask: expected shape %s, got %s" % (img.shape, mask.shape))
        if mask.dtype != np.uint16:
            mask = (mask != 0).astype(np.uint16)   # only "== 0" matters
        mask = np.ascontiguousarray(mask)
        mptr = _ptr(mask)
    else:
        mptr = ffi.NULL
    d = ffi.new("double[3]")
    n = ffi.new("int64_t[3]")
    lib.nbsim_accumulate(_ptr(img), img.shape[0], img.shape[1], _ptr(roi), mptr,
                         1 if has_mask else 0, d, n, n + 1, d + 1, d + 2, n + 2)
    return d[0], int(n[0]), int(n[1]), d[1], d[2], int(n[2])


def deviation(img, roi, avg):
    """``nbsim.stats._deviation``: (sum of squared deviations, n)."""
    _require()
    img = _image(img)
    roi = _roi(roi)
    d = ffi.new("double[1]")
    n = ffi.new("int64_t[1]")
    lib.nbsim_deviation(_ptr(img), img.shape[0], img.shape[1], _ptr(roi), float(avg), d, n)
    return d[0], int(n[0])


def to_uint16(img, roi, scale, offset, out):
    """``nbsim.stats._to_uint16``: fills ``out`` (uint16, img's shape) inside the roi."""
    _require()
    img = _image(img)
    roi = _roi(roi)
    out = _check(out, "out", np.uint16, shape=img.shape, out=True)
    lib.nbsim_to_uint16(_ptr(img), img.shape[0], img.shape[1], _ptr(roi), float(scale),
                        float(offset), _ptr(out, True))


def to_uint8(img, roi, scale, out):
    """``nbsim.stats._to_uint8``: fills ``out`` (uint8, img's shape) inside the roi."""
    _require()
    img = _image(img)
    roi = _roi(roi)
    out = _check(out, "out", np.uint8, shape=img.shape, out=True)
    lib.nbsim_to_uint8(_ptr(img), img.shape[0], img.shape[1], _ptr(roi), float(scale),
                       _ptr(out, True))


# ---------------------------------------------------------------------------
# random numbers and the noise image (nbsim.rng, nbsim.noise)

def _state_ptrs(idum, state):
    """Writable pointers to the seed and every array of a RandomState (shared, not copied)."""
    idum = _check(idum, "idum", np.int64, shape=(1,), out=True)
    iy = _check(state.iy, "state.iy", np.int64, shape=(1,), out=True)
    iv = _check(state.iv, "state.iv", np.int64, shape=(32,), out=True)
    pois = _check(state.poisson, "state.poisson", np.float32, shape=(4,), out=True)
    iset = _check(state.gauss_iset, "state.gauss_iset", np.int64, shape=(1,), out=True)
    gset = _check(state.gauss_gset, "state.gauss_gset", np.float32, shape=(1,), out=True)
    return (_ptr(idum, True), _ptr(iy, True), _ptr(iv, True), _ptr(pois, True),
            _ptr(iset, True), _ptr(gset, True))


def ran1(idum, state):
    """``nbsim.rng.ran1``: one uniform deviate as ``np.float32``."""
    _require()
    p_idum, p_iy, p_iv, _, _, _ = _state_ptrs(idum, state)
    return np.float32(lib.nbsim_ran1(p_idum, p_iy, p_iv))


def gammln(xx):
    """``nbsim.noise.gammln``."""
    _require()
    return np.float32(lib.nbsim_gammln(float(np.float32(xx))))


def gaussdev(idum, state):
    """``nbsim.noise.gaussdev``."""
    _require()
    p_idum, p_iy, p_iv, _, p_iset, p_gset = _state_ptrs(idum, state)
    return np.float32(lib.nbsim_gaussdev(p_idum, p_iy, p_iv, p_iset, p_gset))


def poidev(xm, idum, state):
    """``nbsim.noise.poidev``."""
    _require()
    p = _state_ptrs(idum, state)
    return np.float32(lib.nbsim_poidev(float(np.float32(xm)), *p))


def noise_loop(image, xmin, xmax, ymin, ymax, adc_offset, idum, state, out):
    """``nbsim.noise._noise_loop``: fills ``out``; returns (photons, overloads)."""
    _require()
    image = _image(image, "image")
    out = _check(out, "out", np.uint16, shape=image.shape, out=True)
    p = _state_ptrs(idum, state)
    photons = ffi.new("double[1]")
    overloads = ffi.new("int64_t[1]")
    lib.nbsim_noise_loop(_ptr(image), image.shape[0], image.shape[1], int(xmin), int(xmax),
                         int(ymin), int(ymax), float(adc_offset), *p, _ptr(out, True),
                         photons, overloads)
    return photons[0], int(overloads[0])


__all__ = ["available", "have_openmp", "simd_flavour", "render", "fast_eval", "accumulate_stats", "deviation",
           "to_uint16", "to_uint8", "noise_loop", "ran1", "gammln", "gaussdev", "poidev"]
