"""Render a frame, or any part of it, as ranges of slow rows.

Both engines render the slow rows [row_start, row_stop) of a frame on their own
(ROW_START/ROW_STOP in nbsim.engines.params). A frame put together from row blocks of
any sizes has exactly the bits of the frame rendered whole, because the two places
where the reference carries state from one pixel to the next are settled here, in its
sequential pixel order, before a row is rendered:

* -c_parity: the one pixel whose first φ loop sees the unrotated cell
  (``api.first_phi_pixel``) is found once per frame;
* interpolation that switches itself off: the frame's first out-of-range
  interpolation (a :class:`Trigger`) is the first one a probe pass finds, probing the
  rows in order. Rows before it interpolate throughout and rows after it never, so a
  row range needs only the first Trigger found in the rows before its end.

Assembling a frame from blocks: the image rows go in order; the solid-angle sum is the
per-row sums (``RowBlock.omega_rows``) added one after another from row 0. Floating-point
addition is not associative, so partial sums of blocks must not be added instead.

One frame over several processes (a sketch; each process renders its own rows)::

    trigger = first_trigger(gather(probe_rows(plan, a, b)))   # only if plan.interpolate
    block = render_rows(plan, a, b, trigger=trigger)
    rendered = assemble(plan, gather(block), trigger)         # on one process
    result = api.finish(plan, rendered)                       # stats, int/noise images
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, List, Optional

import numpy as np

from . import api
from .engines import params as P
from .engines import registry
from .plan import Plan
from .records import record

#: ``render_rows(trigger=AUTO)``: find the frame's Trigger by probing the rows before
#: the range's end
AUTO = "auto"


@dataclass(frozen=True, order=True)
class Trigger:
    """Where the reference's tricubic interpolation first ran out of range; it prints a
    warning there and uses the nearest structure factor from then on."""
    pixel: int                                  # slow * fpixels + fast
    ordinal: int                                # interpolations of that pixel before it
    hkl: tuple = field(compare=False)           # h, k, l, h0, k0, l0 (for the warning)

    def messages(self) -> List[str]:
        """The two warning lines as the reference prints them (the second has no
        newline of its own: whatever the reference prints next follows on its line)."""
        h, k, l, h0, k0, l0 = self.hkl
        return ["WARNING: out of range for three point interpolation: "
                "h,k,l,h0,k0,l0: %g,%g,%g,%d,%d,%d " % (h, k, l, h0, k0, l0),
                "WARNING: further warnings will not be printed! "]


def first_trigger(triggers: Iterable[Optional[Trigger]]) -> Optional[Trigger]:
    """The frame's Trigger from the probes of its row ranges (None where none fired)."""
    found = [t for t in triggers if t is not None]
    return min(found) if found else None


@record
class RowBlock:
    """Rows [row_start, row_stop) of a frame, and what assembling the frame needs."""
    row_start: int
    row_stop: int
    image: np.ndarray                   # (rows, fpixels) float32
    omega_rows: np.ndarray              # (rows,) float64: each row's solid-angle sum
    trace: Optional[np.ndarray] = None  # -printout: (rows * fpixels, len(api.TRACE_FIELDS))


class RowRenderer:
    """One frame's packed inputs and engine, ready to render any of its row ranges.

    ``threads`` None means ``api.default_threads()``, or one thread for a tiny
    job (:func:`nbsim.api.render_threads`). With ``trace`` (-printout) each
    pixel's last values are recorded too; that runs the Numba kernel (or its plain
    Python form), whatever ``engine`` says.
    """

    def __init__(self, plan: Plan, engine="auto", threads=None, warn=None, trace=False):
        self.plan = plan
        asked = threads
        threads = api.default_threads() if threads is None else threads
        self.trace = bool(trace)
        self.engine = api.choose_engine(plan, engine, warn=warn, threads=threads,
                                        trace=self.trace)
        # unless a thread count was given here, a tiny job renders on one thread
        # (see api.render_threads)
        self.threads = threads if asked is not None else api.render_threads(
            plan, self.engine, threads)
        # any engine finds the same trigger: the probe needs no trace
        self._probe_engine = (api.choose_engine(plan, engine, warn=lambda _m: None,
                                                threads=threads, trace=False)
                              if self.trace else self.engine)
        ip, dp, vecs, mask = api.pack_plan(plan)
        self._dp, self._vecs, self._mask = dp, vecs, mask
        self._lat = np.ascontiguousarray(plan.lattice_table)
        self._lat_first = np.ascontiguousarray(plan.first_lattice_table)
        self._Fhkl = np.ascontiguousarray(plan.Fhkl)
        self._sources = np.ascontiguousarray(plan.sources)
        if plan.config.sampling.c_parity and not np.array_equal(self._lat, self._lat_first):
            ip[P.I_FIRST_PIXEL] = api.first_phi_pixel(plan, ip, dp, vecs, mask)
        self._ip = ip

    def _check(self, row_start, row_stop):
        if not 0 <= row_start <= row_stop <= self.plan.spixels:
            raise ValueError("rows [%d, %d) are not within the detector's %d rows"
                             % (row_start, row_stop, self.plan.spixels))

    def _params(self, row_start, row_stop, probe, trigger):
        ip = self._ip.copy()
        ip[P.I_ROW_START] = row_start
        ip[P.I_ROW_STOP] = row_stop
        ip[P.I_PROBE] = probe
        if trigger is not None:
            ip[P.I_TRIG_PIXEL] = trigger.pixel
            ip[P.I_TRIG_ORD] = trigger.ordinal
        return ip

    def probe(self, row_start: int, row_stop: int) -> Optional[Trigger]:
        """The first out-of-range interpolation in rows [row_start, row_stop), in the
        reference's order, or None (always None when the plan does not interpolate).
        The probe stops each row at its first one, so it costs at most a render."""
        self._check(row_start, row_stop)
        if not self.plan.interpolate or row_stop == row_start:
            return None
        rows, fpixels = row_stop - row_start, self.plan.fpixels
        ip = self._params(row_start, row_stop, 1, None)
        out = np.zeros((rows, fpixels), dtype=np.float32)
        omega = np.zeros(rows, dtype=np.float64)
        probe_i = np.full((rows, 2), -1, dtype=np.int64)
        probe_d = np.zeros((rows, 6), dtype=np.float64)
        registry.run(self._probe_engine, self.threads, ip, self._dp, self._vecs, self._sources,
                     self._lat, self._lat_first, self._Fhkl, self._mask, out, omega,
                     probe_i, probe_d)
        hits = np.nonzero(probe_i[:, 0] >= 0)[0]
        if not len(hits):
            return None
        r = int(hits[0])
        return Trigger((row_start + r) * fpixels + int(probe_i[r, 0]), int(probe_i[r, 1]),
                       tuple(float(x) for x in probe_d[r]))

    def render(self, row_start: int, row_stop: int, trigger: Optional[Trigger] = None,
               image=None, omega_rows=None, trace=None) -> RowBlock:
        """Rows [row_start, row_stop), given the frame's Trigger (None: none fired
        before ``row_stop``). ``image``, ``omega_rows`` and ``trace``, if given, are
        zeroed arrays of the block's shapes to render into (e.g. views of a frame)."""
        self._check(row_start, row_stop)
        rows, fpixels = row_stop - row_start, self.plan.fpixels
        if image is None:
            image = np.zeros((rows, fpixels), dtype=np.float32)
        if omega_rows is None:
            omega_rows = np.zeros(rows, dtype=np.float64)
        if self.trace and trace is None:
            trace = np.zeros((rows * fpixels, len(api.TRACE_FIELDS)), dtype=np.float64)
        block = RowBlock(row_start, row_stop, image, omega_rows, trace if self.trace else None)
        if rows == 0:
            return block
        probe_i = np.full((rows, 2), -1, dtype=np.int64)
        arrays = (self._dp, self._vecs, self._sources, self._lat, self._lat_first, self._Fhkl,
                  self._mask, image, omega_rows, probe_i)
        if self.trace:
            ip = self._params(row_start, row_stop, 2, trigger)
            _run_traced(self.threads, ip, *arrays, trace)
        else:
            ip = self._params(row_start, row_stop, 0, trigger)
            registry.run(self.engine, self.threads, ip, *arrays,
                         np.zeros((rows, 6), dtype=np.float64))
        return block

    def find_trigger(self, row_stop: int) -> Optional[Trigger]:
        """The frame's Trigger if it lies before ``row_stop`` (rows probed in order,
        in chunks, stopping at the first that has one)."""
        if not self.plan.interpolate:
            return None
        chunk = max(16, row_stop // 16)
        for start in range(0, row_stop, chunk):
            found = self.probe(start, min(start + chunk, row_stop))
            if found is not None:
                return found
        return None


def _run_traced(threads, ip, *arrays):
    """-printout runs the Numba kernel (or its plain-Python form without Numba)."""
    from ._jit import HAVE_NUMBA
    from .engines import numba_kernel
    if HAVE_NUMBA:
        from .engines import numba_engine
        numba_engine.render(threads, ip, *arrays)
    else:
        P.row_range(ip)
        numba_kernel.render(ip, *arrays)


def probe_rows(plan: Plan, row_start: int, row_stop: int, engine="auto", threads=None,
               warn=None) -> Optional[Trigger]:
    """The first out-of-range interpolation in rows [row_start, row_stop), or None.
    The frame's Trigger is :func:`first_trigger` of the probes of all its rows."""
    return RowRenderer(plan, engine, threads, warn).probe(row_start, row_stop)


def render_rows(plan: Plan, row_start: int, row_stop: int, engine="auto", threads=None,
                trigger=AUTO, warn=None, trace=False) -> RowBlock:
    """Render the slow rows [row_start, row_stop) of ``plan``'s frame.

    ``trigger``: the frame's :class:`Trigger` (or None when it has none before
    ``row_stop``). With AUTO, the rows before ``row_stop`` are probed here to find it
    (when the plan interpolates); processes splitting a frame had better probe their
    own rows and share :func:`first_trigger` of the results.
    """
    renderer = RowRenderer(plan, engine, threads, warn, trace)
    if isinstance(trigger, str) and trigger == AUTO:
        trigger = renderer.find_trigger(row_stop)
    return renderer.render(row_start, row_stop, trigger)


def assemble(plan: Plan, blocks: Iterable[RowBlock], trigger: Optional[Trigger] = None,
             engine: str = "") -> "api.Rendered":
    """The frame from row blocks that cover every row once (in any order), with the
    frame's Trigger; bit-identical to the frame rendered whole."""
    blocks = sorted(blocks, key=lambda b: b.row_start)
    edge = 0
    for b in blocks:
        if b.row_start != edge or b.row_stop < b.row_start:
            raise ValueError("row blocks must cover rows 0..%d once each; found [%d, %d) "
                             "after row %d" % (plan.spixels, b.row_start, b.row_stop, edge))
        edge = b.row_stop
    if edge != plan.spixels:
        raise ValueError("row blocks end at row %d; the frame has %d" % (edge, plan.spixels))
    image = np.zeros((plan.spixels, plan.fpixels), dtype=np.float32)
    omega_rows = np.zeros(plan.spixels, dtype=np.float64)
    traced = any(b.trace is not None for b in blocks)
    trace = np.zeros((plan.spixels * plan.fpixels, len(api.TRACE_FIELDS))) if traced else None
    for b in blocks:
        image[b.row_start:b.row_stop] = b.image
        omega_rows[b.row_start:b.row_stop] = b.omega_rows
        if traced:
            trace[b.row_start * plan.fpixels:b.row_stop * plan.fpixels] = b.trace
    return frame_from_rows(image, omega_rows, trigger, engine, trace)


def frame_from_rows(image, omega_rows, trigger, engine, trace=None) -> "api.Rendered":
    """A whole frame's Rendered from its rows; the solid-angle sum in row order."""
    omega_sum = 0.0
    for v in omega_rows:
        omega_sum += float(v)
    messages = trigger.messages() if trigger is not None else []
    return api.Rendered(image, omega_sum, messages, engine,
                        trigger.pixel if trigger is not None else None, trace, trigger)
