"""-fast mode: same features, accuracy against parity mode as the README states."""
import numpy as np
import pytest

from nbsim.api import render
from nbsim.cli import config_from_args
from nbsim.plan import make_plan

BASE = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -lambda 1.0 -N 5 -default_F 100 "
        "-detpixels 64 -pixel 0.1 -distance 100 -noprogress -seed 1").split()
VARIANTS = {
    "W2-like": "-oversample 2 -mosaic 0.5 -mosaic_dom 10 -mosaic_seed 42 -hdivrange 0.3 "
               "-vdivrange 0.3 -hdivsteps 3 -vdivsteps 3 -square_div",
    "phi-c_parity": "-phi 0 -osc 2 -phisteps 3 -mosaic 0.3 -mosaic_dom 4 -c_parity",
    "oversample-flags": "-oversample 2 -oversample_omega -oversample_polar -detector_abs 300 -detector_thick 100 "
                        "-thicksteps 2 -oversample_thick",
    "hkl-nearest": "-hkl tests/golden/inputs/cubic.hkl -nointerpolate",
    "round-shape": "-round_xtal -mosaic 0.2 -mosaic_dom 3",
    "tiny-N-axis": "-Na 1 -Nb 7 -Nc 3 -dispersion 2 -dispsteps 3",
}


def _images(extra, monkeypatch):
    import os
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = BASE + extra.split()
    exact = render(make_plan(config_from_args(args)[0]), engine="numba")[0]
    fast = render(make_plan(config_from_args(args + ["-fast"])[0]), engine="numba")[0]
    return exact.astype(np.float64), fast.astype(np.float64)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fast_matches_parity_within_stated_accuracy(name, monkeypatch):
    exact, fast = _images(VARIANTS[name], monkeypatch)
    assert exact.sum() > 0
    r = np.corrcoef(exact.ravel(), fast.ravel())[0, 1]
    assert r >= 0.99999, r
    assert abs(fast.sum() - exact.sum()) / exact.sum() <= 1e-4
    # and in practice far better: every pixel within a part in 1e6
    assert np.max(np.abs(fast - exact)) <= 1e-6 * exact.max()


def test_fast_is_really_a_different_code_path(monkeypatch):
    """Guard against -fast silently running the exact kernel: its sines differ in bits."""
    from nbsim.engines import numba_kernel as nk
    x = np.linspace(-40.3, 57.9, 2001)
    exact = np.array([(np.sin(np.pi * v * 5) / np.sin(np.pi * v)) ** 2 for v in x])
    tT = np.zeros((9, len(x)))
    tT[0] = x
    out = np.empty(len(x))
    nk._fast_lattice_sq(tT, 1.0, 0.0, 0.0, 5.0, 1.0, 1.0, out)
    assert np.allclose(out, exact, rtol=1e-9, atol=1e-9)
