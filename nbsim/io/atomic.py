"""Write a whole file or nothing.

Every nbsim output is built in memory, written to a temporary name in the
destination folder and then renamed over the destination.  A crash or an error
part-way through therefore never leaves a half-written image behind: the
destination either keeps its old content or gets the complete new one.
"""
import contextlib
import os

from ..errors import NbsimError

__all__ = ["atomic_write_bytes", "atomic_path"]


def _token():
    """12 random hex digits for a temporary name (what _token() gives,
    without importing secrets, hmac and hashlib on every run: 3 ms)."""
    return os.urandom(6).hex()


def _write_in_place(path, data):
    try:
        with open(path, "wb") as handle:
            for part in (data if isinstance(data, (list, tuple)) else (data,)):
                handle.write(_raw_bytes(part))
    except OSError as exc:
        raise NbsimError(f"cannot write '{path}': {exc.strerror}") from None


def _raw_bytes(part):
    """A byte view of ``part``: arrays are not copied (a 2048x2048 float image
    is 16 MB, and copying it costs as much as writing it)."""
    if isinstance(part, (bytes, bytearray)):
        return part
    view = memoryview(part)
    if not view.c_contiguous:
        raise ValueError("atomic_write_bytes: parts must be C-contiguous")
    return view.cast("B") if view.ndim != 1 or view.itemsize != 1 else view


def _target(path):
    """(path, folder, name) of the file a write to ``path`` lands in: a link is
    written through, as C's fopen does, instead of being replaced; a folder or an
    empty name is an error naming ``path``."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    if not name:
        raise NbsimError(f"cannot write '{path}': not a file name")
    if os.path.islink(path):
        path = os.path.realpath(path)
        folder, name = os.path.split(path)
    if os.path.isdir(path):
        raise NbsimError(f"cannot write '{path}': it is a directory")
    return path, folder, name


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes-like, or a list of bytes-like parts) to ``path`` atomically.

    Parts are written one after another, so a header and a numpy image can go
    out without first being joined into one copy (an image's parts may be
    C-contiguous arrays; their raw bytes are written).

    The temporary file is created next to ``path`` (same filesystem, so the
    final ``os.replace`` is atomic) with mode ``0o666`` minus the umask, the
    same permissions a C ``fopen(path, "wb")`` gives a new file.  Any OS error
    (missing folder, no permission, disk full) removes the temporary file and is
    raised as :class:`~nbsim.errors.NbsimError` naming ``path``.
    """
    path, folder, name = _target(path)
    if os.path.exists(path) and not os.path.isfile(path):
        # a device or a pipe (e.g. /dev/null): renaming over it would replace the
        # device node with a plain file, so write into it as the reference does
        _write_in_place(path, data)
        return
    tmp = os.path.join(folder, f".{name}.{_token()}.tmp")
    # One try from the create on: a signal that arrives while os.open runs raises
    # its exception just after the call returns, and the name must go then too
    # (the random token makes the name ours, so removing it is safe even when the
    # create itself failed).
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            for part in (data if isinstance(data, (list, tuple)) else (data,)):
                handle.write(_raw_bytes(part))
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise NbsimError(f"cannot write '{path}': {exc.strerror}") from None
        raise


@contextlib.contextmanager
def atomic_path(path):
    """For libraries that write files by name (h5py, fabio): yields a temporary file
    name with the same base name as ``path``, inside a new hidden folder next to it;
    when the block ends without an error the file is renamed over ``path`` (the same
    filesystem, so atomically) and the folder removed; on an error both go.

    Links are written through and devices written into, as :func:`atomic_write_bytes`
    does (a device gets the bytes copied from a scratch file)."""
    path, folder, name = _target(path)
    device = os.path.exists(path) and not os.path.isfile(path)
    tmpdir = None
    try:
        if device:
            import tempfile
            tmpdir = tempfile.mkdtemp(prefix="nbsim-")
        else:
            tmpdir = os.path.join(folder or ".", f".{name}.{_token()}.tmp")
            os.mkdir(tmpdir)
    except OSError as exc:
        raise NbsimError(f"cannot write '{path}': {exc.strerror}") from None
    except BaseException:
        # (a signal during mkdir: its exception comes after the folder was made)
        if tmpdir is not None and not device:
            with contextlib.suppress(OSError):
                os.rmdir(tmpdir)
        raise
    try:
        scratch = os.path.join(tmpdir, name)
        yield scratch
        if device:
            with open(scratch, "rb") as handle:
                _write_in_place(path, handle.read())
        else:
            os.replace(scratch, path)
    except OSError as exc:
        raise NbsimError(f"cannot write '{path}': {exc.strerror}") from None
    finally:
        import shutil
        shutil.rmtree(tmpdir, ignore_errors=True)
