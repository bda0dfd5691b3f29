"""Differential testing: random command lines mixing every feature, nbsim vs your
nanoBragg binary (NB_C_BIN), both engines. Every output file, the exit status and the
statistics lines must agree. Skipped without NB_C_BIN.
"""
import filecmp
import os
import random
import subprocess
import sys

import pytest

import golden_cases as gc

REF = os.environ.get("NB_C_BIN")
pytestmark = pytest.mark.skipif(not REF, reason="NB_C_BIN is not set: point it at your own "
                                "nanoBragg binary to run random differential tests")
ROOT = os.path.dirname(gc.HERE)
SEEDS = int(os.environ.get("NBSIM_DIFF_SEEDS", "12"))


def pick(r):
    a = []
    cell = r.choice(["100 100 100 90 90 90", "70 80 90 75 85 95", "60 70 80 90 100 110", "50 60 70 90 90 120"])
    if r.random() < 0.15:
        a += ["-mat", r.choice([gc.INPUTS + "/tric.mat", gc.INPUTS + "/tetra.mat"])]
    else:
        a += ["-cell"] + cell.split()
    if r.random() < 0.4:
        a += ["-misset"] + [str(r.randint(-40, 40)) for _ in range(3)]
    if r.random() < 0.3:
        a += ["-hkl", r.choice([gc.INPUTS + "/cubic.hkl", gc.INPUTS + "/sparse.hkl", gc.INPUTS + "/wide.hkl"])]
        if r.random() < 0.5:
            a += ["-default_F", str(r.choice([5, 50]))]
    else:
        a += ["-default_F", str(r.choice([10, 100]))]
    n = r.choice([1, 2, 3, 4, 5, 7])
    if r.random() < 0.2:
        a += ["-Na", str(r.randint(1, 6)), "-Nb", str(r.randint(1, 6)), "-Nc", str(r.randint(1, 6))]
    else:
        a += ["-N", str(n)]
    a += r.choice([["-lambda", str(r.choice([0.9, 1.0, 1.3, 1.5]))], ["-energy", "11000"]])
    det = r.choice([48, 64, 80])
    a += r.choice([["-detpixels", str(det)], ["-detpixels_f", str(det), "-detpixels_s", str(det - 16)], ["-detsize", str(det * 0.1)]])
    a += ["-pixel", r.choice(["0.1", "0.172"]) if "-detsize" not in a else "0.1"]
    a += r.choice([["-distance", str(r.randint(50, 150))], ["-close_distance", str(r.randint(50, 150))]])
    conv = r.choice([[], [], ["-mosflm"], ["-xds"], ["-adxv"], ["-denzo"], ["-dials"]])
    a += conv
    if r.random() < 0.3:
        a += ["-Xbeam", "%.2f" % r.uniform(2, 6), "-Ybeam", "%.2f" % r.uniform(2, 6)]
    if r.random() < 0.2:
        a += ["-detector_rotx", str(r.randint(-5, 5)), "-detector_roty", str(r.randint(-5, 5)), "-detector_rotz", str(r.randint(-5, 5))]
    if r.random() < 0.2:
        a += ["-twotheta", str(r.randint(-15, 15))]
    if r.random() < 0.1:
        a += ["-pivot", r.choice(["sample", "beam"])]
    if r.random() < 0.3:
        a += ["-phi", str(r.choice([0, 0, 5, -1])), "-osc", str(r.choice([0.5, 1, 3])), "-phisteps", str(r.randint(1, 4))]
    if r.random() < 0.1:
        a += ["-spindle_axis", "0", "1", "0"]
    if r.random() < 0.3:
        a += ["-mosaic", str(r.choice([0.2, 0.5, 1.0])), "-mosaic_dom", str(r.randint(1, 5)), "-mosaic_seed", str(r.randint(1, 99))]
    if r.random() < 0.25:
        a += ["-hdivrange", "0.3", "-vdivrange", "0.2", "-hdivsteps", str(r.randint(1, 3)), "-vdivsteps", str(r.randint(1, 3))]
        if r.random() < 0.5:
            a += ["-square_div"]
    if r.random() < 0.2:
        a += ["-dispersion", "2", "-dispsteps", str(r.randint(1, 3))]
    if r.random() < 0.2:
        a += ["-detector_abs", str(r.choice([200, 500])), "-detector_thick", str(r.choice([100, 300])), "-thicksteps", str(r.randint(1, 3))]
    if r.random() < 0.25:
        a += ["-oversample", str(r.randint(1, 3))]
        for f in ("-oversample_thick", "-oversample_polar", "-oversample_omega"):
            if r.random() < 0.3:
                a.append(f)
    a += r.choice([[], [], ["-round_xtal"], ["-gauss_xtal"], ["-tophat_spots"]])
    if r.random() < 0.2:
        a += ["-polar", str(r.choice([0.5, 0.95, 1.0]))]
    if r.random() < 0.1:
        a += ["-nopolar"]
    if r.random() < 0.1:
        a += ["-point_pixel"]
    if r.random() < 0.1:
        a += ["-curved_det"]
    if r.random() < 0.08:
        a += ["-fdet_vector", "0", "0", "1", "-sdet_vector", "0", "-1", "0", "-beam_vector", "1", "0", "0"]
    if r.random() < 0.05:
        a += ["-pix0_vector", "0.1", "0.003", "-0.003"]
    if r.random() < 0.08:
        a += ["-ORGX", "%.2f" % r.uniform(10, 50), "-ORGY", "%.2f" % r.uniform(10, 50)]
    if r.random() < 0.05:
        a = ["-mask", gc.INPUTS + "/mask.img"] + [x for x in a]
    if r.random() < 0.05:
        a += ["-Xclose", "4", "-Yclose", "5"]
    if r.random() < 0.05:
        a += ["-twotheta_axis", "0", "0", "1"]
    if r.random() < 0.05:
        a += ["-phistep", "0.25", "-osc", "1"]
    if r.random() < 0.1:
        a += ["-dmin", str(r.choice([5, 10]))]
    if r.random() < 0.1:
        a += ["-roi", "5", "30", "3", "40"]
    if r.random() < 0.1:
        a += ["-interpolate"]
    if r.random() < 0.1:
        a += ["-water", "50"]
    if r.random() < 0.1:
        a += ["-sourcefile", gc.INPUTS + "/sources.txt"]
    if r.random() < 0.1:
        a += ["-fluence", "1e26", "-adc", "20", "-scale", "300"]
    a += ["-seed", str(r.randint(1, 1000)), "-floatfile", "float.bin", "-intfile", "int.img", "-noisefile", "noise.img", "-pgmfile", "image.pgm", "-noprogress"]
    return a



# odd spellings and combinations the reference accepts through its substring matching
EXTRA = [["-mosaic_domains", "3", "-mosaic_spread", "0.4"], ["-sample_size", "0.0003"],
         ["-xtal_size", "0.0004"], ["-wavelength", "1.1"],
         ["-detector_absorption", "400", "-detector_thick", "200"], ["-Xbeam_mm", "5"],
         ["-divsteps", "2", "-divergence", "0.2"], ["-hdivstep", "0.1", "-hdivrange", "0.3"],
         ["-phistep", "0.5", "-phisteps", "3"], ["-misset_seed", "5", "-misset", "random"],
         ["-adxv", "-Xclose", "5"], ["-xds", "-distance", "90"], ["-pivot", "sample", "-Xbeam", "5"],
         ["-coherent"], ["-MW", "100", "-density", "1.3"], ["-width", "0.0002"],
         ["-fudge", "0.7", "-gauss_xtal"], ["-pgmscale", "3"], ["-nopgm"], ["-nonoise"],
         ["-beamsize", "0.0003", "-flux", "1e12", "-xtalsize", "0.0005", "-oversample", "2"],
         ["-detpixels_x", "50", "-detpixels_y", "40"], ["-ORGX", "30", "-xds"],
         ["-polar_vector", "0", "1", "0"], ["-spindle_axis", "0", "0", "-1", "-phi", "3", "-osc", "2"]]


def _with_extras(r, args):
    for _ in range(r.randint(0, 2)):
        args = args[:-11] + r.choice(EXTRA) + args[-11:]
    return args


def _mask_mismatch(args):
    # nbsim refuses a -mask whose size differs from the detector (the reference reads
    # past its buffer); such lines are not comparable
    return "-mask" in args and any(a in args for a in ("-detpixels", "-detsize",
                                                       "-detpixels_f"))


def _run_both(tmp_path, args, nbsim_extra):
    """The reference (one thread) and nbsim on ``args``, each in its own empty folder;
    returns (reference process, nbsim process, reference folder, nbsim folder)."""
    ref_dir, nb_dir = tmp_path / "ref", tmp_path / "nb"
    ref_dir.mkdir()
    nb_dir.mkdir()
    ref = subprocess.run([REF] + args, cwd=ref_dir, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = subprocess.run([sys.executable, "-m", "nbsim"] + args + nbsim_extra, cwd=nb_dir,
                        capture_output=True, text=True, env=env, timeout=600)
    return ref, nb, ref_dir, nb_dir


@pytest.mark.parametrize("engine", ["numba", "c"])
@pytest.mark.parametrize("seed", range(SEEDS))
def test_random_command_line_matches_reference(seed, engine, tmp_path):
    r = random.Random(7919 * seed + (engine == "c"))
    args = _with_extras(r, pick(r))
    if _mask_mismatch(args):
        args = args[2:] if args[0] == "-mask" else args
    ref, nb, ref_dir, nb_dir = _run_both(tmp_path, args, ["-c_parity", "-engine", engine])
    assert nb.returncode == ref.returncode, nb.stderr
    assert gc.stat_lines(nb.stdout) == gc.stat_lines(ref.stdout)
    assert sorted(os.listdir(nb_dir)) == sorted(os.listdir(ref_dir))
    for name in os.listdir(ref_dir):
        assert filecmp.cmp(ref_dir / name, nb_dir / name, shallow=False), name


@pytest.mark.parametrize("engine", ["numba", "c"])
@pytest.mark.parametrize("fluence", ["-1", "-1e24"])
def test_negative_fluence_images_match_reference(fluence, engine, tmp_path):
    # a negative image: the PGM then depends on how the reference casts a negative
    # double to unsigned char (see nbsim.engines.numba_loops.to_uint8)
    args = ("-cell 50 50 50 90 90 90 -default_F 10 -N 3 -detpixels 16 -pixel 0.2 "
            "-distance 50 -noprogress -seed 1 -fluence %s" % fluence).split()
    ref, nb, ref_dir, nb_dir = _run_both(tmp_path, args, ["-engine", engine])
    assert nb.returncode == ref.returncode == 0, nb.stderr
    assert sorted(os.listdir(nb_dir)) == sorted(os.listdir(ref_dir))
    for name in os.listdir(ref_dir):
        assert filecmp.cmp(ref_dir / name, nb_dir / name, shallow=False), name
