"""``simulate(config)``: Config → Plan → engine → images and statistics.

The CLI is a thin client of this module: everything it prints or writes comes from
the :class:`Result` returned here, so a script gets exactly what the command gets.
"""
from __future__ import annotations

import math
from dataclasses import field
from typing import List, Optional

import numpy as np

from . import rng, stats
from .config import Config, Shape
from .engines import params as P
from .engines import registry
from .plan import R_E_SQR, Plan, make_plan
from .records import record
from .vec import unitize


@record
class Result:
    plan: Plan
    engine: str
    float_image: np.ndarray                  # (spixels, fpixels) float32
    stats: stats.ImageStats
    intfile_scale: float
    int_image: np.ndarray
    pgm_scale: Optional[float] = None
    pgm_image: Optional[np.ndarray] = None
    noise_image: Optional[np.ndarray] = None
    photons: Optional[float] = None
    overloads: Optional[int] = None
    omega_sum: float = 0.0
    log: List[str] = field(default_factory=list)   # lines as the reference prints them

    @property
    def detector(self):
        """The placed detector in mm and degrees (:class:`nbsim.detector_info.DetectorInfo`)."""
        from .detector_info import detector_info
        return detector_info(self.plan)


_SHAPES = {Shape.SQUARE: P.SHAPE_SQUARE, Shape.ROUND: P.SHAPE_ROUND,
           Shape.GAUSS: P.SHAPE_GAUSS, Shape.TOPHAT: P.SHAPE_TOPHAT}


def pack_plan(plan: Plan):
    """The flat arrays both engines take (see nbsim.engines.params)."""
    cfg = plan.config
    g = plan.geom
    h_min, h_max, k_min, k_max, l_min, l_max = plan.hkl_bounds
    ints = dict(
        FPIXELS=plan.fpixels, SPIXELS=plan.spixels, ROI_XMIN=plan.roi[0], ROI_XMAX=plan.roi[1],
        ROI_YMIN=plan.roi[2], ROI_YMAX=plan.roi[3], OVERSAMPLE=plan.oversample,
        THICKSTEPS=plan.thicksteps, HAS_MASK=plan.mask is not None, CURVED=cfg.detector.curved,
        POINT_PIXEL=cfg.detector.point_pixel, OS_THICK=cfg.sampling.oversample_thick,
        OS_POLAR=cfg.sampling.oversample_polar, OS_OMEGA=cfg.sampling.oversample_omega,
        NOPOLAR=cfg.beam.nopolar, SHAPE=_SHAPES[cfg.crystal.shape],
        INTERPOLATE=plan.interpolate, HKLS=plan.hkls, H_MIN=h_min, H_MAX=h_max, K_MIN=k_min,
        K_MAX=k_max, L_MIN=l_min, L_MAX=l_max, H_RANGE=h_max - h_min + 1,
        K_RANGE=k_max - k_min + 1, L_RANGE=l_max - l_min + 1, FIRST_PIXEL=P.NO_PIXEL,
        TRIG_PIXEL=P.NO_PIXEL, TRIG_ORD=0, PROBE=0,
        FAST=cfg.sampling.fast)
    reals = dict(
        PIXEL_SIZE=plan.pixel_size, SUBPIXEL_SIZE=plan.subpixel_size, THICKSTEP=plan.thickstep,
        THICK=plan.thick, MU=plan.mu, DISTANCE=g.distance, CLOSE_DISTANCE=g.close_distance,
        POLARIZATION=cfg.beam.polarization, DMIN=cfg.detector.dmin, NA=plan.Na, NB=plan.Nb,
        NC=plan.Nc, FUDGE=cfg.crystal.fudge, DEFAULT_F=cfg.crystal.default_F,
        WATER_SIZE=cfg.crystal.water_size, I_BG=plan.I_bg, R_E_SQR=R_E_SQR,
        FLUENCE=plan.fluence, STEPS=float(plan.steps))
    ip, dp = P.pack(ints, reals)
    lat = plan.lattice
    vecs = np.array([g.fdet, g.sdet, g.odet, g.pix0, g.beam, plan.polar_axis,
                     lat.a_star, lat.b_star, lat.c_star], dtype=np.float64)
    mask = plan.mask if plan.mask is not None else np.zeros((1, 1), dtype=np.uint16)
    return ip, dp, vecs, mask


def first_phi_pixel(plan: Plan, ip, dp, vecs, mask):
    """Index of the first pixel, in the reference's order, that runs a φ loop.

    Without -dmin that is the first pixel inside the ROI and the mask; with -dmin a
    pixel runs no φ loop if every sub-pixel/source combination is culled.
    """
    dmin = plan.config.detector.dmin
    for s, f in rendered_pixels(plan):
        if not dmin > 0.0 or _pixel_passes_dmin(plan, s, f, vecs, dmin):
            return s * plan.fpixels + f
    return P.NO_PIXEL


def rendered_pixels(plan: Plan):
    """(slow, fast) of every pixel the reference renders (ROI and mask), in its order."""
    xmin, xmax, ymin, ymax = plan.roi
    for s in range(plan.spixels):
        if s < ymin or s > ymax:
            continue
        for f in range(plan.fpixels):
            if f < xmin or f > xmax:
                continue
            if plan.mask is not None and plan.mask[s, f] == 0:
                continue
            yield s, f


def _pixel_passes_dmin(plan, s, f, vecs, dmin):
    fdet, sdet, odet, pix0, beam = (tuple(v) for v in vecs[:5])
    os_ = plan.oversample
    sub = plan.subpixel_size
    distance = plan.geom.distance
    from .vec import rotate_axis
    for t in range(plan.thicksteps):
        Odet = t * plan.thickstep
        for sS in range(os_):
            for sF in range(os_):
                Fdet = sub * (f * os_ + sF) + sub / 2.0
                Sdet = sub * (s * os_ + sS) + sub / 2.0
                pos = tuple(Fdet * fdet[i] + Sdet * sdet[i] + Odet * odet[i] + pix0[i]
                            for i in range(3))
                if plan.config.detector.curved:
                    v = tuple(distance * beam[i] for i in range(3))
                    nv = rotate_axis(v, sdet, pos[1] / distance)
                    pos = rotate_axis(nv, fdet, pos[2] / distance)
                d, _ = unitize(pos)
                for src in plan.sources:
                    lam = src[3]
                    sc = [(d[i] + src[i]) / lam for i in range(3)]
                    stol = 0.5 * math.sqrt(sc[0] * sc[0] + sc[1] * sc[1] + sc[2] * sc[2])
                    if not (stol > 0.0 and dmin > 0.5 / stol):
                        return True
    return False


# "auto": the engine that is expected to finish first.  Render time per inner
# evaluation on one thread, in ns, (C engine, Numba engine), by workload class, as
# measured with `python bench/engine_classes.py --pixels 128 --repeats 5` (5
# alternating repeats, smallest CPU time; the square rows with --pixels 256) on this
# project's 2-core AMD EPYC machine with AVX-512 on 2026-12-01; the output is in
# bench/RESULTS-2026-12-01.txt.  With 2 threads the ratios stay within a few per cent
# (both engines hand out rows dynamically).
_NS_PER_EVALUATION = {
    # (-fast, shape): (C, Numba)
    (False, Shape.SQUARE): (78.2, 80.8),
    (False, Shape.ROUND): (46.2, 44.0),
    (False, Shape.GAUSS): (25.6, 23.4),
    (False, Shape.TOPHAT): (16.9, 13.3),
    (True, Shape.SQUARE): (3.5, 7.4),
    (True, Shape.ROUND): (7.4, 26.0),
    (True, Shape.GAUSS): (5.7, 26.8),
    (True, Shape.TOPHAT): (3.2, 11.0),
}
# ... plus this much when F comes from an hkl table or from tricubic interpolation
# (whose cost includes the probe pass that finds where interpolation stops); a table
# lookup in parity mode costs nothing measurable (-1 to +4 ns, within the noise)
_F_NS_PER_EVALUATION = {
    (False, "hkl"): (0.0, 0.0),
    (False, "interpolate"): (154.8, 232.2),
    (True, "hkl"): (4.4, 4.8),
    (True, "interpolate"): (42.2, 43.2),
}
# A process that renders with Numba pays for importing Numba and loading its cached
# kernels: a whole 64x64 run takes 0.44 s with -engine numba and 0.11 s with -engine c.
NUMBA_EXTRA_START_S = 0.33


def evaluations(plan: Plan) -> float:
    """Inner-loop evaluations: pixels x sub-pixels x layers x sources x φ steps x domains."""
    xmin, xmax, ymin, ymax = plan.roi
    fp = min(xmax, plan.fpixels - 1) - xmin + 1
    sp = min(ymax, plan.spixels - 1) - ymin + 1
    return (float(max(fp, 0)) * max(sp, 0) * plan.oversample ** 2 * plan.thicksteps
            * len(plan.sources) * plan.phisteps * plan.lattice_table.shape[1])


def engine_estimates(plan: Plan, threads=None, started=False):
    """Expected seconds for each engine to render this plan (start-up included unless
    ``started``), from the measured costs above.  ``threads`` None means every core."""
    import os
    import sys
    fast = bool(plan.config.sampling.fast)
    c_ns, numba_ns = _NS_PER_EVALUATION[(fast, plan.config.crystal.shape)]
    source = "interpolate" if plan.interpolate else "hkl" if plan.hkls else None
    if source:
        extra_c, extra_numba = _F_NS_PER_EVALUATION[(fast, source)]
        c_ns += extra_c
        numba_ns += extra_numba
    n = evaluations(plan) / max(1, threads or os.cpu_count() or 1)
    # once Numba's kernels are loaded in this process, its start-up is paid
    numba_start = (0.0 if started or "nbsim.engines.numba_engine" in sys.modules
                   else NUMBA_EXTRA_START_S)
    return {"c": n * c_ns * 1e-9, "numba": numba_start + n * numba_ns * 1e-9}


# A render that one thread finishes in less than this runs on one thread whatever the
# thread count: starting a team of threads and joining it costs more than it saves, and
# on a busy machine the team waits for a free core (a 64x64 image took 0.5 ms on one
# thread and 8-24 ms on two while another job held the second core). The image does not
# depend on the thread count.
ONE_THREAD_BELOW_S = 0.002


def render_threads(plan: Plan, engine: str, threads=None):
    """Threads to render ``plan`` with on ``engine``: ``threads`` (None: every core),
    or 1 when one thread is expected to finish within ONE_THREAD_BELOW_S."""
    one = engine_estimates(plan, threads=1, started=True)
    if one.get(engine, ONE_THREAD_BELOW_S) < ONE_THREAD_BELOW_S:
        return 1
    return threads


def choose_engine(plan: Plan, engine=None, warn=None, threads=None, trace=None):
    """Resolve "auto" to the engine expected to finish first (engine_estimates; ties go
    to C).  C wins every -fast job and every small job; Numba only large parity jobs
    with round, Gaussian or top-hat crystals.  Both engines give the same bits; without
    Numba "auto" is C, and without the C extension it is Numba.

    A render that records -printout's per-pixel values (``trace``; None: whether the
    plan asks for -printout) runs the Numba kernel (or its plain-Python form without
    Numba) whatever was asked, so it is "numba" then; the engine asked for is still
    checked."""
    import os
    asked = (engine or os.environ.get("NBSIM_ENGINE") or "auto").strip().lower()
    if trace is None:
        trace = bool(plan.config.output.printout)
    if asked == "auto" and registry.c_status()[0]:
        est = engine_estimates(plan, threads)
        if est["c"] <= est["numba"]:
            return "numba" if trace else "c"
    name = registry.resolve(asked, warn=warn)
    return "numba" if trace else name


@record
class Rendered:
    """What the pixel loop produced."""
    image: np.ndarray
    omega_sum: float
    messages: List[str]            # the interpolation warning, if it fired
    engine: str
    trig_pixel: Optional[int]      # pixel index at which that warning was printed
    trace: Optional[np.ndarray]    # per-pixel values for -printout (see TRACE_FIELDS)
    trigger: Optional[object] = None   # that warning's nbsim.rows.Trigger

    # unpacks as (image, omega_sum, messages, engine), as render() used to return
    def __iter__(self):
        return iter((self.image, self.omega_sum, self.messages, self.engine))

    def __getitem__(self, i):
        return tuple(self)[i]


TRACE_FIELDS = ("stol", "x", "y", "z", "h", "k", "l", "h0", "k0", "l0", "F_cell", "F_latt",
                "I", "polar", "omega", "capture_fraction", "ax", "ay", "az", "bx", "by", "bz",
                "cx", "cy", "cz", "pixel", "seen_lattice", "seen_F")


def default_threads():
    """Thread count when -threads is not given: $NBSIM_THREADS, else $OMP_NUM_THREADS
    (so "OMP_NUM_THREADS=1 nanoBragg ..." means what it means for the reference), else
    None: every core."""
    import os
    for var in ("NBSIM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def row_work(plan: Plan) -> np.ndarray:
    """Inner evaluations of each slow row (its rendered pixels x the work per pixel)."""
    from .progress import PIXEL_COST, rendered_per_row
    per_pixel = (float(plan.oversample) ** 2 * plan.thicksteps * len(plan.sources)
                 * plan.phisteps * plan.lattice_table.shape[1])
    return rendered_per_row(plan) * (per_pixel + PIXEL_COST)


def render(plan: Plan, engine="auto", threads=None, warn=None, trace=False,
           on_block=None, block_rows=None) -> Rendered:
    """Run the pixel loop over the whole frame, in blocks of rows.

    Blocks take about ``nbsim.progress.TARGET_SECONDS`` each (``block_rows`` or
    $NBSIM_BLOCK_ROWS fixes their size; the image does not depend on it). After each
    block ``on_block(block, trigger)`` is called in this thread with the
    :class:`nbsim.rows.RowBlock` (views of the frame) and the frame's interpolation
    Trigger if one has fired so far; a KeyboardInterrupt (Ctrl-C) raised there or
    between blocks stops the render.
    When interpolation may switch itself off, each block is probed before it renders
    until the first out-of-range interpolation is found (see nbsim.rows).
    """
    from .progress import BlockSizer, fixed_block_rows
    from .rows import RowRenderer, frame_from_rows
    renderer = RowRenderer(plan, engine=engine, threads=threads, warn=warn, trace=trace)
    fp, sp = plan.fpixels, plan.spixels
    image = np.zeros((sp, fp), dtype=np.float32)
    omega_rows = np.zeros(sp, dtype=np.float64)
    traced = np.zeros((sp * fp, len(TRACE_FIELDS)), dtype=np.float64) if trace else None
    sizer = BlockSizer(row_work(plan), renderer.threads, block_rows or fixed_block_rows())
    trigger = None
    searching = bool(plan.interpolate)
    row = 0
    while row < sp:
        start, stop = sizer.next_block(row)
        if searching:
            trigger = renderer.probe(start, stop)
            searching = trigger is None
        block = renderer.render(start, stop, trigger, image[start:stop], omega_rows[start:stop],
                                traced[start * fp:stop * fp] if trace else None)
        sizer.done()
        if on_block is not None:
            on_block(block, trigger)
        row = stop
    return frame_from_rows(image, omega_rows, trigger, renderer.engine, traced)


def render_rows(plan: Plan, row_start: int, row_stop: int, engine="auto", threads=None,
                trigger="auto", warn=None, trace=False):
    """Render the slow rows [row_start, row_stop) of ``plan``'s frame alone: a
    :class:`nbsim.rows.RowBlock` with those rows of the float image and each row's
    solid-angle sum. ``nbsim.rows.assemble`` puts blocks back together into the frame,
    bit-identical to a whole render; see nbsim.rows for ``trigger`` and for splitting a
    frame over processes."""
    from . import rows
    return rows.render_rows(plan, row_start, row_stop, engine=engine, threads=threads,
                            trigger=trigger, warn=warn, trace=trace)


def printout_lines(plan: Plan, pixel_index: int, t) -> List[str]:
    """The lines -printout shows for one pixel, as the reference formats them."""
    # C's printf (a negative NaN prints as -nan) and its 32-bit int indices
    from .io.cparse import c_double_to_int, c_sprintf as fmt
    s, f = divmod(pixel_index, plan.fpixels)
    v = dict(zip(TRACE_FIELDS, t))
    twotheta = math.atan2(math.sqrt(v["y"] * v["y"] + v["z"] * v["z"]), v["x"])
    test = math.sin(twotheta / 2.0) / (plan.lambda0 * 1e10)
    v = {k: float(x) for k, x in v.items()}
    return [
        fmt("%4d %4d : stol = %g or %g", f, s, v["stol"], test),
        fmt("at %g %g %g", v["x"], v["y"], v["z"]),
        fmt("hkl= %f %f %f  hkl0= %d %d %d", v["h"], v["k"], v["l"],
            *(c_double_to_int(v[x]) for x in ("h0", "k0", "l0"))),
        fmt(" F_cell=%g  F_latt=%g   I = %g", v["F_cell"], v["F_latt"], v["I"]),
        fmt("I/steps %15.10g", v["I"] / plan.steps),
        fmt("polar   %15.10g", v["polar"]),
        fmt("omega   %15.10g", v["omega"]),
        fmt("capfrac %15.10g", v["capture_fraction"]),
        fmt("pixel   %15.10g", v["pixel"]),
        "real-space cell vectors (Angstrom):",
        "     %-10s  %-10s  %-10s" % ("a", "b", "c"),
        fmt("X: %11.8f %11.8f %11.8f", v["ax"] * 1e10, v["bx"] * 1e10, v["cx"] * 1e10),
        fmt("Y: %11.8f %11.8f %11.8f", v["ay"] * 1e10, v["by"] * 1e10, v["cy"] * 1e10),
        fmt("Z: %11.8f %11.8f %11.8f", v["az"] * 1e10, v["bz"] * 1e10, v["cz"] * 1e10),
    ]


def progress_points(plan: Plan):
    """(pixel index, percentage) for each "N% done" line the reference prints
    (see nbsim.progress.progress_points)."""
    from .progress import progress_points as points
    return points(plan)


def loop_output(plan: Plan, rendered: Rendered):
    """The lines the reference prints during its pixel loop, in its order, for a frame
    rendered whole (nbsim.progress.LoopLog produces them block by block)."""
    from .progress import LoopLog
    log = LoopLog(plan)
    trigger = rendered.trigger
    if trigger is None and rendered.messages and rendered.trig_pixel is not None:
        trigger = _MessagesAt(rendered.trig_pixel, rendered.messages)
    log.advance(plan.spixels, trigger, rendered.trace, 0)
    log.finish()
    return log.lines()


@record
class _MessagesAt:
    """A Trigger-like holder of messages already formatted (Rendered keeps those)."""
    pixel: int
    _messages: List[str]

    def messages(self):
        return list(self._messages)


def simulate(config: Config, engine="auto", threads=None, plan: Optional[Plan] = None,
             warn=None, progress=None, echo=None) -> Result:
    """Render ``config`` and derive every output the reference produces, in memory.

    ``progress(done_pixels, total_pixels)`` is called in this thread after each block
    of rows (pixels counted as the reference renders them: inside the ROI and the mask).
    ``echo``: a text stream that gets the log lines (``Result.log``) as they are
    produced, the progress lines while rendering, flushed after each block (the
    command passes stdout). A KeyboardInterrupt stops the render between blocks.
    """
    plan = plan or make_plan(config)
    say = _echo_writer(echo)
    log = list(plan.log)
    say("".join(line + "\n" for line in log))
    from .progress import LoopLog, rendered_per_row
    loop = LoopLog(plan, write=say)
    done_rows = np.concatenate(([0], np.cumsum(rendered_per_row(plan))))
    total = int(done_rows[-1])

    def on_block(block, trigger):
        loop.advance(block.row_stop, trigger, block.trace, block.row_start)
        if progress is not None:
            progress(int(done_rows[block.row_stop]), total)

    rendered = render(plan, engine=engine, threads=threads, warn=warn,
                      trace=plan.config.output.printout, on_block=on_block)
    loop.finish()
    log.extend(loop.lines())
    return finish(plan, rendered, log, echo=echo)


def _echo_writer(echo):
    if echo is None:
        return lambda text: None

    def write(text):
        if text:
            echo.write(text)
            echo.flush()
    return write


def finish(plan: Plan, rendered: Rendered, log: Optional[List[str]] = None,
           echo=None) -> Result:
    """Everything the reference derives from the float image after its pixel loop
    (solid angle line, statistics, integer, PGM and noise images) as a Result.
    ``log``: the lines so far (default: the plan's setup lines and the loop's lines);
    ``echo`` gets the lines added here."""
    if log is None:
        log = list(plan.log) + loop_output(plan, rendered)
    log = list(log)
    img, omega_sum, name = rendered.image, rendered.omega_sum, rendered.engine
    cfg = plan.config
    line = ("solid angle subtended by detector = %g steradian ( %g%% sphere)"
            % (omega_sum / plan.steps, 100 * omega_sum / plan.steps / 4 / math.pi))
    log.append(line)
    _echo_writer(echo)(line + "\n")
    st = stats.image_stats(img, plan.roi, plan.mask, plan.subpixel_size, plan.oversample,
                           engine=name)
    scale = cfg.output.intfile_scale
    if scale <= 0.0:
        scale = 1.0
        if st.max_I > 0.0:
            scale = 55000.0 / st.max_I
    int_img = stats.int_image(img, plan.roi, scale, cfg.noise.adc_offset, engine=name)
    res = Result(plan=plan, engine=name, float_image=img, stats=st, intfile_scale=scale,
                 int_image=int_img, omega_sum=omega_sum, log=log)
    if cfg.output.write_pgm:
        pscale = cfg.output.pgm_scale
        if pscale <= 0.0:
            pscale = scale
            if st.rmsd > 0.0:
                pscale = 250.0 / (5.0 * st.rmsd)
        res.pgm_scale = pscale
        res.pgm_image = stats.pgm_image(img, plan.roi, pscale, engine=name)
    if cfg.noise.calculate_noise:
        # the generator continues from the state the mosaic draws left; copy it so
        # the same Plan renders the same noise every time
        state = rng.RandomState(*(a.copy() for a in plan.rng_state))
        res.noise_image, res.photons, res.overloads = stats.noise_image(
            img, plan.roi, cfg.noise.adc_offset, cfg.noise.seed, state, engine=name)
    return res
