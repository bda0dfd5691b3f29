"""The reference program's random numbers, reproduced call for call.

nanoBragg.c draws every random number from one Numerical-Recipes style generator:
Park and Miller's "minimal standard" Lehmer generator (multiplier 16807, modulus
2**31 - 1, evaluated with Schrage's factorisation) whose outputs pass through a
32-entry Bays-Durham shuffle table.  The uniform deviate is ``iy / (2**31 - 1)``
rounded to a C ``float`` and capped just below one.

Three things about the reference matter for parity and are kept here on purpose:

* The shuffle table (``iy`` and ``iv[32]``) is *one* static object shared by every
  caller in a run: the random misset, the mosaic domain matrices and the noise
  image.  Each caller keeps its own seed variable (``idum``), but only the table is
  shared.
* The table is rebuilt only when the seed is ``<= 0`` or the table was never
  filled.  A rebuild leaves the seed positive, so later calls just continue.  A
  user seed that is already positive (the reference stores ``-seed`` negated, so
  ``-seed -99`` gives ``+99``) therefore does *not* reset anything: it continues
  with whatever table the previous user left behind.  And if the very first user
  brings a positive seed, that seed is replaced by 1.
* C ``long`` is 64 bits wide on the reference platform; the seeds here are
  ``int64``.

State is held in small numpy arrays so that Numba-compiled functions can update
it in place:

* the seed is a one-element ``int64`` array (see :func:`new_seed`), mutated by
  every draw exactly like the C ``long *idum``;
* :class:`RandomState` bundles the shared shuffle table and the static variables
  of the Poisson and Gaussian deviates (see :mod:`nbsim.noise`).

Create one :class:`RandomState` per simulated run (:func:`new_state`) and pass
it, in the reference's order, to :func:`random_misset`, :func:`mosaic_umats` and
:func:`nbsim.noise.noise_image`.
"""
import ctypes
import math
from collections import namedtuple

import numpy as np

from .libm import c_cos, c_sin

# Lehmer / Schrage constants of the minimal-standard generator.
_MULT = 16807
_MOD = 2147483647
_SCHRAGE_Q = 127773            # _MOD // _MULT
_SCHRAGE_R = 2836              # _MOD % _MULT
_TABLE = 32
_WARMUP = 8                    # draws discarded before the table is filled
_BUCKET = 1 + (_MOD - 1) // _TABLE
_INV_MOD = 1.0 / _MOD          # a double, as in the reference
_UNIFORM_CAP = 1.0 - 1.2e-7    # a double; compared against, returned as float

# Slots of RandomState.poisson: the statics of the Poisson deviate.
POIS_SQ = 0      # sqrt(2*mean), float
POIS_LOGMEAN = 1  # log(mean), float
POIS_G = 2       # exp(-mean), or mean*log(mean)-lgamma(mean+1), float
POIS_LASTMEAN = 3  # mean of the previous call (-1 at start), float

RandomState = namedtuple(
    "RandomState", ["iy", "iv", "poisson", "gauss_iset", "gauss_gset"])
RandomState.__doc__ = """Static state of the reference generator and deviates.

Fields (all numpy arrays, mutated in place):

``iy``  int64[1]   last table output (0 means "table never filled")
``iv``  int64[32]  the shuffle table
``poisson`` float32[4]  Poisson statics, indexed by ``POIS_*``
``gauss_iset`` int64[1]  1 when a spare Gaussian deviate is held
``gauss_gset`` float32[1]  that spare deviate
"""


def new_state():
    """A fresh :class:`RandomState`, as at the start of a reference run."""
    poisson = np.zeros(4, dtype=np.float32)
    poisson[POIS_LASTMEAN] = -1.0
    return RandomState(
        iy=np.zeros(1, dtype=np.int64),
        iv=np.zeros(_TABLE, dtype=np.int64),
        poisson=poisson,
        gauss_iset=np.zeros(1, dtype=np.int64),
        gauss_gset=np.zeros(1, dtype=np.float32),
    )


def new_seed(value):
    """A mutable seed: ``np.array([value], dtype=int64)``.

    Pass the value the reference keeps internally, i.e. already negated for
    ``-seed N``, ``-mosaic_seed N`` and ``-misset_seed N`` (they store ``-N``).
    """
    return np.array([int(value)], dtype=np.int64)


def ran1(idum, state):
    """One uniform deviate in (0, 1) as ``np.float32``; updates ``idum`` and ``state``.

    ``idum`` is the int64[1] seed array. A value ``<= 0`` (or an empty table)
    rebuilds the shared shuffle table from ``-idum`` (0 becomes 1).

    Plain Python so that setup (mosaic domains, random misset) needs no JIT;
    :mod:`nbsim.noise` compiles this same function with Numba for its pixel loop.
    Each Lehmer step is x -> 16807 x mod (2**31 - 1) by Schrage's factorisation,
    written out in place because a compiled caller cannot call a plain helper.
    """
    iy = state.iy
    iv = state.iv
    if idum[0] <= 0 or iy[0] == 0:
        if -idum[0] < 1:
            idum[0] = 1
        else:
            idum[0] = -idum[0]
        for j in range(_TABLE + _WARMUP - 1, -1, -1):
            x = idum[0]
            hi = x // _SCHRAGE_Q
            x = _MULT * (x - hi * _SCHRAGE_Q) - _SCHRAGE_R * hi
            if x < 0:
                x += _MOD
            idum[0] = x
            if j < _TABLE:
                iv[j] = idum[0]
        iy[0] = iv[0]
    x = idum[0]
    hi = x // _SCHRAGE_Q
    x = _MULT * (x - hi * _SCHRAGE_Q) - _SCHRAGE_R * hi
    if x < 0:
        x += _MOD
    idum[0] = x
    slot = iy[0] // _BUCKET
    iy[0] = iv[slot]
    iv[slot] = idum[0]
    value = np.float32(np.float64(iy[0]) * _INV_MOD)
    if np.float64(value) > _UNIFORM_CAP:
        return np.float32(_UNIFORM_CAP)
    return value


# ---------------------------------------------------------------------------
# single-precision pow, as the C library computes it


def _libm_names():
    # the usual name first: find_library runs ldconfig in a subprocess (~10 ms)
    yield "libm.so.6"
    from ctypes.util import find_library
    name = find_library("m")
    if name:
        yield name


def _load_libm_powf():
    for name in _libm_names():
        try:
            fn = ctypes.CDLL(name).powf
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float, ctypes.c_float]
        return fn
    return None


_LIBM_POWF = _load_libm_powf()


def powf(x, y):
    """``powf`` on float32 arguments, returning ``np.float32``.

    Uses the C library's own ``powf`` (through ctypes) when it can be found, so the
    result has the same bits as the reference's call (glibc's ``powf`` is not
    correctly rounded, and numpy's float32 power disagrees with it in the last bit
    for about one argument in six).  Without a C library, the double ``pow`` rounded
    to float is the closest stand-in (it differed from glibc in 0.07% of a
    million random cube roots).
    """
    x = np.float32(x)
    y = np.float32(y)
    if _LIBM_POWF is not None:
        return np.float32(_LIBM_POWF(x, y))
    try:
        return np.float32(math.pow(float(x), float(y)))
    except (OverflowError, ValueError):
        with np.errstate(all="ignore"):
            return np.float32(np.power(x, y, dtype=np.float32))


# ---------------------------------------------------------------------------
# random rotations


def mosaic_rotation_umat(mosaicity, idum, state):
    """A random rotation matrix (row-major, 9 float64) inside a spherical cap.

    Three deviates pick a uniformly random axis and an angle
    ``mosaicity * (1 - r**2) ** (1/3)`` (r uniform on [-1, 1]); the matrix is the
    axis-angle rotation.  ``mosaicity`` is an angle in radians and is rounded to a
    C ``float`` first, and the cube root is taken with single-precision ``powf``,
    both as in the reference, so the bits match.
    """
    r1 = 2.0 * np.float64(ran1(idum, state)) - 1.0
    r2 = 2.0 * np.float64(ran1(idum, state)) - 1.0
    r3 = 2.0 * np.float64(ran1(idum, state)) - 1.0

    ring = math.sqrt(1.0 - r2 * r2)
    shrink = powf(np.float32(1.0 - r3 * r3), np.float32(1.0 / 3.0))
    angle = float(np.float32(np.float32(mosaicity) * shrink))

    ax = ring * math.sin(math.pi * r1)
    ay = ring * math.cos(math.pi * r1)
    az = r2

    # a NaN or infinite -mosaic makes a NaN matrix, as in the reference (math.cos raises)
    c = c_cos(angle)
    s = c_sin(angle)
    omc = 1.0 - c
    omc_x = omc * ax
    xy = omc_x * ay
    xz = omc_x * az
    yz = omc * ay * az
    sx = s * ax
    sy = s * ay
    sz = s * az
    return np.array([
        c + omc * (ax * ax), xy - sz, xz + sy,
        xy + sz, c + omc * (ay * ay), yz - sx,
        xz - sy, yz + sx, c + omc * (az * az),
    ], dtype=np.float64)


def _norm3(v):
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def _scaled_down(v, m):
    return [v[0] / m, v[1] / m, v[2] / m] if m > 0 else list(v)


def _unit_cross(u, v):
    w = [u[1] * v[2] - u[2] * v[1],
         u[2] * v[0] - u[0] * v[2],
         u[0] * v[1] - u[1] * v[0]]
    return _scaled_down(w, _norm3(w))


def umat2misset(umat):
    """Misset angles ``(rotx, roty, rotz)`` in radians of a rotation matrix.

    ``umat`` is row-major (9 values).  Rows are first normalised; a zero row is
    rebuilt from the cross product of the other two (twice, as the reference
    does), then the XYZ angles are read off the last row and first column.  The
    arithmetic follows the reference step for step, so the angles agree bit for
    bit.
    """
    u = [float(v) for v in np.asarray(umat, dtype=np.float64).ravel()[:9]]
    rows = [u[0:3], u[3:6], u[6:9]]
    mx, my, mz = (_norm3(r) for r in rows)
    rows = [_scaled_down(r, m) for r, m in zip(rows, (mx, my, mz))]
    ex, ey, ez = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    # all-but-one rows empty: fill the empty ones with the unit axes
    if mx >= 0 and my <= 0 and mz <= 0:
        rows[1], rows[2] = list(ey), list(ez)
    if mx <= 0 and my >= 0 and mz <= 0:
        rows[0], rows[2] = list(ex), list(ez)
    if mx <= 0 and my <= 0 and mz >= 0:
        rows[0], rows[1] = list(ex), list(ey)
    for _ in range(2):
        x_cross_y = _unit_cross(rows[0], rows[1])
        y_cross_z = _unit_cross(rows[1], rows[2])
        z_cross_x = _unit_cross(rows[2], rows[0])
        if mx <= 0:
            rows[0] = y_cross_z
        if my <= 0:
            rows[1] = z_cross_x
        if mz <= 0:
            rows[2] = x_cross_y
    rows = [_scaled_down(r, _norm3(r)) for r in rows]
    (uxx, uxy, _), (uyx, uyy, _), (uzx, uzy, uzz) = rows
    if uzx * uzx < 1.0:
        rotx = math.atan2(uzy, uzz)
        roty = math.atan2(-uzx, math.sqrt(uzy * uzy + uzz * uzz))
        rotz = math.atan2(uyx, uxx)
    else:
        rotx = math.atan2(1, 1) * 4
        roty = math.atan2(1, 1) * 2
        rotz = math.atan2(uxy, -uyy)
    return rotx, roty, rotz


def mosaic_umats(mosaic_spread_rad, domains, idum, state):
    """The ``(domains, 9)`` float64 rotation matrices of the mosaic domains.

    One :func:`mosaic_rotation_umat` per domain with cap ``mosaic_spread_rad``
    (the reference's double ``degrees / RTD`` with ``RTD = 180.0 * M_1_PI``, which
    equals ``180 / pi`` in double; it is rounded to float inside).
    Domain 0 is then overwritten with the identity, but its three deviates are
    still drawn, so even a single unrotated domain advances the generator.
    """
    domains = int(domains)
    out = np.zeros((max(domains, 0), 9), dtype=np.float64)
    for d in range(domains):
        out[d] = mosaic_rotation_umat(mosaic_spread_rad, idum, state)
        if d == 0:
            out[0] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    return out


def random_misset(idum, state):
    """The reference's ``-misset random``: misset angles ``(rotx, roty, rotz)`` in radians.

    Draws one :func:`mosaic_rotation_umat` and converts it with
    :func:`umat2misset`.  Angle-unit quirk kept for parity: the reference asks for
    a cap of ``90.0`` meaning "90 degrees, the whole sphere", but the cap is used
    as an angle in *radians*, so the rotation angle is ``90 * (1 - r**2)**(1/3)``
    radians.  The result is still a random orientation, just not the uniform one
    the comment in the reference intends.

    Note also that in the reference the misset seed defaults to the time-based
    initial value of the noise seed, not to ``-seed``; pass ``-misset_seed`` for a
    reproducible orientation.
    """
    umat = mosaic_rotation_umat(90.0, idum, state)
    return umat2misset(umat)


__all__ = [
    "RandomState", "new_state", "new_seed", "ran1", "powf",
    "mosaic_rotation_umat", "umat2misset", "mosaic_umats", "random_misset",
    "POIS_SQ", "POIS_LOGMEAN", "POIS_G", "POIS_LASTMEAN",
]
