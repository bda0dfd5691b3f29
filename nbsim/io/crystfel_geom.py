"""CrystFEL geometry file (``-geomfile``) for the NXmx/HDF5 output.

CrystFEL's lab frame is the McStas frame of :mod:`nbsim.experiment` (z along the beam,
y up, x to the left looking along the beam), so the panel is the model's detector
rotated by :meth:`ExperimentModel.lab_to_mcstas`. In CrystFEL's description a pixel
at continuous panel coordinates (fs, ss) (0 at the outer corner of the first pixel,
the same convention as nbsim's pix0) lies at

    x = (corner_x + fs·fs_x + ss·ss_x) / res
    y = (corner_y + fs·fs_y + ss·ss_y) / res
    z = clen + coffset + (fs·fs_z + ss·ss_z) / res

with res in pixels per metre and clen in metres. The fs/ss vectors carry z components
when the detector is tilted or on a two-theta arm. The data are ``/entry/data/data``
[frame, slow, fast] of the NXmx file, one event per frame (``dim0 = %``).
"""
from __future__ import annotations

import numpy as np

from .. import __version__
from .atomic import atomic_write_bytes

__all__ = ["format_geom", "write_geom"]


def _g(x):
    return repr(float(x))


def format_geom(model, data_path="/entry/data/data", adu_per_photon=1.0,
                max_adu=None, data_file=None, panel="p0"):
    """The text of a .geom file describing ``model`` (see the module docstring)."""
    m = model.in_frame(model.lab_to_mcstas())
    res = 1.0 / model.pixel_size
    pix0 = np.asarray(m.pix0)
    lines = ["; CrystFEL geometry written by nbsim %s%s" % (
                 __version__, " for %s" % data_file if data_file else ""),
             "; lab frame: z along the beam, y up, x = y cross z (CrystFEL's and NeXus')",
             "; one panel, %d x %d pixels of %s m; the beam centre is at fs=%s ss=%s px"
             % ((model.fpixels, model.spixels, _g(model.pixel_size))
                + tuple(_g(c) for c in (model.beam_centre_px or (float("nan"),) * 2))),
             "",
             "photon_energy = %s" % _g(model.photon_energy_ev),
             "adu_per_photon = %s" % _g(adu_per_photon),
             "res = %s" % _g(res),
             "clen = %s" % _g(pix0[2]),
             "coffset = 0",
             "data = %s" % data_path,
             "dim0 = %",
             "dim1 = ss",
             "dim2 = fs",
             ""]
    if max_adu is not None:
        lines.insert(-1, "max_adu = %s" % _g(max_adu))
    p = panel
    lines += ["%s/min_fs = 0" % p,
              "%s/max_fs = %d" % (p, model.fpixels - 1),
              "%s/min_ss = 0" % p,
              "%s/max_ss = %d" % (p, model.spixels - 1),
              "%s/corner_x = %s" % (p, _g(pix0[0] * res)),
              "%s/corner_y = %s" % (p, _g(pix0[1] * res)),
              "%s/fs = %s" % (p, _axis(m.fdet)),
              "%s/ss = %s" % (p, _axis(m.sdet)),
              ""]
    return "\n".join(lines)


def _axis(v):
    return " ".join("%+.17g%s" % (float(v[i]), "xyz"[i]) for i in range(3))


def write_geom(path, model, **kwargs):
    """Write :func:`format_geom` to ``path`` atomically."""
    atomic_write_bytes(path, format_geom(model, **kwargs).encode("ascii"))
