"""Ctrl-C: a render stops between row blocks, within about a second on either engine,
with exit status 130, one line on stderr and no file left behind."""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from nbsim import api
from nbsim.cli import config_from_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# about 5·10⁹ inner evaluations: minutes of rendering on this machine
LONG = ("-cell 100 100 100 90 90 90 -default_F 100 -lambda 6.2 -N 5 -distance 100 "
        "-detpixels 1024 -pixel 0.1 -oversample 1 -mosaic 1 -mosaic_dom 100 -phisteps 50 "
        "-osc 1 -seed 1").split()
# the render must stop this soon after SIGINT: a block lasts ~0.3 s; the rest is margin
# for a machine shared with other jobs
STOP_SECONDS = 2.0


def _lines(stream, into):
    for line in stream:
        into.put(line)
    into.put(None)


@pytest.mark.skipif(os.name != "posix", reason="sends a POSIX SIGINT")
@pytest.mark.parametrize("engine", ["numba", "c"])
def test_sigint_stops_a_long_render(engine, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "nbsim"] + LONG
                            + ["-engine", engine, "-threads", "2"],
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        # the render is under way once the meter has printed (a first Numba run
        # compiles its kernels before that)
        deadline = time.monotonic() + 600
        while True:
            line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
            assert line is not None, "the command ended before rendering"
            if line.endswith("% done\n"):
                break
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "nanoBragg: interrupted" and "Traceback" not in err
    assert took < STOP_SECONDS, "took %.2f s to stop" % took
    assert os.listdir(str(tmp_path)) == []      # no output, no temporary file


def test_interrupt_between_blocks_stops_the_render(workdir):
    """A KeyboardInterrupt raised between blocks (here by the progress callback) ends
    the render there: no further block is rendered."""
    config = config_from_args("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -detpixels 64 "
                              "-lambda 6.2 -seed 1".split(), warn=lambda m: None)[0]
    calls = []

    def stop(done, total):
        calls.append(done)
        raise KeyboardInterrupt

    os.environ["NBSIM_BLOCK_ROWS"] = "8"
    try:
        with pytest.raises(KeyboardInterrupt):
            api.simulate(config, engine="c", progress=stop)
    finally:
        del os.environ["NBSIM_BLOCK_ROWS"]
    assert calls == [8 * 64]
