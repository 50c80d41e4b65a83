"""Atomic, durable writes: every file the toolkit writes goes through here.

A file is written to a unique temporary name next to its destination, flushed and fsynced,
renamed over the destination (atomic on POSIX), and the directory is fsynced so the rename
itself survives a power cut. A reader therefore sees the old file or the new one, never a
mixture, and a crash leaves at most a ``.NAME.<pid>.tmp`` file (removed by the next write of
the same file by the same process, or by the caller's cleanup).

Directories (exports, fitted models): `atomic_dir` yields a temporary sibling directory; on
success every file in it and the directory are fsynced and it is renamed to the destination.
A non-empty destination is refused unless ``overwrite=True``; then the old one is moved aside,
the new one renamed in, and the old one removed, so the destination always holds one complete
version. `atomic_files` is for a library that saves several files into a directory shared with
others (``save_pretrained`` into a run directory): each file is renamed in on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from speechtok.errors import BugError, InputError


def check_dir_path(path: str | Path) -> None:
    """Raises `InputError` when `path`, or a directory above it, exists but is not a directory
    (``-o notes.txt`` or ``-o notes.txt/run``), so that it can never be created as one."""
    p = Path(path).absolute()
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                where = "" if q == p else f" ({q} is a file)"
                raise InputError(str(path), f"is not a directory and cannot be created as one{where}; "
                                 "choose another destination")
            return


def make_dirs(path: str | Path) -> None:
    """``mkdir -p path``; `InputError` (via `check_dir_path`) where a file is in the way."""
    check_dir_path(path)
    Path(path).mkdir(parents=True, exist_ok=True)


def fsync_dir(path: str | Path) -> None:
    """fsyncs a directory (makes renames and creations inside it durable)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """fsyncs a file's data (for files written by a library that does not fsync them)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Opens a temporary file for writing; on a clean exit it replaces `path` durably.

    On an exception the temporary file is removed and `path` is untouched.
    """
    if mode not in ("w", "wb", "wt"):
        raise BugError(f"`mode` must be 'w', 'wt' or 'wb', but is {mode!r} instead.")
    path = Path(path)
    make_dirs(path.parent)
    tmp = _tmp_name(path)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    try:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Writes `data` to `path` atomically and durably."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically and durably."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_json(path: str | Path, data: Any, *, indent: int | None = 1, sort_keys: bool = True) -> None:
    """Writes `data` as JSON (stable key order by default, no NaN) atomically and durably."""
    write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n")


def fsync_tree(root: str | Path) -> None:
    """fsyncs every file and directory under `root` (bottom-up), `root` included."""
    root = Path(root)
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                fsync_file(p)
        fsync_dir(dirpath)


def is_nonempty_dir(path: Path) -> bool:
    """True when `path` is a directory holding at least one entry."""
    return path.is_dir() and any(path.iterdir())


def _fresh_tmp_dir(dest: Path, tag: str) -> Path:
    """An empty ``.NAME{tag}.<pid>.tmp`` sibling of `dest` (a stale one of a killed run removed)."""
    tmp = dest.with_name(f".{dest.name}{tag}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


@contextlib.contextmanager
def atomic_dir(dest: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yields a temporary directory that becomes `dest` (complete, fsynced) on a clean exit.

    Args:
        dest: the final directory.
        overwrite: replace a non-empty `dest`; otherwise it is refused before anything is written.

    Raises:
        InputError: `dest` exists and is a non-empty directory (or a file) and `overwrite` is False.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise InputError(str(dest), "exists and is not a directory; choose another destination")
    if is_nonempty_dir(dest) and not overwrite:
        raise InputError(str(dest), "is not empty; choose an empty or new directory, or pass --overwrite")
    make_dirs(dest.parent)
    tmp = _fresh_tmp_dir(dest, "")
    try:
        yield tmp
        fsync_tree(tmp)
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_files(dest: str | Path) -> Iterator[Path]:
    """Yields a temporary directory; on a clean exit each file written there is fsynced and renamed
    into `dest` (created if missing): same-named files are replaced, other files of `dest` kept.

    Every file is replaced atomically (a reader never sees half a file), but not all of them in one
    step: give a directory of its own to `atomic_dir` instead when the set must change as a whole.
    On an exception the temporary directory is removed and `dest` is untouched.
    """
    dest = Path(dest).absolute()
    make_dirs(dest)
    tmp = _fresh_tmp_dir(dest, ".files")
    try:
        yield tmp
        fsync_tree(tmp)
        parents = {dest}
        for src in sorted(p for p in tmp.rglob("*") if not p.is_dir()):
            target = dest / src.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
            parents.add(target.parent)
        for d in sorted(parents):
            fsync_dir(d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
