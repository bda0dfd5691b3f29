"""nbsim's basic path against an independent numpy implementation of the physics."""
import numpy as np
import pytest

from naive import naive_image
from nbsim.api import render
from nbsim.cli import config_from_args
from nbsim.plan import make_plan


@pytest.mark.parametrize("cell, N, lam, dist, pixels", [
    (100.0, 5, 6.2, 100.0, 32),
    (50.0, 3, 1.0, 80.0, 40),
    (80.0, 7, 1.5, 60.0, 24),
])
def test_basic_path_matches_the_naive_oracle(cell, N, lam, dist, pixels):
    args = ("-cell %g %g %g 90 90 90 -default_F 100 -N %d -lambda %g -distance %g "
            "-detpixels %d -pixel 0.1 -oversample 1 -nonoise -noprogress" %
            (cell, cell, cell, N, lam, dist, pixels)).split()
    img = render(make_plan(config_from_args(args)[0]), engine="numba")[0].astype(np.float64)
    want = naive_image(cell, N, 100.0, lam, dist, pixels, 0.1)
    assert img.max() > 0
    # the oracle rounds differently (vectorised numpy, no float32 image): agree to 1e-6
    assert np.allclose(img, want, rtol=1e-6, atol=1e-9 * want.max())
