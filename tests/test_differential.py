"""Differential testing: random command lines mixing every feature, nbsim vs your
nanoBragg binary (NB_C_BIN), both engines. Every output file, the exit status and the
statistics lines must agree. Skipped without NB_C_BIN.
"""
import filecmp
import os
import random

import pytest

import golden_cases as gc
import refpair

REF = refpair.REF
pytestmark = pytest.mark.skipif(not REF, reason="NB_C_BIN is not set: point it at your own "
                                "nanoBragg binary to run random differential tests")
ROOT = os.path.dirname(gc.HERE)
SEEDS = int(os.environ.get("NBSIM_DIFF_SEEDS", "12"))


def two(r, lo, hi):
    """A random value with two decimals, as users type them."""
    return "%.2f" % r.uniform(lo, hi)


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
    sharp = r.random() < 0.5
    if sharp:
        # sharp lattice peaks make a last-bit difference in any length or angle visible
        a += ["-Na", str(r.choice([1000, 20000, 100000])), "-Nb", str(r.choice([1000, 50000])),
              "-Nc", str(r.choice([3000, 100000])), "-oversample", "1"]
    elif r.random() < 0.2:
        a += ["-Na", str(r.randint(1, 6)), "-Nb", str(r.randint(1, 6)), "-Nc", str(r.randint(1, 6))]
    else:
        a += ["-N", str(n)]
    a += r.choice([["-lambda", "%.2f" % r.uniform(0.8, 1.6)], ["-energy", "%.2f" % r.uniform(8000, 13000)]])
    det = r.choice([48, 64, 80])
    a += r.choice([["-detpixels", str(det)], ["-detpixels_f", str(det), "-detpixels_s", str(det - 16)], ["-detsize", str(det * 0.1)]])
    a += ["-pixel", r.choice(["0.1", "0.172"]) if "-detsize" not in a else "0.1"]
    # random two-decimal values: about one in seven differs between x/1000 and x*(1/1000)
    a += r.choice([["-distance", two(r, 50, 150)], ["-close_distance", two(r, 50, 150)]])
    conv = r.choice([[], [], ["-mosflm"], ["-xds"], ["-adxv"], ["-denzo"], ["-dials"]])
    a += conv
    if r.random() < 0.3:
        a += ["-Xbeam", two(r, 2, 6), "-Ybeam", two(r, 2, 6)]
    if r.random() < 0.2:
        a += ["-detector_rotx", two(r, -5, 5), "-detector_roty", two(r, -5, 5), "-detector_rotz", two(r, -5, 5)]
    if r.random() < 0.2:
        a += ["-twotheta", two(r, -15, 15)]
    if r.random() < 0.1:
        a += ["-pivot", r.choice(["sample", "beam"])]
    if r.random() < 0.3:
        a += ["-phi", r.choice(["0", "0", two(r, -5, 5)]), "-osc", two(r, 0.1, 3), "-phisteps", str(r.randint(1, 4))]
    if r.random() < 0.1:
        a += ["-spindle_axis", "0", "1", "0"]
    if r.random() < 0.3:
        a += ["-mosaic", two(r, 0.05, 1.0), "-mosaic_dom", str(r.randint(1, 5)), "-mosaic_seed", str(r.randint(1, 99))]
    if r.random() < 0.25:
        a += ["-hdivrange", two(r, 0.1, 0.5), "-vdivrange", two(r, 0.1, 0.5), "-hdivsteps", str(r.randint(1, 3)), "-vdivsteps", str(r.randint(1, 3))]
        if r.random() < 0.5:
            a += ["-square_div"]
    if r.random() < 0.2:
        a += ["-dispersion", two(r, 0.5, 3), "-dispsteps", str(r.randint(1, 3))]
    if r.random() < 0.2:
        a += ["-detector_abs", two(r, 100, 500), "-detector_thick", two(r, 50, 300), "-thicksteps", str(r.randint(1, 3))]
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
        a += ["-ORGX", two(r, 10, 50), "-ORGY", two(r, 10, 50)]
    if r.random() < 0.05:
        a = ["-mask", gc.INPUTS + "/mask.img"] + [x for x in a]
    if r.random() < 0.05:
        a += ["-Xclose", two(r, 3, 5), "-Yclose", two(r, 3, 5)]
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
        a += ["-water", two(r, 10, 90)]
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
    return refpair.run_both(tmp_path, args, nbsim_extra)


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
    assert gc.stdout_lines(nb.stdout, True) == gc.stdout_lines(ref.stdout, False)
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


def pick_sharp_geometry(r):
    """Sharp peaks (N of 2*10^4 to 10^5, one sub-pixel) and every length and angle of the
    geometry a random two-decimal value: a conversion that differs from the reference's
    in the last bit (x*(1/1000) for x/1000) changes some pixels of the float image."""
    a = ["-cell"] + r.choice(["70 80 90 90 90 90", "60 70 80 90 100 110"]).split()
    a += ["-default_F", "50", "-oversample", "1", "-detpixels", "64", "-pixel", two(r, 0.05, 0.2),
          "-lambda", two(r, 0.8, 1.6), "-misset", two(r, -40, 40), two(r, -40, 40), two(r, -40, 40)]
    a += [w for n in ("-Na", "-Nb", "-Nc") for w in (n, str(r.choice([20000, 100000])))]
    a += r.choice([["-distance", two(r, 50, 150)], ["-close_distance", two(r, 50, 150)]])
    a += ["-Xbeam", two(r, 2, 5), "-Ybeam", two(r, 2, 5), "-twotheta", two(r, -10, 10),
          "-detector_rotx", two(r, -3, 3), "-detector_roty", two(r, -3, 3),
          "-detector_rotz", two(r, -3, 3)]
    a += r.choice([[], ["-Xclose", two(r, 2, 5), "-Yclose", two(r, 2, 5)],
                   ["-ORGX", two(r, 20, 40), "-ORGY", two(r, 20, 40)]])
    a += ["-pivot", r.choice(["beam", "sample"])]
    a += ["-phi", two(r, 1, 20), "-osc", two(r, 0.01, 0.2)]
    a += r.choice([[], ["-mosaic", two(r, 0.01, 0.3), "-mosaic_dom", "2"],
                   ["-divergence", two(r, 0.05, 0.3), "-dispersion", two(r, 0.05, 0.5)]])
    a += ["-nonoise", "-nopgm", "-noprogress", "-floatfile", "float.bin", "-intfile", "int.img"]
    return a


@pytest.mark.parametrize("engine", ["numba", "c"])
@pytest.mark.parametrize("seed", range(max(1, SEEDS // 2)))
def test_sharp_two_decimal_geometry_matches_reference(seed, engine, tmp_path):
    args = pick_sharp_geometry(random.Random(104729 * seed + (engine == "c")))
    ref, nb, ref_dir, nb_dir = _run_both(tmp_path, args, ["-engine", engine])
    assert nb.returncode == ref.returncode == 0, nb.stderr
    assert refpair.differing_files(ref_dir, nb_dir) == [], " ".join(args)
