"""Parity with nanoBragg.c on the vendored golden corpus (tests/golden).

Every case runs (1) through the nanoBragg command as its own process with the
default thread count, and (2) in this process with the Numba engine on one thread
and on two, so a thread-count dependence shows up as a failure. c_parity cases get
-c_parity; their __fixed twins run in the default (correct-physics) mode with the
same arguments. The C engine runs the same corpus in tests/test_c_engine.py.
"""
import os
import shutil
import sys

import pytest

import golden_cases as gc

CASES = gc.case_names()
ROOT = os.path.dirname(gc.HERE)


def _command():
    exe = shutil.which("nanoBragg")
    if exe:
        return [exe], None
    # not installed: run the package from this checkout
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return [sys.executable, "-m", "nbsim"], env


@pytest.mark.parametrize("name", CASES)
def test_golden_command(name, tmp_path):
    case = gc.load_case(name)
    cmd, env = _command()
    env = dict(env or os.environ)
    env.pop("NBSIM_ENGINE", None)
    code, out = gc.run_command(case, str(tmp_path), env=env, command=cmd)
    problems = gc.compare(case, str(tmp_path), code, out)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", CASES)
def test_golden_numba_threads(name, threads, tmp_path):
    case = gc.load_case(name)
    code, out = gc.run_in_process(case, str(tmp_path),
                                  extra_args=["-engine", "numba", "-threads", str(threads)])
    problems = gc.compare(case, str(tmp_path), code, out)
    assert not problems, "\n".join(problems)


def test_c_parity_changes_only_the_defective_cases():
    """The default mode must differ from -c_parity exactly where the defect bites."""
    fixed = {n[:-len("__fixed")] for n in CASES if n.endswith("__fixed")}
    flagged = {n for n in CASES if gc.load_case(n)["flags"].get("c_parity")}
    assert fixed == flagged and fixed, (fixed, flagged)
    for n in fixed:
        assert gc.golden_file(n, "float.bin") != gc.golden_file(n + "__fixed", "float.bin")
