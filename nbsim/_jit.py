"""One place for compilation options, and a stand-in when Numba is missing.

Parity paths must never use fastmath (it allows reassociation and FMA contraction,
which change the bits). When Numba cannot be imported, ``njit`` returns the plain
Python function and ``prange`` is ``range``, so helpers written for Numba still run
(slowly) and the C engine can take over the heavy kernels.
"""
import os

try:  # pragma: no cover - exercised by the fallback tests in a subprocess
    if os.environ.get("NBSIM_DISABLE_NUMBA"):
        raise ImportError("disabled by NBSIM_DISABLE_NUMBA")
    import numba as _numba
    HAVE_NUMBA = True
    NUMBA_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover
    _numba = None
    HAVE_NUMBA = False
    NUMBA_IMPORT_ERROR = str(exc)

# Options shared by every parity kernel: no fastmath, no error model surprises.
PARITY_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy")


def njit(*args, **kwargs):
    """``numba.njit`` with nbsim's defaults, or the identity without Numba."""
    opts = dict(PARITY_OPTIONS)
    opts.update(kwargs)
    if HAVE_NUMBA:
        if args and callable(args[0]):
            return _numba.njit(**opts)(args[0])
        return _numba.njit(*args, **opts)
    if args and callable(args[0]):
        return args[0]
    return lambda f: f


if HAVE_NUMBA:
    prange = _numba.prange
else:
    prange = range
