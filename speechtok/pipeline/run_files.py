"""File helpers of the runner: cleanup of temporary files, CPU accounting."""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path


def cpu_s() -> float:
    """CPU seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def clean_tmp(out: Path) -> None:
    """Removes temporary files that killed runs left (only done by a non-array run)."""
    for pattern in ("shards/*.arrow.tmp.*", "index.d/.*.tmp", ".*.tmp", "quarantine.d/.*.tmp",
                    ".ingest.tmp-*"):
        for p in out.glob(pattern):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def clean_own_tmp(out: Path) -> None:
    """Removes this process's temporary files (a failed write may leave one behind)."""
    pid = os.getpid()
    for pattern in (f"shards/*.tmp.{pid}", f"index.d/.*.{pid}.tmp", f".*.{pid}.tmp",
                    f"quarantine.d/.*.{pid}.tmp"):
        for p in out.glob(pattern):
            p.unlink(missing_ok=True)
