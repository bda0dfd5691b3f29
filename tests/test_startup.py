"""What the commands import and set up before they render: nothing a run does not use
(start-up time is most of a small job), and BLAS without its idle thread pool."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# libraries only some flags need (-nexusfile, -cbffile, -pngfile, -tifffile, -engine numba)
OPTIONAL = ("h5py", "hdf5plugin", "fabio", "PIL", "lxml", "tifffile", "numba", "scipy")
TINY = ("-cell 100 100 100 90 90 90 -lambda 6.2 -N 5 -default_F 100 -detpixels 64 "
        "-pixel 0.1 -distance 100 -floatfile float.bin -nonoise -noprogress -seed 1").split()


def _python(code, tmp_path, **env):
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full.pop("OPENBLAS_NUM_THREADS", None)
    full.update(env)
    done = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=full,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_command_modules_import_no_numpy(tmp_path):
    """numpy loads after the command has set OPENBLAS_NUM_THREADS (see cli.main)."""
    out = _python("import sys, nbsim.cli, nbsim.batch, nbsim.batch.runner\n"
                  "print(sorted(m for m in ('numpy',) + %r if m in sys.modules))" % (OPTIONAL,),
                  tmp_path)
    assert out.strip() == "[]"


@pytest.mark.parametrize("command", ["cli", "batch"])
def test_commands_set_one_blas_thread_before_numpy(command, tmp_path):
    main = "nbsim.cli.main" if command == "cli" else "nbsim.batch.runner.main"
    args = TINY if command == "cli" else ["no-such-job.toml"]
    out = _python("import os, sys, nbsim.cli, nbsim.batch.runner\n"
                  "seen = []\n"
                  "class Watch:\n"
                  "    def find_spec(self, name, path=None, target=None):\n"
                  "        if name == 'numpy' and not seen:\n"
                  "            seen.append(os.environ.get('OPENBLAS_NUM_THREADS'))\n"
                  "sys.meta_path.insert(0, Watch())\n"
                  "code = %s(%r)\n"
                  "import numpy\n"
                  "print(seen[0] if seen else 'none', os.environ.get('OPENBLAS_NUM_THREADS'))"
                  % (main, args), tmp_path, OMP_NUM_THREADS="2")
    before, after = out.splitlines()[-1].split()
    assert after == "1"
    if command == "cli":
        assert before == "1"         # the render imported numpy, after the setting


def test_a_plain_run_imports_no_optional_library(tmp_path):
    out = _python("import sys, nbsim.cli\n"
                  "assert nbsim.cli.main(%r) == 0\n"
                  "print(sorted(m for m in %r if m in sys.modules))" % (TINY, OPTIONAL),
                  tmp_path, NBSIM_ENGINE="c")
    assert out.strip().splitlines()[-1] == "[]"


def test_a_tiny_job_renders_on_one_thread_unless_told(monkeypatch):
    from nbsim import api
    from nbsim.cli import command_config
    from nbsim.plan import make_plan
    from nbsim.rows import RowRenderer
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("NBSIM_THREADS", raising=False)
    tiny = make_plan(command_config(TINY)[0])
    assert RowRenderer(tiny, engine="c").threads == 1
    assert RowRenderer(tiny, engine="c", threads=2).threads == 2      # asked for: kept
    big = make_plan(command_config(" ".join(TINY).replace("-detpixels 64", "-detpixels 1024")
                                   .split())[0])
    assert api.engine_estimates(big, threads=1, started=True)["c"] > api.ONE_THREAD_BELOW_S
    assert RowRenderer(big, engine="c").threads == 2
