"""Config.from_args / Config.to_args: the command line and the API share one Config."""
import dataclasses
import math
import random

import numpy as np
import pytest

import golden_cases as gc
from nbsim import NbsimError
from nbsim.cli import config_from_args
from nbsim.config import GROUPS, Config, Convention, Pivot
from nbsim.config_args import _build, _flat, config_to_args, differing_fields

IN = gc.INPUTS


def quiet(_message):
    pass


def roundtrip(cfg):
    args = cfg.to_args()
    back = Config.from_args(args, warn=quiet)
    assert differing_fields(cfg, back) == [], (args, differing_fields(cfg, back))
    return args


@pytest.mark.parametrize("name", gc.case_names())
def test_every_golden_command_line_round_trips(name):
    case = gc.load_case(name)
    cfg = Config.from_args(gc.args_for_mode(case), warn=quiet)
    roundtrip(cfg)
    # and the command's own parse of the same words is the same Config
    cli_cfg = config_from_args(gc.args_for_mode(case), warn=quiet)[0]
    assert differing_fields(cli_cfg, cfg) == []


def _num(r, lo, hi):
    # awkward doubles: many digits, so the flag arithmetic (mm / 1000, degrees / RTD)
    # has to be inverted exactly
    return repr(r.uniform(lo, hi))


def random_args(r):
    a = ["-cell"] + [_num(r, 40, 120) for _ in range(3)] + [_num(r, 70, 110) for _ in range(3)]
    if r.random() < 0.3:
        a = ["-mat", IN + "/tric.mat"]
    a += r.choice([["-default_F", _num(r, 1, 200)], ["-hkl", IN + "/cubic.hkl"],
                   ["-hkl", IN + "/cubic.hkl", "-default_F", "3", "-dump", "x.bin"]])
    a += r.choice([["-misset"] + [_num(r, -40, 40) for _ in range(3)], [],
                   ["-misset", "random", "-misset_seed", str(r.randint(1, 99))]])
    a += r.choice([["-N", str(r.randint(1, 9))],
                   ["-Na", "2", "-Nb", "3", "-Nc", "4"], ["-xtalsize", _num(r, 0.001, 0.01)]])
    a += r.choice([["-lambda", _num(r, 0.5, 3)], ["-energy", _num(r, 5000, 15000)]])
    masked = r.random() < 0.1       # the mask's header sets the detector size
    if masked:
        a += ["-mask", IN + "/mask.img"]
    else:
        a += r.choice([["-detpixels", str(r.randint(16, 300))],
                       ["-detpixels_f", "100", "-detpixels_s", "80"], ["-detsize", _num(r, 5, 50)]])
    a += ["-pixel", _num(r, 0.05, 0.2)]
    a += r.choice([["-distance", _num(r, 50, 300)], ["-close_distance", _num(r, 50, 300)],
                   ["-distance", _num(r, 50, 300), "-close_distance", _num(r, 50, 300)]])
    a += r.choice([[], ["-mosflm"], ["-xds"], ["-adxv"], ["-denzo"], ["-dials"],
                   ["-fdet_vector", "0", "0", "1", "-sdet_vector", "0", "-1", "0"],
                   ["-twotheta_axis", "0", "0", "-1"], ["-pix0_vector", _num(r, 0.05, 0.1),
                                                        "0.01", "-0.01"],
                   ["-beam_vector", "1", "0", _num(r, 0, 0.01)], ["-spindle_axis", "0", "1", "0"]])
    for flags in (["-Xbeam", "-Ybeam"], ["-Xclose", "-Yclose"], ["-ORGX", "-ORGY"]):
        if r.random() < 0.2:
            for f in flags:
                a += [f, _num(r, 1, 20)]
    if r.random() < 0.3:
        a += ["-twotheta", _num(r, -20, 20)]
    if r.random() < 0.3:
        a += ["-detector_rotx", _num(r, -5, 5), "-detector_rotz", _num(r, -5, 5)]
    if r.random() < 0.15:
        a += ["-pivot", r.choice(["sample", "beam"])]
    if r.random() < 0.4:
        a += ["-phi", _num(r, -10, 10), "-osc", _num(r, 0, 3), "-phisteps", str(r.randint(1, 5))]
    if r.random() < 0.2:
        a += ["-phistep", _num(r, 0.01, 0.5)]
    if r.random() < 0.3:
        a += ["-mosaic", _num(r, 0, 1), "-mosaic_dom", str(r.randint(1, 9)),
              "-mosaic_seed", str(r.randint(-999, 999))]
    if r.random() < 0.3:
        a += ["-hdivrange", _num(r, 0, 1), "-vdivstep", _num(r, 0.01, 0.1), "-divsteps", "3"]
        a += r.choice([[], ["-square_div"], ["-round_div"]])
    if r.random() < 0.3:
        a += ["-divergence", _num(r, 0, 1)]
    if r.random() < 0.2:
        a += ["-dispersion", _num(r, 0, 5), "-dispsteps", str(r.randint(1, 4))]
    if r.random() < 0.3:
        a += r.choice([["-detector_abs", _num(r, 100, 900)], ["-detector_abs", "inf"],
                       ["-detector_abs", "0"]])
        a += ["-detector_thick", _num(r, 10, 500), "-thicksteps", str(r.randint(1, 4))]
    if r.random() < 0.2:
        a += ["-flux", _num(r, 1e10, 1e13), "-exposure", _num(r, 0.1, 2), "-beamsize",
              _num(r, 0.001, 0.1)]
    if r.random() < 0.2:
        a += ["-fluence", _num(r, 1e20, 1e30)]
    a += r.choice([[], ["-polar", _num(r, 0, 1)], ["-nopolar"], ["-polar", "0.5", "-nopolar"],
                   ["-nopolar", "-polar", "0.7"]])
    a += r.choice([[], ["-round_xtal"], ["-gauss_xtal", "-fudge", _num(r, 0.5, 2)],
                   ["-tophat_spots"], ["-square_xtal"]])
    a += r.choice([[], ["-interpolate"], ["-nointerpolate"]])
    if r.random() < 0.2:
        a += ["-oversample", str(r.randint(1, 4)), "-oversample_thick", "-oversample_omega"]
    if r.random() < 0.2:
        a += ["-roi", "1", "10", "2", "12"]
    if r.random() < 0.2:
        a += ["-dmin", _num(r, 1, 10), "-water", _num(r, 1, 100)]
    if r.random() < 0.15:
        a += ["-curved_det", "-point_pixel"]
    if r.random() < 0.2:
        a += ["-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "n.img", "-pgmfile",
              "p.pgm", "-tifffile", "t.tif"]
    a += r.choice([[], ["-nonoise"], ["-nopgm"], ["-nonoise", "-noisefile", "n2.img"],
                   ["-scale", _num(r, 1, 100), "-pgmscale", _num(r, 1, 10), "-adc", "10"],
                   ["-noprogress"], ["-printout"], ["-sourcefile", IN + "/sources.txt"],
                   ["-stol", "s.txt"], ["-4stol", "s.txt"], ["-Q", "q.txt"], ["-coherent"]])
    a += r.choice([[], ["-c_parity"], ["-fast"]])
    a += r.choice([["-seed", str(r.randint(-99999, 99999))], []])
    return a


@pytest.mark.parametrize("seed", range(60))
def test_random_command_lines_round_trip(seed):
    r = random.Random(seed)
    args = random_args(r)
    cfg = Config.from_args(args, warn=quiet)
    roundtrip(cfg)


def test_values_set_in_python_round_trip_or_are_refused():
    cfg = Config.from_args("-cell 100 100 100 90 90 90 -default_F 1 -seed 4")
    r = random.Random(7)
    for _ in range(200):
        changed = cfg.replace(distance=r.uniform(0.05, 0.3), phi0=r.uniform(-1, 1),
                              lambda0=r.uniform(0.5e-10, 2e-10), mu=r.uniform(100, 5000))
        try:
            args = changed.to_args()
        except NbsimError as exc:       # a double the flag arithmetic cannot produce
            assert "no exact command-line form" in str(exc)
            continue
        assert differing_fields(Config.from_args(args, warn=quiet), changed) == []


def test_fields_with_no_flag_and_in_memory_inputs_are_named():
    cfg = Config.from_args("-cell 100 -default_F 1 -seed 1")
    with pytest.raises(NbsimError, match="thickstep has no nanoBragg flag"):
        cfg.replace(thickstep=1e-6).to_args()
    with pytest.raises(NbsimError, match="mask array has no command-line form"):
        cfg.replace(mask=np.ones((1024, 1024), dtype=np.uint16)).to_args()
    with pytest.raises(NbsimError, match="interpolate"):
        cfg.replace(interpolate=7).to_args()
    with pytest.raises(NbsimError, match="structure_factors: held in memory"):
        from nbsim.structure_factors import StructureFactors
        cfg.replace(structure_factors=StructureFactors([[1, 2, 3]], [4.0])).to_args()


def test_order_sensitive_flags_are_written_in_a_working_order():
    # the command line sets these in an order that a naive writer would undo
    for words in ("-twotheta_axis 0 0 -1 -twotheta 12.5",
                  "-detector_abs inf -detector_thick 100",
                  "-polar 0.25 -nopolar",
                  "-noisefile n.img -nonoise -pgmscale 3 -nopgm",
                  "-xds -distance 120",
                  "-misset random -misset_seed 11",
                  "-fdet_vector 0 0 1 -mosflm"):
        cfg = Config.from_args("-cell 90 -default_F 1 -seed 2 " + words, warn=quiet)
        roundtrip(cfg)


def test_from_args_refuses_run_options_and_takes_strings_or_numbers():
    with pytest.raises(NbsimError, match="-engine: a run option"):
        Config.from_args(["-cell", "100", "-default_F", "1", "-engine", "c"])
    with pytest.raises(NbsimError, match="-threads: a run option"):
        Config.from_args("-cell 100 -default_F 1 -threads 2")
    with pytest.raises(NbsimError, match="not a setting"):
        Config.from_args(["-h"])
    with pytest.raises(NbsimError, match="not a command-line word"):
        Config.from_args(["-cell", None])
    a = Config.from_args(["-cell", 100, 100.5, 100, 90, 90, 90, "-N", 3, "-default_F", 1.0,
                          "-seed", 1])
    b = Config.from_args("-cell 100 100.5 100 90 90 90 -N 3 -default_F 1.0 -seed 1")
    assert differing_fields(a, b) == []
    assert a.crystal.dump_file is None            # no implicit Fdump.bin


def test_unused_misset_seed_does_not_make_configs_differ():
    a = Config.from_args("-cell 100 -default_F 1 -seed 1")
    assert a.crystal.misset_seed == 0
    cli = config_from_args("-cell 100 -default_F 1 -seed 1".split(), warn=quiet)[0]
    assert differing_fields(a, cli) == []          # the command's time seed is inert here


def test_every_config_field_is_written_by_to_args():
    """A field added to Config without a flag here would silently not round-trip."""
    import inspect
    import nbsim.config_args as ca
    from nbsim import cli
    source = inspect.getsource(ca)
    inert = set(ca._NO_FLAG) | {"mask", "mask_file", "pivot", "misset_seed", "seed",
                                "convention", "misset_random", "user_cell"}
    inert |= set(getattr(cli, "OUTPUT_FILE_FLAGS", {}).values())   # written from cli's table
    for gcls in GROUPS.values():
        for f in dataclasses.fields(gcls):
            if f.name in inert:
                continue
            assert '"%s"' % f.name in source, "to_args does not write %s" % f.name


def test_builder_is_quiet_for_the_defaults():
    base = Config.from_args([], warn=quiet)
    b = _build(base, base, None)
    assert b.words == []
    assert isinstance(_flat(base)["convention"], Convention)
    assert _flat(base)["pivot"] == Pivot.BEAM
    assert config_to_args(base) == ["-seed", str(-base.noise.seed)]
    assert not math.isnan(base.detector.distance)


def test_work_and_table_caps_round_trip():
    cfg = Config.from_args("-cell 100 -default_F 1 -seed 1 -max_evaluations 1e9 "
                           "-max_table_gb inf".split(), warn=quiet)
    assert cfg.sampling.max_evaluations == 1e9 and math.isinf(cfg.sampling.max_table_gb)
    args = roundtrip(cfg)
    assert "-max_evaluations" in args and "-max_table_gb" in args
