#!/usr/bin/env python3
"""nbsim-batch's per-frame overhead: what a frame costs beyond its render.

    python bench/batch_overhead.py [--frames 30] [--detpixels 256] [--runs 3]
                                   [--args "..."] [--no-fast] [--profile]

Each run is a fresh ``nbsim-batch`` process (one rank, one thread) on a job of
``--frames`` frames of the same cost (-fast, φ stepping from frame to frame), writing
the default outputs (float image, SMV image, the log, the done marker). Inside it, the
driver below times every frame (``runner.render_frame``, from the claim's release to the
next) and every call into a render kernel (``engines.registry.run``, which the probe and
the render go through). Per-frame overhead = a frame's wall time minus its kernel time;
the first frame is reported apart (it imports the render modules and reads the tables
the later frames reuse), the others give the median and mean. ``--profile`` adds a
cProfile of frames 2.. by function (cumulative time), to see where the overhead goes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ARGS = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -N 5 -default_F 100 "
        "-distance 100 -pixel 0.1 -detpixels {det} -mosaic 0.5 -mosaic_dom 4 "
        "-mosaic_seed 42 -noprogress -threads 1")

# runs inside the nbsim-batch process: wraps the frame and kernel entry points
DRIVER = r"""
import cProfile, io, json, os, pstats, sys, time
from nbsim.engines import registry
from nbsim.batch import runner
kernel = [0.0]
frames = []
real_run, real_render_frame = registry.run, runner.render_frame
profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None

def timed_run(*a, **k):
    t = time.perf_counter()
    try:
        return real_run(*a, **k)
    finally:
        kernel[0] += time.perf_counter() - t

def timed_render_frame(*a, **k):
    # a frame runs from its render_frame call to the next one's (the claim, the
    # marker checks and the progress line between them included)
    now = time.perf_counter()
    if frames:
        frames[-1][1] = now
    frames.append([now, None, kernel[0]])
    if profile is not None and len(frames) == 2:
        profile.enable()
    try:
        return real_render_frame(*a, **k)
    finally:
        frames[-1][1] = time.perf_counter()
        frames[-1][2] = kernel[0] - frames[-1][2]

registry.run = timed_run
runner.render_frame = timed_render_frame
status = runner.main(sys.argv[1:])
if profile is not None:
    profile.disable()
report = {"status": status, "frames": [(end - start, k) for start, end, k in frames]}
if profile is not None:
    s = io.StringIO()
    pstats.Stats(profile, stream=s).sort_stats("cumulative").print_stats(40)
    report["profile"] = s.getvalue()
print("BENCH " + json.dumps(report))
"""


def one_run(opts, workdir):
    spec = {"args": ARGS.format(det=opts.detpixels) + ("" if opts.no_fast else " -fast")
            + (" " + opts.args if opts.args else ""),
            "frames": opts.frames, "vary": {"-phi": {"start": 0, "step": 0.5}},
            "name": "bench"}
    job = os.path.join(workdir, "bench.json")
    with open(job, "w") as fh:
        json.dump(spec, fh)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for var in ("OMP_NUM_THREADS", "NBSIM_THREADS"):
        env.pop(var, None)
    if opts.profile:
        env["BENCH_PROFILE"] = "1"
    done = subprocess.run([sys.executable, "-c", DRIVER, job, "--rank", "0", "--ranks", "1",
                           "--no-progress"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=opts.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise SystemExit("nbsim-batch failed:\n" + done.stdout + done.stderr)
    return json.loads(lines[-1][6:])


def summarise(frames):
    first_wall, first_kernel = frames[0]
    rest = frames[1:]
    over = [w - k for w, k in rest]
    return {"first_frame_s": first_wall, "first_overhead_s": first_wall - first_kernel,
            "frame_s_median": statistics.median(w for w, _ in rest),
            "kernel_s_median": statistics.median(k for _, k in rest),
            "overhead_s_median": statistics.median(over),
            "overhead_s_mean": statistics.fmean(over),
            "overhead_s_min": min(over)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--detpixels", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--args", default="", help="more nanoBragg flags for every frame")
    p.add_argument("--no-fast", action="store_true", help="parity mode instead of -fast")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--json", help="write the per-run summaries here")
    opts = p.parse_args(argv)
    if opts.frames < 2:
        p.error("--frames: at least 2 (the first frame is reported apart)")
    results = []
    print("nbsim-batch per-frame overhead: %d frames of %d^2 pixels%s, one rank, one thread; "
          "load average %.2f" % (opts.frames, opts.detpixels, "" if opts.no_fast else ", -fast",
                                 os.getloadavg()[0]))
    print("run  first frame s  (overhead)  frame s  kernel s  overhead ms: median  mean   min")
    for r in range(opts.runs):
        with tempfile.TemporaryDirectory(prefix="nbsim-bench-overhead-") as workdir:
            report = one_run(opts, workdir)
        s = summarise(report["frames"])
        results.append(s)
        print("%3d  %13.3f  (%8.3f)  %7.4f  %8.4f  %19.1f  %5.1f  %5.1f"
              % (r + 1, s["first_frame_s"], s["first_overhead_s"], s["frame_s_median"],
                 s["kernel_s_median"], 1e3 * s["overhead_s_median"],
                 1e3 * s["overhead_s_mean"], 1e3 * s["overhead_s_min"]))
        if opts.profile and "profile" in report:
            print(report["profile"])
    best = min(results, key=lambda s: s["overhead_s_median"])
    print("per-frame overhead (frames 2..%d): median of runs %.1f ms, best run %.1f ms; "
          "load average %.2f after"
          % (opts.frames, 1e3 * statistics.median(s["overhead_s_median"] for s in results),
             1e3 * best["overhead_s_median"], os.getloadavg()[0]))
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump({"options": vars(opts), "runs": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
