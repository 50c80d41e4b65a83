"""Fault injection for crash tests: ``SPEECHTOK_FAULT=POINT:N`` SIGKILLs the run.

`maybe_fault(point)` counts how often this process reached `point`; on the N-th time (N
defaults to 1) it kills the whole run with SIGKILL: the calling process, and the runner
process too when called from a pool worker (`also_kill=RUNNER_PID`). Several points may be given, separated by
commas (``after_tmp_write:3,after_fit``). Points used by the runner and the shard writer:

- ``after_ingest``: manifest and shard plan written, no stage started.
- ``in_process``: inside a stage's batch processing (in a worker when there is a pool).
- ``before_commit``: a shard's rows computed, nothing written.
- ``after_tmp_write``: the shard's temporary file written, not yet renamed or indexed.
- ``mid_index_update``: a temporary index file written (a shard's entry file in ``index.d``,
  or ``index.json`` at the end of a stage), not yet renamed.
- ``after_commit``: a shard committed (between two shards).
- ``after_fit``: a model (e.g. centroids) written, its stage not started.
- ``before_report``: every stage done, report not written.

Unset (the normal case) costs one dict lookup.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "SPEECHTOK_FAULT"
_counts: dict[str, int] = {}


def _targets() -> dict[str, int]:
    spec = os.environ.get(ENV, "")
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = part.partition(":")
        out[name] = int(n) if n.strip().isdigit() else 1
    return out


def maybe_fault(point: str, *, also_kill: int | None = None) -> None:
    """SIGKILLs the run if ``SPEECHTOK_FAULT`` asks for `point` and this is its N-th hit.

    Args:
        point: the fault point's name (see module docstring).
        also_kill: another pid to kill first (the runner, when called in a pool worker).
    """
    if ENV not in os.environ:
        return
    targets = _targets()
    if point not in targets:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] == targets[point]:
        if also_kill is not None and also_kill != os.getpid():
            os.kill(also_kill, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


EIO_ENV = "SPEECHTOK_FAULT_EIO"
_eio_counts: dict[str, int] = {}


def maybe_io_error(item: str, path: str | None = None) -> None:
    """Raises ``OSError(EIO)`` for reads of `item` listed in ``SPEECHTOK_FAULT_EIO``.

    ``SPEECHTOK_FAULT_EIO=ID[:N],...``: the first N reads of cut ID in this process fail (N
    omitted: every read), as a flaky network file system would. Unset: one dict lookup.
    """
    spec = os.environ.get(EIO_ENV)
    if not spec:
        return
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = part.partition(":")
        if name != item:
            continue
        _eio_counts[item] = _eio_counts.get(item, 0) + 1
        if not n.strip().isdigit() or _eio_counts[item] <= int(n):
            raise OSError(errno.EIO, os.strerror(errno.EIO), path or item)
