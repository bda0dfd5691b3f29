"""nbsim.io.raw: the float image, round-tripped through the golden files."""
import gzip
from pathlib import Path

import numpy as np
import pytest

from nbsim.errors import NbsimError
from nbsim.io.raw import read_float_image, write_float_image

GOLDEN = Path(__file__).parent / "golden" / "cases"


@pytest.mark.parametrize("case,shape", [("cubic_default_F", (128, 128)),
                                        ("mat_tetra_rect", (96, 160))])
def test_golden_round_trip(tmp_path, case, shape):
    raw = gzip.open(GOLDEN / case / "float.bin.gz").read()
    (tmp_path / "in.bin").write_bytes(raw)
    img = read_float_image(tmp_path / "in.bin", shape)
    assert img.dtype == np.float32 and img.shape == shape
    write_float_image(tmp_path / "out.bin", img)
    assert (tmp_path / "out.bin").read_bytes() == raw


def test_conversion_like_c(tmp_path):
    values = np.array([0.1, 1e40, -2.5, 3.0000001], dtype=np.float64)
    write_float_image(tmp_path / "f.bin", values)
    back = np.frombuffer((tmp_path / "f.bin").read_bytes(), dtype="=f4")
    assert back.tolist() == [np.float32(0.1), np.inf, -2.5, np.float32(3.0000001)]


def test_read_errors(tmp_path):
    (tmp_path / "f.bin").write_bytes(bytes(4 * 5))
    with pytest.raises(NbsimError, match=r"f.bin' has 20 bytes, expected 24"):
        read_float_image(tmp_path / "f.bin", (2, 3))
    with pytest.raises(NbsimError, match="nothere.bin"):
        read_float_image(tmp_path / "nothere.bin", (2, 3))
    assert read_float_image(tmp_path / "f.bin", 5).shape == (5,)


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(NbsimError, match="sub"):
        write_float_image(tmp_path / "sub" / "f.bin", np.zeros(3, np.float32))
    assert list(tmp_path.iterdir()) == []
