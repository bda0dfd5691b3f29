"""Three-vector arithmetic with the reference's exact operation order.

Setup values (detector axes, cell vectors, source directions) must match nanoBragg.c
to the last bit, so every sum here is written left to right as the reference
evaluates it; do not "simplify" these expressions. Vectors are plain tuples.
"""
import math

from .libm import c_cos, c_sin


def dot(x, y):
    return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]


def cross(x, y):
    return (x[1] * y[2] - x[2] * y[1],
            x[2] * y[0] - x[0] * y[2],
            x[0] * y[1] - x[1] * y[0])


def magnitude(v):
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def unitize(v):
    """(unit vector, original length); a zero vector stays zero."""
    mag = magnitude(v)
    if mag != 0.0:
        return (v[0] / mag, v[1] / mag, v[2] / mag), mag
    return (0.0, 0.0, 0.0), mag


def scale(v, s):
    return (s * v[0], s * v[1], s * v[2])


def rescale(v, new_magnitude):
    old = magnitude(v)
    if old <= 0.0:
        old = 1.0
    return (new_magnitude / old * v[0], new_magnitude / old * v[1], new_magnitude / old * v[2])


def rotate_xyz(v, phix, phiy, phiz):
    """Rotate about x, then y, then z (radians); a zero angle is skipped entirely."""
    x, y, z = v
    if phix != 0:
        c, s = c_cos(phix), c_sin(phix)
        y, z = y * c + z * -s, y * s + z * c
    if phiy != 0:
        c, s = c_cos(phiy), c_sin(phiy)
        x, z = x * c + y * 0 + z * s, x * -s + y * 0 + z * c
    if phiz != 0:
        c, s = c_cos(phiz), c_sin(phiz)
        x, y = x * c + y * -s, x * s + y * c
    return (x, y, z)


def rotate_axis(v, axis, phi):
    """Rotate ``v`` by ``phi`` about the unit vector ``axis`` (Rodrigues form)."""
    sinphi = c_sin(phi)
    cosphi = c_cos(phi)
    d = (axis[0] * v[0] + axis[1] * v[1] + axis[2] * v[2]) * (1.0 - cosphi)
    return (axis[0] * d + v[0] * cosphi + (-axis[2] * v[1] + axis[1] * v[2]) * sinphi,
            axis[1] * d + v[1] * cosphi + (+axis[2] * v[0] - axis[0] * v[2]) * sinphi,
            axis[2] * d + v[2] * cosphi + (-axis[1] * v[0] + axis[0] * v[1]) * sinphi)


def rotate_umat(v, u):
    """Multiply by a row-major 3x3 matrix given as 9 numbers."""
    return (u[0] * v[0] + u[1] * v[1] + u[2] * v[2],
            u[3] * v[0] + u[4] * v[1] + u[5] * v[2],
            u[6] * v[0] + u[7] * v[1] + u[8] * v[2])
