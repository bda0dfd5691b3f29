"""What a simulation is asked to do, in SI units, before any derivation.

The fields mirror what nanoBragg.c holds after reading its command line and before
its setup code runs (the plan module performs that setup, in the reference's order).
Defaults are the reference's defaults. Angles are radians, lengths metres, wavelength
metres, ``None`` means "not given" where the reference keeps a NaN or a -1 sentinel.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

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


@dataclass(frozen=True)
class BeamConfig:
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


@dataclass(frozen=True)
class DetectorConfig:
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


@dataclass(frozen=True)
class CrystalConfig:
    cell: Optional[Tuple[float, float, float, float, float, float]] = None  # Å, radians
    mat_file: Optional[str] = None
    misset: Optional[Vec3] = None    # radians
    misset_random: bool = False
    misset_seed: int = 0             # stored negated, as the reference does
    Na: float = 1.0
    Nb: float = 1.0
    Nc: float = 1.0
    sample_x: float = 0.0
    sample_y: float = 0.0
    sample_z: float = 0.0
    hkl_file: Optional[str] = None
    dump_file: str = "Fdump.bin"
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


@dataclass(frozen=True)
class SamplingConfig:
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


@dataclass(frozen=True)
class NoiseConfig:
    seed: int = 0                    # stored negated, as the reference does
    adc_offset: float = 40.0
    calculate_noise: bool = True


@dataclass(frozen=True)
class OutputConfig:
    floatfile: Optional[str] = "floatimage.bin"
    intfile: Optional[str] = "intimage.img"
    noisefile: Optional[str] = "noiseimage.img"
    pgmfile: Optional[str] = "image.pgm"
    tifffile: Optional[str] = None
    write_pgm: bool = True
    intfile_scale: float = 0.0
    pgm_scale: float = 0.0
    progress: bool = True
    printout: bool = False
    printout_pixel: Optional[Tuple[int, int]] = None   # (fast, slow); None or negative: all


@dataclass(frozen=True)
class Config:
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
            raise TypeError("unknown config fields: %s" % ", ".join(sorted(remaining)))
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
            raise TypeError("unknown config fields: %s" % ", ".join(sorted(unknown)))
        return Config(**out)


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
