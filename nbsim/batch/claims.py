"""Per-frame claims: so that ranks, concurrent runs and overlapping job arrays share
a job's frames instead of each rendering all of them.

A claim is a small file ``.{key}.claim`` in the job's output folder, made by one
atomic step (a hard link of a complete temporary file, or an exclusive create where
links are not supported), so exactly one process holds a given claim. It records
who holds it: host name, boot id, process id and the process's start time, plus a
random token. While a process renders, a background thread refreshes the claim's
modification time every :data:`HEARTBEAT` seconds.

A claim whose holder is gone can be taken over:

- on the same machine (same host name and boot id) when its process no longer
  exists, or the process id now belongs to a process started at another time;
- from another machine when the claim has not been refreshed for ``stale_after``
  seconds (the Python thread that refreshes it can be held up while a Numba kernel
  runs, so give it some margin).

Taking over renames the stale claim aside and checks that it moved the very claim it
judged stale before creating its own. Claims only prevent duplicated work; they are
not needed for correct files: every output is written under a temporary name and
renamed, and the same frame always renders to the same bytes, so a frame rendered
twice (e.g. in the narrow race of two processes breaking one stale claim) is still
complete and correct.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time

HEARTBEAT = 30.0
DEFAULT_STALE_AFTER = 3600.0
MAX_CLAIM_BYTES = 4096
# _create's records: .{key}.{machine tag}{process id}{random}.tmp
_SCRATCH = re.compile(r"^\.(.+)\.([0-9a-f]{8})([0-9a-f]{8})[0-9a-f]{8}\.tmp$")
_HELD_HERE = set()      # tokens of the claims this process holds (any Claims object)


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def process_start(pid):
    """Start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    try:   # the command name (field 2) may hold spaces and parentheses
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True          # exists, belongs to someone else
    except OSError:
        return True
    return True


class Claim:
    """A claim this process holds."""

    def __init__(self, key, path, fd, token):
        self.key, self.path, self.fd, self.token = key, path, fd, token


class Claims:
    """Claims in ``folder``; ``stale_after`` seconds without a refresh make a claim
    from another machine stale."""

    def __init__(self, folder, stale_after=DEFAULT_STALE_AFTER, heartbeat=HEARTBEAT):
        self.folder = folder
        self.stale_after = stale_after
        self.heartbeat = heartbeat
        self.me = {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid(),
                   "start": process_start(os.getpid())}
        # 8 hex digits naming this machine (host and boot) in temporary names
        self.machine = hashlib.sha256(("%s\0%s" % (self.me["host"], self.me["boot"]))
                                      .encode("utf-8")).hexdigest()[:8]
        self.held = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def path(self, key):
        return os.path.join(self.folder, "." + key + ".claim")

    # -- taking ------------------------------------------------------------------

    def take(self, key):
        """A :class:`Claim` on ``key``, or None if a live process holds it."""
        for _attempt in range(3):
            claim = self._create(key)
            if claim is not None:
                return claim
            info, age = self._read(self.path(key))
            if info is False:              # vanished meanwhile: try again
                continue
            if not self.stale(info, age):
                return None
            if not self._break(key, info):
                return None
        return None

    def _create(self, key):
        # machine tag + process id + random: a record left behind names its process
        token = "%s%08x%s" % (self.machine, self.me["pid"] & 0xFFFFFFFF, secrets.token_hex(4))
        record = dict(self.me, token=token, key=key, time=time.time())
        data = json.dumps(record).encode("utf-8")
        path = self.path(key)
        tmp = os.path.join(self.folder, ".%s.%s.tmp" % (key, token))
        fd = None
        # the create inside the try: a signal that arrives while os.open runs raises
        # just after it returns, and the record must be removed then too
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                os.close(fd)
                return None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK,
                                     errno.ENOSYS):
                    raise
                os.close(fd)
                return self._create_exclusive(key, path, data, token)
        except BaseException:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return self._hold(Claim(key, path, fd, token))

    def _create_exclusive(self, key, path, data, token):
        """Where hard links are not supported: an exclusive create, then the record
        (a reader may briefly see an empty claim; it counts as live until stale)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None
        os.write(fd, data)
        return self._hold(Claim(key, path, fd, token))

    def _hold(self, claim):
        with self._lock:
            self.held[claim.key] = claim
            _HELD_HERE.add(claim.token)
        self._start_heartbeat()
        return claim

    # -- judging -----------------------------------------------------------------

    def _read(self, path):
        """(record or None if unreadable, age in seconds); (False, 0) if it is gone."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return False, 0.0
        except OSError:
            return None, 0.0
        try:
            age = time.time() - os.fstat(fd).st_mtime
            raw = os.read(fd, MAX_CLAIM_BYTES)
        finally:
            os.close(fd)
        try:
            info = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None, age
        return (info if isinstance(info, dict) else None), age

    def stale(self, info, age):
        """Why a claim with record ``info`` and ``age`` is stale ('' if it is live)."""
        if isinstance(info, dict) and info.get("host") == self.me["host"] and \
                info.get("boot") == self.me["boot"] and isinstance(info.get("pid"), int):
            pid = info["pid"]
            if pid == self.me["pid"] and info.get("start") == self.me["start"]:
                return "" if info.get("token") in _HELD_HERE else "left by this process"
            if not _alive(pid):
                return "process %d has ended" % pid
            start = process_start(pid)
            if start is not None and info.get("start") is not None and start != info["start"]:
                return "process id %d now belongs to another process" % pid
            return ""
        if age > self.stale_after:
            return "not refreshed for %.0f s" % age
        return ""

    def _break(self, key, info):
        """Move the stale claim aside; True if it was the one judged stale (or it is
        gone), so that a new claim may be tried."""
        path = self.path(key)
        aside = "%s.stale-%s" % (path, secrets.token_hex(6))
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return True
        moved, _age = self._read(aside)
        same = (moved is None and info is None) or (
            isinstance(moved, dict) and isinstance(info, dict)
            and moved.get("token") == info.get("token"))
        if not same:
            # a fresh claim slipped in between the judgement and the rename: give
            # it back unless yet another one has appeared meanwhile
            with contextlib.suppress(OSError):
                os.link(aside, path)
        with contextlib.suppress(OSError):
            os.unlink(aside)
        return same

    def sweep_scratch(self, listing):
        """Remove the temporary claim records (``.{key}.{token}.tmp``) that processes
        killed while taking a claim left behind; ``listing`` is the folder's names.
        A record's token names its machine and process (a SIGKILL can leave the file
        empty), so one of this machine is removed when its process has ended, and one
        of another machine when it is older than ``stale_after``; a claim being taken
        right now is left alone."""
        for name in listing:
            m = _SCRATCH.match(name)
            if m is None:
                continue
            path = os.path.join(self.folder, name)
            machine, pid = m.group(2), int(m.group(3), 16)
            if machine == self.machine:
                stale = pid != self.me["pid"] and not _alive(pid)
            else:
                try:
                    stale = time.time() - os.stat(path).st_mtime > self.stale_after
                except OSError:
                    continue
            if stale:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    # -- holding and releasing ---------------------------------------------------

    def release(self, claim):
        """Give up ``claim`` (its file is removed only if it is still ours)."""
        info, _age = self._read(claim.path)
        if isinstance(info, dict) and info.get("token") == claim.token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(claim.path)
        with self._lock:       # the heartbeat uses the descriptor under this lock
            self.held.pop(claim.key, None)
            _HELD_HERE.discard(claim.token)
            with contextlib.suppress(OSError):
                os.close(claim.fd)

    def release_all(self):
        for claim in list(self.held.values()):
            self.release(claim)
        self._stop.set()

    def _start_heartbeat(self):
        if self._thread is None and self.heartbeat:
            self._thread = threading.Thread(target=self._beat, name="nbsim-claims", daemon=True)
            self._thread.start()

    def _beat(self):
        while not self._stop.wait(self.heartbeat):
            with self._lock:
                for claim in self.held.values():
                    with contextlib.suppress(OSError):
                        # the open file itself, wherever it has been moved
                        os.utime(claim.fd)
