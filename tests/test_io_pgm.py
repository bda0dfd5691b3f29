"""nbsim.io.pgm: the 8-bit preview, byte for byte like the golden image.pgm files."""
import glob
import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest

from nbsim.errors import NbsimError
from nbsim.io.cparse import c_atof
from nbsim.io.pgm import format_pgm_header, write_pgm

GOLDEN = Path(__file__).parent / "golden" / "cases"
PGMS = sorted(glob.glob(str(GOLDEN / "*" / "image.pgm.gz")))
HEADER = re.compile(rb"P5\n(\d+) (\d+)\n# pixels scaled by (\S+)\n255\n")


@pytest.mark.parametrize("path", PGMS, ids=[os.path.basename(os.path.dirname(p))
                                            for p in PGMS])
def test_golden_pgm(tmp_path, path):
    raw = gzip.open(path).read()
    head = HEADER.match(raw)
    fpixels, spixels = int(head.group(1)), int(head.group(2))
    scale = c_atof(head.group(3))
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=head.end()).reshape(spixels, fpixels)
    write_pgm(tmp_path / "image.pgm", pixels, fpixels, spixels, scale)
    assert (tmp_path / "image.pgm").read_bytes() == raw


def test_pgm_scale_printed_like_the_run():
    # the run prints "pgm_scale = %g" and writes "# pixels scaled by %lg": same text
    stdout = (GOLDEN / "pgmscale" / "stdout.txt").read_text()
    printed = re.search(r"^pgm_scale = (\S+)$", stdout, re.M).group(1)
    raw = gzip.open(GOLDEN / "pgmscale" / "image.pgm.gz").read()
    assert f"# pixels scaled by {printed}\n".encode() in raw[:100]
    assert format_pgm_header(3, 2, c_atof(printed)) == \
        f"P5\n3 2\n# pixels scaled by {printed}\n255\n".encode()


def test_special_scales():
    assert format_pgm_header(1, 1, float("inf")) == b"P5\n1 1\n# pixels scaled by inf\n255\n"
    assert b"by 1.23457e-07\n" in format_pgm_header(1, 1, 1.234567e-7)


def test_bad_arguments_and_failed_write(tmp_path):
    with pytest.raises(TypeError):
        write_pgm(tmp_path / "a.pgm", np.zeros(4, np.float32), 2, 2, 1.0)
    with pytest.raises(ValueError):
        write_pgm(tmp_path / "a.pgm", np.zeros(5, np.uint8), 2, 2, 1.0)
    with pytest.raises(NbsimError, match="nodir"):
        write_pgm(tmp_path / "nodir" / "a.pgm", np.zeros(4, np.uint8), 2, 2, 1.0)
    assert list(tmp_path.iterdir()) == []
