"""The placed detector, in the units people use: millimetres, degrees, unit vectors.

``Result.detector`` (and ``Simulation.detector``) return a :class:`DetectorInfo` read
from the plan after the reference's setup: conventions, pivots, rotations and
beam-centre defaults already applied. Vectors are in nbsim's lab frame (that of
nanoBragg.c: in the default MOSFLM convention the beam runs along +x).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Tuple

Vec = Tuple[float, float, float]


@dataclass(frozen=True)
class DetectorInfo:
    shape: Tuple[int, int]           # (slow, fast) pixels, as the images
    pixel_size_mm: float
    distance_mm: float               # sample to detector along the beam
    close_distance_mm: float         # sample to the detector plane
    pix0_mm: Vec                     # sample to the outer corner of pixel (0, 0)
    fdet: Vec                        # fast axis (unit vector)
    sdet: Vec                        # slow axis
    odet: Vec                        # detector normal
    beam: Vec                        # beam direction
    # (slow, fast) from pix0 along sdet and fdet to the beam centre as nanoBragg.c
    # computes it (Sbeam, Fbeam; also in the SMV headers). With a two-theta swing
    # that is not where the beam meets the detector: see direct_beam_mm.
    beam_center_mm: Tuple[float, float]
    direct_beam_mm: Tuple[float, float]   # (slow, fast) where the beam line meets the plane
    xbeam_mm: float                  # the beam centre as -Xbeam/-Ybeam give it, in the
    ybeam_mm: float                  # convention's own axes
    convention: str
    pivot: str
    twotheta_deg: float
    wavelength_A: float

    def pixel_center_mm(self, slow, fast):
        """Lab-frame position (mm) of the centre of pixel (slow, fast)."""
        p = self.pixel_size_mm
        return tuple(self.pix0_mm[i] + (fast + 0.5) * p * self.fdet[i]
                     + (slow + 0.5) * p * self.sdet[i] for i in range(3))

    def as_dict(self):
        return asdict(self)


def _direct_beam(g):
    """(slow, fast) in mm of the beam's crossing of the detector plane; NaN when it
    never crosses it (beam parallel to the plane, or the plane behind the sample)."""
    from .vec import dot
    along = dot(g.beam, g.odet)
    t = dot(g.pix0, g.odet) / along if along != 0.0 else math.nan
    if not (t > 0.0 and math.isfinite(t)):
        return (math.nan, math.nan)
    hit = tuple(t * g.beam[i] - g.pix0[i] for i in range(3))
    return (dot(hit, g.sdet) * 1000.0, dot(hit, g.fdet) * 1000.0)


def detector_info(plan) -> DetectorInfo:
    from .flags import RTD
    g = plan.geom
    return DetectorInfo(
        shape=(plan.spixels, plan.fpixels), pixel_size_mm=plan.pixel_size * 1000.0,
        distance_mm=g.distance * 1000.0, close_distance_mm=g.close_distance * 1000.0,
        pix0_mm=tuple(x * 1000.0 for x in g.pix0), fdet=tuple(g.fdet), sdet=tuple(g.sdet),
        odet=tuple(g.odet), beam=tuple(g.beam),
        beam_center_mm=(g.sbeam * 1000.0, g.fbeam * 1000.0), direct_beam_mm=_direct_beam(g),
        xbeam_mm=g.xbeam * 1000.0, ybeam_mm=g.ybeam * 1000.0,
        convention=g.convention.value, pivot=g.pivot.value, twotheta_deg=g.twotheta * RTD,
        wavelength_A=plan.lambda0 * 1e10)
