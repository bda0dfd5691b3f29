"""C-library number parsing and ``%g`` printing, the way glibc does them.

nanoBragg.c reads every number with ``atof``/``atoi`` (command line, SMV headers,
text tables) or with ``fscanf("%lg")``/``fscanf("%d")`` (HKL, matrix and dump
files).  Those functions parse the longest *prefix* that looks like a number and
ignore the rest, so ``"12abc"`` is 12 and ``"abc"`` is 0.  To give the same
numbers from the same text, nbsim parses with the functions here instead of
``float()``/``int()``.

Public helpers
--------------
``c_atof(s)``            glibc ``atof`` (``strtod`` without the end pointer).
``c_atoi(s)``            glibc ``atoi`` (``(int) strtol(s, NULL, 10)``).
``c_strtod(s, pos)``     ``(value, end)``; ``end == pos`` when nothing converts.
``c_strtol(s, pos)``     ``(value, end)`` in base 10, saturating to 64-bit long.
``scan_double(s, pos)``  one ``scanf("%lg")`` conversion: ``(value, end)``.
``scan_int(s, pos)``     one ``scanf("%d")`` conversion: ``(value, end)``.
``fmt_g(x)``             C ``printf("%g", x)`` text, including glibc's ``-nan``.
``c_sprintf(fmt, *args)`` Python ``fmt % args``, but a NaN with its sign bit set
                         prints as ``-nan`` in every floating conversion, as glibc does.

Strings may be ``str`` or ``bytes`` (bytes are read as Latin-1, one char a byte).
Only the C locale is modelled: ``.`` is the decimal point, whitespace is the six
ASCII characters `` \\t\\n\\v\\f\\r`` and digits are ASCII digits.
"""
import math

__all__ = [
    "C_WHITESPACE",
    "c_atof",
    "c_atoi",
    "c_strtod",
    "c_strtol",
    "scan_double",
    "scan_int",
    "ScanFailure",
    "fmt_g",
    "c_sprintf",
    "c_double_to_int",
    "c_ceil_int",
    "printable",
]

#: the characters C's ``isspace`` accepts in the C locale
C_WHITESPACE = " \t\n\v\f\r"

_DIGITS = frozenset("0123456789")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_NAN_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_LONG_MAX = 2**63 - 1
_LONG_MIN = -2**63


def _text(s):
    if isinstance(s, (bytes, bytearray, memoryview)):
        return bytes(s).decode("latin-1")
    return s


def _skip_ws(s, pos):
    n = len(s)
    while pos < n and s[pos] in C_WHITESPACE:
        pos += 1
    return pos


def _run(s, pos, charset):
    """End of the run of characters from ``charset`` starting at ``pos``."""
    n = len(s)
    while pos < n and s[pos] in charset:
        pos += 1
    return pos


def _hex_value(negative, mantissa, exponent):
    """Correctly rounded value of ``0x<mantissa>p<exponent>``."""
    text = ("-" if negative else "") + "0x" + mantissa + "p" + str(exponent)
    try:
        return float.fromhex(text)
    except OverflowError:
        return -math.inf if negative else math.inf


def c_strtod(s, pos=0):
    """glibc ``strtod`` starting at ``pos``: return ``(value, end)``.

    Accepts leading whitespace, a sign, decimal numbers with optional exponent,
    hexadecimal floats (``0x1.8p3``), ``inf``/``infinity`` and ``nan`` with an
    optional ``(chars)`` suffix, all case-insensitive where C is.  When nothing
    converts, returns ``(0.0, pos)`` like C returning its input pointer.  Values
    are correctly rounded (as glibc's are); out-of-range values give ``inf``
    or 0 like glibc (which also sets ``ERANGE``, not modelled).  The payload of a
    ``nan(...)`` is not kept.
    """
    s = _text(s)
    n = len(s)
    start = pos
    i = _skip_ws(s, pos)
    negative = False
    if i < n and s[i] in "+-":
        negative = s[i] == "-"
        i += 1
    low = s[i:i + 8].lower()
    if low.startswith("inf"):
        end = i + (8 if low == "infinity" else 3)
        return (-math.inf if negative else math.inf), end
    if low.startswith("nan"):
        end = i + 3
        if end < n and s[end] == "(":
            close = _run(s, end + 1, _NAN_CHARS)
            if close < n and s[close] == ")":
                end = close + 1
        return math.copysign(math.nan, -1.0 if negative else 1.0), end
    if s[i:i + 2] in ("0x", "0X"):
        j = i + 2
        int_end = _run(s, j, _HEXDIGITS)
        frac_digits = ""
        k = int_end
        if k < n and s[k] == ".":
            frac_end = _run(s, k + 1, _HEXDIGITS)
            frac_digits = s[k + 1:frac_end]
            k = frac_end
        int_digits = s[j:int_end]
        if int_digits or frac_digits:
            exponent = 0
            if k < n and s[k] in "pP":
                m = k + 1
                if m < n and s[m] in "+-":
                    m += 1
                e_end = _run(s, m, _DIGITS)
                if e_end > m:
                    exponent = int(s[k + 1:e_end])
                    k = e_end
            mantissa = (int_digits or "0") + "." + frac_digits
            return _hex_value(negative, mantissa, exponent), k
        # "0x" not followed by a hex digit: only the "0" is a number
        return (-0.0 if negative else 0.0), i + 1
    int_end = _run(s, i, _DIGITS)
    k = int_end
    frac_end = int_end
    if k < n and s[k] == ".":
        frac_end = _run(s, k + 1, _DIGITS)
    if int_end == i and frac_end <= int_end + 1:
        return 0.0, start                      # no digit at all
    k = frac_end if frac_end > int_end else int_end
    if k < n and s[k] in "eE":
        m = k + 1
        if m < n and s[m] in "+-":
            m += 1
        e_end = _run(s, m, _DIGITS)
        if e_end > m:
            k = e_end
    value = float(s[i:k])
    return (-value if negative else value), k


def c_atof(s):
    """glibc ``atof(s)``: the value of the longest numeric prefix, else 0.0."""
    return c_strtod(s)[0]


def c_strtol(s, pos=0):
    """glibc ``strtol(s + pos, &end, 10)``: return ``(value, end)``.

    Overflow saturates at the 64-bit ``LONG_MIN``/``LONG_MAX`` as on x86-64 Linux.
    ``end == pos`` when no digit follows the optional whitespace and sign.
    """
    s = _text(s)
    n = len(s)
    i = _skip_ws(s, pos)
    negative = False
    if i < n and s[i] in "+-":
        negative = s[i] == "-"
        i += 1
    end = _run(s, i, _DIGITS)
    if end == i:
        return 0, pos
    value = int(s[i:end])
    if negative:
        value = -value
    return max(_LONG_MIN, min(_LONG_MAX, value)), end


def _wrap_int32(value):
    return (value + 2**31) % 2**32 - 2**31


def c_atoi(s):
    """glibc ``atoi(s)``: ``(int) strtol(s, NULL, 10)``, wrapping to 32 bits."""
    return _wrap_int32(c_strtol(s)[0])


class ScanFailure(Exception):
    """A ``scanf`` conversion failed; ``pos`` is where the text stopped matching.

    ``eof`` is true when only whitespace was left (C's ``EOF`` return).
    """

    def __init__(self, pos, eof):
        super().__init__(pos, eof)
        self.pos = pos
        self.eof = eof


def scan_double(s, pos=0):
    """One glibc ``scanf("%lg")`` conversion at ``pos``: ``(value, end)``.

    ``end`` is where the next directive would start reading.  This is not the
    same as ``strtod``: scanf first gathers the characters that could belong to
    a number (consuming them), then converts the gathered text.  So ``"1e+x"``
    gives 1.0 with ``end`` after the ``+``, and ``"0xg"`` or ``"-x"`` fail.
    Raises :class:`ScanFailure` on a matching failure or end of input.
    """
    s = _text(s)
    n = len(s)
    i = _skip_ws(s, pos)
    if i >= n:
        raise ScanFailure(i, True)
    start = i
    got_sign = 0
    if s[i] in "+-":
        got_sign = 1
        i += 1
        if i >= n:
            raise ScanFailure(i, False)
    low = s[i:i + 8].lower()
    if low[:1] == "n":
        if low[:3] != "nan":
            raise ScanFailure(i, False)
        end = i + 3
        return c_strtod(s[start:end])[0], end
    if low[:1] == "i":
        if low[:3] != "inf":
            raise ScanFailure(i, False)
        end = i + 3
        if end < n and s[end] in "iI":
            if low != "infinity":
                raise ScanFailure(i, False)
            end = i + 8
        return c_strtod(s[start:end])[0], end
    hexa = False
    got_digit = got_dot = got_e = False
    exp_char = "e"
    if s[i] == "0":
        i += 1
        if i < n and s[i] in "xX":
            hexa = True
            exp_char = "p"
            i += 1
        else:
            got_digit = True
    while i < n:
        c = s[i]
        if c in _DIGITS:
            got_digit = True
        elif hexa and not got_e and c in _HEXDIGITS:
            got_digit = True
        elif got_e and s[i - 1].lower() == exp_char and c in "+-":
            pass
        elif got_digit and not got_e and c.lower() == exp_char:
            got_e = got_dot = True
        elif not got_dot and c == ".":
            got_dot = True
        else:
            break
        i += 1
    gathered = i - start
    if gathered == got_sign or (hexa and gathered == 2 + got_sign):
        raise ScanFailure(i, False)
    text = s[start:i]
    value, used = c_strtod(text)
    if used == 0:
        raise ScanFailure(i, False)
    return value, i


def scan_int(s, pos=0):
    """One glibc ``scanf("%d")`` conversion at ``pos``: ``(value, end)``.

    ``value`` is what ``strtol`` makes of the digits (a Python int saturated at
    64 bits); storing it in a C ``int`` would keep only the low 32 bits, which is
    left to the caller.  Raises :class:`ScanFailure` like :func:`scan_double`.
    """
    s = _text(s)
    n = len(s)
    i = _skip_ws(s, pos)
    if i >= n:
        raise ScanFailure(i, True)
    start = i
    if s[i] in "+-":
        i += 1
        if i >= n:
            raise ScanFailure(i, False)
    end = _run(s, i, _DIGITS)
    if end == i:
        raise ScanFailure(end, False)
    return c_strtol(s[start:end])[0], end


def fmt_g(x):
    """``printf("%g", x)`` as glibc prints it.

    Python's ``'%g'`` agrees with glibc for every finite value and for
    infinities; the one difference is a NaN with its sign bit set, which glibc
    prints as ``-nan`` and Python as ``nan``.
    """
    x = float(x)
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return "%g" % x


_CONVERSION = None


def c_sprintf(fmt, *args):
    """``fmt % args`` with glibc's rendering of a negative NaN (``-nan``; Python prints
    every NaN as ``nan``). Widths are kept: ``"%11.8f"`` of -nan is ``"       -nan"``."""
    global _CONVERSION
    import re
    if _CONVERSION is None:
        _CONVERSION = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?[a-zA-Z%]")
    out = []
    pos = 0
    i = 0
    for m in _CONVERSION.finditer(fmt):
        out.append(fmt[pos:m.start()])
        spec = m.group(0)
        pos = m.end()
        if spec == "%%":
            out.append("%")
            continue
        x = args[i]
        i += 1
        text = spec % x
        if spec[-1] in "eEfFgG" and isinstance(x, float) and x != x \
                and math.copysign(1.0, x) < 0:
            nan = "-NAN" if spec[-1].isupper() else "-nan"
            width = len(text)
            text = nan.ljust(width) if "-" in spec[1:-1] else nan.rjust(width)
        out.append(text)
    out.append(fmt[pos:])
    return "".join(out)


_INT_MIN = -2**31


def c_double_to_int(x):
    """C's ``(int) x`` for a double on x86-64: truncation toward zero, and for NaN,
    infinities and values outside the ``int`` range the "integer indefinite"
    ``INT_MIN`` that the ``cvttsd2si`` instruction returns."""
    x = float(x)
    if not math.isfinite(x) or not -2.0**31 - 1.0 < x < 2.0**31:
        return _INT_MIN
    return int(x)


def c_ceil_int(x):
    """C's ``(int) ceil(x)``, see :func:`c_double_to_int`."""
    x = float(x)
    return c_double_to_int(math.ceil(x) if math.isfinite(x) else x)


def printable(text, limit=40):
    """``text`` (str or bytes, bytes read as Latin-1) fit for a one-line message:
    control and non-ASCII characters as ``\\xNN`` (``\\uNNNN`` beyond Latin-1) escapes, cut
    at ``limit`` chars."""
    text = _text(text)
    out = "".join(c if " " <= c <= "~" else "\\x%02x" % ord(c) if ord(c) < 0x100
                  else "\\u%04x" % ord(c) if ord(c) < 0x10000 else "\\U%08x" % ord(c)
                  for c in text[:limit])
    return out + ("..." if len(text) > limit else "")
