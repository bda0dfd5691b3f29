"""The ``nbsim-batch`` command: check a job, then verify, claim, render and report.

A run goes through a job in two passes:

1. Each rank checks the old markers of its round-robin share of the frames
   (:mod:`.markers`): a frame whose marker no longer matches (another command line,
   a changed input, a changed output) or that failed in an earlier run is forgotten,
   under a claim so that a frame another process is rendering right now is left
   alone. Markers written since this run started are trusted as they are.
2. Each rank walks its frames (:mod:`.ranks`) and renders every frame that has no
   marker and whose claim (:mod:`.claims`) it gets, writing its log, its files and
   then its marker. With ``split_rows`` it walks row parts instead, and whoever
   saves a frame's last part assembles the frame (:mod:`.split`).
3. With a ``nexus`` key, each rank that finds every frame done at the end of its walk
   makes sure the scan's NXmx file is current, one at a time (:mod:`.scanfile`).

So a rerun renders exactly what is missing or no longer intact, several ranks or
several runs share the frames, and a frame's files never depend on who rendered it.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import time

from ..errors import NbsimError
from . import markers, scanfile, split
from .claims import DEFAULT_STALE_AFTER, Claims
from .job import load_job
from .progress import Progress, hms
from .ranks import (SCHEDULES, Schedule, default_threads, leave_launcher, rank_and_size,
                    ranks_on_this_node)

# frames checked before anything runs (the first, the last and the first frame of each
# distinct listed value, up to this many); every frame is checked when its turn comes,
# and all of them by --dry-run
MAX_UPFRONT_CHECKS = 256


class Terminated(BaseException):
    """SIGTERM (e.g. a batch system ending the job): stop as for Ctrl-C."""


def build_parser():
    p = argparse.ArgumentParser(prog="nbsim-batch",
                                description="Render a dataset described by a job file.")
    p.add_argument("job", help="job file (.json or .toml)")
    p.add_argument("--dry-run", action="store_true",
                   help="check every frame of this rank's share (flags, input files, output "
                        "folders), say which are done, and list their command lines; "
                        "writes nothing")
    p.add_argument("--force", action="store_true", help="render frames already done too")
    p.add_argument("--rank", type=int, default=None, help="this rank (with --ranks)")
    p.add_argument("--ranks", type=int, default=None, help="number of ranks (with --rank)")
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="dynamic: ranks take the next free frame; static: rank r takes "
                        "frames r, r+N, ... (default: static with --rank/--ranks, "
                        "else dynamic)")
    p.add_argument("--allow-outside", action="store_true",
                   help="let 'directory' and output templates point outside the job's "
                        "folder (absolute paths, '..')")
    p.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER, metavar="SECONDS",
                   help="take over a claim from another machine not refreshed for this long "
                        "(default %(default)g; claims of ended processes on this machine are "
                        "taken over at once)")
    p.add_argument("--no-progress", action="store_true",
                   help="no line per frame (the summary is still printed)")
    return p


# ---------------------------------------------------------------------------
# one frame
# ---------------------------------------------------------------------------

def check_frame(job, frame):
    """Check frame ``frame`` as far as possible without rendering it: its flags, its
    input files, and that its outputs can be written. Raises NbsimError naming the
    frame. Returns the folders that rendering would create."""
    from .. import cli
    try:
        argv = job.frame_argv(frame)
        cfg, opts = cli.command_config(argv, lambda _m: None)
        if cfg is None:
            raise NbsimError("-h/-version in args: the frame would render nothing")
        inputs = markers.frame_inputs(cfg, argv)
        for flag, path in inputs:
            if flag == "Fdump":
                continue
            if not os.path.isfile(path):
                why = ("it is a directory" if os.path.isdir(path) else
                       "not a regular file" if os.path.exists(path) else "no such file")
                raise NbsimError("%s: cannot read '%s' (%s)" % (flag, path, why))
        reads = {os.path.realpath(p) for _f, p in inputs}
        to_create = []
        for flag, path in job.frame_outputs(frame):
            if os.path.isdir(path):
                raise NbsimError("%s: cannot write '%s' (it is a directory)" % (flag, path))
            if os.path.realpath(path) in reads:
                raise NbsimError("%s: '%s' is also an input of the frame" % (flag, path))
            folder = os.path.dirname(path)
            existing = folder
            while not os.path.exists(existing):
                to_create.append(existing)
                existing = os.path.dirname(existing)
            if not os.path.isdir(existing):
                raise NbsimError("%s: cannot create folder for '%s' ('%s' is not a folder)"
                                 % (flag, path, existing))
            if not os.access(existing, os.W_OK | os.X_OK):
                raise NbsimError("%s: cannot write '%s' (folder '%s' is not writable)"
                                 % (flag, path, existing))
        return to_create
    except NbsimError as exc:
        raise NbsimError("frame %d: %s" % (frame, exc)) from None


def render_frame(job, frame, hkl_cache=None, digests=None, simulate=None, note=None):
    """Render one frame as its nanoBragg command line would; returns (exit status,
    seconds).

    The frame's standard output and warnings go to its log file, written whole when
    the frame ends (also when it is interrupted). On success a done marker follows
    the files, on failure a failed marker. ``hkl_cache`` (a dict) keeps structure
    factors read for one frame for the next; ``digests`` (:class:`markers.Digests`)
    keeps input checksums. ``simulate`` replaces the pixel loop (a frame assembled
    from row parts, see :mod:`.split`), ``note`` is a comment line for the log; if
    ``simulate`` raises :class:`split.PartsMissing` nothing is written and the status
    is None."""
    from .. import cli
    from ..io.atomic import atomic_write_bytes
    digests = digests or markers.Digests()
    argv = job.frame_argv(frame)
    start = time.monotonic()
    for _flag, path in job.frame_outputs(frame):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    markers.forget(job, frame)
    log = io.StringIO()

    def warn(msg):
        print("nbsim: warning: %s" % msg, file=log)

    def save_log():
        atomic_write_bytes(job.log_path(frame), log.getvalue().encode("utf-8"))

    print("# nanoBragg " + " ".join(argv), file=log)
    if note:
        print("# " + note, file=log)
    inputs = None
    try:
        try:
            cfg, _opts = cli.command_config(argv, lambda _m: None)
            # checksums of what the frame reads, taken before it reads them
            inputs = markers.input_digests(markers.frame_inputs(cfg, argv), digests) \
                if cfg is not None else []
            with contextlib.redirect_stderr(log):
                status = cli.run(argv, out=log, warn=warn, hkl_cache=hkl_cache,
                                 simulate=simulate)
        except split.PartsMissing:
            return None, time.monotonic() - start
        except NbsimError as exc:
            print("nanoBragg: error: %s" % exc, file=log)
            status = exc.exit_code if exc.exit_code else 2
        except MemoryError:
            print("nanoBragg: error: not enough memory for this frame", file=log)
            status = 12
    except BaseException:
        print("# interrupted: the frame is not marked done", file=log)
        save_log()
        raise
    seconds = time.monotonic() - start
    save_log()
    if status == 0:
        try:
            markers.write_done(job, frame, argv, inputs, seconds)
        except (OSError, NbsimError) as exc:
            print("nbsim-batch: frame %d: cannot record it as done: %s" % (frame, exc),
                  file=sys.stderr)
            status = 2
    if status != 0:
        markers.write_failed(job, frame, argv, status)
    return status, seconds


def is_done(job, frame, digests=None):
    """True if frame's marker matches its command line, inputs and files."""
    return markers.why_not_done(job, frame, digests or markers.Digests()) == ""


# ---------------------------------------------------------------------------
# the whole job
# ---------------------------------------------------------------------------

def run(opts, out=None, err=None):
    """Run the job of parsed options ``opts``; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    started = time.time()
    job = load_job(opts.job, allow_outside=opts.allow_outside)
    rank, ranks, source = rank_and_size(opts.rank, opts.ranks)
    try:
        return _run_as(opts, job, rank, ranks, source, started, out, err)
    finally:
        leave_launcher(source)     # a rank done early must not leave mpiexec spinning


def _run_as(opts, job, rank, ranks, source, started, out, err):
    kind = opts.schedule or ("static" if source == "command line" else "dynamic")
    schedule = Schedule(kind, rank, ranks, job.frames, job.split_rows)
    if not opts.stale_after > 0:
        raise NbsimError("--stale-after must be a positive number of seconds")
    threads_set = False
    if ranks > 1 and "-threads" not in job.args and not (os.environ.get("NBSIM_THREADS")
                                                         or os.environ.get("OMP_NUM_THREADS")):
        os.environ["NBSIM_THREADS"] = str(default_threads(ranks_on_this_node(source)))
        threads_set = True
    old = os.getcwd()
    os.chdir(job.folder)
    try:
        digests = markers.Digests()
        hkl_cache = {}
        if opts.dry_run:
            return _dry_run(job, schedule, digests, hkl_cache, out, err)
        upfront = job.check_frames()
        upfront = sorted({0, job.frames - 1} | set(upfront[:MAX_UPFRONT_CHECKS - 2]))
        for frame in upfront:
            check_frame(job, frame)
        if job.nexus is not None:
            _check_scan_file(job)
            scanfile.plan_scan(job, hkl_cache)
        split_note = ", frames in %d row parts" % job.split_rows if job.split_rows > 1 else ""
        print("nbsim-batch: %s: %d frames%s; rank %d of %d (%s), %s schedule"
              % (job.name, job.frames, split_note, rank, ranks, source, kind),
              file=out, flush=True)
        if rank == 0:
            for note in job.notes:
                print("nbsim-batch: note: %s" % note, file=err)
        os.makedirs(job.directory, exist_ok=True)
        claims = Claims(job.directory, stale_after=opts.stale_after)
        try:
            status = _render(job, schedule, claims, digests, opts, started, out, err,
                             hkl_cache)
            if job.nexus is not None:
                scan_status, message = scanfile.finish(
                    job, claims, started, opts.force, hkl_cache,
                    rerender=lambda frame: _rerender(job, frame, claims, hkl_cache, digests))
                print("nbsim-batch: rank %d: %s" % (rank, message),
                      file=err if scan_status else out, flush=True)
                status = status or scan_status
            return status
        finally:
            claims.release_all()
    finally:
        os.chdir(old)
        if threads_set:          # leave the environment as it was for the caller
            os.environ.pop("NBSIM_THREADS", None)


def _rerender(job, frame, claims, hkl_cache, digests):
    """Render a done frame again, whole, because its files changed since its marker
    (found while writing the scan file); returns its exit status."""
    claim = scanfile.take_waiting(claims, job.key(frame))
    try:
        if markers.why_not_done(job, frame, digests) == "":
            return 0                     # rendered again meanwhile by whoever held it
        status, _seconds = render_frame(job, frame, hkl_cache, digests)
        return status
    finally:
        claims.release(claim)


def _check_scan_file(job):
    """The scan file's folder can be made and written (as check_frame does for frames)."""
    path = job.scan_path()
    if os.path.isdir(path):
        raise NbsimError("nexus: cannot write '%s' (it is a directory)" % path)
    existing = os.path.dirname(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NbsimError("nexus: cannot create folder for '%s' ('%s' is not a folder)"
                         % (path, existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NbsimError("nexus: cannot write '%s' (folder '%s' is not writable)"
                         % (path, existing))


def _recent(mark, started):
    t = mark.get("time") if isinstance(mark, dict) else None
    return isinstance(t, (int, float)) and t >= started


def _listing(job):
    try:
        return set(os.listdir(job.directory))
    except OSError:
        return set()


def _forget_stale_markers(job, schedule, claims, digests, force, started):
    """Pass 1 over this rank's share; returns how many old frames are intact."""
    intact = 0
    listed = _listing(job)     # one listing, not two stats per frame of a long job
    claims.sweep_scratch(listed)  # records of claims that killed processes were taking
    parts = split.leftovers_by_key(listed)
    for frame in schedule.share():
        key = job.key(frame)
        if "." + key + ".done" not in listed and "." + key + ".failed" not in listed:
            continue
        done_path, failed_path = job.marker_path(frame), job.failed_path(frame)
        done, failed = markers.read_marker(done_path), markers.read_marker(failed_path)
        if _recent(done, started) or _recent(failed, started):
            continue                     # written by this run's other ranks
        if not force and not os.path.exists(failed_path) and \
                markers.why_not_done(job, frame, digests, done) == "":
            intact += 1
            _remove_parts(job, parts.get(key, ()))
            continue
        claim = claims.take(job.key(frame))
        if claim is None:
            continue                     # being rendered elsewhere right now
        try:
            if not force and not os.path.exists(failed_path) and \
                    markers.why_not_done(job, frame, digests) == "":
                intact += 1              # finished meanwhile
            else:
                markers.forget(job, frame)
            _remove_parts(job, parts.get(key, ()))
        finally:
            claims.release(claim)
    return intact


def _remove_parts(job, names):
    """Row parts left by an assembler stopped after the frame's marker, or by an older
    version of the job."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(job.directory, name))


def _fail_frame(job, frame, message, status, part=None):
    """Record a frame that failed before its command line could run (a row part)."""
    from ..io.atomic import atomic_write_bytes
    argv = job.frame_argv(frame)
    text = "# nanoBragg %s\n%snanoBragg: error: %s\n" % (
        " ".join(argv), "# row part %d of %d\n" % (part, job.split_rows) if part is not None
        else "", message)
    atomic_write_bytes(job.log_path(frame), text.encode("utf-8"))
    markers.write_failed(job, frame, argv, status)


class _Tally:
    def __init__(self):
        self.rendered = self.parts = self.others = 0
        self.failed = []


def _render(job, schedule, claims, digests, opts, started, out, err, hkl_cache=None):
    intact = _forget_stale_markers(job, schedule, claims, digests, opts.force, started)
    walk = schedule.walk()
    parts = job.split_rows
    listed = _listing(job)
    todo = bytearray(len(walk))
    for i, unit in enumerate(walk):
        key = job.key(unit // parts)
        if "." + key + ".done" not in listed and "." + key + ".failed" not in listed:
            todo[i] = 1
    progress = Progress(sum(todo), schedule.rank, schedule.ranks, stream=err,
                        quiet=opts.no_progress)
    tally = _Tally()
    hkl_cache = {} if hkl_cache is None else hkl_cache
    current = {}               # the split frame being worked on: its FrameParts, renderer
    try:
        for i, unit in enumerate(walk):
            frame, part = divmod(unit, parts)
            if markers.finished(job, frame):
                if todo[i]:
                    progress.passed_by(1)        # done by another rank meanwhile
                continue
            if parts > 1:
                _split_unit(job, frame, part, claims, digests, hkl_cache, current,
                            progress, tally)
                continue
            claim = claims.take(job.key(frame))
            if claim is None:
                tally.others += 1
                progress.passed_by(1)
                continue
            try:
                if markers.finished(job, frame):
                    progress.passed_by(1)
                    continue
                status, seconds = render_frame(job, frame, hkl_cache, digests)
            finally:
                claims.release(claim)
            _count_frame(job, frame, status, seconds, progress, tally)
    finally:
        progress.close()
    elapsed = progress.elapsed()
    per = " (%.2f s per frame)" % (elapsed / tally.rendered) if tally.rendered and parts == 1 \
        else ""
    split_note = " (%d row parts)" % tally.parts if parts > 1 else ""
    # CPU seconds of this process (all its threads): unlike the elapsed time, they
    # hardly change when other work shares the machine
    print("nbsim-batch: rank %d: %d rendered%s, %d already done, %d failed, %d taken by "
          "others; %s%s, cpu %.2f s; job: %d of %d frames done"
          % (schedule.rank, tally.rendered, split_note, intact, len(tally.failed), tally.others,
             hms(elapsed), per, time.process_time(), markers.count_done(job), job.frames),
          file=out, flush=True)
    failed = tally.failed
    if failed:
        shown = ", ".join(str(f) for f in failed[:10]) + (", ..." if len(failed) > 10 else "")
        print("nbsim-batch: failed frames: %s (see their logs in %s)" % (shown, job.directory),
              file=err)
    return 1 if failed else 0


def _count_frame(job, frame, status, seconds, progress, tally, label=None, count=True):
    if status == 0:
        tally.rendered += 1
    else:
        tally.failed.append(frame)
    progress.frame(frame, status, seconds,
                   "" if status == 0 else "; see %s" % job.log_path(frame), label, count)


def _split_unit(job, frame, part, claims, digests, hkl_cache, current, progress, tally):
    """Unit ``part`` of split frame ``frame``: render the part if it is missing and
    free, then assemble the frame if every part is there and nobody else is at it."""
    label = "frame %d part %d/%d" % (frame, part + 1, job.split_rows)
    if current.get("frame") != frame:
        current.clear()
        current["frame"] = frame
        try:
            current["parts"] = split.FrameParts(job, frame, digests)
        except NbsimError as exc:
            _fail_frame(job, frame, str(exc), 2)
            _count_frame(job, frame, 2, 0.0, progress, tally, label)
            return
    fp = current.get("parts")
    if fp is None:                      # failed above on an earlier unit
        progress.passed_by(1)
        return
    if fp.present(part):
        progress.passed_by(1)
    else:
        claim = claims.take(fp.claim_key(part))
        if claim is None:
            tally.others += 1
            progress.passed_by(1)
        else:
            start = time.monotonic()
            rendered = False
            try:
                if not (fp.present(part) or markers.finished(job, frame)):
                    if "renderer" not in current:
                        current["renderer"] = fp.renderer(hkl_cache)
                    fp.render_part(part, current["renderer"], claims)
                    rendered = True
            except (NbsimError, MemoryError) as exc:
                message = str(exc) if isinstance(exc, NbsimError) else \
                    "not enough memory for this frame"
                status = 12 if isinstance(exc, MemoryError) else 2
                _fail_frame(job, frame, message, status, part)
                current["parts"] = None
            finally:
                claims.release(claim)
            if current["parts"] is None:
                _count_frame(job, frame, status, time.monotonic() - start, progress, tally,
                             label)
                return
            if rendered:
                tally.parts += 1
                progress.frame(frame, 0, time.monotonic() - start, label=label)
            else:
                progress.passed_by(1)
    if not fp.all_present() or markers.finished(job, frame):
        return
    claim = claims.take(job.key(frame))
    if claim is None:
        return                          # another rank or run is assembling it
    try:
        if markers.finished(job, frame):
            return
        status, seconds = render_frame(
            job, frame, hkl_cache, digests, simulate=fp.simulate(claims, hkl_cache),
            note="rows rendered in %d parts, assembled here (nbsim-batch split_rows)"
            % job.split_rows)
        if status is None:
            return                      # a part is being rendered again elsewhere
        if status == 0:
            fp.remove_files()
            fp.clear_claims(claims)
    finally:
        claims.release(claim)
    _count_frame(job, frame, status, seconds, progress, tally,
                 "frame %d (%d parts assembled)" % (frame, job.split_rows), count=False)


def _dry_run(job, schedule, digests, hkl_cache, out, err):
    share = schedule.share()
    print("nbsim-batch: dry run of %s: %d frames%s; rank %d of %d checks %d"
          % (job.name, job.frames, " in %d row parts" % job.split_rows
             if job.split_rows > 1 else "", schedule.rank, schedule.ranks, len(share)),
          file=out)
    for note in job.notes:
        print("nbsim-batch: note: %s" % note, file=err)
    errors = []
    folders = set()
    done = 0
    for frame in share:
        try:
            folders.update(check_frame(job, frame))
        except NbsimError as exc:
            errors.append(str(exc))
            continue
        why = markers.why_not_done(job, frame, digests)
        done += why == ""
        state = "done" if why == "" else "to render (%s)" % why
        print("frame %d: %s: nanoBragg %s" % (frame, state, " ".join(job.frame_argv(frame))),
              file=out)
    scan_error = None
    if job.nexus is not None and not errors:
        try:
            _check_scan_file(job)
            plan = scanfile.plan_scan(job, hkl_cache)
            digest, why = scanfile.frames_digest(job)
            if digest is not None:
                why = scanfile.why_not_current(job, digest) or "up to date"
            print("scan file %s: %s, phi from %.10g deg in steps of %.10g deg, %d frames: %s"
                  % (os.path.relpath(job.scan_path(), job.folder), job.nexus.describe(),
                     plan.scan.start, plan.scan.increment, plan.scan.frames, why), file=out)
        except NbsimError as exc:
            scan_error = str(exc)
    for message in errors[:10]:
        print("nbsim-batch: error: %s" % message, file=err)
    if len(errors) > 10:
        print("nbsim-batch: error: ... and %d more frames" % (len(errors) - 10), file=err)
    if scan_error:
        print("nbsim-batch: error: %s" % scan_error, file=err)
    print("nbsim-batch: dry run: %d checked, %d done, %d to render, %d with errors%s"
          % (len(share), done, len(share) - done - len(errors), len(errors),
             "; would create %s" % ", ".join(sorted(folders)) if folders else ""), file=out)
    return 2 if errors or scan_error else 0


# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------

def _terminate(_signum, _frame):
    raise Terminated()


def main(argv=None):
    opts = build_parser().parse_args(argv)
    # as for nanoBragg itself: no user code shares this process (see nbsim._jit)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("NBSIM_HIDE_SCIPY", "1")
    previous = None
    with contextlib.suppress(ValueError):       # only the main thread may set handlers
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(opts)
    except NbsimError as exc:
        sys.stdout.flush()
        print("nbsim-batch: error: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("nbsim-batch: interrupted; frames not finished are not marked done (run "
              "the job again to render them)", file=sys.stderr)
        return 130
    except Terminated:
        sys.stdout.flush()
        print("nbsim-batch: terminated; frames not finished are not marked done (run "
              "the job again to render them)", file=sys.stderr)
        return 143
    except MemoryError:
        print("nbsim-batch: error: not enough memory", file=sys.stderr)
        return 12
    except OSError as exc:      # e.g. an output folder that became unwritable mid-job
        sys.stdout.flush()
        print("nbsim-batch: error: %s" % exc, file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous)
