"""The keyword API (nbsim.Simulation, nbsim.simulate, nbsim.scan, nbsim.which_engine).

Keyword-built simulations are checked against the reference's own outputs in the
golden corpus (not only against nbsim's command line), so "the same as the command
line" is tested against nanoBragg.c itself.
"""
import os
import warnings

import numpy as np
import pytest

import golden_cases as gc
import nbsim
from nbsim import NbsimError, NbsimWarning
from nbsim.config import Config
from nbsim.config_args import differing_fields
from nbsim.io.smv import read_smv

IN = gc.INPUTS
OUTPUT_FIELDS = {"floatfile", "intfile", "noisefile", "pgmfile", "progress"}


def bits(a):
    return np.ascontiguousarray(a).view(np.uint32)


def golden_images(name, tmp_path):
    """float, int, noise images of a golden case, read with the SMV reader."""
    case = gc.load_case(name)
    out = {"float": np.frombuffer(gc.golden_file(name, "float.bin"), dtype=np.float32)}
    for key, fname in (("int", "int.img"), ("noise", "noise.img")):
        if fname in case["files"]:
            path = tmp_path / ("golden_" + fname)
            path.write_bytes(gc.golden_file(name, fname))
            out[key] = read_smv(str(path)).data
    return out


def assert_matches_golden(result, name, tmp_path):
    want = golden_images(name, tmp_path)
    assert np.array_equal(bits(result.float_image.ravel()), bits(want["float"])), name
    assert np.array_equal(result.int_image, want["int"]), name
    if "noise" in want:
        assert np.array_equal(result.noise_image, want["noise"]), name


# keyword forms of golden cases; the reference rendered the command lines
KEYWORD_CASES = {
    "cubic_default_F": dict(cell=(100, 100, 100, 90, 90, 90), default_F=100, wavelength_A=6.2,
                            N_cells=5, distance_mm=100, detpixels=128, pixel_size_mm=0.1,
                            seed=101),
    "tric_misset": dict(cell=(70, 80, 90, 75, 85, 95), misset_deg=(10, 20, 30), default_F=100,
                        N_cells=5, wavelength_A=1.0, distance_mm=100, detpixels=160, seed=101),
    "cubic_hkl_N3": dict(cell=(100, 100, 100, 90, 90, 90), hkl_file=IN + "/cubic.hkl",
                         wavelength_A=1.0, N_cells=3, distance_mm=80, detpixels=128, seed=7),
    "mat_tetra_rect": dict(mat_file=IN + "/tetra.mat", wavelength_A=1.3, default_F=50,
                           N_cells=6, detpixels=(96, 160), distance_mm=150, pixel_size_mm=0.172,
                           seed=5),
    "Na_Nb_Nc": dict(cell=(100, 100, 100, 90, 90, 90), N_cells=(3, 7, 4), default_F=100,
                     wavelength_A=2.0, distance_mm=100, detpixels=128, seed=101),
    "xds_orgx": dict(cell=(70, 80, 90, 75, 85, 95), default_F=100, N_cells=4, wavelength_A=1.0,
                     convention="xds", orgx_px=60.5, orgy_px=70.25, distance_mm=100,
                     detpixels=128, seed=101),
    "roi": dict(cell=(70, 80, 90, 75, 85, 95), default_F=100, N_cells=5, wavelength_A=1.0,
                roi=((30, 100), (20, 90)), distance_mm=100, detpixels=128, seed=101),
    "noise_gaussian_overload": dict(cell=(100, 100, 100, 90, 90, 90), default_F=200, N_cells=10,
                                    wavelength_A=1.0, fluence=1e33, distance_mm=100,
                                    detpixels=128, seed=-99),
    "phi_from_zero_carryover": dict(cell=(100, 100, 100, 90, 90, 90), default_F=100, N_cells=5,
                                    wavelength_A=1.0, phi_deg=0, osc_deg=0.6, phisteps=4,
                                    distance_mm=100, detpixels=128, seed=101, c_parity=True),
    "absorption": dict(cell=(100, 100, 100, 90, 90, 90), default_F=100, N_cells=5,
                       wavelength_A=1.0, detector_abs_um=500, detector_thick_um=450,
                       detector_thicksteps=4, twotheta_deg=20, distance_mm=100, detpixels=128,
                       seed=101),
    "div_disp_round": dict(cell=(100, 100, 100, 90, 90, 90), default_F=100, N_cells=5,
                           wavelength_A=1.0, hdivrange_mrad=0.4, vdivrange_mrad=0.4,
                           hdivsteps=4, vdivsteps=4, dispersion_pct=1.5, dispsteps=3,
                           distance_mm=100, detpixels=128, seed=101),
    "mosaic": dict(cell=(70, 80, 90, 75, 85, 95), default_F=100, N_cells=5, wavelength_A=1.0,
                   mosaic_spread_deg=0.8, mosaic_domains=12, mosaic_seed=777, distance_mm=100,
                   detpixels=128, seed=101),
    "mask": dict(cell=(70, 80, 90, 75, 85, 95), default_F=100, N_cells=5, wavelength_A=1.0,
                 mask_file=IN + "/mask.img", seed=17),
    "misset_random": None,   # -misset_seed as the reference reads it: see the test below
}


@pytest.mark.parametrize("name", sorted(k for k, v in KEYWORD_CASES.items() if v))
def test_keywords_render_the_reference_bits(name, tmp_path):
    sim = nbsim.Simulation(**KEYWORD_CASES[name])
    assert_matches_golden(sim.run(), name, tmp_path)
    # and the keyword-built Config is the command line's, but for the output names
    case = gc.load_case(name)
    cli = Config.from_args(gc.args_for_mode(case), warn=lambda m: None)
    assert set(differing_fields(sim.config, cli)) <= OUTPUT_FIELDS


@pytest.mark.parametrize("name", ["cubic_default_F", "mat_tetra_rect", "xds_orgx", "absorption"])
def test_to_args_is_the_equivalent_command_line(name, tmp_path, monkeypatch):
    """The words of to_args(), run by the nanoBragg command, give the reference's files."""
    from nbsim import cli
    monkeypatch.chdir(tmp_path)
    args = nbsim.Simulation(**KEYWORD_CASES[name]).to_args()
    assert cli.run(args + ["-floatfile", "float.bin", "-intfile", "int.img", "-noisefile",
                           "noise.img", "-noprogress"], out=open(os.devnull, "w")) == 0
    want = golden_images(name, tmp_path)
    got = np.fromfile(tmp_path / "float.bin", dtype=np.float32)
    assert np.array_equal(bits(got), bits(want["float"]))
    assert np.array_equal(read_smv(str(tmp_path / "noise.img")).data, want["noise"])


def test_structure_factors_from_a_dict_or_arrays_equal_the_file(tmp_path):
    records = [line.split() for line in open(IN + "/cubic.hkl") if line.strip()]
    hkl = np.array([[int(x) for x in r[:3]] for r in records])
    F = np.array([float(r[3]) for r in records])
    base = {k: v for k, v in KEYWORD_CASES["cubic_hkl_N3"].items() if k != "hkl_file"}
    from_arrays = nbsim.Simulation(Fhkl=(hkl, F), **base).run()
    from_dict = nbsim.simulate(Fhkl={tuple(k): f for k, f in zip(hkl.tolist(), F)}, **base)
    assert_matches_golden(from_arrays, "cubic_hkl_N3", tmp_path)
    assert np.array_equal(bits(from_dict.float_image), bits(from_arrays.float_image))


def test_in_memory_inputs_written_by_to_args_read_back_the_same(tmp_path, monkeypatch):
    """to_args(inputs_dir) writes the arrays as files the command reads to the same bits."""
    from nbsim import cli
    from nbsim.io.mat import read_mat
    lam = 1.0
    A = read_mat(IN + "/tric.mat") * (1e-10 / (lam * 1e-10))   # the -mat file's a*, b*, c*
    rng = np.random.default_rng(3)
    hkl = rng.integers(-4, 5, size=(200, 3))
    F = rng.uniform(1, 100, size=200)
    sim = nbsim.Simulation(A_matrix=A, Fhkl=(hkl, F), wavelength_A=lam, N_cells=4,
                           distance_mm=120, detpixels=64, seed=3)
    res = sim.run()
    args = sim.to_args(inputs_dir=tmp_path)
    assert "-mat" in args and "-hkl" in args
    monkeypatch.chdir(tmp_path)
    assert cli.run(args + ["-noprogress"], out=open(os.devnull, "w")) == 0
    got = np.fromfile(tmp_path / "floatimage.bin", dtype=np.float32).reshape(64, 64)
    assert np.array_equal(bits(got), bits(res.float_image))
    with pytest.raises(NbsimError, match="(structure_factors|A_matrix).*inputs_dir"):
        sim.to_args()


def test_a_matrix_scaled_like_a_mat_file_gives_its_bits(tmp_path):
    """A = M * (1e-10 / lambda) is what the -mat reader makes of a MOSFLM matrix M."""
    from nbsim.io.mat import read_mat
    kw = dict(KEYWORD_CASES["mat_tetra_rect"])
    del kw["mat_file"]
    M = read_mat(IN + "/tetra.mat")
    s = 1e-10 / (1.3 / 1.0e10)
    res = nbsim.Simulation(A_matrix=s * M, **kw).run()
    assert_matches_golden(res, "mat_tetra_rect", tmp_path)


def test_misset_random_with_a_seed_matches_a_reference_run(tmp_path):
    """The golden run reads "-misset_seed 7" as the reference does (also as -misset angles);
    the keyword API writes the seed where it is only a seed. Its random misset must match
    the command line that says the same thing."""
    kw = dict(cell=(60, 70, 80, 90, 100, 110), misset_deg="random", misset_seed=7,
              default_F=100, N_cells=4, wavelength_A=1.2, distance_mm=100, detpixels=64,
              seed=101)
    sim = nbsim.Simulation(**kw)
    assert sim.config.crystal.misset_random and sim.config.crystal.misset_seed == -7
    args = sim.to_args()
    assert args[-2:] == ["-misset_seed", "7"]
    other = nbsim.simulate(Config.from_args(args))
    assert np.array_equal(bits(sim.run().float_image), bits(other.float_image))
    assert "random orientation misset angles" in "\n".join(other.log)


def test_scan_frames_equal_fresh_renders(tmp_path, monkeypatch):
    from nbsim.io import hkl as hkl_io
    reads = []
    real = hkl_io.read_hkl
    monkeypatch.setattr(hkl_io, "read_hkl", lambda *a: reads.append(a) or real(*a))
    kw = dict(cell=(70, 80, 90, 75, 85, 95), hkl_file=IN + "/cubic.hkl", default_F=10,
              N_cells=4, wavelength_A=1.0, osc_deg=0.5, phisteps=2, mosaic_spread_deg=0.2,
              mosaic_domains=2, distance_mm=100, detpixels=48, seed=4)
    sim = nbsim.Simulation(**kw)
    phis = [0.0, 0.5, 1.0, 7.25]
    frames = list(sim.scan(phi_deg=phis))
    assert len(frames) == len(phis) and len(reads) == 1     # one table for every frame
    for phi, frame in zip(phis, frames):
        fresh = nbsim.simulate(Config.from_args(
            sim.to_args() + ["-phi", repr(phi)], warn=lambda m: None))
        assert np.array_equal(bits(frame.float_image), bits(fresh.float_image)), phi
        assert np.array_equal(frame.noise_image, fresh.noise_image)
        assert frame.plan.config.crystal.phi0 == fresh.plan.config.crystal.phi0
    assert not np.array_equal(frames[0].float_image, frames[-1].float_image)


def test_scan_of_two_keywords_and_in_memory_structure_factors(monkeypatch):
    from nbsim.structure_factors import StructureFactors
    built = []
    real = StructureFactors.table
    monkeypatch.setattr(StructureFactors, "table",
                        lambda self, d, *cap: built.append(d) or real(self, d, *cap))
    sim = nbsim.Simulation(cell=(50, 60, 70, 90, 90, 90), Fhkl={(1, 0, 0): 10.0, (0, 1, 1): 5.0},
                           default_F=1, N_cells=3, wavelength_A=1.0, detpixels=32, seed=2)
    frames = list(nbsim.scan(sim, phi_deg=[0, 3], distance_mm=[80, 90]))
    assert len(built) == 1
    fresh = nbsim.Simulation(**dict(sim.keywords, phi_deg=3, distance_mm=90)).run()
    assert np.array_equal(bits(frames[1].float_image), bits(fresh.float_image))
    with pytest.raises(NbsimError, match="different lengths"):
        sim.scan(phi_deg=[0, 1], seed=[1])
    with pytest.raises(NbsimError, match="distance_mm"):
        sim.scan(distance_mm=[100, -5])       # every frame is checked before any renders


def test_simulate_takes_a_config_and_its_plan():
    from nbsim.plan import make_plan
    cfg = Config.from_args("-cell 70 80 90 75 85 95 -default_F 100 -N 3 -detpixels 32 -seed 3")
    plan = make_plan(cfg)
    a = nbsim.simulate(cfg, plan=plan)
    b = nbsim.simulate(cfg, plan=plan, engine="c", threads=1, warn=print, progress=None)
    assert a.plan is plan and np.array_equal(bits(a.float_image), bits(b.float_image))
    other = cfg.replace(distance=0.2)
    with pytest.raises(NbsimError, match="plan: made from a different config.*distance"):
        nbsim.simulate(other, plan=plan)


def test_simulate_accepts_command_lines_and_changes_by_keyword():
    words = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 6.2 -detpixels 128 -seed 101"
    res = nbsim.simulate(words)
    ref = nbsim.simulate(nbsim.Simulation(**KEYWORD_CASES["cubic_default_F"]))
    assert np.array_equal(bits(res.float_image), bits(ref.float_image))
    moved = nbsim.simulate(words.split(), distance_mm=120)
    assert moved.plan.config.detector.distance == 0.12
    assert moved.detector.distance_mm == pytest.approx(120)


def test_seed_is_chosen_once_and_shown_as_given():
    sim = nbsim.Simulation(cell=(50, 50, 50, 90, 90, 90), default_F=1, detpixels=8)
    assert isinstance(sim.seed, int) and sim.seed > 1_000_000      # the time, as -seed takes it
    assert sim.config.noise.seed == -sim.seed                       # the reference's form
    assert sim.replace(distance_mm=90).seed == sim.seed
    assert sim.to_args()[-2:] == ["-seed", str(sim.seed)]
    assert nbsim.Simulation(cell=(50, 50, 50, 90, 90, 90), default_F=1, seed=5).seed == 5


def test_nothing_is_read_or_written_in_the_working_folder(workdir):
    """A leftover Fdump.bin is not read, and no Fdump.bin is written, unless asked."""
    (workdir / "Fdump.bin").write_bytes(gc.golden_file("cubic_hkl_N3", "Fdump.bin"))
    with pytest.raises(NbsimError, match="no structure factors"):
        nbsim.Simulation(cell=(100, 100, 100, 90, 90, 90), N_cells=3, detpixels=16)
    with pytest.raises(NbsimError, match="no structure factors"):
        nbsim.simulate(Config.from_args("-cell 100 100 100 90 90 90 -N 3 -detpixels 16"))
    (workdir / "Fdump.bin").unlink()
    nbsim.simulate(hkl_file=IN + "/cubic.hkl", cell=(100, 100, 100, 90, 90, 90), N_cells=3,
                   detpixels=16, seed=1)
    nbsim.simulate(Config.from_args(["-hkl", IN + "/cubic.hkl", "-cell", "100", "-N", "3",
                                     "-detpixels", "16"]))
    assert os.listdir(workdir) == []


def test_dump_file_is_written_and_read_when_asked(tmp_path):
    dump = tmp_path / "cache.bin"
    kw = dict(KEYWORD_CASES["cubic_hkl_N3"])
    first = nbsim.Simulation(dump_file=dump, **kw).run()
    assert dump.read_bytes() == gc.golden_file("cubic_hkl_N3", "Fdump.bin")
    del kw["hkl_file"]
    again = nbsim.Simulation(dump_file=dump, **kw).run()
    assert np.array_equal(bits(first.float_image), bits(again.float_image))
    assert_matches_golden(again, "fdump_reuse", tmp_path)


def test_result_geometry_in_mm():
    sim = nbsim.Simulation(cell=(100, 100, 100, 90, 90, 90), default_F=1, detpixels=(64, 96),
                           pixel_size_mm=0.2, distance_mm=150, seed=1)
    det = sim.run().detector
    assert det.shape == (64, 96) and det.pixel_size_mm == pytest.approx(0.2)
    assert det.distance_mm == pytest.approx(150)
    assert det.convention == "mosflm" and det.pivot == "beam"
    # MOSFLM's default beam centre is the detector's middle plus half a pixel
    assert det.beam_center_mm == pytest.approx((64 * 0.2 / 2 + 0.2, 96 * 0.2 / 2 + 0.2))
    # the pixel the beam hits lies straight down the beam
    s, f = (c / 0.2 - 0.5 for c in det.beam_center_mm)
    x, y, z = det.pixel_center_mm(s, f)
    assert (y, z) == (pytest.approx(0.0, abs=1e-9), pytest.approx(0.0, abs=1e-9))
    assert x == pytest.approx(150)
    assert sim.detector == det


def test_which_engine_answers_before_rendering(monkeypatch):
    from nbsim.api import choose_engine, engine_estimates
    from nbsim.engines import registry
    monkeypatch.delenv("NBSIM_ENGINE", raising=False)
    small = nbsim.Simulation(cell=(50, 50, 50, 90, 90, 90), default_F=1, detpixels=16, seed=1)
    guess = nbsim.which_engine(small)
    assert guess == small.which_engine() == registry.active(small)
    assert guess == registry.resolve("auto", plan=small.plan())
    assert small.run().engine == guess == registry.active()
    assert nbsim.which_engine(small.config) == guess
    big = small.replace(detpixels=1024, oversample=4, phisteps=5)    # ~8e7 evaluations
    # a job of seconds (Numba's start-up does not decide it)
    assert min(engine_estimates(big.plan()).values()) > 1.0
    assert nbsim.which_engine(big) == choose_engine(big.plan())
    for name in ("c", "numba"):
        if registry.available()[name][0]:
            monkeypatch.setenv("NBSIM_ENGINE", name)
            assert nbsim.which_engine(big) == name == nbsim.which_engine(small)
            assert nbsim.which_engine(small, engine="auto") == guess


def test_which_engine_of_a_printout_job_is_the_one_that_traces(monkeypatch):
    """-printout's per-pixel values come from the Numba kernel whatever engine is asked
    for, and which_engine says so before rendering."""
    from nbsim import api
    from nbsim.cli import config_from_args
    from nbsim.plan import make_plan
    monkeypatch.delenv("NBSIM_ENGINE", raising=False)
    args = "-cell 50 50 50 90 90 90 -default_F 1 -detpixels 4 -seed 1".split()
    for extra in ([], ["-fast"]):
        plain = config_from_args(args + extra)[0]
        printout = config_from_args(args + extra + ["-printout"])[0]
        assert nbsim.which_engine(plain) == "c"       # a small job
        for engine in ("auto", "c", "numba"):
            assert nbsim.which_engine(printout, engine=engine) == "numba"
        rendered = api.render(make_plan(printout), engine="c", trace=True)
        assert rendered.engine == nbsim.which_engine(printout) and rendered.trace is not None


def test_mask_array_equals_the_mask_file(tmp_path):
    mask = read_smv(IN + "/mask.img").data
    kw = dict(KEYWORD_CASES["mask"])
    from_file = nbsim.Simulation(**kw)
    del kw["mask_file"]
    det = from_file.detector
    from_array = nbsim.Simulation(mask=mask != 0, detpixels=det.shape,
                                  pixel_size_mm=det.pixel_size_mm,
                                  xbeam_mm=from_file.config.detector.xbeam * 1000,
                                  ybeam_mm=from_file.config.detector.ybeam * 1000,
                                  distance_mm=from_file.config.detector.distance * 1000,
                                  wavelength_A=from_file.config.beam.lambda0 * 1e10,
                                  **{k: v for k, v in kw.items() if k != "wavelength_A"})
    assert np.array_equal(bits(from_array.run().float_image), bits(from_file.run().float_image))
    with pytest.raises(NbsimError, match="mask"):
        nbsim.Simulation(mask=np.ones((3, 3)), **{k: v for k, v in kw.items()})


def test_custom_axes_need_the_custom_convention():
    base = dict(cell=(70, 80, 90, 75, 85, 95), default_F=100, N_cells=4, detpixels=64, seed=1)
    with pytest.raises(NbsimError, match="spindle_axis.*convention='custom'"):
        nbsim.Simulation(spindle_axis=(0, 1, 0), **base)
    custom = nbsim.Simulation(convention="custom", spindle_axis=(0, 1, 0), phi_deg=2, osc_deg=2,
                              phisteps=3, distance_mm=100, **base)
    golden = Config.from_args("-cell 70 80 90 75 85 95 -default_F 100 -N 4 -detpixels 64 "
                              "-spindle_axis 0 1 0 -phi 2 -osc 2 -phisteps 3 -distance 100 "
                              "-seed 1", warn=lambda m: None)
    assert differing_fields(custom.config, golden) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # explicit: no "selects CUSTOM" notice
        nbsim.Simulation(convention="custom", **base)


def test_pivot_only_where_the_convention_lets_you_choose():
    base = dict(cell=(70, 80, 90, 75, 85, 95), default_F=100, detpixels=32, seed=1)
    with pytest.raises(NbsimError, match="pivot: the mosflm convention always uses the beam"):
        nbsim.Simulation(pivot="sample", **base)
    assert nbsim.Simulation(pivot="beam", **base).config.detector.pivot.value == "beam"
    sim = nbsim.Simulation(convention="custom", twotheta_deg=10, distance_mm=100,
                           pivot="sample", **base)
    assert sim.detector.pivot == "sample"


def test_keyword_order_decides_the_pivot_as_flag_order_does():
    base = dict(cell=(70, 80, 90, 75, 85, 95), default_F=100, detpixels=32, seed=1,
                convention="custom")
    with pytest.warns(NbsimWarning, match="pivot"):
        a = nbsim.Simulation(distance_mm=100, twotheta_deg=10, **base)
    with pytest.warns(NbsimWarning, match="pivot"):
        b = nbsim.Simulation(twotheta_deg=10, distance_mm=100, **base)
    assert (a.detector.pivot, b.detector.pivot) == ("sample", "beam")


def test_replace_changes_one_thing():
    sim = nbsim.Simulation(**KEYWORD_CASES["tric_misset"])
    other = sim.replace(distance_mm=120)
    assert differing_fields(sim.config, other.config) == ["distance"]
    assert other.keywords["distance_mm"] == 120 and sim.keywords["distance_mm"] == 100
    from_cli = nbsim.Simulation.from_args(sim.to_args())
    assert differing_fields(from_cli.config, sim.config) == []
    assert differing_fields(from_cli.replace(phi_deg=3).config, sim.replace(phi_deg=3).config) == []
    from_config = nbsim.Simulation.from_config(sim.config)
    assert differing_fields(from_config.config, sim.config) == []


def test_plan_errors_name_the_keyword():
    with pytest.raises(NbsimError, match=r"^roi \(-roi\): .*selects no pixel of the 32x32 detector"):
        nbsim.Simulation(cell=(50, 50, 50, 90, 90, 90), default_F=1, detpixels=32,
                         roi=((40, 50), (0, 5)), seed=1)
    with pytest.raises(NbsimError, match="nothing to render: no unit cell"):
        nbsim.Simulation(default_F=1, detpixels=32, seed=1)


def test_simulate_needs_something():
    with pytest.raises(NbsimError, match="simulate: give"):
        nbsim.simulate()
    with pytest.raises(NbsimError, match="expected a Simulation"):
        nbsim.simulate(42)
    with pytest.raises(NbsimError, match="which_engine"):
        nbsim.which_engine("x")
