"""One place for compilation options, and a stand-in when Numba is missing.

Parity paths must never use fastmath (it allows reassociation and FMA contraction,
which change the bits). When Numba cannot be imported, ``njit`` returns the plain
Python function and ``prange`` is ``range``, so helpers written for Numba still run
(slowly) and the C engine can take over the heavy kernels.
"""
import os
import sys


def _import_numba():
    """Import Numba; under the command line, without letting it load SciPy.

    When its array-math module loads Numba probes for SciPy's BLAS (for np.dot and friends), which imports
    scipy.linalg: about 0.18 s, a third of a small job's wall time. nbsim's kernels
    do no linear algebra. The command-line entry point sets NBSIM_HIDE_SCIPY, and
    then SciPy is hidden for the length of this import only; a library user's
    process (no variable) keeps Numba's linear algebra.
    """
    hide = bool(os.environ.get("NBSIM_HIDE_SCIPY")) and "scipy" not in sys.modules
    if hide:
        sys.modules["scipy"] = None     # makes "import scipy..." raise ImportError
    try:
        import numba
        if hide:
            # the probe runs when this module loads, which is at the first dispatch
            import numba.np.arraymath  # noqa: F401
    finally:
        if hide and "scipy" in sys.modules and sys.modules["scipy"] is None:
            del sys.modules["scipy"]
    return numba


try:  # pragma: no cover - exercised by the fallback tests in a subprocess
    if os.environ.get("NBSIM_DISABLE_NUMBA"):
        raise ImportError("disabled by NBSIM_DISABLE_NUMBA")
    _numba = _import_numba()
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
