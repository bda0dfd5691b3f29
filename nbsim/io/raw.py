"""The raw float image (``-floatfile``, default name ``floatimage.bin``).

The file is nothing but the pixel values as 4-byte floats in the machine's own
byte order, fast index varying fastest, with no header: ``fpixels*spixels*4``
bytes.
"""
import os

import numpy as np

from ..errors import NbsimError
from .atomic import atomic_write_bytes

__all__ = ["write_float_image", "read_float_image"]

_FLOAT = np.dtype("=f4")


def write_float_image(path, img):
    """Write ``img`` (any shape, C order) as native-endian float32.

    A non-float32 array is converted with ``astype(float32)``, which rounds to
    nearest like C's ``(float)`` conversion of a double.
    """
    with np.errstate(over="ignore", invalid="ignore"):   # overflow -> inf, as in C
        data = np.ascontiguousarray(img, dtype=_FLOAT)
    atomic_write_bytes(path, data)


def read_float_image(path, shape):
    """Read a float image of the given ``shape`` (e.g. ``(spixels, fpixels)``).

    The file must hold exactly ``prod(shape)`` floats; anything else raises
    :class:`~nbsim.errors.NbsimError`.
    """
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    count = int(np.prod(shape, dtype=np.int64))
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise NbsimError(f"cannot read float image '{os.fspath(path)}': {exc.strerror}") from None
    if len(data) != count * _FLOAT.itemsize:
        raise NbsimError(
            f"float image '{os.fspath(path)}' has {len(data)} bytes, expected "
            f"{count * _FLOAT.itemsize} ({'x'.join(map(str, shape))} 4-byte floats)")
    return np.frombuffer(data, dtype=_FLOAT).reshape(shape).copy()
