#!/usr/bin/env python3
"""What writing nbsim's geometry outputs costs on top of a run.

    python bench/outputs.py [--workload W3] [--rounds 5] [--warmup 1] [--json out.json]

Two measurements, both printed as a share of the plain run's cost:

* whole processes: the workload as bench/run.py runs it, alone and with each of
  -nexusfile, -cbffile, -geomfile, -pngfile, -tifffile (and all of them), the variants
  alternated round by round; the median wall time and the median CPU time (user +
  system, all threads) of the child process. CPU time is less disturbed than wall
  time on a shared machine, but neither is exact there: repeat and compare.
* in-process: the CPU time of each writer on the workload's image (best of --rounds),
  and of importing the library it needs, in a fresh interpreter (best of --rounds).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import WORKLOADS, workload_args  # noqa: E402

VARIANTS = {
    "plain": [],
    "nexus": ["-nexusfile", "a.h5"],
    "cbf": ["-cbffile", "a.cbf"],
    "geom": ["-geomfile", "a.geom"],
    "png": ["-pngfile", "a.png"],
    "tiff": ["-tifffile", "a.tif"],
}
VARIANTS["all"] = [w for k in ("nexus", "cbf", "geom", "png", "tiff") for w in VARIANTS[k]]
IMPORTS = {"nexus": "import h5py, hdf5plugin", "cbf": "import fabio.cbfimage",
           "tiff": "import tifffile", "png": "import nbsim.io.png",
           "geom": "import nbsim.io.crystfel_geom"}


def whole_processes(args, rounds, command, warmup=1):
    wall = {k: [] for k in VARIANTS}
    cpu = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="nbsim-bench-outputs-") as work:
        for r in range(warmup + rounds):     # warm-up rounds are not kept
            for name, extra in VARIANTS.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(command + args + extra, cwd=work, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                elapsed = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if r >= warmup:
                    wall[name].append(elapsed)
                    cpu[name].append(after.ru_utime - before.ru_utime
                                     + after.ru_stime - before.ru_stime)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def in_process(args, rounds):
    from nbsim import simulate
    from nbsim.cli import config_from_args
    from nbsim.experiment import model_from_plan
    from nbsim.io import cbf, crystfel_geom, nexus, png, tiff

    cfg, _ = config_from_args(args, warn=lambda m: None)
    res = simulate(cfg)
    img = res.float_image
    model = model_from_plan(res.plan)

    def cbf_write(path):
        counts, cutoff = cbf.counts_for_cbf(img, res.noise_image, model.adc_offset)
        cbf.write_minicbf(path, counts, model, count_cutoff=cutoff)

    writers = {
        "nexus": lambda path: nexus.write_nxmx(path, model, img),
        "cbf": cbf_write,
        "geom": lambda path: crystfel_geom.write_geom(path, model),
        "png": lambda path: png.write_preview_png(path, img, model.beam_centre_px),
        "tiff": lambda path: tiff.write_float_tiff(path, img, model),
    }
    out = {}
    with tempfile.TemporaryDirectory(prefix="nbsim-bench-outputs-") as work:
        for name, write in writers.items():
            best = float("inf")
            for _ in range(max(1, rounds)):
                start = time.process_time()
                write(os.path.join(work, "out_" + name))
                best = min(best, time.process_time() - start)
            out[name] = best
    imports = {}
    for name, stmt in IMPORTS.items():
        best = float("inf")
        for _ in range(max(1, rounds)):
            code = ("import time, numpy, nbsim.cli; t = time.process_time(); %s; "
                    "print(time.process_time() - t)" % stmt)
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True)
            best = min(best, float(run.stdout))
        imports[name] = best
    return out, imports


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", default="W3", choices=sorted(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", default=None)
    parser.add_argument("--nbsim-cmd", default=None,
                        help="command that runs nbsim (default: this Python's -m nbsim)")
    opts = parser.parse_args(argv)
    if opts.rounds < 1 or opts.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    args = workload_args(opts.workload)
    command = opts.nbsim_cmd.split() if opts.nbsim_cmd else [sys.executable, "-m", "nbsim"]
    wall, cpu = whole_processes(args, opts.rounds, command, opts.warmup)
    writers, imports = in_process(args, opts.rounds)
    print("workload %s, %d rounds; share of the plain run (wall %.3f s, CPU %.3f s)"
          % (opts.workload, opts.rounds, wall["plain"], cpu["plain"]))
    print("%-6s %18s %18s %14s %14s" % ("output", "process wall", "process CPU",
                                         "writer CPU", "import CPU"))
    for name in VARIANTS:
        if name == "plain":
            continue
        w = writers.get(name)
        i = imports.get(name)
        print("%-6s %8.3f s %+6.1f%% %8.3f s %+6.1f%% %s %s" % (
            name, wall[name], 100 * (wall[name] / wall["plain"] - 1), cpu[name],
            100 * (cpu[name] / cpu["plain"] - 1),
            "%7.4f s %4.1f%%" % (w, 100 * w / cpu["plain"]) if w is not None else " " * 14,
            "%7.4f s %4.1f%%" % (i, 100 * i / cpu["plain"]) if i is not None else ""))
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump({"workload": opts.workload, "rounds": opts.rounds, "wall": wall,
                       "cpu": cpu, "writer_cpu": writers, "import_cpu": imports}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
