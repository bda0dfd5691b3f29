"""nbsim.io.cparse against glibc.

The expected values below were produced by a throwaway C program (not part of the
repository) calling glibc 2.36's ``strtod``, ``strtol``, ``atoi``,
``sscanf("%lg%n")``, ``sscanf("%d%n")`` and ``printf("%g")`` on each input; the
bit patterns are the doubles' IEEE-754 encodings.  ``scanf`` return -1 means
end of input, 0 a matching failure.

Optional: with ``NB_C_BIN`` set to a nanoBragg binary, the program's own ``atof``
of command-line values is checked through the DISTANCE it writes to its header.
"""
import math
import os
import struct
import subprocess

import pytest

from nbsim.io.cparse import (ScanFailure, c_atof, c_atoi, c_strtod, c_strtol, fmt_g,
                             scan_double, scan_int)

# (text, strtod_bits, strtod_end, strtol, strtol_end, atoi, scanf_lg_ret, scanf_lg_bits, scanf_lg_n, scanf_d_ret, scanf_d_value, scanf_d_n)
GLIBC_CASES = [
    ('', 0x0, 0, 0, 0, 0, -1, 0x0, -1, -1, 0, -1),
    ('  ', 0x0, 0, 0, 0, 0, -1, 0x0, -1, -1, 0, -1),
    ('1', 0x3ff0000000000000, 1, 1, 1, 1, 1, 0x3ff0000000000000, 1, 1, 1, 1),
    ('-1', 0xbff0000000000000, 2, -1, 2, -1, 1, 0xbff0000000000000, 2, 1, -1, 2),
    ('+1', 0x3ff0000000000000, 2, 1, 2, 1, 1, 0x3ff0000000000000, 2, 1, 1, 2),
    ('1.', 0x3ff0000000000000, 2, 1, 1, 1, 1, 0x3ff0000000000000, 2, 1, 1, 1),
    ('.5', 0x3fe0000000000000, 2, 0, 0, 0, 1, 0x3fe0000000000000, 2, 0, 0, -1),
    ('.', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('-.', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('-.5e1', 0xc014000000000000, 5, 0, 0, 0, 1, 0xc014000000000000, 5, 0, 0, -1),
    ('1e5', 0x40f86a0000000000, 3, 1, 1, 1, 1, 0x40f86a0000000000, 3, 1, 1, 1),
    ('1e', 0x3ff0000000000000, 1, 1, 1, 1, 1, 0x3ff0000000000000, 2, 1, 1, 1),
    ('1e+', 0x3ff0000000000000, 1, 1, 1, 1, 1, 0x3ff0000000000000, 3, 1, 1, 1),
    ('1e+x', 0x3ff0000000000000, 1, 1, 1, 1, 1, 0x3ff0000000000000, 3, 1, 1, 1),
    ('1e-5', 0x3ee4f8b588e368f1, 4, 1, 1, 1, 1, 0x3ee4f8b588e368f1, 4, 1, 1, 1),
    ('1E5', 0x40f86a0000000000, 3, 1, 1, 1, 1, 0x40f86a0000000000, 3, 1, 1, 1),
    ('1.e5', 0x40f86a0000000000, 4, 1, 1, 1, 1, 0x40f86a0000000000, 4, 1, 1, 1),
    ('12abc', 0x4028000000000000, 2, 12, 2, 12, 1, 0x4028000000000000, 2, 1, 12, 2),
    ('abc', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('  \t\n12.5abc', 0x4029000000000000, 8, 12, 6, 12, 1, 0x4029000000000000, 8, 1, 12, 6),
    ('\x0b\x0c\r-3', 0xc008000000000000, 5, -3, 5, -3, 1, 0xc008000000000000, 5, 1, -3, 5),
    ('0x', 0x0, 1, 0, 1, 0, 0, 0x0, -1, 1, 0, 1),
    ('0x1', 0x3ff0000000000000, 3, 0, 1, 0, 1, 0x3ff0000000000000, 3, 1, 0, 1),
    ('0x1p3', 0x4020000000000000, 5, 0, 1, 0, 1, 0x4020000000000000, 5, 1, 0, 1),
    ('0x1.8p-3', 0x3fc8000000000000, 8, 0, 1, 0, 1, 0x3fc8000000000000, 8, 1, 0, 1),
    ('0X.8P1', 0x3ff0000000000000, 6, 0, 1, 0, 1, 0x3ff0000000000000, 6, 1, 0, 1),
    ('0xg', 0x0, 1, 0, 1, 0, 0, 0x0, -1, 1, 0, 1),
    ('0x.', 0x0, 1, 0, 1, 0, 1, 0x0, 3, 1, 0, 1),
    ('0x1p', 0x3ff0000000000000, 3, 0, 1, 0, 1, 0x3ff0000000000000, 4, 1, 0, 1),
    ('0x1p+', 0x3ff0000000000000, 3, 0, 1, 0, 1, 0x3ff0000000000000, 5, 1, 0, 1),
    ('-0x1p3', 0xc020000000000000, 6, 0, 2, 0, 1, 0xc020000000000000, 6, 1, 0, 2),
    ('0x1e5', 0x407e500000000000, 5, 0, 1, 0, 1, 0x407e500000000000, 5, 1, 0, 1),
    ('0x1E+5', 0x403e000000000000, 4, 0, 1, 0, 1, 0x403e000000000000, 4, 1, 0, 1),
    ('0xe', 0x402c000000000000, 3, 0, 1, 0, 1, 0x402c000000000000, 3, 1, 0, 1),
    ('0x1p-1074', 0x1, 9, 0, 1, 0, 1, 0x1, 9, 1, 0, 1),
    ('0x1p-1075', 0x0, 9, 0, 1, 0, 1, 0x0, 9, 1, 0, 1),
    ('0x1.8p-1074', 0x2, 11, 0, 1, 0, 1, 0x2, 11, 1, 0, 1),
    ('0x1p1024', 0x7ff0000000000000, 8, 0, 1, 0, 1, 0x7ff0000000000000, 8, 1, 0, 1),
    ('0x1.fffffffffffff8p0', 0x4000000000000000, 20, 0, 1, 0, 1, 0x4000000000000000, 20, 1, 0, 1),
    ('inf', 0x7ff0000000000000, 3, 0, 0, 0, 1, 0x7ff0000000000000, 3, 0, 0, -1),
    ('-inf', 0xfff0000000000000, 4, 0, 0, 0, 1, 0xfff0000000000000, 4, 0, 0, -1),
    ('INF', 0x7ff0000000000000, 3, 0, 0, 0, 1, 0x7ff0000000000000, 3, 0, 0, -1),
    ('infinity', 0x7ff0000000000000, 8, 0, 0, 0, 1, 0x7ff0000000000000, 8, 0, 0, -1),
    ('-Infinity', 0xfff0000000000000, 9, 0, 0, 0, 1, 0xfff0000000000000, 9, 0, 0, -1),
    ('infin', 0x7ff0000000000000, 3, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('infinit', 0x7ff0000000000000, 3, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('infx', 0x7ff0000000000000, 3, 0, 0, 0, 1, 0x7ff0000000000000, 3, 0, 0, -1),
    ('in', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('nan', 0x7ff8000000000000, 3, 0, 0, 0, 1, 0x7ff8000000000000, 3, 0, 0, -1),
    ('-nan', 0xfff8000000000000, 4, 0, 0, 0, 1, 0xfff8000000000000, 4, 0, 0, -1),
    ('NaN', 0x7ff8000000000000, 3, 0, 0, 0, 1, 0x7ff8000000000000, 3, 0, 0, -1),
    ('nan(123)', 0x7ff800000000007b, 8, 0, 0, 0, 1, 0x7ff8000000000000, 3, 0, 0, -1),
    ('nan()', 0x7ff8000000000000, 5, 0, 0, 0, 1, 0x7ff8000000000000, 3, 0, 0, -1),
    ('nan(', 0x7ff8000000000000, 3, 0, 0, 0, 1, 0x7ff8000000000000, 3, 0, 0, -1),
    ('nan(1 2)', 0x7ff8000000000000, 3, 0, 0, 0, 1, 0x7ff8000000000000, 3, 0, 0, -1),
    ('nana', 0x7ff8000000000000, 3, 0, 0, 0, 1, 0x7ff8000000000000, 3, 0, 0, -1),
    ('n', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('-', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('+', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    (' -', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('+-1', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('-+1', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('99999999999999999999', 0x4415af1d78b58c40, 20, 9223372036854775807, 20, -1, 1, 0x4415af1d78b58c40, 20, 1, -1, 20),
    ('-99999999999999999999', 0xc415af1d78b58c40, 21, -9223372036854775808, 21, 0, 1, 0xc415af1d78b58c40, 21, 1, 0, 21),
    ('9223372036854775807', 0x43e0000000000000, 19, 9223372036854775807, 19, -1, 1, 0x43e0000000000000, 19, 1, -1, 19),
    ('9223372036854775808', 0x43e0000000000000, 19, 9223372036854775807, 19, -1, 1, 0x43e0000000000000, 19, 1, -1, 19),
    ('4294967297', 0x41f0000000100000, 10, 4294967297, 10, 1, 1, 0x41f0000000100000, 10, 1, 1, 10),
    ('2147483647', 0x41dfffffffc00000, 10, 2147483647, 10, 2147483647, 1, 0x41dfffffffc00000, 10, 1, 2147483647, 10),
    ('2147483648', 0x41e0000000000000, 10, 2147483648, 10, -2147483648, 1, 0x41e0000000000000, 10, 1, -2147483648, 10),
    ('-2147483648', 0xc1e0000000000000, 11, -2147483648, 11, -2147483648, 1, 0xc1e0000000000000, 11, 1, -2147483648, 11),
    ('-2147483649', 0xc1e0000000200000, 11, -2147483649, 11, 2147483647, 1, 0xc1e0000000200000, 11, 1, 2147483647, 11),
    ('007', 0x401c000000000000, 3, 7, 3, 7, 1, 0x401c000000000000, 3, 1, 7, 3),
    ('-0', 0x8000000000000000, 2, 0, 2, 0, 1, 0x8000000000000000, 2, 1, 0, 2),
    ('+0', 0x0, 2, 0, 2, 0, 1, 0x0, 2, 1, 0, 2),
    ('1e400', 0x7ff0000000000000, 5, 1, 1, 1, 1, 0x7ff0000000000000, 5, 1, 1, 1),
    ('-1e400', 0xfff0000000000000, 6, -1, 2, -1, 1, 0xfff0000000000000, 6, 1, -1, 2),
    ('1e-400', 0x0, 6, 1, 1, 1, 1, 0x0, 6, 1, 1, 1),
    ('4.9e-324', 0x1, 8, 4, 1, 4, 1, 0x1, 8, 1, 4, 1),
    ('2.4703282292062328e-324', 0x1, 23, 2, 1, 2, 1, 0x1, 23, 1, 2, 1),
    ('2.4703282292062329e-324', 0x1, 23, 2, 1, 2, 1, 0x1, 23, 1, 2, 1),
    ('0.1', 0x3fb999999999999a, 3, 0, 1, 0, 1, 0x3fb999999999999a, 3, 1, 0, 1),
    ('123456789012345678901234567890', 0x45f8ee90ff6c373e, 30, 9223372036854775807, 30, -1, 1, 0x45f8ee90ff6c373e, 30, 1, -1, 30),
    ('1.7976931348623157e308', 0x7fefffffffffffff, 22, 1, 1, 1, 1, 0x7fefffffffffffff, 22, 1, 1, 1),
    ('1.7976931348623159e308', 0x7ff0000000000000, 22, 1, 1, 1, 1, 0x7ff0000000000000, 22, 1, 1, 1),
    ('e5', 0x0, 0, 0, 0, 0, 0, 0x0, -1, 0, 0, -1),
    ('0e5', 0x0, 3, 0, 1, 0, 1, 0x0, 3, 1, 0, 1),
    ('0.000', 0x0, 5, 0, 1, 0, 1, 0x0, 5, 1, 0, 1),
    ('1.2.3', 0x3ff3333333333333, 3, 1, 1, 1, 1, 0x3ff3333333333333, 3, 1, 1, 1),
    ('1e5e5', 0x40f86a0000000000, 3, 1, 1, 1, 1, 0x40f86a0000000000, 3, 1, 1, 1),
    ('1-2', 0x3ff0000000000000, 1, 1, 1, 1, 1, 0x3ff0000000000000, 1, 1, 1, 1),
    ('512;\nDIM', 0x4080000000000000, 3, 512, 3, 512, 1, 0x4080000000000000, 3, 1, 512, 3),
    ('  512;', 0x4080000000000000, 5, 512, 5, 512, 1, 0x4080000000000000, 5, 1, 512, 5),
    ('6.45;', 0x4019cccccccccccd, 4, 6, 1, 6, 1, 0x4019cccccccccccd, 4, 1, 6, 1),
    ('1,5', 0x3ff0000000000000, 1, 1, 1, 1, 1, 0x3ff0000000000000, 1, 1, 1, 1),
    ('1;2', 0x3ff0000000000000, 1, 1, 1, 1, 1, 0x3ff0000000000000, 1, 1, 1, 1),
    ('3.14159265358979323846264338327950288', 0x400921fb54442d18, 37, 3, 1, 3, 1, 0x400921fb54442d18, 37, 1, 3, 1),
    ('0.1e-3', 0x3f1a36e2eb1c432d, 6, 0, 1, 0, 1, 0x3f1a36e2eb1c432d, 6, 1, 0, 1),
    ('5e-324', 0x1, 6, 5, 1, 5, 1, 0x1, 6, 1, 5, 1),
    ('1e-5x', 0x3ee4f8b588e368f1, 4, 1, 1, 1, 1, 0x3ee4f8b588e368f1, 4, 1, 1, 1),
    ('12345678901234567', 0x4345ee2a2eb5a5c4, 17, 12345678901234567, 17, 1567312775, 1, 0x4345ee2a2eb5a5c4, 17, 1, 1567312775, 17),
    ('-0.0', 0x8000000000000000, 4, 0, 2, 0, 1, 0x8000000000000000, 4, 1, 0, 2),
]
GLIBC_G = [
    (0.0, '0'),
    (-0.0, '-0'),
    (float('inf'), 'inf'),
    (float('-inf'), '-inf'),
    (1234565.0, '1.23456e+06'),
    (1234575.0, '1.23458e+06'),
    (0.5, '0.5'),
    (2.5, '2.5'),
    (1e-05, '1e-05'),
    (0.0001, '0.0001'),
    (0.0001234565, '0.000123457'),
    (123456.5, '123456'),
    (999999.5, '1e+06'),
    (9999995.0, '1e+07'),
    (1e+16, '1e+16'),
    (6.45, '6.45'),
    (0.30000000000000004, '0.3'),
    (100.0, '100'),
    (-6.5, '-6.5'),
    (1e+100, '1e+100'),
    (-1.23456789e-300, '-1.23457e-300'),
    (5e-324, '4.94066e-324'),
    (1.7976931348623157e+308, '1.79769e+308'),
    (65.5, '65.5'),
    (0.1, '0.1'),
]


def _bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _same_double(bits, value):
    expected = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if math.isnan(expected):
        # glibc keeps a nan(...) payload; nbsim keeps only the sign
        return math.isnan(value) and math.copysign(1, expected) == math.copysign(1, value)
    return _bits(value) == bits


@pytest.mark.parametrize("case", GLIBC_CASES, ids=[repr(c[0]) for c in GLIBC_CASES])
def test_matches_glibc(case):
    (text, d_bits, d_end, l_val, l_end, atoi_val,
     lg_ret, lg_bits, lg_n, d_ret, d_val, d_n) = case
    value, end = c_strtod(text)
    assert _same_double(d_bits, value) and end == d_end
    assert _same_double(d_bits, c_atof(text))
    assert c_strtol(text) == (l_val, l_end)
    assert c_atoi(text) == atoi_val
    if lg_ret == 1:
        value, end = scan_double(text)
        assert _same_double(lg_bits, value) and end == lg_n
    else:
        with pytest.raises(ScanFailure) as info:
            scan_double(text)
        assert info.value.eof == (lg_ret == -1)
    if d_ret == 1:
        value, end = scan_int(text)
        assert (value + 2**31) % 2**32 - 2**31 == d_val and end == d_n
    else:
        with pytest.raises(ScanFailure) as info:
            scan_int(text)
        assert info.value.eof == (d_ret == -1)


@pytest.mark.parametrize("value,text", GLIBC_G, ids=[t for _, t in GLIBC_G])
def test_fmt_g_matches_glibc(value, text):
    assert fmt_g(value) == text


def test_fmt_g_nan_sign():
    # glibc: printf("%g %g", NAN, -NAN) prints "nan -nan"
    assert fmt_g(math.nan) == "nan"
    assert fmt_g(-math.nan) == "-nan"
    assert fmt_g(math.copysign(math.nan, -1)) == "-nan"


def test_bytes_and_offsets():
    assert c_atof(b"  2.5e1xyz") == 25.0
    assert c_strtod("ab 1.5;", 2) == (1.5, 6)
    assert c_strtod("ab", 1) == (0.0, 1)          # nothing converts: end is the start
    assert c_strtol(b"x-12y", 1) == (-12, 4)
    assert scan_double("1 2.5", 1) == (2.5, 5)
    assert scan_int(" 7 8", 2) == (8, 4)
    assert c_atof("\xb2") == 0.0                  # a Latin-1 superscript is not a digit
    assert c_atoi("\u0663") == 0                  # nor is an Arabic-Indic digit


def test_scan_failure_position():
    with pytest.raises(ScanFailure) as info:
        scan_double("  1 abc", 3)
    assert not info.value.eof and info.value.pos >= 4


NB_C_BIN = os.environ.get("NB_C_BIN")


@pytest.mark.skipif(not NB_C_BIN, reason="set NB_C_BIN to a nanoBragg binary to compare "
                    "its command-line atof with c_atof")
@pytest.mark.parametrize("text", ["150", "1.5e2xyz", "0x64", " +80.", "1e2.5", "2e", ".5e3"])
def test_reference_atof_via_distance(text, tmp_path):
    subprocess.run([NB_C_BIN, "-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1",
                    "-detpixels", "4", "-distance", text, "-nonoise", "-nopgm", "-noprogress",
                    "-floatfile", "f.bin", "-intfile", "i.img"],
                   cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"),
                   check=True, capture_output=True)
    header = (tmp_path / "i.img").read_bytes()[:512].decode("latin-1")
    printed = header.split("\nDISTANCE=", 1)[1].split(";", 1)[0]
    assert printed == fmt_g(c_atof(text) / 1000.0 * 1000.0)
