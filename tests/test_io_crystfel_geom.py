"""nbsim.io.crystfel_geom: the .geom read by cfelpyutils (CFEL's Python port of
libcrystfel's geometry parser) puts every pixel where the engines rendered it; with
CrystFEL installed, CrystFEL itself reads the .geom with the NXmx file."""
import shutil
import subprocess

import numpy as np
import pytest

from geometry_cases import CASES, IDS, model_for
from nbsim.io import crystfel_geom

crystfel_utils = pytest.importorskip(
    "cfelpyutils.geometry", reason="cfelpyutils (a CrystFEL .geom reader) is installed by "
                                   "the README's test command and .ci/run")


def panel_positions(path, f, s):
    """Pixel-centre positions (metres, CrystFEL's lab frame) from the parsed file, by
    CrystFEL's rule: (corner + fs·fs_vec + ss·ss_vec) / res, z = clen + coffset + ..."""
    geom = crystfel_utils.load_crystfel_geometry(str(path))
    (panel,) = geom.detector["panels"].values()
    res = panel["res"]
    fs, ss = np.asarray(f) + 0.5, np.asarray(s) + 0.5
    x = (panel["cnx"] + fs * panel["fsx"] + ss * panel["ssx"]) / res
    y = (panel["cny"] + fs * panel["fsy"] + ss * panel["ssy"]) / res
    z = panel["clen"] + panel["coffset"] + (fs * panel["fsz"] + ss * panel["ssz"]) / res
    return np.stack([x, y, z], axis=-1), panel, geom


@pytest.mark.parametrize("extra", [c[1] for c in CASES], ids=IDS)
def test_geom_reproduces_the_plans_pixel_positions(tmp_path, extra):
    plan, model = model_for(extra)
    g = plan.geom
    path = tmp_path / "a.geom"
    crystfel_geom.write_geom(path, model, data_file="a.h5")
    f = np.array([0, plan.fpixels - 1, 0, plan.fpixels - 1, 7])
    s = np.array([0, 0, plan.spixels - 1, plan.spixels - 1, 11])
    pos, panel, geom = panel_positions(path, f, s)
    ps = plan.pixel_size
    lab = (np.array(g.pix0) + (f[:, None] + 0.5) * ps * np.array(g.fdet)
           + (s[:, None] + 0.5) * ps * np.array(g.sdet))
    expect = lab @ model.lab_to_mcstas().T
    assert np.all(np.linalg.norm(pos - expect, axis=1) <= 1e-9 * np.linalg.norm(expect, axis=1))
    assert (panel["orig_min_fs"], panel["orig_max_fs"]) == (0, plan.fpixels - 1)
    assert (panel["orig_min_ss"], panel["orig_max_ss"]) == (0, plan.spixels - 1)
    assert panel["data"] == "/entry/data/data" and panel["dim_structure"] == ["%", "ss", "fs"]
    # photon energy: E = hc / lambda
    energy = geom.beam["photon_energy"]
    assert abs(energy * plan.lambda0 / 1.2398419843320026e-06 - 1) < 1e-12


def test_adu_and_saturation(tmp_path):
    _plan, model = model_for(CASES[0][1])
    crystfel_geom.write_geom(tmp_path / "a.geom", model, adu_per_photon=2.5, max_adu=65535)
    _pos, panel, _geom = panel_positions(tmp_path / "a.geom", [0], [0])
    assert panel["adu_per_photon"] == 2.5 and panel["max_adu"] == 65535


def test_crystfel_reads_the_pair(tmp_path):
    """CrystFEL's own list_events reads the .geom and the NXmx file and lists one
    event per frame. CrystFEL is not in Debian 12's packages, so this is skipped
    where it is not installed."""
    exe = shutil.which("list_events")
    if exe is None:
        pytest.skip("CrystFEL is not installed (list_events not found; Debian 12 has no "
                    "crystfel package)")
    h5py = pytest.importorskip("h5py")
    from nbsim.experiment import Scan
    from nbsim.io import nexus
    plan, model = model_for(CASES[0][1])
    frames = np.ones((3, plan.spixels, plan.fpixels), np.float32)
    nexus.write_nxmx(tmp_path / "a.h5", model, frames, Scan(0.0, 0.1, 3))
    crystfel_geom.write_geom(tmp_path / "a.geom", model, data_file="a.h5")
    (tmp_path / "files.lst").write_text(str(tmp_path / "a.h5") + "\n")
    run = subprocess.run([exe, "-i", "files.lst", "-g", "a.geom", "-o", "events.lst"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    events = (tmp_path / "events.lst").read_text().split("\n")
    assert len([e for e in events if e.strip()]) == 3
    assert h5py  # the data file is plain HDF5
