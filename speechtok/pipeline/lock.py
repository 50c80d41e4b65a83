"""Locks that keep two runs off one output directory, without a race, stale locks detected.

The lock is an advisory ``fcntl.flock`` on the lock file, held for the life of the run. The
kernel drops it when its owner dies (SIGKILL included), so a stale lock of a dead process is
never mistaken for a live one, and there is no window between a liveness check and a takeover:
taking the lock *is* the check. The file also holds the owner's hostname, pid, start time and
argv as JSON, only for messages.

- ``RunLock(path)`` (exclusive) is what a whole run takes on ``OUT/run.lock`` and an array task
  on its own ``OUT/locks/shard-I-of-N.lock``.
- ``RunLock(path, shared=True)``: every array task also holds ``OUT/run.lock`` shared, so array
  tasks run side by side while a whole run (exclusive) excludes them all, and vice versa.

An exclusive holder unlinks the file before releasing it; whoever opened the old file in the
meantime sees, after taking the flock, that the path now names another inode and tries again.

On a file system without ``flock`` (``ENOLCK``/``EOPNOTSUPP``) the lock falls back to an
``O_EXCL`` file whose JSON is written before it is linked into place (never half-written), with
the owner's liveness checked through ``/proc`` (pid + start time); a lock from another host
cannot be checked there and the error says how to remove it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from speechtok.errors import SpeechtokError

_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class LockedError(SpeechtokError):
    """Another live run holds the lock."""


def _start_time(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_alive(info: dict[str, object]) -> bool | None:
    """True/False when the lock's owner is/is not running; None when it cannot be told
    (another host). Only used where ``flock`` is unavailable and for messages."""
    if info.get("hostname") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    started = info.get("start_time")
    return started is None or _start_time(pid) in (None, started)


def _owner_text(info: dict[str, object] | None) -> str:
    if not info:
        return "pid ? on ?"
    return f"pid {info.get('pid')} on {info.get('hostname')}"


class RunLock:
    """``with RunLock(path): ...`` holds `path` for this process (see module docstring).

    Args:
        path: the lock file (created).
        what: what holds it, written into the file for messages.
        shared: take a shared lock (array tasks on ``OUT/run.lock``).

    Raises:
        LockedError: if another process holds it (exclusively, or at all for an exclusive lock).
    """

    def __init__(self, path: Path, *, what: str = "speechtok run", shared: bool = False) -> None:
        self.path = Path(path)
        self.what = what
        self.shared = shared
        self.took_over: dict[str, object] | None = None
        self._fd: int | None = None
        self._fallback = False

    def _info(self) -> dict[str, object]:
        pid = os.getpid()
        return {"hostname": socket.gethostname(), "pid": pid, "start_time": _start_time(pid),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "what": self.what, "argv": sys.argv}

    def _refuse(self, info: dict[str, object] | None) -> LockedError:
        if info is not None and info.get("hostname") not in (None, socket.gethostname()):
            return LockedError(
                f"{self.path} is held by {_owner_text(info)} (another host, cannot check whether "
                f"it still runs). If no run is using this output directory, delete {self.path} "
                f"and rerun.")
        started = f", started {info.get('started_at')}" if info else ""
        return LockedError(
            f"another run ({_owner_text(info)}{started}) is writing to {self.path.parent}; wait "
            f"for it to finish, or write elsewhere with -o.")

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                info = read_lock(self.path)
                os.close(fd)
                raise self._refuse(info) from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in _NO_FLOCK:
                    self._acquire_fallback()
                    return
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder unlinked it between our open and flock: try again
                os.close(fd)
                continue
            if not self.shared:
                info = read_lock(self.path)
                if info is not None and info.get("hostname") not in (None, socket.gethostname()):
                    os.close(fd)  # written on another host whose flock we may not see
                    raise self._refuse(info)
                if info is not None:
                    self.took_over = info
                    print(f"speechtok: taking over stale lock {self.path} ({_owner_text(info)} "
                          f"is gone)", file=sys.stderr)
                data = json.dumps(self._info()).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
                os.fsync(fd)
            self._fd = fd
            return
        raise LockedError(f"could not take {self.path}; other runs keep taking it")

    # ------------------------------------------------------------ no-flock fallback

    def _acquire_fallback(self) -> None:
        if self.shared:  # best effort: refuse while an exclusive holder is alive
            info = read_lock(self.path)
            if info is not None and owner_is_alive(info) is not False:
                raise self._refuse(info)
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            json.dump(self._info(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)  # atomic, and the content is complete
                except FileExistsError:
                    info = read_lock(self.path)
                    alive = owner_is_alive(info) if info is not None else False
                    if alive is not False:
                        raise self._refuse(info) from None
                    self.took_over = info or {}
                    stale = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
                    with contextlib.suppress(FileNotFoundError):
                        os.rename(self.path, stale)
                        os.unlink(stale)
                    continue
                self._fallback = True
                return
        finally:
            tmp.unlink(missing_ok=True)
        raise LockedError(f"could not take {self.path}; another run keeps taking it")

    def release(self) -> None:
        if self._fd is not None:
            if not self.shared:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)  # still ours: we hold the flock on this inode
            os.close(self._fd)
            self._fd = None
        elif self._fallback:
            info = read_lock(self.path)
            if info is not None and info.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self._fallback = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def read_lock(path: Path) -> dict[str, object] | None:
    """The lock's JSON, or None if absent, empty or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
