"""Everything nanoBragg.c computes before its pixel loop, as flat arrays and scalars.

``make_plan(config)`` performs the reference's setup in the reference's order (the
printed setup lines come out in that order too) and returns a :class:`Plan` that the
engines consume. A Plan holds no file names and does no I/O after it is built, so
one Plan can render many frames; the expensive parts (structure factors, lattice
tables) are plain numpy arrays.

Unlike the reference, the Plan computes once what the reference recomputes per
pixel but depends only on (φ step, mosaic domain): the rotated lattice vectors. The
same function on the same inputs gives the same bits, so parity is kept.
"""
from __future__ import annotations

import math
import os
from dataclasses import field
from typing import List, Optional

import numpy as np

from . import __version__
from . import crystal as crystal_mod
from . import geometry, rng, sampling
from .config import Config, Shape
from .errors import NbsimError
from .records import record
from .flags import RTD
from .io.cparse import c_ceil_int, c_sprintf, fmt_g
from .libm import c_div
from .sources import build_sources
from .vec import rotate_axis, rotate_umat, unitize

R_E_SQR = 7.94079248018965e-30   # Thomson cross section, m^2
AVOGADRO = 6.02214179e23
WATER_F = 2.57
WATER_MW = 18.0

# sanity limits: beyond these a run would exhaust memory or never finish
MAX_PIXELS = 1 << 31
MAX_STEPS = 1_000_000
MAX_OVERSAMPLE = 1000        # sub-pixels per pixel side (a million per pixel)

# nbsim's own first line where nanoBragg.c prints its banner (only the statistics lines
# are part of stdout parity)
BANNER = "nbsim %s: nanoBragg-compatible nanocrystal diffraction simulator" % __version__


class MissingInputs(NbsimError):
    """No structure factors or no cell: the reference prints usage and exits 9."""

    def __init__(self, message, printed=""):
        super().__init__(message, exit_code=9)
        self.printed = printed


@record
class Plan:
    config: Config
    log: List[str]
    geom: geometry.DetectorGeometry
    # detector
    fpixels: int
    spixels: int
    roi: tuple
    mask: Optional[np.ndarray]
    pixel_size: float
    subpixel_size: float
    oversample: int
    thicksteps: int
    thickstep: float
    thick: float
    mu: float
    # beam
    lambda0: float
    sources: np.ndarray          # (n, 4): unit x, y, z pointing at the source, lambda
    source_weights: np.ndarray
    divsteps: int
    polar_axis: tuple
    # crystal
    lattice: crystal_mod.Lattice
    Na: float
    Nb: float
    Nc: float
    a0: tuple
    b0: tuple
    c0: tuple
    phi0: float
    osc: float
    phistep: float
    phisteps: int
    mosaic_spread: float
    mosaic_umats: np.ndarray     # (domains, 9)
    lattice_table: np.ndarray    # (phisteps, domains, 9): a, b, c per (φ, domain), metres
    first_lattice_table: np.ndarray  # same, for the reference's first φ loop (c_parity)
    Fhkl: np.ndarray
    hkl_bounds: tuple            # h_min, h_max, k_min, k_max, l_min, l_max
    hkls: int
    interpolate: int
    fluence: float
    I_bg: float
    steps: int
    rng_state: object
    hkl_table: object = None
    extra: dict = field(default_factory=dict)


def _phi_table(a0, b0, c0, spindle, phi0, phistep, phisteps, c_parity):
    """Rotated (a, b, c) per φ step; with ``c_parity`` the reference's carry-over.

    Returns (table, first_table). In c_parity mode a step whose angle is exactly 0
    keeps whatever the previous rotation left: the previous step of the same loop,
    or (for leading zero steps) the last non-zero step of the previous loop, or the
    unrotated cell in the very first loop the reference runs.
    """
    rot = []
    for tic in range(phisteps):
        phi = phi0 + phistep * tic
        if phi == 0.0:
            # a zero rotation is the identity; using the vectors as they are keeps the
            # signs of zero components (visible only in -printout) as the reference has them
            rot.append((phi, (a0, b0, c0)))
            continue
        rot.append((phi, (rotate_axis(a0, spindle, phi), rotate_axis(b0, spindle, phi),
                          rotate_axis(c0, spindle, phi))))
    if not c_parity:
        table = [v for _, v in rot]
        return table, table
    nonzero = [v for phi, v in rot if phi != 0.0]
    carried = nonzero[-1] if nonzero else (a0, b0, c0)
    table, first = [], []
    last, last_first = carried, (a0, b0, c0)
    for phi, v in rot:
        if phi != 0.0:
            last = last_first = v
        table.append(last)
        first.append(last_first)
    return table, first


def _apply_mosaic(table, umats, spread):
    out = np.empty((len(table), len(umats), 9))
    for t, (ap, bp, cp) in enumerate(table):
        for m, u in enumerate(umats):
            if spread > 0.0:
                vecs = (rotate_umat(ap, u), rotate_umat(bp, u), rotate_umat(cp, u))
            else:
                vecs = (ap, bp, cp)
            out[t, m] = np.array(vecs).ravel()
    return out


def _read_hkl(path, default_F, cache, max_bytes=None):
    """read_hkl, through ``cache`` (a dict) when one is given: a batch of frames reads
    a structure-factor file once, and again only if the file changes."""
    from .io import hkl as hkl_io
    if cache is None:
        return hkl_io.read_hkl(path, default_F, max_bytes)
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, repr(default_F))
    except OSError:
        return hkl_io.read_hkl(path, default_F, max_bytes)   # let it report
    if key not in cache:
        cache.clear()       # one table at a time: they can be large
        cache[key] = hkl_io.read_hkl(path, default_F, max_bytes)
    return cache[key]


def _table_from_memory(records, default_F, cache, max_bytes=None):
    """The dense table of in-memory records, through ``cache`` like a file's."""
    if cache is None:
        return records.table(default_F, max_bytes)
    key = ("memory", records.key, repr(default_F))
    if key not in cache:
        cache.clear()
        cache[key] = records.table(default_F, max_bytes)
    return cache[key]


def _check_job_size(cfg, geom, oversample, thicksteps, nsources, phisteps, domains,
                    fhkl_bytes):
    """The caps on total work and table memory (nbsim.limits), before the lattice
    tables are built."""
    from . import limits
    pixels = limits.roi_pixels(geom.roi, geom.fpixels, geom.spixels)
    limits.check_tables(cfg, phisteps, domains, nsources, fhkl_bytes)
    limits.check_work(cfg, pixels, oversample, thicksteps, nsources, phisteps, domains)


def make_plan(cfg: Config, printed_header=None, hkl_cache=None) -> Plan:
    """Everything the reference computes before its pixel loop, in its order.

    ``hkl_cache``: an optional dict in which structure-factor tables read from
    ``-hkl`` files are kept for later plans (see :func:`_read_hkl`)."""
    # numpy scalars (from the matrix file) may overflow or meet NaN, as C doubles do
    with np.errstate(all="ignore"):
        return _make_plan(cfg, hkl_cache)


def _make_plan(cfg, hkl_cache):
    log: List[str] = []
    emit = log.append
    warnings: List[str] = []
    d, b, cr, s = cfg.detector, cfg.beam, cfg.crystal, cfg.sampling
    cfg.validate()      # types and shapes: a wrong one is an error here, not in a kernel
    warnings.extend(sampling.negative_count_warnings(cfg))
    _warn_odd_values(cfg, warnings.append)
    fpixels, spixels = _check_detector_size(cfg)
    _check_roi(d.roi, fpixels, spixels, warnings.append)
    _warn_degenerate_axes(cfg, warnings.append)
    if fpixels * spixels > MAX_PIXELS:
        raise NbsimError("-detpixels: a %dx%d detector is more than nbsim renders (%d pixels at "
                         "most)" % (fpixels, spixels, MAX_PIXELS))

    # sample size, fluence
    sample_y, sample_z = cr.sample_y, cr.sample_z
    fluence = b.fluence
    beamsize = b.beamsize
    if b.flux != 0.0 and b.exposure > 0.0 and beamsize >= 0:
        fluence = c_div(c_div(b.flux * b.exposure, beamsize), beamsize)
    if beamsize >= 0:
        if beamsize < sample_y:
            emit(c_sprintf("WARNING: clipping sample (%g m high) with beam (%g m)", sample_y,
                           beamsize))
            sample_y = beamsize
        if beamsize < sample_z:
            emit(c_sprintf("WARNING: clipping sample (%g m wide) with beam (%g m)", sample_z,
                           beamsize))
            sample_z = beamsize

    geom = geometry.place_detector(cfg, emit, warnings.append)
    emit(BANNER)

    # the dump file is read only when one is named (the command line names Fdump.bin)
    given_F = cr.hkl_file is not None or cr.structure_factors is not None
    have_dump = not given_F and cr.dump_file is not None and os.path.exists(cr.dump_file)
    no_cell = cr.mat_file is None and cr.A_matrix is None and (cr.cell is None or cr.cell[0] == 0.0)
    if not given_F and not have_dump and cr.default_F == 0.0:
        emit("ERROR: no hkl file and no dump file to read.")
    if (not given_F and not have_dump and cr.default_F == 0.0) or no_cell:
        what = "no cell (-cell or -mat)" if no_cell \
            else "no structure factors (-hkl, -default_F%s)" % (
                " or " + cr.dump_file if cr.dump_file is not None else "")
        printed = "".join(line + "\n" for line in log)
        if log[-1].startswith("ERROR: no hkl file"):
            printed = printed[:-1]   # the reference prints the usage right after it
        raise MissingInputs(what, printed=printed)

    # sampling decisions
    osc, phistep, phisteps = sampling.phi_steps(cr.osc, cr.phistep, cr.phisteps)
    if phisteps <= 0 and cr.water_size == 0.0:
        # the reference's (int) of a NaN or overflowing osc/phistep runs no phi step: its
        # image is then the water background alone, here zero
        raise NbsimError("-phistep: -osc %g degrees in steps of %g degrees gives no phi step "
                         "(%d); nanoBragg.c would render an empty image"
                         % (cr.osc * RTD, cr.phistep * RTD, phisteps))
    hdivrange, hdivstep, hdivsteps = sampling.range_steps(b.hdivrange, b.hdivstep, b.hdivsteps)
    vdivrange, vdivstep, vdivsteps = sampling.range_steps(b.vdivrange, b.vdivstep, b.vdivsteps)
    dispersion, dispstep, dispsteps = sampling.range_steps(b.dispersion, b.dispstep, b.dispsteps)
    thick, thickstep, thicksteps = sampling.thick_steps(d.thick, d.thickstep, d.thicksteps)
    mu = d.mu
    if thick > 0.0 and mu < 0.0:
        mu = 1.0 / thick
        emit(c_sprintf("WARNING: setting detector attenuation depth to %g m", mu))
    mosaic_spread, mosaic_domains = sampling.mosaic_domains(cr.mosaic_spread, cr.mosaic_domains, emit)
    for flag, count in (("-phisteps", phisteps), ("-mosaic_dom", mosaic_domains),
                        ("-hdivsteps", hdivsteps), ("-vdivsteps", vdivsteps),
                        ("-dispsteps", dispsteps), ("-thicksteps", thicksteps)):
        if count > MAX_STEPS:
            raise NbsimError("%s: %d steps is more than nbsim takes (%d at most)"
                             % (flag, count, MAX_STEPS))
    hdivrange, hdivstep, hdivsteps = sampling.sane(hdivrange, hdivstep, hdivsteps)
    vdivrange, vdivstep, vdivsteps = sampling.sane(vdivrange, vdivstep, vdivsteps)
    dispersion, dispstep, dispsteps = sampling.sane(dispersion, dispstep, dispsteps)
    thick, thickstep, thicksteps = sampling.sane(thick, thickstep, thicksteps)
    if hdivsteps * vdivsteps * dispsteps > MAX_STEPS:
        raise NbsimError("-divsteps/-dispsteps: %d x %d divergence steps x %d wavelengths is "
                         "more sources than nbsim takes (%d at most)"
                         % (hdivsteps, vdivsteps, dispsteps, MAX_STEPS))

    geometry.orient_detector(geom, cfg, emit)
    _check_detector_plane(cfg, geom)

    Na, Nb, Nc = cr.Na, cr.Nb, cr.Nc
    interpolate = cr.interpolate
    if interpolate > 1:
        if Na <= 2 or Nb <= 2 or Nc <= 2:
            emit("auto-selected tricubic interpolation of structure factors")
            interpolate = 1
        else:
            emit("auto-selected no interpolation")
            interpolate = 0

    # orientation
    from .io.mat import read_mat
    mat = _flagged("-mat", read_mat, cr.mat_file) if cr.mat_file is not None else None
    state = rng.new_state()
    misset = cr.misset
    if cr.misset_random:
        idum = np.array([cr.misset_seed], dtype=np.int64)
        misset = rng.random_misset(idum, state)
    # (the reference prints the random angles after reading the matrix: see build_lattice)
    # a zero, singular or non-finite cell is not refused here: the reference can still
    # render a finite image with it (with N = 1, or a zero lattice and -cell); a render
    # that is NaN everywhere is refused afterwards (see check_rendered)
    lat = crystal_mod.build_lattice(cfg, mat, misset, emit, random_misset=cr.misset_random)
    a = tuple(1e-10 * x for x in lat.a)
    bb = tuple(1e-10 * x for x in lat.b)
    c = tuple(1e-10 * x for x in lat.c)
    a_len, b_len, c_len = (math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) for v in (a, bb, c))

    if cr.sample_x > 0:
        Na = _c_ceil(c_div(cr.sample_x, a_len))
    if sample_y > 0:
        Nb = _c_ceil(c_div(sample_y, b_len))
    if sample_z > 0:
        Nc = _c_ceil(c_div(sample_z, c_len))
    Na, Nb, Nc = (1.0 if n <= 1.0 else n for n in (Na, Nb, Nc))
    xa, xb, xc = a_len * Na, b_len * Nb, c_len * Nc
    emit(c_sprintf("crystal is %g x %g x %g microns", xa * 1e6, xb * 1e6, xc * 1e6))
    xmax = xa
    if xmax < xb:
        xmax = xb
    if xmax < xc:
        xmax = xc
    reciprocal_pixel = b.lambda0 * geom.distance / d.pixel_size
    # C's (int): an oversized recommendation becomes INT_MIN, so 1 below, as in the reference
    recommended = c_ceil_int(3.0 * xmax / reciprocal_pixel) if reciprocal_pixel != 0.0 \
        else c_ceil_int(math.inf)
    if recommended <= 0:
        recommended = 1
    oversample = s.oversample
    if oversample <= 0:
        oversample = recommended
        emit("auto-selected %d-fold oversampling" % oversample)
        if oversample > MAX_OVERSAMPLE:
            raise NbsimError("-oversample: the auto-selected %d-fold oversampling (a %g um crystal) "
                             "is more than nbsim takes (%d at most); give -oversample"
                             % (oversample, xmax * 1e6, MAX_OVERSAMPLE))
    elif oversample > MAX_OVERSAMPLE:
        raise NbsimError("-oversample: %d sub-pixels per side is more than nbsim takes (%d at most)"
                         % (oversample, MAX_OVERSAMPLE))
    if oversample < recommended:
        emit(c_sprintf("WARNING: maximum dimension of sample is %g A", xmax * 1e10))
        emit(c_sprintf("         but reciprocal pixel size is %g A", reciprocal_pixel * 1e10))
        emit("         intensity may vary significantly across a pixel!")
        emit("         recommend -oversample %d to work around this" % recommended)
    volume = xa * xb * xc
    emit(c_sprintf("approximate MW = %g", volume * 1.2e6 * AVOGADRO / (Na * Nb * Nc)))

    # structure factors
    from .io import hkl as hkl_io
    table = None
    if given_F:
        from .limits import max_table_bytes
        if cr.structure_factors is not None:
            table = _table_from_memory(cr.structure_factors, cr.default_F, hkl_cache,
                                       max_table_bytes(cfg))
        else:
            table = _flagged("-hkl", _read_hkl, cr.hkl_file, cr.default_F, hkl_cache,
                             max_table_bytes(cfg))
        for line in getattr(table, "messages", []):
            emit(line)
        if cr.dump_file is not None:
            # the reference caches what it read for runs without -hkl; the caller writes it
            emit("writing dump file for next time: %s" % cr.dump_file)
    elif have_dump:
        emit("reading Fs from %s" % cr.dump_file)
        try:
            table = hkl_io.read_fdump(cr.dump_file)
        except NbsimError as exc:
            raise NbsimError("-dump: %s (it is read because no -hkl is given)" % exc) from None
    if table is not None:
        Fhkl = np.ascontiguousarray(table.F, dtype=np.float64)
        bounds = (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max)
        hkls = table.hkls
    else:
        Fhkl = np.zeros((1, 1, 1))
        bounds = (0, 0, 0, 0, 0, 0)
        hkls = 0
    if hkls == 0:
        interpolate = 0

    if cr.stol_file is not None:
        from .io.sources import read_columns
        emit("reading %s" % cr.stol_file)
        # validated; never used by the physics
        _flagged("-stol", read_columns, cr.stol_file, 2, kind="stol file")

    for t in range(thicksteps):
        emit(c_sprintf("thick%d = %g um", t, thickstep * t * 1e6))
    for t in range(phisteps):
        emit(c_sprintf("phi%d = %g", t, (cr.phi0 + phistep * t) * RTD))

    samp = _Sweep(hdivrange, hdivstep, hdivsteps, vdivrange, vdivstep, vdivsteps,
                  dispersion, dispstep, dispsteps)
    cols = None
    if b.source_file is not None:
        from .io.sources import read_source_file
        cols = _flagged("-sourcefile", read_source_file, b.source_file)
        if len(cols[0]) == 0:
            raise NbsimError("-sourcefile: %s has no sources" % b.source_file)
    sx, sy, sz, si, sl, divsteps = build_sources(cfg, geom, samp, cols, emit)
    sources = np.ascontiguousarray(np.stack([sx, sy, sz, sl], axis=1))
    _check_job_size(cfg, geom, max(oversample, 1), thicksteps, len(sl), phisteps,
                    mosaic_domains, Fhkl.nbytes)

    idum = np.array([cr.mosaic_seed], dtype=np.int64)
    umats = rng.mosaic_umats(mosaic_spread, mosaic_domains, idum, state)
    emit("  created a total of %d mosaic domains" % mosaic_domains)

    if oversample <= 0:
        oversample = 1
    # the reference multiplies these in C int, which wraps past 2^31 (its image is then
    # scaled by the wrapped count); reproduced, except a count that wraps to zero
    steps = _c_int_product(len(sl), mosaic_domains, phisteps, oversample, oversample)
    if steps == 0:
        raise NbsimError("-oversample/-phisteps/-mosaic_dom: %d sources x %d domains x %d phi "
                         "steps x %d^2 sub-pixels is 2^32 times a whole number; the reference "
                         "divides by that product in 32-bit integers, which is then zero"
                         % (len(sl), mosaic_domains, phisteps, oversample))
    subpixel_size = d.pixel_size / oversample

    emit(c_sprintf("  %d initialized hkls (all others =%g)", hkls, cr.default_F))
    shape_name = {Shape.ROUND: "ellipsoidal", Shape.SQUARE: "parallelpiped",
                  Shape.GAUSS: "gaussian", Shape.TOPHAT: "tophat-spot"}[cr.shape]
    emit(c_sprintf("  %s xtal: %.0fx%.0fx%.0f cells", shape_name, Na, Nb, Nc))
    emit(c_sprintf("  wave=%g meters +/- %g%% in %d steps", b.lambda0, dispersion * 100, dispsteps))
    if b.nopolar:
        emit("  polarization effect disabled")
    else:
        emit(c_sprintf("  Kahn polarization factor: %f", b.polarization))
    if d.curved:
        emit("  curved detector: all pixels same distance from origin")
    if d.point_pixel:
        emit("  pixel obliquity effect disabled")
    g = geom
    emit(c_sprintf("  incident fluence: %g photons/m^2", fluence))
    emit(c_sprintf("  distance=%g detsize=%gx%g  pixel=%g meters (%dx%d pixels)", g.distance,
                   g.detsize_f, g.detsize_s, d.pixel_size, g.fpixels, g.spixels))
    emit(c_sprintf("  sensor is %g m thick in %d layers with mu= %g", thick, thicksteps, mu))
    emit(c_sprintf("  Xbeam=%g Ybeam=%g", g.xbeam, g.ybeam))
    emit(c_sprintf("  Fbeam=%g Sbeam=%g", g.fbeam, g.sbeam))
    emit(c_sprintf("  Xclose=%g Yclose=%g", g.xclose, g.yclose))
    emit(c_sprintf("  Fclose=%g Sclose=%g", g.fclose, g.sclose))
    emit(c_sprintf("  DIRECTION_OF_DETECTOR_X-AXIS= %g %g %g", *g.fdet))
    emit(c_sprintf("  DIRECTION_OF_DETECTOR_Y-AXIS= %g %g %g", *g.sdet))
    emit(c_sprintf("  DIRECTION_OF_DETECTOR_Z-AXIS= %g %g %g", *g.odet))
    emit(c_sprintf("  INCIDENT_BEAM_DIRECTION= %g %g %g", *g.beam))
    emit(c_sprintf("  spindle ROTATION_AXIS= %g %g %g", *g.spindle))
    from .vec import cross
    emit(c_sprintf("  POLARIZATION_PLANE_NORMAL= %g %g %g", *cross(g.beam, g.polar)))
    emit(c_sprintf("  dials origin= %g %g %g", *g.dials_origin))
    emit("  roi: %d < x < %d && %d < y < %d" % g.roi)
    emit(c_sprintf("  hdivrange=%g hdivstep=%g  radians", hdivrange, hdivstep))
    emit(c_sprintf("  vdivrange=%g vdivstep=%g  radians", vdivrange, vdivstep))
    emit("  %d divergence steps" % divsteps)
    emit(c_sprintf("  %d sources", len(sl)))
    emit(c_sprintf("  %d mosaic domains over mosaic spread of %g degrees", mosaic_domains,
                   mosaic_spread * RTD))
    emit(c_sprintf("  %d phi steps from %g to %g degrees", phisteps, cr.phi0 * RTD,
                   (cr.phi0 + osc) * RTD))
    emit("  %dx%d pixel oversample steps%s%s%s" % (
        oversample, oversample, " +thick" if s.oversample_thick else "",
        " +polar" if s.oversample_polar else "", " +omega" if s.oversample_omega else ""))
    if d.mask is not None:
        emit("  skipping zero-flagged pixels in %s" % (d.mask_file or "the mask array"))
    if cfg.noise.calculate_noise:
        emit("")
        emit("  noise image paramters:")
        emit("  seed: %d" % cfg.noise.seed)
        emit(c_sprintf("  water droplet size: %g m", cr.water_size))

    w = cr.water_size
    I_bg = WATER_F * WATER_F * R_E_SQR * fluence * w * w * w * 1e6 * AVOGADRO / WATER_MW
    if math.isnan(I_bg):
        # every pixel starts from this background, so every pixel would be NaN
        raise NbsimError("-fluence/-flux/-exposure/-beamsize/-water: the water background is "
                         "NaN (fluence %s photons/m^2, water %s um), so every pixel would be "
                         "NaN, as in nanoBragg.c" % (fmt_g(fluence), fmt_g(w * 1e6)))

    table_rot, first_rot = _phi_table(a, bb, c, geom.spindle, cr.phi0, phistep, phisteps,
                                      s.c_parity)
    lattice_table = _apply_mosaic(table_rot, umats, mosaic_spread)
    first_table = _apply_mosaic(first_rot, umats, mosaic_spread)

    # the reference re-normalises the polarization axis on every use; after one pass
    # it is a fixed point for any axis we have met, which is what the kernel uses.
    polar_axis = unitize(geom.polar)[0]

    mask = None
    if d.mask is not None:
        mask = np.ascontiguousarray(d.mask, dtype=np.uint16).reshape(spixels, fpixels)

    plan = Plan(
        config=cfg, log=log, geom=geom, fpixels=geom.fpixels, spixels=geom.spixels,
        roi=geom.roi, mask=mask, pixel_size=d.pixel_size, subpixel_size=subpixel_size,
        oversample=oversample, thicksteps=thicksteps, thickstep=thickstep, thick=thick, mu=mu,
        lambda0=b.lambda0, sources=sources, source_weights=si, divsteps=divsteps,
        polar_axis=polar_axis, lattice=lat, Na=Na, Nb=Nb, Nc=Nc, a0=a, b0=bb, c0=c,
        phi0=cr.phi0, osc=osc, phistep=phistep, phisteps=phisteps,
        mosaic_spread=mosaic_spread, mosaic_umats=umats, lattice_table=lattice_table,
        first_lattice_table=first_table, Fhkl=Fhkl, hkl_bounds=bounds, hkls=hkls,
        interpolate=interpolate, fluence=fluence, I_bg=I_bg, steps=steps, rng_state=state,
        hkl_table=table)
    plan.extra["warnings"] = warnings
    return plan


def _flagged(flag, reader, *args, **kwargs):
    """``reader(*args)``, its error prefixed by the flag that named the file."""
    try:
        return reader(*args, **kwargs)
    except NbsimError as exc:
        text = str(exc)
        if text.startswith(flag + ":"):
            raise
        raise NbsimError("%s: %s" % (flag, text), exit_code=exc.exit_code) from None


def _c_ceil(x):
    """C's ceil() on a double: infinities and NaN pass through (math.ceil raises)."""
    return float(math.ceil(x)) if math.isfinite(x) else x


def _c_int_product(*factors):
    """The product of C ints, multiplied left to right with 32-bit wrap-around."""
    out = 1
    for f in factors:
        out = (out * int(f) + 2**31) % 2**32 - 2**31
    return out


def _nonfinite(*values):
    return not all(math.isfinite(float(x)) for v in values for x in np.ravel(v))


def _user_values(cfg):
    """(flag, value as typed, bad) for the numeric settings; ``bad`` marks a value that
    is not finite (for the beam-centre settings, where NaN means "not given", infinite)."""
    d, b, cr = cfg.detector, cfg.beam, cfg.crystal
    mm, deg = 1000.0, RTD
    out = []

    def add(flag, value, scale=1.0, nan_is_unset=False):
        vals = tuple(value) if isinstance(value, tuple) else (value,)
        bad = any(math.isinf(x) if nan_is_unset else not math.isfinite(x) for x in vals)
        out.append((flag, " ".join(fmt_g(x * scale) for x in vals), bad))

    add("-distance", d.distance, mm)
    add("-close_distance", d.close_distance, mm, True)
    for flag, x in (("-Xbeam", d.xbeam), ("-Ybeam", d.ybeam), ("-Xclose", d.xclose),
                    ("-Yclose", d.yclose)):
        add(flag, x, mm, True)
    add("-ORGX", d.orgx, 1.0, True)
    add("-ORGY", d.orgy, 1.0, True)
    for flag, x in (("-twotheta", d.twotheta), ("-detector_rotx", d.rotx),
                    ("-detector_roty", d.roty), ("-detector_rotz", d.rotz)):
        add(flag, x, deg)
    for flag, v in (("-fdet_vector", d.fdet_vector), ("-sdet_vector", d.sdet_vector),
                    ("-odet_vector", d.odet_vector), ("-beam_vector", b.beam_vector),
                    ("-twotheta_axis", d.twotheta_axis), ("-polar_vector", b.polar_vector),
                    ("-spindle_axis", d.spindle_vector)):
        add(flag, v)
    add("-lambda", b.lambda0, 1e10)
    add("-dispersion", b.dispersion, 100.0)
    for flag, x in (("-hdivrange", b.hdivrange), ("-vdivrange", b.vdivrange),
                    ("-hdivstep", b.hdivstep), ("-vdivstep", b.vdivstep)):
        add(flag, x, mm)
    if cr.cell is not None:
        add("-cell", cr.cell[:3] + tuple(x * deg for x in cr.cell[3:]))
    if cr.misset is not None:
        add("-misset", cr.misset, deg)
    for flag, x in (("-phi", cr.phi0), ("-osc", cr.osc), ("-phistep", cr.phistep),
                    ("-mosaic", cr.mosaic_spread)):
        add(flag, x, deg)
    for flag, x in (("-sample_x", cr.sample_x), ("-sample_y", cr.sample_y),
                    ("-sample_z", cr.sample_z)):
        add(flag, x, mm)
    add("-polar", b.polarization)
    add("-default_F", cr.default_F)
    add("-fudge", cr.fudge)
    add("-detector_abs", c_div(1e6, d.mu) if d.mu > 0 else d.mu)
    add("-detector_thick", d.thick, 1e6)
    return out


# which settings feed each part of the plan (for naming the cause of a NaN image)
_NAN_GROUPS = (
    ("detector placement", "-distance -close_distance -Xbeam -Ybeam -Xclose -Yclose -ORGX -ORGY "
     "-twotheta -detector_rotx -detector_roty -detector_rotz -fdet_vector -sdet_vector "
     "-odet_vector -beam_vector -twotheta_axis"),
    ("source list", "-lambda -dispersion -hdivrange -vdivrange -hdivstep -vdivstep -beam_vector "
     "-polar_vector"),
    ("unit cell", "-cell -misset -lambda"),
    ("crystal rotation", "-phi -osc -phistep -mosaic -spindle_axis"),
    ("crystal size", "-sample_x -sample_y -sample_z"),
    ("polarization", "-polar -polar_vector"),
    ("structure factor", "-default_F"),
    ("spot shape", "-fudge"),
    ("sensor", "-detector_abs -detector_thick"),
)


def _nan_suspects(plan):
    """Flags behind a NaN image: for each part of the plan that holds a non-finite
    value, the non-finite settings that feed it, else the part's main flag."""
    cfg, g, lat, cr = plan.config, plan.geom, plan.lattice, plan.config.crystal
    cell_flag = "-mat %s" % cr.mat_file if cr.mat_file else "-cell"
    broken = {
        "detector placement": _nonfinite(g.pix0, g.fdet, g.sdet, g.odet, g.beam, g.close_distance),
        "source list": _nonfinite(plan.sources) or bool(np.any(plan.sources[:, 3] == 0.0)),
        "unit cell": _nonfinite(lat.a, lat.b, lat.c),
        "crystal size": _nonfinite(plan.Na, plan.Nb, plan.Nc),
        "polarization": not cfg.beam.nopolar and _nonfinite(cfg.beam.polarization, plan.polar_axis),
        "structure factor": _nonfinite(cr.default_F) or _nonfinite(plan.Fhkl),
        "spot shape": _nonfinite(cr.fudge) or (cr.fudge < 0.0 and cr.shape == Shape.ROUND),
        "sensor": _nonfinite(plan.mu, plan.thick, plan.thickstep),
    }
    # the rotation table is built from the cell: blame it only for a finite cell
    broken["crystal rotation"] = not broken["unit cell"] and _nonfinite(plan.lattice_table)
    fallback = {"detector placement": "the detector geometry", "source list": "-lambda/-sourcefile",
                "unit cell": cell_flag, "crystal rotation": "-phi/-osc/-mosaic",
                "crystal size": "-xtalsize", "polarization": "-polar_vector",
                "structure factor": "-hkl %s" % cr.hkl_file if cr.hkl_file else "-default_F",
                "spot shape": "-fudge", "sensor": "-detector_abs/-detector_thick"}
    values = {flag: (text, bad) for flag, text, bad in _user_values(cfg)}
    named, shown = [], []
    for group, flags in _NAN_GROUPS:
        if not broken[group]:
            continue
        bad = [f for f in flags.split() if f in values and values[f][1] and f not in named]
        items = ["%s %s" % (f, values[f][0]) for f in bad] or [fallback[group]]
        named.extend(bad or [fallback[group].split()[0]])
        shown.append("a non-finite %s from %s" % (group, ", ".join(items)))
    return list(dict.fromkeys(named)), shown


def refuse_all_nan(plan, image, header_note=""):
    """Refuse a render that is NaN in every pixel it rendered (the reference, given the
    same values, writes the same useless image). A partly NaN image is kept, as the
    reference's is: which settings make every pixel NaN depends on culling (-dmin),
    crystal shape and N, so the rendered image is what decides."""
    xmin, xmax, ymin, ymax = plan.roi
    region = image[ymin:ymax + 1, xmin:xmax + 1]
    if plan.mask is not None:
        region = region[plan.mask[ymin:ymax + 1, xmin:xmax + 1] != 0]
    if region.size == 0 or not np.isnan(region).all():
        return
    named, shown = _nan_suspects(plan)
    raise NbsimError("%s: every pixel of the image is NaN, as nanoBragg.c would render it "
                     "(%s)%s" % ("/".join(named) if named else "settings",
                                 "; ".join(shown) if shown else "from an intermediate value",
                                 header_note))


def _check_detector_size(cfg):
    """(fpixels, spixels); a detector without pixels is refused: the reference would
    write an empty or all-zero image."""
    d = cfg.detector
    if d.pixel_size == 0.0 or not math.isfinite(d.pixel_size):
        raise NbsimError("-pixel: a pixel size of %s mm leaves no pixel to render"
                         % fmt_g(d.pixel_size * 1000))
    fpixels, spixels, detsize_f, detsize_s = geometry.detector_size(cfg)
    for flag, n, size in (("-detpixels_f", d.fpixels, detsize_f), ("-detpixels_s", d.spixels, detsize_s)):
        if n < 0:
            raise NbsimError("%s: %d pixels is no detector" % (
                "-detpixels" if d.fpixels == d.spixels else flag, n))
        wanted = c_div(size, d.pixel_size) - 0.5
        if not math.isfinite(wanted):
            raise NbsimError("-detsize: a detector of %s mm in pixels of %s mm is not a number "
                             "of pixels" % (fmt_g(size * 1000), fmt_g(d.pixel_size * 1000)))
        if wanted > 2 ** 31 - 1:
            raise NbsimError("-detsize: %s mm in pixels of %s mm is %s pixels along one side, "
                             "more than nanoBragg.c can count (%d at most)"
                             % (fmt_g(size * 1000), fmt_g(d.pixel_size * 1000),
                                fmt_g(math.ceil(wanted)), 2 ** 31 - 1))
    if fpixels <= 0 or spixels <= 0:
        raise NbsimError("-detsize: a %s x %s mm detector in pixels of %s mm has no pixel "
                         "(%d x %d)" % (fmt_g(detsize_f * 1000), fmt_g(detsize_s * 1000),
                                        fmt_g(d.pixel_size * 1000), fpixels, spixels))
    return fpixels, spixels


def _warn_odd_values(cfg, warn):
    """Values the reference renders without complaint but that are surely mistakes."""
    d, b = cfg.detector, cfg.beam
    if d.pixel_size < 0.0:
        warn("-pixel: a negative pixel size (%s mm) mirrors the detector; rendering as "
             "nanoBragg.c does" % fmt_g(d.pixel_size * 1000))
    if not b.lambda0 > 0.0 or math.isinf(b.lambda0):
        warn("-lambda/-energy: a wavelength of %s A is not physical; rendering as nanoBragg.c "
             "does%s" % (fmt_g(b.lambda0 * 1e10), " (the -sourcefile wavelengths are used)"
                         if b.source_file else ""))


def _warn_degenerate_axes(cfg, warn):
    """Zero or parallel detector and beam axes of the CUSTOM convention: the reference
    renders them (a zero axis stays zero), so nbsim does too, with a warning."""
    from .config import Convention
    from .vec import cross, magnitude
    d, b = cfg.detector, cfg.beam
    if d.convention != Convention.CUSTOM:
        return   # the convention supplies the axes
    named = [("-beam_vector", b.beam_vector), ("-polar_vector", b.polar_vector),
             ("-spindle_axis", d.spindle_vector), ("-twotheta_axis", d.twotheta_axis),
             ("-fdet_vector", d.fdet_vector), ("-sdet_vector", d.sdet_vector)]
    for flag, v in named:
        if v[0] == 0.0 and v[1] == 0.0 and v[2] == 0.0:
            warn("%s: the zero vector has no direction; nanoBragg.c keeps it zero and so "
                 "does nbsim" % flag)
    f = unitize(tuple(d.fdet_vector))[0]
    s_ = unitize(tuple(d.sdet_vector))[0]
    if magnitude(f) > 0.0 and magnitude(s_) > 0.0 and magnitude(cross(f, s_)) < 1e-6:
        warn("-fdet_vector/-sdet_vector: the detector axes are parallel; rendering the "
             "degenerate detector as nanoBragg.c does")


def _check_detector_plane(cfg, geom):
    """A detector plane through the sample: every pixel's solid angle is zero (times a
    finite number), so the reference's image is zero, or NaN."""
    s = cfg.sampling
    if geom.close_distance == 0.0 and not cfg.detector.point_pixel and not s.oversample_omega:
        raise NbsimError("-distance/-close_distance/-beam_vector: the detector plane passes "
                         "through the sample (close distance 0, from -distance %s mm), so every "
                         "pixel's solid angle is zero; nanoBragg.c would render an empty image"
                         % fmt_g(cfg.detector.distance * 1000))


def _check_roi(roi, fpixels, spixels, warn):
    """Negative bounds mean "not set", as in the reference (with a warning unless it is
    the default -1); a region that selects no pixel is refused."""
    if tuple(roi) == (-1, -1, -1, -1):
        return
    xmin, xmax, ymin, ymax = roi
    if any(x < -1 for x in roi):
        warn("-roi: negative bounds (%d %d %d %d) mean 'whole detector' on that side, as in "
             "nanoBragg.c" % tuple(roi))
    xmin = 0 if xmin < 0 else xmin
    xmax = fpixels if xmax < 0 else xmax
    ymin = 0 if ymin < 0 else ymin
    ymax = spixels if ymax < 0 else ymax
    if xmin > xmax or ymin > ymax or xmin >= fpixels or ymin >= spixels:
        raise NbsimError("-roi: %d %d %d %d selects no pixel of the %dx%d detector (xmin xmax "
                         "ymin ymax, inclusive); nanoBragg.c would render an empty image"
                         % (tuple(roi) + (fpixels, spixels)))


@record
class _Sweep:
    hdivrange: float
    hdivstep: float
    hdivsteps: int
    vdivrange: float
    vdivstep: float
    vdivsteps: int
    dispersion: float
    dispstep: float
    dispsteps: int
