"""Run the user's own nanoBragg.c in-process, as a reference for nbsim.

nbsim does not ship the reference program.  Point this module at your copy of the
C source (argument ``source`` or the environment variable ``NB_C_SOURCE``) and it
builds it once with cffi into a per-user cache, then runs its ``main`` on demand.

Build
    The source is compiled unchanged except that ``main`` is renamed to
    ``nbref_main`` by a ``#define`` placed before the first line (a ``#line``
    directive keeps compiler messages pointing at your file), and two small helpers
    are appended (``nbref_prepare``, ``nbref_flush``).  Flags: ``-O3 -ffp-contract=off
    -fno-fast-math -fvisibility=hidden``, linked with ``-lm``; no ``-fopenmp``, so the
    build is single-threaded (matching a reference binary run with
    ``OMP_NUM_THREADS=1``) and no fused multiply-adds change its rounding.

Cache
    ``$NBSIM_CACHE_DIR/reference/<sha256 of the source bytes>/``, or
    ``$XDG_CACHE_HOME/nbsim/reference/<sha256>/`` when ``NBSIM_CACHE_DIR`` is unset,
    or ``~/.cache/nbsim/reference/<sha256>/``.  The folder holds the compiled module
    (its file name carries the build-recipe version and the interpreter's extension
    suffix, so several Pythons can share it) and ``build.log``.  Builds are guarded by
    a file lock, so concurrent callers build once.  Delete the folder to force a
    rebuild.

Run
    Every :func:`run_reference` call forks a fresh child process that changes into
    ``cwd``, points file descriptors 1 and 2 at one capture file, and calls the
    renamed ``main``.  The reference's ``exit()`` calls therefore end only the
    child, its static state (random-number generators and the like) starts fresh
    each time, and everything it prints on stdout and stderr is captured.  stdout is
    made fully buffered and stderr unbuffered (whatever, e.g., ``PYTHONUNBUFFERED``
    did to the C streams), as for a standalone program writing to a file, so the
    interleaving matches a binary run with both streams sent to one file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

__all__ = [
    "ReferenceRun",
    "ReferenceBuildError",
    "resolve_source",
    "cache_root",
    "source_digest",
    "module_path",
    "build_reference",
    "run_reference",
]

# Bump when the build recipe below changes, so cached modules are rebuilt.
RECIPE_VERSION = 2
COMPILE_ARGS = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fvisibility=hidden"]
ENTRY_NAME = "nbref_main"

_PRELUDE = "#define main " + ENTRY_NAME + "\n#line 1 \"{name}\"\n"
_POSTLUDE = """
#undef main
#include <stdio.h>
void nbref_flush(void) { fflush(stdout); fflush(stderr); }
static char nbref_stdout_buffer[BUFSIZ];
void nbref_prepare(void)
{
    setvbuf(stdout, nbref_stdout_buffer, _IOFBF, sizeof nbref_stdout_buffer);
    setvbuf(stderr, NULL, _IONBF, 0);
}
"""
_CDEF = ("int " + ENTRY_NAME + "(int argc, char **argv);\n"
         "void nbref_flush(void);\nvoid nbref_prepare(void);\n")


class ReferenceBuildError(RuntimeError):
    """The reference could not be found, built or loaded; the message says why."""


@dataclasses.dataclass(frozen=True)
class ReferenceRun:
    """Outcome of one reference run.

    ``exit_code``: the child's exit status (``main``'s return value or the argument
    of ``exit()``); minus the signal number if a signal killed it.
    ``stdout``: everything printed to stdout and stderr, interleaved as written.
    ``files``: sorted paths, relative to ``cwd``, of files that appeared or changed
    (size or modification time) during the run.
    ``wall_seconds``: elapsed time of the child.
    """

    exit_code: int
    stdout: str
    files: list
    wall_seconds: float = 0.0


# ---------------------------------------------------------------------------
# locating and building
# ---------------------------------------------------------------------------

def resolve_source(source=None) -> Path:
    """The reference source to use: ``source`` if given, else ``$NB_C_SOURCE``."""
    if source is None:
        source = os.environ.get("NB_C_SOURCE") or None
    if source is None:
        raise ReferenceBuildError(
            "no reference source given: pass the path of your nanoBragg.c or set NB_C_SOURCE")
    path = Path(source).expanduser()
    if not path.is_file():
        raise ReferenceBuildError(f"reference source not found: {path}")
    return path.resolve()


def cache_root() -> Path:
    """Folder that holds one sub-folder per reference source digest."""
    base = os.environ.get("NBSIM_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "reference"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "nbsim" / "reference"


def source_digest(data: bytes) -> str:
    """SHA-256 hex digest of the source bytes; names the cache folder."""
    return hashlib.sha256(data).hexdigest()


def _module_name(digest: str) -> str:
    return f"_nbref_{digest[:16]}_r{RECIPE_VERSION}"


def module_path(source=None) -> Path:
    """Where the compiled module for ``source`` lives (whether or not it is built)."""
    path = resolve_source(source)
    digest = source_digest(path.read_bytes())
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return cache_root() / digest / (_module_name(digest) + suffix)


def _require_cffi():
    try:
        import cffi  # noqa: F401
    except ImportError as exc:
        raise ReferenceBuildError(
            "building the reference needs the 'cffi' package (pip install cffi)") from exc
    return cffi


def _compiler_command() -> list:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def _check_compiler() -> None:
    cmd = _compiler_command()
    if not cmd or shutil.which(cmd[0]) is None:
        shown = " ".join(cmd) if cmd else "(empty)"
        raise ReferenceBuildError(
            f"no C compiler found (looked for {shown!r}); install gcc or set CC")


class _CaptureFds:
    """Send fds 1 and 2 to a file for the duration (compiler chatter goes there)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        self.fh = open(self.path, "wb")
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.fh.fileno(), 1)
        os.dup2(self.fh.fileno(), 2)
        return self

    def __exit__(self, *exc):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved:
            os.close(fd)
        self.fh.close()
        return False


def _compile(source_path: Path, text: str, digest: str, dest: Path, log_path: Path) -> None:
    """Compile ``text`` into the module file ``dest`` (atomically renamed into place)."""
    cffi = _require_cffi()
    _check_compiler()
    name = _module_name(digest)
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    ffi.set_source(
        name,
        _PRELUDE.format(name=str(source_path).replace("\\", "/").replace('"', "")) + text + _POSTLUDE,
        extra_compile_args=list(COMPILE_ARGS),
        libraries=["m"],
    )
    with tempfile.TemporaryDirectory(prefix="build-", dir=dest.parent) as tmp:
        try:
            with _CaptureFds(log_path):
                built = ffi.compile(tmpdir=tmp, verbose=True)
        except Exception as exc:  # cffi wraps compiler failures in various types
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            tail = "\n".join(log.splitlines()[-40:])
            raise ReferenceBuildError(
                f"building the reference from {source_path} failed: {exc}\n"
                f"(full log: {log_path})\n{tail}") from exc
        os.replace(built, dest)


def build_reference(source=None) -> Path:
    """Build (or find in the cache) the module for ``source``; return its path."""
    path = resolve_source(source)
    data = path.read_bytes()
    digest = source_digest(data)
    folder = cache_root() / digest
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    dest = folder / (_module_name(digest) + suffix)
    if dest.is_file():
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    import fcntl
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not dest.is_file():
                text = data.decode("utf-8", errors="surrogateescape")
                if not re.search(r"\bmain\s*\(", text):
                    raise ReferenceBuildError(f"{path} has no main function")
                _compile(path, text, digest, dest, folder / "build.log")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return dest


_LOADED = {}


def _load(source=None):
    """Import the built module for ``source`` (once per process); return it."""
    dest = build_reference(source)
    key = str(dest)
    if key not in _LOADED:
        name = dest.name.split(".", 1)[0]
        spec = importlib.util.spec_from_file_location(name, dest)
        if spec is None or spec.loader is None:
            raise ReferenceBuildError(f"cannot load the reference module {dest}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            raise ReferenceBuildError(f"cannot load the reference module {dest}: {exc}") from exc
        _LOADED[key] = module
    return _LOADED[key]


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def _snapshot(folder: str) -> dict:
    state = {}
    for root, _dirs, files in os.walk(folder):
        for fname in files:
            full = os.path.join(root, fname)
            try:
                st = os.stat(full)
            except OSError:
                continue
            state[os.path.relpath(full, folder)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return state


def _child(module, args, cwd, capture_fd) -> None:
    """Body of the forked child; never returns."""
    code = 127
    try:
        # behave like a plain C program: default signal dispositions, no Python
        # fault-handler tracebacks for crashes inside the reference
        import faulthandler
        faulthandler.disable()
        for sig in (signal.SIGINT, signal.SIGPIPE, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(cwd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(capture_fd, 1)
        os.dup2(capture_fd, 2)
        ffi, lib = module.ffi, module.lib
        keep = [ffi.new("char[]", os.fsencode(a)) for a in ["nanoBragg", *args]]
        argv = ffi.new("char *[]", keep + [ffi.NULL])
        lib.nbref_prepare()
        code = lib.nbref_main(len(keep), argv)
        lib.nbref_flush()
    except BaseException as exc:  # report and fail, never fall back into the parent's code
        try:
            os.write(2, f"nbsim.reference: child failed: {exc!r}\n".encode())
        except OSError:
            pass
        code = 127
    finally:
        os._exit(code & 0xFF)


def run_reference(args, cwd, source=None, *, timeout=None) -> ReferenceRun:
    """Run the reference's ``main`` with ``args`` (without the program name) in ``cwd``.

    ``source`` is the path of nanoBragg.c (default ``$NB_C_SOURCE``).  The first call
    for a given source builds it (see the module notes).  ``timeout`` (seconds) kills
    the child and raises :class:`TimeoutError` when exceeded.
    Raises :class:`ReferenceBuildError` if the source is missing or does not build.
    """
    module = _load(source)
    args = [str(a) for a in args]
    cwd = os.fspath(cwd)
    if not os.path.isdir(cwd):
        raise FileNotFoundError(f"working folder does not exist: {cwd}")
    before = _snapshot(cwd)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    with tempfile.TemporaryFile() as capture:
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child
            _child(module, args, cwd, capture.fileno())
        status = _wait(pid, timeout)
        wall = time.perf_counter() - start
        capture.seek(0)
        text = capture.read().decode("utf-8", errors="replace")
    if os.WIFSIGNALED(status):
        code = -os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    after = _snapshot(cwd)
    changed = sorted(p for p, st in after.items() if before.get(p) != st)
    return ReferenceRun(exit_code=code, stdout=text, files=changed, wall_seconds=wall)


def _wait(pid: int, timeout) -> int:
    """Reap our child ``pid``; kill it first on timeout or interruption."""
    reaped = False
    try:
        if timeout is None:
            status = os.waitpid(pid, 0)[1]
            reaped = True
            return status
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                reaped = True
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"reference run exceeded {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    finally:
        if not reaped:  # timeout or interruption (e.g. Ctrl-C): do not leave it running
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
