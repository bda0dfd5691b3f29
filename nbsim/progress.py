"""What a render says while it runs, and how it is cut into row blocks.

* :class:`LoopLog` produces the lines the reference prints during its pixel loop (the
  "NN% done" meter, or -printout's per-pixel values, and the interpolation warning),
  block by block as rows are rendered, and can write them out live. Whatever the
  blocks, the text is the same as when the whole frame is rendered at once.
* :class:`BlockSizer` chooses the rows of the next block so that a block takes about
  :data:`TARGET_SECONDS` (the images do not depend on it): short enough for live
  progress and a prompt Ctrl-C, long enough that the calls cost nothing noticeable.
"""
from __future__ import annotations

import os
import time
from typing import Callable, List, Optional

import numpy as np

from .errors import NbsimError

TARGET_SECONDS = 0.4       # aimed-at duration of a block
FIRST_SECONDS = 0.1        # the first block's, before any block has been timed
GROWTH = 4.0               # a block has at most this many times the work of the previous
# a cautious first guess of the speed, in inner evaluations per second per thread (the
# engines do 1-2e7 on this project's machine; -fast more): the first block is then short
GUESS_RATE = 1.0e7
PIXEL_COST = 20.0          # a rendered pixel's own cost, in evaluations (geometry, output)
BLOCK_ROWS_ENV = "NBSIM_BLOCK_ROWS"   # a fixed block size (rows), for tests and debugging


# ---------------------------------------------------------------------------
# which pixels render, and where the reference's progress lines fall

def _roi_clipped(plan):
    xmin, xmax, ymin, ymax = plan.roi
    return (max(xmin, 0), min(xmax, plan.fpixels - 1), max(ymin, 0), min(ymax, plan.spixels - 1))


def rendered_per_row(plan) -> np.ndarray:
    """How many pixels of each slow row the reference renders (inside the ROI and the mask)."""
    x0, x1, y0, y1 = _roi_clipped(plan)
    counts = np.zeros(plan.spixels, dtype=np.int64)
    if x1 < x0 or y1 < y0:
        return counts
    if plan.mask is None:
        counts[y0:y1 + 1] = x1 - x0 + 1
    else:
        counts[y0:y1 + 1] = np.count_nonzero(plan.mask[y0:y1 + 1, x0:x1 + 1], axis=1)
    return counts


def _nth_rendered(plan, row, n):
    """Fast index of the n-th (from 0) rendered pixel of ``row``."""
    x0, x1, _, _ = _roi_clipped(plan)
    if plan.mask is None:
        return x0 + n
    return x0 + int(np.flatnonzero(plan.mask[row, x0:x1 + 1])[n])


def progress_points(plan):
    """(pixel index, percentage) for each "N% done" line the reference prints.

    The reference counts only the pixels it renders (inside the ROI and the mask), and
    prints after the pixels whose count is a multiple of 5% of the ROI's size, and of
    1% in the first and last tenth, dividing by the ROI's size with both ends
    inclusive (in integers, as it does).
    """
    if not plan.config.output.progress:
        return []
    xmin, xmax, ymin, ymax = plan.roi
    total = (xmax - xmin + 1) * (ymax - ymin + 1)
    if total // 100 <= 0:
        return []
    every, fine = total // 20, total // 100
    per_row = rendered_per_row(plan)
    n = int(per_row.sum())
    counts = sorted(set(range(0, n, every)) | {c for c in range(0, n, fine)
                                                if 10 * c < total or 10 * c > 9 * total})
    ends = np.cumsum(per_row)
    points = []
    for c in counts:
        row = int(np.searchsorted(ends, c, side="right"))
        before = int(ends[row - 1]) if row else 0
        points.append((row * plan.fpixels + _nth_rendered(plan, row, c - before),
                       c * 100 // total))
    return points


def printout_pixels(plan, row_start, row_stop):
    """Pixel indices -printout shows in rows [row_start, row_stop), in order."""
    want = plan.config.output.printout_pixel
    x0, x1, y0, y1 = _roi_clipped(plan)
    if want is not None and want[0] >= 0:
        f, s = want
        if row_start <= s < row_stop and y0 <= s <= y1 and x0 <= f <= x1 \
                and (plan.mask is None or plan.mask[s, f] != 0):
            return [s * plan.fpixels + f]
        return []
    return rendered_pixel_indices(plan, row_start, row_stop)


def rendered_pixel_indices(plan, row_start, row_stop):
    """Indices of the pixels the reference renders (ROI and mask) in rows
    [row_start, row_stop), in its order."""
    x0, x1, y0, y1 = _roi_clipped(plan)
    found = []
    for s in range(max(row_start, y0), min(row_stop, y1 + 1)):
        fs = np.arange(x0, x1 + 1) if plan.mask is None \
            else x0 + np.flatnonzero(plan.mask[s, x0:x1 + 1])
        found.extend(int(s * plan.fpixels + f) for f in fs)
    return found


# ---------------------------------------------------------------------------
# the pixel loop's lines, as rows get rendered

class LoopLog:
    """The text the reference prints during its pixel loop, produced row block by row
    block (call :meth:`advance` after each block, in row order, then :meth:`finish`).

    Progress lines (or -printout's values) come after their pixel; the interpolation
    warning comes while its pixel renders, so before that pixel's lines, and its second
    line has no newline of its own. ``write(text)``, if given, receives the text as it
    is produced (the CLI writes it to stdout and flushes).
    """

    def __init__(self, plan, write: Optional[Callable[[str], None]] = None):
        self.plan = plan
        self.write = write
        self.printout = plan.config.output.printout
        self._points = [] if self.printout else progress_points(plan)
        self._next = 0                  # first progress point not yet printed
        self._row = 0                   # rows [0, _row) are done
        self._pending: List[str] = []   # the warning, until its place comes
        self._trig = None
        self._warned = False
        self._parts: List[str] = []
        self._finished = False
        self._carry = None
        if self.printout:
            # values a pixel leaves unset carry over from earlier pixels, as in the
            # reference's single thread (see nbsim.printout)
            from .api import TRACE_FIELDS
            from .printout import CarryOver, initial_values, interpolation_reset
            self._carry = CarryOver(
                TRACE_FIELDS, initial_values(plan), plan.fpixels,
                # rows after the warning's pixel no longer reset the interpolation
                # scratch; until the warning has fired (self._trig None), every row does
                lambda s: interpolation_reset(plan, self._trig)(s))

    def _emit(self, text):
        if text:
            self._parts.append(text)
            if self.write is not None:
                self.write(text)

    def _flush_before(self, pixel):
        if self._pending and pixel >= self._trig:
            text = "\n".join(self._pending)
            self._pending = []
            return text
        return ""

    def advance(self, row_stop, trigger=None, trace=None, trace_row=0):
        """Rows up to ``row_stop`` are rendered. ``trigger``: the frame's interpolation
        Trigger if one fired before ``row_stop``; ``trace``: -printout's records of
        rows [trace_row, ...) (one per pixel)."""
        if trigger is not None and not self._warned:
            self._warned = True
            self._pending = trigger.messages()
            self._trig = trigger.pixel
        fp = self.plan.fpixels
        end = row_stop * fp
        text = []
        if self.printout:
            from .api import printout_lines
            self._carry.apply(trace, rendered_pixel_indices(self.plan, self._row, row_stop),
                              trace_row * fp)
            for idx in printout_pixels(self.plan, self._row, row_stop):
                text.append(self._flush_before(idx))
                record = trace[idx - trace_row * fp]
                text.extend(line + "\n" for line in printout_lines(self.plan, idx, record))
        else:
            while self._next < len(self._points) and self._points[self._next][0] < end:
                pixel, pct = self._points[self._next]
                text.append(self._flush_before(pixel))
                text.append("%d%% done\n" % pct)
                self._next += 1
        if self._pending and self._trig < end:
            text.append(self._flush_before(self._trig))
        self._row = max(self._row, row_stop)
        self._emit("".join(text))

    def finish(self):
        """The end of the loop: a warning not yet printed, and the reference's newline."""
        if self._finished:
            return
        self._finished = True
        self._emit("\n".join(self._pending) + "\n")
        self._pending = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def lines(self) -> List[str]:
        """The text as lines (for Result.log); the last one ends the loop's text."""
        return self.text.split("\n")[:-1] if self._finished else self.text.split("\n")


# ---------------------------------------------------------------------------
# block sizes

def fixed_block_rows():
    """``NBSIM_BLOCK_ROWS``: rows per block, when set (a positive integer)."""
    value = os.environ.get(BLOCK_ROWS_ENV, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise NbsimError("%s: expected a positive number of rows, got '%s'"
                         % (BLOCK_ROWS_ENV, value))
    return int(value)


class BlockSizer:
    """Rows for the next block, from each row's estimated work and the speed measured
    on the blocks so far.

    ``row_work``: work of each row in inner evaluations (rows outside the ROI cost
    almost nothing); ``threads``: threads rendering. ``fixed_rows`` gives every block
    that many rows instead (tests use it to show the bits do not depend on it).
    """

    def __init__(self, row_work, threads=None, fixed_rows=None, clock=time.perf_counter):
        work = np.asarray(row_work, dtype=np.float64) + 1.0   # a skipped row costs a little
        self._ends = np.concatenate(([0.0], np.cumsum(work)))
        self.rows = len(work)
        self.fixed_rows = fixed_rows
        threads = threads or os.cpu_count() or 1
        self._unit = 2 * threads
        self._rate = GUESS_RATE * threads             # evaluations per second
        self._budget = self._rate * FIRST_SECONDS     # work of the next block
        self._clock = clock
        self._started = None
        self._start = self._stop = 0

    def work(self, row_start, row_stop):
        return float(self._ends[row_stop] - self._ends[row_start])

    def next_block(self, row_start):
        """(row_start, row_stop) of the next block; starts its clock."""
        if self.fixed_rows:
            stop = min(self.rows, row_start + self.fixed_rows)
        else:
            want = self._ends[row_start] + self._budget
            n = int(np.searchsorted(self._ends, want, side="left")) - row_start
            # threads wait for each other at the end of a block: with a whole number of
            # rows (taken two at a time) for each thread, rows of equal cost end together
            if n > self._unit:
                n = self._unit * int(round(n / self._unit))
            stop = min(self.rows, row_start + max(n, 1))
        self._start, self._stop = row_start, stop
        self._started = self._clock()
        return row_start, stop

    def done(self):
        """The block from :meth:`next_block` has been rendered: update the speed."""
        seconds = max(self._clock() - self._started, 1e-4)
        self._rate = self.work(self._start, self._stop) / seconds
        # grow step by step: the speed of a short block is a rough measure
        self._budget = min(self._rate * TARGET_SECONDS, GROWTH * self._budget)
