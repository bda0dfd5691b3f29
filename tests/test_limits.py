"""Caps on a job's total work and on its tables: one-line errors that name the product,
its value and how to raise the cap; defaults far above every golden case and benchmark."""
import os
import sys
import time

import pytest

import golden_cases as gc
from nbsim import api, cli, limits
from nbsim.cli import command_config
from nbsim.errors import NbsimError
from nbsim.plan import make_plan

ROOT = os.path.dirname(gc.HERE)
BASE = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 6.2 -seed 1".split()
OUTS = "-floatfile f.bin -intfile i.img -noisefile n.img -pgmfile p.pgm".split()


def run(args, capsys):
    """The command in the current folder, which it leaves empty again."""
    code = cli.main(args + OUTS)
    out, err = capsys.readouterr()
    if code == 0:
        for f in OUTS[1::2]:
            os.unlink(f)
    return code, out, err


def _one_error(code, err):
    assert code != 0
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert not any(os.path.exists(f) for f in ("f.bin", "i.img", "n.img", "p.pgm", "Fdump.bin"))
    return lines[0]


def test_a_million_by_a_million_steps_is_refused_at_once(capsys, workdir):
    """The issue's example: each count passes its own cap, the product does not."""
    started = time.monotonic()
    code, _, err = run(BASE + "-detpixels 64 -phisteps 1000000 -osc 1 -mosaic 1 "
                              "-mosaic_dom 1000000".split(), capsys)
    line = _one_error(code, err)
    assert time.monotonic() - started < 30
    assert "1000000 phi steps x 1000000 mosaic domains" in line and "144 TB" in line
    assert "-max_table_gb" in line and "NBSIM_MAX_TABLE_GB" in line


def test_work_cap_names_the_product_and_how_to_raise_it(capsys, workdir):
    args = BASE + "-detpixels 64 -oversample 2 -phisteps 10 -osc 1 -mosaic 1 -mosaic_dom 20".split()
    code, _, err = run(args + ["-max_evaluations", "1e6"], capsys)
    line = _one_error(code, err)
    assert ("4096 pixels x 4 sub-pixels (oversample 2 squared) x 1 sensor layers x 1 sources "
            "x 10 phi steps x 20 mosaic domains = 3.277e+06 inner evaluations") in line
    assert "-max_evaluations" in line and "NBSIM_MAX_EVALUATIONS" in line
    assert run(args + ["-max_evaluations", "3.3e6", "-noprogress"], capsys)[0] == 0
    assert run(args + ["-max_evaluations", "inf", "-noprogress"], capsys)[0] == 0


def test_the_roi_is_what_counts(capsys, workdir):
    args = BASE + "-detpixels 64 -oversample 1 -max_evaluations 100".split()
    assert run(args + ["-roi", "0", "9", "0", "9", "-noprogress"], capsys)[0] == 0
    code, _, err = run(args + ["-roi", "0", "10", "0", "9"], capsys)
    assert "110 pixels" in _one_error(code, err)


def test_environment_sets_the_caps_and_a_flag_wins(capsys, workdir, monkeypatch):
    args = BASE + "-detpixels 64 -oversample 1 -noprogress".split()
    monkeypatch.setenv(limits.ENV_EVALUATIONS, "4000")
    code, _, err = run(args, capsys)
    assert "over the cap of 4000" in _one_error(code, err)
    assert run(args + ["-max_evaluations", "5000"], capsys)[0] == 0
    monkeypatch.delenv(limits.ENV_EVALUATIONS)
    monkeypatch.setenv(limits.ENV_TABLE_GB, "1e-9")
    code, _, err = run(args, capsys)
    assert "tables too large" in _one_error(code, err)
    monkeypatch.setenv(limits.ENV_TABLE_GB, "lots")
    code, _, err = run(args, capsys)
    assert "NBSIM_MAX_TABLE_GB: expected a positive number" in _one_error(code, err)


def test_an_hkl_file_with_a_huge_index_range_is_refused_before_allocation(capsys, workdir):
    with open("wide.hkl", "w") as fh:
        fh.write("-2000 -2000 -2000 1\n2000 2000 2000 1\n")
    code, _, err = run(BASE + ["-hkl", "wide.hkl", "-detpixels", "8"], capsys)
    line = _one_error(code, err)
    assert "wide.hkl" in line and "4002 x 4002 x 4002" in line and "-max_table_gb" in line


@pytest.mark.parametrize("text", ["nan", "0", "-1", "1e", "", "\uff15", "1,5", "inf x"])
def test_bad_cap_values_are_refused(text, capsys, workdir):
    code, _, err = run(BASE + ["-detpixels", "8", "-max_table_gb", text], capsys)
    assert "-max_table_gb" in _one_error(code, err)


def test_parse_limit_reads_numbers_and_inf():
    assert limits.parse_limit("x", "1e14") == 1e14
    assert limits.parse_limit("x", " 2.5 ") == 2.5
    assert limits.parse_limit("x", "inf") == float("inf")
    with pytest.raises(NbsimError, match="^x: "):
        limits.parse_limit("x", "-inf")


def test_help_documents_the_caps(capsys):
    code = cli.main(["-h"])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("-max_evaluations", "-max_table_gb", "NBSIM_MAX_EVALUATIONS",
                 "NBSIM_MAX_TABLE_GB", "1e14", "32 GB"):
        assert word in out


def _table_bytes(plan):
    return (plan.lattice_table.nbytes * 2 + plan.mosaic_umats.nbytes + plan.sources.nbytes
            + plan.Fhkl.nbytes)


def test_golden_cases_and_benchmarks_are_far_inside_the_defaults(tmp_path, monkeypatch):
    for var in (limits.ENV_EVALUATIONS, limits.ENV_TABLE_GB):
        monkeypatch.delenv(var, raising=False)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import run as bench
    finally:
        sys.path.pop(0)
    cases = [gc.load_case(n) for n in gc.case_names()]
    jobs = [(c, gc.args_for_mode(c)) for c in cases if not c["flags"].get("expect_error")]
    jobs += [({"flags": {}}, bench.workload_args(w)) for w in ("W1", "W2", "W3", "tiny")]
    monkeypatch.chdir(tmp_path)
    worst_work = worst_tables = 0.0
    for case, args in jobs:
        gc.prepare_workdir(case, str(tmp_path))
        plan = make_plan(command_config(args, warn=lambda m: None)[0])
        worst_work = max(worst_work, api.evaluations(plan))
        worst_tables = max(worst_tables, _table_bytes(plan))
    assert 1e7 < worst_work < limits.DEFAULT_MAX_EVALUATIONS / 1e5
    assert worst_tables < limits.DEFAULT_MAX_TABLE_GB * 1e9 / 1e3
