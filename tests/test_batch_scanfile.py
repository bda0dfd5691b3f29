"""nbsim.batch.scanfile: one NXmx file per scan, read back with nxmx (the DIALS team's
NXmx reader), h5py and fabio, and compared with the frames' own files and Plans."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from nbsim import batch, cli
from nbsim.errors import NbsimError
from nbsim.plan import make_plan

h5py = pytest.importorskip("h5py", reason="h5py is a declared dependency of nbsim")
nxmx = pytest.importorskip("nxmx", reason="nxmx (the DIALS NXmx reader) is installed by "
                                          "the README's test command and .ci/run")
try:
    import hdf5plugin  # noqa: F401  (the data are Bitshuffle/LZ4 where it is installed)
except ImportError:
    pass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a non-square detector, off-centre beam and a rotated detector (no two-theta, so the
# Plan's Fbeam/Sbeam are where the beam meets it)
BASE = ("-cell 60 60 60 90 90 90 -default_F 50 -N 3 -lambda 1.2 -distance 90 "
        "-detpixels_f 28 -detpixels_s 20 -pixel 0.2 -Xbeam 2.1 -Ybeam 1.7 "
        "-detector_rotx 2.5 -detector_roty -3 -osc 0.25 -noprogress -engine c")
REL = 1e-9


def write_job(folder, spec, name="scan.json"):
    path = folder / name
    path.write_text(json.dumps(spec))
    return str(path)


def run(job, *extra, out=None):
    extra = list(extra) or ["--rank", "0", "--ranks", "1"]
    with open(os.devnull, "w") as sink:
        return batch.run(batch.build_parser().parse_args([job] + extra), out=out or sink,
                         err=sink)


def rotation(start=-12.5, frames=4, **nexus):
    return {"args": BASE, "frames": frames, "vary": {"-phi": {"start": start, "step": 0.25}},
            "nexus": nexus or True}


def plan_of(job, frame):
    old = os.getcwd()
    os.chdir(job.folder)
    try:
        cfg, _ = cli.command_config(job.frame_argv(frame), lambda m: None)
        return make_plan(cfg)
    finally:
        os.chdir(old)


def read_scan(path):
    """What a reader derives from the file: geometry with nxmx as dxtbx builds a flat
    panel (dxtbx/nexus/__init__.py, get_dxtbx_detector), and the scan by dxtbx's rule
    (get_dxtbx_scan): the first varying rotation axis of the sample's chain; its first
    angle is the start, the difference of the first two the oscillation, its length the
    number of images."""
    with h5py.File(path, "r") as f:
        entry = nxmx.NXmx(f).entries[0]
        assert entry.definition == "NXmx"
        det = entry.instruments[0].detectors[0]
        module = det.modules[0]
        chain = nxmx.get_dependency_chain(module.fast_pixel_direction.depends_on)
        A = nxmx.get_cumulative_transformation(chain)
        rot = [t for t in chain if t.transformation_type == "rotation"]
        R = nxmx.get_cumulative_transformation(rot)[0, :3, :3] if rot else np.eye(3)
        sample = entry.samples[0]
        sample_chain = nxmx.get_dependency_chain(sample.depends_on)
        axis = next(t for t in sample_chain if t.transformation_type == "rotation")
        angles = np.atleast_1d(axis[()].to("deg").magnitude)
        varying = len(angles) > 1 and not np.all(angles == angles[0])
        ends = np.atleast_1d(axis.end[()].to("deg").magnitude)
        axes = nxmx.get_rotation_axes(sample_chain)
        return {
            "origin": A[0, :3, 3] / 1000.0,             # nxmx works in mm
            "fast": R @ module.fast_pixel_direction.vector,
            "slow": R @ module.slow_pixel_direction.vector,
            "pixel": (module.fast_pixel_direction[()].to("m").magnitude.item(),
                      module.slow_pixel_direction[()].to("m").magnitude.item()),
            "size": tuple(int(x) for x in module.data_size),
            "wavelength": entry.instruments[0].beams[0].incident_wavelength.to("m").magnitude.item(),
            "beam_center": (det.beam_center_x.to("pixel").magnitude.item(),
                            det.beam_center_y.to("pixel").magnitude.item()),
            "distance": det.distance.to("m").magnitude.item(),
            "spindle": axes.axes[0],
            "scan": (float(angles[0]),
                     float(angles[1] - angles[0]) if varying else float(ends[0] - angles[0]),
                     len(angles)),
            "angles": angles,
            "data": f["/entry/data/data"][()],
            "offset": entry.data[0].data_offset,
        }


def close(a, b, rel=REL):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.linalg.norm(a - b) <= rel * max(np.linalg.norm(b), 1e-300)


def frame_images(job, data):
    """The frames' own images, read with numpy (headerless floats) or fabio (SMV)."""
    flag = {"float": "-floatfile", "int": "-intfile", "noise": "-noisefile"}[data]
    images = []
    for frame in range(job.frames):
        path = dict(job.frame_outputs(frame))[flag]
        if data == "float":
            plan = plan_of(job, 0)
            images.append(np.fromfile(path, dtype=np.float32).reshape(plan.spixels,
                                                                      plan.fpixels))
        else:
            fabio = pytest.importorskip("fabio")
            images.append(fabio.open(path).data)
    return np.stack(images)


@pytest.mark.parametrize("data, layout", [("float", "stacked"), ("noise", "stacked"),
                                          ("float", "master"), ("int", "master")])
def test_scan_file_is_what_the_frames_and_plans_say(tmp_path, monkeypatch, data, layout):
    spec = rotation(data=data, layout=layout)
    if data == "int":
        spec["args"] += " -scale 3"
    job_path = write_job(tmp_path, spec)
    assert run(job_path) == 0
    job = batch.load_job(job_path)
    name = "scan.nxs" if layout == "stacked" else "scan_master.nxs"
    assert job.scan_path() == str(tmp_path / "scan" / name)
    monkeypatch.chdir(tmp_path.parent)    # a master's data files are found beside it
    got = read_scan(job.scan_path())
    plans = [plan_of(job, f) for f in range(job.frames)]
    plan, g = plans[0], plans[0].geom
    from nbsim.experiment import model_from_plan
    M = model_from_plan(plan).lab_to_mcstas()
    # the scan: frame i starts at its own -phi and spans -osc
    assert got["scan"][2] == job.frames
    assert abs(got["scan"][0] - math.degrees(plan.phi0)) < 1e-9
    assert abs(got["scan"][1] - math.degrees(plan.osc)) < 1e-12
    assert np.allclose(got["angles"], [math.degrees(p.phi0) for p in plans], rtol=0, atol=1e-9)
    assert got["scan"][:2] == (-12.5, 0.25)
    # the geometry of the Plan
    assert close(got["origin"], M @ np.array(g.pix0))
    assert close(got["fast"], M @ np.array(g.fdet))
    assert close(got["slow"], M @ np.array(g.sdet))
    assert close(got["spindle"], M @ np.array(g.spindle))
    assert got["pixel"] == (plan.pixel_size, plan.pixel_size)
    assert got["size"] == (plan.spixels, plan.fpixels) == (20, 28)
    assert close(got["beam_center"], (g.fbeam / plan.pixel_size, g.sbeam / plan.pixel_size))
    assert close(got["distance"], g.distance)
    assert abs(got["wavelength"] / plan.lambda0 - 1) < REL
    # the data: the frames' own images, bit for bit
    images = frame_images(job, data)
    assert got["data"].dtype == images.dtype
    assert got["data"].tobytes() == images.tobytes()
    assert got["offset"] == (-40.0 if data in ("int", "noise") else None)
    with h5py.File(job.scan_path(), "r") as f:
        assert f["/entry/data/data"].is_virtual == (layout == "master")
        if data == "int":
            assert f["/entry/data/data_scale_factor"][()] == pytest.approx(1 / 3)


def test_master_data_files_are_nxmx_files_of_their_frames(tmp_path):
    job_path = write_job(tmp_path, rotation(frames=2, layout="master",
                                            frame_file="data/{name}_{frame:03d}.h5"))
    assert run(job_path) == 0
    job = batch.load_job(job_path)
    one = read_scan(str(tmp_path / "scan" / "data" / "scan_001.h5"))
    assert one["scan"] == (-12.25, 0.25, 1)
    assert one["data"][0].tobytes() == frame_images(job, "float")[1].tobytes()
    assert "-nexus_data" in job.frame_argv(1)
    master = read_scan(job.scan_path())      # its sources in a subfolder beside it
    assert master["data"].tobytes() == frame_images(job, "float").tobytes()
    assert master["scan"] == (-12.5, 0.25, 2)


def _scan_line(out):
    return [line for line in out.splitlines() if "scan file" in line]


def test_ranks_restarts_and_changes_keep_the_scan_file_right(tmp_path, capsys):
    import io
    job_path = write_job(tmp_path, rotation())
    job = batch.load_job(job_path)
    folder = tmp_path / "scan"
    text = io.StringIO()
    # a job array of two ranks: the first to end waits, the last writes the file
    assert run(job_path, "--rank", "0", "--ranks", "2", out=text) == 0
    assert "waiting for 2 of 4 frames" in text.getvalue()
    assert not os.path.exists(job.scan_path())
    text = io.StringIO()
    assert run(job_path, "--rank", "1", "--ranks", "2", out=text) == 0
    assert "wrote 4 frames" in text.getvalue()
    first = read_scan(job.scan_path())["data"]
    assert first.tobytes() == frame_images(job, "float").tobytes()
    stamp = os.stat(job.scan_path()).st_mtime_ns
    # a frame's own file corrupted (same size): the frame renders again, to the same
    # bytes, and the scan file stays as it is
    target = folder / "scan_00002.bin"
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0xFF
    target.write_bytes(bytes(raw))
    text = io.StringIO()
    assert run(job_path, out=text) == 0
    assert "1 rendered, 3 already done" in text.getvalue()
    assert "up to date" in text.getvalue()
    assert os.stat(job.scan_path()).st_mtime_ns == stamp
    # the scan file corrupted: written again from the frames, which stay
    raw = bytearray(open(job.scan_path(), "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(job.scan_path(), "wb").write(bytes(raw))
    text = io.StringIO()
    assert run(job_path, out=text) == 0
    assert "0 rendered, 4 already done" in text.getvalue() and "wrote 4 frames" in text.getvalue()
    assert read_scan(job.scan_path())["data"].tobytes() == first.tobytes()
    # the job changed: every frame renders again and the scan file follows them
    spec = rotation()
    spec["args"] = spec["args"].replace("-N 3", "-N 4")
    write_job(tmp_path, spec)
    text = io.StringIO()
    assert run(job_path, out=text) == 0
    assert "4 rendered" in text.getvalue() and "wrote 4 frames" in text.getvalue()
    again = read_scan(job.scan_path())["data"]
    assert again.tobytes() != first.tobytes()
    assert again.tobytes() == frame_images(batch.load_job(job_path), "float").tobytes()
    # --force writes it again too; a deleted file is written again
    text = io.StringIO()
    assert run(job_path, "--rank", "0", "--ranks", "1", "--force", out=text) == 0
    assert "wrote 4 frames" in text.getvalue()
    os.unlink(job.scan_path())
    text = io.StringIO()
    assert run(job_path, out=text) == 0
    assert "wrote 4 frames" in text.getvalue()
    assert read_scan(job.scan_path())["data"].tobytes() == again.tobytes()
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".claim"))) == []


def test_an_image_changed_behind_its_marker_is_rendered_again_not_copied(tmp_path):
    import io
    job_path = write_job(tmp_path, rotation(frames=2))
    assert run(job_path) == 0
    job = batch.load_job(job_path)
    target = tmp_path / "scan" / "scan_00001.bin"
    good = target.read_bytes()
    target.write_bytes(good[:-4] + b"\0\0\0\0")       # same size, marker unchanged
    os.unlink(job.scan_path())
    # rank 0 of 2 checks only frame 0's marker; writing the scan file finds frame 1's
    # image changed, renders that frame again and then writes the file
    text = io.StringIO()
    assert run(job_path, "--rank", "0", "--ranks", "2", out=text) == 0
    assert "wrote 2 frames" in text.getvalue()
    assert "frames 1 had changed and were rendered again" in text.getvalue()
    assert target.read_bytes() == good and batch.is_done(job, 1)
    assert read_scan(job.scan_path())["data"].tobytes() == \
        frame_images(job, "float").tobytes()
    # without a way to render it (scanfile.finish alone), it is forgotten and refused
    target.write_bytes(good[:-4] + b"\0\0\0\0")
    os.unlink(job.scan_path())
    from nbsim.batch import scanfile
    claims = batch.Claims(job.directory)
    status, message = scanfile.finish(job, claims, started=0.0)
    claims.release_all()
    assert status == 1 and "frame 1's" in message and "changed since it was rendered" in message
    assert not os.path.exists(job.scan_path()) and not batch.is_done(job, 1)


@pytest.mark.parametrize("change, words", [
    ({"vary": {"-phi": {"start": 0, "step": 0.5}}}, "frame 3 is at -phi 1.5"),
    ({"vary": {"-phi": [0, 0.25, 0.5, 1.0]}}, "frame 3 is at -phi 1"),
    ({"vary": {"-phi": {"start": 0, "step": 0.25}, "-distance": [90, 90, 100, 100]}},
     "frame 2 differs from frame 0 in pix0"),
    ({"vary": {"-phi": {"start": 0, "step": 0.25}, "-lambda": {"start": 1.2, "step": 0.01}}},
     "in wavelength"),
    ({"vary": {"-fluence": [1e24, 2e24, 3e24, 4e24]}}, "every frame is at -phi 0 with -osc 0.25"),
])
def test_frames_that_are_not_one_phi_scan_are_refused_before_rendering(tmp_path, change,
                                                                        words):
    spec = dict(rotation(), **change)
    job_path = write_job(tmp_path, spec)
    with pytest.raises(NbsimError) as err:
        run(job_path)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "scan").exists()


def test_what_may_vary_in_a_scan(tmp_path):
    # a listed -phi series, with a dose series beside it
    spec = dict(rotation(frames=3), vary={"-phi": [1, 1.25, 1.5], "-fluence": [1e24, 2e24, 3e24]})
    assert run(write_job(tmp_path, spec)) == 0
    got = read_scan(str(tmp_path / "scan" / "scan.nxs"))
    assert got["scan"] == (1.0, 0.25, 3)
    # a still series: -osc 0 and one -phi
    spec = {"args": BASE.replace("-osc 0.25", "-osc 0"), "frames": 2, "name": "still",
            "vary": {"-fluence": [1e24, 2e24]}, "nexus": {}}
    assert run(write_job(tmp_path, spec, "still.json")) == 0
    got = read_scan(str(tmp_path / "still" / "still.nxs"))
    assert got["scan"] == (0.0, 0.0, 2)


@pytest.mark.parametrize("nexus, extra, words", [
    ({"layout": "flat"}, {}, "layout must be stacked or master"),
    ({"data": "photons"}, {}, "data must be one of"),
    ({"colour": 1}, {}, "unknown key colour"),
    ({"file": "{name}_{frame}.nxs"}, {}, "no {frame} field"),
    ({"file": "../{name}.nxs"}, {}, "outside the output folder"),
    ({"file": "{name}_00000.bin"}, {}, "is also frame 0's -floatfile"),
    ({"data": "int"}, {}, "give -scale"),
    ({"data": "noise"}, {"args": BASE + " -nonoise"}, "args say -nonoise"),
    ({}, {"outputs": {"-intfile": "{frame}.img"}}, "name -floatfile in outputs"),
    ({"layout": "master"}, {"outputs": {"-nexusfile": "{frame}.h5"}}, "take -nexusfile out"),
    ({"layout": "master", "frame_file": "one.h5"}, {}, "frame_file 'one.h5' has no {frame}"),
    ({"frame_file": "{frame}.h5"}, {}, "frame_file is for layout master"),
    ({}, {"args": BASE + " -nexus_data int"}, "args set -nexus_data"),
])
def test_bad_nexus_settings_are_one_line_errors(tmp_path, nexus, extra, words):
    spec = dict(rotation(), **extra)
    spec["nexus"] = nexus
    with pytest.raises(NbsimError, match="job file") as err:
        batch.Job(spec, str(tmp_path / "scan.json"))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_dry_run_describes_the_scan_file(tmp_path, capsys):
    job_path = write_job(tmp_path, rotation())
    assert batch.main([job_path, "--dry-run", "--rank", "0", "--ranks", "1"]) == 0
    out = capsys.readouterr().out
    assert "scan file scan/scan.nxs: stacked float image, phi from -12.5 deg in steps of " \
           "0.25 deg, 4 frames: frame 0 is not done" in out
    assert not (tmp_path / "scan").exists()
    assert run(job_path) == 0
    assert batch.main([job_path, "--dry-run", "--rank", "0", "--ranks", "1"]) == 0
    assert "4 frames: up to date" in capsys.readouterr().out


def _start(job, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "nbsim.batch", job, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_runs_write_one_scan_file(tmp_path):
    spec = rotation(frames=6)
    # about 0.25 s per frame on one thread: the runs overlap
    spec["args"] = spec["args"].replace("-detpixels_f 28 -detpixels_s 20", "-detpixels_f 256 "
                                        "-detpixels_s 192 -oversample 6 -threads 1")
    spec["args"] = spec["args"].replace("-N 3", "-N 10")
    job_path = write_job(tmp_path, spec)
    procs = [_start(job_path, "--schedule", "dynamic", "--rank", "0", "--ranks", "1"),
             _start(job_path, "--rank", "0", "--ranks", "1", "--schedule", "dynamic")]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outs = "".join(out for out, _err in results)
    rendered = [int(line.split(": rank 0: ")[1].split()[0]) for line in outs.splitlines()
                if " rendered, " in line]
    assert sum(rendered) == 6
    assert outs.count("wrote 6 frames") == 1, outs
    assert all(n > 0 for n in rendered), outs        # they did share the frames
    job = batch.load_job(job_path)
    assert read_scan(job.scan_path())["data"].tobytes() == frame_images(job, "float").tobytes()
