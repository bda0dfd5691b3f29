"""How many steps of each kind (φ, divergence, dispersion, sensor layers, domains).

nanoBragg.c lets the user give any two of (range, step, count) and fills in the
third; the rules differ slightly between the φ, divergence/dispersion and thickness
sweeps, and are reproduced here exactly. A count below zero means "not given", as in
the reference.
"""
from __future__ import annotations

from .flags import RTD
from .io.cparse import c_ceil_int


def phi_steps(osc, phistep, phisteps):
    if phisteps < 0:
        if osc < 0.0:
            if phistep <= 0.0:
                return 0.0, 0.0, 1
            return phistep, phistep, 2
        if phistep <= 0.0:
            return osc, osc / 2.0, 2
        return osc, phistep, c_ceil_int(osc / phistep)
    if phisteps == 0:
        phisteps = 1
    if osc < 0.0:
        if phistep <= 0.0:
            osc = 1.0 / RTD
            return osc, osc / phisteps, phisteps
        return phistep, phistep, 2
    if phistep < 0.0:
        return osc, osc / phisteps, phisteps
    return osc, phistep, phisteps


def range_steps(rng, step, steps):
    """Divergence and dispersion: (range, step, count)."""
    if steps <= 0:
        if rng < 0.0:
            if step <= 0.0:
                return 0.0, 0.0, 1
            return step, step, 2
        if step <= 0.0:
            return rng, rng, 2
        return rng, step, c_ceil_int(rng / step)
    if rng < 0.0:
        if step <= 0.0:
            rng = 1.0
            return rng, rng / steps, steps
        return step, step, 2
    if step <= 0.0:
        if steps <= 1:
            steps = 2
        return rng, rng / (steps - 1), steps
    return rng, step, steps


def thick_steps(thick, step, steps):
    """Sensor layers: (thickness, layer step, layer count)."""
    if steps <= 0:
        if thick < 0.0:
            if step <= 0.0:
                return 0.0, 0.0, 1
            return step, step, 2
        if step <= 0.0:
            steps = 2
            return thick, thick / steps, steps
        return thick, step, c_ceil_int(thick / step)
    if thick < 0.0:
        if step <= 0.0:
            thick = 0.5e-6
            return thick, thick / steps, steps
        return step, step, 2
    if step <= 0.0:
        if steps <= 1:
            steps = 2
        return thick, thick / (steps - 1), steps
    return thick, step, steps


def sane(rng, step, steps):
    """The reference's final clean-up: anything non-positive means a single step."""
    if rng <= 0.0 or step <= 0.0 or steps <= 0:
        return 0.0, 0.0, 1
    return rng, step, steps


def mosaic_domains(spread, domains, log):
    if domains <= 0:
        if spread < 0.0:
            return 0.0, 1
        if spread == 0.0:
            return spread, 1
        log("WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains")
        return spread, 10
    if spread < 0.0:
        log("WARNING: no mosaic spread specified.  setting mosaic_domains = 1")
        return 0.0, 1
    if spread == 0.0:
        log("WARNING: zero mosaic spread specified.  setting mosaic_domains = 1")
        return spread, 1
    return spread, domains


def negative_count_warnings(cfg):
    """Warnings for counts below -1: the reference treats any count <= 0 as "choose for
    me" (-1 is its own default), so nbsim does the same and says so."""
    b, d, c, s = cfg.beam, cfg.detector, cfg.crystal, cfg.sampling
    out = []
    for flag, value in (("-hdivsteps", b.hdivsteps), ("-vdivsteps", b.vdivsteps),
                        ("-dispsteps", b.dispsteps), ("-phisteps", c.phisteps),
                        ("-mosaic_dom", c.mosaic_domains), ("-thicksteps", d.thicksteps),
                        ("-oversample", s.oversample)):
        if value < -1:
            out.append("%s: a negative count (%d) means 'choose for me', as in nanoBragg.c"
                       % (flag, value))
    return out
