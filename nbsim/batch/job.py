"""Job files: what a batch renders, and the nanoBragg command line of each frame.

Everything read from a job file is bounded and checked here, before anything is
rendered: the file itself (a regular file of at most :data:`MAX_JOB_BYTES`), the
number of frames (at most :data:`MAX_FRAMES`), the per-frame values (finite numbers
or words, computed per frame rather than stored), the output-name templates
(:mod:`.template`) and where the outputs go: inside the job's output folder unless
``allow_outside`` (``nbsim-batch --allow-outside``) says otherwise.
"""
from __future__ import annotations

import json
import math
import os
import stat

from ..errors import NbsimError
from .template import Template

DEFAULT_OUTPUTS = (("-floatfile", "{name}_{frame:05d}.bin"),
                   ("-intfile", "{name}_{frame:05d}.img"),
                   ("-noisefile", "{name}_noise_{frame:05d}.img"))
# nanoBragg's outputs, then nbsim's own (one file per frame each, so each needs a
# template with {frame}; one NXmx file per scan is the job's "nexus" key)
OUTPUT_FLAGS = ("-floatfile", "-intfile", "-noisefile", "-pgmfile",
                "-tifffile", "-nexusfile", "-cbffile", "-geomfile", "-pngfile")
# written by every nanoBragg run whether named or not; unnamed ones are discarded
ALWAYS_WRITTEN = ("-floatfile", "-intfile", "-noisefile")
KEYS = {"args", "frames", "vary", "name", "directory", "outputs", "seed", "nexus", "split_rows"}

MAX_FRAMES = 1_000_000      # 10^6 frames of even 64x64 pixels is a 50 GB dataset
MAX_JOB_BYTES = 64 << 20    # room for a few per-frame lists of 10^6 values
MAX_WORD = 4096             # one command-line word
MAX_NAME = 128
MAX_SPLIT_ROWS = 256        # row parts per frame (each a claim, a file and a plan)


def _int_fits(value):
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _word(text, where):
    if "\0" in text:
        raise NbsimError("%s: a NUL character cannot be part of a command line" % where)
    if len(text) > MAX_WORD:
        raise NbsimError("%s: a word of %d characters (at most %d)" % (where, len(text), MAX_WORD))
    return text


class Vary:
    """The values one flag takes: a list (one per frame) or start + frame * step,
    computed when asked, so that a long job costs no memory up front."""

    def __init__(self, flag, rule, frames, where):
        self.flag = flag
        where = "%s: vary %s" % (where, flag)
        if isinstance(rule, list):
            if len(rule) != frames:
                raise NbsimError("%s: %d values for %d frames" % (where, len(rule), frames))
            self.values = [self._value_word(v, where) for v in rule]
            self.start = self.step = None
        elif isinstance(rule, dict) and set(rule) == {"start", "step"}:
            self.values = None
            self.start, self.step = rule["start"], rule["step"]
            for v in (self.start, self.step):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise NbsimError("%s: start and step must be numbers" % where)
            self.integral = isinstance(self.start, int) and isinstance(self.step, int)
            # the values are monotonic in the frame number (float addition and
            # multiplication are monotonic), so the first and last bound them all
            for frame in (0, frames - 1):
                number = self._number(frame)
                if not _int_fits(number):
                    raise NbsimError("%s: frame %d would get %s, not a finite number"
                                     % (where, frame, number))
        else:
            raise NbsimError("%s: give a list of values or {\"start\": .., \"step\": ..}" % where)

    @staticmethod
    def _value_word(value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise NbsimError("%s: values must be numbers or words (got %r)"
                             % (where, type(value).__name__))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise NbsimError("%s: %r is not a finite number" % (where, value))
            return repr(value)
        if isinstance(value, int) and not _int_fits(value):
            raise NbsimError("%s: %d is too large for a number" % (where, value))
        return _word(str(value), where)

    def value(self, frame):
        if self.values is not None:
            return self.values[frame]
        # repr gives the shortest text that reads back as the same double
        return str(self._number(frame)) if self.integral else repr(self._number(frame))

    def _number(self, frame):
        if self.integral:
            return self.start + frame * self.step
        return float(self.start) + frame * float(self.step)

    def distinct_frames(self):
        """The first frame of each distinct value of a list (None for start/step)."""
        if self.values is None:
            return None
        seen = {}
        for frame, v in enumerate(self.values):
            seen.setdefault(v, frame)
        return sorted(seen.values())


class Job:
    """A parsed job file: the frames' command lines and where their files go.

    ``allow_outside``: let ``directory`` and the output templates point outside the
    job's folder (absolute paths, ``..``)."""

    def __init__(self, spec, path, allow_outside=False):
        self.path = os.path.abspath(path)
        self.folder = os.path.dirname(self.path)
        self.allow_outside = allow_outside
        where = "job file %s" % path
        self.where = where
        if not isinstance(spec, dict):
            raise NbsimError("%s: expected a table of keys at the top" % where)
        unknown = sorted(set(spec) - KEYS)
        if unknown:
            raise NbsimError("%s: unknown key %s (known: %s)"
                             % (where, unknown[0], ", ".join(sorted(KEYS))))
        args = spec.get("args", [])
        if isinstance(args, str):
            args = args.split()
        if not isinstance(args, list) or not all(
                isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in args):
            raise NbsimError("%s: 'args' must be a string or a list of words" % where)
        self.args = [_word(repr(a) if isinstance(a, float) else str(a), where + ": args")
                     for a in args]
        frames = spec.get("frames")
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise NbsimError("%s: 'frames' must be a whole number >= 1 (got %r)" % (where, frames))
        if frames > MAX_FRAMES:
            raise NbsimError("%s: 'frames' is %d; at most %d frames per job (split the "
                             "dataset into several jobs)" % (where, frames, MAX_FRAMES))
        self.frames = frames
        stem = os.path.splitext(os.path.basename(path))[0]
        self.name = self._parse_name(spec.get("name", stem), where)
        self.out_dir = self._parse_directory(spec.get("directory", self.name), where)
        self.directory = os.path.normpath(os.path.join(self.folder, self.out_dir))
        vary = spec.get("vary", {})
        if not isinstance(vary, dict):
            raise NbsimError("%s: 'vary' must map flags to values" % where)
        self.vary = []
        for flag, rule in vary.items():
            if not flag.startswith("-"):
                raise NbsimError("%s: vary: '%s' is not a flag" % (where, flag))
            if flag in OUTPUT_FLAGS:
                raise NbsimError("%s: vary: %s is an output; name it in 'outputs'" % (where, flag))
            self.vary.append(Vary(_word(flag, where), rule, frames, where))
        self.seed = spec.get("seed", 1)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or abs(self.seed) > 2**31:
            raise NbsimError("%s: 'seed' must be a whole number of at most 2^31" % where)
        self.outputs = self._parse_outputs(spec.get("outputs"), where)
        self.nexus = None
        if spec.get("nexus") not in (None, False):
            from .scanfile import NexusSpec
            self.nexus = NexusSpec(spec["nexus"], self, where)
        self.split_rows = self._parse_split_rows(spec.get("split_rows", 1), where)
        for frame in sorted({0, frames - 1}):      # names of the ends, checked now
            self.frame_outputs(frame)
        if self.nexus is not None:
            self.scan_path()

    @staticmethod
    def _parse_name(name, where):
        if isinstance(name, bool) or not isinstance(name, (str, int)):
            raise NbsimError("%s: 'name' must be a string" % where)
        name = str(name)
        if (not name or name in (".", "..") or "/" in name or os.sep in name
                or (os.altsep and os.altsep in name) or "\0" in name or len(name) > MAX_NAME):
            raise NbsimError("%s: 'name' must be a plain file-name prefix (no folders, "
                             "not '.' or '..', at most %d characters; got %r)"
                             % (where, MAX_NAME, name))
        return name

    @staticmethod
    def _parse_split_rows(parts, where):
        if isinstance(parts, bool) or not isinstance(parts, int) or \
                not 1 <= parts <= MAX_SPLIT_ROWS:
            raise NbsimError("%s: 'split_rows' must be a whole number of row parts per frame "
                             "from 1 (no split) to %d (got %r)" % (where, MAX_SPLIT_ROWS, parts))
        return parts

    def _parse_directory(self, directory, where):
        if not isinstance(directory, str) or not directory or "\0" in directory:
            raise NbsimError("%s: 'directory' must be a folder name" % where)
        out_dir = os.path.normpath(directory)
        if not self.allow_outside and _escapes(out_dir):
            raise NbsimError("%s: 'directory' %r is outside the job's folder (use a "
                             "relative folder without '..', or run with --allow-outside)"
                             % (where, directory))
        return out_dir

    def _parse_outputs(self, outputs, where):
        if outputs is None:
            pairs = [(f, t) for f, t in DEFAULT_OUTPUTS
                     if not (f == "-noisefile" and "-nonoise" in self.args)]
        elif isinstance(outputs, dict):
            pairs = list(outputs.items())
        else:
            raise NbsimError("%s: 'outputs' must map output flags to name templates" % where)
        parsed = []
        for flag, text in pairs:
            if flag not in OUTPUT_FLAGS:
                raise NbsimError("%s: outputs: '%s' is not one of %s"
                                 % (where, flag, ", ".join(OUTPUT_FLAGS)))
            template = Template(text, "%s: outputs %s" % (where, flag))
            if "frame" not in template.fields and self.frames > 1:
                raise NbsimError("%s: outputs %s: template %r has no {frame} field, so "
                                 "every frame would overwrite the same file"
                                 % (where, flag, text))
            parsed.append((flag, template))
        for flag in OUTPUT_FLAGS:
            if flag in self.args:
                raise NbsimError("%s: args set %s; name the frames' files in 'outputs' "
                                 "(a template with {frame}) instead" % (where, flag))
        named = {f for f, _t in parsed}
        for flag, off in (("-noisefile", "-nonoise"), ("-pgmfile", "-nopgm")):
            if flag in named and off in self.args:
                raise NbsimError("%s: outputs name %s but args say %s" % (where, flag, off))
        self.notes = []
        # nanoBragg always writes these; the ones not asked for go to the null device
        self.discarded = [f for f in ALWAYS_WRITTEN if f not in named
                          and not (f == "-noisefile" and "-nonoise" in self.args)]
        if self.discarded and outputs is not None:
            self.notes.append("outputs do not name %s: those images are discarded (%s)"
                              % (", ".join(self.discarded),
                                 " ".join("%s %s" % (f, os.devnull) for f in self.discarded)))
        return parsed

    def _output_path(self, rel, where):
        """The path (relative to the job's folder) of an output named ``rel``."""
        if not rel or "\0" in rel:
            raise NbsimError("%s: empty file name" % where)
        norm = os.path.normpath(rel)
        if not self.allow_outside and (_escapes(norm) or norm == "."):
            raise NbsimError("%s: %r is outside the output folder (no absolute paths "
                             "or '..'; or run with --allow-outside)" % (where, rel))
        return os.path.normpath(os.path.join(self.out_dir, norm))

    def frame_outputs(self, frame, absolute=True):
        """[(flag, path)] of frame ``frame``'s image files; absolute, or as written on
        its command line (relative to the job's folder unless outside it)."""
        out = []
        seen = {}
        for flag, template in self.outputs:
            rel = template.render(self.name, frame)
            where = "%s: outputs %s: frame %d" % (self.where, flag, frame)
            path = self._output_path(rel, where)
            if path in seen:
                raise NbsimError("%s: %r is also the file of %s" % (where, rel, seen[path]))
            seen[path] = flag
            full = os.path.normpath(os.path.join(self.folder, path))
            for what, other in (("the job file", self.path), ("the frame's log",
                                                              self.log_path(frame))):
                if full == other:
                    raise NbsimError("%s: %r would overwrite %s" % (where, rel, what))
            if absolute:
                out.append((flag, os.path.normpath(os.path.join(self.folder, path))))
            else:
                # a word starting with '-' would be read as a flag
                out.append((flag, "." + os.sep + path if path.startswith("-") else path))
        return out

    def frame_argv(self, frame):
        """The full nanoBragg command line of frame ``frame``."""
        argv = list(self.args)
        varied = set()
        for vary in self.vary:
            argv += [vary.flag, vary.value(frame)]
            varied.add(vary.flag)
        if "-seed" not in self.args and "-seed" not in varied:
            argv += ["-seed", str(self.seed + frame)]
        for flag, path in self.frame_outputs(frame, absolute=False):
            argv += [flag, path]
        if self.nexus is not None and "-nexusfile" in {f for f, _t in self.outputs}:
            argv += ["-nexus_data", self.nexus.data]
        for flag in self.discarded:
            argv += [flag, os.devnull]
        if "-pgmfile" not in {f for f, _t in self.outputs} and "-nopgm" not in self.args:
            argv.append("-nopgm")      # no unasked-for image.pgm in the job folder
        return argv

    def scan_path(self):
        """The absolute path of the job's NXmx scan file (the "nexus" key)."""
        where = "%s: nexus file" % self.where
        path = self._output_path(self.nexus.file.render(self.name, 0), where)
        full = os.path.normpath(os.path.join(self.folder, path))
        taken = {p: "frame %d's %s" % (frame, flag) for frame in sorted({0, self.frames - 1})
                 for flag, p in self.frame_outputs(frame)}
        taken[self.path] = "the job file"
        if full in taken:
            raise NbsimError("%s: %r is also %s" % (where, self.nexus.file.text, taken[full]))
        return full

    def key(self, frame):
        """The stem of the frame's log, marker and claim names."""
        return "%s_%05d" % (self.name, frame)

    def log_path(self, frame):
        return os.path.join(self.directory, self.key(frame) + ".log")

    def marker_path(self, frame):
        return os.path.join(self.directory, "." + self.key(frame) + ".done")

    def failed_path(self, frame):
        return os.path.join(self.directory, "." + self.key(frame) + ".failed")

    def check_frames(self):
        """Frames whose flags are worth checking before anything runs: the first and
        the last, and the first frame of each distinct value of a listed flag."""
        frames = {0, self.frames - 1}
        for vary in self.vary:
            distinct = vary.distinct_frames()
            if distinct is not None:
                frames.update(distinct)
        return sorted(frames)


def _escapes(path):
    """True if the normalised ``path`` is absolute or climbs out with '..'."""
    return os.path.isabs(path) or path == ".." or path.startswith(".." + os.sep) or \
        bool(os.path.splitdrive(path)[0])


def load_job(path, allow_outside=False):
    """Read and check a job file (``.toml`` as TOML, anything else as JSON)."""
    raw = _read_bounded(path)
    try:
        text = raw.decode("utf-8")
        if str(path).endswith(".toml"):
            spec = _toml().loads(text)
        else:
            spec = json.loads(text)
    except RecursionError:
        raise NbsimError("job file %s: nested too deeply" % path) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise NbsimError("job file %s: %s" % (path, str(exc).splitlines()[0])) from None
    return Job(spec, path, allow_outside=allow_outside)


def _read_bounded(path):
    try:
        # O_NONBLOCK: a FIFO named as the job file must not block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise NbsimError("cannot read job file %s: %s" % (path, exc.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NbsimError("job file %s: not a regular file" % path)
        if st.st_size > MAX_JOB_BYTES:
            raise NbsimError("job file %s: %d bytes; job files are at most %d MB"
                             % (path, st.st_size, MAX_JOB_BYTES >> 20))
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(MAX_JOB_BYTES + 1)
    except OSError as exc:
        raise NbsimError("cannot read job file %s: %s" % (path, exc.strerror)) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_JOB_BYTES:
        raise NbsimError("job file %s: more than %d MB" % (path, MAX_JOB_BYTES >> 20))
    return raw


def _toml():
    try:
        import tomllib            # Python 3.11+
        return tomllib
    except ImportError:
        pass
    try:
        import tomli              # the same parser, for Python 3.9 and 3.10
        return tomli
    except ImportError:
        raise NbsimError("TOML job files need Python 3.11 or the 'tomli' package "
                         "(pip install tomli); or write the job as JSON") from None
