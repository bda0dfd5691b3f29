"""SMV ("ADSC") images: the ``-intfile``/``-noisefile`` outputs and the
``-img``/``-mask`` inputs.

Writing
-------
The reference writes a text header of ``KEY=value;`` lines (numbers in C
``%g``), closes it with ``}`` and a form feed, pads it with spaces to 512 bytes
and appends the pixels as native-endian unsigned 16-bit integers.
:func:`format_smv_header` builds that header from values the caller has already
computed, and :func:`write_smv` writes header plus pixels.

Two quirks of the reference are kept on purpose:

* ``DIALS_ORIGIN=x,y,z`` is the one line without a closing ``;``.
* Padding only ever *adds* spaces.  If the formatted header is longer than 512
  bytes (possible with long ``%g`` values: about 390 bytes are fixed text and
  21 numbers can take up to 13 characters each) it is written unpadded and the
  pixels start right after it, even though it still says ``HEADER_BYTES=512``.

The reference has two copies of the header code (intfile and noisefile).  They
differ only in how ``DENZO_X_BEAM``/``DENZO_Y_BEAM`` are computed
(``Sbeam - 0.0*pixel`` in one, ``Sbeam + 0.0*pixel`` in the other), which can
matter only for the sign of a zero or for non-finite values.  This module does
no arithmetic: the caller passes the numbers it wants printed.

Reading
-------
:func:`read_smv` follows the reference's reader: the file must start with
``{\\nHEADER_BYT``; the header length is the ``HEADER_BYTES`` value; the image
size is ``SIZE1`` x ``SIZE2`` (fast x slow), or ``DETECTOR_DIMENSIONS`` squared
when ``SIZE1`` is 0 or missing; pixels are native-endian unsigned shorts.  The
reference does not swap bytes even when the header's ``BYTE_ORDER`` differs
from the machine's; nor does nbsim, but it reports the mismatch in
:attr:`SmvFrame.byte_order_mismatch` so the caller can warn.  Keyword values
are looked up the reference's way, see :meth:`SmvFrame.value_of`.
"""
import math
import operator
import os
import sys
from dataclasses import field

import numpy as np

from ..errors import NbsimError
from ..records import record
from .atomic import atomic_write_bytes
from .cparse import c_atof, fmt_g
from .inputs import open_input

__all__ = [
    "NATIVE_BYTE_ORDER",
    "SMV_HEADER_BYTES",
    "format_smv_header",
    "write_smv",
    "read_smv",
    "smv_value_of",
    "SmvFrame",
]

#: how the reference names this machine's byte order in ``BYTE_ORDER=``
NATIVE_BYTE_ORDER = "little_endian" if sys.byteorder == "little" else "big_endian"
#: the header size the reference writes (and announces)
SMV_HEADER_BYTES = 512

_PIXEL = np.dtype("=u2")


def format_smv_header(*, fpixels, spixels, pixel_size_mm, distance_mm, wavelength_A,
                      beam_center_x_mm, beam_center_y_mm, adxv_x_mm, adxv_y_mm,
                      mosflm_x_mm, mosflm_y_mm, denzo_x_mm, denzo_y_mm, dials_origin,
                      xds_orgx, xds_orgy, close_distance_mm, phi_deg, osc_start_deg,
                      osc_range_deg, twotheta_deg, byte_order="little_endian"):
    """The SMV header bytes exactly as the reference writes them.

    ``fpixels``/``spixels`` are printed with ``%d`` (they must be integers),
    every other number with C ``%g`` (see :func:`~nbsim.io.cparse.fmt_g`), and
    ``dials_origin`` is a sequence of three numbers.  The values are printed as
    given; computing them (unit conversions, the DENZO ``±0.0*pixel`` detail)
    is the caller's job.  The result is padded with spaces to 512 bytes unless
    it is already longer (then it is returned as is, like the reference).
    """
    g = fmt_g
    ox, oy, oz = dials_origin
    text = (
        "{\n"
        "HEADER_BYTES=512;\n"
        "DIM=2;\n"
        f"BYTE_ORDER={byte_order};\n"
        "TYPE=unsigned_short;\n"
        f"SIZE1={operator.index(fpixels)};\n"
        f"SIZE2={operator.index(spixels)};\n"
        f"PIXEL_SIZE={g(pixel_size_mm)};\n"
        f"DISTANCE={g(distance_mm)};\n"
        f"WAVELENGTH={g(wavelength_A)};\n"
        f"BEAM_CENTER_X={g(beam_center_x_mm)};\n"
        f"BEAM_CENTER_Y={g(beam_center_y_mm)};\n"
        f"ADXV_CENTER_X={g(adxv_x_mm)};\n"
        f"ADXV_CENTER_Y={g(adxv_y_mm)};\n"
        f"MOSFLM_CENTER_X={g(mosflm_x_mm)};\n"
        f"MOSFLM_CENTER_Y={g(mosflm_y_mm)};\n"
        f"DENZO_X_BEAM={g(denzo_x_mm)};\n"
        f"DENZO_Y_BEAM={g(denzo_y_mm)};\n"
        f"DIALS_ORIGIN={g(ox)},{g(oy)},{g(oz)}\n"
        f"XDS_ORGX={g(xds_orgx)};\n"
        f"XDS_ORGY={g(xds_orgy)};\n"
        f"CLOSE_DISTANCE={g(close_distance_mm)};\n"
        f"PHI={g(phi_deg)};\n"
        f"OSC_START={g(osc_start_deg)};\n"
        f"OSC_RANGE={g(osc_range_deg)};\n"
        f"TWOTHETA={g(twotheta_deg)};\n"
        "DETECTOR_SN=000;\n"
        "BEAMLINE=fake;\n"
        "}\f"
    )
    header = text.encode("latin-1")
    if len(header) < SMV_HEADER_BYTES:
        header += b" " * (SMV_HEADER_BYTES - len(header))
    return header


def write_smv(path, header_bytes, data_uint16):
    """Write ``header_bytes`` followed by the pixels as native unsigned shorts.

    ``data_uint16`` must have dtype ``uint16`` (any shape, written in C order);
    converting to 16 bits (clipping, rounding) is the caller's job.
    """
    data = np.asarray(data_uint16)
    if data.dtype != np.uint16:
        raise TypeError(f"write_smv needs uint16 pixels, got {data.dtype}")
    body = np.ascontiguousarray(data, dtype=_PIXEL)
    atomic_write_bytes(path, [bytes(header_bytes), body])


def smv_value_of(header_text, keyword):
    """The reference's keyword lookup in an SMV header text.

    Finds the *last* occurrence of ``keyword`` anywhere in the text (searching
    on from the end of each match, so matches never overlap, and matching
    inside longer words: ``DISTANCE`` also matches ``CLOSE_DISTANCE``), then the
    first ``=`` after it, and returns C ``atof`` of what follows.  Returns NaN
    if the keyword does not occur and 0.0 if no ``=`` follows it.
    """
    if not keyword:
        raise ValueError("empty SMV keyword")
    found = -1
    start = 0
    while True:
        at = header_text.find(keyword, start)
        if at < 0:
            break
        found = at
        start = at + len(keyword)
    if found < 0:
        return math.nan
    equals = header_text.find("=", found + len(keyword))
    if equals < 0:
        return 0.0
    return c_atof(header_text[equals + 1:])


@record
class SmvFrame:
    """An SMV file as the reference reads it.

    ``header`` is the header text the reference searches: the first
    ``header_size`` bytes, Latin-1 decoded, cut at the first NUL byte.
    ``data`` is a ``(height, width)`` uint16 array (``width`` = fast = SIZE1).
    ``byte_order`` is the value of the last ``BYTE_ORDER=`` (None if absent)
    and ``byte_order_mismatch`` is true when it is not this machine's order
    (compared on the first 10 characters, as the reference does); the pixels
    are never swapped.
    """

    path: str
    header: str
    header_size: int
    width: int
    height: int
    byte_order: object
    byte_order_mismatch: bool
    data: np.ndarray = field(repr=False)

    def value_of(self, keyword):
        """See :func:`smv_value_of`."""
        return smv_value_of(self.header, keyword)


def _c_string(raw):
    """Bytes as the C string functions see them: up to the first NUL."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return raw.decode("latin-1")


def _as_int(value, path, what):
    """C ``(int)`` of a header value, refusing values C would make garbage of."""
    if not math.isfinite(value) or not -2**31 <= value < 2**31:
        raise NbsimError(f"SMV file '{path}': {what} value {fmt_g(value)} is not usable")
    return int(value)


def read_smv(path):
    """Read an SMV image the way the reference does for ``-img``/``-mask``.

    Deviations, all for files the reference cannot use either: a missing or
    non-numeric ``SIZE1`` falls back to ``DETECTOR_DIMENSIONS`` like a zero one
    (the reference would turn NaN into a huge negative width); a header size
    or image size that is not positive, a header shorter than its
    ``HEADER_BYTES``, a file shorter than 512 bytes or than its pixel data, and
    a file that does not start with ``{\\nHEADER_BYT`` all raise
    :class:`~nbsim.errors.NbsimError` naming the file.

    Pixels start at byte ``2*(header_size//2)`` - the reference indexes its
    16-bit buffer by ``header_size/2`` in integer arithmetic - which is
    ``header_size`` for every even (i.e. every real) header size.
    """
    name = os.fspath(path)
    with open_input(path, "SMV file") as handle:
        return _read_smv(handle, name)


def _read_smv(handle, name):
    # the header, then exactly the pixels it promises: never more than the file holds
    raw = handle.read(SMV_HEADER_BYTES)
    if len(raw) < SMV_HEADER_BYTES:
        raise NbsimError(f"SMV file '{name}' is truncated: {len(raw)} bytes, "
                         f"shorter than a {SMV_HEADER_BYTES}-byte header")
    if not raw.startswith(b"{\nHEADER_BYT"):
        raise NbsimError(f"'{name}' does not look like an SMV (ADSC) image: "
                         "it does not start with '{' and HEADER_BYTES")
    header = _c_string(raw[:SMV_HEADER_BYTES])
    header_size = _as_int(smv_value_of(header, "HEADER_BYTES"), name, "HEADER_BYTES")
    if header_size <= 0:
        raise NbsimError(f"SMV file '{name}': HEADER_BYTES={header_size} is not positive")
    if header_size != SMV_HEADER_BYTES:
        raw += handle.read(header_size - len(raw))
        if len(raw) < header_size:
            raise NbsimError(f"SMV file '{name}' is truncated: {len(raw)} bytes, "
                             f"shorter than its {header_size}-byte header")
        header = _c_string(raw[:header_size])

    marker = "BYTE_ORDER="
    at = header.rfind(marker)
    if at < 0:
        byte_order, mismatch = None, False
    else:
        rest = header[at + len(marker):]
        byte_order = rest.split(";", 1)[0].split("\n", 1)[0].strip()
        mismatch = rest[:10] != NATIVE_BYTE_ORDER[:10]

    size1 = smv_value_of(header, "SIZE1")
    width = 0 if math.isnan(size1) else _as_int(size1, name, "SIZE1")
    if width == 0:
        dims = smv_value_of(header, "DETECTOR_DIMENSIONS")
        width = height = 0 if math.isnan(dims) else _as_int(dims, name, "DETECTOR_DIMENSIONS")
    else:
        height = _as_int(smv_value_of(header, "SIZE2"), name, "SIZE2")
    if width <= 0 or height <= 0:
        if math.isnan(size1) and math.isnan(smv_value_of(header, "DETECTOR_DIMENSIONS")):
            raise NbsimError(f"SMV file '{name}': no SIZE1 or DETECTOR_DIMENSIONS in its "
                             f"{header_size}-byte header (up to the first NUL byte): image size is not positive")
        raise NbsimError(f"SMV file '{name}': image size {width}x{height} "
                         "(SIZE1 x SIZE2, or DETECTOR_DIMENSIONS) is not positive")
    offset = 2 * (header_size // 2)
    nbytes = 2 * width * height
    if handle.size < offset + nbytes:      # refused before the pixels are read
        raise NbsimError(f"SMV file '{name}' is truncated: {handle.size} bytes, expected "
                         f"{offset + nbytes} ({offset}-byte header and "
                         f"{width}x{height} 2-byte pixels)")
    raw += handle.read(offset + nbytes - len(raw))
    if len(raw) < offset + nbytes:
        raise NbsimError(f"SMV file '{name}' shrank while being read")
    data = np.frombuffer(raw, dtype=_PIXEL, count=width * height, offset=offset)
    return SmvFrame(path=name, header=header, header_size=header_size, width=width,
                    height=height, byte_order=byte_order, byte_order_mismatch=mismatch,
                    data=data.reshape(height, width).copy())
