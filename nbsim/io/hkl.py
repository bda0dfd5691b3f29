"""Structure factors: the ``-hkl`` text table and the ``Fdump.bin`` cache.

HKL text files
--------------
Records of four numbers ``h k l F``.  The reference reads the file twice: once
with ``fscanf("%lg%lg%lg%lg")`` to count the records and find the index ranges,
once with ``fscanf("%d%d%d%lg")`` to store F.  The table it builds is a dense
``(h_range+1, k_range+1, l_range+1)`` float64 array, ``h_range = h_max-h_min+1``
and so on: one slot longer than needed along every axis.  The array starts as
zeros; with a non-zero ``default_F`` the ``[:h_range, :k_range, :l_range]`` block
(every real index, not the extra slots) is first set to ``default_F``; then
every record is stored, a later duplicate replacing an earlier one.

The reference silently stops at the first record it cannot parse and keeps
what it has; nbsim instead rejects such a file with an
:class:`~nbsim.errors.NbsimError` naming the file and line.  Accepted files are
exactly those both reference passes read to the end and the same way:

* every non-blank line holds a whole number of records (normally one), each
  number being what ``scanf("%lg")`` reads (so ``1.5e2``, ``inf``, ``nan`` and
  ``0x1p3`` are fine as F);
* h, k and l are plain decimal integers (``scanf("%d")`` stops at a ``.`` or an
  exponent; the reference then either stops reading or misreads the rest of
  the file) within the range of a C ``int``.

Because h, k and l must be integers, the reference's pass-1 warning
"non-integer value for h" can never be printed for an accepted file; nbsim
reports such a value as an error instead.

Fdump.bin
---------
``"%d %d %d %d %d %d\\n\\f" % (h_min, h_max, k_min, k_max, l_min, l_max)`` then
the whole array above, native-endian float64, C order.  The reference reads
the header back with ``fscanf("%d%d%d%d%d%d\\n\\f")``; the ``\\n`` and ``\\f`` in
that format each match *any amount* of whitespace, so it also swallows any
leading bytes of the binary data that happen to be whitespace codes (0x09-0x0d,
0x20), shifting all data and leaving the end of the array zero.
:func:`read_fdump` does the same, so it gives the reference's numbers.
"""
import os
import re
from dataclasses import field

import numpy as np

from ..errors import NbsimError
from ..records import record
from .atomic import atomic_write_bytes
from .inputs import open_input, read_input
from .cparse import C_WHITESPACE, ScanFailure, fmt_g, printable, scan_double, scan_int

__all__ = ["HklTable", "read_hkl", "table_from_records", "write_fdump", "read_fdump",
           "format_fdump_header"]

_DOUBLE = np.dtype("=f8")
_INT_MIN, _INT_MAX = -2**31, 2**31 - 1
_WS = C_WHITESPACE.encode("ascii")
# a line whose tokens are all plain decimal numbers: scanf reads each whole
_SIMPLE_NUMBER = rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_SIMPLE_LINE = re.compile(rb"[ \t\v\f\r]*(?:%s(?:[ \t\v\f\r]+%s)*[ \t\v\f\r]*)?"
                          % (_SIMPLE_NUMBER, _SIMPLE_NUMBER))
# the only bytes of a file the fast reader takes on
_PLAIN_BYTES = b"0123456789+-.eE" + _WS
_PLAIN_INT = re.compile(rb"[+-]?[0-9]+")
_WORD = re.compile(r"[^ \t\n\v\f\r]*")


@record
class HklTable:
    """A structure-factor table as the reference holds it.

    ``F[h - h_min, k - k_min, l - l_min]`` is the structure factor of (h, k, l);
    ``F`` has shape ``(h_range+1, k_range+1, l_range+1)``.  ``hkls`` is the
    reference's count (records read, or ``h_range*k_range*l_range`` after
    reading a dump).  ``messages`` are the lines the reference prints while
    reading, for the caller to print in order.
    """

    h_min: int
    h_max: int
    k_min: int
    k_max: int
    l_min: int
    l_max: int
    F: np.ndarray = field(repr=False)
    hkls: int
    messages: list = field(default_factory=list)
    #: (h, k, l, F) of the file's last record, which the reference's reading loops
    #: leave in its loop variables (-printout shows them until a pixel sets them)
    last_record: tuple = None

    @property
    def h_range(self):
        return self.h_max - self.h_min + 1

    @property
    def k_range(self):
        return self.k_max - self.k_min + 1

    @property
    def l_range(self):
        return self.l_max - self.l_min + 1


def _read_bytes(path, kind):
    return read_input(path, kind)


def _line_tokens(line, where):
    """The numbers of one line as (token bytes, value or None) pairs.

    ``value`` is None for plain decimal tokens (convert with ``float``); other
    lines go through the scanf emulation, which also splits run-together
    numbers like ``1-2`` exactly as ``scanf`` would.
    """
    if _SIMPLE_LINE.fullmatch(line):
        return [(tok, None) for tok in line.split()]
    text = line.decode("latin-1")
    out = []
    pos = 0
    while True:
        start = _skip_ws(text, pos)
        try:
            value, end = scan_double(text, pos)
        except ScanFailure as fail:
            if fail.eof:
                return out
            word = _WORD.match(text, start).group()
            raise NbsimError(f"{where}: '{printable(word)}' is not a number") from None
        out.append((text[start:end].encode("latin-1"), value))
        pos = end


def _skip_ws(text, pos):
    while pos < len(text) and text[pos] in C_WHITESPACE:
        pos += 1
    return pos


def _index(token, where, axis):
    if not _PLAIN_INT.fullmatch(token):
        raise NbsimError(f"{where}: {axis} must be an integer, got '{printable(token)}'")
    value = int(token)
    if not _INT_MIN <= value <= _INT_MAX:
        raise NbsimError(f"{where}: {axis}={value} is out of range")
    return value


def _alloc(shape, where, max_bytes=None):
    from ..limits import check_fhkl_shape
    check_fhkl_shape(shape, where, max_bytes)
    try:
        return np.zeros(shape, dtype=np.float64)
    except (MemoryError, ValueError):
        raise NbsimError(f"{where}: index ranges {shape[0] - 1} x {shape[1] - 1} x "
                         f"{shape[2] - 1} need too much memory") from None


def _fast_records(raw):
    """All records at once for the usual file (plain decimal numbers, whole
    records on every line, integer indices in range); None for anything else,
    which the line-by-line reader then handles or reports.

    With only digits, signs, '.', 'e' and 'E' in the words, numpy's conversion
    accepts exactly the words that are one whole ``scanf("%lg")`` number (floats)
    or one ``scanf("%d")`` number (ints) - anything else ("1-2", "1e", "1.0" as an
    index) raises and sends the file to the careful reader.
    """
    if raw.translate(None, _PLAIN_BYTES):
        return None
    if any(len(line.split()) % 4 for line in raw.split(b"\n")):
        return None
    tokens = raw.split()
    if not tokens:
        return None
    tokens = np.array(tokens).reshape(-1, 4)
    try:
        with np.errstate(all="ignore"):
            hkl = tokens[:, :3].astype(np.int64)
    except (ValueError, OverflowError):
        return None
    if hkl.min() < _INT_MIN or hkl.max() > _INT_MAX:
        return None
    return hkl[:, 0], hkl[:, 1], hkl[:, 2], tokens[:, 3].astype(np.float64)


def _careful_records(raw, name):
    hs, ks, ls, fs = [], [], [], []
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        where = f"HKL file '{name}' line {lineno}"
        tokens = _line_tokens(line, where)
        if len(tokens) % 4:
            raise NbsimError(f"{where}: expected 'h k l F', found {len(tokens)} "
                             f"number{'s' if len(tokens) != 1 else ''}")
        for i in range(0, len(tokens), 4):
            hs.append(_index(tokens[i][0], where, "h"))
            ks.append(_index(tokens[i + 1][0], where, "k"))
            ls.append(_index(tokens[i + 2][0], where, "l"))
            tok, value = tokens[i + 3]
            fs.append(float(tok) if value is None else value)
    if not hs:
        raise NbsimError(f"HKL file '{name}' contains no 'h k l F' records")
    return (np.array(hs, dtype=np.int64), np.array(ks, dtype=np.int64),
            np.array(ls, dtype=np.int64), np.array(fs, dtype=np.float64))


def read_hkl(path, default_F, max_bytes=None):
    """Read an ``h k l F`` text file into an :class:`HklTable`.

    A table larger than ``max_bytes`` (None: nbsim.limits' cap from the environment)
    is refused before it is allocated.

    ``messages`` holds what the reference prints: ``counting entries in X``,
    with a non-zero ``default_F`` ``initializing to default_F = %g:`` and
    ``done initializing:``, then ``re-reading X`` (X is ``path`` as given).
    Raises :class:`~nbsim.errors.NbsimError` for a missing file, a malformed
    line (see the module notes) or a file without any record.
    """
    name = os.fspath(path)
    raw = _read_bytes(path, "HKL file")
    records = _fast_records(raw)
    h, k, l, f = records if records is not None else _careful_records(raw, name)
    table = table_from_records(h, k, l, f, default_F, f"HKL file '{name}'", max_bytes)
    table.messages[:0] = [f"counting entries in {name}"]
    table.messages.append(f"re-reading {name}")
    return table


def table_from_records(h, k, l, f, default_F, where="structure factors", max_bytes=None):
    """The reference's dense table from ``h k l F`` records (int64 and float64 arrays
    of one length, at least one record), exactly as :func:`read_hkl` builds it from a
    file holding those records in that order. ``messages`` holds the default_F lines."""
    h_min, h_max = int(h.min()), int(h.max())
    k_min, k_max = int(k.min()), int(k.max())
    l_min, l_max = int(l.min()), int(l.max())
    h_range, k_range, l_range = h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1
    messages = []
    table = _alloc((h_range + 1, k_range + 1, l_range + 1), where, max_bytes)
    if default_F != 0.0:
        messages.append(f"initializing to default_F = {fmt_g(default_F)}:")
        table[:h_range, :k_range, :l_range] = default_F
        messages.append("done initializing:")
    flat = ((h - h_min) * (k_range + 1) + (k - k_min)) * (l_range + 1) + (l - l_min)
    # later records win: keep the last occurrence of every index
    _, first_in_reversed = np.unique(flat[::-1], return_index=True)
    keep = len(flat) - 1 - first_in_reversed
    table.reshape(-1)[flat[keep]] = f[keep]
    return HklTable(h_min, h_max, k_min, k_max, l_min, l_max, table, len(h), messages,
                    (int(h[-1]), int(k[-1]), int(l[-1]), float(f[-1])))


def format_fdump_header(table):
    """The text header of a dump file: six integers, newline, form feed."""
    return ("%d %d %d %d %d %d\n\f" % (table.h_min, table.h_max, table.k_min,
                                       table.k_max, table.l_min, table.l_max)).encode("ascii")


def write_fdump(path, table):
    """Write ``table`` as the reference's ``Fdump.bin`` (byte-identical)."""
    shape = (table.h_range + 1, table.k_range + 1, table.l_range + 1)
    if tuple(table.F.shape) != shape:
        raise ValueError(f"write_fdump: F has shape {table.F.shape}, the index ranges "
                         f"need {shape}")
    body = np.ascontiguousarray(table.F, dtype=_DOUBLE)
    atomic_write_bytes(path, [format_fdump_header(table), body])


def read_fdump(path):
    """Read a dump file written by :func:`write_fdump` or by the reference.

    The header is parsed like ``fscanf("%d%d%d%d%d%d\\n\\f")``, including the
    swallowing of whitespace-valued data bytes described in the module notes
    (the array is then shifted and zero-filled at the end exactly as the
    reference's reads leave it).  ``hkls`` is ``h_range*k_range*l_range`` and
    ``messages`` is empty (the reference's ``reading Fs from ...`` line is the
    caller's).  A missing, malformed or truncated file raises
    :class:`~nbsim.errors.NbsimError`.
    """
    name = os.fspath(path)
    with open_input(path, "structure-factor dump") as handle:
        return _read_fdump(handle, name)


def _read_fdump(handle, name):
    # the header is six integers (scanf skips any whitespace before each): read as
    # much of the file as it takes to find them, then only what the header promises
    raw = handle.read(4096)
    while True:
        text = raw.decode("latin-1")
        complete = False
        try:
            values, pos = [], 0
            for _ in range(6):
                value, pos = scan_int(text, pos)
                values.append(value)
            complete = pos < len(raw)      # a number at the buffer's end may go on
        except ScanFailure as fail:
            if not (fail.eof or fail.pos >= len(text)):
                raise NbsimError(f"structure-factor dump '{name}' does not start with "
                                 "six integers (h_min h_max k_min k_max l_min l_max)") from None
            values = None
        if complete:
            break
        more = handle.read(len(raw) or 4096)
        if not more:
            if values is None:
                raise NbsimError(f"structure-factor dump '{name}' does not start with "
                                 "six integers (h_min h_max k_min k_max l_min l_max)")
            break
        raw += more
    if not all(_INT_MIN <= v <= _INT_MAX for v in values):
        raise NbsimError(f"structure-factor dump '{name}': header index out of range")
    h_min, h_max, k_min, k_max, l_min, l_max = values
    ranges = (h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1)
    if min(ranges) < 0:
        raise NbsimError(f"structure-factor dump '{name}': header has a minimum index "
                         "above its maximum")
    shape = tuple(r + 1 for r in ranges)
    nbytes = shape[0] * shape[1] * shape[2] * _DOUBLE.itemsize
    after_ints = pos
    if handle.size - after_ints < nbytes:      # refused before reading the data
        raise NbsimError(f"structure-factor dump '{name}' is truncated: "
                         f"{max(0, handle.size - after_ints - 2)} data bytes, expected {nbytes}")
    # the data, and past it only as far as whitespace codes may have shifted it
    raw += handle.read(after_ints + 2 + nbytes - len(raw))
    skip = after_ints
    while True:
        while skip < len(raw) and raw[skip] in _WS:
            skip += 1
        if skip + nbytes <= len(raw) or len(raw) >= handle.size:
            break
        more = handle.read(skip + nbytes - len(raw) + 4096)
        if not more:
            break
        raw += more
    nominal = after_ints + 2 if raw[after_ints:after_ints + 2] == b"\n\f" else skip
    if len(raw) - nominal < nbytes:
        raise NbsimError(f"structure-factor dump '{name}' is truncated: "
                         f"{len(raw) - nominal} data bytes, expected {nbytes}")
    body = raw[skip:skip + nbytes]
    if len(body) < nbytes:
        body += bytes(nbytes - len(body))
    table = np.frombuffer(body, dtype=_DOUBLE).reshape(shape).copy()
    return HklTable(h_min, h_max, k_min, k_max, l_min, l_max, table,
                    ranges[0] * ranges[1] * ranges[2], [])
