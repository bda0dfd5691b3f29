"""nbsim.io.atomic: complete file or no file."""
import os

import pytest

from nbsim.errors import NbsimError
from nbsim.io import atomic
from nbsim.io.atomic import atomic_write_bytes


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(str(target), bytearray(b"second"))
    assert target.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_parts_are_written_in_order_without_joining(tmp_path):
    import numpy as np
    img = np.arange(6, dtype=np.float32).reshape(2, 3)
    target = tmp_path / "parts.bin"
    atomic_write_bytes(target, [b"HEAD", img, bytearray(b"!")])
    assert target.read_bytes() == b"HEAD" + img.tobytes() + b"!"


def test_non_contiguous_part_is_refused_and_leaves_nothing(tmp_path):
    import numpy as np
    img = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    with pytest.raises(ValueError):
        atomic_write_bytes(tmp_path / "x.bin", [b"H", img])
    assert list(tmp_path.iterdir()) == []


def test_permissions_like_fopen(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644


def test_relative_path_in_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atomic_write_bytes("plain.bin", b"abc")
    assert (tmp_path / "plain.bin").read_bytes() == b"abc"


def test_missing_folder(tmp_path):
    with pytest.raises(NbsimError, match="nope") as info:
        atomic_write_bytes(tmp_path / "nope" / "out.bin", b"x")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_failure_during_rename_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(NbsimError, match="No space left"):
        atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_failure_during_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "out.bin", object())
    assert list(tmp_path.iterdir()) == []


def test_not_a_file_name(tmp_path):
    with pytest.raises(NbsimError):
        atomic_write_bytes(str(tmp_path) + os.sep, b"x")


def test_atomic_path_renames_on_success_and_cleans_up_on_error(tmp_path):
    from nbsim.io.atomic import atomic_path
    target = tmp_path / "a.h5"
    target.write_bytes(b"old")
    with atomic_path(target) as scratch:
        assert os.path.basename(scratch) == "a.h5" and os.path.dirname(scratch) != str(tmp_path)
        with open(scratch, "wb") as fh:
            fh.write(b"new")
        assert target.read_bytes() == b"old"          # not replaced before the end
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["a.h5"]
    with pytest.raises(RuntimeError):
        with atomic_path(target) as scratch:
            with open(scratch, "wb") as fh:
                fh.write(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["a.h5"]


def test_atomic_path_through_links_and_into_devices(tmp_path):
    from nbsim.io.atomic import atomic_path
    real = tmp_path / "real.cbf"
    real.write_bytes(b"x")
    link = tmp_path / "link.cbf"
    link.symlink_to(real)
    with atomic_path(link) as scratch:
        with open(scratch, "wb") as fh:
            fh.write(b"through")
    assert link.is_symlink() and real.read_bytes() == b"through"
    with atomic_path("/dev/null") as scratch:
        with open(scratch, "wb") as fh:
            fh.write(b"gone")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    with pytest.raises(NbsimError, match="nodir"):
        with atomic_path(tmp_path / "nodir" / "a.h5"):
            pass


def _interrupted_after(real):
    """``real`` (os.open or os.mkdir) that completes, then raises KeyboardInterrupt: what
    a Ctrl-C arriving while the call runs does (its handler runs as it returns)."""
    def call(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt
    return call


def test_a_signal_during_the_create_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "open", _interrupted_after(os.open))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "out.bin", b"data")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_signal_during_the_scratch_folder_create_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "mkdir", _interrupted_after(os.mkdir))
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(tmp_path / "out.h5"):
            pass
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
