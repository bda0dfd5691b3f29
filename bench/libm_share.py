#!/usr/bin/env python3
"""How much of a run is spent inside libm's sin: the floor under parity mode.

    python bench/libm_share.py [--workload W2] [--quarter] [--c-bin PATH]
                               [--nbsim-cmd CMD] [--engine c]

Runs the reference binary (``--c-bin`` or ``$NB_C_BIN``) and nbsim on one thread
under ``perf record`` and prints, for each, the share of samples in libm's ``sin``
(any of glibc's variants, e.g. ``__sin_fma``), in the rest of libm, and elsewhere.

Why it matters: bit parity needs every ``sin`` call the reference makes, with the
same arguments, through the same libm (six per inner evaluation from the lattice
factor sin(N x)/sin(x)). If a fraction ``s`` of the reference's time is in ``sin``,
no parity-mode implementation on the same machine can be faster than ``1/s`` times
the reference, however cheap everything else becomes (Amdahl's law). The script
prints that bound.

``--quarter`` renders a quarter of the pixels (half as many per side, twice the
pixel size: the same mix of evaluations per pixel) to save time. Needs Linux
``perf``; exits 3 with a message when perf or the reference is missing.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import WORKLOADS, COMMON_ARGS, nbsim_command  # noqa: E402

_ROW = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[\.\]\s+(\S+)")


def _quarter(args):
    """Half the pixels per side at twice the pixel size (same detector, same angles)."""
    out = list(args)
    for flag, scale in (("-detpixels", 0.5), ("-pixel", 2.0)):
        if flag in out:
            i = out.index(flag)
            value = float(out[i + 1]) * scale
            out[i + 1] = ("%d" % value) if flag == "-detpixels" else ("%g" % value)
    return out


def shares(command, workdir):
    """{'sin': %, 'libm other': %, 'rest': %} of user-space samples of ``command``."""
    data = os.path.join(workdir, "perf.data")
    env = dict(os.environ, OMP_NUM_THREADS="1", NBSIM_THREADS="1")
    rec = subprocess.run(["perf", "record", "-q", "-o", data, "--"] + command, cwd=workdir,
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if rec.returncode != 0:
        raise RuntimeError("perf record failed: %s" % rec.stderr.strip()[-300:])
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "dso,sym"],
                         capture_output=True, text=True)
    if rep.returncode != 0:
        raise RuntimeError("perf report failed: %s" % rep.stderr.strip()[-300:])
    out = {"sin": 0.0, "libm other": 0.0, "rest": 0.0}
    for line in rep.stdout.splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
        if dso.startswith("libm"):
            key = "sin" if re.fullmatch(r"(__)?sin(_[a-z0-9]+)?", sym) else "libm other"
        else:
            key = "rest"
        out[key] += pct
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", default="W2", choices=sorted(WORKLOADS))
    ap.add_argument("--quarter", action="store_true", help="a quarter of the pixels")
    ap.add_argument("--c-bin", default=os.environ.get("NB_C_BIN"))
    ap.add_argument("--nbsim-cmd", default=None)
    ap.add_argument("--engine", default="c", help="nbsim engine (default c)")
    opts = ap.parse_args(argv)
    if shutil.which("perf") is None:
        print("libm_share: needs Linux perf on PATH", file=sys.stderr)
        return 3
    if not opts.c_bin or not os.path.exists(opts.c_bin):
        print("libm_share: give the reference binary with --c-bin or NB_C_BIN", file=sys.stderr)
        return 3
    args = list(WORKLOADS[opts.workload]) + list(COMMON_ARGS)
    if opts.quarter:
        args = _quarter(args)
    nbsim = shlex.split(opts.nbsim_cmd) if opts.nbsim_cmd else nbsim_command()
    runs = [("reference", [os.path.abspath(opts.c_bin)] + args),
            ("nbsim -engine %s" % opts.engine, nbsim + args + ["-engine", opts.engine])]
    print("workload %s%s, one thread; %% of samples" % (opts.workload,
                                                       " (quarter)" if opts.quarter else ""))
    print("%-20s %8s %11s %8s" % ("program", "sin", "libm other", "rest"))
    ref_sin = None
    with tempfile.TemporaryDirectory(prefix="nbsim_libm_") as tmp:
        for name, cmd in runs:
            s = shares(cmd, tmp)
            if ref_sin is None:
                ref_sin = s["sin"]
            print("%-20s %7.1f%% %10.1f%% %7.1f%%" % (name, s["sin"], s["libm other"],
                                                     s["rest"]))
    if ref_sin:
        print("bound on any parity-mode speed-up over the reference here: %.2fx "
              "(1 / its sin share)" % (100.0 / ref_sin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
