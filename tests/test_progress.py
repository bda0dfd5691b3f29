"""Live progress: the reference's loop lines, printed as row blocks finish, byte for byte
what a whole-frame render prints; the progress callback; adaptive block sizes."""
import io
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import golden_cases as gc
from nbsim import api, cli, progress
from nbsim.cli import config_from_args
from nbsim.errors import NbsimError
from nbsim.plan import make_plan

ROOT = os.path.dirname(gc.HERE)
MIDFRAME = ("-cell 100 100 100 90 90 90 -hkl {in}/cubic.hkl -interpolate -N 4 -lambda 1.0 "
            "-detpixels 64 -distance 120 -Xbeam 0 -Ybeam 3.2 -seed 1").replace("{in}", gc.INPUTS)
OUTS = "-floatfile f.bin -intfile i.img -noisefile n.img -pgmfile p.pgm".split()


def _case_args(name, progress_on=True):
    case = gc.load_case(name)
    args = gc.args_for_mode(case)
    return [a for a in args if a != "-noprogress"] if progress_on else args


def _plan(args):
    return make_plan(config_from_args(args, warn=lambda m: None)[0])


def oracle_points(plan):
    """The reference's meter, pixel by pixel as its loop runs (slow and obvious)."""
    xmin, xmax, ymin, ymax = plan.roi
    total = (xmax - xmin + 1) * (ymax - ymin + 1)
    if total // 100 <= 0:
        return []
    every, fine = total // 20, total // 100
    points, count = [], 0
    for s in range(plan.spixels):
        for f in range(plan.fpixels):
            if not (xmin <= f <= xmax and ymin <= s <= ymax):
                continue
            if plan.mask is not None and plan.mask[s, f] == 0:
                continue
            if count % every == 0 or ((10 * count < total or 10 * count > 9 * total)
                                      and count % fine == 0):
                points.append((s * plan.fpixels + f, count * 100 // total))
            count += 1
    return points


@pytest.mark.parametrize("args", [
    _case_args("mask"), _case_args("roi"),
    "-cell 90 90 90 90 90 90 -default_F 1 -detpixels 9 -detpixels_s 12".split(),   # < 100 pixels
    "-cell 90 90 90 90 90 90 -default_F 1 -detpixels 10".split(),                  # exactly 100
    "-cell 90 90 90 90 90 90 -default_F 1 -detpixels 41 -roi 3 37 0 40".split(),
], ids=["mask", "roi", "tiny", "hundred", "odd"])
def test_progress_points_match_the_pixel_by_pixel_meter(args, workdir):
    plan = _plan(args)
    assert api.progress_points(plan) == oracle_points(plan)


def test_no_meter_with_noprogress(workdir):
    assert api.progress_points(_plan(_case_args("roi", progress_on=False))) == []


def _loop_text(plan, rendered, cuts):
    """LoopLog text when the rows end at each of ``cuts`` in turn."""
    log = progress.LoopLog(plan)
    trig = rendered.trigger
    for stop in cuts:
        known = trig if trig is not None and trig.pixel < stop * plan.fpixels else None
        log.advance(stop, known, rendered.trace, 0)
    log.finish()
    return log.text


@pytest.mark.parametrize("printout", [False, True])
def test_loop_text_does_not_depend_on_blocks(printout, workdir):
    args = MIDFRAME.split() + (["-printout"] if printout else [])
    plan = _plan(args)
    rendered = api.render(plan, engine="c", trace=printout)
    whole = _loop_text(plan, rendered, [plan.spixels])
    assert whole.count("WARNING") == 2 and (printout or "% done" in whole)
    rng = np.random.default_rng(5)
    for _ in range(5):
        cuts = sorted(set(rng.integers(1, plan.spixels, 6).tolist())) + [plan.spixels]
        assert _loop_text(plan, rendered, cuts) == whole
    assert _loop_text(plan, rendered, range(1, plan.spixels + 1)) == whole
    # and it is what api.loop_output (the whole-frame form) gives
    assert "\n".join(api.loop_output(plan, rendered)) + "\n" == whole


def _cli_stdout(args, capsys, monkeypatch, block_rows):
    if block_rows:
        monkeypatch.setenv(progress.BLOCK_ROWS_ENV, str(block_rows))
    else:
        monkeypatch.delenv(progress.BLOCK_ROWS_ENV, raising=False)
    assert cli.main(args + OUTS) == 0
    # the mmap line of -img/-mask prints a buffer address, different in every run
    return "\n".join(gc.stdout_lines(capsys.readouterr().out, nbsim=True))


@pytest.mark.parametrize("engine", ["numba", "c"])
@pytest.mark.parametrize("args", [MIDFRAME.split(), _case_args("mask"), _case_args("roi")],
                         ids=["warning", "mask", "roi"])
def test_stdout_is_the_same_whatever_the_blocks(args, engine, capsys, monkeypatch, workdir):
    args = args + ["-engine", engine, "-threads", "2"]
    want = _cli_stdout(args, capsys, monkeypatch, None)
    assert "% done" in want
    for rows in (1, 7):
        assert _cli_stdout(args, capsys, monkeypatch, rows) == want


def test_warning_lines_as_in_the_golden_stdout(capsys, monkeypatch, workdir):
    """interpolate_forced_out_of_range (-noprogress): the loop prints only the warning,
    whose second line runs into the reference's end-of-loop newline."""
    name = "interpolate_forced_out_of_range"
    golden = gc.load_case(name)["stdout"].splitlines()
    start = next(i for i, line in enumerate(golden) if line.startswith("WARNING: out of range"))
    want = golden[start:start + 3]
    assert want[2].startswith("solid angle")
    for rows in (None, 1, 7):
        out = _cli_stdout(_case_args(name, progress_on=False), capsys, monkeypatch, rows)
        lines = out.splitlines()
        i = lines.index(want[0])
        assert lines[i:i + 3] == want


@pytest.mark.skipif(not os.environ.get("NB_C_BIN"),
                    reason="NB_C_BIN is not set: point it at your own nanoBragg binary to "
                           "compare the progress meter with it")
@pytest.mark.parametrize("args", [MIDFRAME.split(), _case_args("mask")], ids=["warning", "mask"])
def test_stdout_with_meter_matches_reference(args, tmp_path, capsys, monkeypatch):
    ref = subprocess.run([os.environ["NB_C_BIN"]] + args + OUTS, cwd=str(tmp_path),
                         capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    monkeypatch.chdir(tmp_path)

    def loop(text):   # from the last setup line to the statistics
        lines = text.splitlines()
        return lines[lines.index("  water droplet size: 0 m"):
                     next(i for i, x in enumerate(lines) if x.startswith("writing f.bin"))]
    assert "% done" in ref
    for rows in (None, 1, 7):
        assert loop(_cli_stdout(args, capsys, monkeypatch, rows)) == loop(ref)


def test_progress_callback_and_echo(workdir):
    config = config_from_args(MIDFRAME.split(), warn=lambda m: None)[0]
    calls = []
    echo = io.StringIO()
    main_thread = threading.get_ident()

    def progress_cb(done, total):
        calls.append((done, total, threading.get_ident(), echo.getvalue().count("% done")))

    os.environ[progress.BLOCK_ROWS_ENV] = "5"
    try:
        res = api.simulate(config, engine="c", progress=progress_cb, echo=echo)
    finally:
        del os.environ[progress.BLOCK_ROWS_ENV]
    assert echo.getvalue() == "".join(line + "\n" for line in res.log)
    assert len(calls) == -(-64 // 5)
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[-1] == calls[0][1] == 64 * 64
    assert all(c[2] == main_thread for c in calls)
    # the meter was written (and flushed) before each callback, block by block
    assert calls[0][3] < calls[-1][3]


def test_block_sizer_aims_at_the_target_duration():
    now = [0.0]
    work = np.full(1000, 1e6)               # 1e6 evaluations per row
    sizer = progress.BlockSizer(work, threads=1, clock=lambda: now[0])
    rate = 2e8                             # what this fake machine does per second
    row, sizes = 0, []
    while row < 1000:
        start, stop = sizer.next_block(row)
        now[0] += sizer.work(start, stop) / rate
        sizer.done()
        sizes.append(stop - start)
        row = stop
    assert sizes[0] == 1                   # 0.1 s at the cautious guess
    steady = rate * progress.TARGET_SECONDS / 1e6
    assert all(s <= progress.GROWTH * p for p, s in zip(sizes, sizes[1:]))
    assert sizes[-2] == pytest.approx(steady, rel=0.05)


def test_block_sizer_fixed_rows_and_environment(monkeypatch):
    sizer = progress.BlockSizer(np.ones(10), fixed_rows=4)
    assert [sizer.next_block(r) for r in (0, 4, 8)] == [(0, 4), (4, 8), (8, 10)]
    monkeypatch.setenv(progress.BLOCK_ROWS_ENV, "3")
    assert progress.fixed_block_rows() == 3
    for bad in ("0", "-2", "x", "\u0663"):
        monkeypatch.setenv(progress.BLOCK_ROWS_ENV, bad)
        with pytest.raises(NbsimError, match=progress.BLOCK_ROWS_ENV):
            progress.fixed_block_rows()


def test_small_jobs_render_in_one_block(workdir):
    plan = _plan(_case_args("roi"))
    blocks = []
    api.render(plan, engine="c", threads=1, on_block=lambda b, t: blocks.append(b.row_stop))
    assert blocks == [plan.spixels]


LONG = ("-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 5 -distance 100 "
        "-detpixels 384 -pixel 0.1 -mosaic 1 -mosaic_dom 12 -phisteps 3 -osc 0.3 "
        "-oversample 2 -seed 1 -nopgm -nonoise -floatfile f.bin -intfile i.img").split()


def test_meter_lines_arrive_while_rendering(tmp_path):
    """A render of a few seconds: its meter lines reach a pipe spread over the render,
    not all at its end."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="0")
    proc = subprocess.Popen([sys.executable, "-m", "nbsim"] + LONG + ["-engine", "c", "-threads", "1"],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    seen = []
    for line in proc.stdout:
        if line.endswith("% done\n"):
            seen.append(time.monotonic())
    proc.wait(timeout=300)
    assert proc.returncode == 0 and len(seen) > 20
    # the render takes ~2 s on one thread; the first and the last lines are far apart
    assert seen[-1] - seen[0] > 1.0
