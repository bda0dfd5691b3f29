"""Multi-column text tables: the ``-sourcefile`` list (and ``-stolfile`` table).

The reference reads these with one generic routine: the file is read line by
line (``fgets`` into a 10240-byte buffer, so a longer line is handled as
several lines); a line that is empty after its leading delimiters is skipped;
on every other line the words separated by any of `` \\t,;:!`` are converted
with C ``atof`` into columns 1, 2, 3, ... and a column a line does not reach is
NaN ("missing", which the caller replaces by a default).  Words beyond the last
wanted column are never looked at, so trailing comments there are harmless.

For a source file the columns are X, Y, Z (position of the source, m),
intensity I and wavelength lambda (m).

Deviations from the reference, each for input where the reference produces
nonsense rather than an error:

* A word the reference would convert must be a complete C number (``atof``
  accepts any numeric prefix and turns a non-number into 0).  So a comment line
  (``# ...``) or any non-numeric word raises :class:`~nbsim.errors.NbsimError`
  naming the file and line, where the reference would create a source of
  zeros or a zero column.
* A line that holds only whitespace (e.g. ``\\r\\n`` of a Windows file, or
  spaces at the end of the file without a newline) is blank.  The reference
  skips only lines that are exactly ``\\n`` after delimiters and turns the
  others into sources of zeros.
* Columns missing from a line are always NaN.  The reference's scan relies on
  each line ending in a bare ``\\n`` right after a number: when a line instead
  ends without a newline (last line of the file), with ``\\r\\n``, or with a
  word such as ``nan`` or ``inf``, it fills every remaining column with 0
  (e.g. intensity 0 and wavelength 0).
"""
import math
import os

import numpy as np

from ..errors import NbsimError
from .cparse import C_WHITESPACE, c_strtod, printable
from .inputs import read_input

__all__ = ["read_columns", "read_source_file"]

_DELIMITERS = " \t,;:!"
_FGETS_CHARS = 10240 - 1
#: more sources than this would never finish rendering
MAX_SOURCES = 10 ** 6


def _span(text, pos, chars):
    n = len(text)
    while pos < n and text[pos] in chars:
        pos += 1
    return pos


def _cspan(text, pos, chars):
    n = len(text)
    while pos < n and text[pos] not in chars:
        pos += 1
    return pos


def _chunks(text):
    """``(line_number, chunk)`` as successive ``fgets`` calls return them."""
    lineno = 1
    pos = 0
    n = len(text)
    while pos < n:
        newline = text.find("\n", pos, pos + _FGETS_CHARS)
        end = newline + 1 if newline >= 0 else min(n, pos + _FGETS_CHARS)
        yield lineno, text[pos:end]
        if newline >= 0:
            lineno += 1
        pos = end


def read_columns(path, ncols, kind="text file", max_rows=None, flag=None):
    """Read up to ``ncols`` numeric columns; returns ``ncols`` float64 arrays.

    One entry per non-blank line, NaN where a line has fewer columns.  An empty
    file gives empty arrays.  ``kind`` names the file in error messages; with
    ``max_rows``, a file with more entries is refused (``flag`` names the option).
    """
    name = os.fspath(path)
    text = read_input(path, kind).decode("latin-1")
    if max_rows is not None and text.count("\n") >= max_rows:
        # a quick count first (each non-blank line is at least one entry)
        entries = sum(1 for line in text.split("\n") if line.strip(_DELIMITERS + C_WHITESPACE))
        if entries > max_rows:
            raise NbsimError(f"{flag or kind}: '{name}' has {entries} entries, more than nbsim "
                             f"takes ({max_rows} at most)")
    rows = []
    for lineno, chunk in _chunks(text):
        t = _span(chunk, 0, _DELIMITERS)
        if not chunk[t:].strip(C_WHITESPACE):
            continue
        if max_rows is not None and len(rows) >= max_rows:
            raise NbsimError(f"{flag or kind}: '{name}' has more than {max_rows} entries "
                             f"(line {lineno}), more than nbsim takes")
        row = [math.nan] * ncols
        for column in range(ncols):
            word_end = _cspan(chunk, t, _DELIMITERS)
            word = chunk[t:word_end].rstrip(C_WHITESPACE)
            if not word.strip(C_WHITESPACE):
                break          # past the end of the line: the column is missing
            value, used = c_strtod(word)
            if used != len(word):
                raise NbsimError(f"{kind} '{name}' line {lineno}: '{printable(word)}' is not a number")
            row[column] = value
            t = _span(chunk, t, "0123456789-+.EGeg")
            if chunk[t:] == "\n":
                break
            t = _span(chunk, _cspan(chunk, t, _DELIMITERS), _DELIMITERS)
            if chunk[t:] == "\n":
                break
        rows.append(row)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), ncols)
    return tuple(np.ascontiguousarray(table[:, i]) for i in range(ncols))


def read_source_file(path):
    """Read a ``-sourcefile``: arrays ``(X, Y, Z, I, lambda)``, NaN where missing.

    Raises :class:`~nbsim.errors.NbsimError` for a missing file, a bad line (see
    the module notes) or a file without any source (the reference stops there
    too).
    """
    columns = read_columns(path, 5, kind="source file", max_rows=MAX_SOURCES, flag="-sourcefile")
    if len(columns[0]) == 0:
        raise NbsimError(f"source file '{os.fspath(path)}' defines no sources")
    return columns
