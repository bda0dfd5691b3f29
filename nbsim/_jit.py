"""One place for compilation options, and a stand-in when Numba is missing.

Parity paths must never use fastmath (it allows reassociation and FMA contraction,
which change the bits). When Numba cannot be imported, ``njit`` returns the plain
Python function and ``prange`` is ``range``, so helpers written for Numba still run
(slowly) and the C engine can take over the heavy kernels.
"""
import os
import sys
import tempfile


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


def _writable(folder):
    """Can files be created in ``folder`` (made if missing)? As Numba itself tests."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def user_cache_dir():
    """nbsim's own cache folder: $NBSIM_CACHE_DIR, else $XDG_CACHE_HOME/nbsim or
    ~/.cache/nbsim (the same folder nb-compare keeps its reference builds in)."""
    if os.environ.get("NBSIM_CACHE_DIR"):
        return os.environ["NBSIM_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nbsim")


_cache_choice = {}


def kernel_cache_dir(source_file):
    """Where the compiled form of functions in ``source_file`` is kept.

    None means Numba's own place: $NUMBA_CACHE_DIR if the user set it, else
    ``__pycache__`` beside the source, which is writable in a source checkout. An
    installed package's folder often is not; then nbsim's user cache folder (see
    :func:`user_cache_dir`) is used, else a per-user temporary folder. "" means
    nowhere is writable: the kernels are compiled in every process.
    """
    folder = os.path.dirname(os.path.abspath(source_file))
    if folder in _cache_choice:
        return _cache_choice[folder]
    choice = None
    if HAVE_NUMBA and not _numba.config.CACHE_DIR:
        if os.environ.get("NBSIM_CACHE_DIR"):
            choice = os.path.join(user_cache_dir(), "numba")
        elif not _writable(os.path.join(folder, "__pycache__")):
            uid = os.getuid() if hasattr(os, "getuid") else "user"
            for candidate in (os.path.join(user_cache_dir(), "numba"),
                              os.path.join(tempfile.gettempdir(), "nbsim-numba-%s" % uid)):
                if _writable(candidate):
                    choice = candidate
                    break
            else:
                choice = ""
        if choice and not _writable(choice):
            choice = ""
    _cache_choice[folder] = choice
    return choice


def _cached_njit(args, opts, func):
    """``numba.njit`` with the disk cache in :func:`kernel_cache_dir`."""
    where = kernel_cache_dir(func.__code__.co_filename) if opts.get("cache") else None
    if where == "":
        opts = dict(opts, cache=False)
    if not where:
        return _numba.njit(*args, **opts)(func)
    # Numba picks the folder when the function is decorated; point it at ours for
    # that moment only, so the user's other Numba code keeps its own settings
    previous = _numba.config.CACHE_DIR
    _numba.config.CACHE_DIR = where
    try:
        return _numba.njit(*args, **opts)(func)
    finally:
        _numba.config.CACHE_DIR = previous


def njit(*args, **kwargs):
    """``numba.njit`` with nbsim's defaults, or the identity without Numba."""
    if args and callable(args[0]):
        return njit(**kwargs)(args[0])
    opts = dict(PARITY_OPTIONS)
    opts.update(kwargs)
    if HAVE_NUMBA:
        return lambda func: _cached_njit(args, opts, func)
    return lambda f: f


# ---- the first compile says so ------------------------------------------------------------

# seconds a compile (or cache load) may take before nbsim says what is going on;
# loading cached kernels takes a fraction of a second, compiling them tens of seconds
NOTICE_AFTER = float(os.environ.get("NBSIM_COMPILE_NOTICE_AFTER", "1.5"))
FIRST_COMPILE_GUESS = 20.0      # seconds, on this project's 2-core machine (README)
_TIMING_FILE = "numba-compile-seconds"


def _last_compile_seconds():
    try:
        with open(os.path.join(user_cache_dir(), _TIMING_FILE)) as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return FIRST_COMPILE_GUESS


def _remember_compile_seconds(seconds):
    folder = user_cache_dir()
    if _writable(folder):
        try:
            with open(os.path.join(folder, _TIMING_FILE), "w") as fh:
                fh.write("%.1f\n" % seconds)
        except OSError:
            pass


def compile_with_notice(dispatcher, args, stream=None):
    """Compile ``dispatcher`` for ``args`` (or load it from the disk cache) before it
    runs. If that is still going after :data:`NOTICE_AFTER` seconds it is a real
    compile, so say so once on stderr, with an estimate of how long it takes.

    Any trouble here is left for the real call to report: this only announces.
    """
    if not HAVE_NUMBA or not hasattr(dispatcher, "compile"):
        return
    try:
        sig = tuple(_numba.typeof(a) for a in args)
    except Exception:  # noqa: BLE001 - an argument Numba cannot type: the call will say
        return
    if sig in dispatcher.overloads:
        return
    import threading
    import time
    out = stream or sys.stderr
    said = []

    def say():
        folder = kernel_cache_dir(dispatcher.py_func.__code__.co_filename)
        where = ("; later runs load them from %s" % (folder or "__pycache__ beside nbsim")
                 if folder != "" else "; nowhere to cache them, so every run compiles")
        print("nbsim: compiling kernels, once, ~%.0f s%s" % (_last_compile_seconds(), where),
              file=out, flush=True)
        said.append(True)

    timer = threading.Timer(NOTICE_AFTER, say)
    timer.daemon = True
    start = time.perf_counter()
    timer.start()
    try:
        dispatcher.compile(sig)
    except Exception:  # noqa: BLE001 - see the docstring
        return
    finally:
        timer.cancel()
    if said:
        seconds = time.perf_counter() - start
        _remember_compile_seconds(seconds)
        print("nbsim: kernels compiled in %.0f s" % seconds, file=out, flush=True)


if HAVE_NUMBA:
    prange = _numba.prange
else:
    prange = range
