"""Batch jobs: a whole dataset from one job file, spread over ranks, restartable.

    nbsim-batch JOB.json|JOB.toml [--dry-run] [--force] [--rank R --ranks N]

A job file describes frames that differ in a few flags: a rotation series steps
``-phi``, a dose series steps ``-fluence``, and so on. Each frame is exactly one
``nanoBragg`` command line (the same flags, the same outputs, the same log as if
typed by hand), so a frame's files do not depend on which rank rendered it, on how
many ranks there were, or on thread counts.

Job file keys (JSON, or TOML with the same structure):

``args``       nanoBragg arguments shared by every frame (a string or a list)
``frames``     number of frames (>= 1)
``vary``       per-frame values: ``{"-phi": {"start": 0, "step": 0.5}}`` gives frame
               f the value start + f*step; ``{"-distance": [100, 120, ...]}`` lists
               one value per frame
``name``       prefix of the output names (default: the job file's name)
``directory``  output folder, relative to the job file (default: ``name``)
``outputs``    ``{flag: template}`` for the image files, with ``{name}`` and
               ``{frame}`` fields (default: ``-floatfile {name}_{frame:05d}.bin``,
               ``-intfile {name}_{frame:05d}.img`` and, unless ``-nonoise``,
               ``-noisefile {name}_noise_{frame:05d}.img``)
``seed``       noise seed of frame 0 (default 1); frame f uses seed + f unless
               ``args`` or ``vary`` set ``-seed``: the reference's default seed is the
               clock, which no rerun could reproduce

Input files named in ``args``, and the output names, are relative to the job file's
folder (the job runs there, so a structure-factor cache ``Fdump.bin`` lands there
too).

Ranks: frame f goes to rank f mod N. The rank and N come from ``--rank/--ranks``,
else from mpi4py when it is installed, else from the launcher's environment
(Open MPI, MPICH/PMI, Slurm), else one rank.

Threads: unless ``args`` say ``-threads`` or ``NBSIM_THREADS``/``OMP_NUM_THREADS`` is
set, each of several ranks takes its share of the machine's cores.

Restart: after a frame's files are renamed into place a marker
``.{name}_{frame}.done`` records its command line and file sizes. A rerun skips a
frame whose marker matches its command line and whose files are all there with
those sizes, and renders every other one (``--force`` renders all).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from .errors import NbsimError

DEFAULT_OUTPUTS = (("-floatfile", "{name}_{frame:05d}.bin"),
                   ("-intfile", "{name}_{frame:05d}.img"),
                   ("-noisefile", "{name}_noise_{frame:05d}.img"))
OUTPUT_FLAGS = ("-floatfile", "-intfile", "-noisefile", "-pgmfile", "-tifffile")
_KEYS = {"args", "frames", "vary", "name", "directory", "outputs", "seed"}


class Job:
    """A parsed job file: the frames' command lines and where their files go."""

    def __init__(self, spec, path):
        self.path = os.path.abspath(path)
        self.folder = os.path.dirname(self.path)
        where = "job file %s" % path
        if not isinstance(spec, dict):
            raise NbsimError("%s: expected a table of keys at the top" % where)
        unknown = sorted(set(spec) - _KEYS)
        if unknown:
            raise NbsimError("%s: unknown key %s (known: %s)"
                             % (where, unknown[0], ", ".join(sorted(_KEYS))))
        args = spec.get("args", [])
        if isinstance(args, str):
            args = args.split()
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
            raise NbsimError("%s: 'args' must be a string or a list of words" % where)
        self.args = [str(a) for a in args]
        frames = spec.get("frames")
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise NbsimError("%s: 'frames' must be a whole number >= 1 (got %r)" % (where, frames))
        self.frames = frames
        stem = os.path.splitext(os.path.basename(path))[0]
        self.name = str(spec.get("name", stem))
        if not self.name or os.sep in self.name:
            raise NbsimError("%s: 'name' must be a plain file-name prefix" % where)
        # relative to the job file's folder, where frames run: moving the whole folder
        # keeps the frames' command lines, hence their done-markers, valid
        self.out_dir = os.path.normpath(str(spec.get("directory", self.name)))
        self.directory = os.path.join(self.folder, self.out_dir)
        self.vary = self._parse_vary(spec.get("vary", {}), where)
        self.seed = spec.get("seed", 1)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise NbsimError("%s: 'seed' must be a whole number" % where)
        self.outputs = self._parse_outputs(spec.get("outputs"), where)

    def _parse_vary(self, vary, where):
        if not isinstance(vary, dict):
            raise NbsimError("%s: 'vary' must map flags to values" % where)
        out = []
        for flag, rule in vary.items():
            if not flag.startswith("-"):
                raise NbsimError("%s: vary: '%s' is not a flag" % (where, flag))
            if isinstance(rule, list):
                if len(rule) != self.frames:
                    raise NbsimError("%s: vary %s: %d values for %d frames"
                                     % (where, flag, len(rule), self.frames))
                values = [_word(v, where, flag) for v in rule]
            elif isinstance(rule, dict) and set(rule) == {"start", "step"}:
                start, step = rule["start"], rule["step"]
                for v in (start, step):
                    if not isinstance(v, (int, float)) or isinstance(v, bool):
                        raise NbsimError("%s: vary %s: start and step must be numbers"
                                         % (where, flag))
                if isinstance(start, int) and isinstance(step, int):
                    values = [str(start + f * step) for f in range(self.frames)]
                else:
                    # repr gives the shortest text that reads back as the same double
                    values = [repr(float(start) + f * float(step)) for f in range(self.frames)]
            else:
                raise NbsimError("%s: vary %s: give a list of values or "
                                 "{\"start\": .., \"step\": ..}" % (where, flag))
            out.append((flag, values))
        return out

    def _parse_outputs(self, outputs, where):
        if outputs is None:
            pairs = [(f, t) for f, t in DEFAULT_OUTPUTS
                     if not (f == "-noisefile" and "-nonoise" in self.args)]
        elif isinstance(outputs, dict):
            pairs = list(outputs.items())
        else:
            raise NbsimError("%s: 'outputs' must map output flags to name templates" % where)
        for flag, template in pairs:
            if flag in self.args:
                raise NbsimError("%s: args set %s; name the frames' files in 'outputs' "
                                 "(a template with {frame}) instead" % (where, flag))
            if flag not in OUTPUT_FLAGS:
                raise NbsimError("%s: outputs: '%s' is not one of %s"
                                 % (where, flag, ", ".join(OUTPUT_FLAGS)))
            try:
                a = str(template).format(name=self.name, frame=0)
                b = str(template).format(name=self.name, frame=1)
            except (KeyError, IndexError, ValueError) as exc:
                raise NbsimError("%s: outputs %s: bad template %r (%s)"
                                 % (where, flag, template, exc)) from None
            if a == b and self.frames > 1:
                raise NbsimError("%s: outputs %s: template %r has no {frame} field, so "
                                 "every frame would overwrite the same file"
                                 % (where, flag, template))
        named = {f for f, _t in pairs}
        self.notes = ["outputs do not name %s: every frame writes nanoBragg's default %s "
                      "in the job folder" % (flag, default)
                      for flag, default in (("-intfile", "intimage.img"),
                                            ("-noisefile", "noiseimage.img"))
                      if flag not in named and not (flag == "-noisefile" and "-nonoise" in self.args)]
        return [(f, str(t)) for f, t in pairs]

    def frame_outputs(self, frame, absolute=True):
        """[(flag, path)] of frame ``frame``'s image files (relative: to the job's folder)."""
        top = self.directory if absolute else self.out_dir
        return [(flag, os.path.join(top, t.format(name=self.name, frame=frame)))
                for flag, t in self.outputs]

    def frame_argv(self, frame):
        """The full nanoBragg command line of frame ``frame``."""
        argv = list(self.args)
        varied = set()
        for flag, values in self.vary:
            argv += [flag, values[frame]]
            varied.add(flag)
        if "-seed" not in self.args and "-seed" not in varied:
            argv += ["-seed", str(self.seed + frame)]
        for flag, path in self.frame_outputs(frame, absolute=False):
            argv += [flag, path]
        return argv

    def log_path(self, frame):
        return os.path.join(self.directory, "%s_%05d.log" % (self.name, frame))

    def marker_path(self, frame):
        return os.path.join(self.directory, ".%s_%05d.done" % (self.name, frame))


def _word(value, where, flag):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise NbsimError("%s: vary %s: values must be numbers or words" % (where, flag))
    return repr(value) if isinstance(value, float) else str(value)


def load_job(path):
    """Read and check a job file (``.toml`` as TOML, anything else as JSON)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise NbsimError("cannot read job file %s: %s" % (path, exc.strerror)) from None
    try:
        if str(path).endswith(".toml"):
            import tomllib
            spec = tomllib.loads(raw.decode("utf-8"))
        else:
            spec = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise NbsimError("job file %s: %s" % (path, str(exc).splitlines()[0])) from None
    return Job(spec, path)


def rank_and_size(rank=None, ranks=None):
    """(rank, number of ranks, where they came from)."""
    if rank is not None or ranks is not None:
        if rank is None or ranks is None:
            raise NbsimError("--rank and --ranks go together")
        if ranks < 1 or not 0 <= rank < ranks:
            raise NbsimError("--rank %d --ranks %d: need 0 <= rank < ranks" % (rank, ranks))
        return rank, ranks, "command line"
    try:
        from mpi4py import MPI
    except ImportError:
        MPI = None
    if MPI is not None:
        comm = MPI.COMM_WORLD
        return comm.Get_rank(), comm.Get_size(), "mpi4py"
    for r_key, n_key, source in (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI"),
                                 ("PMI_RANK", "PMI_SIZE", "PMI"),
                                 ("SLURM_PROCID", "SLURM_NTASKS", "Slurm")):
        r, n = os.environ.get(r_key), os.environ.get(n_key)
        if r is not None and n is not None:
            try:
                r, n = int(r), int(n)
            except ValueError:
                raise NbsimError("%s=%s, %s=%s: not whole numbers" % (r_key, r, n_key, n)) from None
            if n >= 1 and 0 <= r < n:
                return r, n, source
    return 0, 1, "single process"


def ranks_on_this_node(source):
    """How many ranks share this machine (1 when nothing says)."""
    if source == "mpi4py":
        from mpi4py import MPI
        return MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    for key in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"):
        try:
            n = int(os.environ.get(key, ""))
        except ValueError:
            continue
        if n >= 1:
            return n
    return 1


def default_threads(local_ranks):
    """Threads per rank when neither the job nor the environment chose: the cores
    shared out among the ranks on this machine (thread counts never change bits)."""
    return max(1, (os.cpu_count() or 1) // max(1, local_ranks))


def _marker(job, frame, argv):
    sizes = {}
    for _flag, path in job.frame_outputs(frame):
        sizes[os.path.basename(path)] = os.path.getsize(path)
    return {"frame": frame, "argv": argv, "sizes": sizes}


def is_done(job, frame):
    """True if frame's marker matches its command line and its files are intact."""
    argv = job.frame_argv(frame)
    try:
        with open(job.marker_path(frame), "r", encoding="utf-8") as fh:
            mark = json.load(fh)
    except (OSError, ValueError):
        return False
    if mark.get("argv") != argv:
        return False
    for _flag, path in job.frame_outputs(frame):
        want = mark.get("sizes", {}).get(os.path.basename(path))
        try:
            if want is None or os.path.getsize(path) != want:
                return False
        except OSError:
            return False
    return True


def render_frame(job, frame, hkl_cache=None):
    """Render one frame as its nanoBragg command line would; returns the exit status.

    The frame's standard output and warnings go to its log file. ``hkl_cache`` (a
    dict) keeps the structure factors read for one frame for the next."""
    from . import cli
    from .io.atomic import atomic_write_bytes
    argv = job.frame_argv(frame)
    os.makedirs(job.directory, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(job.marker_path(frame))
    with open(job.log_path(frame), "w", encoding="utf-8") as log:
        def warn(msg):
            print("nbsim: warning: %s" % msg, file=log)
        print("# nanoBragg " + " ".join(argv), file=log)
        try:
            with contextlib.redirect_stderr(log):
                status = cli.run(argv, out=log, warn=warn, hkl_cache=hkl_cache)
        except NbsimError as exc:
            print("nanoBragg: error: %s" % exc, file=log)
            return exc.exit_code if exc.exit_code else 2
    if status == 0:
        atomic_write_bytes(job.marker_path(frame),
                           json.dumps(_marker(job, frame, argv), indent=1).encode("utf-8"))
    return status


def build_parser():
    p = argparse.ArgumentParser(prog="nbsim-batch",
                                description="Render a dataset described by a job file.")
    p.add_argument("job", help="job file (.json or .toml)")
    p.add_argument("--dry-run", action="store_true",
                   help="check every frame's command line and list this rank's frames")
    p.add_argument("--force", action="store_true", help="render frames already done too")
    p.add_argument("--rank", type=int, default=None, help="this rank (with --ranks)")
    p.add_argument("--ranks", type=int, default=None, help="number of ranks (with --rank)")
    return p


def run(opts, out=None):
    from . import cli
    out = out or sys.stdout
    job = load_job(opts.job)
    rank, ranks, source = rank_and_size(opts.rank, opts.ranks)
    mine = list(range(rank, job.frames, ranks))
    if ranks > 1 and "-threads" not in job.args and not (os.environ.get("NBSIM_THREADS")
                                                         or os.environ.get("OMP_NUM_THREADS")):
        os.environ["NBSIM_THREADS"] = str(default_threads(ranks_on_this_node(source)))
    old = os.getcwd()
    os.chdir(job.folder)
    try:
        # every frame's flags are checked before anything is rendered
        for frame in range(job.frames):
            try:
                cli.config_from_args(job.frame_argv(frame), lambda _m: None)
            except NbsimError as exc:
                raise NbsimError("frame %d: %s" % (frame, exc)) from None
        print("nbsim-batch: %s: %d frames; rank %d of %d (%s) takes %d"
              % (job.name, job.frames, rank, ranks, source, len(mine)), file=out)
        if rank == 0:
            for note in job.notes:
                print("nbsim-batch: note: %s" % note, file=sys.stderr)
        if opts.dry_run:
            for frame in mine:
                print("frame %d: nanoBragg %s" % (frame, " ".join(job.frame_argv(frame))),
                      file=out)
            return 0
        rendered = skipped = 0
        failed = []
        hkl_cache = {}
        for frame in mine:
            if not opts.force and is_done(job, frame):
                skipped += 1
                continue
            status = render_frame(job, frame, hkl_cache)
            out.flush()
            if status == 0:
                rendered += 1
            else:
                failed.append(frame)
                print("nbsim-batch: frame %d failed (exit %d); see %s"
                      % (frame, status, job.log_path(frame)), file=sys.stderr)
        print("nbsim-batch: rank %d: %d rendered, %d already done, %d failed"
              % (rank, rendered, skipped, len(failed)), file=out)
        return 1 if failed else 0
    finally:
        os.chdir(old)


def main(argv=None):
    opts = build_parser().parse_args(argv)
    # as for nanoBragg itself: no user code shares this process (see nbsim._jit)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("NBSIM_HIDE_SCIPY", "1")
    try:
        return run(opts)
    except NbsimError as exc:
        print("nbsim-batch: error: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
