"""32-bit float TIFF output (an nbsim addition; the reference has no TIFF).

One uncompressed page of float32 pixels, written with ``tifffile`` into memory
and then atomically to disk; ``tifffile.imread`` gives back identical values.

With an experiment model the page also carries the geometry: the TIFF resolution
tags give the pixel size (pixels per centimetre), and the ImageDescription holds
tifffile's JSON metadata (``tifffile.TiffFile(path).shaped_metadata[0]``) with
:func:`geometry_metadata`'s keys; every key names its unit.
"""
import io

import numpy as np

from .atomic import atomic_write_bytes

__all__ = ["write_float_tiff", "geometry_metadata"]


def geometry_metadata(model):
    """JSON-ready geometry of an :class:`nbsim.experiment.ExperimentModel`.

    Vectors are in nanoBragg's lab frame (``lab_frame`` says which); the beam
    centre is in pixels from the outer corner of the first pixel (fast, slow)."""
    import math
    centre = model.beam_centre_px
    meta = {
        "software": "nbsim",
        "pixel_values": "expected photons per pixel",
        "pixel_size_m": model.pixel_size,
        "wavelength_A": model.wavelength * 1e10,
        "photon_energy_eV": model.photon_energy_ev,
        "distance_m": model.distance,
        "close_distance_m": model.close_distance,
        "beam_center_fast_slow_px": list(centre) if centre is not None else None,
        "beam_center_fast_slow_m": list(model.beam_centre_m) if centre is not None else None,
        "phi_start_deg": math.degrees(model.phi0),
        "osc_range_deg": math.degrees(model.osc),
        "twotheta_deg": math.degrees(model.twotheta),
        "exposure_s": model.exposure,
        "lab_frame": "nanoBragg's (%s convention)" % model.convention,
        "pix0_m": list(model.pix0),
        "fast_axis": list(model.fdet),
        "slow_axis": list(model.sdet),
        "normal_axis": list(model.odet),
        "beam_direction": list(model.beam),
        "spindle_axis": list(model.spindle),
    }
    return meta


def write_float_tiff(path, img2d_float32, model=None):
    """Write a 2-D image (rows = slow axis) as a float32 TIFF.

    A non-float32 array is converted with ``astype(float32)``. ``model`` (an
    ExperimentModel) adds the geometry metadata described in the module docstring.
    """
    import tifffile

    with np.errstate(over="ignore", invalid="ignore"):   # overflow -> inf
        data = np.ascontiguousarray(img2d_float32, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"write_float_tiff needs a 2-D image, got shape {data.shape}")
    buffer = io.BytesIO()
    extra = {}
    if model is not None:
        per_cm = 0.01 / model.pixel_size
        extra = {"metadata": geometry_metadata(model), "resolution": (per_cm, per_cm),
                 "resolutionunit": "CENTIMETER"}
    tifffile.imwrite(buffer, data, photometric="minisblack", **extra)
    atomic_write_bytes(path, buffer.getvalue())
