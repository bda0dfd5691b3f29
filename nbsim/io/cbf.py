"""miniCBF output (``-cbffile``): Pilatus-style header, byte-offset data, via fabio.

The header is the "PILATUS_1.2" convention's ``# Key value`` lines, which DIALS
(dxtbx's FormatCBFMiniPilatus, through FormatCBFMini._detector and
DetectorFactory.simple), XDS and ADXV read. Under those rules the detector is flat,
perpendicular to the beam at ``Detector_distance``, with the fast axis +x and the slow
axis -y of the imgCIF frame, and the beam meets it at ``Beam_xy`` pixels measured from
the outer corner of the first pixel (the beam-centre position in mm is Beam_xy times
the pixel size). That is the same pixel convention as nbsim's (see
:mod:`nbsim.experiment`), so Beam_xy is the model's beam centre in pixels, unchanged.
A miniCBF cannot describe detector rotations or two-theta: for such a detector the
header still gives the true beam centre and distance along the beam, and the CLI warns.

The pixels are signed 32-bit integers: photon counts (see :func:`counts_for_cbf`),
with -1 marking pixels nbsim did not render (outside -roi, or masked), the Pilatus
convention for pixels without data.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import NbsimError
from .atomic import atomic_path

__all__ = ["require_fabio", "check_cbf_size", "counts_for_cbf", "format_pilatus_header",
           "write_minicbf", "INT32_MAX", "CBF_MAX", "PHOTON_CUTOFF"]

INT32_MAX = 2**31 - 1
# Byte-offset coding stores the step from one pixel to the next; fabio codes steps of
# at most 32 bits (a step of 2**31 or more is written wrongly), so the pixels of one
# image must span less than 2**31: with -1 for missing pixels, counts stop at 2**31 - 2.
CBF_MAX = INT32_MAX - 1
PHOTON_CUTOFF = 2**31 - 128      # the largest float32 below 2**31 - 1
# a fixed time stamp: the same inputs give the same bytes (dxtbx needs the line)
_TIMESTAMP = "2000-01-01T00:00:00.000"


def require_fabio(flag="-cbffile"):
    """fabio's CBF class, or a one-line error naming the package and pip command."""
    from . import require
    return require("fabio.cbfimage", flag, "fabio").CbfImage


def check_cbf_size(fpixels, spixels, flag="-cbffile"):
    """A CBF counts its elements in a signed 32-bit integer."""
    n = int(fpixels) * int(spixels)
    if n > INT32_MAX:
        raise NbsimError("%s: a %dx%d detector has %d pixels, more than a CBF file can "
                         "hold (%d)" % (flag, fpixels, spixels, n, INT32_MAX))


def counts_for_cbf(float_image, noise_image=None, adc_offset=40.0, rendered=None):
    """(int32 counts, count cutoff) for the CBF.

    With a noise image: its Poisson photon counts without the ADC offset (the noise
    image clips at 65535, so the cutoff is 65535 - ADC offset). Without one: the
    expected photons rounded to the nearest integer (NaN as 0), clipped to
    0..PHOTON_CUTOFF (the largest float32 below 2**31 - 1).
    ``rendered``: a bool mask of the pixels nbsim rendered; the others become -1."""
    if noise_image is not None:
        cutoff = int(65535 - math.ceil(adc_offset)) if adc_offset > 0 else 65535
        counts = np.asarray(noise_image).astype(np.int32)     # 16-bit values: no overflow
        counts -= int(round(adc_offset))
        np.maximum(counts, 0, out=counts)
    else:
        # float32 throughout (the image's own precision; 4 passes over the image)
        cutoff = PHOTON_CUTOFF
        x = np.rint(np.asarray(float_image, dtype=np.float32))
        np.fmax(x, np.float32(0.0), out=x)             # fmax: NaN becomes 0
        np.fmin(x, np.float32(PHOTON_CUTOFF), out=x)
        counts = x.astype(np.int32)
    if rendered is not None:
        counts[~rendered] = -1
    return counts, cutoff


def _g(x):
    """A number as text that reads back to the same double (no rounding in headers)."""
    return repr(float(x))


def format_pilatus_header(model, scan_start, scan_increment, count_cutoff):
    """The ``# ...`` lines of the PILATUS_1.2 header for ``model`` (see module doc)."""
    centre = model.beam_centre_px
    distance = model.distance
    if centre is None or distance is None:
        raise NbsimError("-cbffile: the beam does not meet the detector plane, so a miniCBF "
                         "header (beam centre, distance along the beam) cannot describe it")
    p = model.pixel_size
    lines = ["# Detector: nbsim simulated PAD, S/N 0-0000",
             "# " + _TIMESTAMP,
             "# Pixel_size %s m x %s m" % (_g(p), _g(p))]
    if model.sensor_thickness > 0.0:
        lines.append("# Silicon sensor, thickness %s m" % _g(model.sensor_thickness))
    lines += ["# Exposure_time %s s" % _g(model.exposure),
              "# Exposure_period %s s" % _g(model.exposure),
              "# Tau = 0 s",
              "# Count_cutoff %d counts" % int(count_cutoff),
              "# Wavelength %s A" % _g(model.wavelength * 1e10),
              "# Detector_distance %s m" % _g(distance),
              "# Beam_xy (%s, %s) pixels" % (_g(centre[0]), _g(centre[1])),
              "# Start_angle %s deg." % _g(scan_start),
              "# Angle_increment %s deg." % _g(scan_increment),
              "# Detector_2theta %s deg." % _g(math.degrees(model.twotheta)),
              "# Phi %s deg." % _g(scan_start)]
    if model.flux > 0.0:
        lines.append("# Flux %s" % _g(model.flux))
    return "\n".join(lines)


def write_minicbf(path, counts, model, scan_start=None, scan_increment=None,
                  count_cutoff=CBF_MAX):
    """Write ``counts`` (2-D integers spanning less than 2**31, see CBF_MAX) as a
    byte-offset miniCBF.

    The scan angles default to the model's φ start and oscillation (degrees)."""
    CbfImage = require_fabio()
    data = np.asarray(counts)
    if data.ndim != 2:
        raise ValueError("write_minicbf needs a 2-D image, got shape %s" % (data.shape,))
    check_cbf_size(data.shape[1], data.shape[0])
    if data.size and int(data.max()) - int(data.min()) > INT32_MAX:
        raise NbsimError("-cbffile: pixel values from %d to %d span more than the 32-bit "
                         "steps of byte-offset compression (2**31 - 1)"
                         % (int(data.min()), int(data.max())))
    data = data.astype(np.int32)
    start = math.degrees(model.phi0) if scan_start is None else scan_start
    step = math.degrees(model.osc) if scan_increment is None else scan_increment
    header = {"_array_data.header_convention": "PILATUS_1.2",
              "_array_data.header_contents": format_pilatus_header(model, start, step,
                                                                   count_cutoff)}
    image = CbfImage(data=np.ascontiguousarray(data), header=header)
    # fabio names the CIF data block after the file: the scratch file keeps the name
    with atomic_path(path) as scratch:
        image.write(scratch)
