"""The noise images of the golden reference runs, reproduced bit for bit.

Every golden case that wrote a noise image is replayed here: read the run's float
image, repeat the reference's random-number calls in its order (the mosaic domain
matrices with the mosaic seed, then one Poisson deviate per pixel with the noise
seed) and compare the SMV data bytes and the ``N photons on noise image (M
overloads)`` line.  Only the noise step is exercised: the float image is the
reference's own.

Optional: with ``NB_C_BIN`` pointing at a nanoBragg binary, extra runs of that
binary (positive seeds that continue the shared generator table, large means,
negative ADC offsets) are compared the same way.
"""
import gzip
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nbsim import noise, rng

GOLDEN = Path(__file__).parent / "golden" / "cases"
RTD = 180.0 * 0.31830988618379067154  # the reference's 180*M_1_PI
HEADER_BYTES = 512
PHOTONS_LINE = re.compile(r"^(\S+) photons on noise image \((\d+) overloads\)$", re.M)
DOMAINS_LINE = re.compile(r"created a total of (\d+) mosaic domains")


def _arg(args, flag, n=1):
    """Values after the last exact ``flag`` in ``args`` (None if absent)."""
    idx = [i for i, a in enumerate(args) if a == flag and i + n < len(args)]
    if not idx:
        return None
    i = idx[-1]
    return args[i + 1:i + 1 + n] if n > 1 else args[i + 1]


def _smv_size(raw):
    head = raw[:HEADER_BYTES].decode("latin-1")
    fast = int(re.search(r"SIZE1=(\d+);", head).group(1))
    slow = int(re.search(r"SIZE2=(\d+);", head).group(1))
    assert "BYTE_ORDER=little_endian" in head
    return slow, fast


def replay(args, float_image, stdout):
    """Our noise image for one reference run (args as given to the binary)."""
    state = rng.new_state()
    spixels, fpixels = float_image.shape
    # The golden runs use no "-misset random" that takes effect, so the first
    # users of the generator are the mosaic domains (count as the run reports).
    domains = int(DOMAINS_LINE.search(stdout).group(1))
    spread = _arg(args, "-mosaic")
    spread_rad = float(spread) / RTD if spread is not None else 0.0
    mosaic_seed = _arg(args, "-mosaic_seed")
    idum = rng.new_seed(-int(mosaic_seed) if mosaic_seed is not None else -12345678)
    rng.mosaic_umats(spread_rad, domains, idum, state)

    roi = _arg(args, "-roi", 4)
    xmin, xmax, ymin, ymax = [int(v) for v in roi] if roi else [-1, -1, -1, -1]
    roi = (xmin if xmin >= 0 else 0, xmax if xmax >= 0 else fpixels,
           ymin if ymin >= 0 else 0, ymax if ymax >= 0 else spixels)
    adc = _arg(args, "-adc")
    seed = rng.new_seed(-int(_arg(args, "-seed")))
    return noise.noise_image(float_image, roi=roi,
                             adc_offset=float(adc) if adc is not None else 40.0,
                             idum=seed, state=state)


def check_run(args, float_bytes, noise_bytes, stdout):
    slow, fast = _smv_size(noise_bytes)
    float_image = np.frombuffer(float_bytes, dtype="<f4").reshape(slow, fast)
    image, photons, overloads = replay(args, float_image, stdout)
    expected = noise_bytes[HEADER_BYTES:]
    got = image.astype("<u2").tobytes()
    if got != expected:
        ref = np.frombuffer(expected, dtype="<u2").reshape(slow, fast)
        bad = np.argwhere(ref != image)
        pytest.fail(f"{len(bad)} pixels differ, first at (s,f)={tuple(bad[0])}: "
                    f"ours {image[tuple(bad[0])]} ref {ref[tuple(bad[0])]}")
    line = PHOTONS_LINE.search(stdout)
    assert line is not None
    assert ("%.0f" % photons, overloads) == (line.group(1), int(line.group(2)))
    return image, photons, overloads


def _noise_cases():
    cases = []
    for case_json in sorted(GOLDEN.glob("*/case.json")):
        meta = json.loads(case_json.read_text())
        if any("noise" in f for f in meta["files"]) and "-seed" in meta["args"]:
            cases.append(case_json.parent.name)
    return cases


NOISE_CASES = _noise_cases()
# The cases the noise code is most sensitive to: default settings, -adc and a
# large scale, a positive seed continuing the mosaic table with Gaussian-branch
# means and overloads, an ROI, and many mosaic domains before the noise.
KEY_CASES = ["cubic_default_F", "noise_scale_adc", "noise_gaussian_overload", "roi",
             "mosaic", "mosaic_default_domains", "water_background"]


def test_key_cases_present():
    assert set(KEY_CASES) <= set(NOISE_CASES)


@pytest.mark.parametrize("case", NOISE_CASES)
def test_golden_noise_image(case):
    folder = GOLDEN / case
    meta = json.loads((folder / "case.json").read_text())
    args = meta["args"]
    float_name = _arg(args, "-floatfile") or "floatimage.bin"
    noise_name = _arg(args, "-noisefile") or "noiseimage.img"
    float_bytes = gzip.decompress((folder / (float_name + ".gz")).read_bytes())
    noise_bytes = gzip.decompress((folder / (noise_name + ".gz")).read_bytes())
    stdout = (folder / "stdout.txt").read_text()
    image, photons, overloads = check_run(args, float_bytes, noise_bytes, stdout)
    if case == "noise_gaussian_overload":
        assert overloads == 2901 and image.max() == 65535
    if case == "roi":
        assert not image[:30].any() and not image[101:].any()
        assert not image[:, :20].any() and not image[:, 91:].any()


def test_roi_pixels_draw_nothing():
    img = np.full((4, 5), 3.0, dtype=np.float32)
    s1, i1 = rng.new_state(), rng.new_seed(-8)
    out, photons, _ = noise.noise_image(img, roi=(1, 2, 1, 1), adc_offset=0.0,
                                        idum=i1, state=s1)
    assert out[0].sum() == 0 and out[2:].sum() == 0 and out[1, [0, 3, 4]].sum() == 0
    # same draws as two deviates on their own
    s2, i2 = rng.new_state(), rng.new_seed(-8)
    ref = [noise.poidev(np.float32(3.0), i2, s2) for _ in range(2)]
    assert out[1, 1:3].tolist() == [int(v) for v in ref]
    assert photons == float(sum(ref)) and int(i1[0]) == int(i2[0])


def test_conversion_like_c():
    # (unsigned short) of a double on x86-64: truncate to int32, keep 16 bits.
    img = np.zeros((1, 3), dtype=np.float32)
    out, photons, overloads = noise.noise_image(img, adc_offset=-1.5,
                                                idum=rng.new_seed(-1),
                                                state=rng.new_state())
    assert photons == 0.0 and overloads == 0
    assert out.tolist() == [[65535, 65535, 65535]]
    out, _, overloads = noise.noise_image(np.full((1, 2), 2e9, np.float32),
                                          adc_offset=0.0, idum=rng.new_seed(-1),
                                          state=rng.new_state())
    assert out.tolist() == [[65535, 65535]] and overloads == 2


# ---------------------------------------------------------------------------
# optional: fresh runs of a reference binary

C_BIN = os.environ.get("NB_C_BIN")
needs_c_bin = pytest.mark.skipif(
    not C_BIN, reason="set NB_C_BIN to a nanoBragg binary to compare fresh runs")

EXTRA_RUNS = {
    # positive seed after 12 mosaic domains: continues the mosaic table
    "positive_seed_after_mosaic": [
        "-cell", "70", "80", "90", "75", "85", "95", "-default_F", "100", "-N", "5",
        "-lambda", "1.0", "-mosaic", "0.8", "-mosaic_dom", "12", "-mosaic_seed", "777",
        "-distance", "100", "-detpixels", "64", "-pixel", "0.1", "-seed", "-5"],
    # means in all three regimes, a negative ADC offset (wraps like C), an ROI
    "regimes_negative_adc": [
        "-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "20",
        "-lambda", "1.0", "-fluence", "3e32", "-adc", "-20", "-roi", "3", "50", "7", "60",
        "-distance", "100", "-detpixels", "64", "-pixel", "0.1", "-seed", "31"],
    "positive_seed_default_mosaic": [
        "-cell", "100", "100", "100", "90", "90", "90", "-default_F", "50", "-N", "6",
        "-lambda", "1.0", "-fluence", "1e27", "-mosaic", "0.4",
        "-distance", "100", "-detpixels", "64", "-pixel", "0.1", "-seed", "-12"],
}


@needs_c_bin
@pytest.mark.parametrize("name", sorted(EXTRA_RUNS))
def test_fresh_reference_run(name, tmp_path):
    args = EXTRA_RUNS[name] + ["-floatfile", "float.bin", "-noisefile", "noise.img",
                               "-nopgm", "-noprogress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([shutil.which(C_BIN) or C_BIN] + args, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_run(args, (tmp_path / "float.bin").read_bytes(),
              (tmp_path / "noise.img").read_bytes(), proc.stdout + proc.stderr)


@needs_c_bin
def test_fresh_reference_random_misset(tmp_path):
    # "-misset_seed" must come last: the reference also reads any "-misset*" flag
    # followed by three values as explicit angles, which would cancel "random".
    args = ["-cell", "60", "70", "80", "90", "100", "110", "-default_F", "100",
            "-N", "3", "-lambda", "1.2", "-distance", "100", "-detpixels", "32",
            "-pixel", "0.1", "-nonoise", "-nopgm", "-noprogress", "-floatfile", "f.bin",
            "-misset", "random", "-misset_seed", "7"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([shutil.which(C_BIN) or C_BIN] + args, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = re.search(r"random orientation misset angles: (\S+) (\S+) (\S+) deg",
                     proc.stdout)
    assert line is not None, proc.stdout
    angles = rng.random_misset(rng.new_seed(-7), rng.new_state())
    assert ["%f" % (a * RTD) for a in angles] == list(line.groups())
    assert not math.isnan(sum(angles))
