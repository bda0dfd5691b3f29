"""Image readers, difference metrics, statistics-line parsing and a PNG writer.

These are the pure (no subprocess, no file-system walking) parts of ``nb-compare``;
see :mod:`nbsim.compare` for the command itself.  Everything here works on numpy
arrays or bytes so it can be tested on small hand-made inputs.

Conventions
-----------
* Images are 2-D arrays indexed ``[slow, fast]``: row = slow pixel index (y), column
  = fast pixel index (x), the order nanoBragg writes them in.
* A region of interest is ``(xmin, xmax, ymin, ymax)`` in 0-based pixel indices,
  **inclusive** at both ends (the same meaning as nanoBragg's ``-roi`` flag), with x
  along the fast axis and y along the slow axis.
"""
from __future__ import annotations

import math
import re
import struct
import zlib

import numpy as np

__all__ = [
    "SMV_MAGIC",
    "parse_smv_header",
    "read_smv",
    "read_pgm",
    "read_float_image",
    "roi_slices",
    "image_metrics",
    "relative_difference",
    "parse_stats",
    "parse_pixel_count",
    "STAT_NAMES",
    "encode_png",
    "write_png",
    "preview_pair",
    "preview_diff",
    "figure_png",
    "preview_figures",
]

SMV_MAGIC = b"{\nHEADER_BYTES="


# ---------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------

def parse_smv_header(raw: bytes) -> dict | None:
    """Return the ``KEY=VALUE;`` pairs of an SMV header, or None if ``raw`` is not SMV.

    The header is the text between the opening ``{`` and the first ``}``; the
    returned dict maps upper-case keys to their (stripped) string values.
    """
    if not raw.startswith(b"{") or b"HEADER_BYTES" not in raw[:64]:
        return None
    end = raw.find(b"}")
    if end < 0:
        return None
    text = raw[1:end].decode("latin-1")
    fields = {}
    for item in text.split(";"):
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        fields[key.strip().upper()] = value.strip()
    if "HEADER_BYTES" not in fields:
        return None
    return fields


def read_smv(raw: bytes):
    """Split an SMV file into ``(header_bytes, data_array, fields)``.

    Returns None when the file is not a readable unsigned-short SMV image (unknown
    type, or a data block of the wrong length).
    """
    fields = parse_smv_header(raw)
    if fields is None:
        return None
    try:
        header_len = int(fields["HEADER_BYTES"])
        fast = int(fields["SIZE1"])
        slow = int(fields["SIZE2"])
    except (KeyError, ValueError):
        return None
    if fields.get("TYPE", "unsigned_short").lower() != "unsigned_short":
        return None
    order = fields.get("BYTE_ORDER", "little_endian").lower()
    dtype = np.dtype(">u2" if order.startswith("big") else "<u2")
    nbytes = fast * slow * dtype.itemsize
    if header_len < 0 or len(raw) < header_len + nbytes:
        return None
    data = np.frombuffer(raw, dtype=dtype, count=fast * slow, offset=header_len)
    return raw[:header_len], data.reshape(slow, fast), fields


def read_pgm(raw: bytes):
    """Split a binary (P5, 8-bit) PGM into ``(header_bytes, data_array)`` or None."""
    if not raw.startswith(b"P5"):
        return None
    pos = 2
    tokens = []
    n = len(raw)
    while len(tokens) < 3:
        while pos < n and raw[pos:pos + 1].isspace():
            pos += 1
        if pos >= n:
            return None
        if raw[pos:pos + 1] == b"#":
            while pos < n and raw[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < n and not raw[pos:pos + 1].isspace():
            pos += 1
        tokens.append(raw[start:pos])
    pos += 1  # the single whitespace byte after the maximum value
    try:
        width, height, maxval = (int(t) for t in tokens)
    except ValueError:
        return None
    if maxval > 255 or len(raw) < pos + width * height:
        return None
    data = np.frombuffer(raw, dtype=np.uint8, count=width * height, offset=pos)
    return raw[:pos], data.reshape(height, width)


def read_float_image(raw: bytes, shape=None):
    """Raw native-order float32 data, reshaped to ``shape`` (slow, fast) if it fits.

    Returns ``(array, shape_used)``; ``shape_used`` is None (and the array flat) when
    no shape was given or the byte count does not match it.
    """
    count = len(raw) // 4
    data = np.frombuffer(raw, dtype=np.float32, count=count)
    if shape is not None and len(raw) == 4 * shape[0] * shape[1]:
        return data.reshape(shape), tuple(shape)
    return data, None


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------

def roi_slices(shape, roi):
    """Clip an inclusive ``(xmin, xmax, ymin, ymax)`` ROI to a (slow, fast) shape.

    Returns ``(slow_slice, fast_slice)``, or None if the ROI does not overlap the
    image.  ``roi=None`` means the whole image.
    """
    slow, fast = shape
    if roi is None:
        return slice(0, slow), slice(0, fast)
    xmin, xmax, ymin, ymax = (int(v) for v in roi)
    x0, x1 = max(xmin, 0), min(xmax, fast - 1)
    y0, y1 = max(ymin, 0), min(ymax, slow - 1)
    if x0 > x1 or y0 > y1:
        return None
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def relative_difference(a, b):
    """Elementwise ``|a-b| / max(|a|, |b|)``, defined as 0 where both are 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float64)
    np.divide(diff, scale, out=out, where=scale > 0)
    return out


def image_metrics(ref, new, roi=None):
    """Difference metrics between a reference image and an nbsim image.

    ``ref`` and ``new`` must have the same shape (2-D ``[slow, fast]``, or 1-D when
    the shape is unknown; ``roi`` is ignored for 1-D data).  Values are compared as
    float64.  Returns a dict (all plain Python numbers, JSON-ready):

    ``n_pixels``            pixels compared (inside the ROI)
    ``n_differing``         pixels whose values are not equal (NaN equals NaN)
    ``n_nonfinite_mismatch``pixels where the two disagree on being finite, or are
                            different non-finite values
    ``nonfinite_reference`` / ``nonfinite_nbsim``  non-finite pixel counts
    ``max_abs_diff``        max ``|new-ref|`` over pixels finite in both
    ``max_rel_diff``        max ``|new-ref| / max(|ref|,|new|)`` (0 where both are 0)
    ``rmse``                sqrt of the mean squared difference (finite pixels)
    ``pearson_r``           correlation coefficient; 1.0 for identical images, null
                            when undefined (a constant image that differs)
    ``sum_reference`` / ``sum_nbsim``  sums over finite pixels
    ``sum_ratio``           ``sum_nbsim / sum_reference``; 1.0 when both are 0, null
                            when only the reference sums to 0
    ``roi``                 the clipped ``[xmin, xmax, ymin, ymax]`` used (null when
                            the whole image or 1-D)

    Raises ValueError if the shapes differ or the ROI misses the image.
    """
    a = np.asarray(ref)
    b = np.asarray(new)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    used_roi = None
    if a.ndim == 2 and roi is not None:
        sl = roi_slices(a.shape, roi)
        if sl is None:
            raise ValueError(f"ROI {list(roi)} does not overlap the {a.shape[1]}x{a.shape[0]} image")
        a = a[sl]
        b = b[sl]
        used_roi = [sl[1].start, sl[1].stop - 1, sl[0].start, sl[0].stop - 1]
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    n = int(a.size)
    fa = np.isfinite(a)
    fb = np.isfinite(b)
    both = fa & fb
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    nonfinite_mismatch = ~both & ~same
    af = a[both]
    bf = b[both]
    if af.size:
        diff = bf - af
        max_abs = float(np.max(np.abs(diff)))
        max_rel = float(np.max(relative_difference(af, bf)))
        rmse = float(np.sqrt(np.mean(diff * diff)))
    else:
        max_abs = max_rel = rmse = 0.0 if n == 0 else None
    sum_a = float(np.sum(af))
    sum_b = float(np.sum(bf))
    if sum_a != 0.0:
        ratio = sum_b / sum_a
    elif sum_b == 0.0:
        ratio = 1.0
    else:
        ratio = None
    pearson = None
    if af.size and np.array_equal(af, bf):
        pearson = 1.0
    elif af.size > 1:
        da = af - af.mean()
        db = bf - bf.mean()
        denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
        if denom > 0:
            pearson = float(np.dot(da, db)) / denom
    return {
        "n_pixels": n,
        "n_differing": int(np.count_nonzero(~same)),
        "n_nonfinite_mismatch": int(np.count_nonzero(nonfinite_mismatch)),
        "nonfinite_reference": int(np.count_nonzero(~fa)),
        "nonfinite_nbsim": int(np.count_nonzero(~fb)),
        "max_abs_diff": _finite_or_none(max_abs),
        "max_rel_diff": _finite_or_none(max_rel),
        "rmse": _finite_or_none(rmse),
        "pearson_r": _finite_or_none(pearson),
        "sum_reference": _finite_or_none(sum_a),
        "sum_nbsim": _finite_or_none(sum_b),
        "sum_ratio": _finite_or_none(ratio),
        "roi": used_roi,
    }


# ---------------------------------------------------------------------------
# stdout statistics lines
# ---------------------------------------------------------------------------

_NUM = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf(?:inity)?|nan(?:\([^)]*\))?)"

# name -> regex over one line; every captured group is a number
_STAT_PATTERNS = {
    "max_I": re.compile(rf"^\s*max_I\s*=\s*({_NUM})\s+at\s+({_NUM})\s+({_NUM})\s*$", re.I),
    "mean_rms_rmsd": re.compile(
        rf"^\s*mean\s*=\s*({_NUM})\s+rms\s*=\s*({_NUM})\s+rmsd\s*=\s*({_NUM})\s*$", re.I),
    "intfile_scale": re.compile(rf"^\s*intfile_scale\s*=\s*({_NUM})\s*$", re.I),
    "pgm_scale": re.compile(rf"^\s*pgm_scale\s*=\s*({_NUM})\s*$", re.I),
    "noise_photons": re.compile(
        rf"^\s*({_NUM})\s+photons on noise image\s*\(\s*({_NUM})\s+overloads\s*\)\s*$", re.I),
}

STAT_NAMES = tuple(_STAT_PATTERNS)


def _to_float(token: str) -> float:
    token = token.strip().lower()
    if token.lstrip("+-").startswith("nan"):
        return float("nan")
    return float(token)


def parse_stats(text: str) -> dict:
    """Find the statistics lines nanoBragg prints at the end of a run.

    Returns ``{name: {"line": str, "values": [float, ...]}}`` for each of
    :data:`STAT_NAMES` found (``max_I``: value, x, y; ``mean_rms_rmsd``: mean, rms,
    rmsd; ``intfile_scale``; ``pgm_scale``; ``noise_photons``: photons, overloads).
    When a line occurs more than once the last one wins.
    """
    found = {}
    for line in text.splitlines():
        for name, pattern in _STAT_PATTERNS.items():
            m = pattern.match(line)
            if m:
                found[name] = {"line": line.strip(), "values": [_to_float(g) for g in m.groups()]}
                break
    return found


_PIXELS_RE = re.compile(r"\((\d+)x(\d+) pixels\)")


def parse_pixel_count(text: str):
    """``(fast, slow)`` from the ``(FxS pixels)`` note nanoBragg prints, or None."""
    m = None
    for m in _PIXELS_RE.finditer(text):
        pass
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2))


# ---------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(image) -> bytes:
    """Encode an 8-bit image as PNG bytes.

    ``image`` is a uint8 array of shape (height, width) for grey, or
    (height, width, 3) for RGB.  Rows use filter type 0 (none).
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError("encode_png needs a uint8 array")
    if arr.ndim == 2:
        color_type, channels = 0, 1
    elif arr.ndim == 3 and arr.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"encode_png needs (h, w) or (h, w, 3), got {arr.shape}")
    height, width = arr.shape[:2]
    if height < 1 or width < 1:
        raise ValueError("encode_png needs a non-empty image")
    rows = np.ascontiguousarray(arr).reshape(height, width * channels)
    raw = np.empty((height, width * channels + 1), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = rows
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _chunk(b"IEND", b""))


def write_png(path, image) -> None:
    """Write :func:`encode_png` output to ``path``."""
    with open(path, "wb") as fh:
        fh.write(encode_png(image))


_LOG_GAIN = 1000.0


def _log_scale(values, top):
    """Map ``[0, top]`` to ``[0, 255]`` on a log1p curve; negatives and NaN go to 0."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=top, neginf=0.0)
    if not top > 0:
        return np.zeros(v.shape, dtype=np.uint8)
    t = np.clip(v / top, 0.0, 1.0)
    return np.round(255.0 * np.log1p(_LOG_GAIN * t) / math.log1p(_LOG_GAIN)).astype(np.uint8)


def _robust_top(*arrays):
    tops = []
    for arr in arrays:
        finite = np.asarray(arr, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            top = float(np.percentile(finite, 99.9))
            if not top > 0:
                top = float(finite.max())
            tops.append(top)
    return max(tops) if tops else 0.0


def preview_pair(ref, new):
    """Grey previews of two images on one shared log-ish intensity scale.

    The scale's top is the larger 99.9th percentile of the two (or the maximum if that
    is not positive), so bright Bragg spots saturate but weak ones stay visible.
    """
    top = _robust_top(ref, new)
    return _log_scale(ref, top), _log_scale(new, top)


def preview_diff(ref, new):
    """RGB preview of ``new - ref``: red where nbsim is higher, blue where lower.

    Brightness is log-ish in ``|new - ref|`` relative to its maximum; an all-black
    picture means no difference at all.
    """
    d = np.asarray(new, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    d = np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(np.max(np.abs(d))) if d.size else 0.0
    mag = _log_scale(np.abs(d), top)
    rgb = np.zeros(d.shape + (3,), dtype=np.uint8)
    rgb[..., 0] = np.where(d > 0, mag, 0)
    rgb[..., 2] = np.where(d < 0, mag, 0)
    return rgb


# ---------------------------------------------------------------------------
# labelled figures (title, colour bar, axes) for nb-compare's PNGs
# ---------------------------------------------------------------------------

def _grey_bar():
    """Colour-bar colours (bottom to top) and ticks of :func:`_log_scale`."""
    pos = np.linspace(0.0, 1.0, 256)
    grey = np.round(255.0 * pos).astype(np.uint8)
    return np.stack([grey, grey, grey], axis=1)


def _log_position(fraction):
    """Where ``value = fraction * top`` sits on the log1p scale (0..1)."""
    return math.log1p(_LOG_GAIN * fraction) / math.log1p(_LOG_GAIN)


def _diff_bar():
    """Blue (nbsim lower) .. black .. red (nbsim higher), bottom to top."""
    pos = np.linspace(-1.0, 1.0, 256)
    mag = np.round(255.0 * np.abs(pos)).astype(np.uint8)
    rgb = np.zeros((256, 3), dtype=np.uint8)
    rgb[:, 0] = np.where(pos > 0, mag, 0)
    rgb[:, 2] = np.where(pos < 0, mag, 0)
    return rgb


def _fmt(x):
    return "0" if x == 0 else "%.3g" % x


def figure_png(image, title, bar_colours, bar_ticks, bar_label, min_size=480):
    """PNG bytes of ``image`` (uint8 grey (h, w) or RGB (h, w, 3), rows = slow) with a
    title above, pixel-index axes (fast across, slow down) and a colour bar.

    ``bar_colours``: (n, 3) uint8 colours from the bottom of the bar to the top;
    ``bar_ticks``: [(position 0..1 from the bottom, label)]. Small images are enlarged
    by a whole factor (nearest neighbour) to at least ``min_size`` pixels across.
    The PNG's "image_box" text gives "left top width height zoom" of the picture.
    Needs Pillow (for the lettering)."""
    from PIL import Image, ImageDraw, ImageFont

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    h, w = arr.shape[:2]
    zoom = max(1, min_size // max(h, w))
    if zoom > 1:
        arr = np.repeat(np.repeat(arr, zoom, axis=0), zoom, axis=1)
    ih, iw = arr.shape[:2]
    size = max(12, min(28, max(ih, iw) // 40))
    font = ImageFont.load_default(size=size)
    big = ImageFont.load_default(size=int(size * 1.3))
    pad = size
    bar_w = max(12, size)
    left = pad + 3 * size            # room for the slow-axis label and tick labels
    top = pad + 2 * big.size
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max([measure.textlength(t, font=font) for _p, t in bar_ticks] + [0.0]) + 10
    label_w = int(max(label_w, measure.textlength(bar_label, font=font) - bar_w))
    width = max(left + iw + pad + bar_w + label_w + pad,
                left + int(measure.textlength(title, font=big)) + pad)
    height = top + ih + 3 * size + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(np.ascontiguousarray(arr), "RGB"), (left, top))
    draw = ImageDraw.Draw(canvas)
    black = (0, 0, 0)
    draw.text((left, pad // 2), title, fill=black, font=big)
    draw.rectangle((left - 1, top - 1, left + iw, top + ih), outline=black)
    # axes: pixel indices at the ends, fast across, slow down (as the files store them)
    draw.text((left, top + ih + 2), "0", fill=black, font=font)
    draw.text((left + iw, top + ih + 2), str(w - 1), fill=black, font=font, anchor="ra")
    draw.text((left + iw // 2, top + ih + 2), "fast pixel index", fill=black, font=font,
              anchor="ma")
    draw.text((left - 4, top), "0", fill=black, font=font, anchor="ra")
    draw.text((left - 4, top + ih), str(h - 1), fill=black, font=font, anchor="rd")
    slow = Image.new("RGB", (ih, size + 4), (255, 255, 255))
    ImageDraw.Draw(slow).text((ih // 2, 0), "slow pixel index", fill=black, font=font,
                              anchor="ma")
    canvas.paste(slow.rotate(-90, expand=True), (pad // 2, top))
    # colour bar
    colours = np.asarray(bar_colours, dtype=np.uint8)
    rows = np.linspace(len(colours) - 1, 0, ih).round().astype(int)
    strip = np.repeat(colours[rows][:, None, :], bar_w, axis=1)
    bx = left + iw + pad
    canvas.paste(Image.fromarray(np.ascontiguousarray(strip), "RGB"), (bx, top))
    draw.rectangle((bx - 1, top - 1, bx + bar_w, top + ih), outline=black)
    for position, text in bar_ticks:
        y = top + int(round((1.0 - position) * (ih - 1)))
        draw.line((bx + bar_w, y, bx + bar_w + 4, y), fill=black)
        draw.text((bx + bar_w + 6, y), text, fill=black, font=font, anchor="lm")
    draw.text((bx, top + ih + 2), bar_label, fill=black, font=font)
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    # where the picture is, for scripts (and tests) that want its pixels back
    info.add_text("image_box", "%d %d %d %d %d" % (left, top, iw, ih, zoom))
    info.add_text("Title", title)
    buffer = __import__("io").BytesIO()
    canvas.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def preview_figures(ref, new, name="floatimage.bin"):
    """{"reference.png", "nbsim.png", "diff.png"} -> PNG bytes: the two images on
    one shared log scale and their difference, each titled and with a colour bar."""
    top = _robust_top(ref, new)
    pa, pb = _log_scale(ref, top), _log_scale(new, top)
    ticks = [(0.0, "0")] + [(_log_position(f), _fmt(f * top)) for f in (0.001, 0.01, 0.1, 1.0)
                            if top > 0]
    d = np.asarray(new, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    d = np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)
    dmax = float(np.max(np.abs(d))) if d.size else 0.0
    dticks = [(0.5, "0")]
    if dmax > 0:
        for f in (0.01, 1.0):
            p = 0.5 * _log_position(f)
            dticks += [(0.5 + p, "+" + _fmt(f * dmax)), (0.5 - p, "-" + _fmt(f * dmax))]
    unit = "%s value (log scale)" % name
    return {
        "reference.png": figure_png(pa, "reference: %s" % name, _grey_bar(), ticks, unit),
        "nbsim.png": figure_png(pb, "nbsim: %s" % name, _grey_bar(), ticks, unit),
        "diff.png": figure_png(
            preview_diff(ref, new),
            "nbsim - reference: %s (%s)" % (name, "identical" if dmax == 0 else
                                             "max |diff| %s" % _fmt(dmax)),
            _diff_bar(), dticks, "red: nbsim higher, blue: lower"),
    }
