"""nbsim._jit: where compiled kernels are cached, and the first compile announcing itself."""
import os
import subprocess
import sys
import textwrap

import pytest

from nbsim import _jit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_numba = pytest.mark.skipif(not _jit.HAVE_NUMBA, reason="Numba is not installed")


@pytest.fixture
def fresh_choice(monkeypatch):
    monkeypatch.setattr(_jit, "_cache_choice", {})
    monkeypatch.delenv("NBSIM_CACHE_DIR", raising=False)
    if _jit.HAVE_NUMBA:
        monkeypatch.setattr(_jit._numba.config, "CACHE_DIR", "")


@needs_numba
def test_a_writable_package_folder_keeps_numbas_own_place(fresh_choice, tmp_path):
    assert _jit.kernel_cache_dir(str(tmp_path / "mod.py")) is None


@needs_numba
def test_a_read_only_install_caches_in_nbsims_user_folder(fresh_choice, monkeypatch, tmp_path):
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    package = str(tmp_path / "site-packages" / "nbsim")
    monkeypatch.setattr(_jit, "_writable", lambda folder: not folder.startswith(package))
    assert _jit.kernel_cache_dir(package + "/kernel.py") == str(home / "nbsim" / "numba")
    # nothing writable at all: compile every time rather than fail to import
    monkeypatch.setattr(_jit, "_cache_choice", {})
    monkeypatch.setattr(_jit, "_writable", lambda folder: False)
    assert _jit.kernel_cache_dir(package + "/kernel.py") == ""


@needs_numba
def test_user_settings_win(fresh_choice, monkeypatch, tmp_path):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "mine"))
    assert _jit.kernel_cache_dir(__file__) == str(tmp_path / "mine" / "numba")
    monkeypatch.setattr(_jit, "_cache_choice", {})
    monkeypatch.setattr(_jit._numba.config, "CACHE_DIR", str(tmp_path / "numba_dir"))
    assert _jit.kernel_cache_dir(__file__) is None      # NUMBA_CACHE_DIR: Numba decides


MODULE = textwrap.dedent("""
    import sys
    import numpy as np
    from nbsim._jit import njit, compile_with_notice

    @njit
    def triple(a):
        out = 0.0
        for x in a:
            out += 3.0 * x
        return out

    args = (np.arange(5.0),)
    compile_with_notice(triple, args)
    assert triple(*args) == 30.0
    print(triple.stats.cache_hits and "hit" or "miss")
""")


def _run(tmp_path, notice_after):
    env = dict(os.environ, NBSIM_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=ROOT,
               NBSIM_COMPILE_NOTICE_AFTER=str(notice_after))
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.run([sys.executable, str(tmp_path / "kernels_mod.py")], env=env,
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))


@needs_numba
def test_the_first_compile_says_so_and_later_runs_load_quietly(tmp_path):
    (tmp_path / "kernels_mod.py").write_text(MODULE)
    first = _run(tmp_path, 0)
    assert first.returncode == 0, first.stderr
    assert "nbsim: compiling kernels, once, ~" in first.stderr
    assert str(tmp_path / "cache" / "numba") in first.stderr
    assert "nbsim: kernels compiled in" in first.stderr
    assert os.listdir(tmp_path / "cache" / "numba")          # the cache is where it said
    assert (tmp_path / "cache" / _jit._TIMING_FILE).exists()
    second = _run(tmp_path, 5)
    assert second.returncode == 0, second.stderr
    assert "compiling" not in second.stderr
    assert second.stdout.strip() == "hit"


def test_without_numba_the_helpers_step_aside(tmp_path):
    code = ("from nbsim import _jit\n"
            "f = _jit.njit(lambda x: x + 1)\n"
            "assert not _jit.HAVE_NUMBA and f(1) == 2\n"
            "_jit.compile_with_notice(f, (1,))\n"
            "print('ok')\n")
    env = dict(os.environ, NBSIM_DISABLE_NUMBA="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
