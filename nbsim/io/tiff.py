"""32-bit float TIFF output (an nbsim addition; the reference has no TIFF).

One uncompressed page of float32 pixels, written with ``tifffile`` into memory
and then atomically to disk; ``tifffile.imread`` gives back identical values.
"""
import io

import numpy as np

from .atomic import atomic_write_bytes

__all__ = ["write_float_tiff"]


def write_float_tiff(path, img2d_float32):
    """Write a 2-D image (rows = slow axis) as a float32 TIFF.

    A non-float32 array is converted with ``astype(float32)``.
    """
    import tifffile

    with np.errstate(over="ignore", invalid="ignore"):   # overflow -> inf
        data = np.ascontiguousarray(img2d_float32, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f"write_float_tiff needs a 2-D image, got shape {data.shape}")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, photometric="minisblack")
    atomic_write_bytes(path, buffer.getvalue())
