"""What nbsim refuses and what it renders, against what nanoBragg.c does with the same
values (issue 10 item 3, issue 13 item 5).

nbsim refuses only inputs for which the reference renders nothing (no pixel, a region
or detector plane that leaves every pixel zero) or NaN in every pixel. Everything
else renders, bit for bit as the reference renders it, with a warning on stderr where
the input is surely a mistake. The first tests need no reference; with NB_C_BIN set
the same inputs are also run through the reference and the files compared.
"""
import os

import numpy as np
import pytest

import refpair
from nbsim import cli

INPUTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "inputs")
BASE = ["-cell", "70", "80", "90", "90", "90", "90", "-default_F", "50", "-N", "3",
        "-detpixels", "12", "-seed", "1", "-noprogress"]

# inputs the reference renders to a finite image; (words, a fragment of nbsim's warning)
RENDERED = [
    (["-roi", "-3", "8", "-2", "9"], "-roi: negative bounds"),
    (["-roi", "3", "-8", "2", "9"], "-roi: negative bounds"),
    (["-lambda", "-1"], "-lambda/-energy"),
    (["-lambda", "0", "-sourcefile", INPUTS + "/sources.txt"], "-sourcefile wavelengths"),
    (["-lambda", "-1", "-sourcefile", INPUTS + "/sources.txt"], "-lambda/-energy"),
    (["-lambda", "inf"], "-lambda/-energy"),
    (["-energy", "0"], "-lambda/-energy"),
    (["-energy", "0", "-mat", INPUTS + "/tetra.mat"], "-lambda/-energy"),
    (["-energy", "-5"], "-lambda/-energy"),
    (["-fdet_vector", "0", "0", "0"], "-fdet_vector: the zero vector"),
    (["-sdet_vector", "0", "0", "0"], "-sdet_vector: the zero vector"),
    (["-polar_vector", "0", "0", "0"], "-polar_vector: the zero vector"),
    (["-spindle_axis", "0", "0", "0", "-phi", "10"], "-spindle_axis: the zero vector"),
    (["-twotheta_axis", "0", "0", "0"], "-twotheta_axis: the zero vector"),
    (["-fdet_vector", "0", "-1", "0"], "parallel"),
    (["-pixel", "-0.1"], "-pixel: a negative pixel size"),
    (["-phisteps", "-5"], "-phisteps: a negative count"),
    (["-hdivsteps", "-3", "-hdivrange", "0.2"], "-hdivsteps: a negative count"),
    (["-thicksteps", "-2"], "-thicksteps: a negative count"),
    (["-oversample", "-3"], "-oversample: a negative count"),
    (["-mosaic_dom", "-4", "-mosaic", "0.5"], "-mosaic_dom: a negative count"),
    # non-finite values that the reference ignores or that stay out of the image
    (["-samplesize", "-inf"], None),
    (["-mosaic", "-inf"], None),
    (["-mosaic", "nan"], None),
    (["-osc", "-inf"], None),
    (["-phistep", "-inf"], None),
    (["-Xclose", "inf"], None),            # the MOSFLM convention pivots on the beam
    (["-odet_vector", "nan", "0", "1"], None),   # regenerated from the other two axes
    (["-pix0_vector", "inf", "0", "1"], None),   # always recomputed by the reference
    (["-spindle_axis", "nan", "0", "1"], None),  # no phi rotation at phi = 0
    (["-close_distance", "nan"], None),          # NaN means "not given"
    (["-dmin", "nan"], None),
    (["-energy", "nan", "-N", "1"], None),   # N = 1: no lattice factor, h is never used
    (["-lambda", "nan", "-N", "1"], None),
    (["-adc", "nan"], None),
    (["-polar", "inf"], None),             # infinite pixels, not NaN
    (["-water", "inf"], None),
    (["-distance", "0", "-point_pixel"], None),
    (["-distance", "-100"], None),
]

# inputs the reference renders as NaN everywhere or as nothing; (words, error fragments)
REFUSED = [
    (["-roi", "8", "3", "2", "9"], ["-roi: 8 3 2 9 selects no pixel"]),
    (["-roi", "100", "200", "0", "5"], ["-roi", "selects no pixel"]),
    (["-lambda", "0"], ["-lambda", "every pixel of the image is NaN"]),
    (["-energy", "inf"], ["-lambda", "NaN"]),
    (["-distance", "0"], ["passes through the sample"]),
    (["-beam_vector", "0", "0", "0"], ["-beam_vector", "passes through the sample"]),
    (["-pixel", "0"], ["-pixel", "no pixel"]),
    (["-pixel", "nan"], ["-pixel", "no pixel"]),
    (["-detpixels", "-5"], ["-detpixels", "no detector"]),
    (["-detsize", "1e9", "-detpixels", "0"], ["-detsize", "more than"]),
    (["-phi", "nan"], ["-phi nan", "NaN"]),
    (["-osc", "nan"], ["-osc nan", "NaN"]),
    (["-phistep", "nan"], ["-phistep nan", "NaN"]),
    (["-polar", "nan"], ["-polar nan", "NaN"]),
    (["-fluence", "nan"], ["-fluence", "NaN"]),
    (["-flux", "nan", "-exposure", "1", "-beamsize", "0.1"], ["-flux", "NaN"]),
    (["-flux", "1e12", "-beamsize", "0"], ["-beamsize", "NaN"]),
    (["-water", "nan"], ["-water", "NaN"]),
    (["-divergence", "nan"], ["-hdivrange nan", "NaN"]),
    (["-dispersion", "nan"], ["-dispersion nan", "NaN"]),
    (["-default_F", "nan"], ["-default_F nan", "NaN"]),
    (["-twotheta", "nan"], ["-twotheta nan", "NaN"]),
    (["-detector_rotx", "inf"], ["-detector_rotx inf", "NaN"]),
    (["-distance", "nan"], ["-distance nan", "NaN"]),
    (["-Xbeam", "inf"], ["-Xbeam inf", "NaN"]),
    (["-misset", "nan", "0", "0"], ["-misset nan 0 0", "NaN"]),
    (["-cell", "nan", "80", "90", "90", "90", "90"], ["-cell nan", "NaN"]),
    (["-mosaic", "inf"], ["-mosaic inf", "NaN"]),
    (["-xtalsize", "inf"], ["-sample_x inf", "NaN"]),
    (["-detector_thick", "nan", "-detector_abs", "100"], ["-detector_thick nan", "NaN"]),
    (["-fudge", "nan", "-gauss_xtal"], ["-fudge nan", "NaN"]),
    (["-fdet_vector", "nan", "0", "1"], ["-fdet_vector nan 0 1", "NaN"]),
]
OUTPUTS = {"floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img"}


def _run(tmp_path, monkeypatch, capsys, words):
    monkeypatch.chdir(tmp_path)
    code = cli.main(BASE + list(words) + ["-engine", "c"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("words, warning", RENDERED, ids=[" ".join(w[0]) for w in RENDERED])
def test_rendered_with_a_warning(words, warning, tmp_path, monkeypatch, capsys):
    code, out, err = _run(tmp_path, monkeypatch, capsys, words)
    assert code == 0, err
    assert set(os.listdir(tmp_path)) >= OUTPUTS
    image = np.fromfile(tmp_path / "floatimage.bin", dtype=np.float32)
    assert not np.isnan(image).all()
    if warning:
        assert "nbsim: warning: " in err and warning in err, err


@pytest.mark.parametrize("words, fragments", REFUSED, ids=[" ".join(w[0]) for w in REFUSED])
def test_refused_with_one_line(words, fragments, tmp_path, monkeypatch, capsys):
    code, out, err = _run(tmp_path, monkeypatch, capsys, words)
    assert code not in (0, None)
    assert "Traceback" not in err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("nanoBragg: error: ")
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    assert not set(os.listdir(tmp_path)) & OUTPUTS
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


# --- the same inputs through the reference -----------------------------------------------

needs_ref = pytest.mark.skipif(not refpair.REF, reason=refpair.SKIP_REASON)


@needs_ref
@pytest.mark.parametrize("words", [w for w, _ in RENDERED], ids=[" ".join(w[0]) for w in RENDERED])
def test_rendered_matches_reference(words, tmp_path):
    ref, nb, ref_dir, nb_dir = refpair.run_both(tmp_path, BASE + words, ["-engine", "c"])
    assert ref.returncode == nb.returncode == 0, nb.stderr
    assert refpair.differing_files(ref_dir, nb_dir) == []


@needs_ref
@pytest.mark.parametrize("words", [w for w, _ in REFUSED], ids=[" ".join(w[0]) for w in REFUSED])
def test_refused_where_reference_renders_nan_or_nothing(words, tmp_path):
    ref, nb, ref_dir, nb_dir = refpair.run_both(tmp_path, BASE + words, ["-engine", "c"])
    assert nb.returncode != 0 and not os.listdir(nb_dir)
    path = ref_dir / "floatimage.bin"
    image = np.fromfile(path, dtype=np.float32) if path.exists() else np.zeros(0)
    assert image.size == 0 or np.isnan(image).all() or not image.any(), (
        "the reference rendered a finite, non-empty image")


def _every_numeric_flag():
    """(flag words) with NaN, +inf and -inf for every number any documented flag takes,
    with the companion flags that make the value matter."""
    from nbsim.flags import REFERENCE_RULES
    context = {"-Xclose": ["-pivot", "sample"], "-Yclose": ["-pivot", "sample"],
               "-ORGX": ["-xds"], "-ORGY": ["-xds"], "-flux": ["-exposure", "1"],
               "-exposure": ["-flux", "1e12"], "-beamsize": ["-flux", "1e12"],
               "-fudge": ["-gauss_xtal"], "-detector_thick": ["-detector_abs", "100"],
               "-detector_abs": ["-detector_thick", "100"], "-hdivstep": ["-hdivrange", "0.3"],
               "-vdivstep": ["-vdivrange", "0.3"]}
    cases = []
    seen = set()
    for rule in REFERENCE_RULES:
        flag = rule.names[0]
        if "f" not in rule.kinds or flag in seen:
            continue
        seen.add(flag)
        n = rule.nvals if rule.kinds[:1] != "f" or "?" not in rule.kinds else 6
        for value in ("nan", "inf", "-inf"):
            if flag == "-cell" and value == "-inf":
                continue    # a word starting with '-' ends the cell (nbsim: missing value)
            for j in (0,):                          # the first number of a vector
                words = ["1"] * n if flag.endswith(("_vector", "_axis")) else \
                    (["70", "80", "90", "90", "90", "90"] if flag == "-cell" else ["0"] * n)
                words[j] = value
                extra = context.get(flag, [])
                if "sample" in flag or "xtal" in flag:
                    # an infinite size is clipped to the beam: a 12500-cell crystal, whose
                    # auto-selected oversampling would take minutes
                    extra = ["-oversample", "1"]
                cases.append([flag] + words + extra)
    return cases


EVERY = _every_numeric_flag()


@needs_ref
@pytest.mark.parametrize("words", EVERY, ids=[" ".join(w[:2 if len(w) < 4 else 4]) for w in EVERY])
def test_every_numeric_flag_with_non_finite_values(words, tmp_path):
    """Issue 13 item 5: for each numeric flag and each non-finite value, nbsim renders
    what the reference renders, bit for bit, or refuses, and then the reference's image
    is NaN everywhere or empty."""
    ref, nb, ref_dir, nb_dir = refpair.run_both(tmp_path, BASE + words, ["-engine", "c"],
                                                timeout=120)
    if nb.returncode == 0:
        assert ref.returncode == 0
        assert refpair.differing_files(ref_dir, nb_dir) == []
        return
    assert "Traceback" not in nb.stderr
    last = nb.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("nanoBragg: ")
    assert not os.listdir(nb_dir)
    if "more than nbsim takes" in last:
        return      # a size nbsim does not render in any case (README: sizes that would not finish)
    path = ref_dir / "floatimage.bin"
    image = np.fromfile(path, dtype=np.float32) if path.exists() else np.zeros(0)
    assert image.size == 0 or np.isnan(image).all() or not image.any(), (
        "nbsim refused %s but the reference rendered a finite image" % " ".join(words))
