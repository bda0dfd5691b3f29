"""One NXmx (NeXus/HDF5) file per scan: the job file's ``"nexus"`` key.

    "nexus": {"file": "{name}.nxs", "data": "float", "layout": "stacked"}

``data``    the image the file holds: ``float`` (photons, float32), ``int`` (the SMV
            int image, 16 bits; needs a fixed ``-scale`` in ``args``, since otherwise
            every frame picks its own scale) or ``noise`` (the noise image, 16 bits)
``layout``  ``stacked``: one file with every frame in ``/entry/data/data``
            [frames, slow, fast], copied from the frames' own images (``-floatfile``,
            ``-intfile`` or ``-noisefile``, which ``outputs`` must name); ``master``:
            every frame also writes an NXmx file of its own (``-nexusfile`` on its
            command line, named by ``frame_file``, default ``{name}_{frame:05d}.nxs``)
            and the scan file is a master whose ``/entry/data/data`` is an HDF5
            virtual dataset over them (the Eiger layout; keep the files together)
``file``    the scan file's name in the output folder, a template with ``{name}`` only
            (default ``{name}.nxs``, or ``{name}_master.nxs`` for ``master``)

The scan axis. The file describes one detector and beam and a φ rotation: frame f is
exposed from φ₀ + f·osc over osc, where φ₀ and osc are frame 0's ``-phi`` and ``-osc``.
So ``vary`` may step ``-phi`` by exactly ``-osc`` (``{"start": .., "step": osc}``, or a
list that is that series), and may change anything that leaves the detector, beam,
wavelength and images' meaning alone (the noise ``-seed``, ``-fluence``, ``-mosaic``,
``-hkl``, ...). Anything else (a ``-distance`` series, a ``-phi`` step other than
``-osc``, ``-phi`` fixed while ``-osc`` is not 0) is refused before anything renders,
naming the frame and what differs: write one job per geometry instead. A still series
(``-osc 0``, ``-phi`` fixed) is a scan of increment 0. The geometry is checked on the
first and last frames and the first frame of each distinct listed value (up to 256
frames), the φ values of a listed ``-phi`` on every frame.

When the file is written. The frames' own files are the unit of work: each frame
renders, is checked and restarted as before, and writes its ``-nexusfile`` if the
layout is ``master``. The scan file is (re)assembled once every frame is done, by
whichever rank or run finishes last: at the end of its walk each rank counts the done
markers, and one that sees them all takes the scan's claim (waiting while another
process holds it), and rewrites the file unless the scan's own marker
``.{name}.nexus.done`` shows that it is current. That marker records the scan's
settings, a digest of every frame's command line and source-image checksum (from the
frames' markers), and the file's size and SHA-256. So a frame rendered again with other
bytes (a changed job or input), a corrupted or deleted scan file, or ``--force`` lead
to a new scan file, and a frame re-rendered after a corruption of its own files, which
gives the same bytes, leaves it as it is. A stacked file is written from the frames'
images one frame at a time (memory of one frame), each checked against the checksum
its marker recorded while it is read (a frame whose image changed behind its marker is
rendered again first); a master only names its data files, which stay checked by their
frames' markers. Both are written to a temporary name and renamed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import time
from dataclasses import dataclass, fields, replace

from ..errors import NbsimError
from .template import Template

KINDS = {"float": "-floatfile", "int": "-intfile", "noise": "-noisefile"}
LAYOUTS = ("stacked", "master")
SPEC_KEYS = {"file", "data", "layout", "frame_file"}
DEFAULT_FILE = {"stacked": "{name}.nxs", "master": "{name}_master.nxs"}
DEFAULT_FRAME_FILE = "{name}_{frame:05d}.nxs"
VERSION = 1
MAX_MODEL_CHECKS = 256
POLL = 0.2                 # seconds between looks at a scan claim another process holds
# φ values agree when within this many degrees per degree (at least 1°): the job's
# φ words and the frames' -osc go through radians and back
PHI_TOLERANCE = 1e-9


class NexusSpec:
    """The parsed ``"nexus"`` key of job ``job`` (its args and outputs already parsed).

    Adds the per-frame ``-nexusfile`` output of the ``master`` layout to
    ``job.outputs``."""

    def __init__(self, spec, job, where):
        where = "%s: nexus" % where
        if spec is True:
            spec = {}
        if not isinstance(spec, dict):
            raise NbsimError("%s: expected a table such as {\"file\": \"{name}.nxs\", "
                             "\"data\": \"float\", \"layout\": \"stacked\"}" % where)
        unknown = sorted(set(spec) - SPEC_KEYS)
        if unknown:
            raise NbsimError("%s: unknown key %s (known: %s)"
                             % (where, unknown[0], ", ".join(sorted(SPEC_KEYS))))
        self.data = spec.get("data", "float")
        if self.data not in KINDS:
            raise NbsimError("%s: data must be one of %s (got %r)"
                             % (where, ", ".join(KINDS), self.data))
        self.layout = spec.get("layout", "stacked")
        if self.layout not in LAYOUTS:
            raise NbsimError("%s: layout must be stacked or master (got %r)"
                             % (where, self.layout))
        self.file = Template(spec.get("file", DEFAULT_FILE[self.layout]), where + ": file")
        if "frame" in self.file.fields:
            raise NbsimError("%s: file %r: one file per scan has no {frame} field"
                             % (where, self.file.text))
        args = job.args
        if "-nexus_data" in args:
            raise NbsimError("%s: args set -nexus_data; say \"data\" in \"nexus\" instead"
                             % where)
        if self.data == "noise" and "-nonoise" in args:
            raise NbsimError("%s: data 'noise' needs the noise image, but args say -nonoise"
                             % where)
        if self.data == "int":
            if "-scale" not in args:
                raise NbsimError("%s: data 'int': without -scale in args every frame scales "
                                 "its int image by its own brightest pixel, and one scan "
                                 "file has one scale; give -scale, or use data float or "
                                 "noise" % where)
        named = {f for f, _t in job.outputs}
        if self.layout == "stacked":
            if "frame_file" in spec:
                raise NbsimError("%s: frame_file is for layout master" % where)
            source = KINDS[self.data]
            if source not in named:
                raise NbsimError("%s: layout stacked copies the frames' %s images into the "
                                 "scan file; name %s in outputs" % (where, source, source))
            self.source_flag = source
        else:
            if "-nexusfile" in named:
                raise NbsimError("%s: with layout master, nexus's frame_file names the "
                                 "frames' NXmx files; take -nexusfile out of outputs" % where)
            frame_file = Template(spec.get("frame_file", DEFAULT_FRAME_FILE),
                                  where + ": frame_file")
            if "frame" not in frame_file.fields and job.frames > 1:
                raise NbsimError("%s: frame_file %r has no {frame} field, so every frame "
                                 "would overwrite the same file" % (where, frame_file.text))
            job.outputs.append(("-nexusfile", frame_file))
            self.source_flag = "-nexusfile"

    def describe(self):
        return "%s %s image" % (self.layout, self.data)


# ---------------------------------------------------------------------------
# the scan: checked before anything renders
# ---------------------------------------------------------------------------

@dataclass
class ScanPlan:
    """What the scan file says besides the data."""
    model: object          # nbsim.experiment.ExperimentModel of frame 0
    scan: object           # nbsim.experiment.Scan
    info: object           # nbsim.io.nexus.DataInfo
    shape: tuple           # (slow, fast)
    dtype: str


def _plan_of(job, frame, hkl_cache):
    from .. import cli
    from ..plan import make_plan
    try:
        cfg, _opts = cli.command_config(job.frame_argv(frame), lambda _m: None)
        return make_plan(cfg, hkl_cache=hkl_cache)
    except NbsimError as exc:
        raise NbsimError("frame %d: %s" % (frame, exc)) from None


def _phi_vary(job):
    for vary in job.vary:
        if vary.flag == "-phi":
            return vary
    return None


def _close(a, b):
    return abs(a - b) <= PHI_TOLERANCE * max(1.0, abs(a), abs(b))


def plan_scan(job, hkl_cache=None):
    """Check that the job's frames form one φ scan of one geometry (see the module
    docstring) and return its :class:`ScanPlan`. Builds the plans of a few frames."""
    from ..experiment import Scan, model_from_plan
    from ..io import nexus
    where = "%s: nexus" % job.where
    plan0 = _plan_of(job, 0, hkl_cache)
    model0 = model_from_plan(plan0)
    phi0, osc = math.degrees(plan0.phi0), math.degrees(plan0.osc)
    scan = Scan(start=phi0, increment=osc, frames=job.frames)

    def expected(frame):
        return phi0 + frame * osc

    def wrong_phi(frame, phi):
        return NbsimError(
            "%s: frame %d is at -phi %.10g, but a scan from -phi %.10g in steps of -osc "
            "%.10g puts it at %.10g; the frames must step -phi by -osc (a still series: "
            "-osc 0 and one -phi)" % (where, frame, phi, phi0, osc, expected(frame)))

    vary = _phi_vary(job)
    if vary is None and job.frames > 1 and osc != 0.0:
        raise NbsimError("%s: every frame is at -phi %.10g with -osc %.10g, so they would "
                         "all cover the same range; vary -phi in steps of -osc (or give "
                         "-osc 0 for a still series)" % (where, phi0, osc))
    if vary is not None and vary.values is not None:
        for frame, word in enumerate(vary.values):      # cheap: every listed value
            try:
                phi = float(word)
            except ValueError:
                raise NbsimError("%s: frame %d: -phi %r is not a number"
                                 % (where, frame, word)) from None
            if not _close(phi, expected(frame)):
                raise wrong_phi(frame, phi)
    others = [v for v in job.vary if v.flag != "-phi"]
    frames = {0, job.frames - 1}
    for v in others:
        distinct = v.distinct_frames()
        if distinct is not None:
            frames.update(distinct)
    frames = sorted(frames)[:MAX_MODEL_CHECKS - 1] + [job.frames - 1]
    scale0 = plan0.config.output.intfile_scale
    base = replace(model0, phi0=0.0)
    for frame in sorted(set(frames) - {0}):
        plan = _plan_of(job, frame, hkl_cache)
        model = model_from_plan(plan)
        phi = math.degrees(plan.phi0)
        if not _close(phi, expected(frame)):
            raise wrong_phi(frame, phi)
        other = replace(model, phi0=0.0)
        differ = [f.name for f in fields(base) if getattr(base, f.name) != getattr(other, f.name)]
        if job.nexus.data == "int" and plan.config.output.intfile_scale != scale0:
            differ.append("-scale")
        if differ:
            varied = ", ".join(v.flag for v in others) or "none"
            raise NbsimError("%s: frame %d differs from frame 0 in %s (varied: %s); a scan "
                             "file holds one detector, beam and image scale, and only -phi "
                             "may change from frame to frame: write one job per geometry"
                             % (where, frame, ", ".join(differ), varied))
    info = nexus.data_info(job.nexus.data, model0.adc_offset, scale0 if scale0 > 0 else 1.0)
    dtype = "float32" if job.nexus.data == "float" else "uint16"
    return ScanPlan(model0, scan, info, (plan0.spixels, plan0.fpixels), dtype)


# ---------------------------------------------------------------------------
# is the scan file current?
# ---------------------------------------------------------------------------

def claim_key(job):
    return job.name + ".nexus"


def marker_path(job):
    return os.path.join(job.directory, "." + job.name + ".nexus.done")


def _source_rel(job, frame):
    for flag, rel in job.frame_outputs(frame, absolute=False):
        if flag == job.nexus.source_flag:
            return rel
    raise NbsimError("frame %d has no %s" % (frame, job.nexus.source_flag))


def frames_digest(job):
    """(digest of every frame's command line and source-image checksum, None) when
    every frame has a done marker for its current command line; else (None, why)."""
    from . import markers
    h = hashlib.sha256()
    for frame in range(job.frames):
        mark = markers.read_marker(job.marker_path(frame))
        argv = job.frame_argv(frame)
        if mark is None:
            return None, "frame %d is not done" % frame
        if mark.get("argv") != argv:
            return None, "frame %d was rendered with another command line" % frame
        outputs = mark.get("outputs")
        rel = _source_rel(job, frame)
        item = outputs.get(rel) if isinstance(outputs, dict) else None
        if not isinstance(item, dict) or not isinstance(item.get("sha256"), str):
            return None, "frame %d's marker does not record %s" % (frame, rel)
        h.update(json.dumps([frame, argv, rel, item["sha256"]]).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest(), None


def _settings(job):
    return {"version": VERSION, "layout": job.nexus.layout, "data": job.nexus.data,
            "file": os.path.relpath(job.scan_path(), job.folder), "frames": job.frames}


def why_not_current(job, digest, started=None, digests=None):
    """'' if the scan file is current for frames of ``digest``, else why not. A marker
    written since ``started`` (this run) is trusted without reading the file again."""
    from . import markers
    mark = markers.read_marker(marker_path(job))
    if mark is None:
        return "no scan marker"
    if any(mark.get(k) != v for k, v in _settings(job).items()):
        return "the nexus settings changed"
    if mark.get("frames_digest") != digest:
        return "frames changed"
    path = job.scan_path()
    t = mark.get("time")
    if started is not None and isinstance(t, (int, float)) and t >= started and \
            os.path.exists(path):
        return ""
    try:
        if os.path.getsize(path) != mark.get("size"):
            return "the scan file changed size"
        if markers.file_sha256(path) != mark.get("sha256"):
            return "the scan file changed"
    except OSError:
        return "the scan file is missing"
    return ""


# ---------------------------------------------------------------------------
# writing it
# ---------------------------------------------------------------------------

class SourceChanged(NbsimError):
    """A frame's image no longer has the checksum its marker recorded."""

    def __init__(self, frame, path):
        super().__init__("frame %d's %s changed since it was rendered" % (frame, path))
        self.frame = frame


def _read_source(job, frame, scanplan):
    """Frame ``frame``'s image for a stacked file, checked against its marker."""
    from ..io import raw, smv
    from . import markers
    rel = _source_rel(job, frame)
    path = dict(job.frame_outputs(frame))[job.nexus.source_flag]
    mark = markers.read_marker(job.marker_path(frame)) or {}
    want = ((mark.get("outputs") or {}).get(rel) or {}).get("sha256")
    try:
        have = markers.file_sha256(path)
    except OSError:
        have = None
    if have is None or have != want:
        raise SourceChanged(frame, rel)
    if job.nexus.data == "float":
        return raw.read_float_image(path, scanplan.shape)
    image = smv.read_smv(path).data
    if image.shape != tuple(scanplan.shape):
        raise NbsimError("frame %d's %s is %s pixels, not %s"
                         % (frame, rel, image.shape, tuple(scanplan.shape)))
    return image


def write_scan(job, scanplan):
    """Write the scan file (stacked or master) from the frames' files."""
    from ..io import nexus
    path = job.scan_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if job.nexus.layout == "stacked":
        images = (_read_source(job, f, scanplan) for f in range(job.frames))
        nexus.write_nxmx_frames(path, scanplan.model, images, scanplan.scan, scanplan.shape,
                                scanplan.dtype, scanplan.info)
    else:
        # names relative to the master's folder: HDF5 looks for them beside it
        here = os.path.dirname(path)
        names = [os.path.relpath(dict(job.frame_outputs(f))["-nexusfile"], here)
                 for f in range(job.frames)]
        nexus.write_nxmx_master(path, scanplan.model, names, scanplan.shape, scanplan.dtype,
                                scan=scanplan.scan, info=scanplan.info)


def write_marker(job, digest):
    from ..io.atomic import atomic_write_bytes
    from . import markers
    path = job.scan_path()
    mark = dict(_settings(job), frames_digest=digest, size=os.path.getsize(path),
                sha256=markers.file_sha256(path), time=time.time(),
                host=socket.gethostname(), pid=os.getpid())
    atomic_write_bytes(marker_path(job), json.dumps(mark, indent=1).encode("utf-8"))


def forget(job):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker_path(job))


def take_waiting(claims, key):
    """The claim on ``key``, waiting while a live process holds it (e.g. the scan's:
    its holder is writing the file, which this process will then find current)."""
    while True:
        claim = claims.take(key)
        if claim is not None:
            return claim
        time.sleep(POLL)


def finish(job, claims, started, force=False, hkl_cache=None, rerender=None):
    """At the end of a rank's walk: write the scan file if every frame is done and it
    is not current. Returns (exit status, message).

    ``rerender(frame)``: renders a frame whose image turned out changed since its
    marker (a corruption the rank that checks that frame has not reached yet) and
    returns its exit status; without it such a frame is forgotten for the next run."""
    from . import markers
    done = markers.count_done(job)
    rel = os.path.relpath(job.scan_path(), job.folder)
    if done < job.frames:
        return 0, "scan file %s: waiting for %d of %d frames" % (rel, job.frames - done,
                                                                 job.frames)
    claim = take_waiting(claims, claim_key(job))
    try:
        digest, why = frames_digest(job)
        if digest is None:
            return 0, "scan file %s: not written yet (%s)" % (rel, why)
        mark = markers.read_marker(marker_path(job))
        ours = force and isinstance(mark, dict) and isinstance(mark.get("time"), (int, float)) \
            and mark["time"] >= started
        if (not force or ours) and why_not_current(job, digest, started) == "":
            return 0, "scan file %s: up to date (%d frames, %s)" % (
                rel, job.frames, job.nexus.describe())
        scanplan = plan_scan(job, hkl_cache)
        forget(job)
        t0 = time.monotonic()
        redone = []
        while True:
            try:
                write_scan(job, scanplan)
                break
            except SourceChanged as exc:
                if rerender is None or exc.frame in redone:
                    # the next run renders that frame again, then writes the scan file
                    markers.forget(job, exc.frame)
                    return 1, "scan file %s: not written: %s (run the job again)" % (rel, exc)
                redone.append(exc.frame)
                status = rerender(exc.frame)
                digest, why = frames_digest(job)
                if status != 0 or digest is None:
                    return 1, "scan file %s: not written: %s, and rendering it again %s" % (
                        rel, exc, "failed" if status else "left %s" % why)
        write_marker(job, digest)
        s = scanplan.scan
        return 0, ("scan file %s: wrote %d frames (%s), phi from %.10g deg in steps of "
                   "%.10g deg, in %.2f s%s" % (
                       rel, s.frames, job.nexus.describe(), s.start, s.increment,
                       time.monotonic() - t0, "; frames %s had changed and were rendered "
                       "again" % ", ".join(map(str, redone)) if redone else ""))
    finally:
        claims.release(claim)
