"""Detector placement: conventions, pivots, rotations and the beam-centre bookkeeping.

Everything here follows nanoBragg.c's setup order, because the printed values and
the SMV header keys (and, through pix0 and the axes, every pixel) must match it bit
for bit. Lengths are metres, angles radians.
"""
from __future__ import annotations

import math
import sys
from typing import Tuple

from .config import Config, Convention, Pivot
from .io.cparse import c_ceil_int, c_sprintf
from .records import record
from .vec import cross, dot, rotate_axis, rotate_xyz, unitize

Vec = Tuple[float, float, float]

# Axes each named convention imposes: beam, fdet, sdet, odet, twotheta, polar, spindle.
_CONVENTION_AXES = {
    Convention.ADXV: ((0, 0, 1), (1, 0, 0), (0, -1, 0), (0, 0, 1), (-1, 0, 0), (1, 0, 0), (1, 0, 0)),
    Convention.MOSFLM: ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1)),
    Convention.DENZO: ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1)),
    Convention.XDS: ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0), (1, 0, 0), (1, 0, 0)),
    Convention.DIALS: ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 1, 0)),
}


def _f(v):
    return tuple(float(x) for x in v)


@record
class DetectorGeometry:
    fpixels: int
    spixels: int
    pixel_size: float
    detsize_f: float
    detsize_s: float
    distance: float
    close_distance: float
    convention: Convention
    pivot: Pivot
    fdet: Vec
    sdet: Vec
    odet: Vec
    beam: Vec
    polar: Vec
    spindle: Vec
    vert: Vec
    twotheta_axis: Vec
    pix0: Vec
    xbeam: float
    ybeam: float
    fbeam: float
    sbeam: float
    xclose: float
    yclose: float
    fclose: float
    sclose: float
    orgx: float
    orgy: float
    dials_origin: Vec
    twotheta: float
    roi: Tuple[int, int, int, int]


def detector_size(cfg: Config):
    """(fpixels, spixels, detsize_f, detsize_s) after the reference fills in blanks."""
    d = cfg.detector
    detsize_f, detsize_s = d.detsize_f, d.detsize_s
    if d.fpixels:
        detsize_f = d.pixel_size * d.fpixels
    if d.spixels:
        detsize_s = d.pixel_size * d.spixels
    # C's (int) conversion: a non-finite or huge size gives INT_MIN (refused by the plan)
    pixel = d.pixel_size if d.pixel_size != 0.0 else math.nan
    fpixels = c_ceil_int(detsize_f / pixel - 0.5)
    spixels = c_ceil_int(detsize_s / pixel - 0.5)
    return fpixels, spixels, detsize_f, detsize_s


def place_detector(cfg: Config, log, warn) -> DetectorGeometry:
    """Beam-centre defaults and convention axes (before the banner is printed)."""
    d = cfg.detector
    b = cfg.beam
    fpixels, spixels, detsize_f, detsize_s = detector_size(cfg)
    pixel = d.pixel_size
    nan = math.isnan

    fclose = sclose = float("nan")
    fbeam = sbeam = float("nan")
    xbeam, ybeam = d.xbeam, d.ybeam
    xclose, yclose = d.xclose, d.yclose
    if not nan(d.orgx):
        fclose = (d.orgx - 0.5) * pixel
    if not nan(d.orgy):
        sclose = (d.orgy - 0.5) * pixel
    if nan(fclose):
        fclose = (detsize_f - 0 * pixel) / 2.0
    if nan(sclose):
        sclose = (detsize_s + 0 * pixel) / 2.0
    if nan(xclose):
        xclose = fclose
    if nan(yclose):
        yclose = sclose
    if nan(fbeam):
        fbeam = fclose
    if nan(sbeam):
        sbeam = sclose
    xmin, xmax, ymin, ymax = d.roi
    if xmin < 0:
        xmin = 0
    if xmax < 0:
        xmax = fpixels
    if ymin < 0:
        ymin = 0
    if ymax < 0:
        ymax = spixels

    beam, fdet, sdet, odet = _f(b.beam_vector), _f(d.fdet_vector), _f(d.sdet_vector), _f(d.odet_vector)
    twotheta_axis, polar, spindle = _f(d.twotheta_axis), _f(b.polar_vector), _f(d.spindle_vector)
    pivot = d.pivot
    conv = d.convention
    if conv in _CONVENTION_AXES:
        if pivot != {Convention.XDS: Pivot.SAMPLE, Convention.DIALS: Pivot.SAMPLE}.get(conv, Pivot.BEAM):
            warn("the %s convention forces -pivot %s, as in nanoBragg.c"
                 % (conv.value, "sample" if conv in (Convention.XDS, Convention.DIALS) else "beam"))
    if conv == Convention.ADXV:
        if nan(xbeam):
            xbeam = (detsize_f + pixel) / 2.0
        if nan(ybeam):
            ybeam = (detsize_s - pixel) / 2.0
        fbeam = xbeam
        sbeam = detsize_s - ybeam
        pivot = Pivot.BEAM
    elif conv in (Convention.MOSFLM, Convention.DENZO):
        if nan(xbeam):
            xbeam = (detsize_s + pixel) / 2.0
        if nan(ybeam):
            ybeam = (detsize_f + pixel) / 2.0
        offset = 0.5 if conv == Convention.MOSFLM else 0.0
        fbeam = ybeam + offset * pixel
        sbeam = xbeam + offset * pixel
        pivot = Pivot.BEAM
    else:  # XDS, DIALS and CUSTOM: the beam centre defaults to the close point
        if nan(xbeam):
            xbeam = xclose
        if nan(ybeam):
            ybeam = yclose
        fbeam = xbeam
        sbeam = ybeam
        if conv == Convention.CUSTOM:
            fclose = xbeam
            sclose = ybeam
        else:
            pivot = Pivot.SAMPLE
    if conv in _CONVENTION_AXES:
        beam, fdet, sdet, odet, twotheta_axis, polar, spindle = (
            _f(v) for v in _CONVENTION_AXES[conv])

    beam, _ = unitize(beam)
    fdet, _ = unitize(fdet)
    sdet, _ = unitize(sdet)
    odet_u, odet_len = unitize(odet)
    if odet_len != 1.0:
        log("WARNING: auto-generating odet_vector")
        odet, _ = unitize(cross(fdet, sdet))
    else:
        odet = odet_u
    polar, _ = unitize(polar)
    spindle, _ = unitize(spindle)
    vert, _ = unitize(cross(beam, polar))

    return DetectorGeometry(
        fpixels=fpixels, spixels=spixels, pixel_size=pixel, detsize_f=detsize_f,
        detsize_s=detsize_s, distance=d.distance, close_distance=d.close_distance,
        convention=conv, pivot=pivot, fdet=fdet, sdet=sdet, odet=odet, beam=beam,
        polar=polar, spindle=spindle, vert=vert, twotheta_axis=twotheta_axis,
        pix0=_f(d.pix0_vector) if d.pix0_vector is not None else (0.0, 0.0, 0.0),
        xbeam=xbeam, ybeam=ybeam, fbeam=fbeam, sbeam=sbeam, xclose=xclose, yclose=yclose,
        fclose=fclose, sclose=sclose, orgx=d.orgx, orgy=d.orgy, dials_origin=(0.0, 0.0, 0.0),
        twotheta=d.twotheta, roi=(xmin, xmax, ymin, ymax))


def orient_detector(g: DetectorGeometry, cfg: Config, log) -> None:
    """Rotate the detector, apply the pivot, and derive every beam-centre form."""
    d = cfg.detector
    log("%s convention selected." % g.convention.value)
    rotx, roty, rotz = d.rotx, d.roty, d.rotz
    rotated_normal = rotate_xyz(g.odet, rotx, roty, rotz)
    ratio = dot(g.beam, rotated_normal)
    if ratio == 0.0:
        ratio = sys.float_info.min
    close_distance = g.close_distance
    if math.isnan(close_distance):
        close_distance = abs(ratio * g.distance)
    distance = close_distance / ratio

    pix0 = g.pix0
    if g.pivot == Pivot.SAMPLE:
        log("pivoting detector around sample")
        f, s, o = g.fdet, g.sdet, g.odet
        pix0 = tuple(-g.fclose * f[i] - g.sclose * s[i] + close_distance * o[i] for i in range(3))
        pix0 = rotate_xyz(pix0, rotx, roty, rotz)
        pix0 = rotate_axis(pix0, g.twotheta_axis, g.twotheta)
    fdet = rotate_axis(rotate_xyz(g.fdet, rotx, roty, rotz), g.twotheta_axis, g.twotheta)
    sdet = rotate_axis(rotate_xyz(g.sdet, rotx, roty, rotz), g.twotheta_axis, g.twotheta)
    odet = rotate_axis(rotate_xyz(g.odet, rotx, roty, rotz), g.twotheta_axis, g.twotheta)
    if g.pivot == Pivot.BEAM:
        log("pivoting detector around direct beam spot")
        pix0 = tuple(-g.fbeam * fdet[i] - g.sbeam * sdet[i] + distance * g.beam[i]
                     for i in range(3))

    fclose = -dot(pix0, fdet)
    sclose = -dot(pix0, sdet)
    close_distance = dot(pix0, odet)
    to_beam = tuple(close_distance / ratio * g.beam[i] - pix0[i] for i in range(3))
    g.fbeam = dot(fdet, to_beam)
    g.sbeam = dot(sdet, to_beam)
    g.distance = close_distance / ratio
    g.close_distance = close_distance
    g.fclose, g.sclose = fclose, sclose
    g.orgx = fclose / g.pixel_size + 0.5
    g.orgy = sclose / g.pixel_size + 0.5
    g.dials_origin = (1000.0 * dot(pix0, (0.0, 0.0, 1.0)),
                      1000.0 * dot(pix0, (0.0, 1.0, 0.0)),
                      1000.0 * dot(pix0, (-1.0, 0.0, 0.0)))
    g.fdet, g.sdet, g.odet, g.pix0 = fdet, sdet, odet, pix0
    log(c_sprintf("XDS incident beam: %g %g %g", dot(g.beam, fdet), dot(g.beam, sdet), dot(g.beam, odet)))
