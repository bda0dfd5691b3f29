#!/usr/bin/env python3
"""Benchmark of nbsim-batch over MPI ranks.

    python bench/batch.py [--frames 24] [--detpixels 512] [--runs 3] [--mpiexec PATH]
                          [--ranks 2] [--only scaling,mixed,split] [--json out.json]
                          [--split-detpixels 1024] [--smoke]

Three measurements, each a whole ``nbsim-batch`` job timed from the outside (process
start, MPI start-up, rendering, checksums and file writing included), every
configuration run ``--runs`` times in alternation after one warm-up round, medians
reported:

scaling  ``--frames`` frames of equal cost; one rank on one thread, ``--ranks``
         ranks under ``mpiexec`` on one thread each, and one rank on as many threads
         (what one process does with the whole machine). Ratio: one rank / N ranks.
mixed    frames of mixed cost (``-oversample`` 3 on even frames, 1 on odd ones, a 9:1
         ratio) under ``mpiexec -n N``, handed out round-robin (``--schedule
         static``) and dynamically (the default). Ratio: static / dynamic.
split    one frame of ``--split-detpixels`` pixels a side (``-oversample 4``): one rank
         on one thread renders it whole; ``--ranks`` ranks under ``mpiexec`` render it
         in as many row parts (``"split_rows"``) and the last one assembles it. Ratio:
         whole / split.

Beside the wall times it prints the CPU time of all children, the CPU time of the
busiest rank (from the ranks' closing lines) and the load average. On a shared
machine the wall times of parallel runs suffer first; the ratio of the busiest
ranks' CPU times is what the wall times would show if every rank had a core of its
own (process start-up outside Python excepted). Quote wall times only from a quiet
machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ARGS = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -N 8 -default_F 100 "
        "-distance 100 -pixel 0.1 -detpixels {det} -noprogress -engine c")


def job_spec(frames, det, kind, parts=1):
    if kind == "split":
        return {"args": ARGS.format(det=det) + " -oversample 4", "frames": 1,
                "split_rows": parts, "name": "bench"}
    mixed = kind == "mixed"
    vary = {"-phi": {"start": 0, "step": 0.5}}
    if mixed:
        vary["-oversample"] = [3 if f % 2 == 0 else 1 for f in range(frames)]
    else:
        vary["-oversample"] = {"start": 2, "step": 0}
    return {"args": ARGS.format(det=det), "frames": frames, "vary": vary, "name": "bench"}


def find_mpiexec(given):
    if given:
        return given
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def rank_cpus(stdout):
    """CPU seconds of each rank, from the ranks' closing lines."""
    cpus = []
    for line in stdout.splitlines():
        if line.startswith("nbsim-batch: rank ") and ", cpu " in line:
            cpus.append(float(line.split(", cpu ")[1].split()[0]))
    return cpus


def timed_job(command, spec, env, timeout):
    """Run ``command`` (with JOB in it) on a fresh copy of the job; (wall seconds, CPU
    seconds of all children, CPU seconds of the busiest rank)."""
    with tempfile.TemporaryDirectory(prefix="nbsim-bench-batch-") as folder:
        job = os.path.join(folder, "bench.json")
        with open(job, "w") as fh:
            json.dump(spec, fh)
        argv = [job if word == "JOB" else word for word in command]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError("%s exited %d:\n%s" % (" ".join(argv), done.returncode,
                                                      (done.stdout + done.stderr)[-2000:]))
        markers = [n for n in os.listdir(os.path.join(folder, "bench")) if n.endswith(".done")]
        if len(markers) != spec["frames"]:
            raise RuntimeError("%s: %d of %d frames done" % (" ".join(argv), len(markers),
                                                              spec["frames"]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ranks = rank_cpus(done.stdout)
    return wall, cpu, max(ranks) if ranks else float("nan")


def configurations(opts, mpiexec):
    py = [sys.executable, "-m", "nbsim.batch", "JOB"]
    n = opts.ranks
    one = dict(NBSIM_THREADS="1")
    configs = []
    if "scaling" in opts.only:
        configs += [
            ("scaling", "1 rank x 1 thread", py + ["--rank", "0", "--ranks", "1"], one,
             "equal"),
            ("scaling", "1 rank x %d threads" % n, py + ["--rank", "0", "--ranks", "1"],
             dict(NBSIM_THREADS=str(n)), "equal"),
        ]
        if mpiexec:
            configs.append(("scaling", "%d ranks x 1 thread" % n,
                            [mpiexec, "-n", str(n)] + py, one, "equal"))
    if "mixed" in opts.only and mpiexec:
        configs += [
            ("mixed", "%d ranks, round-robin" % n,
             [mpiexec, "-n", str(n)] + py + ["--schedule", "static"], one, "mixed"),
            ("mixed", "%d ranks, dynamic" % n,
             [mpiexec, "-n", str(n)] + py + ["--schedule", "dynamic"], one, "mixed"),
        ]
    if "split" in opts.only:
        configs.append(("split", "whole, 1 rank", py + ["--rank", "0", "--ranks", "1"], one,
                        "whole"))
        if mpiexec:
            configs.append(("split", "%d parts, %d ranks" % (n, n),
                            [mpiexec, "-n", str(n)] + py, one, "split"))
    return configs


def main(argv=None):
    p = argparse.ArgumentParser(description="Time nbsim-batch jobs over MPI ranks.")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--detpixels", type=int, default=512)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--mpiexec", default=None, help="MPI launcher (default: beside this Python, "
                                                   "else on PATH)")
    p.add_argument("--only", default="scaling,mixed,split",
                   help="any of scaling, mixed, split (comma-separated)")
    p.add_argument("--split-detpixels", type=int, default=1024,
                   help="pixels a side of the frame of the split measurement")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--json", default=None, help="write the results here too")
    p.add_argument("--smoke", action="store_true",
                   help="4 tiny frames, one run, no warm-up: checks that the harness works")
    opts = p.parse_args(argv)
    opts.only = {w.strip() for w in opts.only.split(",") if w.strip()}
    if opts.smoke:
        opts.frames, opts.detpixels, opts.runs, opts.warmup = 4, 32, 1, 0
        opts.split_detpixels = 48
    if opts.frames < 1 or opts.runs < 1 or opts.ranks < 1 or \
            not opts.only <= {"scaling", "mixed", "split"}:
        p.error("need --frames, --runs, --ranks >= 1 and --only from scaling, mixed, split")
    mpiexec = find_mpiexec(opts.mpiexec)
    notes = []
    if mpiexec is None:
        notes.append("no mpiexec found: only the single-rank configurations ran")
    else:
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            notes.append("mpi4py is not installed: ranks come from the launcher's environment")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_NUM_THREADS", None)
    configs = configurations(opts, mpiexec)
    times = {label: [] for _m, label, _c, _e, _x in configs}
    cpus = {label: [] for _m, label, _c, _e, _x in configs}
    busiest = {label: [] for _m, label, _c, _e, _x in configs}
    load_before = os.getloadavg()
    for round_ in range(opts.warmup + opts.runs):
        for _m, label, command, extra, mixed in configs:      # alternated, round by round
            if mixed in ("whole", "split"):
                spec = job_spec(1, opts.split_detpixels, "split",
                                opts.ranks if mixed == "split" else 1)
            else:
                spec = job_spec(opts.frames, opts.detpixels, mixed)
            wall, cpu, rank_cpu = timed_job(command, spec, dict(env, **extra), opts.timeout)
            if round_ >= opts.warmup:
                times[label].append(wall)
                cpus[label].append(cpu)
                busiest[label].append(rank_cpu)
    load_after = os.getloadavg()
    medians = {label: statistics.median(v) for label, v in times.items()}
    busy = {label: statistics.median(v) for label, v in busiest.items()}
    n = opts.ranks
    ratios, cpu_ratios = {}, {}

    def ratio(name, slow, fast, by_cpu=True):
        if slow in medians and fast in medians:
            ratios[name] = medians[slow] / medians[fast]
            # the same ratio from the CPU time of the busiest rank: what the wall times
            # would show if every rank had a core to itself (for one-thread ranks only:
            # a rank's threads add up their CPU time)
            cpu_ratios[name] = busy[slow] / busy[fast] if by_cpu else None

    ratio("scaling: 1 rank / %d ranks (1 thread each)" % n, "1 rank x 1 thread",
          "%d ranks x 1 thread" % n)
    ratio("1 rank x %d threads / %d ranks x 1 thread" % (n, n), "1 rank x %d threads" % n,
          "%d ranks x 1 thread" % n, by_cpu=False)
    ratio("mixed cost: round-robin / dynamic", "%d ranks, round-robin" % n,
          "%d ranks, dynamic" % n)
    ratio("one frame: whole on 1 rank / %d row parts on %d ranks" % (n, n), "whole, 1 rank",
          "%d parts, %d ranks" % (n, n))
    print("nbsim-batch benchmark: %d frames of %d^2 pixels, %d runs (median), %d warm-up; "
          "load average %.2f before, %.2f after" % (opts.frames, opts.detpixels, opts.runs,
                                                   opts.warmup, load_before[0], load_after[0]))
    if "split" in opts.only:
        print("split: one frame of %d^2 pixels, -oversample 4" % opts.split_detpixels)
    print("%-8s %-22s %8s %8s %13s  %s" % ("set", "configuration", "wall s", "cpu s",
                                            "busiest rank", "all walls"))
    for measure, label, _c, _e, _x in configs:
        print("%-8s %-22s %8.2f %8.2f %11.2f s  %s"
              % (measure, label, medians[label], statistics.median(cpus[label]), busy[label],
                 " ".join("%.2f" % t for t in times[label])))
    for name, value in ratios.items():
        by_cpu = cpu_ratios[name]
        print("%s: %.2fx wall%s" % (name, value, "" if by_cpu is None else
                                    ", %.2fx from the busiest rank's cpu" % by_cpu))
    for note in notes:
        print("note: %s" % note)
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump({"tool": "nbsim-bench-batch", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                                "python": sys.version.split()[0]},
                       "frames": opts.frames, "detpixels": opts.detpixels, "runs": opts.runs,
                       "warmup": opts.warmup, "ranks": n, "mpiexec": mpiexec,
                       "split_detpixels": opts.split_detpixels,
                       "load_average": [load_before[0], load_after[0]],
                       "walls": times, "cpus": cpus, "busiest_rank_cpus": busiest,
                       "medians": medians, "ratios": ratios, "cpu_ratios": cpu_ratios,
                       "notes": notes}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
