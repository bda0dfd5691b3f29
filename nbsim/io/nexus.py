"""NeXus/NXmx HDF5 output (``-nexusfile``), written with h5py.

The file follows the NXmx application definition, in the McStas frame NeXus uses
(z along the beam, y up; see :mod:`nbsim.experiment`):

    /entry                      NXentry, definition = "NXmx"
      data/data                 frames [n, slow, fast] (the signal)
      instrument/beam           NXbeam: incident_wavelength, total_flux, beam size
      instrument/detector       NXdetector: distance, beam_center_x/y (pixels),
                                pixel sizes, sensor, saturation/underload, data (link)
        transformations/        two_theta (rotation) <- det_z (translation along the
                                detector normal) <- module/module_offset (in-plane,
                                to the outer corner of the first pixel)
        module                  NXdetector_module: fast/slow_pixel_direction
      sample                    NXsample: depends_on the φ axis
        transformations/phi     rotation, one angle per frame, phi_end, increment_set

A reader multiplies the chain out (nxmx.get_cumulative_transformation) and gets the
Plan's pix0 and fast/slow axes; the values are stored in SI units or degrees, not
rounded.

The frames can live in the file (:func:`write_nxmx`), or in separate data files that a
master file maps with an HDF5 virtual dataset (:func:`write_nxmx_data_file` per frame
or block, then :func:`write_nxmx_master`), the layout Eiger detectors write. Data are
compressed with Bitshuffle/LZ4 through hdf5plugin when it is installed (what DIALS
reads natively; a plain h5py reader then needs ``import hdf5plugin``), with gzip
otherwise. Files are written to a temporary name and renamed (nothing half-written).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import NbsimError
from .atomic import atomic_path

__all__ = ["DataInfo", "require_h5py", "write_nxmx", "write_nxmx_frames",
           "write_nxmx_data_file", "write_nxmx_master", "data_info", "DATA_PATH"]

DATA_PATH = "/entry/data/data"
_CHUNK_BYTES = 1 << 24     # chunks of at most 16 MB: a 2048² float frame is one chunk


@dataclass(frozen=True)
class DataInfo:
    """What the stored numbers mean: NXdetector's trusted range and NXdata's
    correction to photons, corrected = (data + offset) * scale_factor."""
    description: str
    saturation_value: Optional[int] = None
    underload_value: Optional[int] = None
    offset: float = 0.0
    scale_factor: float = 1.0


def data_info(kind, adc_offset=40.0, intfile_scale=1.0) -> DataInfo:
    """The DataInfo of nbsim's images: ``float`` (photons, float32), ``int`` (the SMV
    int image: photons x intfile_scale + ADC offset, 16 bits) or ``noise`` (the
    noise image: Poisson photon counts + ADC offset, 16 bits)."""
    if kind == "float":
        return DataInfo("expected photons per pixel (float32)", underload_value=-1)
    if kind == "int":
        scale = 1.0 / intfile_scale if intfile_scale else 1.0
        return DataInfo("photons x intfile_scale + ADC offset, clipped to 16 bits",
                        saturation_value=65535, underload_value=-1,
                        offset=-adc_offset, scale_factor=scale)
    if kind == "noise":
        return DataInfo("Poisson photon counts + ADC offset, clipped to 16 bits",
                        saturation_value=65535, underload_value=-1, offset=-adc_offset)
    raise ValueError("unknown data kind %r" % (kind,))


def require_h5py(flag="-nexusfile"):
    """h5py, or a one-line error naming the package and the pip command."""
    from . import require
    return require("h5py", flag)


def _compression():
    """h5py dataset keywords: Bitshuffle/LZ4 via hdf5plugin, else gzip with shuffle."""
    try:
        import hdf5plugin
    except ImportError:
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    return dict(hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))


def _chunks(shape, itemsize):
    slow, fast = shape[-2:]
    rows = max(1, min(slow, _CHUNK_BYTES // max(1, fast * itemsize)))
    return (1, rows, fast)


def _frames_array(frames):
    arr = np.asarray(frames) if not isinstance(frames, (list, tuple)) else np.stack(frames)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1] < 1 or arr.shape[2] < 1:
        raise ValueError("NXmx frames must be [frames, slow, fast], got shape %s" % (arr.shape,))
    return np.ascontiguousarray(arr)


def _dataset(group, name, value, units=None, **attrs):
    ds = group.create_dataset(name, data=value)
    if units is not None:
        ds.attrs["units"] = units
    for key, val in attrs.items():
        ds.attrs[key] = val
    return ds


def _group(parent, name, nx_class):
    g = parent.create_group(name)
    g.attrs["NX_class"] = nx_class
    return g


def _axis(group, name, value, kind, vector, depends_on, units, offset=None, **extra):
    """An NXtransformations axis (a dataset with transformation attributes)."""
    ds = group.create_dataset(name, data=value)
    ds.attrs["transformation_type"] = kind
    ds.attrs["vector"] = np.asarray(vector, dtype=np.float64)
    ds.attrs["units"] = units
    ds.attrs["depends_on"] = depends_on
    if offset is not None:
        ds.attrs["offset"] = np.asarray(offset, dtype=np.float64)
        ds.attrs["offset_units"] = "m"
    for key, val in extra.items():
        ds.attrs[key] = val
    return ds


def _write_metadata(f, model, scan, info, frame_shape):
    """Everything but the data: entry, instrument, detector chain, beam, sample."""
    m = model.in_frame(model.lab_to_mcstas())   # every vector below is McStas
    f.attrs["default"] = "entry"
    entry = _group(f, "entry", "NXentry")
    entry.attrs["default"] = "data"
    _dataset(entry, "definition", "NXmx")
    source = _group(entry, "source", "NXsource")
    _dataset(source, "name", "nbsim simulation")

    instrument = _group(entry, "instrument", "NXinstrument")
    _dataset(instrument, "name", "nbsim (nanoBragg) simulated instrument")
    beam = _group(instrument, "beam", "NXbeam")
    _dataset(beam, "incident_wavelength", model.wavelength * 1e10, "angstrom")
    if model.flux > 0.0:
        _dataset(beam, "total_flux", model.flux, "Hz")
    if model.beamsize > 0.0:
        _dataset(beam, "incident_beam_size", np.array([model.beamsize, model.beamsize]), "m")

    det = _group(instrument, "detector", "NXdetector")
    slow, fast = frame_shape
    _dataset(det, "description", "nbsim simulated pixel-array detector (%s convention%s)"
             % (model.convention, ", curved: written as flat" if model.curved else ""))
    _dataset(det, "type", "pixel")
    _dataset(det, "x_pixel_size", model.pixel_size, "m")
    _dataset(det, "y_pixel_size", model.pixel_size, "m")
    # nanoBragg has no sensor material; DIALS needs a known one for its parallax
    # model, and "Si" with the -detector_thick thickness is what a PAD would be
    _dataset(det, "sensor_material", "Si")
    _dataset(det, "sensor_thickness", model.sensor_thickness, "m")
    _dataset(det, "count_time", model.exposure, "s")
    _dataset(det, "frame_time", model.exposure, "s")
    _dataset(det, "data_description", info.description)
    if info.saturation_value is not None:
        _dataset(det, "saturation_value", np.int64(info.saturation_value))
    if info.underload_value is not None:
        _dataset(det, "underload_value", np.int64(info.underload_value))
    centre = model.beam_centre_px
    if centre is not None:
        _dataset(det, "beam_center_x", centre[0], "pixel")
        _dataset(det, "beam_center_y", centre[1], "pixel")
        _dataset(det, "distance", model.distance, "m")
        _dataset(det, "distance_derived", True)

    # Detector chain. The two-theta arm rotates last; before it the detector sits
    # at the inner (un-two-theta'd) position: along its normal by the close distance,
    # then in its plane to the corner of the first pixel.
    tr = _group(det, "transformations", "NXtransformations")
    base = "/entry/instrument/detector/transformations/"
    _axis(tr, "two_theta", math.degrees(m.twotheta), "rotation", m.twotheta_axis, ".", "deg")
    pix0 = m.without_twotheta(m.pix0)
    normal = m.without_twotheta(m.odet)
    close = float(np.dot(pix0, normal))
    _axis(tr, "det_z", close, "translation", normal, base + "two_theta", "m")
    det["depends_on"] = base + "det_z"
    in_plane = pix0 - close * normal
    length = float(np.linalg.norm(in_plane))
    module = _group(det, "module", "NXdetector_module")
    _dataset(module, "data_origin", np.array([0, 0], dtype=np.int64))
    _dataset(module, "data_size", np.array([slow, fast], dtype=np.int64))
    _dataset(module, "data_stride", np.array([1, 1], dtype=np.int64))
    mod = "/entry/instrument/detector/module/"
    _axis(module, "module_offset", length, "translation",
          in_plane / length if length > 0.0 else m.without_twotheta(m.fdet),
          base + "det_z", "m")
    _axis(module, "fast_pixel_direction", model.pixel_size, "translation",
          m.without_twotheta(m.fdet), mod + "module_offset", "m",
          offset=(0.0, 0.0, 0.0))
    _axis(module, "slow_pixel_direction", model.pixel_size, "translation",
          m.without_twotheta(m.sdet), mod + "module_offset", "m",
          offset=(0.0, 0.0, 0.0))

    sample = _group(entry, "sample", "NXsample")
    _dataset(sample, "name", "nbsim crystal")
    gonio = _group(sample, "transformations", "NXtransformations")
    starts = scan.starts()
    _axis(gonio, scan.axis, starts, "rotation", m.spindle, ".", "deg")
    _dataset(gonio, scan.axis + "_end", scan.ends(), "deg")
    _dataset(gonio, scan.axis + "_increment_set", float(scan.increment), "deg")
    sample["depends_on"] = "/entry/sample/transformations/" + scan.axis
    sample["beam"] = beam      # a hard link: older NXmx readers look for NXbeam here

    data = _group(entry, "data", "NXdata")
    data.attrs["signal"] = "data"
    if info.offset != 0.0:
        _dataset(data, "data_offset", info.offset)
    if info.scale_factor != 1.0:
        _dataset(data, "data_scale_factor", info.scale_factor)
    return data, det


def _check(model, scan, nframes):
    if scan.frames != nframes:
        raise ValueError("the scan has %d frames but %d were given" % (scan.frames, nframes))
    for name in ("pixel_size", "wavelength", "twotheta", "exposure"):
        if not math.isfinite(getattr(model, name)):
            raise NbsimError("-nexusfile: %s is not a finite number" % name)


def write_nxmx(path, model, frames, scan=None, info: Optional[DataInfo] = None):
    """One NXmx file holding ``frames`` ([n, slow, fast], or one 2-D frame).

    ``scan`` defaults to the model's own φ range (n frames of ``osc`` each);
    ``info`` to float photons."""
    h5py = require_h5py()
    arr = _frames_array(frames)
    scan = scan or model.scan(frames=arr.shape[0])
    info = info or data_info("float")
    _check(model, scan, arr.shape[0])
    with atomic_path(path) as scratch, h5py.File(scratch, "w") as f:
        data, det = _write_metadata(f, model, scan, info, arr.shape[1:])
        ds = data.create_dataset("data", data=arr, chunks=_chunks(arr.shape, arr.itemsize),
                                 **_compression())
        det["data"] = ds


def write_nxmx_frames(path, model, frames, scan, frame_shape, dtype,
                      info: Optional[DataInfo] = None):
    """One NXmx file like :func:`write_nxmx`, its frames taken one at a time from the
    iterable ``frames`` (2-D arrays of ``frame_shape`` and ``dtype``, ``scan.frames``
    of them), so that a scan larger than memory can be stacked. Nothing is left at
    ``path`` if the iterable raises or yields the wrong number or shape of frames."""
    h5py = require_h5py()
    slow, fast = (int(x) for x in frame_shape)
    dtype = np.dtype(dtype)
    info = info or data_info("float")
    _check(model, scan, scan.frames)
    shape = (scan.frames, slow, fast)
    with atomic_path(path) as scratch, h5py.File(scratch, "w") as f:
        data, det = _write_metadata(f, model, scan, info, (slow, fast))
        ds = data.create_dataset("data", shape=shape, dtype=dtype,
                                 chunks=_chunks(shape, dtype.itemsize), **_compression())
        det["data"] = ds
        count = 0
        for frame in frames:
            arr = np.asarray(frame)
            if count >= scan.frames or arr.shape != (slow, fast):
                raise ValueError("NXmx frame %d: shape %s, expected %d frames of %s"
                                 % (count, arr.shape, scan.frames, (slow, fast)))
            ds[count] = arr.astype(dtype, copy=False)
            count += 1
        if count != scan.frames:
            raise ValueError("the scan has %d frames but %d were given" % (scan.frames, count))


def write_nxmx_data_file(path, frames):
    """A data file of a master/data pair: ``/entry/data/data`` [n, slow, fast] only."""
    h5py = require_h5py()
    arr = _frames_array(frames)
    with atomic_path(path) as scratch, h5py.File(scratch, "w") as f:
        entry = _group(f, "entry", "NXentry")
        data = _group(entry, "data", "NXdata")
        data.create_dataset("data", data=arr, chunks=_chunks(arr.shape, arr.itemsize),
                            **_compression())


def write_nxmx_master(path, model, data_files: Sequence[str], frame_shape, dtype,
                      frames_per_file: Sequence[int] = None, scan=None,
                      info: Optional[DataInfo] = None):
    """An NXmx master whose ``/entry/data/data`` is a virtual dataset over the
    ``/entry/data/data`` of each file in ``data_files`` (in order).

    Data-file names are stored as given; give them relative to the master's folder
    (HDF5 looks for relative sources beside the master file), e.g. the bare names
    of files written next to it. ``frames_per_file`` defaults to one each."""
    h5py = require_h5py()
    frames_per_file = list(frames_per_file or [1] * len(data_files))
    if len(frames_per_file) != len(data_files) or not data_files:
        raise ValueError("write_nxmx_master needs one frame count per data file")
    total = int(sum(frames_per_file))
    slow, fast = (int(x) for x in frame_shape)
    dtype = np.dtype(dtype)
    scan = scan or model.scan(frames=total)
    info = info or data_info("float")
    _check(model, scan, total)
    layout = h5py.VirtualLayout(shape=(total, slow, fast), dtype=dtype)
    start = 0
    for name, n in zip(data_files, frames_per_file):
        source = h5py.VirtualSource(os.fspath(name), DATA_PATH, shape=(n, slow, fast),
                                    dtype=dtype)
        layout[start:start + n] = source
        start += n
    with atomic_path(path) as scratch, \
            h5py.File(scratch, "w", libver=("v110", "latest")) as f:
        data, det = _write_metadata(f, model, scan, info, (slow, fast))
        ds = data.create_virtual_dataset("data", layout, fillvalue=0)
        det["data"] = ds
