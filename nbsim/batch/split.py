"""One frame split into row parts rendered by different ranks: ``"split_rows": N``.

Each frame of such a job is N units of work, part p holding the slow rows
[p·S/N, (p+1)·S/N) of the S rows (integer division). A part is claimed like a frame
(:mod:`.claims`), rendered with :func:`nbsim.rows.RowRenderer.render`, and saved
atomically in the output folder as ``.{key}.part{p}of{N}-{id}.npz``: its float rows,
each row's solid-angle sum, the interpolation trigger it was rendered with, the engine
and a checksum. ``{id}`` is a digest of the frame's command line and the checksums of
its input files, so parts of an older version of the job are never mixed in.

Whoever finishes the last part of a frame (any rank, any run) takes the frame's claim
and assembles it: the parts are checked, put together with :func:`nbsim.rows.assemble`
(the solid-angle sum added row by row from row 0, as one render adds it) and handed
to the frame's own ``nanoBragg`` command line in place of its pixel loop (``cli.run``'s
``simulate``), which derives the statistics, the int, noise and PGM images and every
other output and writes them, its log and its done marker exactly as for a frame
rendered whole. Then the part files go. So the frame's files do not depend on the
number of parts, on who rendered which, or on restarts.

The two things the reference carries from pixel to pixel are agreed between parts:

* -c_parity's first pixel (the one whose φ loop sees the unrotated cell) is a
  function of the plan; every part finds the same one.
* Interpolation that switches itself off at the frame's first out-of-range
  interpolation: part p needs the first such place in rows before its end. When the
  plan interpolates, each part probes its own rows (:meth:`RowRenderer.probe`) and
  publishes the result (``.{key}.probe{p}of{N}-{id}.json``) before rendering, then
  reads the probes of the parts before it in order until it meets one that found the
  place. A probe not yet published is waited for while its part's claim is held (its
  holder publishes before it renders) and computed here otherwise. Waits go only to
  lower parts, so they end.

A part killed mid-render leaves no file (its claim is taken over, see
:mod:`.claims`); an assembler killed mid-way leaves the parts, which the next run
assembles.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import zipfile

from ..errors import NbsimError

VERSION = 1
POLL = 0.2                  # seconds between looks for a probe another process computes
_CHECKSUM_FIELDS = ("image", "omega_rows", "rows", "trigger", "trigger_hkl")


def part_rows(spixels, part, parts):
    """Rows [start, stop) of part ``part`` of ``parts``."""
    return part * spixels // parts, (part + 1) * spixels // parts


def _quiet(_msg):
    pass


class FrameParts:
    """The row parts of frame ``frame`` of ``job``: names, identity and what exists."""

    def __init__(self, job, frame, digests):
        from .. import cli
        from . import markers
        self.job, self.frame, self.parts = job, frame, job.split_rows
        self.key = job.key(frame)
        self.argv = job.frame_argv(frame)
        try:
            cfg, opts = cli.command_config(self.argv, _quiet)
            if cfg is None:
                raise NbsimError("-h/-version in args: the frame would render nothing")
            self.inputs = markers.input_digests(markers.frame_inputs(cfg, self.argv), digests)
        except NbsimError as exc:
            raise NbsimError("frame %d: %s" % (frame, exc)) from None
        self.cfg, self.opts = cfg, opts
        ident = json.dumps([VERSION, self.argv, self.inputs, self.parts])
        self.ident = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16]

    # -- names -----------------------------------------------------------------------

    def _stem(self, what, part):
        return "%s.%s%03dof%03d" % (self.key, what, part, self.parts)

    def claim_key(self, part):
        return self._stem("part", part)

    def part_path(self, part):
        return os.path.join(self.job.directory,
                            ".%s-%s.npz" % (self._stem("part", part), self.ident))

    def probe_path(self, part):
        return os.path.join(self.job.directory,
                            ".%s-%s.json" % (self._stem("probe", part), self.ident))

    def present(self, part):
        return os.path.exists(self.part_path(part))

    def all_present(self):
        return all(self.present(p) for p in range(self.parts))

    def remove_files(self):
        """Remove every part and probe file of this frame (of any version)."""
        for name in leftovers(self.job, self.frame):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.job.directory, name))

    def clear_claims(self, claims):
        """Remove part claims left by ended processes (one killed between saving its
        part and giving up the claim); live holders keep theirs."""
        for part in range(self.parts):
            if os.path.exists(claims.path(self.claim_key(part))):
                claim = claims.take(self.claim_key(part))
                if claim is not None:
                    claims.release(claim)

    # -- probes ----------------------------------------------------------------------

    def read_probe(self, part):
        """(True, Trigger or None) if part's probe is published, else (False, None)."""
        from ..rows import Trigger
        try:
            with open(self.probe_path(part), "rb") as fh:
                rec = json.loads(fh.read(1 << 16).decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return False, None
        if not isinstance(rec, dict) or rec.get("ident") != self.ident:
            return False, None
        t = rec.get("trigger")
        if t is None:
            return True, None
        try:
            return True, Trigger(int(t[0]), int(t[1]), tuple(float(x) for x in t[2]))
        except (TypeError, ValueError, IndexError):
            return False, None

    def write_probe(self, part, trigger):
        from ..io.atomic import atomic_write_bytes
        rec = {"version": VERSION, "ident": self.ident, "part": part,
               "trigger": None if trigger is None else
               [trigger.pixel, trigger.ordinal, list(trigger.hkl)]}
        atomic_write_bytes(self.probe_path(part), json.dumps(rec).encode("utf-8"))

    def _probe_of(self, part, renderer, rows, claims):
        """Part ``part``'s probe: published, or computed here if nobody is at it."""
        while True:
            found, trigger = self.read_probe(part)
            if found:
                return trigger
            claim = claims.take(self.claim_key(part))
            if claim is not None:
                try:
                    found, trigger = self.read_probe(part)
                    if not found:
                        trigger = renderer.probe(*rows(part))
                        self.write_probe(part, trigger)
                    return trigger
                finally:
                    claims.release(claim)
            time.sleep(POLL)      # its holder publishes the probe before rendering

    def trigger_for(self, part, renderer, claims):
        """The frame's interpolation Trigger if it lies before part ``part``'s end."""
        plan = renderer.plan
        if not plan.interpolate:
            return None

        def rows(p):
            return part_rows(plan.spixels, p, self.parts)

        # the probes already published, in order: an earlier place ends the search
        for q in range(part):
            found, trigger = self.read_probe(q)
            if not found:
                break
            if trigger is not None:
                return trigger
        found, own = self.read_probe(part)
        if not found:
            own = renderer.probe(*rows(part))
            self.write_probe(part, own)
        for q in range(part):
            trigger = self._probe_of(q, renderer, rows, claims)
            if trigger is not None:
                return trigger
        return own

    # -- parts -----------------------------------------------------------------------

    def renderer(self, hkl_cache=None, warn=_quiet):
        from ..plan import make_plan
        from ..rows import RowRenderer
        try:
            plan = make_plan(self.cfg, hkl_cache=hkl_cache)
        except NbsimError as exc:
            raise NbsimError("frame %d: %s" % (self.frame, exc)) from None
        return RowRenderer(plan, engine=self.opts["engine"], threads=self.opts["threads"],
                           warn=warn, trace=self.cfg.output.printout)

    def render_part(self, part, renderer, claims):
        """Render part ``part`` and save it (the caller holds its claim)."""
        start, stop = part_rows(renderer.plan.spixels, part, self.parts)
        trigger = self.trigger_for(part, renderer, claims)
        block = renderer.render(start, stop, trigger)
        self.save(part, block, trigger, renderer.engine)

    def save(self, part, block, trigger, engine):
        import numpy as np      # (not at import: the command sets up BLAS first)
        from ..io.atomic import atomic_path
        arrays = {"image": np.ascontiguousarray(block.image, dtype=np.float32),
                  "omega_rows": np.ascontiguousarray(block.omega_rows, dtype=np.float64),
                  "rows": np.array([block.row_start, block.row_stop], dtype=np.int64),
                  "trigger": np.array([-1, -1] if trigger is None else
                                      [trigger.pixel, trigger.ordinal], dtype=np.int64),
                  "trigger_hkl": np.array(trigger.hkl if trigger is not None else [0.0] * 6,
                                          dtype=np.float64)}
        if block.trace is not None:
            arrays["trace"] = np.ascontiguousarray(block.trace, dtype=np.float64)
        arrays["engine"] = np.array(engine)
        arrays["checksum"] = np.array(_checksum(arrays))
        with atomic_path(self.part_path(part)) as scratch:
            with open(scratch, "wb") as fh:
                np.savez(fh, **arrays)

    def load(self, part, plan):
        """(RowBlock, Trigger or None, engine) of a saved part, or None if the file is
        missing, damaged or not this part's."""
        import numpy as np
        from ..rows import RowBlock, Trigger
        try:
            with np.load(self.part_path(part), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None
        try:
            if str(arrays["checksum"]) != _checksum(arrays):
                return None
            start, stop = (int(x) for x in arrays["rows"])
            if (start, stop) != part_rows(plan.spixels, part, self.parts) or \
                    arrays["image"].shape != (stop - start, plan.fpixels) or \
                    arrays["omega_rows"].shape != (stop - start,):
                return None
            pixel, ordinal = (int(x) for x in arrays["trigger"])
            trigger = None if pixel < 0 else Trigger(
                pixel, ordinal, tuple(float(x) for x in arrays["trigger_hkl"]))
            trace = arrays.get("trace")
            block = RowBlock(start, stop, arrays["image"], arrays["omega_rows"], trace)
            return block, trigger, str(arrays["engine"])
        except (KeyError, ValueError, TypeError):
            return None

    def simulate(self, claims, hkl_cache=None):
        """A stand-in for :func:`nbsim.api.simulate` that assembles the frame from its
        parts (see :func:`nbsim.cli.run`'s ``simulate``). Raises :class:`PartsMissing`
        when a part is missing or damaged and another process is rendering it."""
        parts = self

        def simulate(config, engine="auto", threads=None, plan=None, warn=None,
                     progress=None, echo=None):
            from .. import api
            from ..progress import LoopLog
            from ..rows import assemble, first_trigger

            def say(text):
                if echo is not None and text:
                    echo.write(text)
                    echo.flush()

            say("".join(line + "\n" for line in plan.log))
            # the engine choice and its warnings, where a whole render makes them
            chosen = api.choose_engine(plan, engine, warn=warn)
            blocks, used, engines = [], [], set()
            renderer = None
            for p in range(parts.parts):
                loaded = parts.load(p, plan)
                if loaded is None:
                    # damaged or gone: render it here if nobody else is
                    claim = claims.take(parts.claim_key(p))
                    if claim is None:
                        raise PartsMissing(parts.frame, p)
                    try:
                        if renderer is None:
                            renderer = parts.renderer(hkl_cache, warn=_quiet)
                        parts.render_part(p, renderer, claims)
                    finally:
                        claims.release(claim)
                    loaded = parts.load(p, plan)
                    if loaded is None:
                        raise NbsimError("row part %d of frame %d cannot be read back"
                                         % (p, parts.frame))
                block, trigger, name = loaded
                blocks.append(block)
                used.append(trigger)
                engines.add(name)
            frame_trigger = first_trigger(used)
            for p, (block, trigger) in enumerate(zip(blocks, used)):
                want = frame_trigger if frame_trigger is not None and \
                    frame_trigger.pixel < block.row_stop * plan.fpixels else None
                if trigger != want:
                    parts.remove_files()
                    raise NbsimError("row part %d of frame %d was rendered with another "
                                     "interpolation cut-off than the frame's; its parts "
                                     "are removed (run the job again)" % (p, parts.frame))
            # (-printout's parts and choice both name the engine that traces)
            name = engines.pop() if len(engines) == 1 else chosen
            rendered = assemble(plan, blocks, frame_trigger, name)
            loop = LoopLog(plan, write=say)
            loop.advance(plan.spixels, frame_trigger, rendered.trace, 0)
            loop.finish()
            return api.finish(plan, rendered, list(plan.log) + loop.lines(), echo=echo)

        return simulate


class PartsMissing(NbsimError):
    """A part vanished before assembly and another process is rendering it now."""

    def __init__(self, frame, part):
        super().__init__("frame %d: row part %d is being rendered again elsewhere"
                         % (frame, part))
        self.part = part


def _checksum(arrays):
    import numpy as np
    h = hashlib.sha256()
    for name in _CHECKSUM_FIELDS + (("trace",) if "trace" in arrays else ()):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    h.update(str(arrays["engine"]).encode())
    return h.hexdigest()


def _is_part_file(name):
    return name.startswith(".") and (".part" in name and name.endswith(".npz") or
                                     ".probe" in name and name.endswith(".json"))


def leftovers_by_key(listing):
    """{frame key: [names of its part and probe files]} of a folder listing."""
    found = {}
    for name in listing:
        if _is_part_file(name):
            cut = name.rfind(".part") if name.endswith(".npz") else name.rfind(".probe")
            found.setdefault(name[1:cut], []).append(name)
    return found


def leftovers(job, frame, listing=None):
    """Names of part and probe files of frame ``frame`` in the output folder."""
    if listing is None:
        try:
            listing = os.listdir(job.directory)
        except OSError:
            return []
    return leftovers_by_key(listing).get(job.key(frame), [])
