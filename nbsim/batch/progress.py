"""Progress of a batch: one line per finished frame, with elapsed time and an ETA,
and a closing summary.

Lines go to standard error. Where it is a terminal, the job has one rank and tqdm is
installed, a tqdm bar takes their place. The ETA comes from the frames this rank's
walk has passed (rendered here, or found taken by other ranks): under the dynamic
schedule every rank walks the whole job, so it is an estimate for the job.
"""
from __future__ import annotations

import sys
import time


def hms(seconds):
    seconds = int(round(max(0.0, seconds)))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


class Progress:
    def __init__(self, todo, rank=0, ranks=1, stream=None, bar=None, quiet=False):
        self.todo = todo
        self.quiet = quiet
        self.rank, self.ranks = rank, ranks
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.passed = 0
        self.prefix = "nbsim-batch: " + ("[rank %d] " % rank if ranks > 1 else "")
        self.bar = None
        if bar is None:
            bar = ranks == 1 and _isatty(self.stream)
        if bar and todo and not quiet:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=todo, unit="frame", file=self.stream,
                                desc="nbsim-batch", dynamic_ncols=True)

    def passed_by(self, n=1):
        """The walk passed ``n`` frames that others had taken."""
        self.passed += n
        if self.bar is not None:
            self.bar.update(n)

    def frame(self, frame, status, seconds, why="", label=None, count=True):
        """A unit of the walk ended: frame ``frame`` (or what ``label`` says, e.g. a
        row part) with exit ``status``. ``count``: whether it is one of the units
        counted in ``todo`` (a frame assembled from parts is not)."""
        self.passed += bool(count)
        elapsed = time.monotonic() - self.start
        left = max(0, self.todo - self.passed)
        eta = elapsed / self.passed * left if self.passed else 0.0
        label = label or "frame %d" % frame
        what = ("%s done in %.2f s" % (label, seconds) if status == 0 else
                "%s FAILED (exit %d) after %.2f s%s" % (label, status, seconds, why))
        if self.bar is not None:
            if count:
                self.bar.update(1)
            if status != 0:
                self.bar.write(self.prefix + what, file=self.stream)
            return
        if self.quiet:
            return
        print("%s%s; %d/%d, elapsed %s, ETA %s" % (self.prefix, what, min(self.passed, self.todo),
                                                  self.todo, hms(elapsed), hms(eta)),
              file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def elapsed(self):
        return time.monotonic() - self.start


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
