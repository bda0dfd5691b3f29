"""The C library's answers where Python's ``math`` raises instead.

The setup code reproduces nanoBragg.c's arithmetic with Python floats, which are the
same IEEE doubles: ``+ - * /`` give the same bits, and ``math.sin`` and friends call
the same C library for finite arguments. Python departs from C only at the edges:
``x / 0.0`` raises ZeroDivisionError, ``math.sin(inf)`` and ``math.sqrt(-1)`` raise
ValueError, ``math.exp(1000)`` raises OverflowError. The reference accepts any number
on its command line and carries such values on as infinities and NaNs (and its image
may still be finite). These helpers return what glibc returns on x86-64, including
the sign of the NaN, which ``printf`` shows as ``-nan``: an invalid operation makes
the "default NaN", whose sign bit is set; a NaN argument passes through unchanged.
"""
import math

import numpy as np

__all__ = ["DEFAULT_NAN", "c_div", "c_sin", "c_cos", "c_sqrt", "c_exp"]

_INF = float("inf")
#: the NaN an invalid operation produces on x86-64 (sign bit set: printf shows -nan)
DEFAULT_NAN = _INF - _INF


def c_div(a, b):
    """IEEE ``a / b`` as C computes it: ``x / 0`` is a signed infinity or NaN."""
    if b != 0.0 or b != b:
        return a / b
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def _invalid(x):
    """glibc's result for an argument outside a function's domain: a NaN argument
    passes through, anything else gives the default NaN."""
    return x + x if x != x else DEFAULT_NAN


def c_sin(x):
    return math.sin(x) if math.isfinite(x) else _invalid(x)


def c_cos(x):
    return math.cos(x) if math.isfinite(x) else _invalid(x)


def c_sqrt(x):
    return math.sqrt(x) if x >= 0.0 else _invalid(x)


def c_exp(x):
    if x != x:
        return x + x
    try:
        return math.exp(x)
    except OverflowError:
        return _INF
