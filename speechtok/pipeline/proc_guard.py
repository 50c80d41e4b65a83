"""No process outlives a killed run: helpers die with the process that started them.

Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to SIGKILL a process when its
parent dies, whatever killed the parent (SIGKILL included, where no Python cleanup runs):

- the multiprocessing *fork server* (a child of the runner) imports this module first among
  its preloads; the import arms the signal when ``SPEECHTOK_FORKSERVER_PARENT`` names its
  parent, and exits at once if that parent is already gone;
- each pool *worker* (a child of the fork server) calls `die_with_parent` in its initializer,
  then checks that the runner is still alive.

So killing the runner kills the fork server, which kills the workers. Elsewhere than Linux the
calls do nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "SPEECHTOK_FORKSERVER_PARENT"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Arms SIGKILL-on-parent-death for this process; returns whether it could (Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def exit_if_gone(pid: int) -> None:
    """Exits this process at once when `pid` no longer runs (it died before we armed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:
        pass


def _in_fork_server_main() -> bool:
    """Whether this import runs inside ``multiprocessing.forkserver.main`` (its preloads)."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "main" and \
                frame.f_globals.get("__name__") == "multiprocessing.forkserver":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _guard_fork_server() -> None:
    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit() and _in_fork_server_main():
        die_with_parent()
        if os.getppid() != int(parent):  # reparented: the runner died before we armed
            os._exit(1)


_guard_fork_server()
