"""``nb-compare``: run the reference nanoBragg and nbsim on the same arguments and diff them.

Usage::

    nb-compare [--c-bin PATH | --c-source PATH] [--nbsim CMD] [--nbsim-arg ARG ...]
               [--out DIR] [--threshold X] [--roi XMIN XMAX YMIN YMAX] [--threads N]
               [--timeout S] [--keep-runs] -- <nanoBragg arguments...>

The reference is your own nanoBragg: a compiled binary (``--c-bin`` or
``$NB_C_BIN``), or your nanoBragg.c built and run in-process through
:mod:`nbsim.reference` (``--c-source`` or ``$NB_C_SOURCE``).  Command-line options
win over the environment, and a binary wins over a source.  nbsim runs as
``python -m nbsim`` unless ``--nbsim`` gives another command (split like a shell
would); ``--nbsim-arg`` (repeatable) appends arguments for nbsim alone, e.g.
``--nbsim-arg=-engine --nbsim-arg=c``. nbsim also gets ``-c_parity`` (so that it
reproduces the reference's phi=0 carry-over) unless ``--physics`` is given.

Each program runs in its own new, empty temporary folder (nothing is copied into it),
with ``OMP_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` both set to ``--threads`` (default
1); stdout and stderr are captured together.  Before the runs, an argument that is not
a flag, does not parse as a number, follows a flag that is not an output-file flag, and
names an existing path relative to the current folder is made absolute, so input files
(``-hkl``, ``-mat``, ``-sourcefile``, ``-img``, ``-mask`` ...) are found.  Output-file
names (``-floatfile``, ``-intfile``, ``-noisefile``, ``-pgmfile``, their ``*image``
spellings, ``-dump``, and nbsim's ``-tifffile``, ``-nexusfile``, ``-cbffile``,
``-geomfile``, ``-pngfile``) stay relative and must not be absolute or climb
out with ``..``.  Note that nanoBragg reads ``Fdump.bin`` from its working folder when
``-hkl`` is absent; the run folders start empty, so no such file is there.

Compared: the set of files each run wrote, and for each file byte identity.  Image
files also get pixel metrics (see :func:`nbsim.compare_images.image_metrics`):

* the float image (``-floatfile``/``-floatimage`` name, else ``floatimage.bin``), raw
  float32, shaped by the ``SIZE1``/``SIZE2`` of an SMV file of the same run, else the
  ``(FxS pixels)`` note in that run's stdout, else ``-detpixels``/``-detpixels_f``/
  ``-detpixels_s`` (and the ``_x``/``_y`` spellings);
* SMV files (detected by content): the unsigned-short data after ``HEADER_BYTES``; the
  header bytes must be identical;
* binary PGM files (detected by content): the 8-bit data after the header.

``--roi`` (inclusive pixel indices, x = fast, y = slow, like nanoBragg's ``-roi``)
restricts the metrics and the threshold test to that region.  The statistics lines on
stdout (``max_I``, ``mean/rms/rmsd``, ``intfile_scale``, ``pgm_scale``, noise photons)
are compared too.  A file or statistic passes when it is identical, or, when
``--threshold X`` is given, when its maximum relative difference
(``|a-b|/max(|a|,|b|)``) is at most X (for images: over finite pixels, and the two must
agree on which pixels are non-finite; SMV/PGM headers must still be identical).
With the default threshold 0 and no ROI, every file must be byte-identical.
Non-image files must always be identical.

Outputs in ``--out`` (default ``./nb-compare-out``; earlier outputs there are removed):
``summary.json``, ``reference_stdout.txt``, ``nbsim_stdout.txt`` and, when the float
image has a known 2-D shape in both runs, ``reference.png``, ``nbsim.png`` (shared
log-like grey scale) and ``diff.png`` (red: nbsim higher, blue: nbsim lower), each with
a title, pixel axes and a colour bar (drawn with Pillow; without it, the bare images).

summary.json (``schema_version`` 1).  Keys added later will not change the meaning
of these; a change of meaning bumps ``schema_version``::

    schema_version   1
    tool             "nb-compare"
    nbsim_version    str
    verdict          "identical" | "within_threshold" | "mismatch" | "size_mismatch"
                     | "runner_failed" | "usage_error"
    exit_code        int (the command's exit status, table below)
    messages         [str]   human-readable reasons for the verdict
    threshold        float
    roi              [xmin, xmax, ymin, ymax] | null
    threads          int
    args             [str]   nanoBragg arguments as passed to both programs
    nbsim_extra_args [str]   --nbsim-arg values, passed to nbsim only (after args)
    reference, nbsim {       one object per program
        kind         "binary" | "source" | "command"
        path         str | null          binary or source path
        command      [str] | null        argv prefix run (null for "source")
        exit_code    int | null          null if it did not run; negative = signal
        error        str | null          why the runner failed, if it did
        wall_seconds float | null
        files        [str]               files written, relative to its run folder
        workdir      str | null          kept run folder (--keep-runs), else null
    }
    exit_codes_match bool
    stdout_identical bool                informational only
    files [ {                            union of both runs' files, sorted by name
        name         str
        kind         "float" | "smv" | "pgm" | "other"
        in_reference, in_nbsim           bool
        size_reference, size_nbsim       int | null (bytes)
        sha256_reference, sha256_nbsim   str | null
        identical    bool                byte-identical
        header_identical bool | null     SMV/PGM only
        shape        [slow, fast] | null image shape used for metrics
        metrics      object | null       see nbsim.compare_images.image_metrics
        status       "identical" | "within_threshold" | "mismatch"
                     | "size_mismatch" | "missing"
        note         str | null
    } ]
    stats [ {                            one per statistics line, fixed order
        name         "max_I" | "mean_rms_rmsd" | "intfile_scale" | "pgm_scale"
                     | "noise_photons"
        reference, nbsim                 the line text | null
        reference_values, nbsim_values   [float | null] | null
        max_rel_diff float | null
        status       "identical" | "within_threshold" | "mismatch" | "missing"
                     | "absent" (neither printed it)
    } ]
    previews         {"reference": "reference.png", "nbsim": "nbsim.png",
                      "diff": "diff.png", "file": name of the float image} | null

Exit status (most severe wins, in this order: 2, 3, 5, 4):

    0  identical, or every compared item within --threshold
    2  usage error (bad options, no reference configured, ROI outside the image)
    3  a runner failed: program or source missing, build failure, launch failure,
       killed by a signal, timeout, or the two exit statuses differ.  Both exiting
       with the same non-zero status is a match (an error case reproduced), not 3.
    4  mismatch: a file's content or a statistics line differs beyond the threshold
    5  size mismatch: the runs wrote different sets of files, or an image differs in
       size or shape
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from . import compare_images as ci

__all__ = [
    "main",
    "EXIT_OK", "EXIT_USAGE", "EXIT_RUNNER", "EXIT_MISMATCH", "EXIT_SIZE",
    "SCHEMA_VERSION",
    "absolutize_inputs",
    "float_image_names",
    "shape_from_args",
    "compare_outputs",
    "compare_stats",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_RUNNER = 3
EXIT_MISMATCH = 4
EXIT_SIZE = 5
SCHEMA_VERSION = 1

OUTPUT_FLAGS = frozenset({
    "-floatfile", "-floatimage", "-intfile", "-intimage", "-pgmfile", "-pgmimage",
    "-noisefile", "-noiseimage", "-dump", "-tifffile", "-nexusfile", "-cbffile", "-geomfile",
    "-pngfile",
})
_FLOAT_FLAGS = ("-floatfile", "-floatimage")
DEFAULT_FLOAT_NAME = "floatimage.bin"
OUTPUT_NAMES = ("summary.json", "reference_stdout.txt", "nbsim_stdout.txt",
                "reference.png", "nbsim.png", "diff.png")

_EXIT_HELP = """\
exit status:
  0  identical, or every compared item within --threshold (with the default
     --threshold 0 and no --roi, files must be byte-identical)
  2  usage error (bad options, no reference configured, ROI outside the image)
  3  a runner failed: missing program/source, build or launch failure, signal,
     timeout, or the two exit statuses differ (both failing with the SAME
     status counts as a match)
  4  mismatch: file content or a statistics line differs beyond the threshold
  5  size mismatch: different sets of output files, or image sizes/shapes differ
  (when several apply, the first listed of 2, 3, 5, 4 wins)

Outputs go to --out: summary.json (schema_version 1, documented in
nbsim/compare.py), reference_stdout.txt, nbsim_stdout.txt, reference.png,
nbsim.png, diff.png.  The reference is --c-bin, else --c-source, else
$NB_C_BIN, else $NB_C_SOURCE.
"""


class UsageError(Exception):
    """Bad command line; reported with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _nbsim_only_args(opts):
    """Arguments nbsim gets on top of the shared ones: -c_parity unless --physics."""
    extra = list(opts.nbsim_arg)
    if not getattr(opts, "physics", False) and "-c_parity" not in extra:
        extra.append("-c_parity")
    return extra


def _build_parser():
    p = _Parser(
        prog="nb-compare",
        usage="nb-compare [options] -- <nanoBragg arguments...>",
        description="Run the reference nanoBragg and nbsim with the same arguments, "
                    "each in an empty temporary folder, and compare their output files "
                    "and statistics lines.",
        epilog=_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--c-bin", metavar="PATH", help="reference nanoBragg binary (default $NB_C_BIN)")
    ref.add_argument("--c-source", metavar="PATH",
                     help="reference nanoBragg.c, built with cffi and run in-process "
                          "(default $NB_C_SOURCE)")
    p.add_argument("--nbsim", metavar="CMD",
                   help="command that runs nbsim, split like a shell line "
                        "(default: this Python with -m nbsim)")
    p.add_argument("--nbsim-arg", metavar="ARG", action="append", default=[],
                   help="extra argument for nbsim only, appended after the shared ones; "
                        "repeatable; write --nbsim-arg=-c_parity for values starting with '-'")
    p.add_argument("--physics", action="store_true",
                   help="compare nbsim's default (corrected) physics; by default nbsim gets "
                        "-c_parity so that it reproduces the reference's phi=0 carry-over")
    p.add_argument("--out", metavar="DIR", default="nb-compare-out",
                   help="output folder (default ./nb-compare-out)")
    p.add_argument("--threshold", metavar="X", type=float, default=0.0,
                   help="largest accepted relative difference (default 0: exact)")
    p.add_argument("--roi", metavar=("XMIN", "XMAX", "YMIN", "YMAX"), nargs=4, type=int,
                   help="restrict image metrics to this inclusive pixel box (x fast, y slow)")
    p.add_argument("--threads", metavar="N", type=int, default=1,
                   help="OMP_NUM_THREADS and NUMBA_NUM_THREADS for both runs (default 1)")
    p.add_argument("--timeout", metavar="S", type=float, default=None,
                   help="give up on a run after S seconds (exit 3)")
    p.add_argument("--keep-runs", action="store_true",
                   help="keep the two temporary run folders and report their paths")
    return p


def _split_argv(argv):
    """Split at the first ``--``: (nb-compare options, nanoBragg arguments)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, None


# ---------------------------------------------------------------------------
# argument helpers
# ---------------------------------------------------------------------------

def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def absolutize_inputs(args, cwd=None):
    """Make input paths in nanoBragg ``args`` absolute (see the module notes).

    A token is rewritten when it does not start with ``-``, is not a number, directly
    follows a flag that is not an output-file flag, and exists relative to ``cwd``
    (default: the current folder).
    """
    cwd = os.getcwd() if cwd is None else os.fspath(cwd)
    out = []
    for i, tok in enumerate(args):
        prev = args[i - 1] if i else None
        if (prev is not None and prev.startswith("-") and not _is_number(prev)
                and prev not in OUTPUT_FLAGS and not tok.startswith("-")
                and not _is_number(tok) and not os.path.isabs(tok)
                and os.path.exists(os.path.join(cwd, tok))):
            tok = os.path.abspath(os.path.join(cwd, tok))
        out.append(tok)
    return out


def _output_names(args):
    names = []
    for i, tok in enumerate(args[:-1]):
        if tok in OUTPUT_FLAGS:
            names.append(args[i + 1])
    return names


def _check_output_names(args):
    for name in _output_names(args):
        parts = name.replace("\\", "/").split("/")
        if os.path.isabs(name) or ".." in parts:
            raise UsageError(
                f"output file {name!r} must be a plain relative name: each program writes "
                "into its own temporary folder")


def float_image_names(args):
    """Names the float image may have: the last ``-floatfile``/``-floatimage`` value,
    else ``floatimage.bin``."""
    name = None
    for i, tok in enumerate(args[:-1]):
        if tok in _FLOAT_FLAGS:
            name = args[i + 1]
    return {os.path.normpath(name or DEFAULT_FLOAT_NAME)}


def shape_from_args(args):
    """``(slow, fast)`` from ``-detpixels`` / ``-detpixels_f|_x`` / ``-detpixels_s|_y``,
    or None when the arguments do not fix both."""
    fast = slow = None
    for i, tok in enumerate(args[:-1]):
        try:
            value = int(float(args[i + 1]))
        except ValueError:
            continue
        if tok == "-detpixels":
            fast = slow = value
        elif tok in ("-detpixels_f", "-detpixels_x"):
            fast = value
        elif tok in ("-detpixels_s", "-detpixels_y"):
            slow = value
    if fast is None or slow is None or fast <= 0 or slow <= 0:
        return None
    return slow, fast


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

class _Run:
    """What one program did."""

    def __init__(self, label, kind, path=None, command=None):
        self.label = label
        self.kind = kind
        self.path = path
        self.command = command
        self.exit_code = None
        self.error = None
        self.stdout = ""
        self.wall_seconds = None
        self.files = []
        self.workdir = None

    def as_json(self, keep):
        return {
            "kind": self.kind,
            "path": self.path,
            "command": self.command,
            "exit_code": self.exit_code,
            "error": self.error,
            "wall_seconds": self.wall_seconds,
            "files": list(self.files),
            "workdir": self.workdir if keep else None,
        }


def _list_files(folder):
    names = []
    for root, _dirs, files in os.walk(folder):
        for fname in files:
            names.append(os.path.normpath(os.path.relpath(os.path.join(root, fname), folder)))
    return sorted(names)


def _run_command(run, args, workdir, env, timeout):
    run.workdir = workdir
    cmd = list(run.command) + list(args)
    log_path = os.path.join(os.path.dirname(workdir), run.label + ".log")
    start = time.perf_counter()
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.run(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        run.exit_code = proc.returncode
    except FileNotFoundError:
        run.error = f"{run.label}: command not found: {cmd[0]}"
    except PermissionError:
        run.error = f"{run.label}: not executable: {cmd[0]}"
    except OSError as exc:
        run.error = f"{run.label}: cannot start {cmd[0]}: {exc}"
    except subprocess.TimeoutExpired:
        run.error = f"{run.label}: timed out after {timeout} s"
    run.wall_seconds = time.perf_counter() - start
    if os.path.exists(log_path):
        with open(log_path, "rb") as fh:
            run.stdout = fh.read().decode("utf-8", errors="replace")
    if run.exit_code is not None and run.exit_code < 0:
        run.error = f"{run.label}: killed by signal {-run.exit_code}"
    run.files = _list_files(workdir)


def _run_source(run, args, workdir, timeout):
    from . import reference
    run.workdir = workdir
    try:
        res = reference.run_reference(args, workdir, source=run.path, timeout=timeout)
    except reference.ReferenceBuildError as exc:
        run.error = f"reference: {exc}"
        return
    except TimeoutError:
        run.error = f"reference: timed out after {timeout} s"
        return
    run.exit_code = res.exit_code
    run.stdout = res.stdout
    run.wall_seconds = res.wall_seconds
    run.files = _list_files(workdir)
    if res.exit_code < 0:
        run.error = f"reference: killed by signal {-res.exit_code}"


# ---------------------------------------------------------------------------
# comparing
# ---------------------------------------------------------------------------

def _sha256(data):
    return hashlib.sha256(data).hexdigest() if data is not None else None


def _shape_for_run(files, stdout, args, folder):
    """(slow, fast) of this run's image: SMV header, else stdout note, else args."""
    for name in files:
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError:
            continue
        fields = ci.parse_smv_header(head)
        if fields and "SIZE1" in fields and "SIZE2" in fields:
            try:
                return int(fields["SIZE2"]), int(fields["SIZE1"])
            except ValueError:
                pass
    counted = ci.parse_pixel_count(stdout)
    if counted is not None:
        return counted[1], counted[0]
    return shape_from_args(args)


def _classify(name, raw, float_names):
    if ci.read_smv(raw) is not None:
        return "smv"
    if ci.read_pgm(raw) is not None:
        return "pgm"
    if os.path.normpath(name) in float_names:
        return "float"
    return "other"


def _image_status(metrics, threshold):
    if metrics["n_differing"] == 0:
        return "identical_values"
    rel = metrics["max_rel_diff"]
    if metrics["n_nonfinite_mismatch"] == 0 and rel is not None and rel <= threshold:
        return "within_threshold"
    return "mismatch"


def compare_outputs(ref_files, new_files, *, args, threshold=0.0, roi=None,
                    ref_shape=None, new_shape=None):
    """Compare two runs' output files.

    ``ref_files`` / ``new_files`` map relative names to file contents (bytes).  Returns
    ``(entries, float_arrays)``: the ``files`` list of summary.json, and for the float
    image with a 2-D shape, ``(name, ref_array, new_array)`` (else None).
    With ``threshold == 0`` and no ``roi``, an image passes only when byte-identical
    (equal values with different bytes, e.g. -0.0 vs 0.0, are a mismatch).
    Raises ValueError if ``roi`` does not overlap an image it applies to.
    """
    float_names = float_image_names(args)
    strict = threshold == 0 and roi is None  # plain parity check: bytes must match
    entries = []
    float_arrays = None
    for name in sorted(set(ref_files) | set(new_files)):
        a = ref_files.get(name)
        b = new_files.get(name)
        kind = _classify(name, a if a is not None else b, float_names)
        entry = {
            "name": name, "kind": kind,
            "in_reference": a is not None, "in_nbsim": b is not None,
            "size_reference": len(a) if a is not None else None,
            "size_nbsim": len(b) if b is not None else None,
            "sha256_reference": _sha256(a), "sha256_nbsim": _sha256(b),
            "identical": a is not None and b is not None and a == b,
            "header_identical": None, "shape": None, "metrics": None,
            "status": None, "note": None,
        }
        entries.append(entry)
        if a is None or b is None:
            entry["status"] = "missing"
            entry["note"] = "only the " + ("reference" if b is None else "nbsim") + " wrote it"
            continue
        arr_a = arr_b = None
        if kind == "smv":
            pa, pb = ci.read_smv(a), ci.read_smv(b)
            if pb is None:
                entry["status"] = "size_mismatch"
                entry["note"] = "the nbsim file is not a readable SMV image"
                continue
            entry["header_identical"] = pa[0] == pb[0]
            arr_a, arr_b = pa[1], pb[1]
        elif kind == "pgm":
            pa, pb = ci.read_pgm(a), ci.read_pgm(b)
            if pb is None:
                entry["status"] = "size_mismatch"
                entry["note"] = "the nbsim file is not a readable PGM image"
                continue
            entry["header_identical"] = pa[0] == pb[0]
            arr_a, arr_b = pa[1], pb[1]
        elif kind == "float":
            if len(a) != len(b):
                entry["status"] = "size_mismatch"
                entry["note"] = f"{len(a)} vs {len(b)} bytes"
                continue
            shape = ref_shape if ref_shape is not None else new_shape
            if (ref_shape is not None and new_shape is not None and ref_shape != new_shape):
                entry["status"] = "size_mismatch"
                entry["note"] = f"image shapes differ: {ref_shape} vs {new_shape}"
                continue
            arr_a, used = ci.read_float_image(a, shape)
            arr_b, _ = ci.read_float_image(b, shape)
            if used is None:
                entry["note"] = "image shape unknown: metrics over the flat array"
        else:
            entry["status"] = "identical" if entry["identical"] else "mismatch"
            if not entry["identical"] and len(a) != len(b):
                entry["note"] = f"{len(a)} vs {len(b)} bytes"
            continue
        if arr_a.shape != arr_b.shape:
            entry["status"] = "size_mismatch"
            entry["note"] = f"image shapes differ: {arr_a.shape} vs {arr_b.shape}"
            continue
        entry["shape"] = list(arr_a.shape) if arr_a.ndim == 2 else None
        entry["metrics"] = ci.image_metrics(arr_a, arr_b, roi)
        if entry["identical"]:
            entry["status"] = "identical"
        elif entry["header_identical"] is False:
            entry["status"] = "mismatch"
            entry["note"] = "headers differ"
        else:
            status = _image_status(entry["metrics"], threshold)
            if status == "identical_values":
                entry["note"] = ("pixel values equal" + (" inside the ROI" if roi else "")
                                 + " but the bytes differ")
                status = "mismatch" if strict else "within_threshold"
            entry["status"] = status
        if kind == "float" and arr_a.ndim == 2 and float_arrays is None:
            float_arrays = (name, arr_a, arr_b)
    return entries, float_arrays


def _num_or_none(value):
    return value if value is not None and math.isfinite(value) else None


def compare_stats(ref_text, new_text, threshold=0.0):
    """The ``stats`` list of summary.json for two runs' stdout texts."""
    sa = ci.parse_stats(ref_text)
    sb = ci.parse_stats(new_text)
    out = []
    for name in ci.STAT_NAMES:
        a, b = sa.get(name), sb.get(name)
        item = {"name": name,
                "reference": a["line"] if a else None, "nbsim": b["line"] if b else None,
                "reference_values": [_num_or_none(v) for v in a["values"]] if a else None,
                "nbsim_values": [_num_or_none(v) for v in b["values"]] if b else None,
                "max_rel_diff": None, "status": None}
        out.append(item)
        if a is None and b is None:
            item["status"] = "absent"
            continue
        if a is None or b is None:
            item["status"] = "missing"
            continue
        va, vb = np.array(a["values"]), np.array(b["values"])
        nan_ok = bool(np.array_equal(np.isnan(va), np.isnan(vb)))
        keep = ~(np.isnan(va) | np.isnan(vb))
        same_inf = bool(np.all((va == vb)[keep & ~(np.isfinite(va) & np.isfinite(vb))]))
        fin = keep & np.isfinite(va) & np.isfinite(vb)
        rel = float(np.max(ci.relative_difference(va[fin], vb[fin]))) if fin.any() else 0.0
        item["max_rel_diff"] = rel
        if a["line"] == b["line"]:
            item["status"] = "identical"
        elif nan_ok and same_inf and rel <= threshold:
            item["status"] = "within_threshold"
        else:
            item["status"] = "mismatch"
    return out


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------

def _fmt(value, digits=4):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _print_table(summary, out_dir, stream):
    w = stream.write
    ref, new = summary["reference"], summary["nbsim"]
    w(f"nb-compare  reference: {ref['kind']} {ref['path'] or ' '.join(ref['command'] or [])}\n")
    w(f"            nbsim:     {' '.join(new['command'] or [])}\n")
    w(f"            threads={summary['threads']} threshold={summary['threshold']}"
      + (f" roi={summary['roi']}" if summary["roi"] else "") + "\n")
    w(f"exit status: reference {_fmt(ref['exit_code'])}, nbsim {_fmt(new['exit_code'])}"
      + ("" if summary["exit_codes_match"] else "  DIFFERENT") + "\n")
    if summary["files"]:
        w("\n{:<24} {:<6} {:<9} {:>9} {:>10} {:>10} {:>10} {:>10}  {}\n".format(
            "file", "kind", "bytes", "n_diff", "max_abs", "max_rel", "rmse", "pearson", "status"))
        for f in summary["files"]:
            m = f["metrics"] or {}
            w("{:<24} {:<6} {:<9} {:>9} {:>10} {:>10} {:>10} {:>10}  {}\n".format(
                f["name"][:24], f["kind"],
                "same" if f["identical"] else ("differ" if f["in_reference"] and f["in_nbsim"] else "-"),
                _fmt(m.get("n_differing")), _fmt(m.get("max_abs_diff")),
                _fmt(m.get("max_rel_diff")), _fmt(m.get("rmse")), _fmt(m.get("pearson_r"), 6),
                f["status"] + (f" ({f['note']})" if f["note"] else "")))
    else:
        w("\n(no output files)\n")
    w("\n{:<15} {}\n".format("stat line", "status"))
    for s in summary["stats"]:
        w("{:<15} {}\n".format(s["name"], s["status"]))
        if s["status"] in ("mismatch", "missing", "within_threshold"):
            w(f"    reference: {s['reference'] or '(not printed)'}\n"
              f"    nbsim:     {s['nbsim'] or '(not printed)'}\n")
    for msg in summary["messages"]:
        w(f"note: {msg}\n")
    w(f"\nverdict: {summary['verdict']} (exit {summary['exit_code']}); details in "
      f"{os.path.join(out_dir, 'summary.json')}\n")


_VERDICTS = {EXIT_OK: None, EXIT_USAGE: "usage_error", EXIT_RUNNER: "runner_failed",
             EXIT_SIZE: "size_mismatch", EXIT_MISMATCH: "mismatch"}


def _decide(summary):
    """Fill verdict/exit_code/messages from the compared items."""
    msgs = summary["messages"]
    code = EXIT_OK
    ref, new = summary["reference"], summary["nbsim"]
    failed = [r["error"] for r in (ref, new) if r["error"]]
    if failed:
        msgs.extend(failed)
        code = EXIT_RUNNER
    elif not summary["exit_codes_match"]:
        msgs.append(f"exit statuses differ: reference {ref['exit_code']}, nbsim {new['exit_code']}")
        code = EXIT_RUNNER
        for label in ("reference", "nbsim"):
            last = summary.get("_last_lines", {}).get(label)
            if summary[label]["exit_code"] not in (0, None) and last:
                msgs.append(f"{label} output ends with: {last}")
    statuses = [f["status"] for f in summary["files"]]
    if code == EXIT_OK and any(s in ("missing", "size_mismatch") for s in statuses):
        code = EXIT_SIZE
    bad_stats = [s["name"] for s in summary["stats"] if s["status"] in ("mismatch", "missing")]
    if code == EXIT_OK and ("mismatch" in statuses or bad_stats):
        code = EXIT_MISMATCH
    for f in summary["files"]:
        if f["status"] not in ("identical", "within_threshold"):
            msgs.append(f"{f['name']}: {f['status']}" + (f" ({f['note']})" if f["note"] else ""))
    for name in bad_stats:
        msgs.append(f"statistics line {name} differs")
    verdict = _VERDICTS[code]
    if verdict is None:
        everything = statuses + [s["status"] for s in summary["stats"]]
        verdict = "within_threshold" if "within_threshold" in everything else "identical"
    summary["verdict"] = verdict
    summary["exit_code"] = code
    return code


def _last_line(text):
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else None


def _write_previews(out_dir, float_arrays):
    name, a, b = float_arrays
    try:
        figures = ci.preview_figures(a, b, name)
    except ImportError:      # no Pillow for the lettering: the bare images
        pa, pb = ci.preview_pair(a, b)
        figures = {"reference.png": ci.encode_png(pa), "nbsim.png": ci.encode_png(pb),
                   "diff.png": ci.encode_png(ci.preview_diff(a, b))}
    for fname, data in figures.items():
        with open(os.path.join(out_dir, fname), "wb") as fh:
            fh.write(data)
    return {"reference": "reference.png", "nbsim": "nbsim.png", "diff": "diff.png", "file": name}


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def _default_nbsim_command():
    return [sys.executable, "-m", "nbsim"]


def _choose_reference(opts):
    if opts.c_bin:
        return "binary", opts.c_bin
    if opts.c_source:
        return "source", opts.c_source
    if os.environ.get("NB_C_BIN"):
        return "binary", os.environ["NB_C_BIN"]
    if os.environ.get("NB_C_SOURCE"):
        return "source", os.environ["NB_C_SOURCE"]
    raise UsageError("no reference given: use --c-bin PATH or --c-source PATH, "
                     "or set NB_C_BIN or NB_C_SOURCE")


def _read_files(folder, names):
    data = {}
    for name in names:
        with open(os.path.join(folder, name), "rb") as fh:
            data[name] = fh.read()
    return data


def main(argv=None) -> int:
    """Entry point of ``nb-compare``; returns the exit status (see the module notes)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser()
    opts_argv, nb_args = _split_argv(argv)
    try:
        try:
            opts = parser.parse_args(opts_argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        if nb_args is None:
            raise UsageError("put the nanoBragg arguments after '--'")
        if opts.threshold < 0 or not math.isfinite(opts.threshold):
            raise UsageError("--threshold must be a finite number >= 0")
        if opts.threads < 1:
            raise UsageError("--threads must be at least 1")
        if opts.roi is not None:
            xmin, xmax, ymin, ymax = opts.roi
            if xmin > xmax or ymin > ymax:
                raise UsageError("--roi needs XMIN <= XMAX and YMIN <= YMAX")
        ref_kind, ref_path = _choose_reference(opts)
        nbsim_cmd = shlex.split(opts.nbsim) if opts.nbsim else _default_nbsim_command()
        if not nbsim_cmd:
            raise UsageError("--nbsim is empty")
        args = absolutize_inputs(nb_args)
        _check_output_names(args)
    except UsageError as exc:
        sys.stderr.write(f"nb-compare: error: {exc}\n")
        sys.stderr.write("usage: nb-compare [options] -- <nanoBragg arguments...>  (see --help)\n")
        return EXIT_USAGE

    out_dir = os.path.abspath(opts.out)
    try:
        os.makedirs(out_dir, exist_ok=True)
        for name in OUTPUT_NAMES:
            path = os.path.join(out_dir, name)
            if os.path.isfile(path):
                os.remove(path)
    except OSError as exc:
        sys.stderr.write(f"nb-compare: error: cannot use output folder {out_dir}: {exc}\n")
        return EXIT_USAGE

    from . import __version__
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(opts.threads)
    env["NUMBA_NUM_THREADS"] = str(opts.threads)
    if not opts.nbsim:  # make `python -m nbsim` find this very package from any folder
        pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)

    if ref_kind == "binary":
        path = os.path.abspath(os.path.expanduser(ref_path))
        ref = _Run("reference", "binary", path=path, command=[path])
    else:
        ref = _Run("reference", "source", path=os.path.abspath(os.path.expanduser(ref_path)))
    new = _Run("nbsim", "command", command=nbsim_cmd)

    root = tempfile.mkdtemp(prefix="nb-compare-")
    try:
        for run in (ref, new):
            workdir = os.path.join(root, run.label)
            os.makedirs(workdir)
            for name in _output_names(args):
                parent = os.path.dirname(name)
                if parent:
                    os.makedirs(os.path.join(workdir, parent), exist_ok=True)
        if ref.kind == "binary" and not os.path.isfile(ref.path):
            ref.error = f"reference binary not found: {ref.path}"
            ref.workdir = os.path.join(root, "reference")
        elif ref.kind == "binary":
            _run_command(ref, args, os.path.join(root, "reference"), env, opts.timeout)
        else:
            _run_source(ref, args, os.path.join(root, "reference"), opts.timeout)
        _run_command(new, args + _nbsim_only_args(opts), os.path.join(root, "nbsim"), env,
                     opts.timeout)

        for run in (ref, new):
            with open(os.path.join(out_dir, f"{run.label}_stdout.txt"), "w", encoding="utf-8") as fh:
                fh.write(run.stdout)

        summary = {
            "schema_version": SCHEMA_VERSION,
            "tool": "nb-compare",
            "nbsim_version": __version__,
            "verdict": None,
            "exit_code": None,
            "messages": [],
            "threshold": opts.threshold,
            "roi": list(opts.roi) if opts.roi else None,
            "threads": opts.threads,
            "args": args,
            "nbsim_extra_args": _nbsim_only_args(opts),
            "reference": ref.as_json(opts.keep_runs),
            "nbsim": new.as_json(opts.keep_runs),
            "exit_codes_match": ref.exit_code is not None and ref.exit_code == new.exit_code,
            "stdout_identical": ref.stdout == new.stdout,
            "files": [],
            "stats": compare_stats(ref.stdout, new.stdout, opts.threshold),
            "previews": None,
        }
        if ref.kind == "source":
            summary["messages"].append("the in-process reference is single-threaded; "
                                       "--threads applies to nbsim only")
        roi_error = None
        ref_files = _read_files(ref.workdir, ref.files) if ref.workdir else {}
        new_files = _read_files(new.workdir, new.files) if new.workdir else {}
        try:
            entries, float_arrays = compare_outputs(
                ref_files, new_files, args=args, threshold=opts.threshold, roi=opts.roi,
                ref_shape=_shape_for_run(ref.files, ref.stdout, args, ref.workdir),
                new_shape=_shape_for_run(new.files, new.stdout, args, new.workdir))
        except ValueError as exc:
            roi_error = str(exc)
            entries, float_arrays = [], None
        summary["files"] = entries
        if float_arrays is not None:
            summary["previews"] = _write_previews(out_dir, float_arrays)
        summary["_last_lines"] = {r.label: _last_line(r.stdout) for r in (ref, new)}
        code = _decide(summary)
        del summary["_last_lines"]
        if roi_error is not None:
            summary["messages"].insert(0, roi_error)
            summary["verdict"], summary["exit_code"], code = "usage_error", EXIT_USAGE, EXIT_USAGE
        with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2, allow_nan=False)
            fh.write("\n")
        _print_table(summary, out_dir, sys.stdout)
        if opts.keep_runs:
            sys.stdout.write(f"run folders kept in {root}\n")
        return code
    finally:
        if not opts.keep_runs:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
