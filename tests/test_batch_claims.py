"""nbsim.batch.claims: one holder per claim, and stale claims taken over."""
import errno
import json
import os
import subprocess
import sys
import time

import pytest

from nbsim.batch import claims as claims_mod
from nbsim.batch.claims import Claims


def record(folder, key):
    with open(os.path.join(folder, "." + key + ".claim")) as fh:
        return json.load(fh)


def forge(folder, name, age=0.0, **fields):
    """A claim file as another process would have left it."""
    path = os.path.join(folder, "." + name + ".claim")
    with open(path, "w") as fh:
        json.dump(fields, fh)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def test_one_holder_at_a_time(tmp_path):
    a, b = Claims(str(tmp_path)), Claims(str(tmp_path))
    mine = a.take("scan_00001")
    assert mine is not None
    assert record(tmp_path, "scan_00001")["pid"] == os.getpid()
    assert b.take("scan_00001") is None            # held, by a live holder
    a.release(mine)
    assert not (tmp_path / ".scan_00001.claim").exists()
    again = b.take("scan_00001")
    assert again is not None
    b.release_all()
    assert list(tmp_path.iterdir()) == []          # no claim, no temporary file left


def test_claim_of_an_ended_process_on_this_machine_is_taken_over(tmp_path):
    code = ("import os, sys; from nbsim.batch.claims import Claims\n"
            "c = Claims(sys.argv[1]); assert c.take('k') is not None; os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
    left = record(tmp_path, "k")
    assert left["pid"] != os.getpid()
    c = Claims(str(tmp_path))
    assert "has ended" in c.stale(left, 0.0)
    claim = c.take("k")
    assert claim is not None and record(tmp_path, "k")["token"] == claim.token
    c.release_all()


def test_a_reused_process_id_does_not_keep_a_claim(tmp_path):
    c = Claims(str(tmp_path))
    parent = os.getppid()                          # alive, but not the claim's process
    start = claims_mod.process_start(parent)
    if start is None:
        pytest.skip("no /proc here to read process start times from")
    live = dict(c.me, pid=parent, start=start, token="t1", key="k")
    assert c.stale(live, 0.0) == ""
    reused = dict(live, start=start + 12345)
    assert "now belongs to another process" in c.stale(reused, 0.0)


def test_claims_from_elsewhere_go_stale_by_age(tmp_path):
    c = Claims(str(tmp_path), stale_after=60)
    forge(tmp_path, "fresh", host="node17", boot="x", pid=1, token="a", key="fresh")
    forge(tmp_path, "old", age=120, host="node17", boot="x", pid=1, token="b", key="old")
    assert c.take("fresh") is None
    taken = c.take("old")
    assert taken is not None and record(tmp_path, "old")["host"] == c.me["host"]
    # the same host name after a reboot (another boot id) counts as elsewhere
    forge(tmp_path, "reboot", host=c.me["host"], boot="before", pid=os.getpid(), token="c")
    assert c.take("reboot") is None
    c.release_all()


def test_an_unreadable_claim_counts_as_live_until_old(tmp_path):
    c = Claims(str(tmp_path), stale_after=60)
    path = tmp_path / ".half.claim"
    path.write_bytes(b"")                          # as if caught mid-write
    assert c.take("half") is None
    then = time.time() - 600
    os.utime(path, (then, then))
    assert c.take("half") is not None
    c.release_all()


def test_a_left_over_claim_of_this_very_process_is_stale(tmp_path):
    c = Claims(str(tmp_path))
    forge(tmp_path, "k", **dict(c.me, token="not-held", key="k"))
    assert c.take("k") is not None
    c.release_all()


def test_release_leaves_a_claim_that_is_no_longer_ours(tmp_path):
    c = Claims(str(tmp_path))
    mine = c.take("k")
    forge(tmp_path, "k", host="other", boot="", pid=1, token="theirs")   # broken and retaken
    c.release(mine)
    assert record(tmp_path, "k")["token"] == "theirs"


def test_breaking_gives_back_a_claim_that_was_fresh_after_all(tmp_path):
    c = Claims(str(tmp_path))
    forge(tmp_path, "k", host="other", boot="", pid=1, token="new")
    judged = {"host": "other", "pid": 1, "token": "old"}     # what we judged stale
    assert c._break("k", judged) is False
    assert record(tmp_path, "k")["token"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == [".k.claim"]


def test_without_hard_links_an_exclusive_create_is_used(tmp_path, monkeypatch):
    def no_links(*_a):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_links)
    a, b = Claims(str(tmp_path)), Claims(str(tmp_path))
    held = a.take("k")
    assert held is not None and b.take("k") is None
    assert record(tmp_path, "k")["token"] == held.token
    a.release_all()
    assert list(tmp_path.iterdir()) == []


def test_the_holder_keeps_its_claim_fresh(tmp_path):
    c = Claims(str(tmp_path), heartbeat=0.05)
    c.take("k")
    path = tmp_path / ".k.claim"
    then = time.time() - 1000
    os.utime(path, (then, then))
    deadline = time.time() + 30
    while path.stat().st_mtime < then + 500 and time.time() < deadline:
        time.sleep(0.05)
    assert path.stat().st_mtime > then + 500
    c.release_all()


def test_two_processes_never_hold_the_same_claim(tmp_path):
    # each holds what it got until both are through (the claims of a process that has
    # ended are stale, and rightly taken over)
    code = ("import os, sys, time; from nbsim.batch.claims import Claims\n"
            "c = Claims(sys.argv[1])\n"
            "got = [k for k in range(300) if c.take('f%d' % k) is not None]\n"
            "open(sys.argv[2] + '.tmp', 'w').write(' '.join(map(str, got)))\n"
            "os.rename(sys.argv[2] + '.tmp', sys.argv[2])\n"
            "while not os.path.exists(sys.argv[3]): time.sleep(0.01)\n")
    folder = tmp_path / "claims"
    folder.mkdir()
    a, b = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(folder), mine, other])
             for mine, other in ((a, b), (b, a))]
    for p in procs:
        assert p.wait(timeout=300) == 0
    a, b = ({int(x) for x in (tmp_path / n).read_text().split()} for n in ("a.txt", "b.txt"))
    assert a.isdisjoint(b) and a | b == set(range(300))


def test_records_left_by_a_process_killed_while_taking_a_claim_are_swept(tmp_path):
    """A SIGKILL between creating a claim's record and linking it leaves
    ``.{key}.{token}.tmp`` (empty if it came before the write); the next run removes
    those of ended processes of this machine and old ones of other machines, and
    leaves alone records of live processes, young ones from elsewhere and files that
    are not records."""
    code = ("import os, sys; from nbsim.batch.claims import Claims\n"
            "c = Claims(sys.argv[1]); print(os.getpid())\n")
    dead_pid = int(subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True,
                                  timeout=120, capture_output=True, text=True).stdout)
    c = Claims(str(tmp_path))
    here, elsewhere = c.machine, "%08x" % (int(c.machine, 16) ^ 1)

    def name(key, machine, pid):
        return ".%s.%s%08x%s.tmp" % (key, machine, pid, "00c0ffee")

    dead = name("scan_00002.part001of004", here, dead_pid)
    live = name("scan_00003", here, os.getppid())
    mine = name("scan_00004", here, os.getpid())
    old_elsewhere = name("scan_00005", elsewhere, dead_pid)
    young_elsewhere = name("scan_00006", elsewhere, dead_pid)
    output_temp = ".image.img.0123456789ab.tmp"          # an output's temporary name
    for n in (dead, live, mine, old_elsewhere, young_elsewhere, output_temp):
        (tmp_path / n).write_bytes(b"")
    then = time.time() - 2 * c.stale_after
    os.utime(tmp_path / old_elsewhere, (then, then))
    c.sweep_scratch(os.listdir(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live, mine, young_elsewhere, output_temp])


def test_a_claim_record_is_named_by_its_machine_and_process(tmp_path, monkeypatch):
    c = Claims(str(tmp_path))
    seen = []
    real_link = os.link

    def spy(src, dst, *a, **kw):
        seen.append(os.path.basename(src))
        return real_link(src, dst, *a, **kw)

    monkeypatch.setattr(os, "link", spy)
    claim = c.take("scan_00007")
    monkeypatch.undo()
    m = claims_mod._SCRATCH.match(seen[0])
    assert m and m.group(1) == "scan_00007" and m.group(2) == c.machine
    assert int(m.group(3), 16) == os.getpid()
    c.release(claim)


def test_a_signal_while_the_record_is_created_leaves_no_file(tmp_path, monkeypatch):
    real = os.open

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt            # as a Ctrl-C arriving during os.open does

    c = Claims(str(tmp_path))
    monkeypatch.setattr(os, "open", interrupted)
    with pytest.raises(KeyboardInterrupt):
        c.take("scan_00008")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
