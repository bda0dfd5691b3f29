"""-printout's per-pixel values as the reference's single thread leaves them.

The reference prints, for each pixel, the values its loop variables hold when the
pixel ends. Variables set only inside the crystal loops (h, k, l, the nearest whole
indices, F_latt, the rotated cell) and F_cell (set only for a non-zero lattice factor)
keep what an earlier pixel left when a pixel sets nothing (every source culled by
-dmin, every F_latt zero with a top-hat spot, ...). Its single thread runs the rows in
order, so the values carry over from row to row.

The kernel renders rows independently: it carries the values along a row and marks,
per pixel, whether the row has set them yet (``seen_lattice``, ``seen_F``).
:func:`carry_over` fills the unmarked pixels from the pixel before, in the
reference's order, which gives the reference's values everywhere except, before the
image's first evaluation, those the reference never set (see :func:`initial_values`).
"""
import numpy as np

# fields of the kernel's trace (see nbsim.api.TRACE_FIELDS) in each carried group
LATTICE_FIELDS = ("h", "k", "l", "h0", "k0", "l0", "F_latt",
                  "ax", "ay", "az", "bx", "by", "bz", "cx", "cy", "cz")
F_FIELDS = ("F_cell",)


def initial_values(plan):
    """What the reference's loop variables hold before its first evaluation, where
    that is known: the unrotated cell (metres); after reading an ``-hkl`` file, the
    last record's h, k, l and F; the index loops that copy the table to each thread
    leave h0 and k0 one past the table's range. Unknown values (uninitialised memory
    in the reference) are 0."""
    v = dict(zip(("ax", "ay", "az"), plan.a0))
    v.update(zip(("bx", "by", "bz"), plan.b0))
    v.update(zip(("cx", "cy", "cz"), plan.c0))
    table = plan.hkl_table
    if table is not None:
        v["h0"] = table.h_range + 1
        v["k0"] = table.k_range + 1
        last = getattr(table, "last_record", None)
        if last is not None:
            v["h"], v["k"], v["l"] = (float(x) for x in last[:3])
            v["l0"], v["F_cell"] = last[2], last[3]
    return v


def interpolation_reset(plan, trig_pixel):
    """The reference allocates its interpolation scratch table at the start of every
    row while interpolation is on, with loops over h0 and k0 that leave both at 6;
    returns ``row -> {field: value}`` for those rows."""
    def reset(spixel):
        on = plan.interpolate and (trig_pixel is None or trig_pixel >= spixel * plan.fpixels)
        return {"h0": 6.0, "k0": 6.0} if on else {}
    return reset


class CarryOver:
    """Fills trace records (one per pixel, columns named by ``fields``) that a row left
    unset, walking the pixels in the reference's order; the values carried stay
    between calls, so a frame rendered in row blocks is filled block by block, in
    row order, exactly as when whole.

    ``initial``: field values before the first evaluation (see :func:`initial_values`);
    ``row_reset(spixel)``: fields the reference sets at the start of a row.
    """

    def __init__(self, fields, initial, fpixels, row_reset=None):
        col = {name: i for i, name in enumerate(fields)}
        self._groups = ((col["seen_lattice"], [col[f] for f in LATTICE_FIELDS]),
                        (col["seen_F"], [col[f] for f in F_FIELDS]))
        self._col = col
        self._fpixels = fpixels
        self._row_reset = row_reset
        start = np.zeros(len(fields))
        for name, value in initial.items():
            start[col[name]] = value
        self._state = {flag: start[cols].copy() for flag, cols in self._groups}
        self._row_now = None

    def apply(self, trace, order, first_index=0):
        """Fill, in place, the records of the pixel indices ``order`` (in the
        reference's order); the record of pixel ``idx`` is ``trace[idx - first_index]``."""
        col, groups, state = self._col, self._groups, self._state
        for idx in order:
            row = trace[idx - first_index]
            if self._row_reset is not None and idx // self._fpixels != self._row_now:
                self._row_now = idx // self._fpixels
                for name, value in self._row_reset(self._row_now).items():
                    for flag, cols in groups:
                        if col[name] in cols:
                            state[flag][cols.index(col[name])] = value
            for flag, cols in groups:
                if row[flag] != 0.0:
                    state[flag] = row[cols].copy()
                else:
                    row[cols] = state[flag]
        return trace


def carry_over(trace, fields, order, initial, fpixels, row_reset=None):
    """:class:`CarryOver` over a whole frame's ``trace`` at once; in place."""
    return CarryOver(fields, initial, fpixels, row_reset).apply(trace, order)
