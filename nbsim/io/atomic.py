"""Write a whole file or nothing.

Every nbsim output is built in memory, written to a temporary name in the
destination folder and then renamed over the destination.  A crash or an error
part-way through therefore never leaves a half-written image behind: the
destination either keeps its old content or gets the complete new one.
"""
import os
import secrets

from ..errors import NbsimError

__all__ = ["atomic_write_bytes"]


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes-like) to ``path`` atomically.

    The temporary file is created next to ``path`` (same filesystem, so the
    final ``os.replace`` is atomic) with mode ``0o666`` minus the umask, the
    same permissions a C ``fopen(path, "wb")`` gives a new file.  Any OS error
    (missing folder, no permission, disk full) removes the temporary file and is
    raised as :class:`~nbsim.errors.NbsimError` naming ``path``.
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    if not name:
        raise NbsimError(f"cannot write '{path}': not a file name")
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise NbsimError(f"cannot write '{path}': {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise NbsimError(f"cannot write '{path}': {exc.strerror}") from None
        raise
