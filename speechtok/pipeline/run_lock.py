"""A lock file that keeps two runs off one output directory, and detects stale locks.

The lock is a JSON file created with ``O_CREAT | O_EXCL`` holding the owner's hostname, pid and
process start time (from ``/proc/PID/stat``, so a recycled pid is not mistaken for the owner).
A lock whose owner ran on this host and is gone is stale: it is taken over, with a message.
A lock from another host cannot be checked; the error says how to remove it by hand.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from speechtok.errors import SpeechtokError


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
    (another host)."""
    if info.get("hostname") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    started = info.get("start_time")
    return started is None or _start_time(pid) in (None, started)


class RunLock:
    """``with RunLock(path, what="run"): ...`` holds `path` for this process.

    Raises:
        LockedError: if a live process (or one on another host) holds it.
    """

    def __init__(self, path: Path, *, what: str = "speechtok run") -> None:
        self.path = Path(path)
        self.what = what
        self.took_over: dict[str, object] | None = None
        self._held = False

    def _info(self) -> dict[str, object]:
        pid = os.getpid()
        return {"hostname": socket.gethostname(), "pid": pid, "start_time": _start_time(pid),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "what": self.what, "argv": sys.argv}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = read_lock(self.path)
                if info is None:  # vanished or half-written by a process killed mid-write
                    self._break(info)
                    continue
                alive = owner_is_alive(info)
                if alive is False:
                    self._break(info)
                    continue
                where = f"pid {info.get('pid')} on {info.get('hostname')}"
                if alive is None:
                    raise LockedError(
                        f"{self.path} is held by {where} (another host, cannot check whether it "
                        f"still runs). If no run is using this output directory, delete "
                        f"{self.path} and rerun.") from None
                raise LockedError(
                    f"another run ({where}, started {info.get('started_at')}) is writing to "
                    f"{self.path.parent}; wait for it to finish, or write elsewhere with -o."
                ) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(self._info(), fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._held = True
            return
        raise LockedError(f"could not take {self.path}; another run keeps taking it")

    def _break(self, info: dict[str, object] | None) -> None:
        self.took_over = info or {}
        if info is not None:
            print(f"speechtok: taking over stale lock {self.path} (pid {info.get('pid')} on "
                  f"{info.get('hostname')} is gone)", file=sys.stderr)
        stale = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.replace(self.path, stale)
            stale.unlink()
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if self._held:
            info = read_lock(self.path)
            if info is not None and info.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def read_lock(path: Path) -> dict[str, object] | None:
    """The lock's JSON, or None if absent or unreadable (e.g. killed mid-write)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def live_locks(paths: list[Path]) -> list[tuple[Path, dict[str, object]]]:
    """Those of `paths` held by a live (or unverifiable) owner."""
    out = []
    for p in paths:
        info = read_lock(p)
        if info is not None and owner_is_alive(info) is not False:
            out.append((p, info))
    return out
