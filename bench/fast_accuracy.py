#!/usr/bin/env python3
"""How close -fast comes to parity mode, per spot shape and structure-factor source.

    python bench/fast_accuracy.py [--pixels 256] [--engine c] [--variants NAME,...]

Renders W2's crystal (``--pixels`` per side, the pixel size scaled so the detector
covers W2's angles) in parity mode and with ``-fast`` for each variant and prints,
for the float image: the Pearson correlation (as 1 - r), the largest relative
difference of a pixel, the relative difference of the sums, and how many pixels
have the very same float32 value.  tests/test_fast.py checks the promise (Pearson
>= 1 - 1e-9, every pixel within 1e-6) on smaller mixes of every feature.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from engine_classes import BASE, write_hkl  # noqa: E402

VARIANTS = {
    "square (W2)": "",
    "square N=20": "-N 20",
    "round": "-round_xtal",
    "gauss": "-gauss_xtal",
    "tophat": "-tophat_spots",
    "square+hkl": "-hkl {hkl} -nointerpolate",
    "square+interpolate": "-hkl {hkl} -interpolate",
    "round+interpolate": "-round_xtal -hkl {hkl} -interpolate",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=256)
    ap.add_argument("--engine", default="c")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args(argv)
    from nbsim.api import render
    from nbsim.cli import config_from_args
    from nbsim.plan import make_plan
    hkl = os.path.join(tempfile.mkdtemp(prefix="nbsim_fastacc_"), "table.hkl")
    write_hkl(hkl)
    pixel = 0.1 * 512 / a.pixels
    print("%-20s %10s %12s %12s %16s" % ("variant", "1 - r", "max rel", "sum rel",
                                          "same float32"))
    for name in a.variants.split(","):
        args = (BASE + " -detpixels %d -pixel %g " % (a.pixels, pixel)
                + VARIANTS[name].format(hkl=hkl)).split()
        exact = render(make_plan(config_from_args(args)[0]), engine=a.engine).image
        fast = render(make_plan(config_from_args(args + ["-fast"])[0]), engine=a.engine).image
        e = exact.astype(np.float64)
        f = fast.astype(np.float64)
        r = np.corrcoef(e.ravel(), f.ravel())[0, 1]
        nz = e != 0
        rel = np.max(np.abs(f - e)[nz] / np.abs(e[nz])) if nz.any() else 0.0
        zeros_kept = bool(np.all(f[~nz] == 0))
        print("%-20s %10.1e %12.1e %12.1e %9d/%d%s" % (
            name, 1.0 - r, rel, abs(f.sum() - e.sum()) / e.sum(),
            np.count_nonzero(exact == fast), e.size, "" if zeros_kept else "  (zeros moved!)"),
            flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
