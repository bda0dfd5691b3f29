"""bench/batch.py: the batch benchmark harness runs (timings themselves are not tested)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_smoke_run_writes_every_configuration(tmp_path):
    out = tmp_path / "b.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "batch.py"), "--smoke",
                           "--only", "scaling", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["frames"] == 4
    labels = set(result["medians"])
    assert {"1 rank x 1 thread", "1 rank x 2 threads"} <= labels
    for label in labels:
        assert result["medians"][label] > 0 and result["busiest_rank_cpus"][label][0] > 0
    assert "1 rank x 2 threads / 2 ranks x 1 thread" in result["ratios"] or \
        any("no mpiexec" in n for n in result["notes"])
    assert "wall" in done.stdout


def test_smoke_run_of_the_split_measurement(tmp_path):
    out = tmp_path / "s.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "batch.py"), "--smoke",
                           "--only", "split", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["split_detpixels"] == 48 and "whole, 1 rank" in result["medians"]
    assert "2 parts, 2 ranks" in result["medians"] or \
        any("no mpiexec" in n for n in result["notes"])


def test_overhead_bench_times_frames_and_kernels(tmp_path):
    """bench/batch_overhead.py: per-frame wall and kernel times from a real job."""
    out = tmp_path / "o.json"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "batch_overhead.py"),
                           "--frames", "3", "--detpixels", "32", "--runs", "1",
                           "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(out.read_text())["runs"][0]
    assert 0 < run["kernel_s_median"] < run["frame_s_median"]
    assert 0 < run["overhead_s_min"] <= run["overhead_s_median"] < run["frame_s_median"]
    assert "per-frame overhead" in done.stdout
