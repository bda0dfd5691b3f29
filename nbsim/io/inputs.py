"""Opening input files safely: regular files only, and reads bounded in advance.

Every file nbsim reads (-hkl, -mat, -sourcefile, -stol, -img, -mask and the
structure-factor dump) goes through :func:`open_input`: it opens without blocking
(a FIFO would otherwise wait forever for a writer), refuses anything but a regular
file (``/dev/zero`` would otherwise be read until memory runs out), and reports the
size, so that every read can be bounded by what the file holds or, for binary files,
by what its header promises. Errors are :class:`~nbsim.errors.NbsimError` naming the
file and what is wrong with it.
"""
import os
import stat

from ..errors import NbsimError

__all__ = ["open_input", "read_input", "describe", "InputFile"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _what(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def describe(path):
    """Why ``path`` is no input file: "no such file", "it is a FIFO, not a regular file"..."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else "cannot be read"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "it is %s, not a regular file" % _what(mode)


class InputFile:
    """An open regular file: ``size`` bytes when opened, read with :meth:`read`."""

    def __init__(self, fd, name, kind, size):
        self._fd = fd
        self.name = name
        self.kind = kind
        self.size = size
        self._pos = 0

    def read(self, nbytes):
        """Up to ``nbytes`` more bytes, never past the size the file had when opened."""
        nbytes = max(0, min(nbytes, self.size - self._pos))
        parts = []
        while nbytes > 0:
            try:
                chunk = os.read(self._fd, min(nbytes, 1 << 24))
            except OSError as exc:
                raise NbsimError("cannot read %s '%s': %s" % (self.kind, self.name, exc.strerror)) from None
            if not chunk:
                break           # the file shrank meanwhile
            parts.append(chunk)
            nbytes -= len(chunk)
            self._pos += len(chunk)
        return b"".join(parts)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_input(path, kind):
    """Open ``path`` for reading if it is a regular file; ``kind`` names it in errors
    (e.g. "HKL file")."""
    name = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise NbsimError("cannot read %s '%s': %s" % (kind, name, exc.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NbsimError("cannot read %s '%s': it is %s, not a regular file"
                             % (kind, name, _what(st.st_mode)))
    except BaseException:
        os.close(fd)
        raise
    return InputFile(fd, name, kind, st.st_size)


def read_input(path, kind, limit=None, what=None):
    """The whole of a regular file; with ``limit``, a file larger than ``limit`` bytes
    is refused (``what`` says why there is a limit) before anything is read."""
    with open_input(path, kind) as f:
        if limit is not None and f.size > limit:
            raise NbsimError("%s '%s' is %d bytes, more than nbsim reads (%d at most%s)"
                             % (kind, f.name, f.size, limit, "; " + what if what else ""))
        return f.read(f.size)
