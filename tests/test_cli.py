"""The nanoBragg command line: flags, errors, usage, outputs."""
import os

import numpy as np
import pytest

from nbsim import cli
from nbsim.config import Convention, Pivot

BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-lambda", "6.2",
        "-N", "5", "-distance", "100", "-detpixels", "32", "-pixel", "0.1", "-seed", "1",
        "-noprogress"]
OUTS = ["-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "n.img", "-pgmfile", "p.pgm"]


def run(args, capsys):
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run(["-version"], capsys)
    assert code == 0 and out.startswith("nbsim ")


def test_help_lists_every_documented_flag(capsys):
    from nbsim.flags import REFERENCE_RULES
    code, out, _ = run(["-h"], capsys)
    assert code == 0
    for rule in REFERENCE_RULES:
        if rule.doc:
            assert rule.names[0] in out, rule.names[0]
    for flag in ("-engine", "-c_parity", "-tifffile", "-threads"):
        assert flag in out


@pytest.mark.parametrize("args, fragment", [
    (["-bogus"], "unknown flag -bogus"),
    (["-dispstep", "3"], "unknown flag -dispstep (did you mean -dispsteps"),
    (["-lambda"], "-lambda: missing value"),
    (["-lambda", "abc"], "-lambda: expected a number, got 'abc'"),
    (["-N", "2.5"], "-N: expected an integer"),
    (["-detpixels", "x"], "-detpixels: expected an integer"),
    (["stray"], "unexpected argument 'stray'"),
    (["-pixel", "0"], "-pixel: a pixel size of 0 mm leaves no pixel"),
    (["-lambda", "0"], "every pixel of the image is NaN"),
    (["-detpixels", "-5"], "-detpixels"),
    (["-detsize", "0", "-detpixels", "0"], "-detsize"),
    (["-roi", "50", "10", "0", "10"], "-roi: 50 10 0 10 selects no pixel"),
    (["-roi", "40", "50", "0", "10"], "-roi"),
    (["-hkl", "does_not_exist.hkl"], "-hkl: cannot read 'does_not_exist.hkl'"),
    (["-mat", "nope.mat"], "-mat: cannot read 'nope.mat'"),
    (["-sourcefile", "nope.txt"], "-sourcefile: cannot read"),
    (["-engine", "warp"], "-engine: unknown engine 'warp'"),
    (["-threads", "0"], "-threads: must be positive"),
    (["-beam_vector", "nan", "0", "1"], "every pixel of the image is NaN"),
    (["-phisteps", "5000000", "-osc", "1"], "-phisteps: 5000000 steps is more than"),
    (["-detpixels", "100000"], "-detpixels: a 100000x100000 detector"),
])
def test_bad_input_is_one_line_error(args, fragment, capsys, workdir):
    code, out, err = run(BASE + args + OUTS, capsys)
    assert code != 0
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert err.rstrip().splitlines()[-1] == lines[0]     # the error is the last word
    assert fragment in lines[0], lines[0]
    assert not any(os.path.exists(f) for f in ("f.bin", "i.img", "n.img", "p.pgm"))


def test_missing_structure_factors_prints_usage_exit_9(capsys, workdir):
    code, out, _ = run(["-cell", "100", "100", "100", "90", "90", "90", "-detpixels", "16"],
                       capsys)
    assert code == 9
    assert "ERROR: no hkl file and no dump file to read." in out
    assert "usage: nanoBragg" in out
    assert os.listdir(".") == []


def test_missing_cell_prints_usage_exit_9(capsys, workdir):
    code, out, _ = run(["-default_F", "100", "-detpixels", "16"], capsys)
    assert code == 9 and "usage: nanoBragg" in out
    assert out.splitlines()[0].startswith("nbsim ")   # the banner on a line of its own
    assert out.splitlines()[0].endswith("diffraction simulator")


def test_substring_quirks_are_reproduced_with_a_warning(capsys):
    cfg, _ = cli.config_from_args(
        ["-cell", "60", "70", "80", "90", "100", "110", "-misset", "random", "-misset_seed", "7",
         "-default_F", "100", "-twotheta", "15", "-twotheta_axis", "0", "1", "0"],
        warn=lambda m: print("WARN " + m))
    out = capsys.readouterr().out
    # -misset_seed also acts as -misset with the next three words (7, -default_F, 100)
    assert not cfg.crystal.misset_random
    assert cfg.crystal.misset == pytest.approx((7 / 57.29577951308232, 0.0, 100 / 57.29577951308232))
    assert cfg.crystal.misset_seed == -7
    # -twotheta_axis also acts as -twotheta, reading its first component
    assert cfg.detector.twotheta == 0.0 and cfg.detector.pivot == Pivot.SAMPLE
    quirks = [line for line in out.splitlines() if "contains that flag's name" in line]
    assert len(quirks) == 2 and "-misset_seed" in quirks[0] and "-twotheta_axis" in quirks[1]
    # ... and the implicit switch to the CUSTOM convention is announced too
    assert "-twotheta_axis selects the CUSTOM detector convention" in out


def test_last_pivot_flag_wins_with_a_warning(capsys):
    cfg, _ = cli.config_from_args(["-cell", "100", "-default_F", "1", "-pivot", "sample",
                                   "-distance", "90"], warn=lambda m: print("WARN " + m))
    assert cfg.detector.pivot == Pivot.BEAM
    assert "pivot is 'beam' because -distance came last" in capsys.readouterr().out


def test_flags_keep_reference_order_and_units():
    cfg, opts = cli.config_from_args(
        ["-cell", "70", "80", "-distance", "120", "-xds", "-pixel", "0.172", "-energy", "12398.42",
         "-mosaic", "0.5", "-N", "3", "-Na", "4", "-c_parity", "-engine", "c"])
    # -cell stops at the first word starting with '-'; the rest take the reference defaults
    assert cfg.crystal.cell[:2] == (70.0, 80.0) and cfg.crystal.cell[2] == 0.0
    assert cfg.detector.distance == pytest.approx(0.12)
    assert cfg.detector.convention == Convention.XDS and cfg.detector.pivot == Pivot.SAMPLE
    assert cfg.detector.pixel_size == pytest.approx(0.172e-3)
    assert cfg.beam.lambda0 == pytest.approx(1e-10)
    assert (cfg.crystal.Na, cfg.crystal.Nb) == (4.0, 3.0)
    assert cfg.sampling.c_parity and opts["engine"] == "c"


def test_outputs_written_and_tiff_round_trip(capsys, workdir):
    tifffile = pytest.importorskip("tifffile", reason="tifffile is a declared dependency")
    code, out, _ = run(BASE + OUTS + ["-tifffile", "f.tif"], capsys)
    assert code == 0
    img = np.fromfile("f.bin", dtype=np.float32).reshape(32, 32)
    assert np.array_equal(tifffile.imread("f.tif"), img)
    assert os.path.getsize("i.img") == 512 + 2 * 32 * 32
    assert open("p.pgm", "rb").read(2) == b"P5"
    assert "max_I = " in out and "photons on noise image" in out


def test_default_output_names(capsys, workdir):
    code, _, _ = run(BASE, capsys)
    assert code == 0
    assert sorted(os.listdir(".")) == ["floatimage.bin", "image.pgm", "intimage.img",
                                       "noiseimage.img"]


def test_nonoise_nopgm(capsys, workdir):
    code, out, _ = run(BASE + ["-nonoise", "-nopgm", "-floatfile", "f.bin"], capsys)
    assert code == 0 and sorted(os.listdir(".")) == ["f.bin", "intimage.img"]
    assert "pgm_scale" not in out and "photons on noise image" not in out


def test_same_seed_same_noise_different_seed_differs(capsys, workdir):
    run(BASE + OUTS, capsys)
    a = open("n.img", "rb").read()
    run(BASE + OUTS, capsys)
    assert open("n.img", "rb").read() == a
    run(BASE[:-3] + ["-seed", "2", "-noprogress"] + OUTS, capsys)
    assert open("n.img", "rb").read() != a


def test_unwritable_output_is_an_error_and_leaves_nothing(capsys, workdir):
    os.mkdir("sub")
    code, _, err = run(BASE + ["-floatfile", "nodir/f.bin"], capsys)
    assert code != 0 and "nodir/f.bin" in err


def test_curved_det_as_last_word_is_ignored_like_the_reference(capsys):
    cfg, _ = cli.config_from_args(["-cell", "100", "-default_F", "1", "-curved_det"],
                                  warn=lambda m: print("WARN " + m))
    assert not cfg.detector.curved
    assert "-curved_det is ignored as the last word" in capsys.readouterr().out
    cfg, _ = cli.config_from_args(["-curved_det", "-cell", "100", "-default_F", "1"])
    assert cfg.detector.curved


def test_source_distance_is_accepted_and_ignored_like_the_reference(capsys):
    base = ["-cell", "100", "-default_F", "1", "-divergence", "0.3"]
    cfg, _ = cli.config_from_args(base + ["-source_distance", "500"],
                                  warn=lambda m: print("WARN " + m))
    assert cfg == cli.config_from_args(base)[0].replace(seed=cfg.noise.seed,
                                                        misset_seed=cfg.crystal.misset_seed)
    assert "-source_distance has no effect" in capsys.readouterr().out


def test_values_read_by_a_substring_match_are_not_stray(capsys):
    cfg, _ = cli.config_from_args(["-cell", "100", "-default_F", "1", "-Xbeam_mm", "5"],
                                  warn=lambda m: print("WARN " + m))
    assert cfg.detector.xbeam == 0.005
    assert "-Xbeam_mm also acts as -Xbeam" in capsys.readouterr().out


def _run_module(args, cwd):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "nbsim"] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_quick_exit_keeps_all_output_and_the_status(tmp_path):
    # the installed commands end with os._exit: nothing buffered may be lost
    done = _run_module(["-h"], tmp_path)
    assert done.returncode == 0
    assert done.stdout == cli.usage_text() + "\n"
    bad = _run_module(["-no_such_flag"], tmp_path)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1].startswith("nanoBragg: error:")
    assert "Traceback" not in bad.stderr


def test_quick_exit_after_a_render_leaves_complete_files(tmp_path):
    done = _run_module("-cell 50 50 50 90 90 90 -default_F 10 -N 2 -detpixels 16 -pixel 0.1 "
                       "-distance 50 -floatfile f.bin -intfile i.img -noprogress -nonoise".split(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert os.path.getsize(tmp_path / "f.bin") == 16 * 16 * 4
    assert os.path.getsize(tmp_path / "i.img") == 512 + 16 * 16 * 2
    assert done.stdout.rstrip().splitlines()[-1].startswith("nbsim: rendered by")
