"""A Config from nanoBragg command-line words, and the words for a Config.

``config_from_argv`` is the command's own parser (:func:`nbsim.cli.config_from_args`),
so a flag means in Python exactly what it means to ``nanoBragg``.

``config_to_args`` is its inverse. A field that differs from what the command would
assume is written as the flag that sets it, with a number chosen so that the flag's
own arithmetic (millimetres / 1000, degrees / RTD, ...) gives back the stored double
bit for bit; that number is found by applying the flag's rule from
:mod:`nbsim.flags` to candidate words, so no conversion is written twice. The words
are then parsed again and compared field by field: ``to_args`` either round-trips or
raises NbsimError naming the field it cannot express.

Orderings that matter on a nanoBragg command line (the rules are the reference's):
vector flags select the CUSTOM convention, so a named convention comes after them;
``-twotheta_axis`` also acts as ``-twotheta``, so ``-twotheta`` follows it;
``-polar`` clears ``-nopolar``, ``-noisefile`` clears ``-nonoise`` and ``-pgmfile``/
``-pgmscale`` clear ``-nopgm``, so the switches come after; ``-detector_abs inf``
zeroes the thickness, so ``-detector_thick`` follows it; the last pivot-setting flag
decides the pivot, so ``-pivot`` comes last when needed; and ``-misset_seed`` (which
the reference also reads as ``-misset`` when three words follow it) goes at the very
end, where it is only a seed.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shlex
import warnings

import numpy as np

from . import flags
from .config import GROUPS, Config, Convention, Shape
from .errors import NbsimError, NbsimWarning

__all__ = ["config_from_argv", "config_to_args", "differing_fields"]


def _python_warning(message):
    warnings.warn(message, NbsimWarning, stacklevel=4)


def _words(argv):
    if isinstance(argv, str):
        return shlex.split(argv)
    words = []
    for w in argv:
        if isinstance(w, os.PathLike):
            w = os.fspath(w)
        elif isinstance(w, bool):
            raise NbsimError("from_args: %r is not a command-line word" % (w,))
        elif isinstance(w, int):
            w = str(w)
        elif isinstance(w, float):
            w = repr(w)
        if not isinstance(w, str):
            raise NbsimError("from_args: %r is not a command-line word (give strings)" % (w,))
        words.append(w)
    return words


def config_from_argv(argv, warn=None) -> Config:
    """See :meth:`nbsim.config.Config.from_args`."""
    from .cli import config_from_args
    words = _words(argv)
    cfg, opts = config_from_args(words, warn=warn or _python_warning)
    if opts["help"] or opts["version"]:
        raise NbsimError("-h/-version: not a setting; nothing to build a Config from")
    for name in ("engine", "threads"):
        if opts[name] is not None:
            raise NbsimError("-%s: a run option, not a setting; pass %s= to nbsim.simulate()"
                             % (name, name))
    if not cfg.crystal.misset_random and cfg.crystal.misset_seed != 0:
        # the command's time-based default is unused without a random misset; 0 keeps
        # equal command lines giving equal Configs
        cfg = cfg.replace(misset_seed=0)
    return cfg


# ---- comparing configs ------------------------------------------------------------------

def _flat(cfg):
    return {f.name: getattr(getattr(cfg, g), f.name)
            for g, gcls in GROUPS.items() for f in dataclasses.fields(gcls)}


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.shape == b.shape and np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def differing_fields(a: Config, b: Config):
    """Names of the fields in which two Configs differ (bit for bit for numbers).

    ``misset_seed`` counts only where a random misset uses it."""
    fa, fb = _flat(a), _flat(b)
    out = [k for k in fa if not _same(fa[k], fb[k])]
    if "misset_seed" in out and not (fa["misset_random"] or fb["misset_random"]):
        out.remove("misset_seed")
    return out


# ---- finding the words for a value ------------------------------------------------------

def _rule_for(flag, nvals):
    for rule in flags.REFERENCE_RULES:
        if flag in rule.names and (rule.nvals == nvals or rule.action is flags._cell):
            return rule
    raise KeyError(flag)   # pragma: no cover - the table below names real flags


def _apply(flag, values):
    v = {}
    _rule_for(flag, len(values)).action(v, list(values))
    return v


def _float_word(flag, key, target, nvals=1, pos=0, index=None):
    """A word that makes ``flag`` store exactly ``target``; None if there is none."""
    def stored(word):
        vals = ["1"] * nvals
        vals[pos] = word
        value = _apply(flag, vals)[key]
        return value[index] if index is not None else value

    target = float(target)
    if math.isnan(target) or math.isinf(target) or target == 0.0:
        words = {True: ("0", "-0")}.get(target == 0.0) or (
            ("nan",) if math.isnan(target) else ("inf", "-inf"))
        for word in words:
            if _same(stored(word), target):
                return word
        return None
    unit = stored("1")
    guesses = []
    if unit != 0.0 and math.isfinite(unit):
        guesses += [target / unit, unit / target]     # flags scale or invert their value
    for guess in guesses:
        if not math.isfinite(guess):
            continue
        # the shortest rounding of the guess that works ("30", not "29.999999999999996")
        for digits in range(1, 18):
            word = _fmt(float("%.*g" % (digits, guess)))
            if _same(stored(word), target):
                return word
        word = _nudge(stored, guess, target)
        if word is not None:
            return word
    return None


def _fmt(x):
    """The shortest word for ``x`` that reads back as ``x`` ("100", not "100.0")."""
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _nudge(stored, guess, target, steps=64):
    """Step ``guess`` an ulp at a time until the flag stores ``target`` exactly."""
    if not math.isfinite(guess):
        return None
    x = guess
    got = stored(_fmt(x))
    if _same(got, target):
        return _fmt(x)
    below = got < target
    rising = stored(_fmt(math.nextafter(x, math.inf))) >= got
    toward = math.inf if below == rising else -math.inf
    for _ in range(steps):
        x = math.nextafter(x, toward)
        got = stored(_fmt(x))
        if _same(got, target):
            return _fmt(x)
        if (got < target) != below:
            return None      # stepped over it: no word gives exactly this double
    return None


class _Cannot(Exception):
    pass


class _Builder:
    """Collects the words for one Config against the command's own defaults."""

    def __init__(self, cfg, base):
        self.cfg = cfg
        self.now = _flat(cfg)
        self.base = _flat(base)
        self.words = []

    def differs(self, key):
        return not _same(self.now[key], self.base[key])

    def emit(self, *words):
        self.words.extend(words)

    def number(self, flag, key, force=False):
        if not (force or self.differs(key)):
            return
        word = _float_word(flag, key, self.now[key])
        if word is None:
            raise _Cannot(key)
        self.emit(flag, word)

    def integer(self, flag, key, negate=False, force=False):
        if not (force or self.differs(key)):
            return
        value = self.now[key]
        if isinstance(value, float):
            if not value.is_integer():
                raise _Cannot(key)
            value = int(value)
        word = str(-value if negate else value)
        if _apply(flag, [word])[key] != self.now[key]:
            raise _Cannot(key)
        self.emit(flag, word)

    def vector(self, flag, key, n=3, force=False):
        if not (force or self.differs(key)):
            return False
        value = self.now[key]
        words = []
        for i in range(n):
            word = _float_word(flag, key, value[i], nvals=n, pos=i, index=i)
            if word is None:
                raise _Cannot(key)
            words.append(word)
        self.emit(flag, *words)
        return True

    def string(self, flag, key):
        if self.differs(key):
            if self.now[key] is None:
                raise _Cannot(key)
            self.emit(flag, os.fspath(self.now[key]))

    def switch(self, key, on_flag, off_flag=None):
        if self.differs(key):
            flag = on_flag if self.now[key] else off_flag
            if flag is None:
                raise _Cannot(key)
            self.emit(flag)


_VECTORS = (("-beam_vector", "beam_vector"), ("-polar_vector", "polar_vector"),
            ("-spindle_axis", "spindle_vector"), ("-fdet_vector", "fdet_vector"),
            ("-sdet_vector", "sdet_vector"), ("-odet_vector", "odet_vector"),
            ("-twotheta_axis", "twotheta_axis"))
_SHAPE_FLAGS = {Shape.SQUARE: "-square_xtal", Shape.ROUND: "-round_xtal",
                Shape.GAUSS: "-gauss_xtal", Shape.TOPHAT: "-tophat_spots"}
_STOL_FLAGS = (("-stol", 1e10), ("-4stol", 1e10 / 4), ("-Q", 1e10 / math.pi / 4))

# fields with no command-line form of their own: they can only keep their defaults
_NO_FLAG = ("dispstep", "thickstep", "source_distance")


def _matrix_words(cfg, inputs_dir):
    """Write the in-memory A matrix as a MOSFLM file the -mat flag reads back exactly."""
    A = cfg.crystal.A_matrix
    s = 1e-10 / cfg.beam.lambda0           # as the -mat reader scales (nbsim.crystal)
    rows = []
    for i in range(3):
        row = []
        for j in range(3):
            if A[i][j] == 0.0:
                word = "0" if math.copysign(1.0, A[i][j]) > 0 else "-0"
            else:
                word = _nudge(lambda w: s * float(w), A[i][j] / s, A[i][j])
            if word is None:
                raise _Cannot("A_matrix")
            row.append(word)
        rows.append(" ".join(row))
    path = os.path.join(os.fspath(inputs_dir), "A_matrix.mat")
    from .io.atomic import atomic_write_bytes
    atomic_write_bytes(path, [("\n".join(rows) + "\n").encode("ascii")])
    return path


def _build(cfg, base, inputs_dir):
    b = _Builder(cfg, base)
    now = b.now

    # vectors first: each selects the CUSTOM convention, a named one then overrides
    any_vector = False
    for flag, key in _VECTORS:
        any_vector |= b.vector(flag, key)
    if now["pix0_vector"] is not None:
        any_vector |= b.vector("-pix0_vector", "pix0_vector")
    if now["convention"] == Convention.CUSTOM and not any_vector:
        b.vector("-fdet_vector", "fdet_vector", force=True)
    elif now["convention"] != Convention.CUSTOM and (any_vector or b.differs("convention")):
        b.emit("-" + now["convention"].value)

    # crystal
    if now["cell"] is not None:
        words = []
        for i in range(6):
            word = _float_word("-cell", "_cell_raw", now["cell"][i], nvals=6, pos=i, index=i)
            if word is None or word.startswith("-"):
                raise _Cannot("cell")
            words.append(word)
        while len(words) > 1 and words[-1] == "0":
            words.pop()        # the reference reads a short -cell as zeros (its defaults)
        b.emit("-cell", *words)
    b.string("-mat", "mat_file")
    if now["A_matrix"] is not None:
        if inputs_dir is None:
            raise _Cannot("A_matrix")
        b.emit("-mat", _matrix_words(cfg, inputs_dir))
    if now["misset_random"]:
        b.emit("-misset", "random")
    elif now["misset"] is not None:
        b.vector("-misset", "misset", force=True)
    for flag, key in (("-Na", "Na"), ("-Nb", "Nb"), ("-Nc", "Nc")):
        b.integer(flag, key)
    for flag, key in (("-sample_x", "sample_x"), ("-sample_y", "sample_y"),
                      ("-sample_z", "sample_z")):
        b.number(flag, key)
    b.string("-hkl", "hkl_file")
    if now["structure_factors"] is not None:
        if inputs_dir is None:
            raise _Cannot("structure_factors")
        path = os.path.join(os.fspath(inputs_dir), "structure_factors.hkl")
        now["structure_factors"].write_hkl(path)
        b.emit("-hkl", path)
    b.string("-dump", "dump_file")
    b.number("-default_F", "default_F")
    if b.differs("shape"):
        b.emit(_SHAPE_FLAGS[now["shape"]])
    b.number("-fudge", "fudge")
    b.number("-mosaic", "mosaic_spread")
    b.integer("-mosaic_dom", "mosaic_domains")
    b.integer("-mosaic_seed", "mosaic_seed", negate=True)
    b.number("-phi", "phi0")
    b.number("-osc", "osc")
    b.number("-phistep", "phistep")
    b.integer("-phisteps", "phisteps")
    b.number("-water", "water_size")
    if b.differs("interpolate"):
        if now["interpolate"] not in (0, 1):
            raise _Cannot("interpolate")      # "auto" (2) is the default; no flag says it
        b.emit("-interpolate" if now["interpolate"] == 1 else "-nointerpolate")
    if b.differs("stol_file") or b.differs("stol_file_mult"):
        flag = next((f for f, m in _STOL_FLAGS if m == now["stol_file_mult"]), None)
        if flag is None or now["stol_file"] is None:
            raise _Cannot("stol_file")
        b.emit(flag, now["stol_file"])

    # beam
    if b.differs("lambda0"):
        word = _float_word("-lambda", "lambda0", now["lambda0"])
        if word is not None:
            b.emit("-lambda", word)
        else:
            b.number("-energy", "lambda0")
    b.number("-dispersion", "dispersion")
    b.integer("-dispsteps", "dispsteps")
    b.number("-hdivrange", "hdivrange")
    b.number("-hdivstep", "hdivstep")
    b.integer("-hdivsteps", "hdivsteps")
    b.number("-vdivrange", "vdivrange")
    b.number("-vdivstep", "vdivstep")
    b.integer("-vdivsteps", "vdivsteps")
    b.switch("round_div", "-round_div", "-square_div")
    b.string("-sourcefile", "source_file")
    for flag, key in (("-fluence", "fluence"), ("-flux", "flux"), ("-exposure", "exposure"),
                      ("-beamsize", "beamsize")):
        b.number(flag, key)
    b.number("-polar", "polarization")
    b.switch("nopolar", "-nopolar")
    b.switch("coherent", "-coherent")

    # detector
    b.number("-pixel", "pixel_size")
    b.integer("-detpixels_f", "fpixels")
    b.integer("-detpixels_s", "spixels")
    b.number("-detsize_f", "detsize_f")
    b.number("-detsize_s", "detsize_s")
    for flag, key in (("-distance", "distance"), ("-close_distance", "close_distance"),
                      ("-Xbeam", "xbeam"), ("-Ybeam", "ybeam"), ("-Xclose", "xclose"),
                      ("-Yclose", "yclose"), ("-ORGX", "orgx"), ("-ORGY", "orgy"),
                      ("-detector_rotx", "rotx"), ("-detector_roty", "roty"),
                      ("-detector_rotz", "rotz")):
        b.number(flag, key)
    # -twotheta_axis is also read as -twotheta: say the angle again after it
    b.number("-twotheta", "twotheta", force=b.differs("twotheta_axis"))
    if b.differs("curved"):
        if not now["curved"]:
            raise _Cannot("curved")
        b.emit("-curved_det")        # the reference needs a word after it; more follow
    b.switch("point_pixel", "-point_pixel")
    if b.differs("mu"):
        if now["mu"] == 0.0:
            b.emit("-detector_abs", "inf")    # this also zeroes the thickness, said next
        else:
            b.number("-detector_abs", "mu")
    b.number("-detector_thick", "thick")
    b.integer("-thicksteps", "thicksteps")
    if b.differs("roi"):
        b.emit("-roi", *[str(int(x)) for x in now["roi"]])
    b.number("-dmin", "dmin")

    # sampling
    b.integer("-oversample", "oversample")
    b.switch("oversample_thick", "-oversample_thick")
    b.switch("oversample_polar", "-oversample_polar")
    b.switch("oversample_omega", "-oversample_omega")
    b.switch("c_parity", "-c_parity")
    b.switch("fast", "-fast")
    for flag, key in (("-max_evaluations", "max_evaluations"), ("-max_table_gb", "max_table_gb")):
        if key in now and b.differs(key) and now[key] is not None:
            b.emit(flag, repr(float(now[key])))

    # outputs (the switches after the file names, which turn them back on)
    for flag, key in (("-floatfile", "floatfile"), ("-intfile", "intfile"),
                      ("-noisefile", "noisefile"), ("-pgmfile", "pgmfile")):
        b.string(flag, key)
    # nbsim's own output files (nbsim.cli keeps their table), and their options
    from . import cli
    for flag, key in getattr(cli, "OUTPUT_FILE_FLAGS", {"-tifffile": "tifffile"}).items():
        if key in now:
            b.string(flag, key)
    if "nexus_data" in now and b.differs("nexus_data"):
        b.emit("-nexus_data", now["nexus_data"])
    if "png_scale" in now and b.differs("png_scale"):
        if now["png_scale"] is None:
            raise _Cannot("png_scale")
        b.emit("-png_scale", repr(float(now["png_scale"])))
    b.number("-scale", "intfile_scale")
    b.number("-pgmscale", "pgm_scale")
    b.number("-adc", "adc_offset")
    if not now["calculate_noise"]:
        b.emit("-nonoise")
    if not now["write_pgm"]:
        b.emit("-nopgm")
    b.switch("progress", "-progress", "-noprogress")
    if now["printout_pixel"] is not None:
        b.emit("-printout_pixel", *[str(int(x)) for x in now["printout_pixel"]])
    b.switch("printout", "-printout")
    return b


def config_to_args(cfg: Config, inputs_dir=None):
    """See :meth:`nbsim.config.Config.to_args`."""
    cfg.validate()
    flat = _flat(cfg)
    if flat["mask"] is not None and flat["mask_file"] is None:
        raise NbsimError("config.detector.mask: a mask array has no command-line form; "
                         "save it as an SMV file and give mask_file")
    for key in _NO_FLAG:
        if not _same(flat[key], _flat(Config())[key]):
            raise NbsimError("config: %s has no nanoBragg flag; only its default (%r) can be "
                             "written as a command line" % (key, _flat(Config())[key]))
    pre = ["-mask", os.fspath(flat["mask_file"])] if flat["mask_file"] is not None else []

    def silent(_message):
        pass

    base = config_from_argv(pre, silent)
    try:
        words = pre + _build(cfg, base, inputs_dir).words
    except _Cannot as exc:
        key = exc.args[0]
        if key in ("structure_factors", "A_matrix"):
            raise NbsimError("config.crystal.%s: held in memory, which has no command-line "
                             "form; give to_args(inputs_dir=FOLDER) to write it as a file"
                             % key) from None
        raise NbsimError("config: %s = %r has no exact command-line form"
                         % (key, flat[key])) from None
    seed_words = ["-seed", str(-cfg.noise.seed)]
    if cfg.crystal.misset_random:
        seed_words += ["-misset_seed", str(-cfg.crystal.misset_seed)]
    expected = cfg
    if flat["structure_factors"] is not None:
        expected = expected.replace(structure_factors=None,
                                    hkl_file=os.path.join(os.fspath(inputs_dir),
                                                          "structure_factors.hkl"))
    if flat["A_matrix"] is not None:
        expected = expected.replace(A_matrix=None, mat_file=os.path.join(
            os.fspath(inputs_dir), "A_matrix.mat"))
    got = config_from_argv(words + seed_words, silent)
    if got.detector.pivot != cfg.detector.pivot:
        words += ["-pivot", cfg.detector.pivot.value]
        got = config_from_argv(words + seed_words, silent)
    wrong = differing_fields(got, expected)
    if wrong:
        raise NbsimError("config: %s cannot be written as nanoBragg flags that read back the "
                         "same (%s)" % (", ".join(wrong), " ".join(words + seed_words)))
    return words + seed_words
