"""The examples/ scripts and the README's Python blocks run as written."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py"))


def _python(code_or_file, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg")
    env.pop("NBSIM_ENGINE", None)
    args = [code_or_file] if os.path.isfile(code_or_file) else ["-c", code_or_file]
    return subprocess.run([sys.executable] + args, cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path):
    proc = _python(os.path.join(ROOT, "examples", name), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    written = set(os.listdir(tmp_path))
    assert written <= {name.replace(".py", ".png")}     # only the picture, if any


def readme_python_section():
    with open(os.path.join(ROOT, "README.md")) as fh:
        text = fh.read()
    start = text.index("### Python API")
    end = text.index("\n##", start + 5)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_readme_python_blocks_run_in_order(tmp_path):
    blocks = readme_python_section()
    assert len(blocks) >= 2
    proc = _python("\n".join(blocks), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(tmp_path) == []                  # "nothing written"
    assert proc.stdout.count("\n") >= 3
