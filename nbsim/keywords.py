"""The keywords of :class:`nbsim.Simulation`: name, unit, check, and the nanoBragg flag
each one stands for.

A keyword is checked here (type, shape, physical range; a bad one is an NbsimError
naming the keyword and its unit) and then written as the flag words that mean the
same thing to the command line, with numbers written so that they read back as the
same doubles. The Config is built from those words by the command's own parser, so a
keyword means exactly what its flag means, bit for bit, and ``Simulation.to_args()``
is the equivalent command line. Structure factors, an A matrix and a mask given as
arrays have no flag; they go into the Config directly.

Units are in the names where there is one (``distance_mm``, ``wavelength_A``,
``phi_deg``); detector sizes and positions are (slow, fast), like the images.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Callable, Dict, List

import numpy as np

from .errors import NbsimError


def _fmt(x):
    """A number word that reads back as exactly ``x``."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return "-0" if (x == 0.0 and math.copysign(1.0, x) < 0) else str(int(x))
    return repr(x)


@dataclass(frozen=True)
class Keyword:
    name: str
    unit: str                     # "" when the value has none
    doc: str
    to_words: Callable            # (keyword, value, extras) -> list of flag words


class _Check:
    """Checks one keyword's value; every complaint names the keyword and its unit."""

    def __init__(self, kw: Keyword, value):
        self.kw = kw
        self.value = value

    def fail(self, what):
        unit = " (%s)" % self.kw.unit if self.kw.unit else ""
        shown = " ".join(repr(self.value).split())
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return NbsimError("%s%s: %s; got %s" % (self.kw.name, unit, what, shown))

    def real(self, x=None, lo=None, hi=None, lo_open=False, allow_inf=False):
        x = self.value if x is None else x
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise self.fail("expected a number")
        x = float(x)
        if math.isnan(x) or (math.isinf(x) and not allow_inf):
            raise self.fail("expected a finite number")
        if lo is not None and (x < lo or (lo_open and x == lo)):
            raise self.fail("must be %s %g" % (">" if lo_open else ">=", lo))
        if hi is not None and x > hi:
            raise self.fail("must be <= %g" % hi)
        return x

    def integer(self, x=None, lo=None, hi=2**31 - 1):
        x = self.value if x is None else x
        if isinstance(x, bool) or not isinstance(x, numbers.Integral):
            if isinstance(x, numbers.Real) and not isinstance(x, bool) and float(x).is_integer():
                x = int(x)
            else:
                raise self.fail("expected a whole number")
        x = int(x)
        if lo is not None and x < lo:
            raise self.fail("must be at least %d" % lo)
        if x > 2**31 - 1 or x < -2**31:
            raise self.fail("must fit a 32-bit integer")
        if x > hi:
            raise self.fail("must be <= %d" % hi)
        return x

    def flag(self):
        if type(self.value).__name__ not in ("bool", "bool_"):
            raise self.fail("expected True or False")
        return bool(self.value)

    def seq(self, n, x=None):
        x = self.value if x is None else x
        if isinstance(x, (str, bytes, dict)) or not hasattr(x, "__len__"):
            raise self.fail("expected %d values" % n)
        try:
            items = list(np.asarray(x, dtype=object).reshape(-1)) if isinstance(x, np.ndarray) \
                else list(x)
        except TypeError:
            raise self.fail("expected %d values" % n) from None
        if len(items) != n:
            raise self.fail("expected %d values" % n)
        return items

    def vector(self):
        v = [self.real(x) for x in self.seq(3)]
        if v == [0.0, 0.0, 0.0]:
            raise self.fail("the zero vector has no direction")
        return v

    def choice(self, options):
        if not isinstance(self.value, str) or self.value.lower() not in options:
            raise self.fail("expected one of %s" % ", ".join("'%s'" % o for o in options))
        return self.value.lower()

    def path(self, must_exist=True):
        if not isinstance(self.value, (str, os.PathLike)) or not os.fspath(self.value):
            raise self.fail("expected a file name")
        p = os.fspath(self.value)
        if must_exist and not os.path.isfile(p):
            why = "it is a directory" if os.path.isdir(p) else "no such file"
            raise self.fail("cannot read the file (%s)" % why)
        return p

    def slow_fast(self, one, lo=None, lo_open=False, whole=False):
        """A number for both axes, or a (slow, fast) pair."""
        get = (lambda x: self.integer(x, lo=lo)) if whole else \
            (lambda x: self.real(x, lo=lo, lo_open=lo_open))
        if isinstance(self.value, (numbers.Real,)) and not isinstance(self.value, bool):
            v = get(self.value)
            return v, v
        s, f = self.seq(2)
        return get(s), get(f)


# ---- keyword handlers ---------------------------------------------------------------------

def _number(flag, lo=None, lo_open=False, hi=None, allow_inf=False):
    def words(kw, value, extras):
        x = _Check(kw, value).real(lo=lo, lo_open=lo_open, hi=hi, allow_inf=allow_inf)
        return [flag, _fmt(x)]
    return words


def _count(flag, lo=1):
    def words(kw, value, extras):
        return [flag, str(_Check(kw, value).integer(lo=lo))]
    return words


def _switch(on, off=None):
    def words(kw, value, extras):
        if _Check(kw, value).flag():
            return [on]
        return [off] if off else []
    return words


def _file(flag):
    def words(kw, value, extras):
        return [flag, _Check(kw, value).path()]
    return words


def _custom_vector(flag):
    def words(kw, value, extras):
        extras["_vectors"].append(kw.name)
        return [flag] + [_fmt(x) for x in _Check(kw, value).vector()]
    return words


def _twotheta_axis(kw, value, extras):
    # not written as -twotheta_axis: the reference also reads that word as -twotheta
    # (angle and pivot). The Config field is set directly; to_args() writes it safely.
    extras["_vectors"].append(kw.name)
    extras["_fields"]["twotheta_axis"] = tuple(_Check(kw, value).vector())
    return []


def _cell(kw, value, extras):
    c = _Check(kw, value)
    v = [c.real(x) for x in c.seq(6)]
    if any(x <= 0.0 for x in v[:3]):
        raise c.fail("a, b and c must be positive lengths")
    al, be, ga = v[3:]
    if any(x <= 0.0 or x >= 180.0 for x in (al, be, ga)):
        raise c.fail("alpha, beta and gamma must lie between 0 and 180 degrees")
    if al + be + ga >= 360.0 or al >= be + ga or be >= al + ga or ga >= al + be:
        raise c.fail("these angles do not form a unit cell")
    return ["-cell"] + [_fmt(x) for x in v]


def _misset(kw, value, extras):
    if isinstance(value, str):
        if value.lower() != "random":
            raise _Check(kw, value).fail("expected three angles or 'random'")
        extras["_misset_random"] = True
        return ["-misset", "random"]
    c = _Check(kw, value)
    return ["-misset"] + [_fmt(c.real(x)) for x in c.seq(3)]


def _misset_seed(kw, value, extras):
    # written last: the reference also reads "-misset_seed" as "-misset" when three
    # words follow it (see nbsim.config_args)
    extras["_tail"] += ["-misset_seed", str(_Check(kw, value).integer())]
    extras["_misset_seed"] = True
    return []


def _seed(kw, value, extras):
    extras["_tail"][:0] = ["-seed", str(_Check(kw, value).integer())]
    return []


def _N(kw, value, extras):
    c = _Check(kw, value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        n = c.integer(lo=1)
        na = nb = nc = n
    else:
        na, nb, nc = (c.integer(x, lo=1) for x in c.seq(3))
    return ["-Na", str(na), "-Nb", str(nb), "-Nc", str(nc)]


def _crystal_size(kw, value, extras):
    c = _Check(kw, value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        x = c.real(lo=0.0, lo_open=True)
        sizes = (x, x, x)
    else:
        sizes = [c.real(x, lo=0.0, lo_open=True) for x in c.seq(3)]
    words = []
    for flag, x in zip(("-sample_x", "-sample_y", "-sample_z"), sizes):
        words += [flag, _fmt(x)]
    return words


def _shape(kw, value, extras):
    name = _Check(kw, value).choice(("square", "round", "gauss", "tophat"))
    return [{"square": "-square_xtal", "round": "-round_xtal", "gauss": "-gauss_xtal",
             "tophat": "-tophat_spots"}[name]]


def _interpolate(kw, value, extras):
    if value is None:
        return []
    return ["-interpolate" if _Check(kw, value).flag() else "-nointerpolate"]


def _Fhkl(kw, value, extras):
    if isinstance(value, (str, os.PathLike)):
        return ["-hkl", _Check(kw, value).path()]
    from .structure_factors import StructureFactors
    extras["structure_factors"] = StructureFactors.coerce(value, field="%s (electrons)" % kw.name)
    return []


def _A_matrix(kw, value, extras):
    c = _Check(kw, value)
    try:
        m = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise c.fail("expected a 3x3 array of numbers") from None
    if m.shape != (3, 3):
        raise c.fail("expected a 3x3 array (got shape %s)" % (m.shape,))
    if not np.all(np.isfinite(m)):
        raise c.fail("expected finite numbers")
    if abs(np.linalg.det(m)) == 0.0:
        raise c.fail("the matrix is singular (its columns a*, b*, c* must be independent)")
    extras["A_matrix"] = tuple(tuple(float(x) for x in row) for row in m)
    return []


def _detpixels(kw, value, extras):
    s, f = _Check(kw, value).slow_fast(1, lo=1, whole=True)
    return ["-detpixels_s", str(s), "-detpixels_f", str(f)]


def _detsize(kw, value, extras):
    s, f = _Check(kw, value).slow_fast(1, lo=0.0, lo_open=True)
    return ["-detsize_s", _fmt(s), "-detsize_f", _fmt(f)]


def _convention(kw, value, extras):
    name = _Check(kw, value).choice(("mosflm", "xds", "adxv", "denzo", "dials", "custom"))
    extras["_convention"] = name
    if name == "custom":
        return []      # the vectors select it (or the default fast axis, see Simulation)
    return ["-" + name]


def _pivot(kw, value, extras):
    extras["_pivot"] = _Check(kw, value).choice(("beam", "sample"))
    return []


def _pix0(kw, value, extras):
    c = _Check(kw, value)
    extras["_vectors"].append(kw.name)
    return ["-pix0_vector"] + [_fmt(c.real(x) / 1000.0) for x in c.seq(3)]


def _rotations(kw, value, extras):
    c = _Check(kw, value)
    x, y, z = (c.real(v) for v in c.seq(3))
    return ["-detector_rotx", _fmt(x), "-detector_roty", _fmt(y), "-detector_rotz", _fmt(z)]


def _divergence(kw, value, extras):
    x = _fmt(_Check(kw, value).real(lo=0.0))
    return ["-hdivrange", x, "-vdivrange", x]


def _divsteps(kw, value, extras):
    n = str(_Check(kw, value).integer(lo=1))
    return ["-hdivsteps", n, "-vdivsteps", n]


def _roi(kw, value, extras):
    c = _Check(kw, value)
    pairs = c.seq(2)
    (s0, s1), (f0, f1) = ([c.integer(x, lo=0) for x in c.seq(2, p)] for p in pairs)
    if s0 > s1 or f0 > f1:
        raise c.fail("expected ((slow_min, slow_max), (fast_min, fast_max)) with min <= max")
    return ["-roi", str(f0), str(f1), str(s0), str(s1)]


def _mask(kw, value, extras):
    c = _Check(kw, value)
    m = np.asarray(value)
    if m.ndim != 2 or m.dtype.kind not in "biuf":
        raise c.fail("expected a 2-D (slow, fast) array; 0 or False skips a pixel")
    if m.dtype.kind == "f" and not np.all(np.isfinite(m)):
        raise c.fail("expected finite numbers")
    extras["mask"] = (m != 0).astype(np.uint16)
    return []


def _detector_abs(kw, value, extras):
    x = _Check(kw, value).real(lo=0.0, lo_open=True, allow_inf=True)
    return ["-detector_abs", "inf" if math.isinf(x) else _fmt(x)]


def _scale(flag):
    def words(kw, value, extras):
        if value is None:
            return []
        return [flag, _fmt(_Check(kw, value).real(lo=0.0, lo_open=True))]
    return words


def _oversample(kw, value, extras):
    if value is None:
        return []
    return ["-oversample", str(_Check(kw, value).integer(lo=1, hi=1000))]


def _noise(kw, value, extras):
    return [] if _Check(kw, value).flag() else ["-nonoise"]


def _pgm(kw, value, extras):
    return [] if _Check(kw, value).flag() else ["-nopgm"]


K = Keyword
KEYWORDS: Dict[str, Keyword] = {k.name: k for k in (
    # crystal
    K("cell", "Angstrom, degrees", "unit cell (a, b, c, alpha, beta, gamma)", _cell),
    K("A_matrix", "1/Angstrom", "orientation and cell as a 3x3 array whose columns are a*, "
      "b*, c* in the lab frame (A = UB; a MOSFLM matrix without its wavelength factor)",
      _A_matrix),
    K("mat_file", "", "MOSFLM orientation matrix file (as -mat)", _file("-mat")),
    K("misset_deg", "degrees", "misset rotations about x, y, z, or 'random'", _misset),
    K("misset_seed", "", "seed of misset_deg='random' (default: the time)", _misset_seed),
    K("N_cells", "unit cells", "crystal size in unit cells: N, or (Na, Nb, Nc)", _N),
    K("crystal_size_mm", "mm", "crystal size instead of N_cells: one size, or (x, y, z)",
      _crystal_size),
    K("crystal_shape", "", "'square' (parallelepiped, default), 'round', 'gauss' or "
      "'tophat'", _shape),
    K("fudge", "", "spot-shape fudge factor", _number("-fudge", lo=0.0, lo_open=True)),
    K("Fhkl", "electrons", "structure factors: a dict {(h, k, l): F}, a pair (hkl (n, 3) "
      "ints, F (n,)), or an 'h k l F' text file", _Fhkl),
    K("hkl_file", "", "'h k l F' text file (as -hkl)", _file("-hkl")),
    K("default_F", "electrons", "structure factor of every unlisted reflection",
      _number("-default_F")),
    K("dump_file", "", "binary structure-factor cache (as -dump): read when no structure "
      "factors are given, written when they are", lambda kw, v, e: ["-dump", _Check(kw, v)
                                                                   .path(must_exist=False)]),
    K("mosaic_spread_deg", "degrees", "isotropic mosaic spread", _number("-mosaic", lo=0.0)),
    K("mosaic_domains", "", "number of mosaic domains", _count("-mosaic_dom")),
    K("mosaic_seed", "", "seed of the mosaic domain orientations (default 12345678)",
      lambda kw, v, e: ["-mosaic_seed", str(_Check(kw, v).integer())]),
    K("phi_deg", "degrees", "spindle angle at the start of the exposure", _number("-phi")),
    K("osc_deg", "degrees", "oscillation range", _number("-osc", lo=0.0)),
    K("phistep_deg", "degrees", "spindle step", _number("-phistep", lo=0.0, lo_open=True)),
    K("phisteps", "", "number of spindle steps", _count("-phisteps")),
    K("spindle_axis", "unit vector", "spindle rotation axis (needs convention='custom')",
      _custom_vector("-spindle_axis")),
    K("interpolate", "", "tricubic structure-factor interpolation: True, False, or None "
      "(auto: on when any N <= 2)", _interpolate),
    K("water_size_um", "um", "water thickness for the background", _number("-water", lo=0.0)),
    # beam
    K("wavelength_A", "Angstrom", "X-ray wavelength", _number("-lambda", lo=0.0, lo_open=True)),
    K("energy_eV", "eV", "photon energy, instead of wavelength_A",
      _number("-energy", lo=0.0, lo_open=True)),
    K("dispersion_pct", "percent", "spectral dispersion", _number("-dispersion", lo=0.0)),
    K("dispsteps", "", "number of wavelengths", _count("-dispsteps")),
    K("divergence_mrad", "mrad", "beam divergence, both directions", _divergence),
    K("hdivrange_mrad", "mrad", "horizontal divergence", _number("-hdivrange", lo=0.0)),
    K("vdivrange_mrad", "mrad", "vertical divergence", _number("-vdivrange", lo=0.0)),
    K("hdivstep_mrad", "mrad", "horizontal divergence step",
      _number("-hdivstep", lo=0.0, lo_open=True)),
    K("vdivstep_mrad", "mrad", "vertical divergence step",
      _number("-vdivstep", lo=0.0, lo_open=True)),
    K("hdivsteps", "", "horizontal divergence steps", _count("-hdivsteps")),
    K("vdivsteps", "", "vertical divergence steps", _count("-vdivsteps")),
    K("divsteps", "", "divergence steps, both directions", _divsteps),
    K("round_div", "", "cut the divergence grid to an ellipse (default True)",
      _switch("-round_div", "-square_div")),
    K("source_file", "", "X-ray sources, one 'X Y Z weight wavelength' per line",
      _file("-sourcefile")),
    K("fluence", "photons/m^2", "incident fluence", _number("-fluence", lo=0.0, lo_open=True)),
    K("flux", "photons/s", "incident flux (with exposure_s and beamsize_mm)",
      _number("-flux", lo=0.0)),
    K("exposure_s", "s", "exposure time", _number("-exposure", lo=0.0, lo_open=True)),
    K("beamsize_mm", "mm", "beam size", _number("-beamsize", lo=0.0, lo_open=True)),
    K("polarization", "Kahn factor", "polarization (0 unpolarized, 1 fully polarized)",
      _number("-polar", lo=-1.0, hi=1.0)),
    K("nopolar", "", "no polarization correction", _switch("-nopolar")),
    K("beam_vector", "unit vector", "beam direction (needs convention='custom')",
      _custom_vector("-beam_vector")),
    K("polar_vector", "unit vector", "E-vector direction (needs convention='custom')",
      _custom_vector("-polar_vector")),
    # detector
    K("detpixels", "pixels", "detector size: N, or (slow, fast)", _detpixels),
    K("detsize_mm", "mm", "detector size instead of detpixels: one size, or (slow, fast)",
      _detsize),
    K("pixel_size_mm", "mm", "pixel size", _number("-pixel", lo=0.0, lo_open=True)),
    K("distance_mm", "mm", "crystal to detector distance along the beam",
      _number("-distance", lo=0.0, lo_open=True)),
    K("close_distance_mm", "mm", "crystal to detector plane distance",
      _number("-close_distance", lo=0.0, lo_open=True)),
    K("convention", "", "'mosflm' (default), 'xds', 'adxv', 'denzo', 'dials' or 'custom'",
      _convention),
    K("pivot", "", "'beam' or 'sample' (only the custom convention lets you choose)", _pivot),
    K("xbeam_mm", "mm", "direct-beam X as -Xbeam gives it (the convention's own axes; "
      "MOSFLM: along slow)", _number("-Xbeam")),
    K("ybeam_mm", "mm", "direct-beam Y as -Ybeam gives it (MOSFLM: along fast)",
      _number("-Ybeam")),
    K("xclose_mm", "mm", "point of closest approach, X (as -Xclose)", _number("-Xclose")),
    K("yclose_mm", "mm", "point of closest approach, Y (as -Yclose)", _number("-Yclose")),
    K("orgx_px", "pixels", "XDS ORGX", _number("-ORGX")),
    K("orgy_px", "pixels", "XDS ORGY", _number("-ORGY")),
    K("fdet_vector", "unit vector", "fast detector axis (needs convention='custom')",
      _custom_vector("-fdet_vector")),
    K("sdet_vector", "unit vector", "slow detector axis (needs convention='custom')",
      _custom_vector("-sdet_vector")),
    K("odet_vector", "unit vector", "detector normal (needs convention='custom')",
      _custom_vector("-odet_vector")),
    K("twotheta_axis", "unit vector", "two-theta rotation axis (needs convention='custom')",
      _twotheta_axis),
    K("pix0_vector_mm", "mm", "crystal to the corner of the first pixel (needs "
      "convention='custom')", _pix0),
    K("detector_rot_deg", "degrees", "detector rotations about x, y, z", _rotations),
    K("twotheta_deg", "degrees", "detector two-theta swing", _number("-twotheta")),
    K("curved_detector", "", "every pixel at the same distance", _switch("-curved_det")),
    K("point_pixel", "", "no pixel obliquity: inverse-square law only",
      _switch("-point_pixel")),
    K("detector_thick_um", "um", "sensor thickness", _number("-detector_thick", lo=0.0)),
    K("detector_abs_um", "um", "sensor attenuation depth (math.inf: no absorption)",
      _detector_abs),
    K("detector_thicksteps", "", "number of sensor layers", _count("-thicksteps")),
    K("roi", "pixels", "render only ((slow_min, slow_max), (fast_min, fast_max)), inclusive",
      _roi),
    K("mask", "", "(slow, fast) array; pixels where it is 0 or False are skipped", _mask),
    K("mask_file", "", "SMV mask image (its header also sets the detector, as -mask)",
      _file("-mask")),
    K("dmin_A", "Angstrom", "skip pixels beyond this resolution", _number("-dmin", lo=0.0)),
    K("oversample", "sub-pixels per side", "pixel oversampling (None: auto)", _oversample),
    K("oversample_thick", "", "sensor absorption per sub-pixel",
      _switch("-oversample_thick")),
    K("oversample_polar", "", "polarization per sub-pixel", _switch("-oversample_polar")),
    K("oversample_omega", "", "solid angle per sub-pixel", _switch("-oversample_omega")),
    # images and noise
    K("seed", "", "noise seed (default: the time; the chosen one is Simulation.seed)", _seed),
    K("noise", "", "compute the noise image (default True)", _noise),
    K("adc_offset_adu", "ADU", "offset added to the integer images", _number("-adc")),
    K("int_scale", "ADU/photon", "scale of int_image (None: 55000 / max)", _scale("-scale")),
    K("pgm", "", "compute the 8-bit preview image (default True)", _pgm),
    K("pgm_scale", "", "scale of the preview image (None: auto)", _scale("-pgmscale")),
    K("c_parity", "", "reproduce nanoBragg.c's phi = 0 carry-over defect", _switch("-c_parity")),
    K("fast", "", "fast mode (not bit-identical; see README)", _switch("-fast")),
)}
del K

# flags named by the plan's errors, and the keyword that stands for each
FLAG_KEYWORD = {
    "-beamsize": "beamsize_mm", "-cell": "cell", "-cell/-misset": "cell/misset_deg",
    "-close_distance": "close_distance_mm", "-detpixels": "detpixels", "-detsize": "detsize_mm",
    "-distance": "distance_mm", "-divsteps/-dispsteps": "divsteps/dispsteps",
    "-fdet_vector/-sdet_vector": "fdet_vector/sdet_vector", "-lambda": "wavelength_A",
    "-mat": "mat_file", "-misset": "misset_deg", "-odet_vector": "odet_vector",
    "-oversample": "oversample", "-phistep": "phistep_deg", "-phisteps": "phisteps",
    "-pixel": "pixel_size_mm", "-roi": "roi", "-sourcefile": "source_file",
    "-mosaic_dom": "mosaic_domains", "-hdivsteps": "hdivsteps", "-vdivsteps": "vdivsteps",
    "-dispsteps": "dispsteps", "-thicksteps": "detector_thicksteps",
    "-hkl": "Fhkl/hkl_file", "-mask": "mask_file",
}


def in_keyword_terms(message):
    """A plan error that names a flag, reworded to name the keyword."""
    head, sep, rest = message.partition(": ")
    if sep and head in FLAG_KEYWORD:
        return "%s (%s): %s" % (FLAG_KEYWORD[head], head, rest)
    return message


def keyword_words(keywords: dict):
    """(flag words, extras) for checked keywords in the caller's order; ``extras`` holds
    in-memory inputs and what the Simulation needs to know (convention, pivot, ...)."""
    extras = {"_vectors": [], "_tail": [], "_fields": {}}
    words: List[str] = []
    for name, value in keywords.items():
        kw = KEYWORDS.get(name)
        if kw is None:
            import difflib
            close = difflib.get_close_matches(name, list(KEYWORDS), n=2, cutoff=0.6)
            hint = " (did you mean %s?)" % " or ".join(close) if close else ""
            raise NbsimError("unknown keyword '%s'%s; nbsim.Simulation takes: %s"
                             % (name, hint, ", ".join(KEYWORDS)))
        words += kw.to_words(kw, value, extras)
    return words, extras


def describe():
    """One line per keyword: name, unit, meaning (for docs and ``help``)."""
    return ["%-20s %-22s %s" % (k.name, "[%s]" % k.unit if k.unit else "", k.doc)
            for k in KEYWORDS.values()]
