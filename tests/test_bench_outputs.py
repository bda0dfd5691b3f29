"""bench/outputs.py runs end to end on the tiny workload and reports every output."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("h5py", reason="h5py is a declared dependency of nbsim")
pytest.importorskip("fabio", reason="fabio is a declared dependency of nbsim")


def test_tiny_round(tmp_path):
    out = tmp_path / "o.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "outputs.py"), "--workload",
                          "tiny", "--rounds", "1", "--warmup", "0", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    data = json.loads(out.read_text())
    names = {"nexus", "cbf", "geom", "png", "tiff"}
    assert set(data["cpu"]) == names | {"plain", "all"}
    assert set(data["writer_cpu"]) == names and set(data["import_cpu"]) == names
    assert all(v >= 0 for v in data["writer_cpu"].values())
    for name in names | {"all"}:
        assert name in run.stdout


def test_bad_rounds_is_a_usage_error():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "outputs.py"), "--rounds", "0"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--rounds" in run.stderr
