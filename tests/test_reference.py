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


# ---------------------------------------------------------------------------
# the cache: nothing is loaded that does not verify
# ---------------------------------------------------------------------------

def _fresh_source(tmp_path, tag):
    """A source of its own (so its module is new to this process), in a private cache."""
    src = tmp_path / ("nb_%s.c" % tag)
    src.write_text(FAKE_SOURCE + "\n/* %s */\n" % tag)
    return src


def _run_in_child(src, cache, workdir, env_extra=None):
    """Load and run the reference for ``src`` in a fresh interpreter (a planted module
    that did get loaded would then run its constructor there, not in the test)."""
    code = ("import sys; from nbsim import reference\n"
            "r = reference.run_reference(['-ret', '7'], sys.argv[2], source=sys.argv[1])\n"
            "print('EXIT', r.exit_code)\n")
    env = dict(os.environ, NBSIM_CACHE_DIR=str(cache), **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code, str(src), str(workdir)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_manifest_records_recipe_and_module_digest(tmp_path, monkeypatch):
    import hashlib
    import json
    import stat
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _fresh_source(tmp_path, "manifest")
    path = reference.build_reference(src)
    manifest = json.loads(path.with_name(path.name.split(".")[0] + ".json").read_text())
    recipe = manifest["recipe"]
    assert recipe["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert recipe["flags"] == reference.COMPILE_ARGS
    assert recipe["compiler"]["version"] != "unavailable"
    assert manifest["module_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stat.S_IMODE((tmp_path / "cache" / "reference").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def _truncate(module, _manifest):
    module.write_bytes(module.read_bytes()[:1000])


def _flip_a_byte(module, _manifest):
    data = bytearray(module.read_bytes())
    data[len(data) // 2] ^= 0xFF
    module.write_bytes(bytes(data))          # same size, other bytes


def _garbage_manifest(_module, manifest):
    manifest.write_bytes(b"\x00\xff{ not json")


def _no_manifest(_module, manifest):
    manifest.unlink()


def _manifest_is_a_folder(_module, manifest):
    manifest.unlink()
    manifest.mkdir()


def _module_is_a_link(module, _manifest):
    copy = module.with_name("elsewhere.so")
    module.rename(copy)
    module.symlink_to(copy)


def _module_writable_by_group(module, _manifest):
    module.chmod(0o775)


def _manifest_of_another_compiler(_module, manifest):
    import json
    data = json.loads(manifest.read_text())
    data["recipe"]["compiler"]["version"] = "gcc (other) 1.0"
    manifest.write_text(json.dumps(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte, _garbage_manifest, _no_manifest,
                                    _manifest_is_a_folder, _module_is_a_link,
                                    _module_writable_by_group, _manifest_of_another_compiler])
def test_an_entry_that_does_not_verify_is_rebuilt(tmp_path, monkeypatch, capfd, damage):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _fresh_source(tmp_path, "damage")
    path = reference.build_reference(src)
    manifest = path.with_name(path.name.split(".")[0] + ".json")
    damage(path, manifest)
    with pytest.raises(Exception):
        reference._verify(reference._prepare(src)[2])
    capfd.readouterr()
    assert reference.build_reference(src) == path
    assert "did not verify" in capfd.readouterr().err
    reference._verify(reference._prepare(src)[2])      # verifies again, nothing raised
    assert path.is_file() and not path.is_symlink()


def test_a_damaged_entry_still_runs_in_a_fresh_process(tmp_path):
    cache = tmp_path / "cache"
    src = _fresh_source(tmp_path, "fresh")
    first = _run_in_child(src, cache, tmp_path)
    assert first.returncode == 0 and "EXIT 7" in first.stdout, first.stderr
    (module,) = cache.glob("reference/*/_nbref_*.so")
    _flip_a_byte(module, None)
    again = _run_in_child(src, cache, tmp_path)
    assert again.returncode == 0 and "EXIT 7" in again.stdout, again.stderr
    assert "Traceback" not in again.stderr and "did not verify" in again.stderr


PLANTED = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void)
{
    FILE *f = fopen(getenv("PLANT_PROOF"), "w");
    if (f) { fputs("ran\n", f); fclose(f); }
}
void PyInit_planted(void) {}
"""


@pytest.mark.parametrize("forge", ["no manifest", "forged manifest, wrong digest",
                                   "forged manifest, group-writable"])
def test_a_planted_module_is_never_loaded(tmp_path, forge):
    import hashlib
    import json
    import shutil
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the planted library")
    cache = tmp_path / "cache"
    src = _fresh_source(tmp_path, "planted")
    env = dict(os.environ, NBSIM_CACHE_DIR=str(cache))
    # where the genuine module would go, from a child with the same environment
    where = subprocess.run([sys.executable, "-c", "import sys; from nbsim import reference; "
                            "print(reference.module_path(sys.argv[1]))", str(src)],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    target = __import__("pathlib").Path(where)
    target.parent.mkdir(parents=True)
    os.chmod(cache, 0o700)
    os.chmod(target.parent.parent, 0o700)
    os.chmod(target.parent, 0o700)
    plant_c = tmp_path / "plant.c"
    plant_c.write_text(PLANTED)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(target), str(plant_c)], check=True)
    if forge != "no manifest":
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if forge.endswith("wrong digest"):
            digest = "0" * 64
        else:
            target.chmod(0o775)
        recipe_of = ("import sys, json; from nbsim import reference as r; "
                     "d = r.source_digest(open(sys.argv[1], 'rb').read()); "
                     "print(json.dumps(r._build_recipe(d)))")
        recipe = json.loads(subprocess.run([sys.executable, "-c", recipe_of, str(src)], env=env,
                                           capture_output=True, text=True, check=True).stdout)
        target.with_name(target.name.split(".")[0] + ".json").write_text(
            json.dumps({"recipe": recipe, "module_sha256": digest}))
    proof = tmp_path / "proof.txt"
    done = _run_in_child(src, cache, tmp_path, {"PLANT_PROOF": str(proof)})
    assert not proof.exists(), "the planted library's constructor ran"
    assert done.returncode == 0 and "EXIT 7" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr


def test_a_cache_root_writable_by_others_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "shared" / "reference"
    root.mkdir(parents=True)
    root.chmod(0o777)
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "shared"))
    src = _fresh_source(tmp_path, "shared")
    with pytest.raises(reference.ReferenceBuildError, match="writable by group and others") as err:
        reference.build_reference(src)
    assert "NBSIM_CACHE_DIR" in str(err.value) and "\n" not in str(err.value)
    assert list(root.iterdir()) == []


def test_a_cache_root_of_another_user_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(reference, "_euid", lambda: os.geteuid() + 1)
    with pytest.raises(reference.ReferenceBuildError, match="belongs to another user"):
        reference.build_reference(_fresh_source(tmp_path, "owner"))


def test_an_entry_folder_open_to_others_is_replaced(tmp_path, monkeypatch):
    import stat
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _fresh_source(tmp_path, "loose")
    path = reference.build_reference(src)
    path.parent.chmod(0o777)
    (path.parent / "left-by-someone").write_text("x")
    assert reference.build_reference(src) == path
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not (path.parent / "left-by-someone").exists()
    assert [p.name for p in path.parent.parent.iterdir()] == [path.parent.name]


def test_a_group_writable_umask_still_gives_an_entry_that_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _fresh_source(tmp_path, "umask")
    old = os.umask(0o002)
    try:
        path = reference.build_reference(src)
    finally:
        os.umask(old)
    compiled = []
    monkeypatch.setattr(reference, "_compile", lambda *a: compiled.append(a))
    assert reference.build_reference(src) == path and compiled == []


def test_new_compiler_flags_give_a_new_module(tmp_path, monkeypatch):
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "cache"))
    src = _fresh_source(tmp_path, "flags")
    plain = reference.module_path(src)
    monkeypatch.setenv("CFLAGS", "-DNBSIM_SOMETHING_ELSE=1")
    other = reference.module_path(src)
    assert other != plain and other.parent == plain.parent


def test_nb_compare_reports_an_unsafe_cache_in_one_line(tmp_path, monkeypatch):
    import json
    from nbsim import compare
    root = tmp_path / "shared" / "reference"
    root.mkdir(parents=True)
    root.chmod(0o777)
    monkeypatch.setenv("NBSIM_CACHE_DIR", str(tmp_path / "shared"))
    src = _fresh_source(tmp_path, "compare")
    nbsim_stub = tmp_path / "nbsim_stub.sh"
    nbsim_stub.write_text("#!/bin/sh\nexit 0\n")
    nbsim_stub.chmod(0o755)
    out = tmp_path / "out"
    code = compare.main(["--c-source", str(src), "--nbsim", str(nbsim_stub), "--out", str(out),
                         "--", "-N", "1"])
    assert code == 3
    error = json.loads((out / "summary.json").read_text())["reference"]["error"]
    assert "refusing the reference cache folder" in error and "\n" not in error
