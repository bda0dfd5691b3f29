"""-printout / -printout_pixel: per-pixel values, in the reference's format and order."""
import os
import subprocess

import numpy as np
import pytest

from nbsim import cli

ARGS = ("-cell 70 80 90 75 85 95 -default_F 10 -N 3 -lambda 1.0 -distance 60 -detpixels 12 "
        "-seed 15 -floatfile f.bin -nonoise -nopgm").split()


def run(args, capsys):
    code = cli.main(args)
    return code, capsys.readouterr().out


def test_printout_every_pixel_replaces_the_progress_meter(capsys, workdir):
    code, out = run(ARGS + ["-printout", "-roi", "2", "5", "3", "4"], capsys)
    assert code == 0
    blocks = [line for line in out.splitlines() if " : stol = " in line]
    # the ROI bounds are inclusive: 4 x 2 pixels, fast index first, in slow-major order
    assert [tuple(map(int, b.split(":")[0].split())) for b in blocks] == \
        [(f, s) for s in (3, 4) for f in (2, 3, 4, 5)]
    assert "% done" not in out
    img = np.fromfile("f.bin", dtype=np.float32).reshape(12, 12)
    shown = [float(line.split()[1]) for line in out.splitlines() if line.startswith("pixel   ")]
    want = [float("%.10g" % img[s, f]) for s in (3, 4) for f in (2, 3, 4, 5)]
    assert shown == pytest.approx(want, rel=1e-9)


def test_printout_pixel_shows_one_pixel(capsys, workdir):
    code, out = run(ARGS + ["-printout_pixel", "7", "4"], capsys)
    assert code == 0
    blocks = [line for line in out.splitlines() if " : stol = " in line]
    assert len(blocks) == 1 and blocks[0].startswith("   7    4 : stol = ")
    assert out.count("real-space cell vectors (Angstrom):") == 2   # setup + the pixel


@pytest.mark.skipif(not os.environ.get("NB_C_BIN"),
                    reason="NB_C_BIN is not set: point it at your own nanoBragg binary to "
                           "compare -printout with it")
def test_printout_stdout_matches_reference(tmp_path, capsys, monkeypatch):
    args = ARGS[:-4] + ["-printout", "-phi", "0", "-osc", "1", "-phisteps", "2", "-c_parity",
                        "-mosaic", "0.3", "-mosaic_dom", "2", "-noprogress"]
    ref_args = [a for a in args if a != "-c_parity"]
    ref = subprocess.run([os.environ["NB_C_BIN"]] + ref_args, cwd=str(tmp_path),
                         capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    monkeypatch.chdir(tmp_path)
    code, out = run(args, capsys)
    # everything but the first line (each program's own banner) and nbsim's own notes
    mine = [line for line in out.splitlines() if not line.startswith("nbsim:")][1:]
    assert code == 0 and mine == ref.rstrip("\n").splitlines()[1:]
