import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)   # for the golden_cases helper module


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh working folder, made current for the test."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
