"""The 8-bit preview image (``-pgmfile``, default name ``image.pgm``).

A binary PGM ("P5") file with the header the reference writes::

    P5\\n<fpixels> <spixels>\\n# pixels scaled by <pgm_scale as %g>\\n255\\n

followed by one byte per pixel, fast index varying fastest.
"""
import operator

import numpy as np

from .atomic import atomic_write_bytes
from .cparse import fmt_g

__all__ = ["format_pgm_header", "write_pgm"]


def format_pgm_header(fpixels, spixels, pgm_scale):
    """The PGM header bytes for an ``fpixels`` x ``spixels`` image."""
    return (f"P5\n{operator.index(fpixels)} {operator.index(spixels)}\n"
            f"# pixels scaled by {fmt_g(pgm_scale)}\n255\n").encode("ascii")


def write_pgm(path, img_uint8, fpixels, spixels, pgm_scale):
    """Write the PGM file; ``img_uint8`` must be uint8 with fpixels*spixels values.

    Turning floats into bytes (scaling, clipping at 255) is the caller's job.
    """
    data = np.asarray(img_uint8)
    if data.dtype != np.uint8:
        raise TypeError(f"write_pgm needs uint8 pixels, got {data.dtype}")
    if data.size != operator.index(fpixels) * operator.index(spixels):
        raise ValueError(f"write_pgm: {data.size} pixels given for a "
                         f"{fpixels}x{spixels} image")
    atomic_write_bytes(path, [format_pgm_header(fpixels, spixels, pgm_scale),
                              np.ascontiguousarray(data)])
