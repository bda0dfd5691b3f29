"""PNG previews (``-pngfile``): an 8-bit picture of the float image a person can read.

One image pixel per detector pixel, rows = slow axis (as the other outputs), up to
1024 pixels a side; a larger detector is shown reduced by the smallest whole factor k
that brings it there, each PNG pixel the brightest of its k x k block, so that no spot
disappears (a 2048² detector gives a 1024² preview, which is also what a screen
shows of it, and costs a quarter of the time to write). Grey
levels follow a logarithmic scale, so that weak spots and the bright ones are both
visible: level = 254 · ln(1 + g·v/top) / ln(1 + g) for 0 ≤ v ≤ top (g = 1000; v above
``top`` is white, below 0 black), where ``top`` is ``-png_scale`` or, by default, the
99.9th percentile of the rendered pixels (taken from a fixed, evenly spaced sample of
them, which is fast and deterministic), so a few very bright spots cannot make the rest
black. The beam centre is marked with a red cross (open in the middle so that the
pixels under it stay visible). The file is a palette PNG (colour type 3: 255 greys and
red), written with numpy and zlib; its tEXt chunks record the scale and beam centre.
"""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from .atomic import atomic_write_bytes

__all__ = ["LOG_GAIN", "auto_top", "log_levels", "encode_png", "preview_png", "write_preview_png"]

LOG_GAIN = 1000.0
_SAMPLE = 1 << 18            # pixels looked at for the automatic scale
MAX_SIDE = 1024              # larger images are reduced (see the module docstring)
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARK = 255                   # palette index of the beam-centre mark


def auto_top(values, rendered=None):
    """The automatic white level: the 99.9th percentile of (a sample of) the finite
    rendered pixels, or their maximum when that percentile is not positive; 0 for
    an image with nothing positive."""
    flat = np.asarray(values).reshape(-1)
    if rendered is not None:
        flat = flat[np.asarray(rendered).reshape(-1)]
    step = max(1, flat.size // _SAMPLE)
    sample = np.asarray(flat[::step], dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0
    top = float(np.percentile(sample, 99.9))
    if not top > 0.0:
        finite = np.asarray(flat, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        top = float(finite.max()) if finite.size else 0.0
    return top if top > 0.0 else 0.0


def log_levels(values, top, levels=255):
    """uint8 grey levels 0..levels-1 on the logarithmic scale (see module docstring)."""
    v = np.asarray(values, dtype=np.float32)
    if not top > 0.0 or not math.isfinite(top):
        return np.zeros(v.shape, dtype=np.uint8)
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.clip(v * np.float32(LOG_GAIN / top), 0.0, LOG_GAIN)
        t = np.nan_to_num(t, nan=0.0)
        out = np.log1p(t) * np.float32((levels - 1) / math.log1p(LOG_GAIN))
    return (out + np.float32(0.5)).astype(np.uint8)


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(image, palette=None, text=None, level=3):
    """PNG bytes of a uint8 image: (h, w) grey, (h, w, 3) RGB, or (h, w) palette
    indices when ``palette`` (a (n, 3) uint8 array) is given. ``text``: dict of tEXt
    keywords. Rows use filter 0; ``level`` is zlib's compression level."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError("encode_png needs a uint8 array")
    if arr.ndim == 2:
        color_type, channels = (3 if palette is not None else 0), 1
    elif arr.ndim == 3 and arr.shape[2] == 3 and palette is None:
        color_type, channels = 2, 3
    else:
        raise ValueError("encode_png needs (h, w) or (h, w, 3), got %s" % (arr.shape,))
    height, width = arr.shape[:2]
    if height < 1 or width < 1:
        raise ValueError("encode_png needs a non-empty image")
    raw = np.zeros((height, width * channels + 1), dtype=np.uint8)
    raw[:, 1:] = arr.reshape(height, width * channels)
    parts = [_SIGNATURE,
             _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))]
    if palette is not None:
        pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
        parts.append(_chunk(b"PLTE", pal.tobytes()))
    for key, value in (text or {}).items():
        parts.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + str(value).encode("latin-1")))
    parts.append(_chunk(b"IDAT", zlib.compress(raw.tobytes(), level)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def _palette():
    pal = np.zeros((256, 3), dtype=np.uint8)
    grey = np.round(np.arange(255) * (255.0 / 254.0)).astype(np.uint8)
    pal[:255] = grey[:, None]
    pal[MARK] = (255, 0, 0)
    return pal


def _mark(levels, centre):
    """Draw the beam-centre cross into ``levels`` (palette indices) in place."""
    if centre is None:
        return
    h, w = levels.shape
    cf, cs = (int(math.floor(c)) for c in centre)   # the pixel holding the centre
    arm = max(4, min(h, w) // 30)
    gap = max(2, arm // 3)
    thick = 1 if min(h, w) < 1024 else 2
    lo, hi = -(thick // 2), thick - thick // 2
    for d in range(gap, arm + 1):
        for sign in (-1, 1):
            f = cf + sign * d
            if 0 <= f < w:
                levels[max(0, cs + lo):max(0, min(h, cs + hi)), f] = MARK
            s = cs + sign * d
            if 0 <= s < h:
                levels[s, max(0, cf + lo):max(0, min(w, cf + hi))] = MARK


def reduction(shape, max_side=MAX_SIDE):
    """The whole factor by which an image of ``shape`` is reduced (1: not at all)."""
    return max(1, -(-max(shape) // max_side))


def block_max(img, k):
    """The maximum of each k x k block (the last blocks padded with -inf)."""
    if k == 1:
        return img
    h, w = img.shape
    H, W = -(-h // k), -(-w // k)
    if (H * k, W * k) != (h, w):
        padded = np.full((H * k, W * k), -np.inf, dtype=np.float32)
        padded[:h, :w] = img
        img = padded
    img = np.asarray(img, dtype=np.float32)
    # k*k strided slices, each (H, W): one pass over the image (reshape-and-reduce over
    # the small axes is many times slower in numpy)
    out = img[0::k, 0::k].copy()
    for i in range(k):
        for j in range(k):
            if i or j:
                np.maximum(out, img[i::k, j::k], out=out)
    return out


def preview_png(image, beam_centre_px=None, top=None, rendered=None):
    """(PNG bytes, top used) of the preview of a float image [slow, fast]."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError("preview_png needs a 2-D image, got shape %s" % (img.shape,))
    if top is None:
        top = auto_top(img, rendered)
    k = reduction(img.shape)
    levels = log_levels(block_max(img, k), top)
    if beam_centre_px is not None and all(math.isfinite(c) for c in beam_centre_px):
        _mark(levels, (beam_centre_px[0] / k, beam_centre_px[1] / k))
    text = {"Software": "nbsim",
            "Description": "log scale: grey = 254 ln(1 + %g v/top)/ln(1 + %g), top = %s "
                           "photons (white); red cross: beam centre" % (LOG_GAIN, LOG_GAIN,
                                                                         repr(float(top))),
            "Reduction": "%d (each pixel the maximum of %dx%d detector pixels)" % (k, k, k)}
    if beam_centre_px is not None:
        text["Beam centre (fast, slow) px"] = "%r %r" % tuple(float(c) for c in beam_centre_px)
    return encode_png(levels, palette=_palette(), text=text, level=1), top


def write_preview_png(path, image, beam_centre_px=None, top=None, rendered=None):
    """Write :func:`preview_png` to ``path`` atomically; returns the top used."""
    data, used = preview_png(image, beam_centre_px, top, rendered)
    atomic_write_bytes(path, data)
    return used
