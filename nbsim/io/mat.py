"""MOSFLM orientation matrix files (``-mat``).

The reference reads the first nine numbers with ``fscanf("%lg")`` (three calls
of three), row by row: row i holds the i-th (x, y, z) component of the
reciprocal cell vectors a*, b*, c*.  MOSFLM writes them already multiplied by
the wavelength; removing that factor is the caller's job, as is printing the
reference's ``reading <file>`` line.  Everything after the ninth number (MOSFLM's
missetting angles, U matrix, cell) is never read.

Numbers are read exactly like ``scanf`` does, so run-together fixed-format
numbers such as ``0.0123-0.0050`` give two values, as in the reference.  Where
the reference would carry on with garbage (it only complains on ``stderr``),
nbsim raises :class:`~nbsim.errors.NbsimError` naming the file and line: for a
non-numeric word among the first nine numbers or fewer than nine numbers.
"""
import os
import re

import numpy as np

from ..errors import NbsimError
from .cparse import ScanFailure, printable, scan_double
from .inputs import open_input

__all__ = ["read_mat"]

_WORD = re.compile(r"[ \t\n\v\f\r]*([^ \t\n\v\f\r]*)")
# nine numbers must appear within the first this many bytes
_READ_AT_MOST = 1 << 20


def read_mat(path):
    """The 3x3 float64 matrix ``M``, ``M[i] = (a*_i, b*_i, c*_i)`` for i = x, y, z.

    So the columns of ``M`` are a*, b*, c* (still scaled by the wavelength).
    """
    name = os.fspath(path)
    with open_input(path, "matrix file") as handle:
        # the nine numbers come first; what follows is never read
        text = handle.read(_READ_AT_MOST).decode("latin-1")
    if len(text) == _READ_AT_MOST:
        text = text[:len(text.rstrip("0123456789+-.eEinfatyINFATY"))]   # no cut number
    values = []
    pos = 0
    while len(values) < 9:
        try:
            value, pos = scan_double(text, pos)
        except ScanFailure as fail:
            if fail.eof:
                raise NbsimError(f"matrix file '{name}' has only {len(values)} numbers; "
                                 "a MOSFLM matrix needs 9") from None
            word = _WORD.match(text, pos)
            line = text.count("\n", 0, word.start(1)) + 1
            raise NbsimError(f"matrix file '{name}' line {line}: '{printable(word.group(1))}' is not "
                             "a number") from None
        values.append(value)
    return np.array(values, dtype=np.float64).reshape(3, 3)
