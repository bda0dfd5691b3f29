#!/usr/bin/env python3
"""Which engine is faster for which kind of job: the measurements behind ``-engine auto``.

    python bench/engine_classes.py [--pixels 128] [--repeats 5] [--threads 1]
                                   [--startup-runs 7] [--classes NAME,...] [--json PATH]

For each workload class (parity or -fast; square, round, Gaussian or top-hat
crystal; one F, an hkl table or tricubic interpolation; a few geometry options)
it renders the same plan in-process with ``-engine c`` and ``-engine numba`` in
alternation, ``--repeats`` times each, and reports the smallest CPU time and the
smallest wall time of each engine per inner evaluation (on a shared machine CPU
time is what another process's load disturbs least; with several threads, wall
time also shows how well each engine spreads the rows).  The start-up cost of each
engine is measured apart, as whole ``python -m nbsim`` processes on a 64x64 image
run in alternation (``--startup-runs`` each; wall time, smallest).

nbsim.api.choose_engine's table is written from this script's output; see
bench/RESULTS-2026-12-01.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

HKL_NAME = "engine_classes.hkl"

# a W2-like crystal (triclinic, mosaic, divergence), with the detector size set by
# --pixels; the classes add what makes the inner evaluation differ
BASE = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -N 5 -default_F 100 "
        "-distance 100 -oversample 2 -mosaic 0.5 -mosaic_dom 10 -mosaic_seed 42 "
        "-hdivrange 0.3 -vdivrange 0.3 -hdivsteps 3 -vdivsteps 3 -square_div -noprogress")
CLASSES = {
    "square": "",
    "round": "-round_xtal",
    "gauss": "-gauss_xtal",
    "tophat": "-tophat_spots",
    "square+hkl": "-hkl {hkl} -nointerpolate",
    "square+interpolate": "-hkl {hkl} -interpolate",
    "round+hkl": "-round_xtal -hkl {hkl} -nointerpolate",
    "square+per-term": "-oversample_polar -oversample_omega",
    "square+curved": "-curved_det -round_div",
    "square-N20": "-N 20",
}


def write_hkl(path, half=40, seed=5):
    """A structure-factor table wide enough for W2's geometry (|h|, |k|, |l| <= 40)."""
    import numpy as np
    r = np.random.default_rng(seed)
    F = r.uniform(10.0, 300.0, (2 * half + 1,) * 3)
    with open(path, "w") as fh:
        for i, h in enumerate(range(-half, half + 1)):
            for j, k in enumerate(range(-half, half + 1)):
                for m, l in enumerate(range(-half, half + 1)):
                    fh.write("%d %d %d %.4f\n" % (h, k, l, F[i, j, m]))


def class_args(name, pixels, hkl):
    pixel = 0.1 * 512 / pixels          # the detector covers W2's angles at any size
    extra = CLASSES[name].format(hkl=hkl)
    return (BASE + " -detpixels %d -pixel %g " % (pixels, pixel) + extra).split()


def measure_class(args, fast, repeats, threads):
    from nbsim.api import evaluations, render
    from nbsim.cli import config_from_args
    from nbsim.plan import make_plan
    plan = make_plan(config_from_args(args + (["-fast"] if fast else []))[0])
    n = evaluations(plan)
    cpu, wall = {}, {}
    for engine in ("c", "numba"):          # warm-up (Numba's cache, page faults)
        render(plan, engine=engine, threads=threads)
    for _ in range(repeats):
        for engine in ("c", "numba"):
            t, w = time.process_time(), time.perf_counter()
            render(plan, engine=engine, threads=threads)
            dt, dw = time.process_time() - t, time.perf_counter() - w
            cpu[engine] = min(cpu.get(engine, dt), dt)
            wall[engine] = min(wall.get(engine, dw), dw)
    return n, {e: cpu[e] / n * 1e9 for e in cpu}, {e: wall[e] / n * 1e9 for e in wall}


def measure_startup(runs):
    """Smallest wall time of whole processes on a 64x64 image, per engine."""
    args = ("-cell 100 100 100 90 90 90 -lambda 6.2 -N 5 -default_F 100 -detpixels 64 "
            "-pixel 0.1 -distance 100 -floatfile {out} -nopgm -nonoise -noprogress").split()
    best = {}
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "f.bin")
        cmd = [sys.executable, "-m", "nbsim"] + [a.format(out=out) for a in args]
        for engine in ("c", "numba"):       # warm-up
            subprocess.run(cmd + ["-engine", engine], env=env, capture_output=True, check=True)
        for _ in range(runs):
            for engine in ("c", "numba"):
                t = time.perf_counter()
                subprocess.run(cmd + ["-engine", engine], env=env, capture_output=True,
                               check=True)
                dt = time.perf_counter() - t
                best[engine] = min(best.get(engine, dt), dt)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=128, help="detector side (default 128)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--startup-runs", type=int, default=7)
    ap.add_argument("--classes", default=",".join(CLASSES))
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import tempfile
    tmp = tempfile.mkdtemp(prefix="nbsim_classes_")
    hkl = os.path.join(tmp, HKL_NAME)
    write_hkl(hkl)
    rows = []
    print("%d thread(s); ns per evaluation: CPU time (sum over threads), and wall time"
          % a.threads)
    print("class                 mode      evals   C cpu  Numba cpu  ratio   C wall  Numba wall  ratio")
    for name in a.classes.split(","):
        for fast in (False, True):
            n, ns, wall = measure_class(class_args(name, a.pixels, hkl), fast, a.repeats,
                                        a.threads)
            rows.append(dict(cls=name, fast=fast, evaluations=n, c_ns=ns["c"],
                             numba_ns=ns["numba"], c_wall_ns=wall["c"],
                             numba_wall_ns=wall["numba"]))
            print("%-21s %-6s %9d %7.2f %10.2f %6.2f  %7.2f %11.2f %6.2f" % (
                name, "fast" if fast else "parity", n, ns["c"], ns["numba"],
                ns["numba"] / ns["c"], wall["c"], wall["numba"], wall["numba"] / wall["c"]),
                flush=True)
    start = measure_startup(a.startup_runs)
    print("start-up (64x64 image, whole process, 1 thread): C %.3f s, Numba %.3f s"
          % (start["c"], start["numba"]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(pixels=a.pixels, threads=a.threads, repeats=a.repeats,
                           classes=rows, startup_s=start), fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
