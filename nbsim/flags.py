"""The nanoBragg flag table: how each command-line word changes the settings.

nanoBragg.c recognises a flag when the word *contains* a pattern (C ``strstr``), tests
every pattern in a fixed order, and reads values with ``atof``/``atoi``. That matching
has consequences users rely on without knowing it (``-misset_seed 7`` also matches
``-misset`` and reads the next three words as angles; ``-twotheta_axis`` also matches
``-twotheta``). To be a drop-in replacement nbsim applies the same rules in the same
order, but:

* a word spelled exactly as a documented flag must have well-formed values
  (missing or non-numeric values are an error naming the flag);
* a rule fired only by substring (a "quirk") behaves as the reference does and nbsim
  prints a one-line warning saying what else the word did;
* a word starting with ``-`` that fires no rule and is not a value is an error.

Each rule is ``Rule(canonical spellings, matcher, nvals, kinds, action, stop)``:
``nvals`` is how many following words the reference needs before it acts,
``kinds`` says how to check them ("f" float, "i" integer, "s" any string), and
``stop`` mirrors the reference's ``continue`` (no later rule sees this word).
"""
from __future__ import annotations

import math
import re
from typing import Callable, Sequence, Tuple

from .config import Convention, Pivot, Shape
from .errors import NbsimError
from .records import record
from .io.cparse import c_atof, c_atoi, printable

RTD = 180.0 * (1.0 / math.pi)  # the reference's degrees-per-radian, computed the same way

# ASCII only, as C's strtod/strtol read numbers: "１６" or "٤٥" is not a number there
# (it reads as 0), and so it is refused here rather than taken as 0 or as 16
_FLOAT_RE = re.compile(r"^\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)\s*$",
                       re.I | re.ASCII)
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$", re.ASCII)


@record(frozen=True)
class Rule:
    names: Tuple[str, ...]
    match: Callable[[str], bool]
    nvals: int
    kinds: str
    action: Callable[[dict, Sequence[str]], None]
    stop: bool = False
    doc: str = ""


def _has(*patterns):
    return lambda a: any(p in a for p in patterns)


def _has_len(pattern, length):
    return lambda a: pattern in a and len(a) == length


def _is(word):
    return lambda a: a == word


def _setf(key, scale=None, divide=None):
    """``v[key] = atof(word)``, then ``/ divide`` or ``* scale``: the one operation the
    reference writes for this flag (``/1000.0`` is not ``*(1/1000.0)`` in the last bit)."""
    def act(v, vals):
        x = c_atof(vals[0])
        if divide is not None:
            x = x / divide
        elif scale is not None:
            x = x * scale
        v[key] = x
    return act


def _seti(key, negate=False):
    def act(v, vals):
        n = c_atoi(vals[0])
        v[key] = -n if negate else n
    return act


def _sets(key):
    def act(v, vals):
        v[key] = vals[0]
    return act


def _const(**kv):
    def act(v, vals):
        v.update(kv)
    return act


def _note_custom(v, key):
    v.setdefault("_implicit", []).append(("convention", key))


def _note_pivot(v, pivot, why):
    v.setdefault("_pivots", []).append((pivot, why))


def _vec(key, convention=True):
    def act(v, vals):
        if convention:
            v["convention"] = Convention.CUSTOM
            _note_custom(v, key)
        v[key] = (c_atof(vals[0]), c_atof(vals[1]), c_atof(vals[2]))
    return act


def _set_pivot(pivot, key, divide=None):
    """A flag that also sets the pivot; its value is divided by ``divide`` (mm to m,
    degrees to radians), exactly as the reference divides."""
    def act(v, vals):
        x = c_atof(vals[0])
        v[key] = x / divide if divide is not None else x
        v["pivot"] = pivot
        _note_pivot(v, pivot, key)
    return act


def _cell(v, vals):
    # the reference stops reading cell values at the first word starting with '-'
    v["user_cell"] = True
    cell = list(v.get("_cell_raw", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    for j, word in enumerate(vals[:6]):
        if word.startswith("-"):
            break
        x = c_atof(word)
        cell[j] = x if j < 3 else x / RTD
    v["_cell_raw"] = cell


def _misset_random(v, vals):
    v["misset_mode"] = "random"


def _misset_angles(v, vals):
    v["misset_mode"] = "angles"
    v["misset"] = (c_atof(vals[0]) / RTD, c_atof(vals[1]) / RTD, c_atof(vals[2]) / RTD)


def _sample_all(v, vals):
    x = c_atof(vals[0]) / 1000
    v["sample_x"] = v["sample_y"] = v["sample_z"] = x


def _detector_abs(v, vals):
    word = vals[0]
    if "inf" in word or c_atof(word) == 0.0:
        v["thick"] = 0.0
        v["mu"] = 0.0
    else:
        v["mu"] = 1.0 / (c_atof(word) * 1e-6)


def _pivot(v, vals):
    if "sample" in vals[0]:
        v["pivot"] = Pivot.SAMPLE
        _note_pivot(v, Pivot.SAMPLE, "pivot")
    if "beam" in vals[0]:
        v["pivot"] = Pivot.BEAM
        _note_pivot(v, Pivot.BEAM, "pivot")


def _convention(conv, pivot):
    def act(v, vals):
        v["convention"] = conv
        v["pivot"] = pivot
        _note_pivot(v, pivot, conv.value)
    return act


def _pix0(v, vals):
    v["convention"] = Convention.CUSTOM
    _note_custom(v, "pix0_vector")
    v["pix0_vector"] = (c_atof(vals[0]), c_atof(vals[1]), c_atof(vals[2]))


def _detpixels(v, vals):
    v["fpixels"] = v["spixels"] = c_atoi(vals[0])


def _detsize(v, vals):
    v["detsize_f"] = v["detsize_s"] = c_atof(vals[0]) / 1000.0


def _polar(v, vals):
    v["polarization"] = c_atof(vals[0])
    v["nopolar"] = False


def _roi(v, vals):
    v["roi"] = tuple(c_atoi(w) for w in vals[:4])


def _energy(v, vals):
    e = c_atof(vals[0])
    # C divides by zero to an infinity; the wavelength check then refuses it
    v["lambda0"] = (12398.42 / e) / 1.0e10 if e != 0.0 else math.copysign(math.inf, e)


def _divergence(v, vals):
    v["hdivrange"] = v["vdivrange"] = c_atof(vals[0]) / 1000.0


def _divsteps(v, vals):
    v["hdivsteps"] = v["vdivsteps"] = c_atoi(vals[0])


def _allN(v, vals):
    v["Na"] = v["Nb"] = v["Nc"] = float(c_atoi(vals[0]))


def _stol(mult):
    def act(v, vals):
        v["stol_file"] = vals[0]
        v["stol_file_mult"] = mult
    return act


def _pgmfile(v, vals):
    v["pgmfile"] = vals[0]
    v["write_pgm"] = True


def _noisefile(v, vals):
    v["noisefile"] = vals[0]
    v["calculate_noise"] = True


def _pgmscale(v, vals):
    v["pgm_scale"] = c_atof(vals[0])
    v["write_pgm"] = True


def _printout_pixel(v, vals):
    v["printout_pixel"] = (c_atoi(vals[0]), c_atoi(vals[1]))


def _mosaic(v, vals):
    v["mosaic_spread"] = c_atof(vals[0]) / RTD


def _nothing(v, vals):
    pass


def _ignored_source_distance(v, vals):
    v.setdefault("_ignored", []).append("-source_distance has no effect in nanoBragg.c "
                                        "(sources are directions); nbsim ignores it too")


R = Rule
# The order below is the reference's order; it matters (later rules win, and
# ``stop`` hides a word from the rest).
REFERENCE_RULES: Tuple[Rule, ...] = (
    R(("-Na",), _has("-Na"), 1, "i", lambda v, w: v.__setitem__("Na", float(c_atoi(w[0]))), True,
      "number of unit cells along a"),
    R(("-Nb",), _has("-Nb"), 1, "i", lambda v, w: v.__setitem__("Nb", float(c_atoi(w[0]))), True,
      "number of unit cells along b"),
    R(("-Nc",), _has("-Nc"), 1, "i", lambda v, w: v.__setitem__("Nc", float(c_atoi(w[0]))), True,
      "number of unit cells along c"),
    R(("-N",), _is("-N"), 1, "i", _allN, True, "number of unit cells along a, b and c"),
    R(("-cell",), _has("-cell"), 1, "ffffff?", _cell, False,
      "unit cell a b c (Angstrom) alpha beta gamma (degrees)"),
    R(("-misset",), lambda a: "-misset" in a, 1, "s", _misset_random, True,
      "crystal misset rotations about x,y,z (degrees), or 'random'"),
    R(("-misset",), _has("-misset"), 3, "fff", _misset_angles, False, ""),
    R(("-samplesize", "-sample_size"), _has("-samplesize", "-sample_size"), 1, "f", _sample_all,
      False, "sample size (mm), all three dimensions"),
    R(("-sample_thick", "-sample_x"), _has("-sample_thick", "-sample_x"), 1, "f",
      _setf("sample_x", divide=1000), False, "sample thickness along x (mm)"),
    R(("-sample_width", "-sample_y", "-width"), _has("-sample_width", "-sample_y", "-width"), 1,
      "f", _setf("sample_y", divide=1000), False, "sample width along y (mm)"),
    R(("-sample_height", "-sample_heigh", "-sample_z", "-height", "-heigh"),
      _has("-sample_heigh", "-sample_z", "-heigh"), 1, "f", _setf("sample_z", divide=1000),
      False, "sample height along z (mm)"),
    R(("-xtalsize", "-xtal_size"), _has("-xtalsize", "-xtal_size"), 1, "f", _sample_all, False,
      "crystal full width (mm), alternative to -N"),
    R(("-xtal_thick", "-xtal_x"), _has("-xtal_thick", "-xtal_x"), 1, "f",
      _setf("sample_x", divide=1000), False, "crystal size along x (mm)"),
    R(("-xtal_width", "-xtal_y", "-width"), _has("-xtal_width", "-xtal_y", "-width"), 1, "f",
      _setf("sample_y", divide=1000), False, "crystal size along y (mm)"),
    R(("-xtal_height", "-xtal_heigh", "-xtal_z", "-height", "-heigh"),
      _has("-xtal_heigh", "-xtal_z", "-heigh"), 1, "f", _setf("sample_z", divide=1000), False,
      "crystal size along z (mm)"),
    R(("-density", "-sample_density", "-sample_den"), _has("-density", "-sample_den"), 1, "f",
      _nothing, False, "sample density (g/cm^3); accepted, unused by the reference"),
    R(("-MW", "-molecular_weight", "-molec"), lambda a: a == "-MW" or "-molec" in a, 1, "f",
      _nothing, False, "molecular weight; accepted, unused by the reference"),
    R(("-Xbeam",), _has("-Xbeam"), 1, "f", _set_pivot(Pivot.BEAM, "xbeam", 1000.0), False,
      "direct-beam position on the detector, X (mm)"),
    R(("-Ybeam",), _has("-Ybeam"), 1, "f", _set_pivot(Pivot.BEAM, "ybeam", 1000.0), False,
      "direct-beam position on the detector, Y (mm)"),
    R(("-Xclose",), _has("-Xclose"), 1, "f", _set_pivot(Pivot.SAMPLE, "xclose", 1000.0),
      False, "point of closest approach, X (mm)"),
    R(("-Yclose",), _has("-Yclose"), 1, "f", _set_pivot(Pivot.SAMPLE, "yclose", 1000.0),
      False, "point of closest approach, Y (mm)"),
    R(("-ORGX",), _has("-ORGX"), 1, "f", _set_pivot(Pivot.SAMPLE, "orgx"), False,
      "XDS origin, fast (pixels)"),
    R(("-ORGY",), _has("-ORGY"), 1, "f", _set_pivot(Pivot.SAMPLE, "orgy"), False,
      "XDS origin, slow (pixels)"),
    R(("-pivot",), _has("-pivot"), 1, "s", _pivot, False, "detector pivot: sample or beam"),
    R(("-mosflm",), _has("-mosflm"), 0, "", _convention(Convention.MOSFLM, Pivot.BEAM), False,
      "MOSFLM detector convention"),
    R(("-xds",), _has("-xds"), 0, "", _convention(Convention.XDS, Pivot.SAMPLE), False,
      "XDS detector convention"),
    R(("-adxv",), _has("-adxv"), 0, "", _convention(Convention.ADXV, Pivot.BEAM), False,
      "ADXV detector convention"),
    R(("-denzo",), _has("-denzo"), 0, "", _convention(Convention.DENZO, Pivot.BEAM), False,
      "DENZO detector convention"),
    R(("-dials",), _has("-dials"), 0, "", _convention(Convention.DIALS, Pivot.BEAM), False,
      "DIALS detector convention"),
    R(("-fdet_vector",), _has("-fdet_vector"), 3, "fff", _vec("fdet_vector"), False,
      "fast detector axis (unit vector)"),
    R(("-sdet_vector",), _has("-sdet_vector"), 3, "fff", _vec("sdet_vector"), False,
      "slow detector axis"),
    R(("-odet_vector",), _has("-odet_vector"), 3, "fff", _vec("odet_vector"), False,
      "detector normal"),
    R(("-beam_vector",), _has("-beam_vector"), 3, "fff", _vec("beam_vector"), False,
      "x-ray beam direction"),
    R(("-polar_vector",), _has("-polar_vector"), 3, "fff", _vec("polar_vector"), False,
      "x-ray E-vector direction"),
    R(("-spindle_axis",), _has("-spindle_axis"), 3, "fff", _vec("spindle_vector"), False,
      "right-handed phi rotation axis"),
    R(("-twotheta_axis",), _has("-twotheta_axis"), 3, "fff", _vec("twotheta_axis"), False,
      "detector two-theta rotation axis"),
    R(("-pix0_vector", "-pix0_vector_mm"), _has("-pix0_vector"), 3, "fff", _pix0, False,
      "vector from crystal to the first pixel (metres, also for the _mm spelling)"),
    R(("-distance",), _has("-distance"), 1, "f", _set_pivot(Pivot.BEAM, "distance", 1000.0),
      False, "crystal to detector distance along the beam (mm)"),
    R(("-close_distance",), _has("-close_distance"), 1, "f",
      _set_pivot(Pivot.SAMPLE, "close_distance", 1000.0), False,
      "crystal to detector plane distance (mm)"),
    # the reference has this flag commented out: its default 10 m source distance only
    # scales vectors that are normalised anyway. Accepted and ignored, with a warning, so
    # that scripts written for it keep working and the bits stay the reference's.
    R(("-source_distance", "-source_dist"), _has("-source_dist"), 1, "f", _ignored_source_distance,
      False, "x-ray source distance (mm); ignored, as nanoBragg.c ignores it"),
    R(("-detector_abs", "-detector_absorb", "-detector_absorption"), _has("-detector_abs"), 1,
      "s", _detector_abs, False, "sensor attenuation depth (um), or inf"),
    R(("-detector_thick",), _has_len("-detector_thick", 15), 1, "f",
      _setf("thick", scale=1e-6), False, "sensor thickness (um)"),
    R(("-detector_thicksteps",), _has("-detector_thicksteps"), 1, "i", _seti("thicksteps"), False,
      "number of sensor layers"),
    R(("-thicksteps",), _has("-thicksteps"), 1, "i", _seti("thicksteps"), False,
      "number of sensor layers"),
    R(("-twotheta",), _has("-twotheta"), 1, "f", _set_pivot(Pivot.SAMPLE, "twotheta", RTD),
      False, "detector two-theta swing (degrees)"),
    R(("-detector_rotx",), _has("-detector_rotx"), 1, "f", _setf("rotx", divide=RTD), False,
      "detector rotation about x (degrees)"),
    R(("-detector_roty",), _has("-detector_roty"), 1, "f", _setf("roty", divide=RTD), False,
      "detector rotation about y (degrees)"),
    R(("-detector_rotz",), _has("-detector_rotz"), 1, "f", _setf("rotz", divide=RTD), False,
      "detector rotation about z (degrees)"),
    R(("-detsize",), _has_len("-detsize", 8), 1, "f", _detsize, False, "detector size (mm)"),
    R(("-detsize_f",), _has("-detsize_f"), 1, "f", _setf("detsize_f", divide=1000.0), False,
      "detector size, fast axis (mm)"),
    R(("-detsize_s",), _has("-detsize_s"), 1, "f", _setf("detsize_s", divide=1000.0), False,
      "detector size, slow axis (mm)"),
    R(("-detpixels",), _has_len("-detpixels", 10), 1, "i", _detpixels, False,
      "detector size (pixels)"),
    R(("-detpixels_f", "-detpixels_x"), _has("-detpixels_f", "-detpixels_x"), 1, "i",
      _seti("fpixels"), False, "detector size, fast axis (pixels)"),
    R(("-detpixels_s", "-detpixels_y"), _has("-detpixels_s", "-detpixels_y"), 1, "i",
      _seti("spixels"), False, "detector size, slow axis (pixels)"),
    # the reference wants a word after -curved_det even though it takes no value
    R(("-curved_det",), _has("-curved_det"), 1, "", _const(curved=True), False,
      "curved detector: every pixel at the same distance"),
    R(("-pixel",), _has("-pixel"), 1, "f", _setf("pixel_size", divide=1000.0), False,
      "pixel size (mm)"),
    R(("-point_pixel",), _has("-point_pixel"), 0, "", _const(point_pixel=True), False,
      "no pixel obliquity: inverse-square law only"),
    R(("-polar",), _has_len("-polar", 6), 1, "f", _polar, False, "Kahn polarization factor"),
    R(("-nopolar",), _has("-nopolar"), 0, "", _const(nopolar=True), False,
      "no polarization correction"),
    R(("-oversample_thick",), _has("-oversample_thick"), 0, "", _const(oversample_thick=True),
      True, "recompute sensor absorption for each sub-pixel"),
    R(("-oversample_polar",), _has("-oversample_polar"), 0, "", _const(oversample_polar=True),
      True, "recompute polarization for each sub-pixel"),
    R(("-oversample_omega",), _has("-oversample_omega"), 0, "", _const(oversample_omega=True),
      True, "recompute solid angle for each sub-pixel"),
    R(("-oversample",), _has("-oversample"), 1, "i", _seti("oversample"), False,
      "sub-pixels per pixel side"),
    R(("-roi",), _has("-roi"), 4, "iiii", _roi, False,
      "render only xmin xmax ymin ymax (pixels, inclusive)"),
    R(("-lambda", "-wave", "-wavelength"), _has("-lambda", "-wave"), 1, "f",
      _setf("lambda0", divide=1.0e10), False, "wavelength (Angstrom)"),
    R(("-energy",), _has("-energy"), 1, "f", _energy, False, "photon energy (eV)"),
    R(("-fluence",), _has("-fluence"), 1, "f", _setf("fluence"), False,
      "incident fluence (photons/m^2)"),
    R(("-flux",), _has("-flux"), 1, "f", _setf("flux"), False, "incident flux (photons/s)"),
    R(("-exposure",), _has("-exposure"), 1, "f", _setf("exposure"), False, "exposure time (s)"),
    R(("-beamsize",), _has("-beamsize"), 1, "f", _setf("beamsize", divide=1000), False,
      "beam size (mm)"),
    R(("-mosaic", "-mosaici", "-mosaicity", "-mosaic_spread", "-mosaic_spr"),
      lambda a: ("-mosaic" in a and len(a) == 7) or "-mosaici" in a or "-mosaic_spr" in a,
      1, "f", _mosaic, False, "isotropic mosaic spread (degrees)"),
    R(("-mosaic_dom", "-mosaic_domains"), _has("-mosaic_dom"), 1, "i", _seti("mosaic_domains"),
      False, "number of mosaic domains"),
    R(("-dispersion",), _has("-dispersion"), 1, "f", _setf("dispersion", divide=100.0), False,
      "spectral dispersion (percent)"),
    R(("-dispsteps",), _has("-dispsteps"), 1, "i", _seti("dispsteps"), False,
      "number of wavelengths"),
    R(("-divergence",), _has("-divergence"), 1, "f", _divergence, False,
      "beam divergence, both directions (mrad)"),
    R(("-hdivrange",), _has("-hdivrange"), 1, "f", _setf("hdivrange", divide=1000.0), False,
      "horizontal divergence (mrad)"),
    R(("-vdivrange",), _has("-vdivrange"), 1, "f", _setf("vdivrange", divide=1000.0), False,
      "vertical divergence (mrad)"),
    R(("-hdivstep",), _has_len("-hdivstep", 9), 1, "f", _setf("hdivstep", divide=1000.0), False,
      "horizontal divergence step (mrad)"),
    R(("-hdivsteps",), _has("-hdivsteps"), 1, "i", _seti("hdivsteps"), False,
      "horizontal divergence steps"),
    R(("-vdivstep",), _has_len("-vdivstep", 9), 1, "f", _setf("vdivstep", divide=1000.0), False,
      "vertical divergence step (mrad)"),
    R(("-vdivsteps",), _has("-vdivsteps"), 1, "i", _seti("vdivsteps"), False,
      "vertical divergence steps"),
    R(("-divsteps",), _has("-divsteps"), 1, "i", _divsteps, False, "divergence steps, both"),
    R(("-round_div",), _has("-round_div"), 0, "", _const(round_div=True), False,
      "cut the divergence grid to an ellipse"),
    R(("-square_div",), _has("-square_div"), 0, "", _const(round_div=False), False,
      "full divergence grid"),
    R(("-adc",), _has("-adc"), 1, "f", _setf("adc_offset"), False,
      "offset added to SMV pixel values"),
    R(("-phi",), _has_len("-phi", 4), 1, "f", _setf("phi0", divide=RTD), False,
      "starting spindle angle (degrees)"),
    R(("-osc",), _has("-osc"), 1, "f", _setf("osc", divide=RTD), False,
      "oscillation range (degrees)"),
    R(("-phistep",), _has_len("-phistep", 8), 1, "f", _setf("phistep", divide=RTD), False,
      "spindle step (degrees)"),
    R(("-phisteps",), _has("-phisteps"), 1, "i", _seti("phisteps"), False,
      "number of spindle steps"),
    R(("-dmin",), _has("-dmin"), 1, "f", _setf("dmin", scale=1e-10), False,
      "skip pixels beyond this resolution (Angstrom)"),
    R(("-mat",), _has("-mat"), 1, "s", _sets("mat_file"), False,
      "MOSFLM orientation matrix file"),
    R(("-hkl",), _has("-hkl"), 1, "s", _sets("hkl_file"), False, "h k l F text file"),
    R(("-default_F",), _has("-default_F"), 1, "f", _setf("default_F"), False,
      "structure factor of unlisted reflections"),
    R(("-dump", "-dumpfile"), _has("-dump"), 1, "s", _sets("dump_file"), False,
      "binary structure-factor cache file"),
    R(("-img",), _has("-img"), 1, "s", _nothing, False,
      "take detector parameters from an SMV header"),
    # read before all other flags (see nbsim.cli); listed here so the word is known
    R(("-mask",), _has("-mask"), 1, "s", _nothing, False,
      "SMV image whose zero pixels are skipped (its header also sets the detector)"),
    R(("-stolout",), lambda a: "-stolout" in a and len(a) > 7, 1, "s", _nothing, False,
      "accepted, unused by the reference"),
    R(("-stol",), _has_len("-stol", 5), 1, "s", _stol(1e10), False,
      "amorphous F vs sin(theta)/lambda file (read, unused by the reference)"),
    R(("-4stol",), _has_len("-4stol", 6), 1, "s", _stol(1e10 / 4), False,
      "as -stol, in 4 sin(theta)/lambda"),
    R(("-Q",), _has_len("-Q", 2), 1, "s", _stol(1e10 / math.pi / 4), False, "as -stol, in Q"),
    R(("-sourcefile",), _has("-sourcefile"), 1, "s", _sets("source_file"), False,
      "x-ray sources: X Y Z weight wavelength per line"),
    R(("-floatfile", "-floatimage"), _has("-floatfile", "-floatimage"), 1, "s",
      _sets("floatfile"), False, "raw float32 output image"),
    R(("-intfile", "-intimage"), _has("-intfile", "-intimage"), 1, "s", _sets("intfile"), False,
      "noiseless SMV output image"),
    R(("-pgmfile", "-pgmimage"), _has("-pgmfile", "-pgmimage"), 1, "s", _pgmfile, False,
      "8-bit PGM output image"),
    R(("-noisefile", "-noiseimage"), _has("-noisefile", "-noiseimage"), 1, "s", _noisefile,
      False, "SMV output image with Poisson noise"),
    R(("-nonoise",), _has("-nonoise"), 0, "", _const(calculate_noise=False), False,
      "do not write the noise image"),
    R(("-nopgm",), _has("-nopgm"), 0, "", _const(write_pgm=False), False,
      "do not write the PGM image"),
    R(("-scale",), _has("-scale"), 1, "f", _setf("intfile_scale"), False,
      "scale for the SMV image (default: auto)"),
    R(("-pgmscale",), _has("-pgmscale"), 1, "f", _pgmscale, False,
      "scale for the PGM image (default: auto)"),
    R(("-coherent",), _has("-coherent"), 0, "", _const(coherent=True), False,
      "accepted, no effect in the reference"),
    R(("-printout",), _has("-printout"), 0, "", _const(printout=True), False,
      "print pixel values"),
    R(("-noprogress",), _has("-noprogress"), 0, "", _const(progress=False), False,
      "no progress meter"),
    R(("-progress",), _has("-progress"), 0, "", _const(progress=True), False,
      "progress meter"),
    R(("-interpolate",), _has("-interpolate"), 0, "", _const(interpolate=1), False,
      "tricubic structure-factor interpolation"),
    R(("-nointerpolate",), _has("-nointerpolate"), 0, "", _const(interpolate=0), False,
      "no structure-factor interpolation"),
    R(("-round_xtal",), _has("-round_xtal"), 0, "", _const(shape=Shape.ROUND), False,
      "ellipsoidal crystal"),
    R(("-square_xtal",), _has("-square_xtal"), 0, "", _const(shape=Shape.SQUARE), False,
      "parallelepiped crystal (default)"),
    R(("-gauss_xtal",), _has("-gauss_xtal"), 0, "", _const(shape=Shape.GAUSS), False,
      "Gaussian spots"),
    R(("-tophat_spots", "-binary_spots"), _has("-binary_spots", "-tophat_spots"), 0, "",
      _const(shape=Shape.TOPHAT), False, "flat-top spots"),
    R(("-fudge",), _has("-fudge"), 1, "f", _setf("fudge"), False, "spot shape fudge factor"),
    R(("-printout_pixel",), _has("-printout_pixel"), 2, "ii", _printout_pixel, False,
      "print values of one pixel: fast slow"),
    R(("-seed",), _has("-seed"), 1, "i", _seti("seed", negate=True), False,
      "noise random seed"),
    R(("-mosaic_seed",), _has("-mosaic_seed"), 1, "i", _seti("mosaic_seed", negate=True), False,
      "mosaic domain random seed"),
    R(("-misset_seed",), _has("-misset_seed"), 1, "i", _seti("misset_seed", negate=True), False,
      "random misset seed"),
    R(("-water",), _has("-water"), 1, "f", _setf("water_size", divide=1e6), False,
      "water thickness for background (um)"),
)
del R


def _check_value(flag, word, kind):
    if kind in "fi" and word.startswith("-") and not _FLOAT_RE.match(word):
        raise NbsimError("%s: missing value (got the flag %s instead)" % (flag, printable(word)))
    ascii_note = "" if word.isascii() else (" (only ASCII digits make a number, as for "
                                            "nanoBragg.c's atof/atoi)")
    if kind == "f" and not _FLOAT_RE.match(word):
        raise NbsimError("%s: expected a number, got '%s'%s" % (flag, printable(word), ascii_note))
    if kind == "i" and not _INT_RE.match(word):
        raise NbsimError("%s: expected an integer, got '%s'%s" % (flag, printable(word), ascii_note))


def check_number(flag, word):
    """A number as nanoBragg.c's atof reads one (ASCII digits only), or a one-line error
    naming ``flag``; for nbsim's own flags that take a number."""
    _check_value(flag, word, "f")


def _hint(word):
    """' (did you mean ...?)' for a near miss; nanoBragg.c would ignore the word silently."""
    import difflib
    names = sorted({n for rule in REFERENCE_RULES for n in rule.names})
    close = difflib.get_close_matches(word, names, n=2, cutoff=0.75)
    if not close:
        return ""
    return " (did you mean %s? nanoBragg.c would silently ignore it)" % " or ".join(close)


def known_flag(word):
    """True for a word spelled exactly as one of the reference's documented flags."""
    return any(word in rule.names for rule in REFERENCE_RULES)


_MATCHING = {}      # word -> the rules whose pattern it matches, in the table's order


def _rules_matching(word):
    """The rules whose matcher fires for ``word`` (a matcher depends on the word alone):
    kept per word, since nbsim-batch parses one command line per frame and 60 rules'
    matchers cost 2 ms a command line."""
    rules = _MATCHING.get(word)
    if rules is None:
        rules = tuple(rule for rule in REFERENCE_RULES if rule.match(word))
        if len(_MATCHING) < 4096:
            _MATCHING[word] = rules
    return rules


def apply_reference_rules(v: dict, args: Sequence[str], extra_flags: dict, warn) -> None:
    """Apply the reference's rules to ``args`` (argv without the program name).

    ``extra_flags``: ``{position: number of values}`` of the nbsim-only flags found in
    ``args`` (see nbsim.cli); those words and their values are not the reference's.
    """
    n = len(args)
    consumed = [False] * n
    fired_any = [False] * n
    nbsim_words = set(extra_flags)
    for i, nv in extra_flags.items():
        fired_any[i] = True
        for j in range(i + 1, min(n, i + 1 + nv)):
            consumed[j] = True
            nbsim_words.add(j)
    for i, word in enumerate(args):
        if not word.startswith("-") or i in nbsim_words:
            continue
        available = n - 1 - i
        for rule in _rules_matching(word):
            canonical = word in rule.names
            if rule.action is _misset_random:
                # the "-misset random" test; fires only when the next word says so
                if available < 1 or "rand" not in args[i + 1]:
                    continue
            if available < rule.nvals:
                if canonical and rule.kinds == "":
                    # -curved_det takes no value but the reference acts on it only when
                    # another word follows; as the last word it is ignored there too
                    warn("%s is ignored as the last word on the command line, as in "
                         "nanoBragg.c; put it before another flag" % word)
                    fired_any[i] = True
                    continue
                if canonical:
                    raise NbsimError("%s: missing value (needs %d)" % (word, rule.nvals))
                continue
            vals = list(args[i + 1:i + 1 + rule.nvals]) if rule.nvals else []
            if rule.action is _cell:
                vals = list(args[i + 1:i + 7])
                if canonical:
                    # like the reference, stop at the first word that starts with '-'
                    # (so a negative cell value ends the list too)
                    taken = 0
                    for w in vals:
                        if w.startswith("-"):
                            break
                        _check_value(word, w, "f")
                        taken += 1
                    if taken == 0:
                        raise NbsimError("%s: missing value (needs a b c [alpha beta gamma])" % word)
                    for j in range(taken):
                        consumed[i + 1 + j] = True
            elif canonical:
                for j, kind in enumerate(rule.kinds[:rule.nvals]):
                    _check_value(word, vals[j], kind)
                for j in range(rule.nvals):
                    if rule.kinds[j:j + 1] != "":
                        consumed[i + 1 + j] = True
            else:
                warn("%s also acts as %s here, as in nanoBragg.c (it contains that flag's "
                     "name)%s" % (word, rule.names[0],
                                  (": it reads %s" % " ".join(vals)) if vals else ""))
                # the words it read are its values, not stray arguments
                for j in range(len(vals)):
                    if rule.kinds[j:j + 1] not in ("", "?"):
                        consumed[i + 1 + j] = True
            rule.action(v, vals)
            fired_any[i] = True
            if rule.stop:
                break
    for i, word in enumerate(args):
        if consumed[i] or fired_any[i]:
            continue
        if word.startswith("-") and not _FLOAT_RE.match(word):
            raise NbsimError("unknown flag %s%s (see -h for the list)" % (printable(word), _hint(word)))
        raise NbsimError("unexpected argument '%s' (no flag takes it)" % printable(word))


def implicit_switch_warnings(v):
    """One-line warnings for the convention and pivot changes the reference makes silently,
    and for flags it accepts but ignores.

    Pops the bookkeeping keys the rules leave in ``v``.
    """
    out = list(dict.fromkeys(v.pop("_ignored", [])))
    customs = v.pop("_implicit", [])
    if customs:
        names = sorted({"-" + ("spindle_axis" if k == "spindle_vector" else k) for _, k in customs})
        out.append("%s selects the CUSTOM detector convention, as in nanoBragg.c (beam centre "
                   "defaults then come from -Xclose/-Yclose)" % "/".join(names))
    pivots = v.pop("_pivots", [])
    if len({p for p, _ in pivots}) > 1:
        last_pivot, last_why = pivots[-1]
        last_why = {"xbeam": "Xbeam", "ybeam": "Ybeam", "xclose": "Xclose", "yclose": "Yclose",
                    "orgx": "ORGX", "orgy": "ORGY"}.get(last_why, last_why)
        out.append("detector pivot is '%s' because -%s came last; nanoBragg.c lets the last of "
                   "-pivot, -distance, -close_distance, -Xbeam/-Ybeam, -Xclose/-Yclose, -ORGX/-ORGY, "
                   "-twotheta and the convention flags decide" % (last_pivot.value, last_why))
    return out


def usage_lines():
    """One line per documented flag for ``-h``: spellings, value count, meaning."""
    seen = set()
    out = []
    for rule in REFERENCE_RULES:
        if not rule.doc or rule.names in seen:
            continue
        seen.add(rule.names)
        args = " ".join("<%s>" % {"f": "num", "i": "int", "s": "word", "?": ""}[k]
                        for k in rule.kinds[:rule.nvals] if k != "?")
        out.append((" ".join(rule.names), args, rule.doc))
    return out
