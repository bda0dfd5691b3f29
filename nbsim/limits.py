"""Caps on the size of a job, checked before anything large is built or rendered.

Each step count has its own cap (nbsim.plan), but their product can still be a job
that runs for days or tables that do not fit in memory (``-phisteps 1000000
-mosaic_dom 1000000`` passes every single cap). Two products are capped:

* the work: inner evaluations = rendered pixels (the ROI) x sub-pixels² x sensor
  layers x sources x φ steps x mosaic domains; the default, 10¹⁴, is about two days
  for a 64-core node at the engines' 10⁷ evaluations per second per core (the
  golden cases need at most ~10⁸, the benchmarks 10⁸);
* the tables built before rendering: the lattice tables (φ steps x mosaic domains,
  two of them), the source list and the structure-factor table; default 32 GB.

Both can be raised: ``-max_evaluations N`` / ``-max_table_gb G`` on the command line,
the fields ``max_evaluations`` / ``max_table_gb`` of ``SamplingConfig``, or the
environment variables ``NBSIM_MAX_EVALUATIONS`` / ``NBSIM_MAX_TABLE_GB`` (a flag or
field wins over the environment). ``inf`` removes a cap.
"""
from __future__ import annotations

import math
import os
import re

from .errors import NbsimError

DEFAULT_MAX_EVALUATIONS = 1e14
DEFAULT_MAX_TABLE_GB = 32.0
ENV_EVALUATIONS = "NBSIM_MAX_EVALUATIONS"
ENV_TABLE_GB = "NBSIM_MAX_TABLE_GB"
FLAG_EVALUATIONS = "-max_evaluations"
FLAG_TABLE_GB = "-max_table_gb"

_NUMBER = re.compile(r"[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+]?inf(inity)?", re.IGNORECASE)
_DOUBLE_BYTES = 8
_LATTICE_ENTRY_BYTES = 9 * _DOUBLE_BYTES      # a, b, c of one (φ step, mosaic domain)
_SOURCE_BYTES = 5 * _DOUBLE_BYTES             # direction, wavelength, weight


def parse_limit(name: str, text: str) -> float:
    """A cap given as text: a positive number (plain ASCII digits, as C reads them) or
    ``inf``; anything else is an error naming ``name``."""
    text = str(text).strip()
    if not (text.isascii() and _NUMBER.fullmatch(text)):
        raise NbsimError("%s: expected a positive number or inf, got '%s'" % (name, text))
    value = float(text)
    if not value > 0.0:
        raise NbsimError("%s: must be positive (got '%s')" % (name, text))
    return value


def _limit(given, env, default):
    if given is not None:
        return float(given)
    text = os.environ.get(env, "").strip()
    return parse_limit(env, text) if text else default


def max_evaluations(cfg=None) -> float:
    """The work cap for ``cfg`` (its field, else $NBSIM_MAX_EVALUATIONS, else the default)."""
    return _limit(getattr(getattr(cfg, "sampling", None), "max_evaluations", None),
                  ENV_EVALUATIONS, DEFAULT_MAX_EVALUATIONS)


def max_table_bytes(cfg=None) -> float:
    """The table-memory cap for ``cfg`` in bytes (field, else $NBSIM_MAX_TABLE_GB, else
    the default)."""
    return 1e9 * _limit(getattr(getattr(cfg, "sampling", None), "max_table_gb", None),
                        ENV_TABLE_GB, DEFAULT_MAX_TABLE_GB)


def _how_to_raise(flag, env):
    return "raise the cap with %s or %s (inf: no cap)" % (flag, env)


def _gb(nbytes):
    """A byte count for people: 3 significant digits, decimal units."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return "%.3g %s" % (nbytes / size, unit)
    return "%d bytes" % nbytes


def roi_pixels(roi, fpixels, spixels) -> int:
    """Pixels inside a region of interest (both ends inclusive), clipped to the detector."""
    xmin, xmax, ymin, ymax = roi
    fp = min(xmax, fpixels - 1) - max(xmin, 0) + 1
    sp = min(ymax, spixels - 1) - max(ymin, 0) + 1
    return max(fp, 0) * max(sp, 0)


def check_work(cfg, pixels, oversample, thicksteps, sources, phisteps, domains):
    """Refuse a job whose inner evaluations exceed the cap, naming the product."""
    factors = (pixels, oversample * oversample, thicksteps, sources, phisteps, domains)
    total = math.prod(float(f) for f in factors)
    cap = max_evaluations(cfg)
    if total > cap:
        raise NbsimError(
            "job too large: %d pixels x %d sub-pixels (oversample %d squared) x %d sensor "
            "layers x %d sources x %d phi steps x %d mosaic domains = %.4g inner evaluations, "
            "over the cap of %.4g; %s"
            % (pixels, oversample * oversample, oversample, thicksteps, sources, phisteps,
               domains, total, cap, _how_to_raise(FLAG_EVALUATIONS + " N", ENV_EVALUATIONS)))
    return total


def check_tables(cfg, phisteps, domains, sources, fhkl_bytes):
    """Refuse tables (two lattice tables and the mosaic rotations, the sources, the
    structure factors) larger than the cap, before the lattice tables are built."""
    lattice = float(phisteps) * domains * _LATTICE_ENTRY_BYTES * 2 \
        + float(domains) * _LATTICE_ENTRY_BYTES
    src = float(sources) * _SOURCE_BYTES
    total = lattice + src + float(fhkl_bytes)
    cap = max_table_bytes(cfg)
    if total > cap:
        raise NbsimError(
            "tables too large: lattice tables for %d phi steps x %d mosaic domains (%s) + "
            "%d sources (%s) + structure factors (%s) = %s, over the cap of %s; %s"
            % (phisteps, domains, _gb(lattice), sources, _gb(src), _gb(fhkl_bytes),
               _gb(total), _gb(cap), _how_to_raise(FLAG_TABLE_GB + " G", ENV_TABLE_GB)))
    return total


def check_fhkl_shape(shape, where, cap_bytes=None):
    """Refuse a structure-factor table of ``shape`` (float64) over the table cap, before
    it is allocated. ``cap_bytes`` None: the environment's or the default cap."""
    cap = max_table_bytes() if cap_bytes is None else cap_bytes
    nbytes = float(_DOUBLE_BYTES) * math.prod(float(n) for n in shape)
    if nbytes > cap:
        raise NbsimError(
            "%s: structure-factor table %s = %.3g entries (%s) is over the table cap "
            "of %s; %s" % (where, " x ".join(str(n) for n in shape),
                           nbytes / _DOUBLE_BYTES, _gb(nbytes), _gb(cap),
                           _how_to_raise(FLAG_TABLE_GB + " G", ENV_TABLE_GB)))
