"""stdout line for line: what the golden comparison ignores, and that it catches the rest.

Every golden test (tests/test_golden.py, tests/test_c_engine.py) compares the whole of
stdout with the reference's stdout.txt through golden_cases.compare; these tests check
that comparison itself, and the lines issue 10 found missing or different.
"""
import pytest

import golden_cases as gc


@pytest.fixture(scope="module")
def sourcefile_run(tmp_path_factory):
    case = gc.load_case("sourcefile")
    workdir = tmp_path_factory.mktemp("sourcefile")
    code, out = gc.run_in_process(case, str(workdir), extra_args=["-engine", "c"])
    return case, code, out


def test_whole_stdout_matches_and_only_the_allowed_lines_differ(sourcefile_run):
    case, code, out = sourcefile_run
    assert code == 0
    assert gc.stdout_problem(case, out) is None
    # what differs on purpose: the banner and nbsim's last line, nothing else
    raw_mine = [line for line in out.split("\n")]
    raw_ref = case["stdout"].split("\n")
    assert raw_mine[0] != raw_ref[0] and raw_mine[1:-2] == raw_ref[1:-1]
    assert raw_mine[-2].startswith("nbsim: rendered by the ")


def test_a_changed_line_is_reported(sourcefile_run):
    case, _, out = sourcefile_run
    assert "  -1 divergence steps" in out      # the reference's value with -sourcefile
    problem = gc.stdout_problem(case, out.replace("  -1 divergence steps", "  0 divergence steps"))
    assert problem and "divergence steps" in problem
    assert gc.stdout_problem(case, out.replace("writing float.bin", "writing floatx.bin"))


def test_addresses_and_usage_text_are_masked():
    ref = "reading m.img\nmmap(m.img) = 0x55c96ff85900\nBANNER\nERROR: x.usage: nanoBragg -mat a\nmore"
    mine = "reading m.img\nmmap(m.img) = 0x7f00aa\nBANNER\nERROR: x.usage: nanoBragg -cell b\nother"
    assert gc.stdout_lines(mine, True) == gc.stdout_lines(ref, False)
    assert gc.stdout_lines("reading n.img\n", True) != gc.stdout_lines(ref, False)


@pytest.mark.parametrize("name", ["img_and_mask_headers", "mask", "misset_random"])
def test_header_and_misset_lines(name, tmp_path):
    case = gc.load_case(name)
    code, out = gc.run_in_process(case, str(tmp_path), extra_args=["-engine", "c"])
    assert gc.stdout_problem(case, out) is None
    if "mask" in name:
        assert out.startswith("reading %s/mask.img\nmmap(%s/mask.img) = 0x" % (gc.INPUTS, gc.INPUTS))


def test_matrix_line_comes_before_random_misset(tmp_path, monkeypatch, capsys):
    from nbsim import cli
    monkeypatch.chdir(tmp_path)
    code = cli.main(["-mat", gc.INPUTS + "/tetra.mat", "-misset", "random", "-default_F", "10",
                     "-detpixels", "8", "-noprogress", "-nonoise", "-nopgm", "-misset_seed", "3"])
    out = capsys.readouterr().out
    assert code == 0
    reading = out.index("reading %s/tetra.mat" % gc.INPUTS)
    assert reading < out.index("random orientation misset angles:")


# --- against the reference binary: -printout's carried values and other stdout ------------

import refpair  # noqa: E402

PRINT = ["-cell", "70", "80", "90", "75", "85", "95", "-N", "3", "-lambda", "1.0", "-distance",
         "30", "-detpixels", "10", "-seed", "15", "-nonoise", "-nopgm", "-printout"]
H = gc.INPUTS


@pytest.mark.skipif(not refpair.REF, reason=refpair.SKIP_REASON)
@pytest.mark.parametrize("words", [
    # culled pixels print what earlier pixels (and earlier rows) left behind
    ["-hkl", H + "/cubic.hkl", "-dmin", "45"],
    ["-hkl", H + "/cubic.hkl", "-dmin", "45", "-interpolate"],
    ["-hkl", H + "/wide.hkl", "-dmin", "40", "-N", "2"],
    # F_cell from an earlier spot (or from the -hkl file) where the top hat is zero
    ["-hkl", H + "/cubic.hkl", "-tophat_spots", "-N", "8", "-default_F", "3"],
    ["-default_F", "5", "-phi", "0", "-osc", "2", "-phisteps", "3", "-mosaic", "0.5",
     "-mosaic_dom", "3", "-dmin", "40"],
    ["-default_F", "5", "-roi", "2", "6", "3", "7", "-printout_pixel", "4", "5"],
    ["-default_F", "5", "-lambda", "nan", "-N", "1"],     # -nan and INT_MIN indices
    ["-default_F", "5", "-mat", H + "/tetra.mat", "-misset_seed", "4", "-misset", "random"],
    ["-default_F", "5", "-sourcefile", H + "/sources.txt", "-mask", H + "/mask.img"],
], ids=["dmin", "dmin-interpolate", "dmin-N2", "tophat-hkl", "mosaic-phi0", "one-pixel",
        "nan", "mat-random-misset", "sourcefile-mask"])
def test_stdout_matches_reference(words, tmp_path):
    args = PRINT + words
    if "-mask" in words:
        args = [w for w in args if w not in ("-detpixels", "10")]
    ref, nb, _, _ = refpair.run_both(tmp_path, args, ["-c_parity", "-engine", "c"])
    assert ref.returncode == nb.returncode == 0, nb.stderr
    assert gc.stdout_lines(nb.stdout, True) == gc.stdout_lines(ref.stdout, False)
