"""X-ray sources: a user's source file, or the divergence × dispersion grid.

Each source is a unit vector pointing from the sample to the source, a weight and a
wavelength. The reference prints each source before normalising it; so do we. (The
reference never applies the weights to the intensity; nor does parity mode.)
"""
from __future__ import annotations

import math

import numpy as np

from .io.cparse import c_sprintf
from .libm import c_div
from .vec import rotate_axis, unitize


def divergence_grid(hdivrange, hdivstep, hdivsteps, vdivrange, vdivstep, vdivsteps, round_div):
    """The (hdiv, vdiv) pairs kept, in the reference's order."""
    kept = []
    for ht in range(hdivsteps):
        for vt in range(vdivsteps):
            hdiv = hdivstep * ht - hdivrange / 2.0
            vdiv = vdivstep * vt - vdivrange / 2.0
            test = c_div(c_div(hdiv * hdiv - hdivstep * hdivstep / 4.0 * (1 - hdivsteps % 2),
                               hdivrange), hdivrange)
            test += c_div(c_div(vdiv * vdiv - vdivstep * vdivstep / 4.0 * (1 - vdivsteps % 2),
                                vdivrange), vdivrange)
            if round_div and test * 4.0 > 1.1:
                continue
            kept.append((hdiv, vdiv))
    return kept


def build_sources(cfg, geom, samp, file_columns, log):
    """Return (X, Y, Z unit arrays, I, lambda, divsteps)."""
    b = cfg.beam
    beam, polar, vert = geom.beam, geom.polar, geom.vert
    dist = b.source_distance
    lambda0 = b.lambda0
    divsteps = -1     # the reference's initial value, printed as is with a source file
    if file_columns is not None:
        X, Y, Z, I, L = (np.array(col, dtype=np.float64) for col in file_columns)
        for i in range(len(X)):
            if math.isnan(X[i]):
                X[i] = -dist * beam[0]
            if math.isnan(Y[i]):
                Y[i] = -dist * beam[1]
            if math.isnan(Z[i]):
                Z[i] = -dist * beam[2]
            if math.isnan(I[i]):
                I[i] = 1.0
            if math.isnan(L[i]):
                L[i] = lambda0
        points = list(zip(X, Y, Z, I, L))
    else:
        grid = divergence_grid(samp.hdivrange, samp.hdivstep, samp.hdivsteps,
                               samp.vdivrange, samp.vdivstep, samp.vdivsteps, b.round_div)
        divsteps = len(grid)
        for hdiv, vdiv in grid:
            log(c_sprintf("divergence deviation: %g %g", hdiv, vdiv))
        lambdas = [lambda0 * (1.0 + samp.dispstep * t - samp.dispersion / 2.0)
                   for t in range(samp.dispsteps)]
        for t, lam in enumerate(lambdas):
            log(c_sprintf("lambda%d = %.15g", t, lam))
        count = divsteps * samp.dispsteps
        weight = c_div(1.0, count)
        points = []
        for hdiv, vdiv in grid:
            v = (-dist * beam[0], -dist * beam[1], -dist * beam[2])
            v = rotate_axis(rotate_axis(v, polar, vdiv), vert, hdiv)
            for lam in lambdas:
                points.append((v[0], v[1], v[2], weight, lam))
    log(c_sprintf("  created a total of %d sources:", len(points)))
    n = len(points)
    sx, sy, sz = np.empty(n), np.empty(n), np.empty(n)
    si, sl = np.empty(n), np.empty(n)
    for i, (x, y, z, w, lam) in enumerate(points):
        log(c_sprintf("%g %g %g   %g %g", x, y, z, w, lam))
        u, _ = unitize((x, y, z))
        sx[i], sy[i], sz[i], si[i], sl[i] = u[0], u[1], u[2], w, lam
    return sx, sy, sz, si, sl, divsteps
