"""Tests of nbsim.reference: building a C program with cffi and running its main.

A tiny stand-in "nanoBragg.c" written here exercises the machinery (needs cffi and a
C compiler).  The comparison with the real program runs only when the user points
NB_C_SOURCE (and NB_C_BIN) at their own nanoBragg.
"""
import os
import subprocess
import sys

import pytest

from nbsim import reference

FAKE_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int calls = 0;   /* static state: must start fresh in every run */

int main(int argc, char **argv)
{
    int i;
    FILE *f;
    ++calls;
    printf("calls=%d\n", calls);
    printf("argc=%d\n", argc);
    for (i = 0; i < argc; ++i) printf("argv[%d]=%s\n", i, argv[i]);
    printf("terminated=%s\n", argv[argc] == NULL ? "yes" : "no");
    fprintf(stderr, "to-stderr\n");
    if (argc > 1 && strcmp(argv[1], "-fail") == 0) { printf("failing now\n"); exit(9); }
    if (argc > 2 && strcmp(argv[1], "-ret") == 0) return atoi(argv[2]);
    if (argc > 1 && strcmp(argv[1], "-sleep") == 0) { sleep(30); return 0; }
    if (argc > 1 && strcmp(argv[1], "-crash") == 0) { abort(); }
    f = fopen("written.txt", "w");
    fprintf(f, "hello from %s\n", argv[0]);
    fclose(f);
    printf("no newline at the end");
    return 0;
}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Cache folder and fake source, built once for the module."""
    root = tmp_path_factory.mktemp("reference")
    old = os.environ.get("NBSIM_CACHE_DIR")
    os.environ["NBSIM_CACHE_DIR"] = str(root / "cache")
    src = root / "nanoBragg.c"
    src.write_text(FAKE_SOURCE)
    try:
        path = reference.build_reference(src)
        yield src, path
    finally:
        if old is None:
            os.environ.pop("NBSIM_CACHE_DIR", None)
        else:
            os.environ["NBSIM_CACHE_DIR"] = old


def test_build_lands_in_cache_named_by_source_hash(built):
    src, path = built
    digest = reference.source_digest(src.read_bytes())
    assert path.is_file()
    assert path.parent == reference.cache_root() / digest
    assert reference.cache_root() == __import__("pathlib").Path(os.environ["NBSIM_CACHE_DIR"]) / "reference"
    assert reference.module_path(src) == path
    assert (path.parent / "build.log").is_file()
    # no build leftovers (the generated C file) are kept next to the module
    assert not list(path.parent.glob("*.c"))


def test_main_is_renamed(built):
    src, _path = built
    module = reference._load(src)
    names = dir(module.lib)
    assert "nbref_main" in names and "nbref_flush" in names and "nbref_prepare" in names
    assert "main" not in names


def test_argv_cwd_stdout_files(built, tmp_path):
    src, _ = built
    run = reference.run_reference(["-N", "5", "a b"], tmp_path, source=src)
    assert run.exit_code == 0
    out = run.stdout
    assert "argc=4\n" in out
    assert "argv[0]=nanoBragg\n" in out and "argv[1]=-N\n" in out
    assert "argv[2]=5\n" in out and "argv[3]=a b\n" in out
    assert "terminated=yes" in out
    # stdout is fully buffered (flushed at the end), stderr is not, as for a binary
    # writing to a file: the stderr line comes first
    assert out.startswith("to-stderr\ncalls=1\n")
    assert out.endswith("no newline at the end")  # flushed after main returned
    assert run.files == ["written.txt"]
    assert (tmp_path / "written.txt").read_text() == "hello from nanoBragg\n"
    assert not os.path.exists("written.txt") or os.path.samefile(".", tmp_path)
    assert run.wall_seconds > 0


def test_exit_call_is_captured_and_caller_survives(built, tmp_path):
    src, _ = built
    run = reference.run_reference(["-fail"], tmp_path, source=src)
    assert run.exit_code == 9
    assert "failing now" in run.stdout  # exit() flushed stdout
    assert run.files == []
    # and we are still here, able to run again
    assert reference.run_reference(["-ret", "3"], tmp_path, source=src).exit_code == 3


def test_signal_death_is_negative(built, tmp_path):
    src, _ = built
    run = reference.run_reference(["-crash"], tmp_path, source=src)
    assert run.exit_code == -6  # SIGABRT


def test_static_state_is_fresh_each_run(built, tmp_path):
    src, _ = built
    for _ in range(2):
        run = reference.run_reference(["-ret", "0"], tmp_path, source=src)
        assert "calls=1\n" in run.stdout


def test_only_changed_files_reported(built, tmp_path):
    src, _ = built
    (tmp_path / "other.txt").write_text("pre-existing\n")
    run = reference.run_reference([], tmp_path, source=src)
    assert run.files == ["written.txt"]


def test_timeout_kills_the_child(built, tmp_path):
    src, _ = built
    with pytest.raises(TimeoutError):
        reference.run_reference(["-sleep"], tmp_path, source=src, timeout=0.3)


def test_source_from_environment(built, tmp_path, monkeypatch):
    src, _ = built
    monkeypatch.setenv("NB_C_SOURCE", str(src))
    run = reference.run_reference(["-ret", "4"], tmp_path)
    assert run.exit_code == 4


def test_cache_is_reused_and_keyed_by_source(built, tmp_path, monkeypatch):
    src, path = built
    mtime = path.stat().st_mtime_ns
    compiled = []
    real_compile = reference._compile

    def counting_compile(*args, **kwargs):
        compiled.append(args[0])
        return real_compile(*args, **kwargs)

    monkeypatch.setattr(reference, "_compile", counting_compile)
    monkeypatch.setattr(reference, "_LOADED", {})  # force a fresh load from disk
    assert reference.run_reference(["-ret", "0"], tmp_path, source=src).exit_code == 0
    assert compiled == [] and path.stat().st_mtime_ns == mtime
    # a copy elsewhere with the same bytes shares the cache entry
    copy = tmp_path / "copy_of_nanoBragg.c"
    copy.write_bytes(src.read_bytes())
    assert reference.build_reference(copy) == path and compiled == []
    # any change to the source gives a new entry and a new build
    changed = tmp_path / "changed.c"
    changed.write_text(FAKE_SOURCE + "\n/* edited */\n")
    new_path = reference.build_reference(changed)
    assert compiled == [changed.resolve()]
    assert new_path != path and new_path.parent.name == reference.source_digest(changed.read_bytes())
    assert reference.run_reference(["-ret", "5"], tmp_path, source=changed).exit_code == 5


def test_missing_source_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("NB_C_SOURCE", raising=False)
    with pytest.raises(reference.ReferenceBuildError, match="NB_C_SOURCE"):
        reference.resolve_source()
    with pytest.raises(reference.ReferenceBuildError, match="not found"):
        reference.run_reference([], tmp_path, source=tmp_path / "nope.c")


def test_missing_compiler_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    src = tmp_path / "x.c"
    src.write_text("int main(void) { return 0; }\n")
    with pytest.raises(reference.ReferenceBuildError, match="no C compiler"):
        reference.build_reference(src)


def test_missing_cffi_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cffi", None)
    with pytest.raises(reference.ReferenceBuildError, match="cffi"):
        reference._require_cffi()


def test_compile_error_reports_the_log(monkeypatch, tmp_path):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "broken.c"
    src.write_text("int main(int argc, char **argv) { return undeclared_thing; }\n")
    with pytest.raises(reference.ReferenceBuildError) as info:
        reference.build_reference(src)
    assert "undeclared_thing" in str(info.value)
    assert "broken.c" in str(info.value)  # messages point at the user's file
    assert not list((tmp_path / "cache").rglob("*.so"))


def test_no_main_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "lib.c"
    src.write_text("int helper(void) { return 1; }\n")
    with pytest.raises(reference.ReferenceBuildError, match="no main"):
        reference.build_reference(src)


@pytest.mark.skipif(not (os.environ.get("NB_C_SOURCE") and os.environ.get("NB_C_BIN")),
                    reason="NB_C_SOURCE and NB_C_BIN are not both set: point them at your "
                           "own nanoBragg.c and a binary built from it")
def test_in_process_reference_matches_the_binary(tmp_path):
    args = ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 6.2 -distance 100 "
            "-detpixels 64 -pixel 0.1 -seed 1").split()
    a = tmp_path / "inproc"
    b = tmp_path / "binary"
    a.mkdir()
    b.mkdir()
    run = reference.run_reference(args, a, source=os.environ["NB_C_SOURCE"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([os.environ["NB_C_BIN"], *args], cwd=b, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert run.exit_code == proc.returncode == 0
    assert run.files == sorted(os.listdir(b))
    for name in run.files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert run.stdout == proc.stdout.decode("utf-8", errors="replace")
