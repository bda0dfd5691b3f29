"""nbsim.io.hkl: HKL text tables and Fdump.bin, like nanoBragg.c.

The two golden runs that read an HKL file also wrote the Fdump.bin built from
it; ``read_hkl`` + ``write_fdump`` must give those files byte for byte, and the
messages must be the lines the runs printed.  ``read_fdump`` must give the same
table back (with the reference's hkls count), including the reference's habit
of swallowing whitespace-valued data bytes after the header.

Optional: with ``NB_C_BIN`` set to a nanoBragg binary, an HKL file using every
accepted oddity (signs, leading zeros, tabs, CRLF, blank lines, several records
on a line, run-together numbers, duplicates, special F values) is given to the
binary and its Fdump.bin and printed lines are compared.
"""
import gzip
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nbsim.errors import NbsimError
from nbsim.io.hkl import HklTable, read_fdump, read_hkl, write_fdump

GOLDEN = Path(__file__).parent / "golden"
INPUTS = GOLDEN / "inputs"
NB_C_BIN = os.environ.get("NB_C_BIN")


def _golden(case, name):
    return gzip.open(GOLDEN / "cases" / case / f"{name}.gz").read()


def _printed(case, first, last):
    """The stdout lines from ``first`` up to (not including) ``last``."""
    lines = (GOLDEN / "cases" / case / "stdout.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    stop = next(i for i, line in enumerate(lines) if line.startswith(last))
    return lines[start:stop]


@pytest.mark.parametrize("case,hkl,default_F", [("cubic_hkl_N3", "cubic.hkl", 0.0),
                                                ("sparse_default_F", "sparse.hkl", 10.0)])
def test_golden_fdump_and_messages(case, hkl, default_F, tmp_path):
    table = read_hkl(INPUTS / hkl, default_F)
    write_fdump(tmp_path / "Fdump.bin", table)
    assert (tmp_path / "Fdump.bin").read_bytes() == _golden(case, "Fdump.bin")
    shown = [m.replace(str(INPUTS), "{in}") for m in table.messages]
    assert shown == _printed(case, "counting entries", "writing dump file")
    assert table.F.flags.c_contiguous and table.F.dtype == np.float64
    back = read_fdump(tmp_path / "Fdump.bin")
    assert np.array_equal(back.F, table.F)
    assert (back.h_min, back.h_max, back.k_min, back.k_max, back.l_min, back.l_max) == \
        (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max)
    assert back.hkls == table.h_range * table.k_range * table.l_range
    assert back.messages == []


def test_golden_hkls_counts(tmp_path):
    assert read_hkl(INPUTS / "cubic.hkl", 0).hkls == 2197
    assert read_hkl(INPUTS / "sparse.hkl", 10).hkls == 7
    # fdump_reuse read cubic_hkl_N3's dump: hkls = h_range*k_range*l_range = 13**3
    (tmp_path / "Fdump.bin").write_bytes(_golden("cubic_hkl_N3", "Fdump.bin"))
    back = read_fdump(tmp_path / "Fdump.bin")
    assert back.hkls == 2197
    text = (GOLDEN / "cases" / "fdump_reuse" / "stdout.txt").read_text()
    assert f"  {back.hkls} initialized hkls (all others =0)" in text


@pytest.mark.parametrize("name", ["cubic.hkl", "sparse.hkl", "wide.hkl"])
def test_fast_and_careful_readers_agree(name):
    from nbsim.io import hkl
    raw = (INPUTS / name).read_bytes()
    fast = hkl._fast_records(raw)
    careful = hkl._careful_records(raw, name)
    assert fast is not None
    for a, b in zip(fast, careful):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_table_layout(tmp_path):
    path = tmp_path / "t.hkl"
    path.write_text("1 0 -1 5\n-1 2 0 6\n1 0 -1 7\n")
    table = read_hkl(path, 2.5)
    assert (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max) \
        == (-1, 1, 0, 2, -1, 0)
    assert (table.h_range, table.k_range, table.l_range) == (3, 3, 2)
    assert table.F.shape == (4, 4, 3) and table.hkls == 3
    expected = np.zeros((4, 4, 3))
    expected[:3, :3, :2] = 2.5          # default_F fills the real indices only
    expected[0, 2, 1] = 6.0
    expected[2, 0, 0] = 7.0             # the later duplicate wins
    assert np.array_equal(table.F, expected)
    assert table.messages == [f"counting entries in {path}",
                              "initializing to default_F = 2.5:", "done initializing:",
                              f"re-reading {path}"]
    assert read_hkl(str(path), 0).messages == [f"counting entries in {path}",
                                               f"re-reading {path}"]


def test_accepted_spellings(tmp_path):
    path = tmp_path / "odd.hkl"
    path.write_bytes(b"\n  +1\t007 -0 1.5E+2  \r\n\n0 0 0 -.5 0 0 1 0x1p3\n"
                     b"0 1 0 inf 0 1 1 1-2 3 0 12.25\n   \n1 1 1 nan")
    table = read_hkl(path, 0)
    assert table.hkls == 7
    F = table.F
    at = lambda h, k, l: F[h - table.h_min, k - table.k_min, l - table.l_min]  # noqa: E731
    assert at(1, 7, 0) == 150.0 and at(0, 0, 0) == -0.5 and at(0, 0, 1) == 8.0
    assert at(0, 1, 0) == np.inf and np.isnan(at(1, 1, 1))
    # scanf splits "1-2" into F=1 of (0 1 1) and h=-2 of the next record
    assert at(0, 1, 1) == 1.0 and at(-2, 3, 0) == 12.25
    assert (table.h_min, table.h_max, table.k_min, table.k_max) == (-2, 1, 0, 7)


@pytest.mark.parametrize("text,match", [
    ("", "no 'h k l F' records"),
    ("\n \n\t\n", "no 'h k l F' records"),
    ("# comment\n1 2 3 4\n", "line 1: '#' is not a number"),
    ("1 2 3 4\n1 2 3\n", "line 2: expected 'h k l F', found 3 numbers"),
    ("1 2 3 4 5\n", "line 1: expected 'h k l F', found 5 numbers"),
    ("1 2 3\n4\n", "line 1: expected"),
    ("1 2 3 4\n1.0 2 3 4\n", "line 2: h must be an integer, got '1.0'"),
    ("1 2e0 3 4\n", "line 1: k must be an integer, got '2e0'"),
    ("1 2 3.5 4\n", "line 1: l must be an integer"),
    ("1 2 0x3 4\n", "line 1: l must be an integer"),
    ("1 2 3 abc\n", "line 1: 'abc' is not a number"),
    ("1 2 3 4abc\n", "line 1: 'abc' is not a number"),
    ("3000000000 0 0 1\n", "line 1: h=3000000000 is out of range"),
])
def test_bad_hkl_files(tmp_path, text, match):
    path = tmp_path / "bad.hkl"
    path.write_text(text)
    with pytest.raises(NbsimError, match=match) as info:
        read_hkl(path, 0)
    assert "bad.hkl" in str(info.value) and "\n" not in str(info.value)


def test_missing_hkl(tmp_path):
    with pytest.raises(NbsimError, match="nothere.hkl"):
        read_hkl(tmp_path / "nothere.hkl", 0)


def _table(values, lo=(0, 0, 0)):
    F = np.asarray(values, dtype=np.float64)
    hi = tuple(lo[i] + F.shape[i] - 2 for i in range(3))
    return HklTable(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2], F, 0)


def test_fdump_bytes(tmp_path):
    table = _table(np.arange(2 * 3 * 4).reshape(2, 3, 4), lo=(-1, 5, 0))
    write_fdump(tmp_path / "F.bin", table)
    raw = (tmp_path / "F.bin").read_bytes()
    header = b"-1 -1 5 6 0 2\n\f"
    assert raw == header + table.F.astype("=f8").tobytes()
    back = read_fdump(tmp_path / "F.bin")
    assert np.array_equal(back.F, table.F) and back.hkls == 1 * 2 * 3


def test_fdump_swallows_whitespace_data_bytes(tmp_path):
    # first double's first bytes are ' ' and '\t': fscanf's "\n\f" eats them, the
    # data shift left by two bytes and the last two bytes of the array stay zero
    first = struct.unpack("=d", bytes([0x20, 0x09, 0x41, 1, 2, 3, 4, 5]))[0]
    values = np.arange(12, dtype=np.float64).reshape(3, 2, 2)
    values[0, 0, 0] = first
    write_fdump(tmp_path / "F.bin", _table(values))
    data = values.astype("=f8").tobytes()
    expected = np.frombuffer(data[2:] + b"\0\0", dtype="=f8").reshape(3, 2, 2)
    back = read_fdump(tmp_path / "F.bin")
    assert np.array_equal(back.F, expected)


def test_fdump_header_whitespace_variants(tmp_path):
    path = tmp_path / "F.bin"
    data = np.arange(8, dtype="=f8").tobytes()
    path.write_bytes(b"  0 0\n0 0 0\t0 \n\f" + data)
    assert np.array_equal(read_fdump(path).F.ravel(), np.arange(8))


@pytest.mark.parametrize("content,match", [
    (b"", "does not start with six integers"),
    (b"0 0 0 0 0\n\f", "does not start with six integers"),
    (b"0 0 0 x 0 0\n\f", "does not start with six integers"),
    (b"0 0 0 0 0 0\n\f" + bytes(63), "truncated"),
    (b"0 0 0 0 0 0\n\f", "truncated"),
    (b"2 0 0 0 0 0\n\f" + bytes(64), "above its maximum"),
    (b"0 9999999999 0 0 0 0\n\f", "out of range"),
])
def test_bad_fdump(tmp_path, content, match):
    path = tmp_path / "Fdump.bin"
    path.write_bytes(content)
    with pytest.raises(NbsimError, match=match) as info:
        read_fdump(path)
    assert "Fdump.bin" in str(info.value)


def test_missing_fdump(tmp_path):
    with pytest.raises(NbsimError, match="Fdump.bin"):
        read_fdump(tmp_path / "Fdump.bin")


def test_failed_fdump_write_leaves_no_file(tmp_path):
    with pytest.raises(NbsimError):
        write_fdump(tmp_path / "no" / "Fdump.bin", _table(np.zeros((2, 2, 2))))
    wrong_shape = HklTable(0, 0, 0, 0, 0, 0, np.zeros((3, 2, 2)), 0)
    with pytest.raises(ValueError):
        write_fdump(tmp_path / "Fdump.bin", wrong_shape)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not NB_C_BIN, reason="set NB_C_BIN to a nanoBragg binary to compare "
                    "Fdump.bin files written by live reference runs")
@pytest.mark.parametrize("default_F", ["0", "3.5"])
def test_live_reference_fdump(tmp_path, default_F):
    (tmp_path / "odd.hkl").write_bytes(
        b"\n  +1\t007 -0 1.5E+2  \r\n\n-2 0 0 -.5 0 0 1 0x1p3\n"
        b"0 1 0 1e-3 0 1 1 1-2 3 0 12.25\n   \n+1 7 0 99\n 0 -3 2 1e300\n")
    run = subprocess.run([NB_C_BIN, "-cell", "100", "100", "100", "90", "90", "90",
                          "-hkl", "odd.hkl", "-default_F", default_F, "-detpixels", "4",
                          "-nonoise", "-nopgm", "-noprogress", "-floatfile", "f.bin",
                          "-intfile", "i.img"],
                         cwd=tmp_path, capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    table = read_hkl(tmp_path / "odd.hkl", float(default_F))
    assert table.hkls == 8
    write_fdump(tmp_path / "mine.bin", table)
    assert (tmp_path / "mine.bin").read_bytes() == (tmp_path / "Fdump.bin").read_bytes()
    lines = run.stdout.splitlines()
    start = lines.index("counting entries in odd.hkl")
    shown = [m.replace(str(tmp_path / "odd.hkl"), "odd.hkl") for m in table.messages]
    assert lines[start:start + len(shown)] == shown
    assert f"  {table.hkls} initialized hkls" in run.stdout
