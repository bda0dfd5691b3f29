"""nbsim.io.sources: the reference's multi-column text reader.

The golden runs sourcefile and sourcefile_xyz printed the sources they read
(``X Y Z   I lambda`` with ``%g``, missing I and lambda replaced by 1 and the
-lambda value); ``read_source_file`` must give the same numbers.

Optional: with ``NB_C_BIN`` set to a nanoBragg binary, a file using every
delimiter, blank lines, extra columns and ``nan`` words is read by the binary
and the printed list compared; and the reference's zero-filling quirks (that
nbsim deliberately replaces by NaN) are checked to still be what the module
notes say.
"""
import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nbsim.errors import NbsimError
from nbsim.io.cparse import fmt_g
from nbsim.io.sources import read_columns, read_source_file

GOLDEN = Path(__file__).parent / "golden"
NB_C_BIN = os.environ.get("NB_C_BIN")


def _printed_sources(stdout):
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "created a total of" in line
              and "sources" in line)
    count = int(re.search(r"of (\d+) sources", lines[at]).group(1))
    return lines[at + 1:at + 1 + count]


def _as_printed(columns, lambda0, source_distance=10.0):
    X, Y, Z, I, lam = (c.copy() for c in columns)
    X[np.isnan(X)] = -source_distance * 1.0       # default beam vector (1, 0, 0)
    Y[np.isnan(Y)] = -source_distance * 0.0
    Z[np.isnan(Z)] = -source_distance * 0.0
    I[np.isnan(I)] = 1.0
    lam[np.isnan(lam)] = lambda0
    return [f"{fmt_g(x)} {fmt_g(y)} {fmt_g(z)}   {fmt_g(i)} {fmt_g(w)}"
            for x, y, z, i, w in zip(X, Y, Z, I, lam)]


@pytest.mark.parametrize("case,name", [("sourcefile", "sources.txt"),
                                       ("sourcefile_xyz", "sources_xyz.txt")])
def test_golden(case, name):
    columns = read_source_file(GOLDEN / "inputs" / name)
    assert len(columns) == 5 and all(c.dtype == np.float64 for c in columns)
    stdout = (GOLDEN / "cases" / case / "stdout.txt").read_text()
    assert _as_printed(columns, 1e-10) == _printed_sources(stdout)


def test_xyz_only_leaves_nan():
    X, Y, Z, I, lam = read_source_file(GOLDEN / "inputs" / "sources_xyz.txt")
    assert X.tolist() == [-10.0] * 3 and Z.tolist() == [0.0, 0.0, 0.002]
    assert np.isnan(I).all() and np.isnan(lam).all()


def test_delimiters_and_columns(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("\n  -1,2;3:4!5e-10\n\t\n-1\t2\n,,-1 2 3 4 5 six seven\n1 nan 3\n")
    X, Y, Z, I, lam = read_source_file(path)
    assert X.tolist() == [-1.0, -1.0, -1.0, 1.0]
    assert Y[:3].tolist() == [2.0, 2.0, 2.0] and math.isnan(Y[3])
    assert Z[0] == 3.0 and math.isnan(Z[1]) and Z[3] == 3.0
    assert I[0] == 4.0 and lam[0] == 5e-10 and lam[2] == 5.0
    assert np.isnan(I[3]) and np.isnan(lam[3])


def test_quirks_become_missing(tmp_path):
    """Where the reference fills 0 (no final newline, CRLF, a word like nan), nbsim
    leaves NaN; whitespace-only lines are blank."""
    path = tmp_path / "s.txt"
    path.write_bytes(b"-10 0.002 0\r\n\r\n-10 0 nan\n  \n-10 -0.002 0 0.5\n   ")
    X, Y, Z, I, lam = read_source_file(path)
    assert X.tolist() == [-10.0, -10.0, -10.0]
    assert np.isnan(I[:2]).all() and I[2] == 0.5 and np.isnan(lam).all()
    assert np.isnan(Z[1])


def test_fgets_splits_long_lines(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("1 2 3 4 5" + " " * 10240 + "6 7\n8\n")
    X, Y, *_ = read_source_file(path)
    assert X.tolist() == [1.0, 6.0, 8.0] and Y[1] == 7.0


def test_read_columns_generic(tmp_path):
    path = tmp_path / "stol.txt"
    path.write_text("0.1 2.5\n0.2\n")
    stol, F = read_columns(path, 2)
    assert stol.tolist() == [0.1, 0.2] and F[0] == 2.5 and math.isnan(F[1])
    path.write_text("")
    assert [len(c) for c in read_columns(path, 2)] == [0, 0]


@pytest.mark.parametrize("text,match", [
    ("# X Y Z\n-10 0 0\n", r"line 1: '#' is not a number"),
    ("-10 0 0\n\n-10 0 x\n", r"line 3: 'x' is not a number"),
    ("-10 0 0 # comment\n", r"line 1: '#' is not a number"),
    ("-10 0.0.1 0\n", r"line 1: '0.0.1' is not a number"),
    ("", "defines no sources"),
    (" \n\t\n", "defines no sources"),
])
def test_bad_source_files(tmp_path, text, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(NbsimError, match=match) as info:
        read_source_file(path)
    assert "bad.txt" in str(info.value) and "\n" not in str(info.value)


def test_missing_source_file(tmp_path):
    with pytest.raises(NbsimError, match="none.txt"):
        read_source_file(tmp_path / "none.txt")


needs_c = pytest.mark.skipif(not NB_C_BIN, reason="set NB_C_BIN to a nanoBragg binary to "
                             "compare with the sources a live reference run prints")


def _run(tmp_path, content):
    (tmp_path / "s.txt").write_bytes(content)
    run = subprocess.run([NB_C_BIN, "-cell", "100", "100", "100", "90", "90", "90",
                          "-default_F", "1", "-detpixels", "4", "-lambda", "1.5",
                          "-sourcefile", "s.txt", "-nonoise", "-nopgm", "-noprogress",
                          "-floatfile", "f.bin", "-intfile", "i.img"],
                         cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    return _printed_sources(run.stdout)


@needs_c
@pytest.mark.parametrize("content", [
    b"\n  -1,2;3:4!5e-10\n\t\n-1\t2\n,,-1 2 3 4 5 six seven\n1 nan 3\n"
    b"-10 0.5 0.25 0x1p-2 1e-10\n",
    b"-10 2 3 4 5e-10" + b" " * 10240 + b"-6 7\n-8\n",        # fgets splits this line
], ids=["delimiters", "long_line"])
def test_live_reference(tmp_path, content):
    printed = _run(tmp_path, content)
    assert printed == _as_printed(read_source_file(tmp_path / "s.txt"), 1.5e-10)


@needs_c
def test_live_reference_quirks(tmp_path):
    # the reference's zero columns and phantom sources that nbsim replaces
    printed = _run(tmp_path, b"-10 0.002 0\r\n\r\n-10 0 nan\n-10 -0.002 0")
    assert printed == ["-10 0.002 0   0 0", "0 0 0   0 0", "-10 0 -0   0 0",
                       "-10 -0.002 0   0 0"]
    assert _as_printed(read_source_file(tmp_path / "s.txt"), 1.5e-10) == [
        "-10 0.002 0   1 1.5e-10", "-10 0 -0   1 1.5e-10", "-10 -0.002 0   1 1.5e-10"]
