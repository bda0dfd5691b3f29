"""Tests of bench/run.py: workload tables, the evaluation count, and --smoke with fakes."""
import importlib.util
import json
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("nbsim_bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_workload_tables_are_exact(bench):
    common = "-floatfile float.bin -nopgm -nonoise -noprogress -seed 1".split()
    w1 = ("-cell 100 100 100 90 90 90 -lambda 6.2 -N 5 -default_F 100 -detpixels 1024 "
          "-pixel 0.1 -distance 100").split()
    w2 = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -N 5 -default_F 100 "
          "-detpixels 512 -pixel 0.1 -distance 100 -oversample 2 -mosaic 0.5 -mosaic_dom 10 "
          "-mosaic_seed 42 -hdivrange 0.3 -vdivrange 0.3 -hdivsteps 3 -vdivsteps 3 "
          "-square_div").split()
    w3 = ("-cell 100 100 100 90 90 90 -lambda 1.0 -N 10 -default_F 100 -detpixels 2048 "
          "-pixel 0.05 -distance 200").split()
    tiny = [("64" if t == "1024" else t) for t in w1]
    assert bench.workload_args("W1") == w1 + common
    assert bench.workload_args("W2") == w2 + common
    assert bench.workload_args("W3") == w3 + common
    assert bench.workload_args("tiny") == tiny + common
    assert set(bench.WORKLOADS) == {"W1", "W2", "W3", "tiny"}


def test_evaluation_counts_of_the_workloads(bench):
    assert bench.count_evaluations(bench.workload_args("W2")) == 512 * 512 * 4 * 9 * 10 == 94_371_840
    # W1 and W3 use automatic oversampling, which is 1 for these crystals
    assert bench.count_evaluations(bench.workload_args("W1")) == 1024 * 1024
    assert bench.count_evaluations(bench.workload_args("W3")) == 2048 * 2048
    assert bench.count_evaluations(bench.workload_args("tiny")) == 64 * 64


def test_evaluation_count_rules(bench):
    base = "-cell 100 100 100 90 90 90 -N 5 -lambda 6.2 -detpixels 10".split()
    count = bench.count_evaluations
    assert count(base) == 100
    assert count(base + ["-oversample", "3"]) == 900
    assert count(base + ["-phisteps", "4", "-osc", "1"]) == 400
    assert count(base + ["-mosaic", "0.2"]) == 1000                 # 10 domains by default
    assert count(base + ["-mosaic", "0.2", "-mosaic_dom", "3"]) == 300
    assert count(base + ["-mosaic_dom", "3"]) == 100                # no spread: 1 domain
    assert count(base + ["-dispersion", "1", "-dispsteps", "5"]) == 500
    assert count(base + ["-hdivrange", "1", "-hdivsteps", "3"]) == 300   # vertical: 1 step
    assert count(base + ["-divrange", "1", "-divsteps", "2", "-square_div"]) == 400
    assert count(base + ["-detector_thick", "100", "-detector_thicksteps", "2"]) == 200
    assert count(base + ["-roi", "0", "4", "2", "3"]) == 10
    assert count(base[:-2] + ["-detpixels_f", "3", "-detpixels_s", "7"]) == 21
    assert count(base[:-2] + ["-detsize", "10", "-pixel", "0.3"]) == 33 * 33
    # a crystal large enough for automatic oversampling > 1:
    # ceil(3 * 1000 A * 0.1 mm / (1 A * 100 mm)) = 3
    assert count("-cell 100 100 100 90 90 90 -N 10 -lambda 1 -detpixels 2".split()) == 4 * 9
    for unsupported in (["-sourcefile", "s.txt"], ["-divrange", "1", "-divsteps", "3"],
                        ["-hdivrange", "1"], ["-osc", "1"]):
        with pytest.raises(ValueError):
            count(base + unsupported)


def test_evaluations_from_stdout(bench):
    text = ("  distance=0.1 detsize=0.0064x0.0064  pixel=0.0001 meters (64x32 pixels)\n"
            "  sensor is 0 m thick in 2 layers with mu= -1\n"
            "  9 sources\n  10 mosaic domains over mosaic spread of 0.5 degrees\n"
            "  3 phi steps from 0 to 1 degrees\n  2x2 pixel oversample steps\n")
    assert bench.evaluations_from_stdout(text) == 64 * 32 * 2 * 9 * 10 * 3 * 4
    assert bench.evaluations_from_stdout(text.replace("  9 sources\n", "")) is None


FAKE = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"role": {role!r}, "argv": args, "cwd": os.getcwd(),
                         "omp": os.environ.get("OMP_NUM_THREADS"),
                         "numba": os.environ.get("NUMBA_NUM_THREADS")}}) + "\\n")
if args == ["-version"]:
    print("nbsim 0.0-fake")
    sys.exit(0)
for bad in {fail!r}:
    if bad in " ".join(args):
        print("engine " + bad + " is not available")
        sys.exit(3)
open("float.bin", "wb").write(bytes(64 * 64 * 4))
print("  pixel=0.0001 meters (64x64 pixels)")
print("  sensor is 0 m thick in 1 layers with mu= -1")
print("  1 sources")
print("  1 mosaic domains over mosaic spread of 0 degrees")
print("  1 phi steps from 0 to 0 degrees")
print("  1x1 pixel oversample steps")
"""


def make_fake(tmp_path, role, fail=()):
    path = tmp_path / f"fake_{role}"
    path.write_text(FAKE.format(python=sys.executable, log=str(tmp_path / "calls.jsonl"),
                                role=role, fail=list(fail)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def calls(tmp_path):
    return [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_smoke_with_fake_nbsim_reports_unavailable_engine(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NB_C_BIN", raising=False)
    fake = make_fake(tmp_path, "nbsim", fail=["-engine c"])
    out = tmp_path / "smoke.json"
    code = bench.main(["--smoke", "--nbsim-cmd", str(fake), "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1 and report["smoke"] is True
    assert report["nbsim_version"] == "nbsim 0.0-fake"
    by_variant = {r["variant"]: r for r in report["results"]}
    assert set(by_variant) == {"auto", "auto+fast", "numba", "numba+fast", "c", "c+fast"}
    for name in ("numba", "numba+fast"):
        r = by_variant[name]
        assert r["status"] == "ok" and r["workload"] == "tiny" and r["threads"] == 1
        assert len(r["times_s"]) == 1 and r["median_s"] > 0
        assert r["evaluations"] == 4096 and r["evaluations_stdout"] == 4096
        assert r["evals_per_s"] == pytest.approx(4096 / r["median_s"])
        assert r["peak_rss_mb"] > 0
        assert r["ratio_vs_reference"] is None
    for name in ("c", "c+fast"):
        assert by_variant[name]["status"] == "failed"
        assert "not available" in by_variant[name]["error"]
    runs = [c for c in calls(tmp_path) if c["argv"] != ["-version"]]
    assert [c["argv"] for c in runs] == [
        bench.workload_args("tiny") + ["-engine", "auto"],
        bench.workload_args("tiny") + ["-engine", "auto", "-fast"],
        bench.workload_args("tiny") + ["-engine", "numba"],
        bench.workload_args("tiny") + ["-engine", "numba", "-fast"],
        bench.workload_args("tiny") + ["-engine", "c"],
        bench.workload_args("tiny") + ["-engine", "c", "-fast"],
    ]
    assert all(c["omp"] == "1" and c["numba"] == "1" for c in runs)
    assert len({c["cwd"] for c in runs}) == len(runs)   # a fresh folder per run
    text = capsys.readouterr().out
    assert "numba+fast" in text and "not measured" in text


def test_smoke_fails_when_nothing_runs(bench, tmp_path, monkeypatch):
    monkeypatch.delenv("NB_C_BIN", raising=False)
    fake = make_fake(tmp_path, "nbsim", fail=["-engine"])
    out = tmp_path / "smoke.json"
    assert bench.main(["--smoke", "--nbsim-cmd", str(fake), "--json", str(out)]) == 1
    assert all(r["status"] == "failed" for r in json.loads(out.read_text())["results"])


def test_reference_alternation_and_ratio(bench, tmp_path, monkeypatch):
    ref = make_fake(tmp_path, "reference")
    fake = make_fake(tmp_path, "nbsim")
    monkeypatch.setenv("NB_C_BIN", str(ref))
    out = tmp_path / "b.json"
    code = bench.main(["--workloads", "tiny", "--runs", "2", "--warmup", "1", "--threads", "2",
                       "--engines", "numba", "--nbsim-cmd", str(fake), "--json", str(out)])
    assert code == 0
    runs = [c for c in calls(tmp_path) if c["argv"] != ["-version"]]
    # warm-ups first (one each), then timed runs alternating reference / nbsim
    assert [c["role"] for c in runs] == ["reference", "nbsim"] * 3
    assert all(c["omp"] == "2" and c["numba"] == "2" for c in runs)
    assert all("-engine" not in c["argv"] for c in runs if c["role"] == "reference")
    report = json.loads(out.read_text())
    ref_rec, nb_rec = report["results"]
    assert ref_rec["runner"] == "reference" and nb_rec["variant"] == "numba"
    assert len(ref_rec["times_s"]) == len(nb_rec["times_s"]) == 2
    assert nb_rec["ratio_vs_reference"] == pytest.approx(ref_rec["median_s"] / nb_rec["median_s"])
    assert nb_rec["ratio_vs_reference_min"] == pytest.approx(ref_rec["min_s"] / nb_rec["min_s"])
    assert report["reference_command"] == [str(ref)]


def test_bad_arguments_exit_2(bench, tmp_path):
    assert bench.main(["--workloads", "W9", "--json", str(tmp_path / "x.json")]) == 2
    assert bench.main(["--runs", "0", "--json", str(tmp_path / "x.json")]) == 2
