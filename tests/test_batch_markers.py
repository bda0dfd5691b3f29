"""nbsim.batch.markers: a frame is done only while its inputs and outputs are intact."""
import hashlib
import json
import os
import shutil

import pytest

from nbsim import batch, cli
from nbsim.batch import markers
from test_batch import BASE, outputs_of, run, write_job

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "inputs")
HKL = "".join("%d %d %d %g\n" % (h, k, 1, 10 + h * h + k) for h in range(-3, 4)
              for k in range(-3, 4))


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.suffix in (".bin", ".img")}


def flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_marker_records_inputs_and_outputs(tmp_path):
    (tmp_path / "p1.hkl").write_text(HKL)
    job_path = write_job(tmp_path, {"args": BASE.replace("-default_F 50", "-hkl p1.hkl"),
                                    "frames": 1})
    assert run(job_path) == 0
    mark = json.loads((tmp_path / "scan" / ".scan_00000.done").read_text())
    assert ["-hkl", "p1.hkl", sha(tmp_path / "p1.hkl")] in mark["inputs"]
    for rel, rec in mark["outputs"].items():
        assert rec == {"size": os.path.getsize(tmp_path / rel), "sha256": sha(tmp_path / rel)}
    assert set(mark["outputs"]) == {os.path.join("scan", n) for n in
                                    ("scan_00000.bin", "scan_00000.img", "scan_noise_00000.img")}


def test_a_same_size_corruption_is_rendered_again(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE, "frames": 3})
    assert run(job_path) == 0
    frames = tmp_path / "scan"
    good, before = outputs_of(frames), mtimes(frames)
    flip_middle_byte(frames / "scan_00001.bin")
    job = batch.load_job(job_path)
    assert markers.why_not_done(job, 1, markers.Digests()) == \
        "output %s changed" % os.path.join("scan", "scan_00001.bin")
    assert batch.is_done(job, 0) and batch.is_done(job, 2)
    assert run(job_path) == 0
    assert outputs_of(frames) == good
    after = mtimes(frames)
    assert {n for n in good if after[n] != before[n]} == \
        {"scan_00001.bin", "scan_00001.img", "scan_noise_00001.img"}


def _mat(folder):
    shutil.copy(os.path.join(GOLDEN, "tetra.mat"), folder / "a.mat")
    return "-mat a.mat", "a.mat"


def _hkl(folder):
    (folder / "p1.hkl").write_text(HKL)
    return "-hkl p1.hkl", "p1.hkl"


def _sources(folder):
    shutil.copy(os.path.join(GOLDEN, "sources.txt"), folder / "s.txt")
    return "-sourcefile s.txt", "s.txt"


def _img(folder):
    shutil.copy(os.path.join(GOLDEN, "header.img"), folder / "h.img")
    return "-img h.img", "h.img"


def _mask(folder):
    shutil.copy(os.path.join(GOLDEN, "mask.img"), folder / "m.img")
    return "-mask m.img", "m.img"


@pytest.mark.parametrize("make_input", [_hkl, _mat, _sources, _img, _mask])
def test_an_edited_input_file_renders_its_frames_again(tmp_path, make_input):
    flags, name = make_input(tmp_path)
    args = BASE + " " + flags
    if "-mat" in flags:
        args = args.replace("-cell 60 60 60 90 90 90 ", "")
    if "-img" in flags or "-mask" in flags:
        args = args.replace("-detpixels 24 ", "")          # the header gives the size
    job_path = write_job(tmp_path, {"args": args, "frames": 2, "vary": {"-phi": [0, 1]}})
    assert run(job_path) == 0
    job = batch.load_job(job_path)
    assert batch.is_done(job, 0) and batch.is_done(job, 1)
    path = tmp_path / name
    size = path.stat().st_size
    flip_middle_byte(path)                     # same size, same folder
    assert path.stat().st_size == size
    digests = markers.Digests()
    reason = "input %s %s changed" % (flags.split()[0], name)
    assert [markers.why_not_done(job, f, digests) for f in (0, 1)] == [reason, reason]
    assert run(job_path) == 0
    assert batch.is_done(job, 0) and batch.is_done(job, 1)


def test_a_new_fdump_is_an_input_change(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE, "frames": 1})       # -default_F, no -hkl
    assert run(job_path) == 0
    job = batch.load_job(job_path)
    assert batch.is_done(job, 0)
    # a structure-factor cache appears in the job folder: nanoBragg would now read it
    (tmp_path / "p1.hkl").write_text(HKL)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(BASE.replace("-default_F 50", "-hkl p1.hkl").split() +
                        ["-floatfile", "x.bin", "-intfile", "x.img", "-nonoise"]) == 0
    finally:
        os.chdir(old)
    assert (tmp_path / "Fdump.bin").exists()
    assert markers.why_not_done(job, 0, markers.Digests()) == "input Fdump Fdump.bin changed"


def test_a_marker_from_an_older_nbsim_or_garbage_is_not_done(tmp_path):
    job_path = write_job(tmp_path, {"args": BASE, "frames": 2})
    assert run(job_path) == 0
    job = batch.load_job(job_path)
    marker = tmp_path / "scan" / ".scan_00000.done"
    old = json.loads(marker.read_text())
    old.pop("version")
    marker.write_text(json.dumps(old))
    assert markers.why_not_done(job, 0, markers.Digests()) == "marker of another nbsim version"
    (tmp_path / "scan" / ".scan_00001.done").write_bytes(b"\x00garbage")
    assert markers.why_not_done(job, 1, markers.Digests()) == "no marker"
    assert run(job_path) == 0
    assert batch.is_done(job, 0) and batch.is_done(job, 1)


def test_input_digests_are_taken_once_per_file_version(tmp_path, monkeypatch):
    path = tmp_path / "big.hkl"
    path.write_text(HKL)
    calls = []
    real = markers.file_sha256
    monkeypatch.setattr(markers, "file_sha256", lambda p: calls.append(p) or real(p))
    digests = markers.Digests()
    first = digests.of(str(path))
    assert digests.of(str(path)) == first and len(calls) == 1
    path.write_text(HKL.replace("10", "11"))
    assert digests.of(str(path)) != first and len(calls) == 2
    assert digests.of(str(tmp_path / "missing")) is None


def test_frame_inputs_follow_the_flags(tmp_path):
    argv = ("-hkl a.hkl -mat b.mat -sourcefile c.txt -stol d.txt -img e.img -N 1 "
            "-distance 100").split()
    cfg = type("Cfg", (), {})()
    cfg.crystal = type("C", (), {"hkl_file": "a.hkl", "mat_file": "b.mat", "stol_file": "d.txt",
                                 "dump_file": "Fdump.bin"})()
    cfg.beam = type("B", (), {"source_file": "c.txt"})()
    assert markers.frame_inputs(cfg, argv) == [("-hkl", "a.hkl"), ("-mat", "b.mat"),
                                               ("-sourcefile", "c.txt"), ("-stol", "d.txt"),
                                               ("-img", "e.img")]
    cfg.crystal.hkl_file = None
    assert markers.frame_inputs(cfg, argv[2:])[-1] == ("Fdump", "Fdump.bin")
