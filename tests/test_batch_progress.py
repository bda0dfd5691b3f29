"""nbsim.batch.progress: a line per frame with elapsed time and ETA."""
import io
import re

import pytest

from nbsim.batch import progress as progress_mod
from nbsim.batch.progress import Progress, hms


def test_hms():
    assert hms(0) == "0:00:00" and hms(61.4) == "0:01:01" and hms(3 * 3600 + 7) == "3:00:07"
    assert hms(-5) == "0:00:00"


def test_a_line_per_frame_with_an_eta(monkeypatch):
    clock = iter([100.0, 110.0, 130.0, 131.0])
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    p = Progress(4, rank=1, ranks=2, stream=out, bar=False)
    p.frame(3, 0, 9.5)                   # 1 of 4 after 10 s: 30 s to go
    p.passed_by(1)                       # another rank took one
    p.frame(5, 2, 0.25, "; see x.log")   # 3 of 4 after 30 s: 10 s to go
    lines = out.getvalue().splitlines()
    assert lines[0] == ("nbsim-batch: [rank 1] frame 3 done in 9.50 s; 1/4, "
                        "elapsed 0:00:10, ETA 0:00:30")
    assert lines[1] == ("nbsim-batch: [rank 1] frame 5 FAILED (exit 2) after 0.25 s; see x.log; "
                        "3/4, elapsed 0:00:30, ETA 0:00:10")
    assert p.elapsed() == 31.0


def test_one_rank_has_no_rank_prefix_and_quiet_prints_nothing():
    out = io.StringIO()
    Progress(2, stream=out, bar=False).frame(0, 0, 1.0)
    assert re.match(r"nbsim-batch: frame 0 done in 1\.00 s; 1/2, elapsed", out.getvalue())
    quiet = io.StringIO()
    Progress(2, stream=quiet, bar=False, quiet=True).frame(0, 0, 1.0)
    assert quiet.getvalue() == ""


def test_plain_lines_unless_stderr_is_a_terminal():
    assert Progress(3, stream=io.StringIO()).bar is None


def test_a_terminal_gets_a_tqdm_bar():
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    p = Progress(3, stream=out)
    assert p.bar is not None
    p.frame(0, 0, 0.1)
    p.frame(1, 1, 0.1, "; see y.log")
    p.close()
    text = out.getvalue()
    assert "2/3" in text and "frame 1 FAILED (exit 1)" in text
    assert "frame 0 done" not in text            # the bar replaces the per-frame lines
    several = Progress(3, rank=0, ranks=2, stream=Terminal())
    assert several.bar is None                   # ranks would draw over each other


def test_without_tqdm_a_terminal_gets_lines(monkeypatch):
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setitem(sys.modules, "tqdm", None)
    out = Terminal()
    p = Progress(1, stream=out)
    p.frame(0, 0, 0.5)
    assert p.bar is None and "frame 0 done in 0.50 s" in out.getvalue()
