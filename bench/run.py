#!/usr/bin/env python3
"""Whole-process benchmark of nbsim (and, optionally, the reference nanoBragg).

    python bench/run.py [--workloads W1,W2,W3,tiny] [--runs 3] [--threads 1,2]
                        [--engines auto,numba,c] [--fast] [--json out.json] [--smoke]
                        [--nbsim-cmd CMD] [--c-bin PATH] [--warmup 1] [--timeout S]
                        [--compile]

See bench/README.md for what is measured and the JSON layout.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHEMA_VERSION = 1

COMMON_ARGS = ["-floatfile", "float.bin", "-nopgm", "-nonoise", "-noprogress", "-seed", "1"]

_W1 = ("-cell 100 100 100 90 90 90 -lambda 6.2 -N 5 -default_F 100 "
       "-detpixels 1024 -pixel 0.1 -distance 100")
WORKLOADS = {
    "W1": _W1.split(),
    "W2": ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -N 5 -default_F 100 "
           "-detpixels 512 -pixel 0.1 -distance 100 -oversample 2 -mosaic 0.5 "
           "-mosaic_dom 10 -mosaic_seed 42 -hdivrange 0.3 -vdivrange 0.3 -hdivsteps 3 "
           "-vdivsteps 3 -square_div").split(),
    "W3": ("-cell 100 100 100 90 90 90 -lambda 1.0 -N 10 -default_F 100 "
           "-detpixels 2048 -pixel 0.05 -distance 200").split(),
    "tiny": _W1.replace("-detpixels 1024", "-detpixels 64").split(),
}
DEFAULT_WORKLOADS = ("W1", "W2", "W3")


def workload_args(name):
    """Full argument list of a workload: its table entry plus :data:`COMMON_ARGS`."""
    return list(WORKLOADS[name]) + list(COMMON_ARGS)


# ---------------------------------------------------------------------------
# evaluation count
# ---------------------------------------------------------------------------

def _flag_values(args):
    """Map each flag to the tokens after it (up to the next flag-looking token)."""
    values = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if tok.startswith("-") and not _is_number(tok):
            j = i + 1
            while j < len(args) and (not args[j].startswith("-") or _is_number(args[j])):
                j += 1
            values[tok] = args[i + 1:j]
            i = j
        else:
            i += 1
    return values


def _is_number(tok):
    try:
        float(tok)
    except ValueError:
        return False
    return True


def count_evaluations(args):
    """Inner-loop evaluations a run performs, computed from its arguments.

    evaluations = pixels x oversample^2 x sources x phi steps x mosaic domains
    x detector-thickness steps, where

    * pixels: ``-detpixels`` (or ``-detpixels_f|_x`` times ``-detpixels_s|_y``), else
      ``-detsize``/``-pixel`` (defaults 102.4 mm and 0.1 mm), clipped to ``-roi``;
    * oversample: ``-oversample``, else nanoBragg's automatic choice
      ceil(3 x largest crystal edge x pixel / (lambda x distance)), at least 1,
      from ``-cell`` and ``-N``/``-Na``/``-Nb``/``-Nc`` (defaults: lambda 1 A,
      distance 100 mm, pixel 0.1 mm);
    * sources: divergence steps (``-hdivsteps`` x ``-vdivsteps``, or ``-divsteps``
      squared; 1 along a direction whose range is absent or 0) times ``-dispsteps``
      (1 without ``-dispersion``);
    * phi steps: ``-phisteps``, else 1;
    * mosaic domains: ``-mosaic_dom``, else 10, when ``-mosaic`` spread > 0, else 1;
    * thickness steps: ``-detector_thicksteps``/``-thicksteps`` when
      ``-detector_thick`` > 0, else 1.

    Raises ValueError for what this helper does not model: ``-sourcefile``, rounded
    (non ``-square_div``) divergence grids larger than one step in both directions,
    ranges given without step counts, ``-osc`` without ``-phisteps``, ``-mat``
    without ``-oversample``.
    """
    v = _flag_values(args)

    def num(flag, default=None, index=0):
        vals = v.get(flag)
        if not vals or len(vals) <= index:
            return default
        return float(vals[index])

    # pixels
    pixel = num("-pixel", 0.1)
    fast = num("-detpixels_f", num("-detpixels_x"))
    slow = num("-detpixels_s", num("-detpixels_y"))
    square = num("-detpixels")
    if square is not None:
        fast = fast if fast is not None else square
        slow = slow if slow is not None else square
    if fast is None:
        fast = math.ceil(num("-detsize_f", num("-detsize", 102.4)) / pixel - 0.5)
    if slow is None:
        slow = math.ceil(num("-detsize_s", num("-detsize", 102.4)) / pixel - 0.5)
    fast, slow = int(fast), int(slow)
    if "-roi" in v and len(v["-roi"]) >= 4:
        xmin, xmax, ymin, ymax = (int(float(t)) for t in v["-roi"][:4])
        fast = max(0, min(xmax, fast - 1) - max(xmin, 0) + 1)
        slow = max(0, min(ymax, slow - 1) - max(ymin, 0) + 1)
    pixels = fast * slow

    # oversample
    oversample = num("-oversample")
    if oversample is None or oversample <= 0:
        if "-mat" in v or "-cell" not in v:
            raise ValueError("automatic oversampling needs -cell (or give -oversample)")
        cell = [float(t) for t in v["-cell"][:3]]
        n_all = num("-N")
        ns = [num(f, n_all if n_all is not None else 1.0) for f in ("-Na", "-Nb", "-Nc")]
        edge_m = max(c * n for c, n in zip(cell, ns)) * 1e-10
        lam_m = num("-lambda", num("-wave", 1.0)) * 1e-10
        recip = lam_m * num("-distance", 100.0) * 1e-3 / (pixel * 1e-3)
        oversample = max(1, math.ceil(3.0 * edge_m / recip))
    oversample = int(oversample)

    # sources
    if "-sourcefile" in v:
        raise ValueError("-sourcefile: the source count comes from the file")

    def steps(range_flag, step_flags):
        rng = num(range_flag, 0.0)
        if rng <= 0:
            return 1
        for flag in step_flags:
            if num(flag) is not None:
                return max(1, int(num(flag)))
        raise ValueError(f"{range_flag} without a step count")

    h = steps("-hdivrange", ("-hdivsteps", "-divsteps"))
    vv = steps("-vdivrange", ("-vdivsteps", "-divsteps"))
    if "-divrange" in v:
        h = steps("-divrange", ("-hdivsteps", "-divsteps"))
        vv = steps("-divrange", ("-vdivsteps", "-divsteps"))
    if h > 1 and vv > 1 and "-square_div" not in v:
        raise ValueError("rounded divergence grid: pass -square_div or count from stdout")
    disp = steps("-dispersion", ("-dispsteps",))
    sources = h * vv * disp

    # phi
    phisteps = num("-phisteps")
    if phisteps is None:
        if num("-osc", 0.0) > 0:
            raise ValueError("-osc without -phisteps")
        phisteps = 1
    phisteps = max(1, int(phisteps))

    # mosaic
    spread = num("-mosaic", num("-mosaic_spread", 0.0))
    domains = num("-mosaic_dom", num("-mosaic_domains"))
    if spread and spread > 0:
        domains = int(domains) if domains and domains > 0 else 10
    else:
        domains = 1

    thick = steps("-detector_thick", ("-detector_thicksteps", "-thicksteps"))
    return pixels * oversample * oversample * sources * phisteps * domains * thick


_STDOUT_PATTERNS = {
    "pixels": re.compile(r"\((\d+)x(\d+) pixels\)"),
    "sources": re.compile(r"^\s*(\d+) sources\s*$", re.M),
    "domains": re.compile(r"^\s*(\d+) mosaic domains", re.M),
    "phi": re.compile(r"^\s*(\d+) phi steps", re.M),
    "oversample": re.compile(r"^\s*(\d+)x(\d+) pixel oversample steps", re.M),
    "thick": re.compile(r"in (\d+) layers", re.M),
}


def evaluations_from_stdout(text):
    """The same product, read from the summary lines nanoBragg prints (``(FxS pixels)``,
    ``N sources``, ``N mosaic domains``, ``N phi steps``, ``AxA pixel oversample
    steps``, ``in N layers``); None if any is missing.  Ignores ``-roi``."""
    found = {}
    for key, pattern in _STDOUT_PATTERNS.items():
        matches = pattern.findall(text)
        if not matches:
            return None
        found[key] = matches[-1]
    f, s = (int(x) for x in found["pixels"])
    o1, o2 = (int(x) for x in found["oversample"])
    return (f * s * o1 * o2 * int(found["sources"]) * int(found["domains"])
            * int(found["phi"]) * int(found["thick"]))


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def _maxrss_mb(ru_maxrss):
    # Linux reports kilobytes, macOS bytes
    return ru_maxrss / (2 ** 20) if sys.platform == "darwin" else ru_maxrss / 1024.0


def run_once(cmd, args, threads, timeout=None, keep_stdout=False):
    """Run ``cmd + args`` once in a new empty folder; return a dict with ``exit_code``,
    ``wall_s``, ``peak_rss_mb`` (the child's own, from wait4), ``stdout`` (tail, or the
    whole text if ``keep_stdout``) and ``error``."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["NUMBA_NUM_THREADS"] = str(threads)
    result = {"exit_code": None, "wall_s": None, "peak_rss_mb": None, "stdout": "", "error": None}
    with tempfile.TemporaryDirectory(prefix="nbsim-bench-") as work:
        log_path = os.path.join(work, "..stdout.log")
        with open(log_path, "wb") as log:
            start = time.perf_counter()
            try:
                proc = subprocess.Popen(list(cmd) + list(args), cwd=work, env=env,
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)
            except OSError as exc:
                result["error"] = f"cannot start {cmd[0]}: {exc}"
                return result
            status, usage = _wait_child(proc, timeout)
            wall = time.perf_counter() - start
        with open(log_path, "rb") as fh:
            text = fh.read().decode("utf-8", errors="replace")
    if status is None:
        result["error"] = f"timed out after {timeout} s"
    else:
        result["exit_code"] = os.waitstatus_to_exitcode(status)
        result["wall_s"] = wall
        result["peak_rss_mb"] = _maxrss_mb(usage.ru_maxrss)
        if result["exit_code"] != 0:
            tail = [ln for ln in text.splitlines() if ln.strip()][-3:]
            result["error"] = f"exit status {result['exit_code']}: " + " | ".join(tail)
    result["stdout"] = text if keep_stdout else text[-2000:]
    return result


def _wait_child(proc, timeout):
    """wait4 on our child so its rusage is its own; (status, rusage) or (None, None)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is None:
            _pid, status, usage = os.wait4(proc.pid, 0)
            break
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            return None, None
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return status, usage


def _variants(engines, fast):
    out = []
    for engine in engines:
        out.append((engine, ["-engine", engine]))
        if fast:
            out.append((engine + "+fast", ["-engine", engine, "-fast"]))
    return out


def nbsim_command():
    """The ``nanoBragg`` command installed beside this Python (a venv's bin folder),
    else the one on PATH, else ``python -m nbsim``. Beside this Python first: on PATH
    there may be a version manager's shim (pyenv's costs ~50 ms per run), which is
    not nbsim's start-up."""
    beside = os.path.join(os.path.dirname(sys.executable), "nanoBragg")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("nanoBragg")
    return [found] if found else [sys.executable, "-m", "nbsim"]


_BYTECODE_PROBE = r"""
import importlib.util, os, sys
import nbsim
pkg = os.path.dirname(nbsim.__file__)
missing = []
for root, _dirs, files in os.walk(pkg):
    for name in files:
        if name.endswith(".py"):
            src = os.path.join(root, name)
            if not os.path.exists(importlib.util.cache_from_source(src)):
                missing.append(src)
print(pkg)
print(len(missing))
print(int(sys.dont_write_bytecode))
"""


def bytecode_check(compile_now=False):
    """(package folder, note or None) about nbsim's cached bytecode.

    With PYTHONDONTWRITEBYTECODE set and an editable install, Python never caches
    nbsim's compiled modules, and every run recompiles them from source (about
    40 ms here): a cost a normal install does not have (pip compiles them at install).
    With ``compile_now`` the cache is written first, as a normal install would have
    it; otherwise the missing cache is reported."""
    def probe():
        done = subprocess.run([sys.executable, "-c", _BYTECODE_PROBE], capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            return None, None, None
        pkg, missing, nowrite = done.stdout.split()
        return pkg, int(missing), nowrite == "1"

    pkg, missing, nowrite = probe()
    if pkg is None:
        return None, "could not import nbsim with %s to check its bytecode" % sys.executable
    if missing and compile_now:
        subprocess.run([sys.executable, "-m", "compileall", "-q", pkg], check=False,
                       capture_output=True)
        pkg, missing, nowrite = probe()
    if missing and nowrite:
        return pkg, ("%d nbsim modules have no cached bytecode and PYTHONDONTWRITEBYTECODE "
                     "is set: every run compiles them (~40 ms); --compile writes the "
                     "cache first" % missing)
    return pkg, None


def _probe_version(cmd):
    try:
        proc = subprocess.run(list(cmd) + ["-version"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run {cmd[0]}: {exc}"
    text = (proc.stdout + proc.stderr).decode("utf-8", errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    if proc.returncode != 0 or "nbsim" not in text.lower():
        return first or None, (f"'{' '.join(cmd)} -version' did not identify nbsim "
                               f"(exit {proc.returncode}); is this really nbsim?")
    return first, None


def _summarise(record, runs_data, evaluations):
    times = [r["wall_s"] for r in runs_data if r["exit_code"] == 0]
    record["times_s"] = times
    record["peak_rss_mb"] = max((r["peak_rss_mb"] for r in runs_data
                                 if r["peak_rss_mb"] is not None), default=None)
    if times and len(times) == len(runs_data):
        record["status"] = "ok"
        record["median_s"] = statistics.median(times)
        record["min_s"] = min(times)
        record["evals_per_s"] = evaluations / record["median_s"] if evaluations else None
    else:
        record["status"] = "failed"
        errs = [r["error"] for r in runs_data if r["error"]]
        record["error"] = record.get("error") or (errs[0] if errs else "failed")


def benchmark(*, workloads, runs, warmup, threads, variants, nbsim_cmd, ref_cmd=None,
              timeout=None, log=print):
    """Run everything; return the list of result records (see bench/README.md)."""
    results = []
    for wname in workloads:
        args = workload_args(wname)
        evaluations = count_evaluations(args)
        for t in threads:
            runners = []  # (record, command, args)
            if ref_cmd:
                runners.append(({"runner": "reference", "variant": "reference", "flags": []},
                                ref_cmd, args))
            for vname, flags in variants:
                runners.append(({"runner": "nbsim", "variant": vname, "flags": flags},
                                nbsim_cmd, args + flags))
            data = {id(rec): [] for rec, _c, _a in runners}
            alive = {}
            for rec, cmd, a in runners:
                rec.update({"workload": wname, "threads": t, "evaluations": evaluations,
                            "evaluations_source": "args", "evaluations_stdout": None,
                            "status": None, "error": None, "times_s": [], "median_s": None,
                            "min_s": None, "peak_rss_mb": None, "evals_per_s": None,
                            "ratio_vs_reference": None, "ratio_vs_reference_min": None})
                alive[id(rec)] = True
                for _ in range(warmup):  # discarded, but a failing warm-up stops the variant
                    r = run_once(cmd, a, t, timeout, keep_stdout=True)
                    if r["exit_code"] != 0:
                        alive[id(rec)] = False
                        rec["status"] = "failed"
                        rec["error"] = r["error"]
                        log(f"  {wname} t={t} {rec['variant']}: warm-up failed: {r['error']}")
                        break
                    rec["evaluations_stdout"] = evaluations_from_stdout(r["stdout"])
            # timed runs, alternating between runners so drifts hit all alike
            for i in range(runs):
                for rec, cmd, a in runners:
                    if not alive[id(rec)]:
                        continue
                    r = run_once(cmd, a, t, timeout, keep_stdout=(i == 0))
                    data[id(rec)].append(r)
                    if i == 0 and r["exit_code"] == 0 and rec["evaluations_stdout"] is None:
                        rec["evaluations_stdout"] = evaluations_from_stdout(r["stdout"])
                    if r["exit_code"] != 0:
                        alive[id(rec)] = False
                        log(f"  {wname} t={t} {rec['variant']}: run failed: {r['error']}")
            ref_median = ref_min = None
            for rec, _c, _a in runners:
                if rec["status"] != "failed":
                    _summarise(rec, data[id(rec)], evaluations)
                if rec["runner"] == "reference" and rec["status"] == "ok":
                    ref_median, ref_min = rec["median_s"], rec["min_s"]
            for rec, _c, _a in runners:
                if rec["runner"] == "nbsim" and rec["status"] == "ok" and ref_median:
                    rec["ratio_vs_reference"] = ref_median / rec["median_s"]
                    # on a shared machine the fastest run of each is the least disturbed
                    rec["ratio_vs_reference_min"] = ref_min / rec["min_s"]
                results.append(rec)
    return results


def format_table(results):
    head = "{:<6} {:>3} {:<13} {:<7} {:>9} {:>9} {:>11} {:>8} {:>8} {:>8}".format(
        "load", "thr", "variant", "status", "median_s", "min_s", "Meval/s", "peak_MB", "vs_ref",
        "min_vs")
    lines = [head, "-" * len(head)]

    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    for r in results:
        lines.append("{:<6} {:>3} {:<13} {:<7} {:>9} {:>9} {:>11} {:>8} {:>8} {:>8}".format(
            r["workload"], r["threads"], r["variant"][:13], r["status"],
            f(r["median_s"], ".3f"), f(r["min_s"], ".3f"),
            f(None if r["evals_per_s"] is None else r["evals_per_s"] / 1e6, ".3g"),
            f(r["peak_rss_mb"], ".0f"), f(r["ratio_vs_reference"], ".2f"),
            f(r.get("ratio_vs_reference_min"), ".2f")))
        if r["status"] == "failed":
            lines.append(f"         {r['error']}")
    return "\n".join(lines)


def _csv(text, cast=str):
    return [cast(x.strip()) for x in text.split(",") if x.strip()]


def build_parser():
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Time whole nanoBragg-compatible processes on fixed workloads.")
    p.add_argument("--workloads", default=None,
                   help=f"comma list of {','.join(WORKLOADS)} (default {','.join(DEFAULT_WORKLOADS)})")
    p.add_argument("--runs", type=int, default=3, help="timed runs per variant (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="discarded warm-up runs (default 1)")
    p.add_argument("--threads", default=None, help="comma list of thread counts (default 1,2)")
    p.add_argument("--engines", default="auto,numba,c", help="comma list of -engine values (default auto,numba,c)")
    p.add_argument("--fast", action="store_true", help="also time each engine with -fast")
    p.add_argument("--json", metavar="PATH", help="JSON output (default bench/results/bench-<time>.json)")
    p.add_argument("--smoke", action="store_true",
                   help="CI check: tiny workload, one run per variant, no warm-up, -fast included, 1 thread")
    p.add_argument("--nbsim-cmd", metavar="CMD",
                   help="command that runs nbsim (default: 'nanoBragg' on PATH, else python -m nbsim)")
    p.add_argument("--c-bin", metavar="PATH", default=None,
                   help="reference nanoBragg binary to alternate with (default $NB_C_BIN)")
    p.add_argument("--timeout", type=float, default=None, help="seconds before a run is abandoned")
    p.add_argument("--compile", action="store_true",
                   help="write nbsim's bytecode cache first (python -m compileall), as a "
                        "non-editable install has it")
    return p


def main(argv=None):
    opts = build_parser().parse_args(argv)
    workloads = _csv(opts.workloads) if opts.workloads else list(DEFAULT_WORKLOADS)
    threads = _csv(opts.threads, int) if opts.threads else [1, 2]
    engines = _csv(opts.engines)
    runs, warmup, fast = opts.runs, opts.warmup, opts.fast
    if opts.smoke:
        workloads = ["tiny"]
        runs, warmup, fast = 1, 0, True
        if not opts.threads:
            threads = [1]
    bad = [w for w in workloads if w not in WORKLOADS]
    if bad or runs < 1 or warmup < 0 or not threads or min(threads) < 1 or not engines:
        sys.stderr.write("bench/run.py: bad --workloads/--runs/--warmup/--threads/--engines\n")
        return 2

    nbsim_cmd = shlex.split(opts.nbsim_cmd) if opts.nbsim_cmd else nbsim_command()
    c_bin = opts.c_bin or os.environ.get("NB_C_BIN") or None
    ref_cmd = [os.path.abspath(c_bin)] if c_bin else None

    version, warning = _probe_version(nbsim_cmd)
    notes = [warning] if warning else []
    _pkg, bytecode_note = bytecode_check(compile_now=opts.compile)
    if bytecode_note:
        notes.append(bytecode_note)
    if ref_cmd and not os.path.isfile(ref_cmd[0]):
        notes.append(f"reference binary not found: {ref_cmd[0]}")
    for n in notes:
        print(f"note: {n}")
    print(f"nbsim: {' '.join(nbsim_cmd)}" + (f"  ({version})" if version else ""))
    if ref_cmd:
        print(f"reference: {ref_cmd[0]}")

    results = benchmark(workloads=workloads, runs=runs, warmup=warmup, threads=threads,
                        variants=_variants(engines, fast), nbsim_cmd=nbsim_cmd,
                        ref_cmd=ref_cmd, timeout=opts.timeout)
    print(format_table(results))

    report = {
        "schema_version": SCHEMA_VERSION,
        "tool": "nbsim-bench",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": {"platform": platform.platform(), "machine": platform.machine(),
                 "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "nbsim_command": nbsim_cmd,
        "nbsim_version": version,
        "reference_command": ref_cmd,
        "smoke": opts.smoke,
        "runs": runs,
        "warmup": warmup,
        "threads": threads,
        "workloads": {w: workload_args(w) for w in workloads},
        "notes": notes,
        "results": results,
    }
    if opts.json:
        out = Path(opts.json)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(__file__).resolve().parent / "results" / f"bench-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")

    failed = False
    for w in workloads:
        for t in threads:
            mine = [r for r in results if r["workload"] == w and r["threads"] == t]
            if not any(r["runner"] == "nbsim" and r["status"] == "ok" for r in mine):
                print(f"FAIL: no nbsim variant ran {w} with {t} thread(s)")
                failed = True
            if any(r["runner"] == "reference" and r["status"] != "ok" for r in mine):
                print(f"FAIL: the reference did not run {w} with {t} thread(s)")
                failed = True
    unavailable = sorted({r["variant"] for r in results
                          if r["runner"] == "nbsim" and r["status"] != "ok"})
    if unavailable:
        print("not measured (reported, not fatal): " + ", ".join(unavailable))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
