"""nbsim.io.nexus: NXmx files read back with the DIALS team's nxmx reader.

The geometry is derived from the file the way dxtbx builds a flat detector from
NXmx (dxtbx/nexus/__init__.py, get_dxtbx_detector): the panel origin is the
translation of the cumulative transformation of the chain that
fast_pixel_direction depends on, and the fast/slow axes are the vectors rotated by
the rotations of that chain. Everything is compared with the Plan's own vectors.
"""
import math
import os
import sys

import numpy as np
import pytest

from geometry_cases import CASES, IDS, model_for
from nbsim.errors import NbsimError
from nbsim.experiment import Scan

h5py = pytest.importorskip("h5py", reason="h5py is a declared dependency of nbsim")
nxmx = pytest.importorskip("nxmx", reason="nxmx (the DIALS NXmx reader) is installed by "
                                          "the README's test command and .ci/run")

from nbsim.io import nexus  # noqa: E402

REL = 1e-9


def close(a, b, rel=REL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.linalg.norm(a - b) <= rel * max(np.linalg.norm(b), 1e-300)


def read_geometry(path):
    """What a reader derives from the file with nxmx (McStas frame, metres)."""
    with h5py.File(path, "r") as f:
        entry = nxmx.NXmx(f).entries[0]
        assert entry.definition == "NXmx"
        instrument = entry.instruments[0]
        det = instrument.detectors[0]
        module = det.modules[0]
        fast_px = module.fast_pixel_direction
        chain = nxmx.get_dependency_chain(fast_px.depends_on)
        A = nxmx.get_cumulative_transformation(chain)
        rotations = [t for t in chain if t.transformation_type == "rotation"]
        R = nxmx.get_cumulative_transformation(rotations)[0, :3, :3] if rotations else np.eye(3)
        slow_chain = nxmx.get_dependency_chain(module.slow_pixel_direction.depends_on)
        slow_rot = [t for t in slow_chain if t.transformation_type == "rotation"]
        R_s = nxmx.get_cumulative_transformation(slow_rot)[0, :3, :3] if slow_rot else np.eye(3)
        sample = entry.samples[0]
        sample_chain = nxmx.get_dependency_chain(sample.depends_on)
        axes = nxmx.get_rotation_axes(sample_chain)
        phi = sample.depends_on
        out = {
            "origin": A[0, :3, 3] / 1000.0,             # nxmx works in mm
            "fast": R @ fast_px.vector,
            "slow": R_s @ module.slow_pixel_direction.vector,
            "pixel_fast": fast_px[()].to("m").magnitude.item(),
            "pixel_slow": module.slow_pixel_direction[()].to("m").magnitude.item(),
            "size": tuple(int(x) for x in module.data_size),
            "wavelength": instrument.beams[0].incident_wavelength.to("m").magnitude.item(),
            "beam_center": (det.beam_center_x.to("pixel").magnitude.item(),
                            det.beam_center_y.to("pixel").magnitude.item()),
            "distance": det.distance.to("m").magnitude.item(),
            "spindle": axes.axes[0],
            "phi": phi[()].to("deg").magnitude,
            "phi_end": phi.end[()].to("deg").magnitude if phi.end is not None else None,
            "saturation": det.saturation_value,
            "underload": det.underload_value,
            "data": f["/entry/data/data"][()],
            "frame_time": det.frame_time.to("s").magnitude.item(),
        }
    return out


def beam_centre_of(geo):
    """Where the beam (McStas +z from the sample) meets the panel, in pixels, and
    the distance along the beam."""
    normal = np.cross(geo["fast"], geo["slow"])
    t = np.dot(geo["origin"], normal) / normal[2]
    rel = np.array([0.0, 0.0, t]) - geo["origin"]
    return (np.dot(rel, geo["fast"]) / geo["pixel_fast"],
            np.dot(rel, geo["slow"]) / geo["pixel_slow"]), t


@pytest.mark.parametrize("extra", [c[1] for c in CASES], ids=IDS)
def test_nxmx_geometry_equals_the_plan(tmp_path, extra):
    plan, model = model_for(extra)
    g = plan.geom
    frame = np.arange(plan.spixels * plan.fpixels, dtype=np.float32).reshape(
        plan.spixels, plan.fpixels)
    path = tmp_path / "a.nxs"
    nexus.write_nxmx(path, model, frame)
    geo = read_geometry(path)
    M = model.lab_to_mcstas()
    # the file's frame is McStas: the beam along +z, a proper rotation of the lab
    assert close(M @ np.array(g.beam), [0, 0, 1])
    assert abs(np.linalg.det(M) - 1.0) < 1e-12
    assert close(geo["origin"], M @ np.array(g.pix0))
    assert close(geo["fast"], M @ np.array(g.fdet))
    assert close(geo["slow"], M @ np.array(g.sdet))
    assert geo["pixel_fast"] == geo["pixel_slow"] == plan.pixel_size
    assert geo["size"] == (plan.spixels, plan.fpixels)
    assert abs(geo["wavelength"] / plan.lambda0 - 1) < REL
    # every pixel centre where the engines put it
    for f, s in ((0, 0), (plan.fpixels - 1, 0), (3, plan.spixels - 1)):
        lab = np.array(g.pix0) + (f + 0.5) * plan.pixel_size * np.array(g.fdet) \
            + (s + 0.5) * plan.pixel_size * np.array(g.sdet)
        pos = geo["origin"] + (f + 0.5) * geo["pixel_fast"] * geo["fast"] \
            + (s + 0.5) * geo["pixel_slow"] * geo["slow"]
        assert close(pos, M @ lab)
    # beam centre and distance: derived from the axes, and as written
    centre, distance = beam_centre_of(geo)
    assert close(centre, geo["beam_center"])
    assert close(distance, geo["distance"])
    if g.twotheta == 0.0:
        # without two-theta the Plan's Fbeam/Sbeam and distance are the geometry's
        assert close(centre, (g.fbeam / plan.pixel_size, g.sbeam / plan.pixel_size))
        assert close(distance, g.distance)
    else:
        # with it, nanoBragg's printed Fbeam/Sbeam keep its pre-two-theta bookkeeping;
        # the true intersection is checked against the Plan's vectors directly
        along = np.dot(g.beam, g.odet)
        hit = np.dot(g.pix0, g.odet) / along * np.array(g.beam)
        rel = hit - np.array(g.pix0)
        assert close(centre, (np.dot(rel, g.fdet) / plan.pixel_size,
                              np.dot(rel, g.sdet) / plan.pixel_size))
        assert close(distance, np.linalg.norm(hit))
    # goniometer: the spindle, the start angle and the oscillation
    assert close(geo["spindle"], M @ np.array(g.spindle))
    assert abs(geo["phi"][0] - math.degrees(plan.phi0)) <= 1e-9 * max(1, abs(geo["phi"][0]))
    osc = geo["phi_end"][0] - geo["phi"][0]
    assert abs(osc - math.degrees(plan.osc)) < 1e-9
    assert np.array_equal(geo["data"][0], frame)
    assert geo["frame_time"] == 1.0


def test_mosflm_frame_matches_nanobraggs_dials_origin():
    """For MOSFLM the McStas frame is the one behind nanoBragg's printed "dials
    origin" (imgCIF = diag(-1, 1, -1) McStas)."""
    plan, model = model_for(CASES[1][1])
    imgcif = model.lab_to_imgcif() @ np.array(plan.geom.pix0) * 1000.0
    assert close(imgcif, plan.geom.dials_origin, 1e-12)


def test_phi_scan_of_stacked_frames(tmp_path):
    plan, model = model_for(CASES[0][1])
    shape = (4, plan.spixels, plan.fpixels)
    frames = np.random.default_rng(3).poisson(5.0, shape).astype(np.uint16)
    scan = Scan(start=-12.5, increment=0.25, frames=4)
    info = nexus.data_info("noise", adc_offset=40.0)
    nexus.write_nxmx(tmp_path / "scan.h5", model, frames, scan, info)
    geo = read_geometry(tmp_path / "scan.h5")
    assert np.allclose(geo["phi"], [-12.5, -12.25, -12.0, -11.75], rtol=0, atol=1e-12)
    assert np.allclose(geo["phi_end"], geo["phi"] + 0.25, rtol=0, atol=1e-12)
    assert np.array_equal(geo["data"], frames) and geo["data"].dtype == np.uint16
    assert (geo["saturation"], geo["underload"]) == (65535, -1)
    with h5py.File(tmp_path / "scan.h5", "r") as f:
        data = nxmx.NXmx(f).entries[0].data[0]
        assert data.signal == "data"
        assert data.data_offset == -40.0
        incr = f["/entry/sample/transformations/phi_increment_set"]
        assert incr[()] == 0.25 and incr.attrs["units"] == "deg"
    with pytest.raises(ValueError, match="4 frames"):
        nexus.write_nxmx(tmp_path / "bad.h5", model, frames[:3], scan)


def test_int_image_says_how_to_get_photons(tmp_path):
    plan, model = model_for(CASES[0][1])
    frame = np.full((plan.spixels, plan.fpixels), 140, np.uint16)
    nexus.write_nxmx(tmp_path / "i.h5", model, frame,
                     info=nexus.data_info("int", adc_offset=40.0, intfile_scale=50.0))
    with h5py.File(tmp_path / "i.h5", "r") as f:
        data = nxmx.NXmx(f).entries[0].data[0]
        photons = (f["/entry/data/data"][0] + data.data_offset) * data.data_scale_factor
    assert np.allclose(photons, 2.0)


def test_master_with_virtual_dataset_over_frame_files(tmp_path, monkeypatch):
    plan, model = model_for(CASES[2][1])
    rng = np.random.default_rng(5)
    frames = rng.random((5, plan.spixels, plan.fpixels)).astype(np.float32)
    # one file per frame for the first three, one file for the last two
    names = ["scan_00000.h5", "scan_00001.h5", "scan_00002.h5", "scan_rest.h5"]
    for i, name in enumerate(names[:3]):
        nexus.write_nxmx_data_file(tmp_path / name, frames[i])
    nexus.write_nxmx_data_file(tmp_path / names[3], frames[3:])
    scan = Scan(start=5.0, increment=0.25, frames=5)
    nexus.write_nxmx_master(tmp_path / "scan_master.h5", model, names,
                            (plan.spixels, plan.fpixels), np.float32, [1, 1, 1, 2], scan)
    # read from another folder: the sources are found beside the master file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    geo = read_geometry(tmp_path / "scan_master.h5")
    assert np.array_equal(geo["data"], frames)
    assert np.allclose(geo["phi"], [5.0, 5.25, 5.5, 5.75, 6.0], rtol=0, atol=1e-12)
    assert close(geo["origin"], model.lab_to_mcstas() @ np.array(plan.geom.pix0))
    with h5py.File(tmp_path / "scan_master.h5", "r") as f:
        assert f["/entry/data/data"].is_virtual
    with pytest.raises(ValueError, match="one frame count"):
        nexus.write_nxmx_master(tmp_path / "m.h5", model, names, (1, 1), np.float32, [1])


def test_compression_with_and_without_hdf5plugin(tmp_path, monkeypatch):
    plan, model = model_for(CASES[0][1])
    frame = np.random.default_rng(1).random((plan.spixels, plan.fpixels)).astype(np.float32)
    try:
        import hdf5plugin  # noqa: F401
        have_plugin = True
    except ImportError:
        have_plugin = False
    nexus.write_nxmx(tmp_path / "a.h5", model, frame)
    monkeypatch.setitem(sys.modules, "hdf5plugin", None)      # as if not installed
    nexus.write_nxmx(tmp_path / "b.h5", model, frame)
    with h5py.File(tmp_path / "b.h5", "r") as f:
        ds = f["/entry/data/data"]
        assert ds.compression == "gzip" and ds.shuffle
        assert np.array_equal(ds[0], frame)
    if have_plugin:
        monkeypatch.undo()
        with h5py.File(tmp_path / "a.h5", "r") as f:
            ds = f["/entry/data/data"]
            assert 32008 in ds._filters or "32008" in ds._filters   # Bitshuffle
            assert np.array_equal(ds[0], frame)


def test_same_inputs_same_bytes_and_atomic(tmp_path):
    plan, model = model_for(CASES[0][1])
    frame = np.ones((plan.spixels, plan.fpixels), np.float32)
    nexus.write_nxmx(tmp_path / "a.h5", model, frame)
    nexus.write_nxmx(tmp_path / "b.h5", model, frame)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    with pytest.raises(NbsimError, match="nodir"):
        nexus.write_nxmx(tmp_path / "nodir" / "c.h5", model, frame)
    assert sorted(os.listdir(tmp_path)) == ["a.h5", "b.h5"]


def test_missing_h5py_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(NbsimError, match=r"-nexusfile: needs the h5py package.*pip install h5py"):
        nexus.require_h5py()
