"""Row ranges: a frame rendered in row blocks of any sizes, on either engine and any
thread count, has the bits of the frame rendered whole, and of the reference."""
import os
import random
import struct

import numpy as np
import pytest

import golden_cases as gc
from nbsim import api, rows
from nbsim.cli import command_config
from nbsim.plan import make_plan

# cases with state that crosses pixels or rows: the interpolation switching itself off
# (a warning), -c_parity's first pixel, a mask, an ROI, -dmin culling, and the
# per-term factors; plus plain and absorbing detectors
CASES = ["interpolate_forced_out_of_range", "phi_from_zero_carryover", "mask", "roi", "dmin",
         "absorption_oversample_thick", "water_background", "interpolate_auto_N2"]
ENGINES = ["numba", "c"]


def _plan(name, workdir):
    if name == "midframe":
        return None, midframe_plan()
    case = gc.load_case(name)
    gc.prepare_workdir(case, str(workdir))
    old = os.getcwd()
    os.chdir(str(workdir))
    try:
        config, _ = command_config(gc.args_for_mode(case), warn=lambda m: None)
        return case, make_plan(config)
    finally:
        os.chdir(old)


def _bits(x):
    return struct.pack("<d", x)


def _same(a, b):
    """Everything a render hands on, compared bit for bit."""
    assert a.image.tobytes() == b.image.tobytes()
    assert _bits(a.omega_sum) == _bits(b.omega_sum)
    assert a.messages == b.messages
    assert a.trig_pixel == b.trig_pixel


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", CASES)
def test_block_sizes_give_the_reference_bits(name, engine, threads, tmp_path):
    case, plan = _plan(name, tmp_path)
    golden = gc.golden_file(name, "float.bin")
    whole = api.render(plan, engine=engine, threads=threads, block_rows=plan.spixels)
    assert whole.image.tobytes() == golden
    for size in (1, 7):
        _same(api.render(plan, engine=engine, threads=threads, block_rows=size), whole)


OTHERS = [n for n in gc.case_names() if n not in CASES
          and not gc.load_case(n)["flags"].get("expect_error")]


# cases of 10^7-10^8 evaluations (a minute each here): only some of their rows,
# rendered on their own in blocks of 1 and 2 rows
HEAVY = {"flux_exposure_beamsize": (60, 63), "integration_at020": (120, 125),
         "integration_at020__fixed": (120, 125)}


@pytest.mark.parametrize("name", OTHERS)
def test_every_golden_case_in_blocks(name, tmp_path):
    """The remaining cases, each on one engine and thread count (taken in turn)."""
    _, plan = _plan(name, tmp_path)
    i = OTHERS.index(name)
    engine, threads = ENGINES[i % 2], 1 + (i // 2) % 2
    floatfile = "float.bin" if "float.bin" in gc.load_case(name)["files"] else "floatimage.bin"
    golden = np.frombuffer(gc.golden_file(name, floatfile), dtype=np.float32)
    golden = golden.reshape(plan.spixels, plan.fpixels)
    if name in HEAVY:
        a, b = HEAVY[name]
        blocks = [api.render_rows(plan, r, min(r + size, b), engine=engine, threads=threads)
                  for size in (1, 2) for r in range(a, b, size)]
        got = np.concatenate([blk.image for blk in blocks])
        assert got.tobytes() == np.concatenate([golden[a:b], golden[a:b]]).tobytes()
    else:
        image = api.render(plan, engine=engine, threads=threads, block_rows=7).image
        assert image.tobytes() == golden.tobytes()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["mosaic", "div_disp_round", "absorption_oversample_thick"])
def test_fast_mode_in_blocks(name, engine, tmp_path):
    case = gc.load_case(name)
    config, _ = command_config(gc.args_for_mode(case) + ["-fast"], warn=lambda m: None)
    plan = make_plan(config)
    whole = api.render(plan, engine=engine, threads=2, block_rows=plan.spixels)
    for size in (1, 7):
        _same(api.render(plan, engine=engine, threads=2, block_rows=size), whole)


# interpolation runs out of range only in the rows far from the beam: the trigger is
# in row 48 of 64, so blocks before, around and after it are all exercised
MIDFRAME = ("-cell 100 100 100 90 90 90 -hkl {in}/cubic.hkl -interpolate -N 4 -lambda 1.0 "
            "-detpixels 64 -distance 120 -Xbeam 0 -Ybeam 3.2 -seed 1 -noprogress")


def midframe_plan():
    args = MIDFRAME.replace("{in}", gc.INPUTS).split()
    return make_plan(command_config(args, warn=lambda m: None)[0])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("engine", ENGINES)
def test_block_sizes_around_a_trigger_mid_frame(engine, threads):
    plan = midframe_plan()
    whole = api.render(plan, engine=engine, threads=threads, block_rows=plan.spixels)
    assert whole.messages and whole.trig_pixel == 48 * plan.fpixels
    other = api.render(plan, engine=ENGINES[engine == "numba"], threads=1, block_rows=5)
    _same(other, whole)
    for size in (1, 7, 48, 49):
        _same(api.render(plan, engine=engine, threads=threads, block_rows=size), whole)


@pytest.mark.parametrize("engine", ENGINES)
def test_fast_blocks_around_a_trigger_mid_frame(engine):
    """-fast's own probe and per-row outputs are indexed by the row within the block:
    every block size finds the whole frame's trigger and gives its bits."""
    plan = make_plan(command_config(MIDFRAME.replace("{in}", gc.INPUTS).split() + ["-fast"],
                                    warn=lambda m: None)[0])
    whole = api.render(plan, engine=engine, threads=2, block_rows=plan.spixels)
    assert whole.messages and whole.trig_pixel == 48 * plan.fpixels
    _same(api.render(plan, engine=ENGINES[engine == "numba"], threads=1, block_rows=5), whole)
    for size in (1, 7, 49):
        _same(api.render(plan, engine=engine, threads=2, block_rows=size), whole)
    alone = api.render_rows(plan, 47, 50, engine=engine, threads=2)
    assert alone.image.tobytes() == whole.image[47:50].tobytes()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["midframe", "phi_from_zero_carryover", "mask"])
def test_split_frame_assembles_to_the_whole(name, engine, tmp_path):
    """What a split over processes does: probe each part, share the first trigger,
    render each part alone, gather the parts in any order."""
    _, plan = _plan(name, tmp_path)
    whole = api.render(plan, engine=engine, threads=1, block_rows=plan.spixels)
    r = random.Random(name)
    cuts = sorted(r.sample(range(1, plan.spixels), 4))
    parts = list(zip([0] + cuts, cuts + [plan.spixels]))
    trigger = rows.first_trigger(rows.probe_rows(plan, a, b, engine=engine, threads=2)
                                 for a, b in parts)
    blocks = [api.render_rows(plan, a, b, engine=engine, threads=2, trigger=trigger)
              for a, b in parts]
    assert [b.image.shape for b in blocks] == [(b - a, plan.fpixels) for a, b in parts]
    r.shuffle(blocks)
    _same(rows.assemble(plan, blocks, trigger, engine), whole)


@pytest.mark.parametrize("engine", ENGINES)
def test_render_rows_alone_finds_the_trigger_before_its_rows(engine):
    plan = midframe_plan()
    whole = api.render_rows(plan, 0, plan.spixels, engine=engine, threads=2)
    trig_row = api.render(plan, engine=engine).trig_pixel // plan.fpixels
    for a, b in ((0, trig_row), (trig_row, trig_row + 1), (trig_row + 3, plan.spixels)):
        block = api.render_rows(plan, a, b, engine=engine, threads=1)
        assert block.image.tobytes() == whole.image[a:b].tobytes()
        assert block.omega_rows.tobytes() == whole.omega_rows[a:b].tobytes()


def test_assemble_refuses_gaps_and_overlaps(tmp_path):
    _, plan = _plan("roi", tmp_path)
    b1 = api.render_rows(plan, 0, 10, engine="c")
    b2 = api.render_rows(plan, 9, plan.spixels, engine="c")
    b3 = api.render_rows(plan, 11, plan.spixels, engine="c")
    for blocks in ([b1, b2], [b1, b3], [b1]):
        with pytest.raises(ValueError, match="row"):
            rows.assemble(plan, blocks)


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_refuse_a_row_range_outside_their_arrays(engine, tmp_path):
    from nbsim.engines import params as P
    from nbsim.engines import registry
    _, plan = _plan("roi", tmp_path)
    ip, dp, vecs, mask = api.pack_plan(plan)
    arrays = (dp, vecs, plan.sources, plan.lattice_table, plan.first_lattice_table, plan.Fhkl,
              mask)

    def outputs(n):
        return (np.zeros((n, plan.fpixels), dtype=np.float32), np.zeros(n),
                np.zeros((n, 2), dtype=np.int64), np.zeros((n, 6)))
    for start, stop, n in ((5, 3, 0), (-1, 2, 3), (0, plan.spixels + 1, plan.spixels + 1),
                           (0, 4, 3)):
        ip2 = ip.copy()
        ip2[P.I_ROW_START], ip2[P.I_ROW_STOP] = start, stop
        with pytest.raises(ValueError):
            registry.run(engine, 1, ip2, *arrays, *outputs(n))


def test_pack_renders_every_row_unless_told(tmp_path):
    from nbsim.engines import params as P
    ip, _ = P.pack({"SPIXELS": 9, "FPIXELS": 4}, {})
    assert (ip[P.I_ROW_START], ip[P.I_ROW_STOP]) == (0, 9)
    ip, _ = P.pack({"SPIXELS": 9, "ROW_START": 2, "ROW_STOP": 5}, {})
    assert P.row_range(ip) == (2, 5)


def test_printout_trace_is_the_same_in_blocks():
    """-printout's per-pixel records (with a mid-frame trigger) do not depend on blocks."""
    plan = midframe_plan()
    whole = api.render(plan, engine="c", threads=2, trace=True, block_rows=plan.spixels)
    assert whole.engine == "numba" and whole.trace is not None
    for size in (1, 7):
        blocked = api.render(plan, engine="c", threads=1, trace=True, block_rows=size)
        _same(blocked, whole)
        assert blocked.trace.tobytes() == whole.trace.tobytes()


def test_printout_trace_under_fast_is_the_same_in_blocks():
    plan = make_plan(command_config(MIDFRAME.replace("{in}", gc.INPUTS).split() + ["-fast"],
                                    warn=lambda m: None)[0])
    whole = api.render(plan, engine="c", threads=2, trace=True, block_rows=plan.spixels)
    assert whole.engine == "numba" and whole.messages
    fields = api.TRACE_FIELDS
    seen = whole.trace[:, fields.index("seen_lattice")]
    assert seen.all()
    for size in (1, 7):
        blocked = api.render(plan, engine="c", threads=1, trace=True, block_rows=size)
        _same(blocked, whole)
        assert blocked.trace.tobytes() == whole.trace.tobytes()
