"""Unit cell and orientation: from -cell/-mat/-misset to real and reciprocal vectors.

The reference builds a reciprocal basis from the cell (or a MOSFLM matrix), applies
the misset rotation, derives the direct basis and then re-derives the reciprocal one;
the printed cell lines and every lattice vector come from that sequence, reproduced
here operation for operation. Reciprocal vectors are in 1/Angstrom, direct vectors in
Angstrom on return (the caller converts to metres).
"""
from __future__ import annotations

import math
import sys
from typing import Tuple

from .config import Config
from .flags import RTD
from .io.cparse import c_sprintf
from .records import record
from .libm import c_cos as cos, c_div, c_sin as sin, c_sqrt
from .vec import cross, dot, magnitude, rescale, rotate_xyz, scale

Vec = Tuple[float, float, float]
DBL_MIN = sys.float_info.min


@record
class Lattice:
    a: Vec
    b: Vec
    c: Vec
    a_star: Vec
    b_star: Vec
    c_star: Vec
    v_cell: float
    cell_lengths: Tuple[float, float, float]
    misset: Tuple[float, float, float]


def _d2(x, y, z):
    """``x / y / z`` as C evaluates it (a zero length divides to inf or NaN)."""
    return c_div(c_div(x, y), z)


def _check_odd(log, title, values, names):
    if any(v > 1.0000001 or v < -1.0000001 for v in values):
        log(title)
        for name, v in zip(names, values):
            log(c_sprintf("%s = %.25g", name, v))


def _clamp_angles(sins, coss):
    sins = [min(max(s, -1.0), 1.0) for s in sins]
    coss = [1.0 if c * c > 1.0 else c for c in coss]
    return [math.atan2(s, c) for s, c in zip(sins, coss)]


def _reciprocal_from_cell(cell, log):
    a, b, c, alpha, beta, gamma = cell
    if b <= 0.0:
        b = a
    if c <= 0.0:
        c = a
    if alpha <= 0.0:
        alpha = math.pi / 2
    if beta <= 0.0:
        beta = math.pi / 2
    if gamma <= 0.0:
        gamma = math.pi / 2
    aavg = (alpha + beta + gamma) / 2
    skew = sin(aavg) * sin(aavg - alpha) * sin(aavg - beta) * sin(aavg - gamma)
    if skew < 0.0:
        skew = -skew
    v_cell = 2.0 * a * b * c * c_sqrt(skew)
    if v_cell <= 0.0:
        log(c_sprintf("WARNING: impossible unit cell volume: %g", v_cell))
        v_cell = DBL_MIN
    v_star = 1.0 / v_cell
    a_star_len = b * c * sin(alpha) * v_star
    b_star_len = c * a * sin(beta) * v_star
    c_star_len = a * b * sin(gamma) * v_star
    if a_star_len <= 0.0 or b_star_len <= 0.0 or c_star_len <= 0.0:
        log(c_sprintf("WARNING: impossible reciprocal cell lengths: %g %g %g", a_star_len, b_star_len, c_star_len))
        a_star_len = abs(a_star_len) or DBL_MIN
        b_star_len = abs(b_star_len) or DBL_MIN
        c_star_len = abs(c_star_len) or DBL_MIN
    sin_as = a * v_star / b_star_len / c_star_len
    sin_bs = b * v_star / a_star_len / c_star_len
    sin_gs = c * v_star / a_star_len / b_star_len
    cos_as = c_div(cos(beta) * cos(gamma) - cos(alpha), sin(beta) * sin(gamma))
    cos_bs = c_div(cos(gamma) * cos(alpha) - cos(beta), sin(gamma) * sin(alpha))
    cos_gs = c_div(cos(alpha) * cos(beta) - cos(gamma), sin(alpha) * sin(beta))
    _check_odd(log, "WARNING: oddball reciprocal cell angles:",
               (sin_as, cos_as, sin_bs, cos_bs, sin_gs, cos_gs),
               ("sin(alpha_star)", "cos(alpha_star)", "sin(beta_star) ", "cos(beta_star) ",
                "sin(gamma_star)", "cos9gamma_star)"))
    sin_as, sin_bs, sin_gs = (min(max(s, -1.0), 1.0) for s in (sin_as, sin_bs, sin_gs))
    cos_as, cos_bs, cos_gs = (1.0 if x * x > 1.0 else x for x in (cos_as, cos_bs, cos_gs))
    a_star = (a_star_len, 0.0, 0.0)
    b_star = (b_star_len * cos_gs, b_star_len * sin_gs, 0.0)
    c_star = (c_star_len * cos_bs,
              c_div(c_star_len * (cos_as - cos_bs * cos_gs), sin_gs),
              c_div(c_star_len * v_cell, a * b * c * sin_gs))
    return a_star, b_star, c_star, (a, b, c), v_cell


def build_lattice(cfg: Config, mat, misset, log, random_misset=False) -> Lattice:
    """``mat``: 3x3 MOSFLM matrix rows or None (else ``cfg.crystal.A_matrix`` if set);
    ``misset``: angles (rad) or None; ``random_misset``: the angles were drawn at
    random (the reference prints them, after the matrix file's name)."""
    cr = cfg.crystal
    user_cell = cr.cell is not None
    a_star = b_star = c_star = (0.0, 0.0, 0.0)
    lengths = (0.0, 0.0, 0.0)
    v_cell_user = 0.0
    if user_cell:
        a_star, b_star, c_star, lengths, v_cell_user = _reciprocal_from_cell(cr.cell, log)
    if mat is not None:
        log("reading %s" % cr.mat_file)
        a_star = (mat[0][0], mat[1][0], mat[2][0])
        b_star = (mat[0][1], mat[1][1], mat[2][1])
        c_star = (mat[0][2], mat[1][2], mat[2][2])
        s = c_div(1e-10, cfg.beam.lambda0)
        a_star, b_star, c_star = scale(a_star, s), scale(b_star, s), scale(c_star, s)
    elif cr.A_matrix is not None:
        # given in memory, already in 1/Angstrom: the columns are a*, b*, c*
        m = cr.A_matrix
        a_star = (m[0][0], m[1][0], m[2][0])
        b_star = (m[0][1], m[1][1], m[2][1])
        c_star = (m[0][2], m[1][2], m[2][2])
    if random_misset:
        log(c_sprintf("random orientation misset angles: %f %f %f deg",
                      misset[0] * RTD, misset[1] * RTD, misset[2] * RTD))
    if misset is not None:
        a_star = rotate_xyz(a_star, *misset)
        b_star = rotate_xyz(b_star, *misset)
        c_star = rotate_xyz(c_star, *misset)

    a_star_x_b_star = cross(a_star, b_star)
    b_star_x_c_star = cross(b_star, c_star)
    c_star_x_a_star = cross(c_star, a_star)
    v_star = dot(a_star, b_star_x_c_star)
    if user_cell:
        b_star_x_c_star = rescale(b_star_x_c_star, lengths[0] / v_cell_user)
        c_star_x_a_star = rescale(c_star_x_a_star, lengths[1] / v_cell_user)
        a_star_x_b_star = rescale(a_star_x_b_star, lengths[2] / v_cell_user)
        v_star = 1.0 / v_cell_user
    v_cell = c_div(1.0, v_star)
    a = scale(b_star_x_c_star, v_cell)
    b = scale(c_star_x_a_star, v_cell)
    c = scale(a_star_x_b_star, v_cell)
    a_star = scale(cross(b, c), v_star)
    b_star = scale(cross(c, a), v_star)
    c_star = scale(cross(a, b), v_star)

    la, lb, lc = magnitude(a), magnitude(b), magnitude(c)
    las, lbs, lcs = magnitude(a_star), magnitude(b_star), magnitude(c_star)
    sins = [_d2(las * v_cell, lb, lc), _d2(lbs * v_cell, la, lc), _d2(lcs * v_cell, la, lb)]
    coss = [_d2(dot(b, c), lb, lc), _d2(dot(a, c), la, lc), _d2(dot(a, b), la, lb)]
    _check_odd(log, "WARNING: oddball cell angles:",
               (sins[0], coss[0], sins[1], coss[1], sins[2], coss[2]),
               ("sin_alpha", "cos_alpha", "sin_beta ", "cos_beta ", "sin_gamma", "cos_gamma"))
    alpha, beta, gamma = _clamp_angles(sins, coss)
    sins_s = [_d2(la * v_star, lbs, lcs), _d2(lb * v_star, las, lcs), _d2(lc * v_star, las, lbs)]
    coss_s = [_d2(dot(b_star, c_star), lbs, lcs), _d2(dot(a_star, c_star), las, lcs),
              _d2(dot(a_star, b_star), las, lbs)]
    _check_odd(log, "WARNING: oddball reciprocal cell angles:",
               (sins_s[0], coss_s[0], sins_s[1], coss_s[1], sins_s[2], coss_s[2]),
               ("sin(alpha_star)", "cos(alpha_star)", "sin(beta_star) ", "cos(beta_star) ",
                "sin(gamma_star)", "cos(gamma_star)"))
    alpha_s, beta_s, gamma_s = _clamp_angles(sins_s, coss_s)

    log(c_sprintf("Unit Cell: %g %g %g %g %g %g", la, lb, lc, alpha * RTD, beta * RTD, gamma * RTD))
    log(c_sprintf("Recp Cell: %g %g %g %g %g %g", las, lbs, lcs, alpha_s * RTD, beta_s * RTD, gamma_s * RTD))
    log(c_sprintf("volume = %g A^3", v_cell))
    log("real-space cell vectors (Angstrom):")
    log(c_sprintf("     %-10s  %-10s  %-10s", "a", "b", "c"))
    for i, axis in enumerate("XYZ"):
        log(c_sprintf("%s: %11.8f %11.8f %11.8f", axis, a[i], b[i], c[i]))
    log("reciprocal-space cell vectors (Angstrom^-1):")
    log(c_sprintf("     %-10s  %-10s  %-10s", "a_star", "b_star", "c_star"))
    for i, axis in enumerate("XYZ"):
        log(c_sprintf("%s: %11.8f %11.8f %11.8f", axis, a_star[i], b_star[i], c_star[i]))
    return Lattice(a=a, b=b, c=c, a_star=a_star, b_star=b_star, c_star=c_star, v_cell=v_cell,
                   cell_lengths=(la, lb, lc), misset=misset or (0.0, 0.0, 0.0))
