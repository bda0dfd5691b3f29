"""The Python API: simulate(config), Plan reuse, determinism across thread counts."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nbsim
from nbsim.api import render, simulate
from nbsim.cli import config_from_args
from nbsim.plan import make_plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 4 -lambda 1.0 "
         "-distance 80 -detpixels 48 -pixel 0.1 -seed 3 -noprogress").split()
# a mix of every sampling feature, small enough for the un-jitted kernel
MIXED = SMALL + ("-oversample 2 -mosaic 0.4 -mosaic_dom 3 -mosaic_seed 5 -phi 0 -osc 1 "
                 "-phisteps 3 -detector_abs 300 -detector_thick 100 -thicksteps 2 "
                 "-hdivrange 0.2 -hdivsteps 2 -dispersion 2 -dispsteps 2 -polar 0.9").split()


def bits(a):
    return np.ascontiguousarray(a).view(np.uint32)


def test_simulate_returns_arrays_and_stats():
    cfg, _ = config_from_args(SMALL)
    res = nbsim.simulate(cfg)
    assert res.float_image.shape == (48, 48) and res.float_image.dtype == np.float32
    assert res.int_image.dtype == np.uint16 and res.noise_image.dtype == np.uint16
    assert res.stats.max_I == float(res.float_image.max())
    assert res.engine in ("numba", "c")
    assert res.stats.mean == pytest.approx(float(res.float_image.astype(np.float64).mean()),
                                           rel=1e-12)


def test_plan_renders_many_frames_identically():
    cfg, _ = config_from_args(MIXED)
    plan = make_plan(cfg)
    a = simulate(cfg, plan=plan)
    b = simulate(cfg, plan=plan)
    assert np.array_equal(bits(a.float_image), bits(b.float_image))
    assert np.array_equal(a.noise_image, b.noise_image)


@pytest.mark.parametrize("extra", [[], ["-c_parity"]])
def test_thread_count_does_not_change_bits(extra):
    cfg, _ = config_from_args(MIXED + extra)
    plan = make_plan(cfg)
    one = render(plan, engine="numba", threads=1)[0]
    two = render(plan, engine="numba", threads=2)[0]
    assert np.array_equal(bits(one), bits(two))


def test_c_parity_differs_only_when_phi_starts_at_zero():
    with_zero = [render(make_plan(config_from_args(MIXED + e)[0]), engine="numba")[0]
                 for e in ([], ["-c_parity"])]
    assert not np.array_equal(with_zero[0], with_zero[1])
    shifted = [a if a != "0" or MIXED[i - 1] != "-phi" else "0.5" for i, a in enumerate(MIXED)]
    no_zero = [render(make_plan(config_from_args(shifted + e)[0]), engine="numba")[0]
               for e in ([], ["-c_parity"])]
    assert np.array_equal(bits(no_zero[0]), bits(no_zero[1]))


def test_kernel_without_jit_gives_the_same_bits(tmp_path):
    """The kernel run as plain Python (coverage, tracebacks) matches the compiled one."""
    args = MIXED[:MIXED.index("-detpixels")] + ["-detpixels", "12"] + \
        MIXED[MIXED.index("-detpixels") + 2:] + ["-c_parity"]
    code = ("import sys, numpy as np\n"
            "from nbsim.cli import config_from_args\n"
            "from nbsim.plan import make_plan\n"
            "from nbsim.api import render\n"
            "img = render(make_plan(config_from_args(sys.argv[1:])[0]), engine='numba')[0]\n"
            "sys.stdout.write(img.tobytes().hex())\n")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code] + args, env=env, capture_output=True,
                          text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    pure = np.frombuffer(bytes.fromhex(proc.stdout), dtype=np.float32).reshape(12, 12)
    jit = render(make_plan(config_from_args(args)[0]), engine="numba")[0]
    assert np.array_equal(bits(pure), bits(jit))


def test_hkl_cache_reads_a_file_once_and_again_when_it_changes(tmp_path, monkeypatch):
    from nbsim.io import hkl as hkl_io
    path = tmp_path / "f.hkl"
    path.write_text("0 0 1 10\n1 0 0 20\n")
    reads = []
    real = hkl_io.read_hkl
    monkeypatch.setattr(hkl_io, "read_hkl", lambda *a: reads.append(a) or real(*a))
    args = ("-cell 50 50 50 90 90 90 -N 2 -detpixels 8 -lambda 1 -hkl %s -nonoise "
            "-seed 1" % path).split()
    cache = {}
    first = make_plan(config_from_args(args)[0], hkl_cache=cache)
    second = make_plan(config_from_args(args)[0], hkl_cache=cache)
    assert len(reads) == 1
    assert np.array_equal(first.Fhkl, second.Fhkl) and first.log == second.log
    path.write_text("0 0 1 10\n1 0 0 30\n2 0 0 5\n")      # changed: read again
    third = make_plan(config_from_args(args)[0], hkl_cache=cache)
    assert len(reads) == 2
    assert third.Fhkl.max() == 30.0
    make_plan(config_from_args(args)[0])                  # no cache: always read
    assert len(reads) == 3
