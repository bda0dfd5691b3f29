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
    or ``~/.cache/nbsim/reference/<sha256>/``.  The folder holds the compiled module,
    whose name also carries a hash of the build key (compiler and its version, flags,
    build recipe, cffi version and the interpreter's extension suffix, so a new compiler
    or several Pythons get modules of their own), a manifest ``<module>.json`` that
    records that key and the module's SHA-256, and ``build.log``.

    Nothing is loaded from the cache unless it verifies: the cache folders must be
    yours and writable by you alone (the root is created with mode 0700; a root that
    is not yours or is writable by others is refused with an error), the module and
    its manifest must be plain files (not links) that are yours and not writable by
    others, the manifest must record this very build key, and the module's bytes must
    hash to the recorded digest.  An entry that does not verify (corrupt, truncated,
    planted, built by another compiler) is rebuilt; a module and its manifest are
    written under temporary names and renamed into place, so a crash never leaves a
    half-written entry.  Builds and loads are guarded by a file lock, so concurrent
    callers build once.  Delete the folder to force a rebuild.

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

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
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
RECIPE_VERSION = 3
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


def _module_name(digest: str, key: str) -> str:
    return f"_nbref_{digest[:16]}_{key[:12]}"


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


_COMPILER_IDS = {}


def _compiler_identity() -> dict:
    """The compiler as it would build now: its command, where it resolves to, and the
    first line of ``--version`` (a new gcc on the same path gives a new identity)."""
    cmd = _compiler_command()
    key = tuple(cmd)
    if key not in _COMPILER_IDS:
        where = shutil.which(cmd[0]) if cmd else None
        version = "unavailable"
        if where is not None:
            try:
                done = subprocess.run([where, *cmd[1:], "--version"], stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=30)
                lines = done.stdout.decode("utf-8", "replace").splitlines()
                version = lines[0].strip() if done.returncode == 0 and lines else "unavailable"
            except (OSError, subprocess.SubprocessError):
                pass
        _COMPILER_IDS[key] = {"command": cmd, "path": where and os.path.realpath(where),
                              "version": version}
    return _COMPILER_IDS[key]


def _build_recipe(digest: str) -> dict:
    """Everything that decides the bytes of the compiled module; hashed into its name
    and recorded in its manifest."""
    cffi = _require_cffi()
    return {
        "recipe": RECIPE_VERSION,
        "source_sha256": digest,
        "compiler": _compiler_identity(),
        "flags": list(COMPILE_ARGS),
        "libraries": ["m"],
        # distutils adds these to every compile and link
        "environment": {k: os.environ.get(k, "") for k in ("CFLAGS", "CPPFLAGS", "LDFLAGS")},
        "python_cflags": sysconfig.get_config_var("CFLAGS") or "",
        "ext_suffix": _ext_suffix(),
        "cffi": cffi.__version__,
    }


def _ext_suffix() -> str:
    return sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def _recipe_key(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()


class _Entry:
    """Paths of one cache entry: the module, its manifest, log and lock."""

    def __init__(self, digest: str, recipe: dict):
        self.digest = digest
        self.recipe = recipe
        self.key = _recipe_key(recipe)
        self.folder = cache_root() / digest
        self.name = _module_name(digest, self.key)
        self.module = self.folder / (self.name + recipe["ext_suffix"])
        self.manifest = self.folder / (self.name + ".json")
        self.log = self.folder / "build.log"
        self.lock = self.folder / ".lock"


def module_path(source=None) -> Path:
    """Where the compiled module for ``source`` lives (whether or not it is built)."""
    path = resolve_source(source)
    digest = source_digest(path.read_bytes())
    return _Entry(digest, _build_recipe(digest)).module


# --- trust checks -----------------------------------------------------------------

def _euid() -> int:
    return os.geteuid()


def _not_private(st) -> str:
    """Why a file or folder with stat ``st`` cannot be trusted ('' if it can)."""
    if st.st_uid != _euid():
        return "it belongs to another user (uid %d)" % st.st_uid
    if st.st_mode & 0o022:
        return "it is writable by %s" % ("group and others" if st.st_mode & 0o022 == 0o022
                                         else "group" if st.st_mode & 0o020 else "others")
    return ""


def _private_folder(path: Path, what: str) -> None:
    """Create ``path`` (mode 0700) if missing; refuse it unless it is ours alone."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError as exc:
        raise ReferenceBuildError(f"cannot use the {what} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ReferenceBuildError(f"cannot use the {what} {path}: not a folder")
    why = _not_private(st)
    if why:
        raise ReferenceBuildError(
            f"refusing the {what} {path}: {why}; a module loaded from it could run anyone's "
            f"code (make it yours with mode 0700, or set NBSIM_CACHE_DIR to a private folder)")


def _entry_folder(entry: _Entry) -> None:
    """The entry's folder, ours alone; an untrusted one is moved aside and replaced."""
    _private_folder(entry.folder.parent, "reference cache folder")
    try:
        st = os.lstat(entry.folder)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ReferenceBuildError(f"cannot use the cache entry {entry.folder}: {exc.strerror}") from None
    if st is not None and (not stat.S_ISDIR(st.st_mode) or _not_private(st)):
        aside = entry.folder.with_name(f".{entry.folder.name}.untrusted-{secrets.token_hex(4)}")
        try:
            os.replace(entry.folder, aside)
        except OSError as exc:
            raise ReferenceBuildError(
                f"cache entry {entry.folder} is not trusted and cannot be moved aside: "
                f"{exc.strerror}") from None
        shutil.rmtree(aside, ignore_errors=True)
        with contextlib.suppress(OSError):
            aside.unlink()
    _private_folder(entry.folder, "cache entry")


def _read_private_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a plain file of ours not writable by others, at
    most ``limit`` bytes; raises ``_Untrusted`` saying why not."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise _Untrusted(f"{path.name} is missing") from None
    except OSError as exc:
        raise _Untrusted(f"{path.name}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Untrusted(f"{path.name} is not a plain file")
        why = _not_private(st)
        if why:
            raise _Untrusted(f"{path.name}: {why}")
        if st.st_size > limit:
            raise _Untrusted(f"{path.name} is larger than {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise _Untrusted(f"{path.name}: {exc.strerror}") from None
    finally:
        os.close(fd)


class _Untrusted(Exception):
    """A cache entry failed verification; the message says how."""


MAX_MANIFEST_BYTES = 1 << 16
MAX_MODULE_BYTES = 1 << 28


def _verify(entry: _Entry) -> None:
    """Raise ``_Untrusted`` unless the entry's module is the one its manifest describes,
    built with this very recipe, and both files are ours alone."""
    raw = _read_private_file(entry.manifest, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Untrusted(f"{entry.manifest.name} is not a valid manifest") from None
    if not isinstance(manifest, dict) or manifest.get("recipe") != entry.recipe:
        raise _Untrusted(f"{entry.manifest.name} records another build recipe")
    data = _read_private_file(entry.module, MAX_MODULE_BYTES)
    if hashlib.sha256(data).hexdigest() != manifest.get("module_sha256"):
        raise _Untrusted(f"{entry.module.name} does not match the digest in its manifest")


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` under a temporary name, with ``mode`` whatever the
    umask, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remove(path: Path) -> None:
    """Remove whatever sits at ``path`` (file, link or folder), if anything."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _replace(src, dest: Path) -> None:
    """Rename ``src`` over ``dest``, even when a folder sits at ``dest``."""
    if os.path.isdir(dest) and not os.path.islink(dest):
        _remove(dest)
    os.replace(src, dest)


@contextlib.contextmanager
def _locked(entry: _Entry, exclusive: bool):
    import fcntl
    try:
        fd = os.open(entry.lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise ReferenceBuildError(f"cannot lock the cache entry {entry.folder}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)   # closing releases the lock


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


# --- building ---------------------------------------------------------------------

def _compile(source_path: Path, text: str, entry: _Entry) -> None:
    """Compile ``text`` into the entry's module, then write its manifest; each file is
    renamed into place complete."""
    cffi = _require_cffi()
    _check_compiler()
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    ffi.set_source(
        entry.name,
        _PRELUDE.format(name=str(source_path).replace("\\", "/").replace('"', "")) + text + _POSTLUDE,
        extra_compile_args=list(COMPILE_ARGS),
        libraries=["m"],
    )
    # the old manifest goes first: a module without a matching manifest is never loaded
    _remove(entry.manifest)
    with tempfile.TemporaryDirectory(prefix="build-", dir=entry.folder) as tmp:
        try:
            with _CaptureFds(entry.log):
                built = ffi.compile(tmpdir=tmp, verbose=True)
        except Exception as exc:  # cffi wraps compiler failures in various types
            log = entry.log.read_text(errors="replace") if entry.log.exists() else ""
            tail = "\n".join(log.splitlines()[-40:])
            raise ReferenceBuildError(
                f"building the reference from {source_path} failed: {exc}\n"
                f"(full log: {entry.log})\n{tail}") from exc
        os.chmod(built, 0o755)
        with open(built, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        _replace(built, entry.module)
    manifest = {"recipe": entry.recipe, "module_sha256": digest,
                "source_path": str(source_path), "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write_private(entry.manifest, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"),
                   0o644)


def _ensure_built(path: Path, data: bytes, entry: _Entry, exclusive: bool) -> bool:
    """Verify the entry (rebuilding it when it does not verify and ``exclusive`` holds
    the lock); True if it is ready to load."""
    try:
        _verify(entry)
        return True
    except _Untrusted as exc:
        if not exclusive:
            return False
        reason = str(exc)
    text = data.decode("utf-8", errors="surrogateescape")
    if not re.search(r"\bmain\s*\(", text):
        raise ReferenceBuildError(f"{path} has no main function")
    if os.path.lexists(entry.module) or os.path.lexists(entry.manifest):
        print(f"nbsim.reference: cached build {entry.module} did not verify ({reason}); "
              "rebuilding it", file=sys.stderr)
    _compile(path, text, entry)
    try:
        _verify(entry)
    except _Untrusted as exc:
        raise ReferenceBuildError(f"the fresh build {entry.module} does not verify: {exc}") from None
    return True


def _prepare(source):
    path = resolve_source(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceBuildError(f"cannot read the reference source {path}: {exc.strerror}") from None
    digest = source_digest(data)
    entry = _Entry(digest, _build_recipe(digest))
    _entry_folder(entry)
    return path, data, entry


@contextlib.contextmanager
def _os_errors_as_build_errors(what):
    """A disk-full or permission problem in the cache: one clear error, no traceback."""
    try:
        yield
    except OSError as exc:
        raise ReferenceBuildError(f"reference cache: {what}: {exc.strerror or exc}") from None


def build_reference(source=None) -> Path:
    """Build (or find, verified, in the cache) the module for ``source``; return its path."""
    with _os_errors_as_build_errors("cannot build"):
        return _build_reference(source)


def _build_reference(source):
    path, data, entry = _prepare(source)
    with _locked(entry, exclusive=False):
        if _ensure_built(path, data, entry, exclusive=False):
            return entry.module
    with _locked(entry, exclusive=True):
        _ensure_built(path, data, entry, exclusive=True)
    return entry.module


_LOADED = {}


def _load(source=None):
    """Import the built module for ``source`` (once per process); return it.

    The entry is verified and imported under its lock, so no build can swap the file
    between the check and the import."""
    with _os_errors_as_build_errors("cannot load"):
        return _load_verified(source)


def _load_verified(source):
    path, data, entry = _prepare(source)
    key = (str(entry.module), entry.key)
    if key in _LOADED:
        return _LOADED[key]
    for exclusive in (False, True):
        with _locked(entry, exclusive):
            if _ensure_built(path, data, entry, exclusive):
                _LOADED[key] = _import(entry)
                return _LOADED[key]
    raise AssertionError("unreachable")


def _import(entry: _Entry):
    spec = importlib.util.spec_from_file_location(entry.name, entry.module)
    if spec is None or spec.loader is None:
        raise ReferenceBuildError(f"cannot load the reference module {entry.module}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise ReferenceBuildError(f"cannot load the reference module {entry.module}: {exc}") from exc
    return module


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
