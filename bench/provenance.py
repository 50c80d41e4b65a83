"""Where a figure came from, and the results file that keeps it.

`bench/results/latest.json` (format 2)::

    {"format": 2,
     "figures": {NAME: {"value", "unit", "date", "commit", "machine", "threads", "wall_s", "cpu_s",
                        "timing", "settings", "loadavg", "bench", "run_id", "code", "code_sha",
                        "peers", "note"}},
     "runs": {BENCH: {"run_id", "started", "finished", "commit", "status", "loadavg"}}}

- `commit` is `git rev-parse HEAD`, with `-dirty` when tracked files (other than the results
  and the generated tables) differ from it.
- `code` lists the files (repository-relative) a benchmark's figures depend on, always with the
  benchmark's own `bench/bench_NAME.py`; `code_sha` is the sha256 over their contents.
- `timing` says what `wall_s`/`cpu_s` cover: ``"figure"`` (the measurement itself) or ``"run"``
  (the benchmark process up to the `record` call, when no timing was handed in).
- `runs` remembers the newest run of each benchmark; a figure from an older run is stale.

Every write is atomic (temp file + fsync + rename + fsync of the folder) under an exclusive lock,
so two benchmarks recording at once cannot lose each other's figures.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "latest.json"
LOCK = BENCH_DIR / "results" / ".latest.lock"
FORMAT = 2
# Written by the benchmarks themselves: never makes a commit "dirty".
_GENERATED = ("bench/results", "bench/README.md")


def now_iso() -> str:
    """The current UTC time, `YYYY-MM-DDTHH:MM:SSZ`."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1)
def commit() -> str:
    """`git rev-parse HEAD` of the repository, `-dirty` when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        excludes = [f":(exclude){p}" for p in _GENERATED]
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 *excludes], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if status else "")


def machine() -> str:
    """Host name, architecture, CPU count and CPU model in one line."""
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu {model}".strip()


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (`os.getloadavg`)."""
    return [round(v, 2) for v in os.getloadavg()]


_SNAPSHOT: dict[str, bytes] = {}


def snapshot_code() -> None:
    """Remembers the contents of every `.py` file under `speechtok/` and `bench/` now (at the
    start of a benchmark process), so `code_sha` describes the code that was measured even when
    the tree changes (a merge, an edit) before the figures are recorded."""
    for top in ("speechtok", "bench"):
        for p in (ROOT / top).rglob("*.py"):
            with contextlib.suppress(OSError):
                _SNAPSHOT[p.relative_to(ROOT).as_posix()] = p.read_bytes()


def files_sha(files: dict[str, bytes]) -> str:
    """sha256 over repository-relative paths and their contents (name + contents, sorted);
    the digest `code_sha` records and `bench.code_equiv` verifies."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0")
        h.update(files[rel])
        h.update(b"\0")
    return h.hexdigest()[:16]


def code_sha(paths: list[str], *, at_start: bool = False) -> str:
    """`files_sha` over the repository-relative `paths` (a missing file counts); with
    `at_start`, the contents `snapshot_code` saw where it saw the file."""
    files: dict[str, bytes] = {}
    for rel in set(paths):
        p = ROOT / rel
        data = _SNAPSHOT.get(rel) if at_start else None
        if data is None:
            data = p.read_bytes() if p.is_file() else b"<missing>"
        files[rel] = data
    return files_sha(files)


def atomic_write_text(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temp file in the same folder: fsync, rename, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@contextlib.contextmanager
def locked(lock: Path | None = None) -> Iterator[None]:
    """Holds an exclusive `flock` on the results lock file for the block."""
    lock = lock or LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def load(path: Path | None = None) -> dict[str, Any]:
    """Reads the results file; an old flat file (name -> number) becomes format 2 with every
    figure marked ``legacy`` (no provenance, so `check` calls it stale)."""
    path = path or RESULTS
    if not path.exists():
        return {"format": FORMAT, "figures": {}, "runs": {}}
    data = json.loads(path.read_text())
    if data.get("format") == FORMAT:
        data.setdefault("figures", {})
        data.setdefault("runs", {})
        return data
    notes_path = path.parent / "notes.json"
    notes = json.loads(notes_path.read_text()) if notes_path.exists() else {}
    figures: dict[str, Any] = {}
    for k, v in data.items():
        if k in ("machine", "date", "format", "figures", "runs") or not isinstance(v, int | float):
            continue
        figures[k] = {"value": v, "legacy": True, "date": data.get("date"),
                      "machine": data.get("machine"), "note": notes.get(k, "")}
    return {"format": FORMAT, "figures": figures, "runs": {}}


def save(data: dict[str, Any], path: Path | None = None) -> None:
    """Writes the results file atomically (sorted keys, one figure per block)."""
    atomic_write_text(path or RESULTS, json.dumps(data, indent=1, sort_keys=True) + "\n")
