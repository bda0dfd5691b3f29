"""The experiment a Plan describes (detector, beam, goniometer), for the file writers.

Every writer of a geometry-carrying format (NeXus/NXmx, miniCBF, CrystFEL .geom, TIFF
metadata, the PNG preview's beam-centre mark) takes an :class:`ExperimentModel`; none
of them looks at a Plan or recomputes physics. The model holds the placed detector as
the engines use it, so a reader that follows a file's geometry puts every pixel where
nbsim rendered it.

Frames
------
*nanoBragg's lab frame* is the frame of the Plan's vectors. With the default MOSFLM
convention the beam runs along +x, the spindle along +z and y completes a right-handed
set; the XDS and DIALS conventions (and CUSTOM vectors) use the same physics in
differently oriented axes (XDS/DIALS: beam along +z). Lengths are metres, angles
radians, here as in the Plan.

*McStas/NeXus frame* (NXmx, and CrystFEL's lab frame, which is the same): z along the
beam (away from the source), y up, x = y × z (to the left looking along the beam).
nanoBragg has no "up", so the rotation from its lab frame is fixed by the beam and
the polarization: McStas z is the beam and McStas x is minus the polarization
(E-vector) direction, made perpendicular to the beam. For the MOSFLM convention this
gives (x, y, z)_McStas = (-z, y, x)_lab, the same mapping nanoBragg itself uses for
its printed "dials origin" (imgCIF = diag(-1, 1, -1) McStas), so the spindle lands on
McStas -x and the E-vector is horizontal, as at a synchrotron.

*imgCIF/dxtbx frame*: x_imgCIF = -x_McStas, y the same, z_imgCIF = -z_McStas (z
points from the sample towards the source). See :data:`MCSTAS_TO_IMGCIF`.

Pixel coordinates
-----------------
Pixel (f, s) (0-based fast, slow indices) covers [f, f+1) x [s, s+1) in pixel units
measured from pix0, the outer corner of the first pixel, along fdet and sdet; its
centre is pix0 + (f + 0.5) p fdet + (s + 0.5) p sdet, as in nanoBragg's pixel loop.
This is also dxtbx's, CrystFEL's and the miniCBF Beam_xy convention (0 = the edge of
the first pixel), so beam centres in pixels are written as they are here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np

Vec = Tuple[float, float, float]

MCSTAS_TO_IMGCIF = np.diag([-1.0, 1.0, -1.0])

# h c in eV·m: photon energy (eV) = HC_EV_M / wavelength (m)
HC_EV_M = 1.2398419843320026e-06


@dataclass(frozen=True)
class Scan:
    """A rotation scan: frame i is exposed from start + i·increment over increment.

    Angles in degrees (the unit every format here writes). ``axis`` names the
    goniometer axis in the files ("phi", nanoBragg's spindle)."""
    start: float
    increment: float
    frames: int = 1
    axis: str = "phi"

    def starts(self):
        return np.array([self.start + i * self.increment for i in range(self.frames)])

    def ends(self):
        return self.starts() + self.increment


@dataclass(frozen=True)
class ExperimentModel:
    """Detector, beam and goniometer in nanoBragg's lab frame (metres, radians).

    ``pix0``: outer corner of the first pixel; ``fdet``/``sdet``/``odet``: unit fast,
    slow and normal axes; ``beam``: unit direction of the incident beam;
    ``twotheta_axis``/``twotheta``: the detector's two-theta rotation (already applied
    to the vectors above); ``spindle``: the φ axis; ``polar``: the E-vector direction.
    """
    fpixels: int
    spixels: int
    pixel_size: float
    pix0: Vec
    fdet: Vec
    sdet: Vec
    odet: Vec
    beam: Vec
    polar: Vec
    spindle: Vec
    twotheta_axis: Vec
    twotheta: float
    wavelength: float
    phi0: float
    osc: float
    exposure: float = 1.0
    flux: float = 0.0              # photons/s; 0: not given
    beamsize: float = 0.0
    sensor_thickness: float = 0.0
    adc_offset: float = 40.0
    curved: bool = False
    convention: str = "mosflm"

    # -- derived geometry (computed here, once, so that writers agree) ---------------

    @property
    def close_distance(self) -> float:
        """Perpendicular distance from the sample to the detector plane (signed)."""
        return float(np.dot(self.pix0, self.odet))

    @property
    def beam_hit(self) -> Optional[np.ndarray]:
        """Where the beam meets the detector plane (lab, metres), or None if it never
        does (beam parallel to the plane, or the plane behind the sample)."""
        along = float(np.dot(self.beam, self.odet))
        if along == 0.0:
            return None
        t = float(np.dot(self.pix0, self.odet)) / along
        if not (t > 0.0) or not math.isfinite(t):
            return None
        return t * np.asarray(self.beam, dtype=float)

    @property
    def distance(self) -> Optional[float]:
        """Distance from the sample to the beam centre along the beam (metres)."""
        hit = self.beam_hit
        return None if hit is None else float(np.linalg.norm(hit))

    @property
    def beam_centre_m(self) -> Optional[Tuple[float, float]]:
        """(fast, slow) position of the beam centre from pix0, in metres; None if the
        beam misses the detector plane. With two-theta = 0 this is the Plan's
        Fbeam/Sbeam; with two-theta it is the true intersection (nanoBragg's printed
        Fbeam/Sbeam then keep its pre-two-theta bookkeeping)."""
        hit = self.beam_hit
        if hit is None:
            return None
        rel = hit - np.asarray(self.pix0, dtype=float)
        return float(np.dot(rel, self.fdet)), float(np.dot(rel, self.sdet))

    @property
    def beam_centre_px(self) -> Optional[Tuple[float, float]]:
        """(fast, slow) beam centre in pixels, 0 at the outer edge of the first pixel."""
        c = self.beam_centre_m
        return None if c is None else (c[0] / self.pixel_size, c[1] / self.pixel_size)

    @property
    def photon_energy_ev(self) -> float:
        return HC_EV_M / self.wavelength

    @property
    def is_tilted(self) -> bool:
        """True when the detector is not perpendicular to the beam."""
        return abs(float(np.dot(self.beam, self.odet))) < 1.0 - 1e-12

    def pixel_centres(self, f, s) -> np.ndarray:
        """Lab positions (..., 3) of the centres of pixels (f, s) (arrays broadcast)."""
        f = np.asarray(f, dtype=float)[..., None]
        s = np.asarray(s, dtype=float)[..., None]
        p = self.pixel_size
        return (np.asarray(self.pix0) + (f + 0.5) * p * np.asarray(self.fdet)
                + (s + 0.5) * p * np.asarray(self.sdet))

    # -- frames ----------------------------------------------------------------------

    def lab_to_mcstas(self) -> np.ndarray:
        """Rotation matrix M with v_McStas = M @ v_lab (see the module docstring)."""
        z = _unit(self.beam)
        x = None
        for ref in (self.polar, self.spindle, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)):
            perp = np.asarray(ref, dtype=float) - np.dot(ref, z) * z
            if np.linalg.norm(perp) > 1e-6:
                x = -_unit(perp)
                break
        y = np.cross(z, x)
        return np.array([x, y, z])

    def lab_to_imgcif(self) -> np.ndarray:
        return MCSTAS_TO_IMGCIF @ self.lab_to_mcstas()

    def in_frame(self, matrix) -> "ExperimentModel":
        """The same experiment with every vector rotated by ``matrix`` (e.g.
        :meth:`lab_to_mcstas`); scalars are unchanged."""
        m = np.asarray(matrix, dtype=float)

        def rot(v):
            return tuple(float(x) for x in m @ np.asarray(v, dtype=float))
        return replace(self, pix0=rot(self.pix0), fdet=rot(self.fdet), sdet=rot(self.sdet),
                       odet=rot(self.odet), beam=rot(self.beam), polar=rot(self.polar),
                       spindle=rot(self.spindle), twotheta_axis=rot(self.twotheta_axis))

    def without_twotheta(self, v) -> np.ndarray:
        """``v`` rotated back by -two-theta about the two-theta axis: the detector's
        vectors before the two-theta arm moved it (a NeXus axis chain applies the
        two-theta rotation last)."""
        return _rotate(np.asarray(v, dtype=float), _unit(self.twotheta_axis), -self.twotheta) \
            if self.twotheta != 0.0 else np.asarray(v, dtype=float)

    def scan(self, frames=1) -> Scan:
        """The φ scan of this run (``frames`` frames of ``osc`` each from ``phi0``)."""
        return Scan(start=math.degrees(self.phi0), increment=math.degrees(self.osc),
                    frames=frames)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def _rotate(v, axis, angle):
    """Right-handed rotation of ``v`` by ``angle`` about unit ``axis`` (Rodrigues)."""
    c, s = math.cos(angle), math.sin(angle)
    return v * c + np.cross(axis, v) * s + axis * np.dot(axis, v) * (1.0 - c)


def model_from_plan(plan) -> ExperimentModel:
    """The experiment of a Plan (its placed detector, beam and φ range)."""
    g = plan.geom
    cfg = plan.config
    b = cfg.beam
    return ExperimentModel(
        fpixels=int(plan.fpixels), spixels=int(plan.spixels), pixel_size=float(plan.pixel_size),
        pix0=tuple(g.pix0), fdet=tuple(g.fdet), sdet=tuple(g.sdet), odet=tuple(g.odet),
        beam=tuple(g.beam), polar=tuple(g.polar), spindle=tuple(g.spindle),
        twotheta_axis=tuple(_unit(g.twotheta_axis)), twotheta=float(g.twotheta),
        wavelength=float(plan.lambda0), phi0=float(plan.phi0), osc=float(plan.osc),
        exposure=float(b.exposure), flux=float(b.flux), beamsize=float(b.beamsize),
        sensor_thickness=float(plan.thick), adc_offset=float(cfg.noise.adc_offset),
        curved=bool(cfg.detector.curved), convention=g.convention.value)
