"""What a finished frame leaves behind, and how a rerun knows it is still good.

After a frame's files are in place, a marker ``.{name}_{frame}.done`` (JSON) records
its command line, the SHA-256 of every input file it read (``-hkl``, ``-mat``,
``-sourcefile``, ``-stol``, ``-img``, ``-mask``, and ``Fdump.bin`` when no ``-hkl``
is given; an absent Fdump is recorded as absent) and the size and SHA-256 of every
output. A frame counts as done only if its marker names the same command line, every
input still hashes to the recorded digest and every output to its own, so a
same-size corruption, an edited ``-hkl`` file or a new ``Fdump.bin`` all lead to a
new render. A frame that failed leaves ``.{name}_{frame}.failed`` instead (its
exit status; the log says why), so that the other ranks of the same run do not try
it again; the next run does.

Paths are recorded as the command line writes them (relative to the job's folder),
so a dataset moved or copied as a whole keeps its markers valid.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time

from ..errors import NbsimError

VERSION = 2
MAX_MARKER_BYTES = 1 << 20
_CHUNK = 1 << 20


class Digests:
    """SHA-256 of files, remembered while a file's identity (device, inode, size,
    modification and change times) stays the same: a 100 MB ``-hkl`` shared by every
    frame is read once per process, and again only when it changes."""

    def __init__(self):
        self._known = {}

    def of(self, path):
        """Hex digest of ``path``; None if there is no such file. Raises OSError for
        a file that exists but cannot be read."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        ident = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size,
                 st.st_mtime_ns, st.st_ctime_ns)
        if ident not in self._known:
            self._known[ident] = file_sha256(path)
        return self._known[ident]


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def frame_inputs(cfg, argv):
    """[(flag, path)] of the files a frame with config ``cfg`` and command line
    ``argv`` reads (paths as written, relative to the job's folder)."""
    c = cfg.crystal
    found = [("-hkl", c.hkl_file), ("-mat", c.mat_file), ("-sourcefile", cfg.beam.source_file),
             ("-stol", c.stol_file)]
    # -img and -mask as nanoBragg finds them: the word after any flag containing them
    img = mask = None
    for j, w in enumerate(argv[:-1]):
        if w.startswith("-"):
            if "-img" in w:
                img = argv[j + 1]
            if "-mask" in w:
                mask = argv[j + 1]
    found += [("-img", img), ("-mask", mask)]
    if c.hkl_file is None:
        found.append(("Fdump", c.dump_file))     # read when present
    return [(flag, path) for flag, path in found if path is not None]


def input_digests(inputs, digests):
    """[[flag, path, digest or None]]; a missing required input is an error."""
    out = []
    for flag, path in inputs:
        try:
            d = digests.of(path)
        except OSError as exc:
            raise NbsimError("%s: cannot read '%s' (%s)" % (flag, path, exc.strerror)) from None
        if d is None and flag != "Fdump":
            raise NbsimError("%s: cannot read '%s' (no such file)" % (flag, path))
        out.append([flag, path, d])
    return out


def output_record(job, frame):
    """{path as on the command line: {"size", "sha256"}} of a frame's outputs."""
    record = {}
    for (_flag, rel), (_f, path) in zip(job.frame_outputs(frame, absolute=False),
                                        job.frame_outputs(frame)):
        record[rel] = {"size": os.path.getsize(path), "sha256": file_sha256(path)}
    return record


def write_done(job, frame, argv, inputs, seconds):
    from ..io.atomic import atomic_write_bytes
    mark = {"version": VERSION, "frame": frame, "argv": argv, "inputs": inputs,
            "outputs": output_record(job, frame), "seconds": round(seconds, 3),
            "time": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
    atomic_write_bytes(job.marker_path(frame), json.dumps(mark, indent=1).encode("utf-8"))


def write_failed(job, frame, argv, status):
    from ..io.atomic import atomic_write_bytes
    mark = {"version": VERSION, "frame": frame, "argv": argv, "exit": status,
            "time": time.time(), "host": socket.gethostname(), "pid": os.getpid()}
    atomic_write_bytes(job.failed_path(frame), json.dumps(mark, indent=1).encode("utf-8"))


def read_marker(path):
    """The marker's JSON object, or None if there is none or it is not one."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_MARKER_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_MARKER_BYTES:
        return None
    try:
        mark = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return mark if isinstance(mark, dict) else None


def why_not_done(job, frame, digests, mark=None):
    """'' if frame ``frame`` is done and intact, else why not (for logs and tests)."""
    if mark is None:
        mark = read_marker(job.marker_path(frame))
    if mark is None:
        return "no marker"
    if mark.get("version") != VERSION:
        return "marker of another nbsim version"
    if mark.get("argv") != job.frame_argv(frame):
        return "command line changed"
    inputs = mark.get("inputs")
    if not isinstance(inputs, list):
        return "marker without inputs"
    for item in inputs:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[1], str)):
            return "malformed marker"
        flag, path, want = item
        try:
            have = digests.of(os.path.join(job.folder, path))     # as the frame runs there
        except OSError:
            have = "unreadable"
        if have != want:
            return "input %s %s changed" % (flag, path)
    outputs = mark.get("outputs")
    wanted = dict(job.frame_outputs(frame, absolute=False))
    if not isinstance(outputs, dict) or set(outputs) != set(wanted.values()):
        return "marker names other outputs"
    for rel, path in zip(wanted.values(), (p for _f, p in job.frame_outputs(frame))):
        want = outputs[rel]
        try:
            if not isinstance(want, dict) or os.path.getsize(path) != want.get("size"):
                return "output %s changed size" % rel
            if file_sha256(path) != want.get("sha256"):
                return "output %s changed" % rel
        except OSError:
            return "output %s missing" % rel
    return ""


def forget(job, frame):
    """Remove the frame's done and failed markers (before it is rendered again)."""
    for path in (job.marker_path(frame), job.failed_path(frame)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def finished(job, frame):
    """True if the frame has a done or failed marker (cheap: two stats)."""
    return os.path.exists(job.marker_path(frame)) or os.path.exists(job.failed_path(frame))


def count_done(job):
    """How many frames of the job have a done marker (one listing of the folder)."""
    prefix, suffix = "." + job.name + "_", ".done"
    try:
        with os.scandir(job.directory) as it:
            names = [e.name for e in it if e.name.startswith(prefix) and e.name.endswith(suffix)]
    except OSError:
        return 0
    count = 0
    for n in names:
        number = n[len(prefix):-len(suffix)]
        if number.isdigit() and int(number) < job.frames and n == "." + job.key(int(number)) + suffix:
            count += 1
    return count
