"""Engine selection: names, NBSIM_ENGINE, the numba -> c fallback, active()."""
import os
import subprocess
import sys

import pytest

import golden_cases as gc
from nbsim.engines import c_engine, registry
from nbsim.errors import NbsimError

ROOT = os.path.dirname(gc.HERE)
needs_c = pytest.mark.skipif(not c_engine.available()[0],
                             reason="the C extension is not built (pip install -e . builds it)")

# Runs nbsim's CLI in a fresh interpreter where "import numba" fails, as on a machine
# without Numba.
NO_NUMBA = """
import sys
sys.modules["numba"] = None          # any import of numba now raises ImportError
from nbsim.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_without_numba(args, cwd, env_extra=None, prelude=""):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NBSIM_ENGINE", None)
    env.update(env_extra or {})
    script = NO_NUMBA.replace("from nbsim.cli import main", prelude + "from nbsim.cli import main")
    return subprocess.run([sys.executable, "-c", script] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_unknown_engine_name_is_an_error():
    with pytest.raises(NbsimError, match="unknown engine 'gpu'"):
        registry.resolve("gpu")


def test_environment_variable_selects_engine(monkeypatch):
    monkeypatch.setenv("NBSIM_ENGINE", "numba")
    assert registry.resolve(None) == "numba"
    monkeypatch.setenv("NBSIM_ENGINE", "bogus")
    with pytest.raises(NbsimError):
        registry.resolve(None)


@needs_c
@pytest.mark.parametrize("engine", ["numba", "c"])
def test_active_reports_the_engine_that_ran(engine, tmp_path, capsys):
    case = gc.load_case("cubic_default_F")
    code, out = gc.run_in_process(case, str(tmp_path), extra_args=["-engine", engine])
    assert code == 0 and registry.active() == engine
    assert out.rstrip().splitlines()[-1] == "nbsim: rendered by the %s engine" % engine


@needs_c
def test_auto_falls_back_to_c_with_one_warning_when_numba_is_missing(tmp_path, monkeypatch):
    # a parity round crystal renders faster with Numba; without its start-up cost in
    # the estimate, "auto" wants Numba for this small job too
    case = gc.load_case("cubic_default_F")
    proc = run_without_numba(gc.args_for_mode(case) + ["-round_xtal"], str(tmp_path),
                             prelude="import nbsim.api\nnbsim.api.NUMBA_EXTRA_START_S = 0.0\n")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "Numba is not available" in line]
    assert len(warnings) == 1 and "using the C engine" in warnings[0]
    assert "rendered by the c engine" in proc.stdout


@needs_c
@pytest.mark.parametrize("name", ["cubic_default_F", "phi_from_zero_carryover",
                                  "interpolate_forced_out_of_range", "mask"])
def test_golden_parity_without_numba(name, tmp_path):
    case = gc.load_case(name)
    gc.prepare_workdir(case, str(tmp_path))
    proc = run_without_numba(gc.args_for_mode(case), str(tmp_path))
    problems = gc.compare(case, str(tmp_path), proc.returncode, proc.stdout)
    assert not problems, "\n".join(problems) + proc.stderr


def test_asking_for_numba_without_numba_is_an_error(tmp_path):
    proc = run_without_numba(gc.args_for_mode(gc.load_case("cubic_default_F"))
                             + ["-engine", "numba"], str(tmp_path))
    assert proc.returncode != 0
    err = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(err) == 1 and "-engine numba: not available here" in err[0]
    assert proc.stderr.rstrip().splitlines()[-1] == err[0] and "Traceback" not in proc.stderr
    assert os.listdir(str(tmp_path)) == []


def test_thread_count_follows_the_environment(monkeypatch):
    from nbsim.api import default_threads
    monkeypatch.delenv("NBSIM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("NBSIM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("NBSIM_THREADS", "many")
    assert default_threads() == 1


# What Numba concluded about SciPy's BLAS, and whether SciPy got loaded, in a fresh
# interpreter that imports nbsim's JIT module.
_BLAS_PROBE = """
import sys
import nbsim._jit
import numba.np.arraymath as arraymath
print("scipy" in sys.modules, arraymath._HAVE_BLAS)
"""


def _blas_probe(hide):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NBSIM_HIDE_SCIPY", None)
    env.pop("NBSIM_DISABLE_NUMBA", None)
    if hide:
        env["NBSIM_HIDE_SCIPY"] = "1"
    done = subprocess.run([sys.executable, "-c", _BLAS_PROBE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_command_line_numba_import_skips_scipy():
    pytest.importorskip("numba", reason="the SciPy shortcut concerns Numba's import only")
    # the CLI sets NBSIM_HIDE_SCIPY: Numba then neither loads SciPy nor claims BLAS
    assert _blas_probe(hide=True) == ["False", "False"]


def test_library_numba_import_keeps_scipy_blas():
    pytest.importorskip("numba", reason="the SciPy shortcut concerns Numba's import only")
    pytest.importorskip("scipy", reason="without SciPy, Numba has no BLAS to keep")
    # a library user's process is left alone: Numba's linear algebra keeps working
    assert _blas_probe(hide=False) == ["True", "True"]


def test_cli_sets_the_scipy_switch_for_its_own_process():
    code = ("import os, sys\nfrom nbsim.cli import main\n"
            "main(['-version'])\nprint(os.environ.get('NBSIM_HIDE_SCIPY'))")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NBSIM_HIDE_SCIPY", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.split()[-1] == "1", done.stdout + done.stderr


# ---------------------------------------------------------------------------
# "auto": the engine expected to finish first, from measured costs per class

def _plan(extra, pixels=64):
    from nbsim.cli import config_from_args
    from nbsim.plan import make_plan
    args = ("-cell 70 80 90 75 85 95 -lambda 1.0 -N 5 -default_F 100 -distance 100 "
            "-pixel 0.1 -detpixels %d " % pixels + extra).split()
    return make_plan(config_from_args(args)[0])


W2_EXTRA = ("-oversample 2 -mosaic 0.5 -mosaic_dom 10 -mosaic_seed 42 -hdivrange 0.3 "
            "-vdivrange 0.3 -hdivsteps 3 -vdivsteps 3 -square_div ")


@pytest.fixture
def both_engines(monkeypatch):
    """Both engines available, and Numba's start-up not yet paid in this process."""
    monkeypatch.setattr(registry, "c_status", lambda: (True, ""))
    monkeypatch.setattr(registry, "_numba_status", lambda: (True, None))
    monkeypatch.delitem(sys.modules, "nbsim.engines.numba_engine", raising=False)


@pytest.mark.parametrize("extra,pixels,threads", [
    ("", 64, 1),                                   # small: start-up decides
    (W2_EXTRA, 512, 2),                            # W2: parity square, a tie per evaluation
    (W2_EXTRA + "-fast", 2048, 1),                 # -fast: C's vector code
    (W2_EXTRA + "-round_xtal -fast", 2048, 1),
    (W2_EXTRA + "-hkl %s -interpolate" % os.path.join(gc.INPUTS, "wide.hkl"), 1024, 1),
    (W2_EXTRA + "-round_xtal", 256, 2),           # Numba's 10% do not pay its start-up
])
def test_auto_chooses_c(both_engines, extra, pixels, threads):
    from nbsim.api import choose_engine, engine_estimates
    plan = _plan(extra, pixels)
    est = engine_estimates(plan, threads)
    assert est["c"] <= est["numba"]
    assert choose_engine(plan, "auto", threads=threads) == "c"


@pytest.mark.parametrize("shape", ["-round_xtal", "-gauss_xtal", "-tophat_spots"])
def test_auto_chooses_numba_for_large_parity_jobs_where_it_renders_faster(both_engines,
                                                                         shape):
    from nbsim.api import choose_engine, engine_estimates
    plan = _plan(W2_EXTRA + shape, 2048)          # 1.5e9 evaluations
    est = engine_estimates(plan, 2)
    assert est["numba"] < est["c"]
    assert choose_engine(plan, "auto", threads=2) == "numba"
    # on 64 threads the saving per thread no longer covers Numba's start-up...
    assert choose_engine(plan, "auto", threads=64) == "c"
    # ...unless Numba is already loaded in this process
    sys.modules.setdefault("nbsim.engines.numba_engine", object())
    assert choose_engine(plan, "auto", threads=64) == "numba"
    # and a named engine is taken as asked
    assert choose_engine(plan, "c", threads=2) == "c"


def test_auto_estimates_follow_the_measured_table(both_engines):
    from nbsim import api
    plan = _plan(W2_EXTRA, 512)
    n = api.evaluations(plan)
    est = api.engine_estimates(plan, 2)
    c_ns, numba_ns = api._NS_PER_EVALUATION[(False, api.Shape.SQUARE)]
    assert est["c"] == pytest.approx(n / 2 * c_ns * 1e-9)
    assert est["numba"] == pytest.approx(api.NUMBA_EXTRA_START_S + n / 2 * numba_ns * 1e-9)
    # every shape, parity and -fast, has a row; C's -fast beats Numba's everywhere
    for fast in (False, True):
        for shape in api.Shape:
            c_ns, numba_ns = api._NS_PER_EVALUATION[(fast, shape)]
            assert c_ns > 0 and numba_ns > 0
            if fast:
                assert c_ns < numba_ns
