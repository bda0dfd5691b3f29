"""nbsim.io.mat: MOSFLM matrices read like nanoBragg.c's three fscanf("%lg") calls.

The golden run mat_tetra_rect printed the reciprocal vectors it took from
tetra.mat (divided by its -lambda 1.3); ``read_mat`` must give the same numbers.

Optional: with ``NB_C_BIN`` set to a nanoBragg binary, a matrix file with
run-together fixed-format numbers and trailing junk is given to the binary and
the printed vectors compared.
"""
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nbsim.errors import NbsimError
from nbsim.io.mat import read_mat

GOLDEN = Path(__file__).parent / "golden"
NB_C_BIN = os.environ.get("NB_C_BIN")


def _printed_reciprocal(stdout):
    """The 3x3 block after 'reciprocal-space cell vectors' (rows X, Y, Z)."""
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("reciprocal-space cell"))
    return [re.split(r"\s+", lines[at + 2 + i][2:].strip()) for i in range(3)]


def _formatted(matrix, lam):
    return [["%.8f" % x for x in row] for row in matrix * (1e-10 / (lam * 1e-10))]


def test_golden_tetra():
    m = read_mat(GOLDEN / "inputs" / "tetra.mat")
    assert m.shape == (3, 3) and m.dtype == np.float64
    assert m[0].tolist() == [0.0123563715, -0.0050197282, 0.0197823053]
    assert m[2].tolist() == [-0.0107822596, -0.0042422711, 0.0240092065]
    stdout = (GOLDEN / "cases" / "mat_tetra_rect" / "stdout.txt").read_text()
    assert _formatted(m, 1.3) == _printed_reciprocal(stdout)


def test_golden_tric():
    m = read_mat(GOLDEN / "inputs" / "tric.mat")
    assert m[1].tolist() == [0.0091244350, 0.0109570813, -0.0027706810]


def test_scanf_style_numbers(tmp_path):
    path = tmp_path / "a.mat"
    path.write_text(" 0.1-0.2 3e-1\n\t4,5\n")  # ',' is not a number: 4 then fails
    with pytest.raises(NbsimError, match=r"a.mat' line 2: ',5' is not a number"):
        read_mat(path)
    path.write_text("0.1-0.2 .3\n-4E0+5 6\n7 8\n9 junk after the ninth number\n")
    assert read_mat(path).tolist() == [[0.1, -0.2, 0.3], [-4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]


@pytest.mark.parametrize("text,match", [
    ("", "has only 0 numbers"),
    ("1 2 3\n4 5 6\n7 8\n", "has only 8 numbers"),
    ("1 2 3\n# 4 5 6\n7 8 9\n", "line 2: '#' is not a number"),
    ("1 2 3\n4 5 6\n\n7 x 9\n", "line 4: 'x' is not a number"),
])
def test_bad_matrix(tmp_path, text, match):
    path = tmp_path / "bad.mat"
    path.write_text(text)
    with pytest.raises(NbsimError, match=match) as info:
        read_mat(path)
    assert "bad.mat" in str(info.value)


def test_missing_matrix(tmp_path):
    with pytest.raises(NbsimError, match="none.mat"):
        read_mat(tmp_path / "none.mat")


@pytest.mark.skipif(not NB_C_BIN, reason="set NB_C_BIN to a nanoBragg binary to compare "
                    "the vectors a live reference run reads from a matrix file")
def test_live_reference(tmp_path):
    (tmp_path / "a.mat").write_text(
        " 0.0123563715-0.0050197282 0.0197823053\n"
        " 0.0010810424 0.0150635705 0.0133537635\n"
        "-0.0107822596-0.0042422711 0.0240092065junk\n 1 2 3\n")
    run = subprocess.run([NB_C_BIN, "-mat", "a.mat", "-lambda", "1.3", "-default_F", "1",
                          "-detpixels", "4", "-nonoise", "-nopgm", "-noprogress",
                          "-floatfile", "f.bin", "-intfile", "i.img"],
                         cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert _formatted(read_mat(tmp_path / "a.mat"), 1.3) == _printed_reciprocal(run.stdout)
