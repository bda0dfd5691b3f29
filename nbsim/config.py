"""What a simulation is asked to do, in SI units, before any derivation.

The fields mirror what nanoBragg.c holds after reading its command line and before
its setup code runs (the plan module performs that setup, in the reference's order).
Defaults are the reference's defaults. Angles are radians, lengths metres, wavelength
metres, ``None`` means "not given" where the reference keeps a NaN or a -1 sentinel.

This is the internal form shared by the command line and the Python API. People
build it with :class:`nbsim.Simulation` (keywords in everyday units) or
:meth:`Config.from_args` (nanoBragg flags), and turn it back into flags with
:meth:`Config.to_args`. The three random seeds are held as the reference holds them,
negated (``-seed 5`` is ``seed=-5`` here); the public API never shows that form.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import field
from typing import Optional, Tuple

from .errors import NbsimError
from .records import record

Vec3 = Tuple[float, float, float]


class Convention(enum.Enum):
    CUSTOM = "custom"
    ADXV = "adxv"
    MOSFLM = "mosflm"
    XDS = "xds"
    DIALS = "dials"
    DENZO = "denzo"


class Pivot(enum.Enum):
    SAMPLE = "sample"
    BEAM = "beam"


class Shape(enum.Enum):
    SQUARE = "square"
    ROUND = "round"
    GAUSS = "gauss"
    TOPHAT = "tophat"


NAN = float("nan")


# The groups are frozen records: @dataclass(frozen=True) classes whose methods are not
# compiled per class (nbsim.records), 7 ms less start-up for every command.


@record(frozen=True)
class BeamConfig:
    """The source: wavelength, dispersion, divergence, polarization, fluence."""

    lambda0: float = 1.0e-10
    dispersion: float = 0.0          # fraction (the flag is in percent)
    dispstep: float = -1.0
    dispsteps: int = -1
    hdivrange: float = -1.0          # radians
    hdivstep: float = -1.0
    hdivsteps: int = -1
    vdivrange: float = -1.0
    vdivstep: float = -1.0
    vdivsteps: int = -1
    round_div: bool = True
    source_file: Optional[str] = None
    source_distance: float = 10.0    # metres
    fluence: float = 125932015286227086360700780544.0   # photons/m^2
    flux: float = 0.0
    exposure: float = 1.0
    beamsize: float = 1e-4
    polarization: float = 0.0        # Kahn factor
    nopolar: bool = False
    beam_vector: Vec3 = (1.0, 0.0, 0.0)
    polar_vector: Vec3 = (0.0, 0.0, 1.0)
    coherent: bool = False           # accepted, has no effect (as in the reference)


@record(frozen=True)
class DetectorConfig:
    """The detector: pixels, distance, orientation, convention, thickness, ROI, mask."""

    pixel_size: float = 0.1e-3
    fpixels: int = 0
    spixels: int = 0
    detsize_f: float = 102.4e-3
    detsize_s: float = 102.4e-3
    distance: float = 100.0e-3
    close_distance: float = NAN
    convention: Convention = Convention.MOSFLM
    pivot: Pivot = Pivot.BEAM
    xbeam: float = NAN
    ybeam: float = NAN
    xclose: float = NAN
    yclose: float = NAN
    orgx: float = NAN
    orgy: float = NAN
    fdet_vector: Vec3 = (0.0, 0.0, 1.0)
    sdet_vector: Vec3 = (0.0, -1.0, 0.0)
    odet_vector: Vec3 = (1.0, 0.0, 0.0)
    pix0_vector: Optional[Vec3] = None
    twotheta_axis: Vec3 = (0.0, 1.0, 0.0)
    spindle_vector: Vec3 = (0.0, 0.0, 1.0)
    rotx: float = 0.0
    roty: float = 0.0
    rotz: float = 0.0
    twotheta: float = 0.0
    curved: bool = False
    point_pixel: bool = False
    mu: float = -1.0                 # attenuation coefficient, 1/m
    thick: float = 0.0               # sensor thickness, m
    thickstep: float = -1.0
    thicksteps: int = -1
    roi: Tuple[int, int, int, int] = (-1, -1, -1, -1)
    mask: Optional[object] = None    # uint16 array (spixels, fpixels) or None
    mask_file: Optional[str] = None
    dmin: float = 0.0


@record(frozen=True)
class CrystalConfig:
    """The crystal: cell or A matrix, size, spot shape, mosaicity, rotation, structure factors."""

    cell: Optional[Tuple[float, float, float, float, float, float]] = None  # Å, radians
    mat_file: Optional[str] = None
    misset: Optional[Vec3] = None    # radians
    misset_random: bool = False
    misset_seed: int = 0             # stored negated, as the reference does; used only
                                     # with misset_random
    Na: float = 1.0
    Nb: float = 1.0
    Nc: float = 1.0
    sample_x: float = 0.0
    sample_y: float = 0.0
    sample_z: float = 0.0
    hkl_file: Optional[str] = None
    # h k l F records held in memory (nbsim.structure_factors.StructureFactors): an
    # -hkl file without the file
    structure_factors: Optional[object] = None
    # binary structure-factor cache: read when no structure factors are given, written
    # (by the caller) when they are. None: neither. The command line makes it
    # Fdump.bin in the working folder, as the reference does; the API only when asked.
    dump_file: Optional[str] = None
    # orientation given in memory: 3x3 rows x, y, z; columns a*, b*, c* in 1/Angstrom
    # (a -mat file without the file and without its wavelength factor)
    A_matrix: Optional[Tuple[Vec3, Vec3, Vec3]] = None
    default_F: float = 0.0
    shape: Shape = Shape.SQUARE
    fudge: float = 1.0
    mosaic_spread: float = -1.0
    mosaic_domains: int = -1
    mosaic_seed: int = -12345678
    phi0: float = 0.0
    osc: float = -1.0
    phistep: float = -1.0
    phisteps: int = -1
    water_size: float = 0.0
    interpolate: int = 2             # 2 = auto, 1 = on, 0 = off
    stol_file: Optional[str] = None
    stol_file_mult: float = 1.0e10


@record(frozen=True)
class SamplingConfig:
    """Sampling within a pixel and the computation's switches (-c_parity, -fast)."""

    oversample: int = -1
    oversample_thick: bool = False
    oversample_polar: bool = False
    oversample_omega: bool = False
    c_parity: bool = False
    fast: bool = False
    # caps on the job's size (nbsim.limits); None: $NBSIM_MAX_EVALUATIONS /
    # $NBSIM_MAX_TABLE_GB, else the defaults there
    max_evaluations: Optional[float] = None   # inner evaluations
    max_table_gb: Optional[float] = None      # tables built before rendering, GB


@record(frozen=True)
class NoiseConfig:
    """The noise image's seed, ADC offset and whether it is made."""

    seed: int = 0                    # stored negated, as the reference does
    adc_offset: float = 40.0
    calculate_noise: bool = True


@record(frozen=True)
class OutputConfig:
    """Output files and what is printed."""

    floatfile: Optional[str] = "floatimage.bin"
    intfile: Optional[str] = "intimage.img"
    noisefile: Optional[str] = "noiseimage.img"
    pgmfile: Optional[str] = "image.pgm"
    tifffile: Optional[str] = None
    # nbsim-only outputs with the geometry (see nbsim.io.nexus, cbf, crystfel_geom, png)
    nexusfile: Optional[str] = None
    nexus_data: str = "float"        # float | int | noise: which image the NXmx file holds
    cbffile: Optional[str] = None
    geomfile: Optional[str] = None
    pngfile: Optional[str] = None
    png_scale: Optional[float] = None   # photons shown white; None: automatic
    write_pgm: bool = True
    intfile_scale: float = 0.0
    pgm_scale: float = 0.0
    progress: bool = True
    printout: bool = False
    printout_pixel: Optional[Tuple[int, int]] = None   # (fast, slow); None or negative: all


@record(frozen=True)
class Config:
    """A whole simulation's settings, in groups (see the module's docstring)."""

    beam: BeamConfig = field(default_factory=BeamConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    crystal: CrystalConfig = field(default_factory=CrystalConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    @staticmethod
    def from_flat(values: dict) -> "Config":
        """Build a Config from ``{field_name: value}``; names are unique across groups."""
        groups = {}
        remaining = dict(values)
        for gname, gcls in GROUPS.items():
            names = {f.name for f in dataclasses.fields(gcls)}
            groups[gname] = gcls(**{k: remaining.pop(k) for k in list(remaining) if k in names})
        if remaining:
            raise NbsimError("unknown config fields: %s" % ", ".join(sorted(remaining)))
        return Config(**groups)

    def replace(self, **flat) -> "Config":
        """A copy with some fields changed, named flat (e.g. ``phi0=0.1``)."""
        out = {}
        for gname, gcls in GROUPS.items():
            names = {f.name for f in dataclasses.fields(gcls)}
            mine = {k: v for k, v in flat.items() if k in names}
            out[gname] = dataclasses.replace(getattr(self, gname), **mine)
        unknown = set(flat) - {f.name for g in GROUPS.values() for f in dataclasses.fields(g)}
        if unknown:
            raise NbsimError("unknown config fields: %s" % ", ".join(sorted(unknown)))
        return Config(**out)

    @staticmethod
    def from_args(argv, warn=None) -> "Config":
        """The Config the ``nanoBragg`` command builds from ``argv`` (a list of words
        without the program name, or one string split like a shell would).

        Flags mean exactly what they mean to the command, with one difference: no
        structure-factor cache is implied (the command reads and writes Fdump.bin in
        its working folder; here only ``-dump FILE`` names one). ``-engine`` and
        ``-threads`` are not settings: give them to :func:`nbsim.simulate`.
        ``warn(message)`` receives the command's warnings (default: Python warnings).
        """
        from .config_args import config_from_argv
        return config_from_argv(argv, warn)

    def to_args(self, inputs_dir=None):
        """The ``nanoBragg`` words for this Config: ``Config.from_args(c.to_args())``
        equals ``c``, and the command renders the same bits.

        In-memory inputs have no command-line form; with ``inputs_dir`` (a folder)
        structure factors and an A matrix are written there as an ``-hkl`` and a
        ``-mat`` file that read back to the same bits. Raises NbsimError naming any
        field the command line cannot express.
        """
        from .config_args import config_to_args
        return config_to_args(self, inputs_dir=inputs_dir)

    def validate(self) -> "Config":
        """Check every field's type and shape; NbsimError names the first bad field
        and its unit. Ranges are the plan's business (it names the flag); returns self."""
        for gname, gcls in GROUPS.items():
            group = getattr(self, gname)
            if not isinstance(group, gcls):
                raise NbsimError("config.%s: expected a %s, got %s"
                                 % (gname, gcls.__name__, type(group).__name__))
            for f in dataclasses.fields(gcls):
                _check_field(gname, f, getattr(group, f.name))
        d = self.detector
        if d.mask is not None:
            from .geometry import detector_size
            fp, sp, _, _ = detector_size(self)
            if tuple(d.mask.shape) != (sp, fp):
                raise NbsimError("config.detector.mask: shape %s does not match the %dx%d "
                                 "detector (slow, fast)" % (tuple(d.mask.shape), sp, fp))
        cr = self.crystal
        if cr.structure_factors is not None and cr.hkl_file is not None:
            raise NbsimError("config.crystal.structure_factors: give structure factors in "
                             "memory or as hkl_file, not both")
        if cr.A_matrix is not None and cr.mat_file is not None:
            raise NbsimError("config.crystal.A_matrix: give the orientation in memory or as "
                             "mat_file, not both")
        return self


GROUPS = {
    "beam": BeamConfig,
    "detector": DetectorConfig,
    "crystal": CrystalConfig,
    "sampling": SamplingConfig,
    "noise": NoiseConfig,
    "output": OutputConfig,
}


def flat_defaults() -> dict:
    """Every field with its default, flat; the CLI starts from this."""
    out = {}
    for gcls in GROUPS.values():
        for f in dataclasses.fields(gcls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            else:  # pragma: no cover - no factories in the groups
                out[f.name] = f.default_factory()
    return out


def is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


# SI units of the fields, for messages (see the module notes; "" where none applies)
FIELD_UNITS = {
    "lambda0": "m", "dispersion": "fraction", "dispstep": "fraction", "hdivrange": "rad",
    "hdivstep": "rad", "vdivrange": "rad", "vdivstep": "rad", "source_distance": "m",
    "fluence": "photons/m^2", "flux": "photons/s", "exposure": "s", "beamsize": "m",
    "polarization": "Kahn factor", "beam_vector": "unit vector", "polar_vector": "unit vector",
    "pixel_size": "m", "fpixels": "pixels", "spixels": "pixels", "detsize_f": "m",
    "detsize_s": "m", "distance": "m", "close_distance": "m", "xbeam": "m", "ybeam": "m",
    "xclose": "m", "yclose": "m", "orgx": "pixels", "orgy": "pixels",
    "fdet_vector": "unit vector", "sdet_vector": "unit vector", "odet_vector": "unit vector",
    "pix0_vector": "m", "twotheta_axis": "unit vector", "spindle_vector": "unit vector",
    "rotx": "rad", "roty": "rad", "rotz": "rad", "twotheta": "rad", "mu": "1/m", "thick": "m",
    "thickstep": "m", "roi": "pixels", "mask": "0 = skip", "dmin": "m",
    "cell": "Angstrom and rad", "misset": "rad", "Na": "unit cells", "Nb": "unit cells",
    "Nc": "unit cells", "sample_x": "m", "sample_y": "m", "sample_z": "m",
    "A_matrix": "1/Angstrom", "default_F": "electrons", "mosaic_spread": "rad",
    "phi0": "rad", "osc": "rad", "phistep": "rad", "water_size": "m",
    "oversample": "sub-pixels per side", "adc_offset": "ADU",
}

# Optional fields whose default (None) says nothing about their kind
_OPTIONAL_KINDS = {
    "cell": ("reals", 6), "misset": ("reals", 3), "pix0_vector": ("reals", 3),
    "A_matrix": ("matrix", 3), "printout_pixel": ("ints", 2), "mask": ("mask", 2),
    "structure_factors": ("records", 0),
}
_PATH_FIELDS = {"source_file", "mat_file", "hkl_file", "stol_file", "mask_file", "dump_file",
                "floatfile", "intfile", "noisefile", "pgmfile", "tifffile", "nexusfile",
                "cbffile", "geomfile", "pngfile"}


def _kind(f):
    if f.name in _OPTIONAL_KINDS:
        return _OPTIONAL_KINDS[f.name]
    if f.name in _PATH_FIELDS:
        return ("path", 0)
    d = f.default
    if isinstance(d, bool):
        return ("bool", 0)
    if isinstance(d, enum.Enum):
        return ("enum", type(d))
    if isinstance(d, int):
        return ("int", 0)
    if isinstance(d, float):
        return ("real", 0)
    if isinstance(d, tuple) and d and all(isinstance(x, float) for x in d):
        return ("reals", len(d))
    if isinstance(d, tuple) and d and all(isinstance(x, int) for x in d):
        return ("ints", len(d))
    return ("any", 0)


def _is_real(x):
    import numbers
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and \
        type(x).__name__ not in ("bool_", "bool")


def _is_int(x):
    import numbers
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and \
        type(x).__name__ not in ("bool_", "bool")


def _check_field(group, f, value):
    """One field: its kind from its default (or the table above)."""
    kind, n = _kind(f)
    unit = FIELD_UNITS.get(f.name)
    where = "config.%s.%s" % (group, f.name)
    what = " (%s)" % unit if unit else ""

    def bad(expected):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return NbsimError("%s: expected %s%s, got %s" % (where, expected, what, shown))

    if value is None:
        if f.default is None:
            return
        raise bad("a value")
    if kind == "real" and not _is_real(value):
        raise bad("a number")
    if kind == "int" and not _is_int(value):
        raise bad("a whole number")
    if kind == "bool" and type(value).__name__ not in ("bool", "bool_"):
        raise bad("True or False")
    if kind == "enum" and not isinstance(value, n):
        raise bad("one of %s" % ", ".join("%s.%s" % (n.__name__, m.name) for m in n))
    if kind == "path":
        import os
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise bad("a file name")
    if kind in ("reals", "ints"):
        ok = _is_real if kind == "reals" else _is_int
        if not isinstance(value, (tuple, list)) or len(value) != n or not all(ok(x) for x in value):
            raise bad("%d %s" % (n, "numbers" if kind == "reals" else "whole numbers"))
    if kind == "matrix":
        rows_ok = isinstance(value, (tuple, list)) and len(value) == 3 and all(
            isinstance(r, (tuple, list)) and len(r) == 3 and all(_is_real(x) for x in r)
            for r in value)
        if not rows_ok:
            raise bad("a 3x3 matrix as nested tuples")
    if kind == "mask":
        shape = getattr(value, "shape", None)
        dtype = getattr(value, "dtype", None)
        if shape is None or len(shape) != 2 or dtype is None or dtype.kind not in "biu":
            raise bad("a 2-D integer or boolean array")
    if kind == "records":
        from .structure_factors import StructureFactors
        if not isinstance(value, StructureFactors):
            raise bad("nbsim.structure_factors.StructureFactors")
